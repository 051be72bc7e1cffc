from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import pytest

from threadline import (
    AIMessage,
    AIMessageChunk,
    BaseChatModel,
    BaseMessage,
    ChatPromptTemplate,
    ConfigurableFieldSpec,
    EchoChatModel,
    FakeListChatModel,
    HumanMessage,
    InMemoryChatMessageHistory,
    InputError,
    MissingConfigError,
    ModelError,
    RunnableLambda,
    RunnableWithMessageHistory,
    StrOutputParser,
    SystemMessage,
    messages_to_dict,
)


class CountingHistory(InMemoryChatMessageHistory):
    def __init__(self) -> None:
        super().__init__()
        self.add_calls = 0

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        self.add_calls += 1
        super().add_messages(messages)


class Sessions(dict[str, CountingHistory]):
    def get(self, session_id: str) -> CountingHistory:  # type: ignore[override]
        return self.setdefault(session_id, CountingHistory())


def chat_chain(model: Any = None) -> Any:
    prompt = ChatPromptTemplate.from_messages(
        [("system", "You are helpful."), ("placeholder", "{chat_history}"), ("human", "{input}")]
    )
    return (
        prompt
        | (model or FakeListChatModel(responses=["Hello Bob!", "Your name is Bob."]))
        | StrOutputParser()
    )


def wrapped(sessions: Sessions, model: Any = None) -> RunnableWithMessageHistory:
    return RunnableWithMessageHistory(
        chat_chain(model),
        sessions.get,
        input_messages_key="input",
        history_messages_key="chat_history",
    )


def test_remembers_and_stores_one_batch_per_turn() -> None:
    sessions = Sessions()
    chain = wrapped(sessions, EchoChatModel(prefix="echo: "))
    config = {"configurable": {"session_id": "s1"}}
    assert chain.invoke({"input": "my name is Bob"}, config=config) == "echo: my name is Bob"
    assert chain.invoke({"input": "what is my name?"}, session_id="s1") == "echo: what is my name?"
    history = sessions["s1"]
    assert history.messages == [
        HumanMessage("my name is Bob"),
        AIMessage("echo: my name is Bob"),
        HumanMessage("what is my name?"),
        AIMessage("echo: what is my name?"),
    ]
    assert history.add_calls == 2
    chain.invoke({"input": "x"}, session_id="other")
    assert len(sessions["s1"].messages) == 4


def test_history_reaches_the_prompt() -> None:
    seen: list[list[BaseMessage]] = []

    def spy(value: Any) -> Any:
        seen.append(value.to_messages())
        return AIMessage("ok")

    prompt = ChatPromptTemplate.from_messages([("placeholder", "{h}"), ("human", "{q}")])
    sessions = Sessions()
    chain = RunnableWithMessageHistory(
        prompt | spy, sessions.get, input_messages_key="q", history_messages_key="h"
    )
    chain.invoke({"q": "one"}, session_id="s")
    chain.invoke({"q": "two"}, session_id="s")
    assert seen[1] == [HumanMessage("one"), AIMessage("ok"), HumanMessage("two")]


def test_message_inputs_without_history_key_get_history_prepended() -> None:
    sessions = Sessions()
    received: list[Any] = []

    def model(messages: list[BaseMessage]) -> AIMessage:
        received.append(messages)
        return AIMessage(f"n={len(messages)}")

    chain = RunnableWithMessageHistory(RunnableLambda(model), sessions.get)
    assert chain.invoke("hi", session_id="a").content == "n=1"
    assert chain.invoke(HumanMessage("again"), session_id="a").content == "n=3"
    chain.invoke([SystemMessage("s"), HumanMessage("list")], session_id="a")
    assert received[2][-2:] == [SystemMessage("s"), HumanMessage("list")]
    assert len(sessions["a"].messages) == 7


def test_dict_input_with_messages_key_only() -> None:
    sessions = Sessions()
    received: list[Any] = []

    def runnable(value: dict[str, Any]) -> dict[str, Any]:
        received.append(value)
        return {"answer": "x", "other": 1}

    chain = RunnableWithMessageHistory(
        runnable, sessions.get, input_messages_key="question", output_messages_key="answer"
    )
    chain.invoke({"question": "q1", "k": 1}, session_id="a")
    chain.invoke({"question": "q2", "k": 1}, session_id="a")
    assert received[1]["question"] == [HumanMessage("q1"), AIMessage("x"), HumanMessage("q2")]
    assert received[1]["k"] == 1


def test_output_shapes() -> None:
    for output, stored in [
        ("text", [AIMessage("text")]),
        (AIMessage("m"), [AIMessage("m")]),
        (AIMessageChunk("c"), [AIMessage("c")]),
        ([AIMessage("a"), AIMessage("b")], [AIMessage("a"), AIMessage("b")]),
        ({"output": "o", "x": 1}, [AIMessage("o")]),
        ({"only": "one"}, [AIMessage("one")]),
    ]:
        sessions = Sessions()
        chain = RunnableWithMessageHistory(RunnableLambda(lambda _, out=output: out), sessions.get)
        chain.invoke("q", session_id="s")
        assert sessions["s"].messages[1:] == stored, output


def test_bad_output_and_input_are_clear_errors_and_store_nothing() -> None:
    sessions = Sessions()
    chain = RunnableWithMessageHistory(RunnableLambda(lambda _: 42), sessions.get)
    with pytest.raises(InputError, match="Cannot store an output of type int"):
        chain.invoke("q", session_id="s")
    assert sessions["s"].messages == []
    with pytest.raises(InputError, match="cannot read the new message"):
        chain.invoke(3.5, session_id="s")
    keyed = RunnableWithMessageHistory(
        chat_chain(), sessions.get, input_messages_key="input", history_messages_key="chat_history"
    )
    with pytest.raises(InputError, match="must be a dict"):
        keyed.invoke("plain", session_id="s")
    with pytest.raises(InputError, match="no key 'input'"):
        keyed.invoke({"question": "x", "y": 1}, session_id="s")


def test_missing_session_id_is_a_clear_error() -> None:
    chain = wrapped(Sessions())
    with pytest.raises(MissingConfigError) as info:
        chain.invoke({"input": "x"})
    assert info.value.missing == ["session_id"]
    assert "session_id" in str(info.value)
    with pytest.raises(InputError, match="unexpected keyword"):
        chain.invoke({"input": "x"}, session_id="a", sesion="typo")


def test_history_factory_config_passes_keys_by_name() -> None:
    calls: list[tuple[str, str]] = []
    histories: dict[tuple[str, str], InMemoryChatMessageHistory] = {}

    def get_history(user_id: str, conversation_id: str) -> InMemoryChatMessageHistory:
        calls.append((user_id, conversation_id))
        return histories.setdefault((user_id, conversation_id), InMemoryChatMessageHistory())

    chain = RunnableWithMessageHistory(
        chat_chain(),
        get_history,
        input_messages_key="input",
        history_messages_key="chat_history",
        history_factory_config=[
            ConfigurableFieldSpec(
                id="user_id",
                annotation=str,
                name="User ID",
                description="",
                default="",
                is_shared=True,
            ),
            ConfigurableFieldSpec(
                id="conversation_id",
                annotation=str,
                name="Conversation ID",
                description="",
                default="",
                is_shared=True,
            ),
        ],
    )
    chain.invoke(
        {"input": "hi"}, config={"configurable": {"user_id": "u1", "conversation_id": "c1"}}
    )
    chain.invoke({"input": "hi"}, user_id="u1", conversation_id="c2")
    assert calls == [("u1", "c1"), ("u1", "c2")]
    assert len(histories[("u1", "c1")].messages) == 2


def test_history_factory_config_missing_key_is_named() -> None:
    chain = RunnableWithMessageHistory(
        chat_chain(),
        lambda user_id, conversation_id: InMemoryChatMessageHistory(),
        input_messages_key="input",
        history_messages_key="chat_history",
        history_factory_config=[
            ConfigurableFieldSpec(id="user_id", annotation=str),
            ConfigurableFieldSpec(id="conversation_id", annotation=str),
        ],
    )
    with pytest.raises(MissingConfigError) as info:
        chain.invoke({"input": "x"}, config={"configurable": {"user_id": "u"}})
    assert info.value.missing == ["conversation_id"]


def test_stream_stores_the_whole_answer_once() -> None:
    sessions = Sessions()
    chain = wrapped(sessions, FakeListChatModel(responses=["one two three"]))
    pieces = list(chain.stream({"input": "q"}, session_id="s"))
    assert pieces == ["one", " two", " three"]
    stored = sessions["s"].messages
    assert stored == [HumanMessage("q"), AIMessage("one two three")]
    assert type(stored[1]) is AIMessage
    assert sessions["s"].add_calls == 1


def test_abandoned_stream_stores_nothing() -> None:
    sessions = Sessions()
    chain = wrapped(sessions, FakeListChatModel(responses=["one two three"]))
    stream = chain.stream({"input": "q"}, session_id="s")
    assert next(stream) == "one"
    stream.close()
    assert sessions["s"].messages == []


def test_failing_model_stores_nothing() -> None:
    sessions = Sessions()
    chain = wrapped(
        sessions, FakeListChatModel(responses=["one two three"], error_on_chunk_number=2)
    )
    with pytest.raises(ModelError):
        list(chain.stream({"input": "q"}, session_id="s"))
    with pytest.raises(ModelError):
        asyncio.run(_collect(chain.astream({"input": "q"}, session_id="s")))

    def boom(_: Any) -> str:
        raise RuntimeError("boom")

    failing = RunnableWithMessageHistory(RunnableLambda(boom), sessions.get)
    with pytest.raises(RuntimeError):
        failing.invoke("q", session_id="s")
    with pytest.raises(RuntimeError):
        asyncio.run(failing.ainvoke("q", session_id="s"))
    assert sessions["s"].messages == []


async def _collect(stream: AsyncIterator[Any]) -> list[Any]:
    return [piece async for piece in stream]


class UsageModel(BaseChatModel):
    def _generate(
        self, messages: list[BaseMessage], *, stop: list[str] | None = None, **kwargs: Any
    ) -> AIMessage:
        return AIMessage(
            "ab", usage_metadata={"input_tokens": 1, "output_tokens": 2, "total_tokens": 3}
        )

    def _stream(
        self, messages: list[BaseMessage], *, stop: list[str] | None = None, **kwargs: Any
    ) -> Iterator[AIMessageChunk]:
        yield AIMessageChunk("a", id="run-1")
        yield AIMessageChunk(
            "b", usage_metadata={"input_tokens": 1, "output_tokens": 2, "total_tokens": 3}
        )


def test_wrapped_model_stream_stores_message_with_usage() -> None:
    sessions = Sessions()
    chain = RunnableWithMessageHistory(UsageModel(), sessions.get)
    chunks = list(chain.stream("q", session_id="s"))
    assert all(isinstance(c, AIMessageChunk) for c in chunks)
    stored = sessions["s"].messages[1]
    assert type(stored) is AIMessage
    assert stored == AIMessage(
        "ab", id="run-1", usage_metadata={"input_tokens": 1, "output_tokens": 2, "total_tokens": 3}
    )


def test_async_paths_with_sync_and_async_factories() -> None:
    sessions = Sessions()

    async def afactory(session_id: str) -> CountingHistory:
        await asyncio.sleep(0)
        return sessions.get(session_id)

    async def run() -> None:
        for factory in (sessions.get, afactory):
            chain = RunnableWithMessageHistory(
                chat_chain(EchoChatModel()),
                factory,
                input_messages_key="input",
                history_messages_key="chat_history",
            )
            assert await chain.ainvoke({"input": "a b"}, session_id="s") == "a b"
            assert await _collect(chain.astream({"input": "c d"}, session_id="s")) == ["c", " d"]

    asyncio.run(run())
    assert [m.content for m in sessions["s"].messages] == ["a b", "a b", "c d", "c d"] * 2
    sync_chain = RunnableWithMessageHistory(
        chat_chain(), afactory, input_messages_key="input", history_messages_key="chat_history"
    )
    with pytest.raises(InputError, match="async"):
        sync_chain.invoke({"input": "x"}, session_id="s")


def test_batch_keeps_sessions_apart() -> None:
    sessions = Sessions()
    chain = wrapped(sessions, EchoChatModel())
    out = chain.batch(
        [{"input": "a"}, {"input": "b"}],
        [{"configurable": {"session_id": "x"}}, {"configurable": {"session_id": "y"}}],
    )
    assert out == ["a", "b"]
    assert sessions["x"].messages[0] == HumanMessage("a")
    assert sessions["y"].messages[0] == HumanMessage("b")


def test_same_stored_messages_as_langchain() -> None:
    lc_history = pytest.importorskip("langchain_core.runnables.history")
    from langchain_core.chat_history import InMemoryChatMessageHistory as LCHistory
    from langchain_core.language_models.fake_chat_models import FakeListChatModel as LCFake
    from langchain_core.output_parsers import StrOutputParser as LCParser
    from langchain_core.prompts import ChatPromptTemplate as LCPrompt

    lc_store: dict[str, Any] = {}
    lc_chain = lc_history.RunnableWithMessageHistory(
        LCPrompt.from_messages(
            [("system", "s"), ("placeholder", "{chat_history}"), ("human", "{input}")]
        )
        | LCFake(responses=["r1", "r2"])
        | LCParser(),
        lambda sid: lc_store.setdefault(sid, LCHistory()),
        input_messages_key="input",
        history_messages_key="chat_history",
    )
    sessions = Sessions()
    ours = RunnableWithMessageHistory(
        ChatPromptTemplate.from_messages(
            [("system", "s"), ("placeholder", "{chat_history}"), ("human", "{input}")]
        )
        | FakeListChatModel(responses=["r1", "r2"])
        | StrOutputParser(),
        sessions.get,
        input_messages_key="input",
        history_messages_key="chat_history",
    )
    for text in ["hello", "again"]:
        cfg = {"configurable": {"session_id": "s"}}
        assert lc_chain.invoke({"input": text}, config=cfg) == ours.invoke(
            {"input": text}, config=cfg
        )
    from langchain_core.messages import messages_to_dict as lc_to_dict

    assert messages_to_dict(sessions["s"].messages) == lc_to_dict(lc_store["s"].messages)
