"""Cosmos DB session operations (pure): generators of requests, as in ``_ops``.

``update_session`` rewrites the head alone (the messages are not read): If-Match on the
etag the head-first query just read, retried with backoff when another writer got there
first; the update time, count and expiry stay as they are (a replaced head's ``ttl`` is
recomputed from ``x``: Cosmos DB counts an item's ttl from its last write). A session
that does not exist, or has expired, is created empty (a new incarnation), with the
store's ttl. ``session_info`` is one query, listing one query per page and ``stats`` two
aggregates over the heads (see :mod:`threadline.stores.cosmos._session_docs`).
"""

from __future__ import annotations

import time
from typing import Any

from threadline._errors import StoreError
from threadline.stores._base import SessionInfo, SessionPage, validate_session_id
from threadline.stores._sessions import ListQuery, SessionChanges, StoreStats
from threadline.stores.cosmos._docs import (
    _ATTEMPTS,
    HEAD_ID,
    SessionState,
    _head_body,
    partition_key,
)
from threadline.stores.cosmos._ops import (
    _OK,
    Operation,
    _backoff,
    _Context,
    _Query,
    _read_state,
    _Write,
)
from threadline.stores.cosmos._session_docs import (
    STATS_SQL,
    apply_changes,
    list_query,
    page_of,
    session_info,
)

__all__ = ["list_sessions_op", "session_info_op", "stats_op", "update_session_op"]

_CONFLICTS = (404, 409, 412)


def update_session_op(ctx: _Context, session_id: str,
                      changes: SessionChanges) -> Operation[None]:
    """Set the given fields of a session's head, creating the session if needed."""
    return _update(ctx, validate_session_id(session_id), changes)


def _update(ctx: _Context, sid: str, changes: SessionChanges) -> Operation[None]:
    pk = partition_key(sid)
    for attempt in range(_ATTEMPTS):
        state = yield from _read_state(pk)
        now = time.time()
        head = state.head
        if head is not None and state.live(now):
            body = _head_body(pk, sid, int(head["e"]), state.count(), float(head["c"]),
                              state.updated(), head.get("x"), now,
                              carry=apply_changes(head, changes))
            status, new = yield _Write("replace", pk, HEAD_ID, body, head["_etag"])
            after = SessionState(new, state.newest, state.written)
        else:
            # A new incarnation (as an append would start): a new epoch, so the messages
            # of an expired one never resurface.
            epoch = max(int(now * 1000), int(head["e"]) + 1 if head is not None else 0)
            expires = None if ctx.ttl is None else now + ctx.ttl
            body = _head_body(pk, sid, epoch, 0, now, now, expires, now,
                              carry=apply_changes(None, changes))
            if head is None:
                status, new = yield _Write("create", pk, HEAD_ID, body)
            else:
                status, new = yield _Write("replace", pk, HEAD_ID, body, head["_etag"])
            after = SessionState(new)
        if status in _OK:
            ctx.remember(pk, after)
            return
        if status not in _CONFLICTS:
            raise StoreError(f"updating a session failed (HTTP {status})")
        ctx.remember(pk, None)
        yield _backoff(attempt)
    raise StoreError(f"updating a session failed: {_ATTEMPTS} conflicting writers in a row")


def session_info_op(session_id: str) -> Operation[SessionInfo | None]:
    return _info(session_id, partition_key(session_id))


def _info(session_id: str, pk: str) -> Operation[SessionInfo | None]:
    state = yield from _read_state(pk)
    if state.head is None or not state.live(time.time()):
        return None
    return session_info(session_id, state)


def list_sessions_op(query: ListQuery) -> Operation[SessionPage]:
    """One page of ``list_sessions`` (a bad cursor is refused here, before anything is
    sent)."""
    sql, params = list_query(query, time.time())
    return _list(query, sql, params)


def _list(query: ListQuery, sql: str, params: dict[str, Any]) -> Operation[SessionPage]:
    docs = yield _Query(sql, {**params, "@now": time.time()}, None)
    return page_of(docs, query)


def _number(values: list[Any]) -> int:
    """The value of an aggregate (none over an empty container, on some servers)."""
    return int(values[0]) if values and isinstance(values[0], int | float) else 0


def stats_op() -> Operation[StoreStats]:
    now = time.time()
    sessions = yield _Query(STATS_SQL[0], {"@now": now}, None)
    messages = yield _Query(STATS_SQL[1], {"@now": now}, None)
    return StoreStats(_number(sessions), _number(messages))
