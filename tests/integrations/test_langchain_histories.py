"""LangChain-typed histories on threadline stores, inside LangChain's own classes."""

from __future__ import annotations

import asyncio
import secrets
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import require_server
from langchain_core import chat_history as lc_history
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables.history import RunnableWithMessageHistory

import threadline
from threadline import InputError, open_store
from threadline.langchain import (
    FileChatMessageHistory,
    LangChainHistory,
    PostgresChatMessageHistory,
    RedisChatMessageHistory,
    SQLChatMessageHistory,
    history_factory,
)
from threadline.stores import shared_store

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning",
                                        "ignore::PendingDeprecationWarning")

PG = "postgresql://postgres@127.0.0.1:5432/test"
MYSQL = "mysql://root@127.0.0.1:3306/test"
REDIS = "redis://127.0.0.1:6379/0"


def _unique(prefix: str = "lc") -> str:
    return f"{prefix}_{secrets.token_hex(4)}"


@pytest.fixture(params=["memory", "sqlite", "file", "postgresql", "mysql", "redis"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    kind = request.param
    if kind == "memory":
        yield f"memory://?x={_unique()}"  # a fresh shared store per test
        return
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'chat.db'}"
        return
    if kind == "file":
        yield f"file://{tmp_path / 'sessions'}"
        return
    host, port = {"postgresql": ("127.0.0.1", 5432), "mysql": ("127.0.0.1", 3306),
                  "redis": ("127.0.0.1", 6379)}[kind]
    require_server(host, port, kind)
    if kind == "redis":
        full = f"{REDIS}?key_prefix={_unique()}:"
    else:
        full = f"{PG if kind == 'postgresql' else MYSQL}?table={_unique()}"
    yield full
    store = open_store(full)
    store.destroy()  # type: ignore[attr-defined]
    store.close()


def test_is_a_langchain_history_on_every_store(url: str) -> None:
    if url.startswith("memory://"):
        url = "memory://"
    store = open_store(url)
    history = LangChainHistory(store, "s1")
    assert isinstance(history, lc_history.BaseChatMessageHistory)
    history.add_messages([HumanMessage("hi", id="h1"), AIMessage("hello", id="a1")])
    history.add_user_message("more")
    assert history.messages == [HumanMessage("hi", id="h1"), AIMessage("hello", id="a1"),
                                HumanMessage("more")]
    assert history.get_messages(last=1) == [HumanMessage("more")]
    assert [type(m) for m in store.get_messages("s1")] == [
        threadline.HumanMessage, threadline.AIMessage, threadline.HumanMessage]

    async def async_side() -> list[Any]:
        await history.aadd_messages([ToolMessage("3", tool_call_id="c1")])
        return await history.aget_messages()

    assert asyncio.run(async_side())[-1] == ToolMessage("3", tool_call_id="c1")
    history.clear()
    assert history.messages == []
    store.close()


def test_inside_langchains_runnable_with_message_history(url: str) -> None:
    if url.startswith("memory://"):
        url = "memory://"
    prompt = ChatPromptTemplate.from_messages([("placeholder", "{history}"),
                                               ("human", "{question}")])
    seen: list[int] = []

    def model(value: Any) -> AIMessage:
        messages = value.to_messages()
        seen.append(len(messages))
        return AIMessage(f"answer {len(messages)}")

    chain = RunnableWithMessageHistory(prompt | model | StrOutputParser(),
                                       history_factory(url, ttl=3600),
                                       input_messages_key="question",
                                       history_messages_key="history")
    config = {"configurable": {"session_id": "s1"}}
    assert chain.invoke({"question": "one"}, config=config) == "answer 1"
    assert chain.invoke({"question": "two"}, config=config) == "answer 3"
    assert asyncio.run(chain.ainvoke({"question": "three"}, config=config)) == "answer 5"
    assert seen == [1, 3, 5]
    assert [m.content for m in shared_store(url).get_messages("s1")] == [
        "one", "answer 1", "two", "answer 3", "three", "answer 5"]


def test_inside_langchain_classic_conversation_buffer_memory(url: str) -> None:
    from langchain_classic.chains import ConversationChain
    from langchain_classic.memory import ConversationBufferMemory

    if url.startswith("memory://"):
        url = "memory://"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        memory = ConversationBufferMemory(chat_memory=LangChainHistory(url, "legacy"))
        chain = ConversationChain(llm=FakeListChatModel(responses=["Hi!", "Fine."]),
                                  memory=memory)
        assert chain.predict(input="Hello") == "Hi!"
        assert chain.predict(input="How are you?") == "Fine."
        assert memory.load_memory_variables({})["history"] == (
            "Human: Hello\nAI: Hi!\nHuman: How are you?\nAI: Fine.")


def test_drop_ins_take_langchains_constructors(tmp_path: Path) -> None:
    require_server("127.0.0.1", 5432, "PostgreSQL")
    require_server("127.0.0.1", 6379, "Redis")
    table, prefix = _unique(), _unique() + ":"
    made = [
        SQLChatMessageHistory("s1", connection=f"sqlite:///{tmp_path / 'sql.db'}"),
        SQLChatMessageHistory(session_id="s1", connection_string=f"{PG}", table_name=table),
        PostgresChatMessageHistory("s2", PG, table),
        RedisChatMessageHistory("s1", url=REDIS, key_prefix=prefix, ttl=60),
        FileChatMessageHistory(str(tmp_path / "history.json")),
    ]
    try:
        for history in made:
            assert isinstance(history, lc_history.BaseChatMessageHistory), history
            history.add_messages([HumanMessage("hi"), AIMessage("hello")])
            assert history.messages == [HumanMessage("hi"), AIMessage("hello")], history
        assert made[3].key == prefix + "s1"  # the native class's attributes pass through
        assert made[4].file_path == tmp_path / "history.json"
        # The two PostgreSQL classes share the table.
        assert open_store(f"{PG}?table={table}").list_sessions().session_ids == ["s1", "s2"]
    finally:
        made[3].clear()
        store = open_store(f"{PG}?table={table}")
        store.destroy()  # type: ignore[attr-defined]
        store.close()


def test_drop_in_with_langchain_postgres_connection_shape() -> None:
    require_server("127.0.0.1", 5432, "PostgreSQL")
    import psycopg

    table = _unique()
    with psycopg.connect(PG, autocommit=True) as conn:
        PostgresChatMessageHistory.create_tables(conn, table)
        history = PostgresChatMessageHistory(table, "4a9c4c6b-1c35-4d43-a0a1-3e1f0c3c4f8e",
                                             sync_connection=conn)
        history.add_messages([HumanMessage("hi")])
        assert history.messages == [HumanMessage("hi")]
        PostgresChatMessageHistory.drop_table(conn, table)


def test_wrapping_a_threadline_history() -> None:
    native = threadline.InMemoryChatMessageHistory()
    history = LangChainHistory(native)
    history.add_messages([HumanMessage("hi")])
    assert native.get_messages() == [threadline.HumanMessage("hi")]
    assert history.messages == [HumanMessage("hi")]
    with pytest.raises(InputError, match="carries its own session"):
        LangChainHistory(native, "s1")
    with pytest.raises(InputError, match="needs a session_id"):
        LangChainHistory("memory://")
    with pytest.raises(InputError, match="takes a store URL"):
        LangChainHistory(42)  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ["sync", "async", "stream"])
def test_a_threadline_history_given_to_langchain_fails_loudly(mode: str) -> None:
    store = open_store("memory://")
    chain = RunnableWithMessageHistory(
        ChatPromptTemplate.from_messages([("placeholder", "{h}"), ("human", "{q}")])
        | FakeListChatModel(responses=["x"]),
        store.history,  # a threadline history, not a LangChain one
        input_messages_key="q", history_messages_key="h")
    config = {"configurable": {"session_id": "s"}}
    with pytest.raises(InputError, match=r"threadline\.langchain\.LangChainHistory"):
        if mode == "sync":
            chain.invoke({"q": "hi"}, config=config)
        elif mode == "async":
            asyncio.run(chain.ainvoke({"q": "hi"}, config=config))
        else:
            list(chain.stream({"q": "hi"}, config=config))
    assert store.get_messages("s") == []  # nothing half-stored


@pytest.mark.parametrize("kind", ["sql-sqlite", "sql-postgresql", "postgres", "redis", "file"])
def test_each_drop_in_inside_langchains_own_classes(kind: str, tmp_path: Path) -> None:
    from langchain_classic.memory import ConversationBufferMemory

    if kind != "sql-sqlite" and kind != "file":
        require_server("127.0.0.1", 6379 if kind == "redis" else 5432, kind)
    table, prefix = _unique(), _unique() + ":"

    def make(session_id: str) -> lc_history.BaseChatMessageHistory:
        if kind == "sql-sqlite":
            return SQLChatMessageHistory(session_id, connection=f"sqlite:///{tmp_path}/a.db")
        if kind == "sql-postgresql":
            return SQLChatMessageHistory(session_id, connection=PG, table_name=table)
        if kind == "postgres":
            return PostgresChatMessageHistory(session_id, PG, table)
        if kind == "redis":
            return RedisChatMessageHistory(session_id, url=REDIS, key_prefix=prefix)
        return FileChatMessageHistory(str(tmp_path / f"{session_id}.json"))

    chain = RunnableWithMessageHistory(
        ChatPromptTemplate.from_messages([("placeholder", "{h}"), ("human", "{q}")])
        | FakeListChatModel(responses=["one", "two"]), make,
        input_messages_key="q", history_messages_key="h")
    try:
        for question in ("a", "b"):
            chain.invoke({"q": question}, config={"configurable": {"session_id": "s1"}})
        assert [m.content for m in make("s1").messages] == ["a", "one", "b", "two"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            memory = ConversationBufferMemory(chat_memory=make("s2"))
            memory.save_context({"input": "hi"}, {"output": "hello"})
            assert memory.load_memory_variables({})["history"] == "Human: hi\nAI: hello"
    finally:
        for sid in ("s1", "s2"):
            make(sid).clear()
        if kind in ("sql-postgresql", "postgres"):
            store = open_store(f"{PG}?table={table}")
            store.destroy()  # type: ignore[attr-defined]
            store.close()
