"""LangChain chat histories on threadline stores.

:class:`LangChainHistory` is a real ``langchain_core.chat_history.BaseChatMessageHistory``
(LangChain's ``RunnableWithMessageHistory``, ``ConversationBufferMemory`` and anything
else that checks the type accept it) over any threadline history: a store session by URL,
or a history object such as ``FileChatMessageHistory``. It reads and writes natively
(one store write per ``add_messages``, real async I/O where the store has it, windowed
reads with ``get_messages(last=N)``) and converts messages where they cross.

The drop-in classes below take the constructors of langchain-community's and the partner
packages' classes of the same names, so porting a LangChain app is one import line.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Sequence
from typing import Any

from threadline._errors import InputError, MissingDependencyError
from threadline.core._history import BaseChatMessageHistory
from threadline.langchain._messages import LCMessage, from_langchain, to_langchain
from threadline.stores import Store, StoreURL, shared_store
from threadline.stores.file._history import FileChatMessageHistory as NativeFileHistory

try:
    from langchain_core import chat_history as lc_chat_history
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingDependencyError("langchain-core", "langchain") from exc

__all__ = [
    "CosmosDBChatMessageHistory",
    "DynamoDBChatMessageHistory",
    "FileChatMessageHistory",
    "LangChainHistory",
    "PostgresChatMessageHistory",
    "RedisChatMessageHistory",
    "SQLChatMessageHistory",
    "history_factory",
]


class LangChainHistory(lc_chat_history.BaseChatMessageHistory):
    """A LangChain chat history kept in a threadline store (or any threadline history).

    >>> history = LangChainHistory("sqlite:///chat.db", "user-1", ttl=86400)
    >>> history.add_messages([langchain_core.messages.HumanMessage("hi")])
    >>> history.messages        # LangChain messages
    [HumanMessage(content='hi', ...)]

    ``url_or_store``: a store URL (one store, so one connection pool, per URL and options
    in the process), a :class:`~threadline.Store`, or a threadline history to wrap (then
    no ``session_id``). ``options`` are store options for a URL (``table=``,
    ``key_prefix=``...).
    """

    history: BaseChatMessageHistory

    def __init__(self, url_or_store: str | StoreURL | Store | BaseChatMessageHistory,
                 session_id: str | None = None, *, ttl: float | None = None,
                 **options: Any) -> None:
        if isinstance(url_or_store, BaseChatMessageHistory):
            if session_id is not None or ttl is not None or options:
                raise InputError("a history to wrap carries its own session; pass only it")
            self.history = url_or_store
            return
        if not isinstance(url_or_store, Store | str | StoreURL):
            raise InputError(
                f"LangChainHistory takes a store URL, a Store or a threadline history, "
                f"got {type(url_or_store).__name__}")
        if session_id is None:
            raise InputError("LangChainHistory needs a session_id with a store or URL")
        if isinstance(url_or_store, Store):
            if options:
                raise InputError("store options go with a URL, not with an open store")
            store = url_or_store
        else:
            store = shared_store(url_or_store, **options)
        history = store.history(session_id, ttl=ttl)
        history.stamp_ids = False  # LangChain messages come back exactly as they went in
        self.history = history

    # LangChain declares ``messages`` as an attribute; here reading it does I/O.
    @property
    def messages(self) -> list[LCMessage]:  # type: ignore[override]
        return to_langchain(self.history.get_messages())

    def get_messages(self, last: int | None = None) -> list[LCMessage]:
        """The messages, oldest first; only the newest ``last`` ones if given (a store
        reads only those)."""
        return to_langchain(self.history.get_messages(last))

    async def aget_messages(self, last: int | None = None) -> list[LCMessage]:
        return to_langchain(await self.history.aget_messages(last))

    def add_messages(self, messages: Sequence[Any]) -> None:
        self.history.add_messages(from_langchain(list(messages)))

    async def aadd_messages(self, messages: Sequence[Any]) -> None:
        await self.history.aadd_messages(from_langchain(list(messages)))

    def clear(self) -> None:
        self.history.clear()

    async def aclear(self) -> None:
        await self.history.aclear()

    def __getattr__(self, name: str) -> Any:
        # The wrapped class's own attributes (session_id, file_path, key, redis_client...).
        if name == "history":
            raise AttributeError(name)
        return getattr(self.history, name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.history!r})"


def history_factory(url_or_store: str | StoreURL | Store, *, ttl: float | None = None,
                    **options: Any) -> Callable[[str], LangChainHistory]:
    """A ``get_session_history`` for LangChain's ``RunnableWithMessageHistory``.

    >>> RunnableWithMessageHistory(chain, history_factory("postgresql://localhost/app"))

    The store is opened once; each call makes a light per-session view on it.
    """
    store = url_or_store if isinstance(url_or_store, Store) else shared_store(url_or_store,
                                                                             **options)
    if isinstance(url_or_store, Store) and options:
        raise InputError("store options go with a URL, not with an open store")

    def get_session_history(session_id: str) -> LangChainHistory:
        return LangChainHistory(store, session_id, ttl=ttl)

    return get_session_history


def _import(target: str) -> Any:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def _native_static(target: str, name: str) -> Callable[..., Any]:
    """A static method of the native class, imported (with its driver) on first call."""
    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(_import(target), name)(*args, **kwargs)

    call.__name__ = name
    return call


class _DropIn(LangChainHistory):
    """A LangChain-typed history built with the constructor of a LangChain class."""

    _native: str  # "module:Class" of threadline's class with that constructor

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(_import(self._native)(*args, **kwargs))

    def __repr__(self) -> str:
        return repr(self.history)


class SQLChatMessageHistory(_DropIn):
    """langchain-community's ``SQLChatMessageHistory`` constructor, a threadline SQL store
    (``session_id, connection=...``; see :class:`threadline.SQLChatMessageHistory`)."""

    _native = "threadline.stores.compat._sql:SQLChatMessageHistory"


class PostgresChatMessageHistory(_DropIn):
    """langchain-postgres' and langchain-community's ``PostgresChatMessageHistory``
    constructors (see :class:`threadline.PostgresChatMessageHistory`)."""

    _native = "threadline.stores.compat._postgres:PostgresChatMessageHistory"

    # LangChain's table helpers, taking your psycopg connection (async ones: AsyncConnection).
    create_tables = staticmethod(_native_static(_native, "create_tables"))
    acreate_tables = staticmethod(_native_static(_native, "acreate_tables"))
    drop_table = staticmethod(_native_static(_native, "drop_table"))
    adrop_table = staticmethod(_native_static(_native, "adrop_table"))


class RedisChatMessageHistory(_DropIn):
    """langchain-community's ``RedisChatMessageHistory`` constructor, same keys
    (see :class:`threadline.RedisChatMessageHistory`)."""

    _native = "threadline.stores.compat._redis:RedisChatMessageHistory"


class DynamoDBChatMessageHistory(_DropIn):
    """langchain-community's ``DynamoDBChatMessageHistory`` constructor
    (see :class:`threadline.DynamoDBChatMessageHistory`)."""

    _native = "threadline.stores.compat._dynamodb:DynamoDBChatMessageHistory"


class CosmosDBChatMessageHistory(_DropIn):
    """langchain-community's ``CosmosDBChatMessageHistory`` constructor
    (see :class:`threadline.CosmosDBChatMessageHistory`)."""

    _native = "threadline.stores.compat._cosmos:CosmosDBChatMessageHistory"

    def __enter__(self) -> CosmosDBChatMessageHistory:
        self.history.__enter__()  # type: ignore[attr-defined]  # prepares the container
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None


class FileChatMessageHistory(_DropIn):
    """langchain-community's ``FileChatMessageHistory`` constructor and file format.

    ``FileChatMessageHistory(file_path, *, encoding=None, ensure_ascii=True)``, as
    LangChain's: a new file is LangChain's JSON array, so other LangChain code reads it,
    written atomically under a lock (nothing lost between processes or on a crash). An
    existing file keeps its format; ``format="jsonl"`` makes appends O(1) (JSON Lines,
    which LangChain's own class cannot read). See :class:`threadline.FileChatMessageHistory`.
    """

    _native = "threadline.langchain._history:_LangChainFile"

    def __init__(self, file_path: str | os.PathLike[str], *, encoding: str | None = None,
                 ensure_ascii: bool = True, **options: Any) -> None:
        super().__init__(file_path, encoding=encoding or "utf-8", ensure_ascii=ensure_ascii,
                         **options)


class _LangChainFile(NativeFileHistory):
    _new_files = "json"
