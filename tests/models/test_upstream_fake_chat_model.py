"""Ported from langchain-core 1.8.4, tests/unit_tests/fake/test_fake_chat_model.py.

Imports threadline's objects instead of LangChain's. The ``_any_id_*`` helpers are
upstream's tests/unit_tests/stubs.py: a message whose id equals any str (threadline's
messages compare ids too, so ``AnyStr`` also defines ``__ne__``). Upstream async tests run
through ``asyncio.run``. ``chunk_position="last"`` is kept in the expected chunks as
upstream writes them (threadline accepts it and does not compare it).

Left out:

- ``test_generic_fake_chat_model_astream_log``: ``astream_log`` (deprecated run-log
  streaming, a tracer feature threadline does not have).
- ``test_callback_handlers``: callbacks (``on_llm_new_token``); its streamed chunks are
  the ones ``test_generic_fake_chat_model_stream`` checks.

``test_fake_messages_list_chat_model_sleep_delay`` sleeps 0.1 s as upstream does (the
``sleep`` option is what it tests).
"""

from __future__ import annotations

import asyncio
import os
import time
from itertools import cycle
from typing import Any, cast

import pytest

from threadline import (
    AIMessage,
    AIMessageChunk,
    FakeListChatModel,
    FakeListLLM,
    FakeMessagesListChatModel,
    FakeStreamingListLLM,
    GenericFakeChatModel,
    HumanMessage,
)
from threadline.models._fake import ParrotFakeChatModel


class AnyStr(str):
    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str)

    def __ne__(self, other: object) -> bool:
        return not isinstance(other, str)

    __hash__ = str.__hash__


def _any_id_ai_message(**kwargs: Any) -> AIMessage:
    message = AIMessage(**kwargs)
    message.id = AnyStr()
    return message


def _any_id_ai_message_chunk(**kwargs: Any) -> AIMessageChunk:
    message = AIMessageChunk(**kwargs)
    message.id = AnyStr()
    return message


def _any_id_human_message(**kwargs: Any) -> HumanMessage:
    message = HumanMessage(**kwargs)
    message.id = AnyStr()
    return message


def test_generic_fake_chat_model_invoke() -> None:
    # Will alternate between responding with hello and goodbye
    infinite_cycle = cycle([AIMessage(content="hello"), AIMessage(content="goodbye")])
    model = GenericFakeChatModel(messages=infinite_cycle)
    response = model.invoke("meow")
    assert response == _any_id_ai_message(content="hello")
    response = model.invoke("kitty")
    assert response == _any_id_ai_message(content="goodbye")
    response = model.invoke("meow")
    assert response == _any_id_ai_message(content="hello")


def test_generic_fake_chat_model_ainvoke() -> None:
    async def main() -> None:
        infinite_cycle = cycle([AIMessage(content="hello"), AIMessage(content="goodbye")])
        model = GenericFakeChatModel(messages=infinite_cycle)
        response = await model.ainvoke("meow")
        assert response == _any_id_ai_message(content="hello")
        response = await model.ainvoke("kitty")
        assert response == _any_id_ai_message(content="goodbye")
        response = await model.ainvoke("meow")
        assert response == _any_id_ai_message(content="hello")

    asyncio.run(main())


def test_generic_fake_chat_model_stream() -> None:
    """Test streaming."""

    async def main() -> None:
        infinite_cycle = cycle([AIMessage(content="hello goodbye")])
        model = GenericFakeChatModel(messages=infinite_cycle)
        chunks = [chunk async for chunk in model.astream("meow")]
        assert chunks == [
            _any_id_ai_message_chunk(content="hello"),
            _any_id_ai_message_chunk(content=" "),
            _any_id_ai_message_chunk(content="goodbye", chunk_position="last"),
        ]
        assert len({chunk.id for chunk in chunks}) == 1

        chunks = list(model.stream("meow"))
        assert chunks == [
            _any_id_ai_message_chunk(content="hello"),
            _any_id_ai_message_chunk(content=" "),
            _any_id_ai_message_chunk(content="goodbye", chunk_position="last"),
        ]
        assert len({chunk.id for chunk in chunks}) == 1

        # Test streaming of additional kwargs.
        # Relying on insertion order of the additional kwargs dict
        message = AIMessage(content="", additional_kwargs={"foo": 42, "bar": 24})
        model = GenericFakeChatModel(messages=cycle([message]))
        chunks = [chunk async for chunk in model.astream("meow")]
        assert chunks == [
            _any_id_ai_message_chunk(content="", additional_kwargs={"foo": 42}),
            _any_id_ai_message_chunk(content="", additional_kwargs={"bar": 24}),
            _any_id_ai_message_chunk(content="", chunk_position="last"),
        ]
        assert len({chunk.id for chunk in chunks}) == 1

        message = AIMessage(
            content="",
            additional_kwargs={
                "function_call": {
                    "name": "move_file",
                    "arguments": '{\n  "source_path": "foo",\n  "'
                    'destination_path": "bar"\n}',
                }
            },
        )
        model = GenericFakeChatModel(messages=cycle([message]))
        chunks = [chunk async for chunk in model.astream("meow")]

        assert chunks == [
            _any_id_ai_message_chunk(
                content="",
                additional_kwargs={"function_call": {"name": "move_file"}},
            ),
            _any_id_ai_message_chunk(
                content="",
                additional_kwargs={
                    "function_call": {"arguments": '{\n  "source_path": "foo"'},
                },
            ),
            _any_id_ai_message_chunk(
                content="", additional_kwargs={"function_call": {"arguments": ","}}
            ),
            _any_id_ai_message_chunk(
                content="",
                additional_kwargs={
                    "function_call": {"arguments": '\n  "destination_path": "bar"\n}'},
                },
            ),
            _any_id_ai_message_chunk(content="", chunk_position="last"),
        ]
        assert len({chunk.id for chunk in chunks}) == 1

        accumulate_chunks = None
        for chunk in chunks:
            if accumulate_chunks is None:
                accumulate_chunks = chunk
            else:
                accumulate_chunks += chunk

        assert accumulate_chunks == AIMessageChunk(
            content="",
            additional_kwargs={
                "function_call": {
                    "name": "move_file",
                    "arguments": '{\n  "source_path": "foo",\n  "'
                    'destination_path": "bar"\n}',
                }
            },
            id=chunks[0].id,
            chunk_position="last",
        )

    asyncio.run(main())


def test_chat_model_inputs() -> None:
    fake = ParrotFakeChatModel()

    assert cast("HumanMessage", fake.invoke("hello")) == _any_id_human_message(
        content="hello"
    )
    assert fake.invoke([("ai", "blah")]) == _any_id_ai_message(content="blah")
    assert fake.invoke([AIMessage(content="blah")]) == _any_id_ai_message(content="blah")


def test_fake_list_chat_model_batch() -> None:
    expected = [
        _any_id_ai_message(content="a"),
        _any_id_ai_message(content="b"),
        _any_id_ai_message(content="c"),
    ]
    for _ in range(20):
        # run this 20 times to test race condition in batch
        fake = FakeListChatModel(responses=["a", "b", "c"])
        resp = fake.batch(["1", "2", "3"])
        assert resp == expected


def test_fake_messages_list_chat_model_sleep_delay() -> None:
    sleep_time = 0.1
    model = FakeMessagesListChatModel(
        responses=[AIMessage(content="A"), AIMessage(content="B")],
        sleep=sleep_time,
    )
    messages = [HumanMessage(content="C")]

    start = time.time()
    model.invoke(messages)
    elapsed = time.time() - start

    assert elapsed >= sleep_time


# -- beyond the upstream suite: ids, tool calls, the LLM fakes ---------------------------------


def test_fake_model_ids_look_like_langchain_ones_and_are_unique() -> None:
    model = FakeListChatModel(responses=["a b"])
    ids = {model.invoke("x").id for _ in range(100)}
    assert len(ids) == 100
    assert all(i is not None and i.startswith("lc_run--") for i in ids)
    chunks = list(model.stream("x"))
    assert len({c.id for c in chunks}) == 1 and chunks[0].id not in ids


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_process_does_not_repeat_the_parents_ids() -> None:
    # Stores dedupe appends by id: a forked worker repeating ids would lose answers.
    model = FakeListChatModel(responses=["a"])
    model.invoke("warm up")
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next id, then leave without pytest's cleanup
        os.write(write_end, str(model.invoke("x").id).encode())
        os._exit(0)
    os.close(write_end)
    os.waitpid(pid, 0)
    with os.fdopen(read_end) as pipe:
        child_id = pipe.read()
    assert child_id.startswith("lc_run--")
    assert child_id != model.invoke("x").id


def test_a_given_id_is_kept_and_the_given_message_not_changed() -> None:
    given = AIMessage("hi")
    model = FakeMessagesListChatModel(responses=[given, AIMessage("x", id="mine")])
    first = model.invoke("q")
    assert first.id is not None and given.id is None
    assert model.invoke("q").id == "mine"


def test_generic_fake_chat_model_streams_tool_calls() -> None:
    call = {"name": "move_file", "args": {"source": "a"}, "id": "call_1", "type": "tool_call"}
    model = GenericFakeChatModel(messages=iter([AIMessage("ok", tool_calls=[call])]))
    chunks = list(model.stream("x"))
    total = chunks[0]
    for chunk in chunks[1:]:
        total += chunk
    assert total.to_message().tool_calls == [call]
    assert total.content == "ok"


def test_generic_fake_chat_model_takes_str_and_runs_out() -> None:
    model = GenericFakeChatModel(messages=iter(["one"]))
    assert model.invoke("x").content == "one"
    try:
        model.invoke("x")
    except ValueError as exc:
        assert "no messages left" in str(exc)
    else:
        raise AssertionError("expected an error once the messages run out")


def test_fake_list_llm_cycles_and_streams() -> None:
    llm = FakeListLLM(responses=["a", "b"])
    assert [llm.invoke("x"), llm.invoke("x"), llm.invoke("x")] == ["a", "b", "a"]
    assert list(FakeStreamingListLLM(responses=["hey"]).stream("x")) == ["h", "e", "y"]
    assert asyncio.run(FakeListLLM(responses=["z"]).ainvoke("x")) == "z"


def test_llm_subclass_in_a_chain_and_with_fields() -> None:
    from threadline import LLM, ChatPromptTemplate, PromptTemplate

    class Echo(LLM):
        prefix: str = ""

        @property
        def _llm_type(self) -> str:
            return "echo"

        def _call(self, prompt: str, stop: list[str] | None = None, run_manager: Any = None,
                  **kwargs: Any) -> str:
            return self.prefix + prompt

    llm = Echo(prefix="> ")
    assert (PromptTemplate("Say {x}") | llm).invoke({"x": "hi"}) == "> Say hi"
    chat = ChatPromptTemplate.from_messages([("system", "sys"), ("human", "{x}")])
    assert (chat | llm).invoke({"x": "hi"}) == "> System: sys\nHuman: hi"
    assert llm.batch(["a", "b"]) == ["> a", "> b"]
    assert list(llm.stream("a")) == ["> a"]
    assert asyncio.run(llm.ainvoke("a")) == "> a"
    with pytest.raises(ValueError, match="unexpected keyword argument 'nope'"):
        Echo(nope=1)
