"""The history contract behaves as LangChain's, ported from langchain-core 1.8.4's
``tests/unit_tests/chat_history/test_chat_history.py`` (each test names its upstream test).

Not ported: ``test_chat_history_deprecated`` (it checks LangChain's deprecation notice in
its docstrings).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from threadline import BaseChatMessageHistory, BaseMessage, HumanMessage, InMemoryChatMessageHistory


def test_in_memory_history_initialization() -> None:
    # upstream: test_in_memory_history_initialization
    async def main() -> None:
        messages: list[BaseMessage] = [HumanMessage(content="Hello")]
        history = InMemoryChatMessageHistory(messages=messages)
        assert await history.aget_messages() == messages
        other_history = InMemoryChatMessageHistory()
        await other_history.aadd_messages([HumanMessage(content="World")])
        assert history.messages == messages
        await history.aclear()
        assert history.messages == []
        assert other_history.messages == [HumanMessage(content="World")]

    asyncio.run(main())


def test_add_message_implementation_only() -> None:
    # upstream: test_add_message_implementation_only
    class SampleChatHistory(BaseChatMessageHistory):
        def __init__(self, *, store: list[BaseMessage]) -> None:
            self.store = store

        def add_message(self, message: BaseMessage) -> None:
            self.store.append(message)

        def clear(self) -> None:
            raise NotImplementedError

    store: list[BaseMessage] = []
    chat_history = SampleChatHistory(store=store)
    chat_history.add_message(HumanMessage(content="Hello"))
    assert store == [HumanMessage(content="Hello")]
    chat_history.add_message(HumanMessage(content="World"))
    chat_history.add_messages([HumanMessage(content="Hello"), HumanMessage(content="World")])
    assert store == [HumanMessage(content="Hello"), HumanMessage(content="World")] * 2


def test_bulk_message_implementation_only() -> None:
    # upstream: test_bulk_message_implementation_only
    store: list[BaseMessage] = []

    class BulkAddHistory(BaseChatMessageHistory):
        def __init__(self, *, store: list[BaseMessage]) -> None:
            self.store = store

        def add_messages(self, message: Sequence[BaseMessage]) -> None:
            self.store.extend(message)

        def clear(self) -> None:
            raise NotImplementedError

    chat_history = BulkAddHistory(store=store)
    chat_history.add_message(HumanMessage(content="Hello"))
    assert store == [HumanMessage(content="Hello")]
    chat_history.add_message(HumanMessage(content="World"))
    chat_history.add_messages([HumanMessage(content="Hello"), HumanMessage(content="World")])
    assert store == [HumanMessage(content="Hello"), HumanMessage(content="World")] * 2


def test_async_interface() -> None:
    # upstream: test_async_interface. Its history keeps its messages in a plain
    # ``self.messages`` attribute, which must be allowed to shadow the base property.
    class BulkAddHistory(BaseChatMessageHistory):
        def __init__(self) -> None:
            self.messages = []

        def add_messages(self, message: Sequence[BaseMessage]) -> None:
            self.messages.extend(message)

        def clear(self) -> None:
            self.messages.clear()

    async def main() -> None:
        chat_history = BulkAddHistory()
        await chat_history.aadd_messages(
            [HumanMessage(content="Hello"), HumanMessage(content="World")]
        )
        assert await chat_history.aget_messages() == [
            HumanMessage(content="Hello"),
            HumanMessage(content="World"),
        ]
        await chat_history.aadd_messages([HumanMessage(content="!")])
        assert await chat_history.aget_messages() == [
            HumanMessage(content="Hello"),
            HumanMessage(content="World"),
            HumanMessage(content="!"),
        ]
        await chat_history.aclear()
        assert await chat_history.aget_messages() == []

    asyncio.run(main())
