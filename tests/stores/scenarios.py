"""Failure scenarios the SQL-server backends share: each test module runs them against
its own private server or closed port."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from threadline import AIMessage, HumanMessage, StoreConnectionError
from threadline.stores import Store, open_store


def turn(n: int) -> list[HumanMessage | AIMessage]:
    return [HumanMessage(f"q{n}"), AIMessage(f"a{n}")]


def contents(messages: list[object]) -> list[str]:
    return [m.content for m in messages]  # type: ignore[attr-defined]


def server_down_at_start(url: str) -> str:
    """A store on a closed port fails within its connect timeout, sync and async, and the
    error never shows the password; returns the sync error's text."""
    store = open_store(url)  # lazy: opening never blocks
    started = time.monotonic()
    with pytest.raises(StoreConnectionError) as info:
        store.append("s", turn(1))
    assert time.monotonic() - started < 4
    assert "pw-secret" not in str(info.value)

    async def main() -> None:
        with pytest.raises(StoreConnectionError):
            await store.aget_messages("s")

    started = time.monotonic()
    asyncio.run(main())
    assert time.monotonic() - started < 4
    store.close()
    return str(info.value)


def restart_mid_conversation(store: Store, restart: Callable[[], None]) -> None:
    """Restarts between sync writes, before a read and inside one event loop: every call
    reconnects, nothing is lost or duplicated."""
    store.append("conv", turn(1))
    assert contents(store.get_messages("conv")) == ["q1", "a1"]
    asyncio.run(store.aappend("conv", turn(2)))

    restart()
    store.append("conv", turn(3))  # the dead pooled connection is replaced
    assert contents(store.get_messages("conv")) == ["q1", "a1", "q2", "a2", "q3", "a3"]

    restart()
    assert contents(store.get_messages("conv", last=2)) == ["q3", "a3"]  # read first

    async def async_turns() -> list[str]:
        await store.aappend("conv", turn(4))
        restart()  # blocking on purpose: nothing else runs here
        await store.aappend("conv", turn(5))
        return contents(await store.aget_messages("conv"))

    assert asyncio.run(async_turns()) == [f"{k}{i}" for i in range(1, 6) for k in "qa"]
    info = store.session_info("conv")
    assert info is not None and info.message_count == 10


def langchain_drop_in_scenario(make: Callable[[str], object]) -> None:
    """A ``threadline.langchain`` drop-in history inside LangChain's own
    RunnableWithMessageHistory and ConversationBufferMemory; ``make(session_id)``
    builds the history, as a LangChain app's factory would."""
    import warnings

    from langchain_classic.memory import ConversationBufferMemory
    from langchain_core.language_models.fake_chat_models import FakeListChatModel
    from langchain_core.messages import HumanMessage as LcHuman
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_core.runnables.history import RunnableWithMessageHistory

    chain = RunnableWithMessageHistory(
        ChatPromptTemplate.from_messages([("placeholder", "{h}"), ("human", "{q}")])
        | FakeListChatModel(responses=["one", "two"]), make,
        input_messages_key="q", history_messages_key="h")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # LangChain marks these classes deprecated
        for question in ("a", "b"):
            chain.invoke({"q": question}, config={"configurable": {"session_id": "s1"}})
        memory = ConversationBufferMemory(chat_memory=make("s2"))
        memory.save_context({"input": "hi"}, {"output": "hello"})
        assert memory.load_memory_variables({})["history"] == "Human: hi\nAI: hello"
    messages = make("s1").messages  # type: ignore[attr-defined]
    assert [m.content for m in messages] == ["a", "one", "b", "two"]
    assert isinstance(messages[0], LcHuman)
