from __future__ import annotations

import json

import pytest

from threadline import (
    AIMessage,
    AIMessageChunk,
    ChatMessage,
    HumanMessage,
    MessageFormatError,
    SystemMessage,
    ToolMessage,
    message_to_dict,
    messages_from_dict,
    messages_to_dict,
)

lc_messages = pytest.importorskip("langchain_core.messages")

RICH = [
    SystemMessage("be brief", id="s1"),
    HumanMessage(
        ["look", {"type": "image_url", "image_url": {"url": "data:x"}}], name="bob", id="h1"
    ),
    AIMessage(
        "calling",
        id="a1",
        tool_calls=[{"name": "add", "args": {"a": 1, "b": [2]}, "id": "call_1"}],
        usage_metadata={"input_tokens": 5, "output_tokens": 2, "total_tokens": 7},
        response_metadata={"model_name": "m", "finish_reason": "tool_calls"},
        additional_kwargs={"refusal": None},
    ),
    ToolMessage("3", tool_call_id="call_1", name="add", status="error", artifact={"raw": 3}),
    AIMessage("done \u00e9\u4e2d \x00 end"),
]


def test_round_trip() -> None:
    assert messages_from_dict(messages_to_dict(RICH)) == RICH
    assert messages_from_dict(json.loads(json.dumps(messages_to_dict(RICH)))) == RICH


def test_langchain_core_reads_our_dicts_into_equal_messages() -> None:
    theirs = lc_messages.messages_from_dict(messages_to_dict(RICH))
    assert lc_messages.messages_to_dict(theirs) == messages_to_dict(RICH)
    assert [m.content for m in theirs] == [m.content for m in RICH]
    assert theirs[2].tool_calls[0]["args"] == {"a": 1, "b": [2]}
    assert theirs[3].tool_call_id == "call_1"


def test_we_read_langchain_core_dicts() -> None:
    theirs = [
        lc_messages.HumanMessage("hi", id="1", name="n"),
        lc_messages.AIMessage(
            "yo",
            tool_calls=[{"name": "f", "args": {}, "id": "c"}],
            usage_metadata={"input_tokens": 1, "output_tokens": 1, "total_tokens": 2},
        ),
        lc_messages.ToolMessage("r", tool_call_id="c"),
        lc_messages.SystemMessage("s"),
        lc_messages.AIMessageChunk("part"),
    ]
    ours = messages_from_dict(lc_messages.messages_to_dict(theirs))
    assert messages_to_dict(ours) == lc_messages.messages_to_dict(theirs)
    assert isinstance(ours[4], AIMessageChunk)


def test_reads_langchain_0x_dicts_with_example() -> None:
    old = [
        {"type": "human", "data": {"content": "hi", "additional_kwargs": {}, "example": False}},
        {"type": "ai", "data": {"content": "hello", "additional_kwargs": {}, "example": False}},
    ]
    assert messages_from_dict(old) == [HumanMessage("hi"), AIMessage("hello")]


def test_unknown_type_does_not_block_the_history() -> None:
    # A type from a newer LangChain: read as a ChatMessage of that role, with a warning.
    rows = [{"type": "human", "data": {"content": "a"}},
            {"type": "reasoning", "data": {"content": "thinking", "id": "r1"}},
            {"type": "ai", "data": {"content": "b"}}]
    with pytest.warns(RuntimeWarning, match="unknown type 'reasoning'"):
        messages = messages_from_dict(rows)
    assert [m.type for m in messages] == ["human", "chat", "ai"]
    assert messages[1] == ChatMessage("thinking", role="reasoning", id="r1")


def test_unknown_type_without_data_is_named() -> None:
    with pytest.raises(MessageFormatError, match="unknown message type 'mystery'"):
        messages_from_dict([{"type": "mystery"}])


def test_known_type_missing_its_field_is_malformed() -> None:
    with pytest.raises(MessageFormatError, match="malformed message of type 'function'"):
        messages_from_dict([{"type": "function", "data": {"content": "x"}}])
    with pytest.raises(MessageFormatError, match="malformed message of type 'chat'"):
        messages_from_dict([{"type": "chat", "data": {"content": "x"}}])


def test_lc_object_dicts_are_not_loaded() -> None:
    # LangChain's "lc" serialisation names classes to import; we never follow it.
    evil = {"lc": 1, "type": "constructor", "id": ["os", "system"], "kwargs": {"command": "echo"}}
    with pytest.raises(MessageFormatError):
        messages_from_dict([evil])


@pytest.mark.parametrize(
    "bad",
    [
        None,
        "text",
        {"type": "human"},
        {"type": "human", "data": {"content": 5}},
        {"type": "tool", "data": {"content": "x"}},
    ],
)
def test_malformed_dicts(bad: object) -> None:
    with pytest.raises(MessageFormatError):
        messages_from_dict([bad])


def test_dict_layout_matches_langchain_core() -> None:
    for ours, theirs in [
        (HumanMessage("x"), lc_messages.HumanMessage("x")),
        (AIMessage("x"), lc_messages.AIMessage("x")),
        (ToolMessage("x", tool_call_id="1"), lc_messages.ToolMessage("x", tool_call_id="1")),
    ]:
        assert message_to_dict(ours) == lc_messages.message_to_dict(theirs)


def test_reads_langchains_other_message_dicts() -> None:
    # convert_to_messages' flat form and dumpd's constructor envelope, read as it reads them.
    load = pytest.importorskip("langchain_core.load")
    envelope = load.dumpd(lc_messages.ToolMessage("3", tool_call_id="c", artifact=[1], id="t"))
    assert messages_from_dict([
        {"type": "human", "content": "hi", "id": "h"},
        {"role": "assistant", "content": None, "name": "bot"},
        envelope,
        load.dumpd(lc_messages.AIMessageChunk("part", id="a")),
    ]) == [HumanMessage("hi", id="h"), AIMessage("", name="bot"),
           ToolMessage("3", tool_call_id="c", artifact=[1], id="t"), AIMessage("part", id="a")]


@pytest.mark.parametrize("bad", [
    {"lc": 1, "type": "constructor", "id": ["langchain", "Document"], "kwargs": {}},
    {"type": "tool", "content": "x"},
    {"type": "robot", "content": "x"},
])
def test_other_dicts_that_are_not_messages(bad: object) -> None:
    with pytest.raises(MessageFormatError):
        messages_from_dict([bad])
