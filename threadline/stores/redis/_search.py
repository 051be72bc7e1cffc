"""Search on Redis (pure): the base's documented scan, pipelined.

Full-text search on Redis needs the RediSearch module (``FT.SEARCH``), which a plain
Redis server does not have (``MODULE LIST`` is empty on the servers this store is tested
on) and which indexes hashes or JSON documents, not LangChain's lists. So this store
answers as :func:`~threadline.stores._sessions.scan_search` does, with the same bound
(the :data:`~threadline.stores._sessions.SEARCH_SCAN_SESSIONS` most recently active
sessions, of ``owner`` if given), the same order (sessions newest first, a session's
hits newest first) and the same positions, but in far fewer round trips: a page of the
recent listing, then the messages of :data:`SESSIONS_PER_TRIP` sessions per round trip
(:data:`MESSAGES_PER_PAGE` each; longer sessions take more trips, together). At most one
page of rows per session of a trip is held at a time; only hits are kept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from threadline.stores._base import SessionPage, decode_messages
from threadline.stores._sessions import (
    SEARCH_SCAN_SESSIONS,
    ListQuery,
    SearchHit,
    make_snippet,
    message_matches,
    message_text,
)
from threadline.stores.redis import _scripts as lua
from threadline.stores.redis._keys import Keys, sid_bytes
from threadline.stores.redis._ops import Batch, Operation, by_id
from threadline.stores.redis._sessions import list_sessions_op

__all__ = ["MESSAGES_PER_PAGE", "SESSIONS_PER_TRIP", "search_op"]

#: Sessions whose messages one round trip reads.
SESSIONS_PER_TRIP = 50
#: Messages read per session and round trip.
MESSAGES_PER_PAGE = 500


@dataclass(slots=True)
class _Scan:
    """One session being read: rows read so far, messages decoded, hits found."""

    session_id: str
    read: int = 0
    decoded: int = 0
    hits: list[SearchHit] = field(default_factory=list)


def _scan_sessions(keys: Keys, session_ids: list[str],
                   terms: list[str]) -> Operation[list[list[SearchHit]]]:
    """Each session's hits, oldest first, reading all of them page by page together."""
    scans = [_Scan(session_id) for session_id in session_ids]
    pending = list(scans)
    while pending:
        # Counted from the lists' oldest end, as iter_messages: appends move nothing.
        replies = yield Batch([by_id(keys, lua.READ, sid_bytes(scan.session_id),
                                     -(scan.read + MESSAGES_PER_PAGE), -(scan.read + 1))
                               for scan in pending])
        still: list[_Scan] = []
        for scan, items in zip(pending, replies, strict=True):
            rows = list(items[::-1])
            for message in decode_messages(rows, session_id=scan.session_id,
                                           skip_invalid=True, start=scan.read):
                text = message_text(message)
                if message_matches(text, terms):
                    scan.hits.append(SearchHit(scan.session_id, scan.decoded,
                                               make_snippet(text, terms)))
                scan.decoded += 1
            scan.read += len(rows)
            if len(rows) == MESSAGES_PER_PAGE:
                still.append(scan)
        pending = still
    return [scan.hits for scan in scans]


def search_op(keys: Keys, terms: list[str], owner: str | None, limit: int, *,
              lister: Callable[[Any, ListQuery], Operation[SessionPage]] = list_sessions_op
              ) -> Operation[list[SearchHit]]:
    """``search`` (arguments checked by ``check_search_args``): see the module.
    ``lister``: the recent-first listing to walk (the cluster layout has its own)."""
    hits: list[SearchHit] = []
    cursor: str | None = None
    seen = 0
    while seen < SEARCH_SCAN_SESSIONS:
        size = min(SESSIONS_PER_TRIP, SEARCH_SCAN_SESSIONS - seen)
        page = yield from lister(keys, ListQuery("recent", owner, "", None, size,
                                                           cursor))
        found = yield from _scan_sessions(keys, page.session_ids, terms)
        for session_hits in found:
            seen += 1
            hits.extend(reversed(session_hits))
            if len(hits) >= limit:
                return hits[:limit]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    return hits
