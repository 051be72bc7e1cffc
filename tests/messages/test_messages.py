from __future__ import annotations

import pickle
import sys

import pytest

from threadline import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    HumanMessageChunk,
    InputError,
    SystemMessage,
    ToolMessage,
    convert_to_messages,
    get_buffer_string,
)
from threadline.messages._chunks import BaseMessageChunk, message_chunk_to_message


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
    # As in LangChain, streamed arguments are parsed as partial JSON ("{oops" repairs to
    # {}); arguments that no closing repairs, or that are not an object, are invalid.
    chunk = AIMessageChunk(
        "", tool_call_chunks=[{"name": "f", "args": "oops", "id": "c", "index": 0},
                              {"name": "g", "args": "[1]", "id": "d", "index": 1}]
    )
    message = chunk.to_message()
    assert message.tool_calls == []
    assert [call["args"] for call in message.invalid_tool_calls] == ["oops", "[1]"]
    truncated = AIMessageChunk(
        "", tool_call_chunks=[{"name": "f", "args": '{"a": 1, "b', "id": "c", "index": 0}]
    )
    assert truncated.to_message().tool_calls[0]["args"] == {"a": 1}


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


def test_repr_and_str_are_langchains() -> None:
    assert repr(HumanMessage("x")) == (
        "HumanMessage(content='x', additional_kwargs={}, response_metadata={})")
    assert repr(AIMessage("x", id="1")) == (
        "AIMessage(content='x', additional_kwargs={}, response_metadata={}, id='1', "
        "tool_calls=[], invalid_tool_calls=[])")
    assert str(HumanMessage("x", name="n")) == (
        "content='x' additional_kwargs={} response_metadata={} name='n'")


def test_pretty_repr_as_langchain_prints_it() -> None:
    assert HumanMessage("hi", name="ann").pretty_repr() == (
        "================================ Human Message =================================\n"
        "Name: ann\n\nhi")
    message = AIMessage("x", tool_calls=[{"name": "a", "args": {"q": 1}, "id": "1"}])
    assert message.pretty_repr().endswith("x\nTool Calls:\n  a (1)\n Call ID: 1\n  Args:\n    q: 1")


def test_text_is_a_str_that_can_be_called_and_stays_out_of_content() -> None:
    text = HumanMessage([{"type": "text", "text": "a"}, "b"]).text
    assert text == "ab"
    with pytest.warns(DeprecationWarning, match="as a method is deprecated"):
        assert text() == "ab"
    assert type(AIMessage(text).content) is str  # never the callable str subclass


def test_content_is_required_unless_content_blocks() -> None:
    with pytest.raises(InputError, match="needs content"):
        AIMessage()
    assert AIMessage(content_blocks=[{"type": "text", "text": "a"}]).content == [
        {"type": "text", "text": "a"}]
    assert AIMessageChunk().content == ""  # a chunk may be empty


def test_numeric_ids_become_str_and_type_must_match() -> None:
    assert HumanMessage("x", id=7).id == "7"  # type: ignore[arg-type]
    assert AIMessage("x", type="ai") == AIMessage("x")
    with pytest.raises(InputError, match=r"AIMessage\.type is 'ai'; got type='human'"):
        AIMessage("x", type="human")


def test_openai_tool_calls_in_additional_kwargs_are_parsed() -> None:
    raw = [{"id": "c1", "type": "function",
            "function": {"name": "f", "arguments": '{"a": 1}'}},
           {"id": "c2", "type": "function", "function": {"name": "g", "arguments": "{x"}}]
    message = AIMessage("", additional_kwargs={"tool_calls": raw})
    assert message.tool_calls == [{"name": "f", "args": {"a": 1}, "id": "c1",
                                   "type": "tool_call"}]
    assert message.invalid_tool_calls[0]["args"] == "{x"
    chunk = AIMessageChunk("", additional_kwargs={"tool_calls": [{**raw[0], "index": 0}]})
    assert chunk.tool_call_chunks[0]["args"] == '{"a": 1}'
    assert chunk.tool_calls[0]["args"] == {"a": 1}


def test_chunks_are_base_message_chunks_and_turn_back_into_messages() -> None:
    chunk = HumanMessageChunk("a") + HumanMessageChunk("b")
    assert isinstance(chunk, BaseMessageChunk)
    assert message_chunk_to_message(chunk) == HumanMessage("ab")
    assert message_chunk_to_message(HumanMessage("x")) == HumanMessage("x")


def test_repeated_model_names_are_kept_once_and_bools_do_not_add() -> None:
    # threadline's OpenAI client repeats model_name on every chunk; LangChain's producers
    # send it once, so concatenating would only double it.
    a = AIMessageChunk("a", response_metadata={"model_name": "m"})
    b = AIMessageChunk("b", response_metadata={"model_name": "m", "finish_reason": "stop"})
    assert (a + b).response_metadata == {"model_name": "m", "finish_reason": "stop"}
    with pytest.raises(TypeError, match="unsupported type"):
        AIMessageChunk("", additional_kwargs={"x": True}) + AIMessageChunk(
            "", additional_kwargs={"x": False})


def test_whole_tool_calls_survive_chunk_addition() -> None:
    call = {"name": "f", "args": {"a": 1}, "id": "c1", "type": "tool_call"}
    total = AIMessageChunk("", tool_calls=[call]) + AIMessageChunk("done")
    assert total.to_message().tool_calls == [call]


def test_base_message_with_its_own_type_pickles() -> None:
    message = BaseMessage(type="note", content="x", id="1")
    assert message.type == "note"
    assert pickle.loads(pickle.dumps(message)) == message
    assert message != BaseMessage(type="other", content="x", id="1")
