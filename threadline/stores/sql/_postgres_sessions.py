"""PostgreSQL's side of the sessions contract (pure): fields, listings, search, stats, fork.

Every builder returns ONE statement as an :class:`~threadline.stores.sql._server.Op`
(:func:`search_steps` is a generator of them), like the rest of
:mod:`threadline.stores.sql._postgres_statements` (whose migration 4 adds the columns and
indexes used here); :data:`STATEMENTS` is the backend's whole table.
Statement texts are composed from the filters a call uses (never from their values), so
each shape gets its own plan instead of a generic one full of ``%s IS NULL OR ...``.

Fields are columns of the sessions row (``metadata`` as ``jsonb``, NULL when empty, so a
metadata filter is ``metadata @> %s``). ``update_session`` is one upsert that writes only
the given fields and never ``updated_at`` (the time of the last append).

Listings read an index in the order they return rows, with keyset pagination:
``(updated_at, id)`` walked backwards for the recent order, ``(owner, updated_at, id)``
and ``(owner, id)`` for one owner's sessions, ``(id)`` by id. An index cannot hold a
whole session id (up to 16 K characters, more than a btree entry), so it holds the first
:data:`~threadline.stores.sql._postgres_statements.ID_KEY_CHARS` characters in byte
order (``COLLATE "C"``) and the full id breaks the rare ties of that head (an
incremental sort of rows that share it). The recent cursor is the last row's
``updated_at`` (ISO 8601, microseconds: the column's full precision) and id, compared
as a row value.

Search: the GIN index on ``to_tsvector('simple', words)``, where ``words`` are a
message's distinct case-folded words as
:func:`~threadline.stores._sessions.search_terms` splits
:func:`~threadline.stores._sessions.message_text` (its text, text blocks of list
content, tool calls' names and arguments), computed by threadline when it stores the
message. Each word passes PostgreSQL's parser and the ``simple`` dictionary exactly as
the same term of a query does (``plainto_tsquery('simple', ' '.join(terms))``, a bound
parameter), so the index finds every message :func:`message_matches` accepts, except:
words longer than 2 KB; words past the first 512 KB of a message's distinct words; a
term made only of characters PostgreSQL's parser takes for no word (rare symbols such as
superscript digits, depending on the database's ``LC_CTYPE``); rows another program
wrote (no ``words``); and messages stored before the upgrade to this schema until
:func:`fill_steps` has reached them. Candidates come newest first (by message id), a few
more than ``limit`` per round trip; each is decoded and checked in Python (the source of
truth) and its position is the count of its session's messages before it (on the ``(sid,
id)`` index). :func:`search_steps` reads the newest messages first, then asks the index
for older ones, page by page, until ``limit`` hits or no candidates are left.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Sequence
from datetime import UTC, datetime
from typing import Any

from threadline._errors import InputError, MessageFormatError, MissingDependencyError
from threadline.stores._base import SessionInfo, SessionPage, decode_message
from threadline.stores._sessions import (
    ListQuery,
    SearchHit,
    SessionChanges,
    StoreStats,
    decode_recent_cursor,
    make_snippet,
    message_matches,
    message_text,
    recent_cursor,
)
from threadline.stores.sql._common import prefix_upper_bound
from threadline.stores.sql._postgres_statements import (
    _LIVE,
    ID_KEY_CHARS,
    PING,
    Names,
    _after_op,
    _append_op,
    _delete_op,
    _destroy_op,
    _expire_op,
    _get_op,
    _purge_op,
    _session_hash,
    _utc,
    encoded_words,
    id_key,
    tsvector,
)
from threadline.stores.sql._server import Op, Rows, Statements, no_result

try:
    from psycopg import sql
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise MissingDependencyError("psycopg and psycopg-pool", "postgres") from exc

__all__ = ["FIELDS", "STATEMENTS", "fill_steps", "fork_op", "search_steps"]

#: The session fields ``update_session`` and ``fork`` write, with their SQL types.
FIELDS = {"title": "text", "metadata": "jsonb", "owner": "text", "parent": "text",
          "fork_point": "integer"}
_DEADLINE = sql.SQL("now() + %(ttl)s::float8 * interval '1 second'")
_EXPIRED = sql.SQL("s.expires_at <= now()")
_INFO_COLUMNS = sql.SQL("s.message_count, s.created_at, s.updated_at, s.expires_at, s.title,"
                        " s.metadata, s.owner, s.parent, s.fork_point")
#: Candidates per search round trip beyond ``limit``, and the most per round trip.
_SEARCH_SLACK = 10
_SEARCH_PAGE = 1000
#: How many of the newest messages a search reads in id order before it asks the index.
_RECENT_WINDOW = 1000


def _info_of(session_id: str, row: Sequence[Any]) -> SessionInfo:
    count, created, updated, expires, title, metadata, owner, parent, fork_point = row
    return SessionInfo(session_id, int(count), _utc(created), _utc(updated), _utc(expires),
                       title, dict(metadata or {}), owner, parent, fork_point)


def _info_op(n: Names, session_id: str) -> Op[SessionInfo | None]:
    query = sql.SQL(
        "SELECT {columns} FROM {s} AS s"
        " WHERE s.session_hash = %s AND s.session_id = %s AND {live}"
    ).format(columns=_INFO_COLUMNS, s=n.sessions, live=_LIVE)
    return Op(query, (_session_hash(session_id), session_id),
              lambda rows: _info_of(session_id, rows[0]) if rows else None)


def _update_op(n: Names, session_id: str, changes: SessionChanges,
               ttl: float | None) -> Op[None]:
    """Set the given fields (creating the session, empty, if it does not exist), in one
    upsert. ``updated_at`` stays: it is the time of the last append. An expired session
    that was not purged yet starts again: its messages go (``gone``, under the row's
    lock) and so do the fields not given. The insert reads ``gone`` so that the row is
    locked and its messages deleted before the upsert changes it (an unread CTE would
    run last, when ``old`` no longer sees the row as expired)."""
    given = changes.given()
    params: dict[str, Any] = {"h": _session_hash(session_id), "sid": session_id, "ttl": ttl}
    for name, value in given.items():
        params[name] = json.dumps(value) if name == "metadata" and value else (
            None if name == "metadata" else value)
    columns = sql.SQL("").join(sql.SQL(", ") + sql.Identifier(name) for name in given)
    values = sql.SQL("").join(
        sql.SQL(", %({})s::{}").format(sql.SQL(name), sql.SQL(FIELDS[name])) for name in given)
    fields = sql.SQL(", ").join(
        sql.SQL("{f} = EXCLUDED.{f}" if name in given else
                "{f} = CASE WHEN {expired} THEN NULL ELSE s.{f} END").format(
            f=sql.Identifier(name), expired=_EXPIRED) for name in FIELDS)
    query = sql.SQL(
        "WITH old AS MATERIALIZED (SELECT s.sid FROM {s} AS s WHERE s.session_hash = %(h)s"
        " AND s.session_id = %(sid)s AND {expired} FOR UPDATE),"
        " gone AS (DELETE FROM {m} WHERE sid IN (SELECT sid FROM old) RETURNING 1)"
        " INSERT INTO {s} AS s (session_hash, session_id, expires_at{columns})"
        " SELECT %(h)s, %(sid)s, {deadline}{values} FROM (SELECT count(*) FROM gone) AS g"
        " ON CONFLICT (session_hash) DO UPDATE SET"
        " created_at = CASE WHEN {expired} THEN now() ELSE s.created_at END,"
        " updated_at = CASE WHEN {expired} THEN now() ELSE s.updated_at END,"
        " message_count = CASE WHEN {expired} THEN 0 ELSE s.message_count END,"
        " expires_at = CASE WHEN {expired} THEN EXCLUDED.expires_at ELSE s.expires_at END,"
        " {fields}"
        " WHERE s.session_id = EXCLUDED.session_id"
    ).format(s=n.sessions, m=n.messages, expired=_EXPIRED, columns=columns, values=values,
             deadline=_DEADLINE, fields=fields)
    return Op(query, params, no_result, write=True)


# -- listing -------------------------------------------------------------------------------

def _recent_position(cursor: str) -> tuple[datetime, str]:
    """The ``(updated_at, id)`` a recent-first page ended at; a cursor this store did
    not make is an :class:`InputError`."""
    updated, last = decode_recent_cursor(cursor)
    bad = InputError(f"not a cursor of a PostgreSQL recent-first listing: {cursor!r:.80}")
    if not isinstance(updated, str):
        raise bad
    try:
        stamp = datetime.fromisoformat(updated)
    except ValueError:
        raise bad from None
    if stamp.tzinfo is None:
        raise bad
    return stamp, last


def _page_op(n: Names, query: ListQuery) -> Op[SessionPage]:
    key = id_key()
    full = sql.SQL('s.session_id COLLATE "C"')
    where: list[sql.Composable] = [_LIVE]
    params: dict[str, Any] = {"n": query.limit + 1}
    if query.owner is not None:
        where.append(sql.SQL("s.owner = %(owner)s"))
        params["owner"] = query.owner
    if query.prefix:
        where.append(sql.SQL("starts_with(s.session_id, %(prefix)s)"))
        params["prefix"] = query.prefix
        if query.order == "id":  # the same range on the index's head of the id
            head = query.prefix[:ID_KEY_CHARS]
            where.append(sql.SQL("{key} >= %(low)s").format(key=key))
            params["low"] = head
            if (high := prefix_upper_bound(head)) is not None:
                where.append(sql.SQL("{key} < %(high)s").format(key=key))
                params["high"] = high
    if query.metadata:
        where.append(sql.SQL("s.metadata @> %(metadata)s::jsonb"))
        params["metadata"] = json.dumps(query.metadata)
    after = sql.SQL("left(%(after)s::text, {chars}) COLLATE \"C\", %(after)s::text"
                    " COLLATE \"C\")").format(chars=sql.Literal(ID_KEY_CHARS))
    if query.order == "recent":
        if query.cursor is not None:
            params["updated"], params["after"] = _recent_position(query.cursor)
            where.append(sql.SQL("(s.updated_at, {key}, {full}) < (%(updated)s::timestamptz, "
                                 ).format(key=key, full=full) + after)
        order = sql.SQL("s.updated_at DESC, {key} DESC, {full} DESC").format(key=key,
                                                                              full=full)
    else:
        if query.cursor is not None:
            params["after"] = query.cursor
            where.append(sql.SQL("({key}, {full}) > (").format(key=key, full=full) + after)
        order = sql.SQL("{key}, {full}").format(key=key, full=full)
    statement = sql.SQL(
        "SELECT s.session_id, s.updated_at FROM {s} AS s WHERE {where}"
        " ORDER BY {order} LIMIT %(n)s"
    ).format(s=n.sessions, where=sql.SQL(" AND ").join(where), order=order)

    def page(rows: Rows) -> SessionPage:
        ids = [row[0] for row in rows[:query.limit]]
        if len(rows) <= query.limit:
            return SessionPage(ids, None)
        if query.order == "id":
            return SessionPage(ids, ids[-1])
        last, updated = rows[query.limit - 1]
        return SessionPage(ids, recent_cursor(updated.astimezone(UTC).isoformat(), last))

    return Op(statement, params, page)


# -- search and stats ----------------------------------------------------------------------

def _candidates_op(n: Names, terms: Sequence[str], owner: str | None, size: int,
                   before: int | None, floor: int | None = None,
                   recent: bool = False) -> Op[Rows]:
    """Up to ``size`` messages whose words hold every term, newest first (before message
    id ``before``): rows ``(id, session_id, message, position)``. ``recent``: only ids
    above ``floor`` (the newest messages, walked backwards on the primary key); else only
    ids up to ``floor``, ordered by an expression the primary key cannot serve, so the
    planner takes the GIN index (see :func:`search_steps`)."""
    where: list[sql.Composable] = [
        sql.SQL("{tsv} @@ plainto_tsquery('simple'::regconfig, %(query)s)").format(
            tsv=tsvector()), _LIVE]
    params: dict[str, Any] = {"query": " ".join(terms), "n": size}
    if owner is not None:
        where.append(sql.SQL("s.owner = %(owner)s"))
        params["owner"] = owner
    if before is not None:
        where.append(sql.SQL("m.id < %(before)s"))
        params["before"] = before
    if floor is not None:
        where.append(sql.SQL("m.id > %(floor)s" if recent else "m.id <= %(floor)s"))
        params["floor"] = floor
    order = sql.SQL("m.id DESC" if recent or floor is None else "m.id + 0 DESC")
    if owner is None:
        # The session of each of the page's rows only (a NULL one: expired, not a hit):
        # joined before the LIMIT, the planner hashes every session for a rare word.
        where.remove(_LIVE)
        query = sql.SQL(
            "SELECT c.id, (SELECT s.session_id FROM {s} AS s WHERE s.sid = c.sid AND {live}),"
            " c.message,"
            " (SELECT count(*) FROM {m} AS p WHERE p.sid = c.sid AND p.id < c.id)"
            " FROM (SELECT m.id, m.sid, m.message FROM {m} AS m WHERE {where}"
            " ORDER BY {order} LIMIT %(n)s) AS c ORDER BY c.id DESC"
        ).format(m=n.messages, s=n.sessions, live=_LIVE,
                 where=sql.SQL(" AND ").join(where), order=order)
        return Op(query, params, list)
    query = sql.SQL(
        "SELECT c.id, c.session_id, c.message,"
        " (SELECT count(*) FROM {m} AS p WHERE p.sid = c.sid AND p.id < c.id)"
        " FROM (SELECT m.id, m.sid, s.session_id, m.message"
        " FROM {m} AS m JOIN {s} AS s ON s.sid = m.sid WHERE {where}"
        " ORDER BY {order} LIMIT %(n)s) AS c ORDER BY c.id DESC"
    ).format(m=n.messages, s=n.sessions, where=sql.SQL(" AND ").join(where), order=order)
    return Op(query, params, list)


def _newest_id_op(n: Names) -> Op[int]:
    return Op(sql.SQL("SELECT coalesce(max(id), 0) FROM {m}").format(m=n.messages), (),
              lambda rows: int(rows[0][0]))


def _hits(rows: Rows, terms: Sequence[str]) -> list[SearchHit]:
    """The candidates that really match (decoded and checked in Python)."""
    hits: list[SearchHit] = []
    for _, session_id, encoded, position in rows:
        if session_id is None:
            continue  # its session expired
        try:
            text = message_text(decode_message(encoded))
        except MessageFormatError:
            continue  # a row threadline cannot read is not a hit
        if message_matches(text, terms):
            hits.append(SearchHit(session_id, int(position), make_snippet(text, terms)))
    return hits


def search_steps(n: Names, terms: Sequence[str], owner: str | None,
                 limit: int) -> Generator[Op[Any], Any, list[SearchHit]]:
    """The whole search, one candidates page per op (driven by
    :func:`~threadline.stores.sql._server.drive`).

    Two plans, because the planner cannot tell a rare word from a common one well enough
    (its estimate for a word outside its statistics is a guess, and with ``ORDER BY id
    DESC LIMIT`` it then walks the primary key backwards, computing every row's words: a
    rare word cost seconds at a million messages). First the newest
    :data:`_RECENT_WINDOW` messages, in id order (a common word fills the page there);
    then, if the page is not full, the older ones through the GIN index, pages growing
    until ``limit`` hits are found or no candidates are left."""
    hits: list[SearchHit] = []
    size = limit + _SEARCH_SLACK
    floor = max(0, (yield _newest_id_op(n)) - _RECENT_WINDOW)
    for recent in (True, False):
        before = None
        while True:
            rows = yield _candidates_op(n, terms, owner, size, before, floor, recent)
            hits.extend(_hits(rows, terms))
            if len(hits) >= limit:
                return hits[:limit]
            if len(rows) < size:
                break  # this part holds no more candidates
            before, size = rows[-1][0], min(size * 2, _SEARCH_PAGE)
    return hits


def _search_op(n: Names, terms: Sequence[str], owner: str | None,
               limit: int) -> Op[list[SearchHit]]:
    """The first page of :func:`search_steps` (what one round trip finds)."""
    op = _candidates_op(n, terms, owner, limit + _SEARCH_SLACK, None)
    return Op(op.query, op.params, lambda rows: _hits(rows, terms)[:limit])


def _stats_op(n: Names) -> Op[StoreStats]:
    """Live sessions, their messages (the counts the sessions rows keep) and the bytes
    of every table of the store with its indexes and TOAST."""
    query = sql.SQL(
        "SELECT count(*), coalesce(sum(s.message_count), 0),"
        " (SELECT sum(pg_total_relation_size(to_regclass(t)))"
        " FROM unnest(%s::text[]) AS t) FROM {s} AS s WHERE {live}"
    ).format(s=n.sessions, live=_LIVE)
    tables = [n.messages_regclass, n.sessions_regclass, n.recsets_regclass,
              n.records_regclass]

    def stats(rows: Rows) -> StoreStats:
        sessions, messages, size = rows[0]
        return StoreStats(int(sessions), int(messages), None if size is None else int(size))

    return Op(query, (tables,), stats)


# -- the upgrade's indexing -----------------------------------------------------------------

def fill_steps(n: Names, below: int | None,
               batch: int = 500) -> Generator[Op[Any], Rows, None]:
    """Index the messages stored before migration 4 (ids below ``below``), newest first,
    a page per two statements; the second also moves ``words_below`` down, so a fill cut
    short resumes where it was. Each page is its own transaction (a big store upgrades
    without one long lock, each statement within ``timeout``); until the fill ends, search
    does not find the older of those messages. Concurrent fills only repeat work."""
    while below is not None:
        rows = yield Op(sql.SQL("SELECT id, message FROM {m} WHERE id < %s"
                                " ORDER BY id DESC LIMIT %s").format(m=n.messages),
                        (below, batch), list)
        ids = [row[0] for row in rows]
        low = ids[-1] if len(rows) == batch else None  # None: this was the last page
        yield Op(sql.SQL(
            "WITH fill AS (UPDATE {m} AS m SET words = w.words"
            " FROM unnest(%(ids)s::bigint[], %(words)s::text[]) AS w (id, words)"
            " WHERE m.id = w.id AND w.words IS NOT NULL AND m.words IS NULL)"
            " UPDATE {schema} SET words_below = CASE WHEN %(low)s::bigint IS NULL"
            " OR words_below IS NULL THEN NULL ELSE least(words_below, %(low)s) END"
        ).format(m=n.messages, schema=n.schema),
            {"ids": ids, "words": [encoded_words(row[1]) for row in rows], "low": low},
            no_result, write=True)
        below = low



# -- fork ----------------------------------------------------------------------------------

def fork_op(n: Names, session_id: str, new_session_id: str, count: int,
            ttl: float | None) -> Op[SessionInfo | None]:
    """Copy the first ``count`` messages of a live session (with their ids and words)
    into a new one that carries its title, metadata and owner, in ONE statement: the
    fork appears whole or not at all. An expired, unpurged row of the new id is replaced
    (``dead``; the insert waits for it through ``d``). ``None`` if the source is gone; a
    live session of the new id made meanwhile fails the insert (unique violation)."""
    query = sql.SQL(
        "WITH src AS MATERIALIZED (SELECT s.sid, s.title, s.metadata, s.owner FROM {s} AS s"
        " WHERE s.session_hash = %(h)s AND s.session_id = %(sid)s AND {live}),"
        " dead AS (DELETE FROM {s} AS s WHERE s.session_hash = %(nh)s"
        " AND s.session_id = %(nid)s AND {expired} RETURNING s.sid),"
        " gone AS (DELETE FROM {m} WHERE sid IN (SELECT sid FROM dead)),"
        " tgt AS MATERIALIZED (SELECT nextval(pg_get_serial_sequence(%(seq)s, 'sid')) AS sid"
        " FROM src),"
        " ins AS (INSERT INTO {m} (sid, msg_key, message, words)"
        " SELECT tgt.sid, c.msg_key, c.message, c.words FROM tgt,"
        " (SELECT m.id, m.msg_key, m.message, m.words FROM {m} AS m JOIN src ON m.sid = src.sid"
        " ORDER BY m.id LIMIT %(count)s) AS c ORDER BY c.id RETURNING 1),"
        " n AS (SELECT count(*) AS copied FROM ins)"
        " INSERT INTO {s} AS s (sid, session_hash, session_id, expires_at, message_count,"
        " title, metadata, owner, parent, fork_point)"
        " SELECT tgt.sid, %(nh)s, %(nid)s, {deadline}, n.copied, src.title, src.metadata,"
        " src.owner, %(sid)s, %(count)s FROM tgt, src, n, (SELECT count(*) FROM dead) AS d"
        " RETURNING {columns}"
    ).format(s=n.sessions, m=n.messages, live=_LIVE, expired=_EXPIRED, deadline=_DEADLINE,
             columns=_INFO_COLUMNS)
    params = {"h": _session_hash(session_id), "sid": session_id,
              "nh": _session_hash(new_session_id), "nid": new_session_id,
              "seq": n.sessions_regclass, "count": count, "ttl": ttl}
    return Op(query, params,
              lambda rows: _info_of(new_session_id, rows[0]) if rows else None,
              retry=False, write=True)


STATEMENTS = Statements(append=_append_op, get=_get_op, delete=_delete_op, page=_page_op,
                        info=_info_op, expire=_expire_op, purge=_purge_op,
                        destroy=_destroy_op, ping=PING, after=_after_op, update=_update_op,
                        search=_search_op, stats=_stats_op)
