"""Listing and sizing the sessions of a ``file://`` store (see
:mod:`threadline.stores._sessions` for the contract).

Cost. There is no index: both orders scan the directory (``os.scandir``) and read the
metadata file (:mod:`._meta`) of each session whose id has the prefix. ``order="id"``
sorts the ids and reads metadata only until the page is full (the whole directory when
filters skip most sessions); ``order="recent"`` reads every candidate's (its
``updated_at`` is the sort key) and keeps the newest with a heap. So a page costs
O(sessions) small file reads and JSON parses, some tens of µs each: about 0.1 s for a
recent-first page over 3,000 sessions (0.04 s by id), measured on a local SSD. That
suits the thousands of sessions a local directory holds; use SQLite beyond.

Recent order is keyset-paginated: the cursor (:func:`recent_cursor`) holds the last
session's ``(updated_at, id)``, at full float precision, and the next page takes the
sessions strictly below it in that order, so a page never repeats or skips a session
that did not move meanwhile (one appended to moves to the top, as in every backend).

A session whose metadata file is lost (torn, hostile: see :mod:`._meta`) is listed from
its history file (its modification time as ``updated_at``) and passes no owner or
metadata filter: it has neither any more.
"""

from __future__ import annotations

import heapq
import math
import time
from typing import TYPE_CHECKING, Any

from threadline._errors import InputError
from threadline.stores._base import SessionPage
from threadline.stores._sessions import (
    ListQuery,
    StoreStats,
    decode_recent_cursor,
    recent_cursor,
)
from threadline.stores.file._meta import (
    DATA,
    META,
    expired,
    lstat,
    read_meta,
    times,
    wanted,
)

if TYPE_CHECKING:
    from threadline.stores.file._store import FileStore

__all__ = ["list_page", "recent_key", "store_stats"]


def recent_key(cursor: str) -> tuple[float, str]:
    """The ``(updated, id)`` a recent-first page ended at; :class:`InputError` for a
    cursor this store did not make."""
    updated, last = decode_recent_cursor(cursor)
    if isinstance(updated, str) or not math.isfinite(updated):
        raise InputError(f"not a cursor of this store's recent listing: {cursor!r:.80}")
    return float(updated), last


def _live(store: FileStore, stem: str, now: float
          ) -> tuple[dict[str, Any] | None, float | None] | None:
    """A listed session's metadata and ``updated_at``; None if it expired or vanished
    (a lost metadata file and no history file: nothing is left of it)."""
    meta = read_meta(store.directory / (stem + META))
    if expired(meta, now):
        return None
    if meta is not None and "updated_at" in meta:
        return meta, meta["updated_at"]
    st = lstat(store.directory / (stem + DATA))
    if meta is None and st is None:
        return None
    return meta, times(meta, st)[1]


def list_page(store: FileStore, query: ListQuery) -> SessionPage:
    """One page of ``store.list_sessions``, for validated arguments."""
    now = time.time()
    stems = store._scan()
    if query.order == "recent":
        return _recent_page(store, stems, query, now)
    ids = sorted(sid for sid in stems if sid.startswith(query.prefix)
                 and (query.cursor is None or sid > query.cursor))
    page: list[str] = []
    for sid in ids:
        live = _live(store, stems[sid], now)
        if live is not None and wanted(live[0], query):
            page.append(sid)
            if len(page) > query.limit:
                return SessionPage(page[:query.limit], page[query.limit - 1])
    return SessionPage(page, None)


def _recent_page(store: FileStore, stems: dict[str, str], query: ListQuery,
                 now: float) -> SessionPage:
    below = None if query.cursor is None else recent_key(query.cursor)
    keys: list[tuple[float, str]] = []
    for sid, stem in stems.items():
        if not sid.startswith(query.prefix):
            continue
        live = _live(store, stem, now)
        if live is None or not wanted(live[0], query):
            continue
        # Sessions whose times were all lost sort as the oldest.
        key = (0.0 if live[1] is None else live[1], sid)
        if below is None or key < below:
            keys.append(key)
    top = heapq.nlargest(query.limit + 1, keys)
    if len(top) > query.limit:
        return SessionPage([sid for _, sid in top[:query.limit]],
                           recent_cursor(*top[query.limit - 1]))
    return SessionPage([sid for _, sid in top], None)


def store_stats(store: FileStore) -> StoreStats:
    """Sessions, messages and bytes (the history files' sizes) of the live sessions:
    a metadata read and an ``lstat`` or two each; a count is read from its history file
    only where the metadata no longer describes it."""
    sessions = messages = size = 0
    for sid, stem in store._scan().items():
        info = store.session_info(sid)
        if info is None:  # expired, or deleted meanwhile
            continue
        sessions += 1
        messages += info.message_count
        st = lstat(store.directory / (stem + DATA))
        size += 0 if st is None else st.st_size
    return StoreStats(sessions, messages, size)
