"""``ThreadlineDBChatStore``: the store of LlamaIndex's newer ``Memory``, on any threadline
store.

``Memory.from_defaults(chat_store=...)`` takes an ``AsyncDBChatStore``: a FIFO of messages
per key where each message is *active* (what the model reads) or *archived* (flushed out
of the token window, kept for memory blocks). Here a key is a threadline session, so the
conversation is listed, searched and shown like every other. Messages are never
rewritten: archiving one writes a record ``llama_index:archived:<id>`` beside the
session, deleting one a tombstone (:func:`threadline.stores._records.tombstone_key`, the
convention the server and the other integrations share); reads apply both. Messages are
converted as :mod:`threadline.llama_index._convert` describes.

Every method is a coroutine (the interface is async-only); each runs its store calls in
one worker-thread hop, however many round trips it makes.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, Literal
from urllib.parse import unquote

from threadline._concurrency import run_sync
from threadline._errors import InputError, MissingDependencyError
from threadline.llama_index._convert import from_llama_index, to_llama_index
from threadline.llama_index._store import open_for
from threadline.messages._values import BaseMessage
from threadline.stores import Store, StoreURL
from threadline.stores._records import DELETED_PREFIX, escape_key_part, tombstone_key

try:
    from llama_index.core.bridge.pydantic import PrivateAttr
    from llama_index.core.storage.chat_store.base_db import AsyncDBChatStore, MessageStatus
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingDependencyError("llama-index-core", "llama-index") from exc

__all__ = ["ARCHIVED_PREFIX", "ThreadlineDBChatStore"]

#: Records under this prefix mark a message archived, by its id.
ARCHIVED_PREFIX = "llama_index:archived:"

_ACTIVE = MessageStatus.ACTIVE
_ARCHIVED = MessageStatus.ARCHIVED
_Action = Literal["archive", "delete"]


class ThreadlineDBChatStore(AsyncDBChatStore):
    """A LlamaIndex ``AsyncDBChatStore`` (for ``Memory``) kept in a threadline store.

    >>> from llama_index.core.memory import Memory
    >>> memory = Memory.from_defaults(session_id="user-1", token_limit=4000,
    ...                               chat_store=ThreadlineDBChatStore("sqlite:///chat.db"))

    ``url_or_store``, ``ttl`` and ``options`` as for
    :class:`~threadline.llama_index.ThreadlineChatStore`.
    """

    url: str = ""
    ttl: float | None = None
    _store: Store = PrivateAttr()

    def __init__(self, url_or_store: str | StoreURL | Store | None = None, *,
                 ttl: float | None = None, url: str | None = None, **options: Any) -> None:
        store, fields = open_for("ThreadlineDBChatStore", url_or_store, url, ttl, options)
        super().__init__(**fields)
        self._store = store

    @classmethod
    def class_name(cls) -> str:
        return "ThreadlineDBChatStore"

    @property
    def store(self) -> Store:
        """The threadline store the messages are kept in."""
        return self._store

    # -- sync work, one thread hop per method --------------------------------------------

    def _state(self, key: str) -> list[tuple[BaseMessage, bool]]:
        """The session's messages that are not deleted, each with "is archived"."""
        store = self._store
        messages = store.get_messages(key)
        if not messages:
            return []
        deleted = _ids(store.scan_records(key, DELETED_PREFIX, keys_only=True), DELETED_PREFIX)
        archived = _ids(store.scan_records(key, ARCHIVED_PREFIX, keys_only=True),
                        ARCHIVED_PREFIX)
        return [(message, message.id in archived) for message in messages
                if message.id not in deleted]

    def _select(self, key: str, status: MessageStatus | None) -> list[BaseMessage]:
        return [message for message, archived in self._state(key)
                if status is None or archived == (status == _ARCHIVED)]

    def _add(self, key: str, messages: Sequence[Any], status: MessageStatus) -> None:
        batch = [from_llama_index(message, id=uuid.uuid4().hex) for message in messages]
        if not batch:
            return
        if status == _ARCHIVED:
            self._store.append_with_records(key, batch, _marks(batch, "archive"),
                                            ttl=self.ttl)
        else:
            self._store.append(key, batch, ttl=self.ttl)

    def _set(self, key: str, messages: Sequence[Any], status: MessageStatus) -> None:
        for message in messages:  # refuse bad input before deleting anything
            from_llama_index(message)
        self._store.delete_session(key)
        self._add(key, messages, status)

    def _mark(self, key: str, messages: list[BaseMessage], action: _Action) -> list[Any]:
        """Archive or delete (tombstones) ``messages``; them, as LlamaIndex's."""
        if messages:
            if any(message.id is None for message in messages):
                raise InputError(f"session {key!r:.80} holds messages without an id "
                                 "(written by another program); they cannot be archived "
                                 "or deleted alone")
            self._store.put_records(key, _marks(messages, action), ttl=self.ttl)
        return [to_llama_index(message) for message in messages]

    def _delete_at(self, key: str, idx: int) -> Any | None:
        active = self._select(key, _ACTIVE)
        if not -len(active) <= idx < len(active):
            return None
        return self._mark(key, [active[idx]], "delete")[0]

    def _delete(self, key: str, status: MessageStatus | None) -> None:
        if status is None:
            self._store.delete_session(key)
        else:
            self._mark(key, self._select(key, status), "delete")

    def _oldest(self, key: str, n: int, action: _Action) -> list[Any]:
        return self._mark(key, self._select(key, _ACTIVE)[:max(n, 0)], action)

    # -- the AsyncDBChatStore interface ---------------------------------------------------

    async def get_messages(self, key: str, status: MessageStatus | None = _ACTIVE,
                           limit: int | None = None, offset: int | None = None
                           ) -> list[Any]:
        """The key's messages of ``status`` (``None``: all), oldest first, from
        ``offset``, at most ``limit``."""
        messages = await run_sync(self._select, key, status)
        start = offset or 0
        chosen = messages[start:] if limit is None else messages[start:start + limit]
        return [to_llama_index(message) for message in chosen]

    async def count_messages(self, key: str,
                             status: MessageStatus | None = _ACTIVE) -> int:
        return len(await run_sync(self._select, key, status))

    async def add_message(self, key: str, message: Any,
                          status: MessageStatus = _ACTIVE) -> None:
        await run_sync(self._add, key, [message], status)

    async def add_messages(self, key: str, messages: list[Any],
                           status: MessageStatus = _ACTIVE) -> None:
        await run_sync(self._add, key, messages, status)

    async def set_messages(self, key: str, messages: list[Any],
                           status: MessageStatus = _ACTIVE) -> None:
        """Replace every message of the key (of any status) with ``messages``."""
        await run_sync(self._set, key, messages, status)

    async def delete_message(self, key: str, idx: int) -> Any | None:
        """Delete the ``idx``-th active message; it, or ``None`` if there is none."""
        return await run_sync(self._delete_at, key, idx)

    async def delete_messages(self, key: str, status: MessageStatus | None = None) -> None:
        await run_sync(self._delete, key, status)

    async def delete_oldest_messages(self, key: str, n: int) -> list[Any]:
        return await run_sync(self._oldest, key, n, "delete")

    async def archive_oldest_messages(self, key: str, n: int) -> list[Any]:
        return await run_sync(self._oldest, key, n, "archive")

    async def get_keys(self) -> list[str]:
        return await run_sync(lambda: list(self._store.iter_sessions()))

    def __repr__(self) -> str:
        return f"ThreadlineDBChatStore({self.url!r})"


def _ids(found: list[tuple[str, bytes]], prefix: str) -> set[str]:
    return {unquote(key[len(prefix):]) for key, _ in found}


def _marks(messages: Sequence[BaseMessage], action: _Action) -> dict[str, bytes]:
    """The records archiving or deleting the messages."""
    if action == "archive":
        return {ARCHIVED_PREFIX + escape_key_part(str(message.id)): b"1"
                for message in messages}
    return {tombstone_key(str(message.id)): b"1" for message in messages}
