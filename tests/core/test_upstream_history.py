"""Ported from langchain-core 1.8.4, tests/unit_tests/chat_history/test_chat_history.py.

Imports threadline's objects instead of LangChain's; upstream async tests run through
``asyncio.run``. (This file replaces tests/core/test_history_conformance.py.)

Left out: ``test_chat_history_deprecated`` (it checks LangChain's deprecation notice in
its docstrings; threadline's histories are not deprecated).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from threadline import BaseChatMessageHistory, BaseMessage, HumanMessage, InMemoryChatMessageHistory


def test_in_memory_history_initialization() -> None:
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
    """Test implementation of add_message only."""
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
    """Test that SampleChatHistory works as expected."""
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
    """Test async interface for BaseChatMessageHistory."""
    # Its history keeps its messages in a plain ``self.messages`` attribute (assigned in
    # __init__), which must be allowed to shadow the base class's property.
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


# -- beyond the upstream suite -------------------------------------------------------------


def test_plain_messages_attribute_serves_every_read() -> None:
    """A history keeping ``self.messages = []`` (assigned in ``__init__``) and only
    ``add_message``: reads, ``get_messages(last=...)``, ``str()`` and the async twins all
    see that list."""

    class ListHistory(BaseChatMessageHistory):
        def __init__(self) -> None:
            self.messages = []

        def add_message(self, message: BaseMessage) -> None:
            self.messages.append(message)

        def clear(self) -> None:
            self.messages = []

    history = ListHistory()
    history.add_user_message("hi")
    history.add_ai_message("hello")
    assert [m.content for m in history.messages] == ["hi", "hello"]
    assert history.get_messages(last=1) == [history.messages[-1]]
    assert str(history) == "Human: hi\nAI: hello"
    assert asyncio.run(history.aget_messages()) == history.messages
    history.clear()
    assert history.messages == [] and history.get_messages() == []
