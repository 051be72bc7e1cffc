"""Cosmos DB sessions as objects (pure): the head's session fields and the listing queries.

The head document (``"~session"``, see :mod:`threadline.stores.cosmos._docs`) is the
session's meta document. Besides its count ``n``, times ``c`` / ``u`` and expiry ``x``
it carries, when set:

* ``ti`` the title, ``md`` the metadata (an object of strings), ``ow`` the owner,
  ``pa`` the parent and ``fp`` the fork point (absent when not set: a cleared field is
  removed, so a filter never meets a null);
* ``r``, the recent-order key ``"<updated µs, 20 digits>|<session id>"``
  (:func:`~threadline.stores.cosmos._docs.recent_key`), rewritten with ``u`` by every
  append and never by ``update_session``: renaming does not reorder the listing.

Every rewrite of the head (append, expire, update) copies these fields from the head it
replaces, under the same If-Match, so no writer loses another's title; a new
incarnation (after expiry or delete) starts without them.

Listing is one cross-partition query over the heads, parameterised throughout: the
owner, prefix, cursor and every metadata key and value are ``@`` parameters (metadata
keys through bracket access, ``c.md[@k0] = @v0``: a key is user data, never part of the
query text). ``order="recent"`` sorts on ``r`` alone (``ORDER BY c.r DESC``, the default
range index serves it; two ORDER BY properties would need a composite index) with keyset
pages (``c.r < @cursor``); ``order="id"`` sorts on ``sid`` as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from threadline._errors import InputError
from threadline.stores._base import SessionInfo, SessionPage
from threadline.stores._sessions import (
    ListQuery,
    SessionChanges,
    decode_recent_cursor,
    recent_cursor,
)
from threadline.stores.cosmos._docs import SESSION_KEYS, SessionState

__all__ = ["FIELDS", "STATS_SQL", "apply_changes", "list_query", "page_of", "session_info"]

#: ``SessionChanges`` field -> head document key.
FIELDS: Final = dict(zip(("title", "metadata", "owner", "parent", "fork_point"),
                         SESSION_KEYS, strict=True))

_LIVE = "c.t = 'h' AND (IS_NULL(c.x) OR c.x > @now)"

#: ``stats()``: live sessions, and their messages (two aggregates: the SDKs aggregate
#: ``SELECT VALUE`` across partitions everywhere).
STATS_SQL: Final = (f"SELECT VALUE COUNT(1) FROM c WHERE {_LIVE}",
                    f"SELECT VALUE SUM(c.n) FROM c WHERE {_LIVE}")


def apply_changes(head: Mapping[str, Any] | None, changes: SessionChanges) -> dict[str, Any]:
    """The session fields after ``changes``, by document key: those of ``head`` (None:
    a new session), with the given ones set, or removed when cleared (None, ``{}``)."""
    fields = {key: head[key] for key in SESSION_KEYS
              if head is not None and head.get(key) is not None}
    for name, value in changes.given().items():
        key = FIELDS[name]
        if value is None or value == {}:
            fields.pop(key, None)
        else:
            fields[key] = dict(value) if isinstance(value, Mapping) else value
    return fields


def _utc(value: Any) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(float(value), UTC)


def session_info(session_id: str, state: SessionState) -> SessionInfo:
    """What the head of a live session says (``state`` from the head-first query)."""
    head = state.head
    assert head is not None
    metadata = head.get("md")
    fork_point = head.get("fp")
    return SessionInfo(
        session_id, state.count(), _utc(head["c"]), _utc(state.updated()), _utc(head.get("x")),
        title=head.get("ti"),
        metadata=dict(metadata) if isinstance(metadata, Mapping) else {},
        owner=head.get("ow"), parent=head.get("pa"),
        fork_point=None if fork_point is None else int(fork_point))


def _recent_after(cursor: str) -> str:
    """The ``r`` a recent-first page ended at; a cursor not made by this store (not an
    ``r`` key of its id) is an :class:`InputError`."""
    key, session_id = decode_recent_cursor(cursor)
    if not isinstance(key, str) or not key.endswith("|" + session_id) \
            or not key[:20].isdigit() or key[20:21] != "|":
        raise InputError(f"not a cursor of this store's recent-first listing: {cursor!r:.80}")
    return key


def list_query(query: ListQuery, now: float) -> tuple[str, dict[str, Any]]:
    """The SQL text and parameters of one page of ``list_sessions`` (cursor checked
    here, before anything is sent). Only parameter names (``@k0``, ``@v0``...) are
    formatted into the text; every value is a parameter."""
    where = [_LIVE]
    params: dict[str, Any] = {"@k": query.limit + 1, "@now": now}
    if query.prefix:
        where.append("STARTSWITH(c.sid, @p)")
        params["@p"] = query.prefix
    if query.owner is not None:
        where.append("c.ow = @o")
        params["@o"] = query.owner
    for index, (key, value) in enumerate((query.metadata or {}).items()):
        where.append(f"c.md[@mk{index}] = @mv{index}")
        params[f"@mk{index}"], params[f"@mv{index}"] = key, value
    if query.order == "recent":
        if query.cursor is not None:
            where.append("c.r < @cur")
            params["@cur"] = _recent_after(query.cursor)
        return (f"SELECT TOP @k c.sid, c.r FROM c WHERE {' AND '.join(where)} "
                "ORDER BY c.r DESC", params)
    if query.cursor is not None and query.cursor >= query.prefix:
        where.append("c.sid > @cur")
        params["@cur"] = query.cursor
    return f"SELECT TOP @k c.sid FROM c WHERE {' AND '.join(where)} ORDER BY c.sid", params


def page_of(docs: list[dict[str, Any]], query: ListQuery) -> SessionPage:
    """The page of the answer to :func:`list_query` (which asked for one more than
    ``limit``, to know whether a next page exists)."""
    ids = [str(doc["sid"]) for doc in docs[:query.limit]]
    if len(docs) <= query.limit:
        return SessionPage(ids, None)
    last = docs[query.limit - 1]
    if query.order == "recent":
        return SessionPage(ids, recent_cursor(str(last["r"]), str(last["sid"])))
    return SessionPage(ids, str(last["sid"]))
