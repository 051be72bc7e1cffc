from __future__ import annotations

import pickle
import sys

import pytest

from threadline import (
    AIMessage,
    AIMessageChunk,
    HumanMessage,
    InputError,
    SystemMessage,
    ToolMessage,
    convert_to_messages,
    get_buffer_string,
)


def test_types_and_value_equality() -> None:
    assert HumanMessage("x").type == "human"
    assert AIMessage("x").type == "ai"
    assert SystemMessage("x").type == "system"
    assert ToolMessage("x", tool_call_id="1").type == "tool"
    assert AIMessage(content="x") == AIMessage(content="x")
    assert AIMessage("x") != AIMessage("y")
    assert AIMessage("x") != HumanMessage("x")
    assert AIMessage("x", additional_kwargs={}) == AIMessage("x")
    assert AIMessage("x", id="1") != AIMessage("x", id="2")
    assert AIMessage("x", response_metadata={"a": 1}) != AIMessage("x")


def test_fields_default_to_empty_and_are_mutable() -> None:
    message = AIMessage("x")
    assert message.additional_kwargs == {}
    assert message.response_metadata == {}
    assert message.tool_calls == []
    assert message.usage_metadata is None
    message.additional_kwargs["k"] = "v"
    assert message.additional_kwargs == {"k": "v"}
    assert message != AIMessage("x")


def test_tool_calls_get_their_type() -> None:
    message = AIMessage("", tool_calls=[{"name": "f", "args": {"a": 1}, "id": "c1"}])
    assert message.tool_calls == [{"name": "f", "args": {"a": 1}, "id": "c1", "type": "tool_call"}]


def test_bad_content_is_a_clear_error() -> None:
    with pytest.raises(InputError, match="str or a list"):
        HumanMessage(42)  # type: ignore[arg-type]


def test_text_of_list_content() -> None:
    message = HumanMessage(
        ["a", {"type": "text", "text": "b"}, {"type": "image_url", "image_url": "u"}]
    )
    assert message.text == "ab"


def test_chunks_concatenate() -> None:
    total = AIMessageChunk("Hel", id="r1") + AIMessageChunk(
        "lo", response_metadata={"finish_reason": "stop"}
    )
    assert isinstance(total, AIMessageChunk)
    assert total.content == "Hello"
    assert total.id == "r1"
    assert total.response_metadata == {"finish_reason": "stop"}


def test_chunk_usage_adds_up_and_tool_call_chunks_merge() -> None:
    a = AIMessageChunk(
        "",
        usage_metadata={"input_tokens": 3, "output_tokens": 1, "total_tokens": 4},
        tool_call_chunks=[{"name": "f", "args": '{"a"', "id": "c1", "index": 0}],
    )
    b = AIMessageChunk(
        "",
        usage_metadata={"input_tokens": 0, "output_tokens": 2, "total_tokens": 2},
        tool_call_chunks=[{"name": None, "args": ": 1}", "id": None, "index": 0}],
    )
    total = a + b
    assert total.usage_metadata == {"input_tokens": 3, "output_tokens": 3, "total_tokens": 6}
    message = total.to_message()
    assert type(message) is AIMessage
    assert message.tool_calls == [{"name": "f", "args": {"a": 1}, "id": "c1", "type": "tool_call"}]


def test_bad_tool_call_json_becomes_invalid_tool_call() -> None:
    chunk = AIMessageChunk(
        "", tool_call_chunks=[{"name": "f", "args": "{oops", "id": "c", "index": 0}]
    )
    message = chunk.to_message()
    assert message.tool_calls == []
    assert message.invalid_tool_calls[0]["args"] == "{oops"


def test_list_content_chunks_merge_by_index() -> None:
    a = AIMessageChunk([{"type": "text", "text": "He", "index": 0}])
    b = AIMessageChunk([{"type": "text", "text": "llo", "index": 0}])
    assert (a + b).content == [{"type": "text", "text": "Hello", "index": 0}]


def test_pickle_round_trip() -> None:
    message = AIMessage("x", id="1", tool_calls=[{"name": "f", "args": {}, "id": "c"}])
    assert pickle.loads(pickle.dumps(message)) == message


def test_messages_are_small() -> None:
    message = HumanMessage("x" * 200)
    assert not hasattr(message, "__dict__")
    assert sys.getsizeof(message) <= 80


def test_copy_replaces_fields() -> None:
    message = AIMessage("a", id="1")
    assert message.copy(content="b") == AIMessage("b", id="1")


def test_convert_to_messages() -> None:
    assert convert_to_messages("hi") == [HumanMessage("hi")]
    assert convert_to_messages(
        [("system", "s"), ("assistant", "a"), {"role": "user", "content": "u"}]
    ) == [SystemMessage("s"), AIMessage("a"), HumanMessage("u")]
    with pytest.raises(InputError, match="unknown message role 'robot'"):
        convert_to_messages([("robot", "x")])
    with pytest.raises(InputError, match="cannot turn int"):
        convert_to_messages(3)


def test_get_buffer_string() -> None:
    messages = [
        SystemMessage("s"),
        HumanMessage("h"),
        AIMessage("a"),
        ToolMessage("t", tool_call_id="1"),
    ]
    assert get_buffer_string(messages) == "System: s\nHuman: h\nAI: a\nTool: t"
    assert get_buffer_string(messages[1:3], human_prefix="U", ai_prefix="B") == "U: h\nB: a"
