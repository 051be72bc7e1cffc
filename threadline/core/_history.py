"""The chat message history contract, and the in-memory history.

A history is a list of messages for one conversation. Subclasses implement reading
(``get_messages`` — or, as in LangChain, a ``messages`` property), writing
(``add_messages`` — or ``add_message``) and ``clear``. The async methods default to
running the sync ones in a worker thread; stores with native async drivers override them.

Every history also reads and writes pydantic-ai's ``list[ModelMessage]``
(``pydantic_ai_messages``, ``add_pydantic_ai_messages`` and their async twins): the
conversion lives in ``threadline.pydantic_ai``, found by name through
:mod:`threadline._foreign` and imported on first use, so the core never imports it.

>>> history = InMemoryChatMessageHistory()
>>> history.add_user_message("hi")
>>> history.add_ai_message("hello")
>>> print(history)
Human: hi
AI: hello
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from threadline._concurrency import run_sync
from threadline._errors import InputError
from threadline._foreign import integration
from threadline.messages._convert import check_messages, get_buffer_string
from threadline.messages._values import AIMessage, BaseMessage, HumanMessage

__all__ = [
    "BaseChatMessageHistory",
    "ChatMessageHistory",
    "InMemoryChatMessageHistory",
    "refuse_langchain_reader",
]

_LANGCHAIN = ("langchain_core.", "langchain_classic.", "langchain.", "langchain_community.")


def refuse_langchain_reader(history: object) -> None:
    """Raise if LangChain's own code is reading this threadline history.

    LangChain would get threadline messages it cannot use and fail later with
    ``NotImplementedError: Unsupported message type`` (or, in a callback, log and carry
    on); this fails first, naming the fix. Costs a few frame hops per read.
    """
    frame = sys._getframe(2)
    caller = ""
    while frame is not None:  # the first caller outside threadline's own modules
        caller = frame.f_globals.get("__name__", "")
        if caller.startswith("threadline.langchain"):
            return  # the bridge itself, converting for LangChain
        if not caller.startswith("threadline."):
            break
        frame = frame.f_back  # type: ignore[assignment]
    if caller.startswith(_LANGCHAIN):
        raise InputError(
            f"LangChain ({caller}) is reading a threadline {type(history).__name__}, whose "
            "messages are threadline's; give LangChain a LangChain history instead: "
            "threadline.langchain.LangChainHistory(history), "
            "threadline.langchain.history_factory(store_url), or the drop-in classes of "
            "threadline.langchain (SQLChatMessageHistory, RedisChatMessageHistory, ...)"
        )


class BaseChatMessageHistory:
    """Base class of every chat message history.

    Implement ``get_messages`` (or the ``messages`` property), ``add_messages`` (or
    ``add_message``) and ``clear``. ``add_messages`` should store a batch in one round
    trip: :class:`~threadline.RunnableWithMessageHistory` calls it once per turn.
    """

    @property
    def messages(self) -> list[BaseMessage]:
        """All messages, oldest first (LangChain's name; may do I/O in stores)."""
        refuse_langchain_reader(self)
        own = self.__dict__.get("messages")
        if own is not None:
            return own  # type: ignore[no-any-return]
        return self.get_messages()

    @messages.setter
    def messages(self, value: list[BaseMessage]) -> None:
        # A subclass may keep its messages in a plain ``self.messages`` list, as
        # LangChain's histories may: then that list is the history.
        self.__dict__["messages"] = value

    def get_messages(self, last: int | None = None) -> list[BaseMessage]:
        """The messages, oldest first; only the newest ``last`` ones if given."""
        if (type(self).messages is BaseChatMessageHistory.messages
                and "messages" not in self.__dict__):
            raise NotImplementedError(
                f"{type(self).__name__} must implement get_messages() or a messages property"
            )
        messages = self.messages
        if last is None:
            return list(messages)
        return list(messages[-last:]) if last > 0 else []

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Store several messages at once, in order."""
        if type(self).add_message is BaseChatMessageHistory.add_message:
            raise NotImplementedError(
                f"{type(self).__name__} must implement add_messages() or add_message()"
            )
        for message in messages:
            self.add_message(message)

    def add_message(self, message: BaseMessage) -> None:
        """Store one message."""
        if type(self).add_messages is BaseChatMessageHistory.add_messages:
            raise NotImplementedError(
                f"{type(self).__name__} must implement add_messages() or add_message()"
            )
        self.add_messages([message])

    def add_user_message(self, message: HumanMessage | str) -> None:
        """Store a human message; a str becomes a :class:`HumanMessage`."""
        self.add_message(message if isinstance(message, HumanMessage) else _text(message,
                                                                              HumanMessage))

    def add_ai_message(self, message: AIMessage | str) -> None:
        """Store an AI message; a str becomes an :class:`AIMessage`."""
        self.add_message(message if isinstance(message, AIMessage) else _text(message, AIMessage))

    def clear(self) -> None:
        """Delete every message of this history."""
        raise NotImplementedError(f"{type(self).__name__} must implement clear()")

    async def aget_messages(self, last: int | None = None) -> list[BaseMessage]:
        refuse_langchain_reader(self)
        return await run_sync(self.get_messages, last)

    async def aadd_messages(self, messages: Sequence[BaseMessage]) -> None:
        await run_sync(self.add_messages, list(messages))

    async def aclear(self) -> None:
        await run_sync(self.clear)

    def pydantic_ai_messages(self) -> list[Any]:
        """The conversation as pydantic-ai's ``list[ModelMessage]``, for
        ``agent.run(..., message_history=...)`` (needs ``threadline[pydantic-ai]``).

        Messages pydantic-ai wrote come back equal to what was added; messages of other
        frameworks become the request and response parts they map to.

        >>> result = agent.run_sync("hi", message_history=history.pydantic_ai_messages())
        >>> history.add_pydantic_ai_messages(result.new_messages())
        """
        return integration("to_pydantic_ai")(self.get_messages())  # type: ignore[no-any-return]

    def add_pydantic_ai_messages(self, messages: Sequence[Any]) -> None:
        """Store pydantic-ai ``ModelMessage`` objects (``result.new_messages()``) in one batch:
        the parts threadline can show as its messages, everything else kept with them."""
        self.add_messages(integration("from_pydantic_ai")(messages))

    async def apydantic_ai_messages(self) -> list[Any]:
        """Async :meth:`pydantic_ai_messages`."""
        return integration("to_pydantic_ai")(await self.aget_messages())  # type: ignore[no-any-return]

    async def aadd_pydantic_ai_messages(self, messages: Sequence[Any]) -> None:
        """Async :meth:`add_pydantic_ai_messages`."""
        await self.aadd_messages(integration("from_pydantic_ai")(messages))

    def __str__(self) -> str:
        return get_buffer_string(self.get_messages())


def _text(value: object, cls: type[HumanMessage] | type[AIMessage]) -> BaseMessage:
    if not isinstance(value, str):
        raise InputError(
            f"expected a str or a {cls.__name__}, got {type(value).__name__}"
        )
    return cls(value)


class InMemoryChatMessageHistory(BaseChatMessageHistory):
    """A history kept in a Python list; ``ChatMessageHistory`` is the same class."""

    def __init__(self, messages: Sequence[BaseMessage] | None = None) -> None:
        self._messages: list[BaseMessage] = []
        if messages:
            self.add_messages(messages)

    @property
    def messages(self) -> list[BaseMessage]:
        refuse_langchain_reader(self)
        return self._messages

    @messages.setter
    def messages(self, value: list[BaseMessage]) -> None:
        self._messages = list(check_messages(value))

    def get_messages(self, last: int | None = None) -> list[BaseMessage]:
        if last is None:
            return self._messages.copy()
        return self._messages[-last:] if last > 0 else []

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        self._messages.extend(check_messages(messages))

    def clear(self) -> None:
        self._messages = []

    # The list lives in memory: no thread hop needed.
    async def aget_messages(self, last: int | None = None) -> list[BaseMessage]:
        refuse_langchain_reader(self)
        return self.get_messages(last)

    async def aadd_messages(self, messages: Sequence[BaseMessage]) -> None:
        self.add_messages(messages)

    async def aclear(self) -> None:
        self.clear()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, InMemoryChatMessageHistory):
            return NotImplemented
        return self._messages == other._messages

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"InMemoryChatMessageHistory(messages={self._messages!r})"


ChatMessageHistory = InMemoryChatMessageHistory
