"""``ThreadlineChatStore``: a LlamaIndex chat store on any threadline store.

A chat store key is a threadline session id, so what a ``ChatMemoryBuffer`` keeps is a
session like any other: listed, searched, forked and shown by ``threadline sessions``, and
readable by LangChain chains and the other integrations (messages are converted at the
boundary, :mod:`threadline.llama_index._convert`).

Stored messages are never rewritten. Removing one (``delete_message``,
``delete_last_message``) writes a tombstone record naming its id beside the session
(:func:`threadline.stores._records.tombstone_key`, the convention the server's
Conversations API and the Agents SDK session share), and every read leaves tombstoned
messages out; so each message written here gets an id. Replacing a session
(``set_messages``, and ``add_message`` with an ``idx`` inside the list) deletes it and
appends the new list: the messages are converted and checked before anything is deleted.

The async methods use the store's native async I/O where it has one; on the others each
call is its sync twin in one worker-thread hop (one hop, not one per store call).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote

from threadline._concurrency import run_sync
from threadline._errors import InputError, MissingDependencyError
from threadline.llama_index._convert import from_llama_index, to_llama_index
from threadline.messages._values import BaseMessage
from threadline.stores import Store, StoreURL, shared_store
from threadline.stores._base import validate_ttl
from threadline.stores._records import DELETED_PREFIX, tombstone_key

try:
    from llama_index.core.bridge.pydantic import PrivateAttr
    from llama_index.core.storage.chat_store.base import BaseChatStore
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingDependencyError("llama-index-core", "llama-index") from exc

__all__ = ["ThreadlineChatStore", "open_for"]


def open_for(owner: str, url_or_store: str | StoreURL | Store | None, url: str | None,
             ttl: float | None, options: dict[str, Any]) -> tuple[Store, dict[str, Any]]:
    """The store a chat store class (``owner``) keeps its messages in, and its pydantic
    fields: the URL without its password (what ``to_dict`` shows) and the TTL. ``url`` is
    what LlamaIndex's ``from_dict`` passes back."""
    source = url_or_store if url_or_store is not None else url
    if source is None:
        raise InputError(f"{owner} needs a store URL or a Store")
    store = source if isinstance(source, Store) else shared_store(source, **options)
    return store, {"url": store.url.render(), "ttl": validate_ttl(ttl)}


class ThreadlineChatStore(BaseChatStore):
    """A LlamaIndex ``BaseChatStore`` kept in a threadline store; keys are session ids.

    >>> from llama_index.core.memory import ChatMemoryBuffer
    >>> chat_store = ThreadlineChatStore("sqlite:///chat.db", ttl=86400)
    >>> memory = ChatMemoryBuffer.from_defaults(chat_store=chat_store,
    ...                                         chat_store_key="user-1")

    ``url_or_store``: a store URL (one store, so one connection pool, per URL and options
    in the process; ``options`` are its store options) or a :class:`~threadline.Store`.
    ``ttl`` (seconds) is the time to live of the sessions it writes, refreshed by each
    write; ``None``: the store's default.
    """

    url: str = ""  # the store's URL without its password (what to_dict shows)
    ttl: float | None = None
    _store: Store = PrivateAttr()

    def __init__(self, url_or_store: str | StoreURL | Store | None = None, *,
                 ttl: float | None = None, url: str | None = None, **options: Any) -> None:
        store, fields = open_for("ThreadlineChatStore", url_or_store, url, ttl, options)
        super().__init__(**fields)
        self._store = store

    @classmethod
    def class_name(cls) -> str:
        return "ThreadlineChatStore"

    @property
    def store(self) -> Store:
        """The threadline store the messages are kept in."""
        return self._store

    # -- sync ---------------------------------------------------------------------------

    def _read(self, key: str) -> list[BaseMessage]:
        """The session's messages without the deleted ones."""
        store = self._store
        messages = store.get_messages(key)
        if not messages or not store.supports_records:
            return messages
        return _visible(messages, store.scan_records(key, DELETED_PREFIX, keys_only=True))

    def _write(self, key: str, messages: Sequence[Any]) -> None:
        self._store.append(key, _stored(messages), ttl=self.ttl)

    def _replace(self, key: str, messages: Sequence[Any]) -> None:
        batch = _stored(messages)  # converted (and so checked) before deleting
        self._store.delete_session(key)
        if batch:
            self._store.append(key, batch, ttl=self.ttl)

    def _hide(self, key: str, message: BaseMessage) -> None:
        self._store.put_records(key, _tombstone(key, message), ttl=self.ttl)

    def set_messages(self, key: str, messages: list[Any]) -> None:
        """Replace the session's messages with ``messages``."""
        self._replace(key, messages)

    def get_messages(self, key: str) -> list[Any]:
        """The session's messages as LlamaIndex ``ChatMessage`` s; ``[]`` if none."""
        return [to_llama_index(message) for message in self._read(key)]

    def add_message(self, key: str, message: Any, idx: int | None = None) -> None:
        """Append ``message``; with ``idx``, insert it there (rewrites the session)."""
        if idx is None:
            self._write(key, [message])
            return
        messages = self.get_messages(key)
        if idx >= len(messages):
            self._write(key, [message])
            return
        messages.insert(idx, message)
        self._replace(key, messages)

    def delete_messages(self, key: str) -> list[Any] | None:
        """Delete the session; its messages, or ``None`` if it did not exist."""
        messages = self._read(key)
        if not self._store.delete_session(key) and not messages:
            return None
        return [to_llama_index(message) for message in messages]

    def delete_message(self, key: str, idx: int) -> Any | None:
        """Delete the ``idx``-th message (negative counts from the end, as ``list.pop``);
        the message, or ``None`` when there is none at ``idx``."""
        messages = self._read(key)
        if not -len(messages) <= idx < len(messages):
            return None
        self._hide(key, messages[idx])
        return to_llama_index(messages[idx])

    def delete_last_message(self, key: str) -> Any | None:
        """Delete the last message; it, or ``None`` when the session has none."""
        return self.delete_message(key, -1)

    def get_keys(self) -> list[str]:
        """Every session id of the store (all pages)."""
        return list(self._store.iter_sessions())

    # -- async ----------------------------------------------------------------------------

    async def _aread(self, key: str) -> list[BaseMessage]:
        store = self._store
        messages = await store.aget_messages(key)
        if not messages or not store.supports_records:
            return messages
        return _visible(messages, await store.ascan_records(key, DELETED_PREFIX,
                                                            keys_only=True))

    async def aset_messages(self, key: str, messages: list[Any]) -> None:
        if not self._store.native_async:
            await run_sync(self._replace, key, messages)
            return
        batch = _stored(messages)
        await self._store.adelete_session(key)
        if batch:
            await self._store.aappend(key, batch, ttl=self.ttl)

    async def aget_messages(self, key: str) -> list[Any]:
        if not self._store.native_async:
            return await run_sync(self.get_messages, key)
        return [to_llama_index(message) for message in await self._aread(key)]

    async def async_add_message(self, key: str, message: Any, idx: int | None = None) -> None:
        if idx is not None or not self._store.native_async:
            await run_sync(self.add_message, key, message, idx)
            return
        await self._store.aappend(key, _stored([message]), ttl=self.ttl)

    async def adelete_messages(self, key: str) -> list[Any] | None:
        if not self._store.native_async:
            return await run_sync(self.delete_messages, key)
        messages = await self._aread(key)
        if not await self._store.adelete_session(key) and not messages:
            return None
        return [to_llama_index(message) for message in messages]

    async def adelete_message(self, key: str, idx: int) -> Any | None:
        if not self._store.native_async:
            return await run_sync(self.delete_message, key, idx)
        messages = await self._aread(key)
        if not -len(messages) <= idx < len(messages):
            return None
        await self._store.aput_records(key, _tombstone(key, messages[idx]), ttl=self.ttl)
        return to_llama_index(messages[idx])

    async def adelete_last_message(self, key: str) -> Any | None:
        return await self.adelete_message(key, -1)

    async def aget_keys(self) -> list[str]:
        if not self._store.native_async:
            return await run_sync(self.get_keys)
        keys: list[str] = []
        cursor: str | None = None
        while True:
            page = await self._store.alist_sessions(limit=500, cursor=cursor)
            keys.extend(page.session_ids)
            if page.next_cursor is None:
                return keys
            cursor = page.next_cursor

    def __repr__(self) -> str:
        return f"ThreadlineChatStore({self.url!r})"


def _stored(messages: Sequence[Any]) -> list[BaseMessage]:
    """LlamaIndex messages as threadline messages to append, each with a new id."""
    return [from_llama_index(message, id=uuid.uuid4().hex) for message in messages]


def _tombstone(key: str, message: BaseMessage) -> dict[str, bytes]:
    """The record deleting ``message``; it needs an id."""
    if message.id is None:
        raise InputError(f"the message to delete from session {key!r:.80} has no id "
                         "(written without one by another program); it cannot be "
                         "deleted alone")
    return {tombstone_key(message.id): b"1"}


def _visible(messages: list[BaseMessage], tombstones: list[tuple[str, bytes]]
             ) -> list[BaseMessage]:
    if not tombstones:
        return messages
    deleted = {unquote(key[len(DELETED_PREFIX):]) for key, _ in tombstones}
    return [message for message in messages if message.id not in deleted]
