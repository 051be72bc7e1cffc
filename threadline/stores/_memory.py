"""``memory://`` — sessions in this process's memory: the fastest store, for tests and demos.

Design: a dict ``session id -> _Session`` plus a sorted list of the ids (kept with
``bisect``, so listing with a prefix and a cursor is a binary search, not a sort), all
guarded by one lock. Messages are kept by reference, as ``InMemoryChatMessageHistory``
does: reading returns a new list of the same message objects. Expiry is checked against
the monotonic clock (immune to wall-clock jumps); the wall-clock deadline is kept only to
report ``expires_at``. Each ``open_store("memory://")`` is a separate, empty store.

Appends are idempotent for messages with an ``id``: each session keeps the set of its
ids, checked and extended under the lock, so racing retries store each message once.
Nothing stored here can be undecodable, so ``skip_invalid`` has nothing to skip.

Sizes. ``max_message_bytes`` applies as in every store, to the message's JSON. Messages
are kept as objects, so they are not encoded to be stored: a message whose fields are
all text (or None) is measured by a bound (6 bytes a character at most, as JSON), and
only one that may be near the limit, or has other fields, is encoded to be measured.

Async: the async methods of the one-call operations run the sync ones on the event loop's
thread when the lock is free, in a worker thread when it is not (``_offload``).

>>> store = open_store("memory://")
>>> store.append("s1", [HumanMessage("hi")])
>>> [m.content for m in store.get_messages("s1")]
['hi']
"""

from __future__ import annotations

import bisect
import json
import threading
import time
from collections.abc import Callable, Collection, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, ParamSpec, TypeVar

from threadline._concurrency import run_locked
from threadline._errors import InputError, StoreError
from threadline.messages._serialization import message_to_dict
from threadline.messages._values import BaseMessage, _slots_of
from threadline.stores._base import (
    SessionInfo,
    SessionPage,
    Store,
    check_last,
    check_limit,
    check_messages,
    validate_session_id,
    validate_ttl,
)
from threadline.stores._records import (
    check_record_batch,
    check_record_keys,
    check_scan_args,
    scan_sorted,
    validate_record_key,
)
from threadline.stores._sessions import (
    ListQuery,
    Order,
    SessionChanges,
    check_list_args,
    decode_recent_cursor,
    metadata_matches,
    recent_cursor,
)
from threadline.stores._url import StoreURL

__all__ = ["MemoryStore"]

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(slots=True)
class _Session:
    created_at: float
    updated_at: float
    messages: list[BaseMessage] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)
    deadline: float | None = None  # time.monotonic() value
    expires_at: float | None = None  # time.time() value, for reporting
    title: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    owner: str | None = None
    parent: str | None = None
    fork_point: int | None = None


@dataclass(slots=True)
class _Records:
    """One session's records: values by key, and the keys sorted (for scans)."""

    values: dict[str, bytes] = field(default_factory=dict)
    keys: list[str] = field(default_factory=list)
    deadline: float | None = None  # time.monotonic() value


def _utc(timestamp: float | None) -> datetime | None:
    return None if timestamp is None else datetime.fromtimestamp(timestamp, UTC)


# More than the JSON of a message without its text: its keys, {}, [] and nulls.
_OVERHEAD = 1024
# Measures what the other stores would encode; objects JSON cannot hold count as repr().
_MEASURE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=repr)


def _size_bound(message: BaseMessage) -> int | None:
    """An upper bound on the UTF-8 bytes of the message's JSON if all its fields are text
    or None (a character takes at most 6 bytes, as a ``\\u`` escape), else None."""
    total = _OVERHEAD
    for slot in _slots_of(type(message)):
        value = getattr(message, slot, None)
        if type(value) is str:
            total += 6 * len(value)
        elif value is not None:
            return None
    return total


class MemoryStore(Store):
    """Sessions in a dict: ``open_store("memory://", ttl=3600)``."""

    OPTIONS: ClassVar[dict[str, Any]] = {**Store.OPTIONS}

    def __init__(self, url: StoreURL | str = "memory://", **options: Any) -> None:
        super().__init__(url, **options)
        self._sessions: dict[str, _Session] = {}
        self._ids: list[str] = []  # sorted
        self._recent: list[tuple[float, str]] = []  # (updated_at, id), sorted
        self._records: dict[str, _Records] = {}
        # Reentrant: the async methods hold it around the sync ones (see _offload).
        self._lock = threading.RLock()
        self._closed = False

    def _offload(self, func: Callable[P, T], /, *args: P.args,
                 **kwargs: P.kwargs) -> Coroutine[Any, Any, T]:
        # Every call is a few dict and list operations under the lock: on the event loop's
        # thread when the lock is free (a thread hop costs ~30x the work), in a worker
        # thread when another thread holds it, so the loop never waits for it. Not async
        # itself: one coroutine less per call, a third of what the async path adds.
        return run_locked(self._lock, func, *args, **kwargs)

    # A turn's two calls skip the _offload layer: it is a third of their async cost.

    async def aappend(self, session_id: str, messages: Sequence[BaseMessage], *,
                      ttl: float | None = None) -> None:
        await run_locked(self._lock, self.append, session_id, messages, ttl=ttl)

    async def aget_messages(self, session_id: str, *, last: int | None = None,
                            skip_invalid: bool = False) -> list[BaseMessage]:
        return await run_locked(self._lock, self.get_messages, session_id, last=last,
                                skip_invalid=skip_invalid)

    # The lock is held by every caller of these helpers.

    def _live(self, session_id: str, now: float) -> _Session | None:
        session = self._sessions.get(session_id)
        if session is not None and session.deadline is not None and session.deadline <= now:
            self._drop(session_id)
            return None
        return session

    def _drop(self, session_id: str) -> None:
        session = self._sessions.pop(session_id)
        index = bisect.bisect_left(self._ids, session_id)
        del self._ids[index]
        key = (session.updated_at, session_id)
        del self._recent[bisect.bisect_left(self._recent, key)]

    def _create(self, session_id: str, wall: float) -> _Session:
        session = self._sessions[session_id] = _Session(wall, wall)
        bisect.insort(self._ids, session_id)
        bisect.insort(self._recent, (wall, session_id))
        return session

    def _touch(self, session_id: str, session: _Session, wall: float) -> None:
        old = (session.updated_at, session_id)
        del self._recent[bisect.bisect_left(self._recent, old)]
        session.updated_at = wall
        bisect.insort(self._recent, (wall, session_id))

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("this store is closed")

    # -- the contract ------------------------------------------------------------------------

    def setup(self) -> None:
        self._check_open()

    def _check_sizes(self, batch: Sequence[BaseMessage]) -> None:
        limit = self.max_message_bytes
        texts: list[str] = []
        for message in batch:
            bound = _size_bound(message)
            if bound is None or bound > limit:
                try:
                    texts.append(_MEASURE.encode(message_to_dict(message)))
                except (ValueError, RecursionError):
                    continue  # a circular structure: an object only this store can hold
        self.check_sizes(texts)

    def append(self, session_id: str, messages: Sequence[BaseMessage], *,
               ttl: float | None = None) -> None:
        validate_session_id(session_id)
        batch = check_messages(messages)
        ttl = validate_ttl(ttl) or self.ttl
        if not batch:
            return
        self._check_sizes(batch)
        wall, now = time.time(), time.monotonic()
        with self._lock:
            self._check_open()
            session = self._live(session_id, now)
            if session is None:
                session = self._create(session_id, wall)
            for message in batch:
                mid = message.id
                if isinstance(mid, str):
                    if mid in session.ids:
                        continue  # already stored: a retried append stores it once
                    session.ids.add(mid)
                session.messages.append(message)
            self._touch(session_id, session, wall)
            if ttl is not None:
                session.deadline, session.expires_at = now + ttl, wall + ttl
            # Without a ttl an append keeps an expiry set by expire(): refreshing is
            # only meaningful for a known ttl.

    def get_messages(self, session_id: str, *, last: int | None = None,
                     skip_invalid: bool = False) -> list[BaseMessage]:
        # skip_invalid: accepted for the contract; message objects are always readable.
        validate_session_id(session_id)
        check_last(last)
        with self._lock:
            self._check_open()
            session = self._live(session_id, time.monotonic())
            if session is None:
                return []
            if last is None:
                return list(session.messages)
            return session.messages[-last:] if last else []

    def iter_messages(self, session_id: str, *, page_size: int = 1000,
                      skip_invalid: bool = False) -> Iterator[BaseMessage]:
        """The session's messages as it was when the iteration began, oldest first, a
        slice of ``page_size`` at a time (taken under the lock)."""
        validate_session_id(session_id)
        check_limit(page_size)
        with self._lock:
            self._check_open()
            session = self._live(session_id, time.monotonic())
            if session is None:
                return iter(())
            # The list only ever grows (a deleted session's is dropped whole): its first
            # ``end`` messages stay what they are now.
            messages, end = session.messages, len(session.messages)
        return self._pages(messages, end, page_size)

    def _pages(self, messages: list[BaseMessage], end: int, page_size: int
               ) -> Iterator[BaseMessage]:
        for start in range(0, end, page_size):
            with self._lock:
                page = messages[start:min(start + page_size, end)]
            yield from page

    def delete_session(self, session_id: str) -> bool:
        validate_session_id(session_id)
        with self._lock:
            self._check_open()
            now = time.monotonic()
            had_records = self._live_records(session_id, now) is not None
            self._records.pop(session_id, None)
            if self._live(session_id, now) is None:
                return had_records
            self._drop(session_id)
            return True

    def list_sessions(self, *, order: Order = "id", owner: str | None = None,
                      prefix: str = "", metadata: Mapping[str, str] | None = None,
                      limit: int = 100, cursor: str | None = None) -> SessionPage:
        query = check_list_args(order, owner, prefix, metadata, limit, cursor)
        with self._lock:
            self._check_open()
            if query.order == "recent":
                return self._list_recent(query)
            # Ids with the prefix are contiguous in the sorted list, starting here.
            index = bisect.bisect_left(self._ids, prefix)
            if cursor is not None:
                index = max(index, bisect.bisect_right(self._ids, cursor))
            found: list[str] = []
            now = time.monotonic()
            while index < len(self._ids) and len(found) <= limit:
                sid = self._ids[index]
                if not sid.startswith(prefix):
                    break
                if self._wanted(self._sessions[sid], query, now):
                    found.append(sid)
                index += 1
        if len(found) > limit:
            return SessionPage(found[:limit], found[limit - 1])
        return SessionPage(found, None)

    @staticmethod
    def _wanted(session: _Session, query: ListQuery, now: float) -> bool:
        return ((session.deadline is None or session.deadline > now)
                and (query.owner is None or session.owner == query.owner)
                and metadata_matches(session.metadata, query.metadata))

    def _list_recent(self, query: ListQuery) -> SessionPage:
        """Newest first: walk the (updated_at, id) list backwards from the cursor."""
        index = len(self._recent)
        if query.cursor is not None:
            updated, last = decode_recent_cursor(query.cursor)
            if not isinstance(updated, float | int):
                raise InputError(f"not a cursor of this store: {query.cursor!r:.80}")
            index = bisect.bisect_left(self._recent, (updated, last))
        found: list[tuple[float, str]] = []
        now = time.monotonic()
        while index > 0 and len(found) <= query.limit:
            index -= 1
            key = self._recent[index]
            if key[1].startswith(query.prefix) and self._wanted(self._sessions[key[1]],
                                                                 query, now):
                found.append(key)
        if len(found) > query.limit:
            updated, last = found[query.limit - 1]
            return SessionPage([sid for _, sid in found[:query.limit]],
                               recent_cursor(updated, last))
        return SessionPage([sid for _, sid in found], None)

    def session_info(self, session_id: str) -> SessionInfo | None:
        validate_session_id(session_id)
        with self._lock:
            self._check_open()
            session = self._live(session_id, time.monotonic())
            if session is None:
                return None
            return SessionInfo(session_id, len(session.messages), _utc(session.created_at),
                               _utc(session.updated_at), _utc(session.expires_at),
                               session.title, dict(session.metadata), session.owner,
                               session.parent, session.fork_point)

    def _update_session(self, session_id: str, changes: SessionChanges) -> None:
        given = changes.given()
        wall = time.time()
        with self._lock:
            self._check_open()
            session = self._live(session_id, time.monotonic())
            if session is None:
                session = self._create(session_id, wall)
                if self.ttl is not None:
                    session.deadline = time.monotonic() + self.ttl
                    session.expires_at = wall + self.ttl
            for name, value in given.items():
                setattr(session, name, dict(value) if name == "metadata" else value)

    def expire(self, session_id: str, ttl: float | None) -> None:
        validate_session_id(session_id)
        ttl = validate_ttl(ttl)
        with self._lock:
            self._check_open()
            session = self._live(session_id, time.monotonic())
            records = self._live_records(session_id, time.monotonic())
            if records is not None:
                records.deadline = None if ttl is None else time.monotonic() + ttl
            if session is None:
                return
            if ttl is None:
                session.deadline = session.expires_at = None
            else:
                session.deadline = time.monotonic() + ttl
                session.expires_at = time.time() + ttl

    def purge_expired(self) -> int:
        now = time.monotonic()
        with self._lock:
            self._check_open()
            expired = [sid for sid, s in self._sessions.items()
                       if s.deadline is not None and s.deadline <= now]
            for sid in expired:
                self._drop(sid)
            for sid in [sid for sid, r in self._records.items()
                        if r.deadline is not None and r.deadline <= now]:
                del self._records[sid]
        return len(expired)

    def close(self) -> None:
        with self._lock:
            self._closed = True

    def destroy(self) -> None:
        """Forget every session."""
        with self._lock:
            self._sessions.clear()
            self._ids.clear()
            self._recent.clear()
            self._records.clear()

    # -- records -----------------------------------------------------------------------------

    supports_records = True

    def _live_records(self, session_id: str, now: float) -> _Records | None:
        records = self._records.get(session_id)
        if records is not None and records.deadline is not None and records.deadline <= now:
            del self._records[session_id]
            return None
        return records

    def put_records(self, session_id: str, records: Mapping[str, bytes], *,
                    delete: Collection[str] = (), ttl: float | None = None) -> None:
        validate_session_id(session_id)
        batch = check_record_batch(records, delete, self.max_message_bytes)
        ttl = validate_ttl(ttl) or self.ttl
        now = time.monotonic()
        with self._lock:
            self._check_open()
            space = self._live_records(session_id, now)
            if space is None:
                if not batch:
                    return
                space = self._records[session_id] = _Records()
            for key, value in batch.items():
                if key not in space.values:
                    bisect.insort(space.keys, key)
                space.values[key] = value
            for key in delete:
                if space.values.pop(key, None) is not None:
                    del space.keys[bisect.bisect_left(space.keys, key)]
            if ttl is not None:
                space.deadline = now + ttl
            if not space.keys:
                del self._records[session_id]

    def get_records(self, session_id: str, keys: Collection[str]) -> dict[str, bytes]:
        validate_session_id(session_id)
        wanted = check_record_keys(keys)
        with self._lock:
            self._check_open()
            space = self._live_records(session_id, time.monotonic())
            if space is None:
                return {}
            return {key: space.values[key] for key in wanted if key in space.values}

    def scan_records(self, session_id: str, prefix: str = "", *, after: str | None = None,
                     before: str | None = None, limit: int | None = None,
                     reverse: bool = False, keys_only: bool = False
                     ) -> list[tuple[str, bytes]]:
        validate_session_id(session_id)
        check_scan_args(prefix, after, before, limit)
        with self._lock:
            self._check_open()
            space = self._live_records(session_id, time.monotonic())
            if space is None:
                return []
            return scan_sorted(space.keys, space.values, prefix, after, before, limit,
                               reverse, keys_only)

    def delete_records(self, session_id: str, keys: Collection[str] | None = None, *,
                       prefix: str | None = None) -> None:
        validate_session_id(session_id)
        wanted = None if keys is None else check_record_keys(keys)
        if prefix is not None:
            validate_record_key(prefix)
        with self._lock:
            self._check_open()
            space = self._live_records(session_id, time.monotonic())
            if space is None:
                return
            if wanted is None and prefix is None:
                del self._records[session_id]
                return
            doomed = set(wanted or ())
            if prefix is not None:
                doomed.update(key for key in space.keys if key.startswith(prefix))
            for key in doomed:
                if space.values.pop(key, None) is not None:
                    del space.keys[bisect.bisect_left(space.keys, key)]
            if not space.keys:
                del self._records[session_id]
