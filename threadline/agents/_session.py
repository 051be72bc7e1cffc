"""The OpenAI Agents SDK's ``Session`` protocol on any threadline store.

Design. A :class:`ThreadlineSession` is a light view (store + session id), like
``store.history``: one store, so one connection pool, per URL in the process. Items are
converted at the boundary (:mod:`threadline.agents._items`): one item is one message, so
``get_items(limit=N)`` reads only the newest messages (``aget_messages(last=...)``).
Everything goes through the store's async methods: the SDK is async-only.

Removing an item: threadline never rewrites stored messages. ``pop_item`` writes a
tombstone record beside the session (:func:`~threadline.stores._records.tombstone_key`,
the convention of the server's Conversations API, so the server hides a popped item too)
and readers leave tombstoned messages out. A read therefore lists the session's
tombstones (keys only, usually none) and reads that many more messages than it asks for;
on a store with network round trips (``native_async``) the list and the window are read
at once. ``clear_session`` deletes the session with its records.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote

from threadline._errors import ConfigurationError, InputError, MissingDependencyError
from threadline.agents._items import check_items, item_to_message, message_items
from threadline.messages._values import BaseMessage
from threadline.stores import Store, StoreURL, shared_store
from threadline.stores._checks import MAX_LAST, validate_session_id, validate_ttl
from threadline.stores._records import DELETED_PREFIX, tombstone_key

try:
    from agents.memory.session_settings import (
        SessionSettings,
        coerce_session_settings,
        resolve_session_limit,
    )
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingDependencyError("openai-agents", "agents") from exc

__all__ = ["ThreadlineSession"]

_Pairs = list[tuple[str, dict[str, Any]]]


class ThreadlineSession:
    """An OpenAI Agents SDK session kept in a threadline store.

    >>> session = ThreadlineSession("sqlite:///chat.db", "user-1")
    >>> result = await Runner.run(agent, "Hello", session=session)
    >>> await session.get_items(limit=2)      # the last two Responses input items
    [{'role': 'user', 'content': 'Hello'}, {'id': 'msg_...', 'type': 'message', ...}]

    ``url_or_store``: a store URL (one store per URL and options in the process) or a
    :class:`~threadline.Store`. ``ttl`` (seconds) is passed to every append: the session
    expires that long after its last turn. ``session_settings`` (the SDK's
    ``SessionSettings(limit=...)``, or a dict) gives the default ``limit`` of
    :meth:`get_items`. Every Responses input item round-trips unchanged; those that are
    messages are stored as threadline messages, which ``threadline sessions show``, search,
    the server and LangChain chains on the same store read.
    """

    session_id: str
    session_settings: SessionSettings | None

    def __init__(self, url_or_store: str | StoreURL | Store, session_id: str, *,
                 ttl: float | None = None,
                 session_settings: SessionSettings | dict[str, Any] | None = None) -> None:
        if isinstance(url_or_store, Store):
            self.store = url_or_store
        elif isinstance(url_or_store, str | StoreURL):
            self.store = shared_store(url_or_store)
        else:
            raise InputError(f"ThreadlineSession takes a store URL or a Store, got "
                             f"{type(url_or_store).__name__}")
        self.session_id = validate_session_id(session_id)
        self.ttl = validate_ttl(ttl)
        # memory:// keeps message objects (reads return the stored ones): items read from
        # it are copied; every other built-in store decodes fresh objects on each read.
        self._copy = self.store.url.scheme == "memory"
        self.session_settings = (SessionSettings() if session_settings is None
                                 else coerce_session_settings(session_settings))

    # -- the Session protocol -----------------------------------------------------------------

    async def get_items(self, limit: int | None = None) -> list[Any]:
        """The session's items, oldest first; only the newest ``limit`` (default: the
        settings' limit, else all), read from the store as that many messages."""
        last = resolve_session_limit(limit, self.session_settings)
        if last is not None and last <= 0:
            return []
        pairs = await self._visible(last, positions=False)
        items = [item for _, item in pairs]
        return items if last is None else items[-last:]

    async def add_items(self, items: list[Any]) -> None:
        """Append items, in one store write (all or none)."""
        batch = check_items(items)
        if not batch:
            return
        messages = [item_to_message(item, uuid.uuid4().hex) for item in batch]
        await self.store.aappend(self.session_id, messages, ttl=self.ttl)

    async def pop_item(self) -> Any | None:
        """Remove and return the newest item (``None`` if the session has none). The
        message stays stored, hidden by a tombstone record."""
        if not self.store.supports_records:
            raise ConfigurationError(
                f"the {self.store.url.scheme}:// store keeps no records, so pop_item cannot "
                "mark an item removed; every built-in store keeps them")
        pairs = await self._visible(1, positions=True)
        if not pairs:
            return None
        ident, item = pairs[-1]
        await self.store.aput_records(self.session_id, {tombstone_key(ident): b"1"},
                                      ttl=self.ttl)
        return item

    async def clear_session(self) -> None:
        """Delete the session: its messages and records (tombstones included)."""
        await self.store.adelete_session(self.session_id)

    # -- reading ----------------------------------------------------------------------------

    async def _deleted(self) -> set[str]:
        if not self.store.supports_records:
            return set()
        found = await self.store.ascan_records(self.session_id, DELETED_PREFIX,
                                               keys_only=True)
        return {unquote(key[len(DELETED_PREFIX):]) for key, _ in found}

    async def _visible(self, last: int | None, *, positions: bool) -> _Pairs:
        """``(identity, item)`` of at least the newest ``last`` visible items (all of
        them when ``last`` is ``None``). ``positions``: the identities of messages stored
        without an id must be exact (they name the message by its position)."""
        if self.store.native_async:
            # A network round trip each: read the window while the tombstones are listed,
            # and again only if there are some (rare: after a pop_item).
            deleted, messages = await asyncio.gather(
                self._deleted(), self.store.aget_messages(self.session_id, last=last))
            want = last
            if deleted and last is not None:
                want = min(last + len(deleted), MAX_LAST)
                messages = await self.store.aget_messages(self.session_id, last=want)
        else:  # local stores answer at once: no need to guess
            deleted = await self._deleted()
            want = None if last is None else min(last + len(deleted), MAX_LAST)
            messages = await self.store.aget_messages(self.session_id, last=want)
        whole = want is None or len(messages) < want
        if not whole and (positions or any(d.startswith("msg_at") for d in deleted)) \
                and any(message.id is None for message in messages):
            # A message without an id is named by its position, which a window of the
            # newest messages does not tell: read the session (messages written by
            # LangChain apps without ids, and only when such a name is needed).
            messages = await self.store.aget_messages(self.session_id)
            whole = True
        return _pairs(messages, 0 if whole else None, deleted, copy=self._copy)


def _pairs(messages: Sequence[BaseMessage], base: int | None, deleted: set[str], *,
           copy: bool) -> _Pairs:
    """The visible items of ``messages`` (the first at position ``base``; ``None``:
    unknown, when every message has an id or no position-named item is deleted)."""
    offset = 0 if base is None else base
    pairs: _Pairs = []
    for n, message in enumerate(messages):
        for ident, item in message_items(message, offset + n, copy_stored=copy):
            if ident not in deleted:
                pairs.append((ident, item))
    return pairs
