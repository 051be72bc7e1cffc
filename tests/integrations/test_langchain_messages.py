"""Messages across the LangChain boundary: every type, both ways, nothing lost."""

from __future__ import annotations

import pytest
from langchain_core import messages as lc

import threadline
from threadline import InMemoryChatMessageHistory, InputError, open_store
from threadline.langchain import from_langchain, to_langchain

# One of each LangChain message type, with every field it has set.
LC_MESSAGES = [
    lc.SystemMessage("be brief", id="s1", name="sys", additional_kwargs={"k": 1}),
    lc.HumanMessage(["look", {"type": "image_url", "image_url": {"url": "data:x"}}],
                    name="ada", id="h1", response_metadata={"r": "m"}),
    lc.AIMessage(
        "calling", id="a1",
        tool_calls=[{"name": "add", "args": {"a": 1}, "id": "call_1", "type": "tool_call"}],
        invalid_tool_calls=[{"name": "bad", "args": "{x", "id": "call_2", "error": "json",
                             "type": "invalid_tool_call"}],
        usage_metadata={"input_tokens": 5, "output_tokens": 2, "total_tokens": 7},
        response_metadata={"model_name": "m", "finish_reason": "tool_calls"}),
    lc.ToolMessage("3", tool_call_id="call_1", artifact={"raw": [1, 2]}, status="error",
                   id="t1", name="add"),
    lc.ChatMessage("looks good", role="critic", id="c1"),
    lc.FunctionMessage("42", name="answer", id="f1"),
    lc.RemoveMessage(id="gone-1"),
    lc.AIMessageChunk("Hel", id="ac1", tool_call_chunks=[
        {"name": "add", "args": '{"a"', "id": "call_3", "index": 0, "type": "tool_call_chunk"}]),
    lc.HumanMessageChunk("hu", id="hc1"),
    lc.SystemMessageChunk("sy", id="sc1"),
    lc.ToolMessageChunk("to", tool_call_id="call_1", id="tc1"),
    lc.ChatMessageChunk("ch", role="critic", id="cc1"),
    lc.FunctionMessageChunk("fu", name="answer", id="fc1"),
]


@pytest.mark.parametrize("message", LC_MESSAGES, ids=lambda m: type(m).__name__)
def test_round_trip_of_every_type(message: object) -> None:
    ours = from_langchain(message)
    assert type(ours).__name__ == type(message).__name__  # same class name, our class
    back = to_langchain(ours)
    assert type(back) is type(message)
    assert back == message
    assert lc.message_to_dict(back) == lc.message_to_dict(message)  # every field


@pytest.mark.parametrize("message", LC_MESSAGES, ids=lambda m: type(m).__name__)
def test_every_type_round_trips_through_a_store(message: object) -> None:
    store = open_store("memory://")
    other = open_store("sqlite://")  # serialised to JSON and back
    for s in (store, other):
        s.append("s", [message])  # a LangChain message straight into a store
        assert to_langchain(s.get_messages("s")) == [message]


def test_lists_and_passthrough() -> None:
    ours = from_langchain(LC_MESSAGES)
    assert len(ours) == len(LC_MESSAGES)
    assert from_langchain(ours) == ours  # threadline messages pass through
    assert to_langchain(LC_MESSAGES) == LC_MESSAGES


def test_histories_take_langchain_messages() -> None:
    history = InMemoryChatMessageHistory()
    history.add_messages([lc.HumanMessage("hi"), lc.AIMessage("hello")])
    history.add_message(lc.HumanMessage("again"))
    assert history.get_messages() == [threadline.HumanMessage("hi"),
                                      threadline.AIMessage("hello"),
                                      threadline.HumanMessage("again")]


def test_convert_to_messages_takes_langchain_messages_and_prompt_values() -> None:
    from langchain_core.prompts import ChatPromptTemplate

    value = ChatPromptTemplate.from_messages([("system", "s"), ("human", "{q}")]).invoke(
        {"q": "hi"})
    assert threadline.convert_to_messages(value) == [threadline.SystemMessage("s"),
                                                     threadline.HumanMessage("hi")]
    assert threadline.convert_to_messages([lc.HumanMessage("a"), ("ai", "b")]) == [
        threadline.HumanMessage("a"), threadline.AIMessage("b")]


def test_a_langchain_object_that_is_no_message_is_named() -> None:
    from langchain_core.documents import Document

    with pytest.raises(InputError, match="got a langchain_core Document, which is not a"):
        InMemoryChatMessageHistory().add_messages([Document("text")])  # type: ignore[list-item]
    with pytest.raises(InputError, match="wrap text in HumanMessage"):
        InMemoryChatMessageHistory().add_messages(["text"])  # type: ignore[list-item]


def test_chunks_add_like_langchain() -> None:
    for cls, kwargs in ((threadline.HumanMessageChunk, {}),
                        (threadline.ChatMessageChunk, {"role": "critic"}),
                        (threadline.ToolMessageChunk, {"tool_call_id": "c"})):
        total = cls("a", **kwargs) + cls("b", **kwargs)
        assert type(total) is cls and total.content == "ab"
        lc_total = to_langchain(cls("a", **kwargs)) + to_langchain(cls("b", **kwargs))
        assert to_langchain(total) == lc_total
    with pytest.raises(InputError, match="different roles"):
        threadline.ChatMessageChunk("a", role="x") + threadline.ChatMessageChunk("b", role="y")
    assert threadline.HumanMessageChunk("a").to_message() == threadline.HumanMessage("a")


def test_get_buffer_string_matches_langchain() -> None:
    ours = threadline.get_buffer_string(from_langchain(LC_MESSAGES[:7]))
    theirs = lc.get_buffer_string([m for m in LC_MESSAGES[:7]
                                   if not isinstance(m, lc.RemoveMessage)])
    assert ours.split("\n")[:6] == theirs.split("\n")[:6]
