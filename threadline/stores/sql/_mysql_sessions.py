"""MySQL / MariaDB statements for sessions as objects (pure): metadata, listings,
full-text search, stats and forks, and the store's :data:`STATEMENTS` table.

Layout (migration 4 in :mod:`threadline.stores.sql._mysql_statements`): the sessions row
holds ``title``, ``metadata`` (JSON text), ``owner`` (utf8 bytes), ``parent``,
``fork_point`` and ``id_head`` (the first 768 bytes of the id, a generated column).

* ``update`` is one upsert that sets only the given fields: an existing session keeps
  its ``updated_at`` (renaming is not activity); a new one gets ``created_at =
  updated_at = now`` and the store's ttl; an expired (unpurged) one restarts empty, as an
  append restarts it.
* The recent listing walks ``recent (updated_at, id_head, sid)`` backwards, or
  ``owner_recent (owner, updated_at, id_head, sid)`` with an owner (``FORCE INDEX``: the
  plan must not depend on table statistics): no filesort, no OFFSET. The keyset is
  written as ``updated_at <= %s AND (...)`` so the range starts at the cursor. Ties in
  ``updated_at`` (one microsecond) go by descending id; ids longer than 768 bytes that
  share their head go by creation order after that. The cursor's ``updated`` value is
  ``"<updated_at to the microsecond>|<sid>"``.
* The listing by id walks ``id_order (id_head)`` (migration 5), or ``owner_id (owner,
  id_head, sid)`` with an owner, from the cursor's head: two statements in one round
  trip (see :func:`_by_id_op`), each a range of about a page, whatever the table holds.
* Filters are bound parameters: ``owner = %s``, ``LEFT(session_id, n) = %s`` and
  ``JSON_CONTAINS(metadata, %s)`` with the wanted pairs as a JSON object (an object
  contains another when every pair of it is there, compared exactly).
* Search (:func:`search_steps`): ``MATCH(search_text) AGAINST (%s IN BOOLEAN MODE)``
  with ``+"term"`` for each term (terms are letters and digits: no operator passes).
  InnoDB indexes no word shorter than ``innodb_ft_min_token_size`` nor longer than
  ``innodb_ft_max_token_size``/84 (the index has no stopwords): such terms are left out
  of the expression and checked only in Python; when no term is left the store falls
  back on the portable scan (:func:`~threadline.stores._sessions.scan_search`, the 1,000
  most recent sessions). Every candidate is checked with
  :func:`~threadline.stores._sessions.message_matches`; hits come newest first (by
  message id), the position is the count of the session's rows before it. InnoDB
  updates a FULLTEXT index at commit, and appends commit before they return, so a search
  right after an append finds it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Generator
from datetime import datetime
from typing import Any

from threadline._errors import InputError, MessageFormatError
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
from threadline.stores.sql._mysql_statements import (
    _LIVE,
    _NOW,
    _SESSION_COLUMNS,
    _TTL,
    PING,
    Names,
    ServerLimits,
    _after_op,
    _append_op,
    _delete_op,
    _destroy_op,
    _expire_op,
    _get_op,
    _hash,
    _id_bytes,
    _live,
    _micros,
    _purge_op,
    _text,
    _utc,
)
from threadline.stores.sql._server import Op, Rows, Statements, no_result

__all__ = ["STATEMENTS", "fork_op", "indexed_terms", "search_steps"]

#: Bytes of the id in ``id_head`` (the tie-break of the recent order).
ID_HEAD = 768
_EXPIRED = f"expires_at <= {_NOW}"
_STAMP = "%Y-%m-%d %H:%M:%S.%f"
_CURSOR = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}\|\d{1,19}")


def _column_value(name: str, value: Any) -> Any:
    """A field of ``SessionChanges`` as its column holds it."""
    if value is None:
        return None
    if name == "metadata":
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")) if value else None
    if name in ("owner", "parent"):
        return _id_bytes(value)
    return value


def _update_op(n: Names, session_id: str, changes: SessionChanges,
               ttl: float | None) -> Op[None]:
    given = changes.given()
    sets = "".join(f" {column} = VALUES({column})," if column in given
                   else f" {column} = IF({_EXPIRED}, NULL, {column}),"
                   for column in _SESSION_COLUMNS)
    # As in an append, everything that reads the old expires_at comes before it.
    query = (
        "START TRANSACTION;"
        f" INSERT INTO {n.s} (session_hash, session_id, created_at, updated_at, expires_at,"
        f" message_count, {', '.join(_SESSION_COLUMNS)})"
        f" VALUES (%s, %s, {_NOW}, {_NOW}, {_TTL}, 0, %s, %s, %s, %s, %s)"
        " ON DUPLICATE KEY UPDATE sid = LAST_INSERT_ID(sid),"
        f"{sets}"
        f" created_at = IF({_EXPIRED}, VALUES(created_at), created_at),"
        f" updated_at = IF({_EXPIRED}, VALUES(updated_at), updated_at),"
        f" message_count = IF({_EXPIRED}, 0, message_count),"
        f" floor_id = IF({_EXPIRED}, (SELECT COALESCE(MAX(id), 0) FROM {n.m}), floor_id),"
        f" expires_at = IF({_EXPIRED}, VALUES(expires_at), expires_at);"
        " SET @threadline_sid = LAST_INSERT_ID();"
        f" DELETE m FROM {n.m} AS m JOIN {n.s} AS s ON s.sid = m.sid"
        " WHERE m.sid = @threadline_sid AND m.id <= s.floor_id; COMMIT")
    values = tuple(_column_value(column, given.get(column)) for column in _SESSION_COLUMNS)
    params = (_hash(session_id), _id_bytes(session_id), _micros(ttl), *values)
    return Op(query, params, no_result, write=True)


def _info_op(n: Names, session_id: str) -> Op[SessionInfo | None]:
    query = ("SELECT s.message_count, s.created_at, s.updated_at, s.expires_at, s.title,"
             f" s.metadata, s.owner, s.parent, s.fork_point FROM {n.s} AS s"
             f" WHERE s.session_hash = %s AND s.session_id = %s AND {_LIVE}")

    def info(rows: Rows) -> SessionInfo | None:
        if not rows:
            return None
        count, created, updated, expires, title, metadata, owner, parent, fork = rows[0]
        return SessionInfo(
            session_id, int(count), _utc(created), _utc(updated), _utc(expires),
            title, json.loads(metadata) if metadata else {},
            None if owner is None else _text(owner), None if parent is None else _text(parent),
            None if fork is None else int(fork))

    return Op(query, (_hash(session_id), _id_bytes(session_id)), info)


def _filters(query: ListQuery) -> tuple[str, tuple[Any, ...]]:
    """The owner, prefix and metadata conditions (``AND ...``) and their parameters."""
    sql = ""
    params: tuple[Any, ...] = ()
    if query.owner is not None:
        sql, params = sql + " AND s.owner = %s", (*params, _id_bytes(query.owner))
    if query.prefix:
        raw = _id_bytes(query.prefix)
        sql, params = sql + " AND LEFT(s.session_id, %s) = %s", (*params, len(raw), raw)
    if query.metadata:
        wanted = json.dumps(query.metadata, ensure_ascii=False, separators=(",", ":"))
        sql, params = sql + " AND JSON_CONTAINS(s.metadata, %s)", (*params, wanted)
    return sql, params


def _page_op(n: Names, query: ListQuery) -> Op[SessionPage]:
    return _recent_op(n, query) if query.order == "recent" else _by_id_op(n, query)


def _by_id_op(n: Names, query: ListQuery) -> Op[SessionPage]:
    """A page by id: the first statement finds the ``id_head`` of the ``limit + 1``-th
    session after the cursor on the index, the second reads every session up to that
    head, in index order (both ranges of ``id_order``, or of ``owner_id`` with an owner);
    Python puts the few ids that share a 768-byte head in byte order. Reading whole
    groups of equal heads is what keeps long ids in order across pages."""
    where, params = _filters(query)
    if query.prefix:
        low = _id_bytes(query.prefix)[:ID_HEAD]
        where, params = where + " AND s.id_head >= %s", (*params, low)
        if (high := _successor(low)) is not None:
            where, params = where + " AND s.id_head < %s", (*params, high)
    if query.cursor is not None:
        last = _id_bytes(query.cursor)
        head = last[:ID_HEAD]
        where += " AND s.id_head >= %s AND (s.id_head > %s OR s.session_id > %s)"
        params = (*params, head, head, last)
    limit = query.limit
    index = "owner_id" if query.owner is not None else "id_order"
    table = f"FROM {n.s} AS s FORCE INDEX ({index})"
    # A user variable is a constant to the optimiser: the second range is bounded.
    sql = (f"SET @threadline_head = (SELECT MAX(h.id_head) FROM (SELECT s.id_head {table}"
           f" WHERE {_LIVE}{where} ORDER BY s.id_head LIMIT %s) AS h);"
           f" SELECT s.session_id {table} WHERE s.id_head <= @threadline_head AND {_LIVE}{where}"
           " ORDER BY s.id_head")

    def page(found: Rows) -> SessionPage:
        ordered = sorted(bytes(r[0]) for r in found)
        ids = [_text(sid) for sid in ordered[:limit]]
        return SessionPage(ids, ids[-1] if len(ordered) > limit else None)

    return Op(sql, (*params, limit + 1, *params), page)


def _successor(head: bytes) -> bytes | None:
    """The least byte string above every string starting with ``head`` (``None``: none)."""
    stripped = head.rstrip(b"\xff")
    return stripped[:-1] + bytes([stripped[-1] + 1]) if stripped else None


def _recent_op(n: Names, query: ListQuery) -> Op[SessionPage]:
    where, params = _filters(query)
    if query.cursor is not None:
        updated, sid, head = _decode_cursor(query.cursor)
        where += (" AND s.updated_at <= %s AND (s.updated_at < %s OR s.id_head < %s"
                  " OR (s.id_head = %s AND s.sid < %s))")
        params = (*params, updated, updated, head, head, sid)
    index = "owner_recent" if query.owner is not None else "recent"
    limit = query.limit
    sql = (f"SELECT s.session_id, s.updated_at, s.sid FROM {n.s} AS s FORCE INDEX ({index})"
           f" WHERE {_LIVE}{where}"
           " ORDER BY s.updated_at DESC, s.id_head DESC, s.sid DESC LIMIT %s")

    def page(rows: Rows) -> SessionPage:
        ids = [_text(r[0]) for r in rows[:limit]]
        if len(rows) <= limit:
            return SessionPage(ids, None)
        _, updated, sid = rows[limit - 1]
        return SessionPage(ids, recent_cursor(f"{updated.strftime(_STAMP)}|{sid}",
                                              ids[-1]))

    return Op(sql, (*params, limit + 1), page)


def _decode_cursor(cursor: str) -> tuple[str, int, bytes]:
    """``(updated_at, sid, id_head)`` of the row a recent page ended at."""
    updated, session_id = decode_recent_cursor(cursor)
    if not isinstance(updated, str) or not _CURSOR.fullmatch(updated):
        raise InputError(f"not a cursor of this store: {cursor!r:.80}")
    stamp, sid = updated.split("|")
    try:
        datetime.strptime(stamp, _STAMP)
    except ValueError:
        raise InputError(f"not a cursor of this store: {cursor!r:.80}") from None
    return stamp, int(sid), _id_bytes(session_id)[:ID_HEAD]


def _stats_op(n: Names) -> Op[StoreStats]:
    # InnoDB's data_length / index_length are estimates, refreshed with its statistics.
    query = ("SELECT COUNT(*), COALESCE(SUM(s.message_count), 0),"
             " (SELECT SUM(data_length + index_length) FROM information_schema.tables"
             "  WHERE table_schema = DATABASE() AND table_name IN (%s, %s, %s, %s))"
             f" FROM {n.s} AS s WHERE {_LIVE}")
    tables = (n.table, f"{n.table}_sessions", f"{n.table}_recsets", f"{n.table}_records")

    def stats(rows: Rows) -> StoreStats:
        sessions, messages, size = rows[0]
        return StoreStats(int(sessions), int(messages), None if size is None else int(size))

    return Op(query, tables, stats)


# -- search -------------------------------------------------------------------------------


def indexed_terms(terms: list[str], limits: ServerLimits) -> list[str]:
    """The terms the FULLTEXT index holds: words of an indexed length, every character
    a letter or digit (a case-folded word may gain a combining mark, which InnoDB's
    tokenizer could split on)."""
    return [term for term in terms
            if limits.min_word <= len(term) <= limits.max_word and term.isalnum()]


#: How many of the newest messages a search reads in id order before it asks the index.
RECENT_WINDOW = 1000


def search_steps(n: Names, terms: list[str], owner: str | None, limit: int,
                 limits: ServerLimits) -> Generator[Op[Rows], Rows, list[SearchHit] | None]:
    """The hits of a search, newest first; ``None`` when no term can use the index (scan
    instead).

    First the newest :data:`RECENT_WINDOW` messages, read in id order and checked in
    Python (their ``search_text`` first): InnoDB answers ``MATCH ... ORDER BY id DESC
    LIMIT`` by reading *every* match, seconds for a common word in a million messages,
    and a common word fills the page here. Then the older ones, from batches of FULLTEXT
    candidates, each checked in Python."""
    indexed = indexed_terms(terms, limits)
    if not indexed:
        return None
    against = " ".join(f'+"{term}"' for term in indexed)
    newest = yield Op(f"SELECT COALESCE(MAX(id), 0) FROM {n.m}", (), list)
    floor = max(0, int(newest[0][0]) - RECENT_WINDOW)
    window = yield _window_op(n, owner, floor)
    wanted = set(terms)
    found: list[tuple[int, str, str]] = []  # (id, session id, text)
    for session_id, message_id, message, words in window:
        if not wanted <= set(_text(words or b"").split()):
            continue
        try:
            text = message_text(decode_message(message))
        except MessageFormatError:
            continue  # a row another writer stored badly is no hit
        if message_matches(text, terms):
            found.append((int(message_id), _text(session_id), text))
            if len(found) == limit:
                break
    hits: list[SearchHit] = []
    if found:
        rows = yield _positions_op(n, [row[0] for row in found])
        positions: dict[int, int] = {int(mid): int(at) for mid, at in rows}
        hits = [SearchHit(sid, positions[mid], make_snippet(text, terms))
                for mid, sid, text in found]
        if len(hits) == limit:
            return hits
    # Candidates of a fully indexed query all match (barring tokenizer corners).
    batch = limit if len(indexed) == len(terms) else min(1000, max(4 * limit, 100))
    before: int | None = floor + 1
    while True:
        rows = yield _candidates_op(n, against, owner, batch, before)
        for session_id, _, message, position in rows:
            try:
                text = message_text(decode_message(message))
            except MessageFormatError:
                continue
            if message_matches(text, terms):
                hits.append(SearchHit(_text(session_id), int(position),
                                      make_snippet(text, terms)))
                if len(hits) == limit:
                    return hits
        if len(rows) < batch:
            return hits
        before = int(rows[-1][1])


def _window_op(n: Names, owner: str | None, floor: int) -> Op[Rows]:
    """Rows ``(session_id, id, message, search_text)`` of the messages after ``floor``
    (of ``owner``'s live sessions), newest first, on the primary key."""
    where, params = "", (floor,)  # type: tuple[str, tuple[Any, ...]]
    if owner is not None:
        where, params = " AND s.owner = %s", (floor, _id_bytes(owner))
    query = (f"SELECT s.session_id, m.id, m.message, m.search_text FROM {n.m} AS m"
             f" JOIN {n.s} AS s ON s.sid = m.sid WHERE m.id > %s AND {_LIVE}{where}"
             " ORDER BY m.id DESC")
    return Op(query, params, list)


def _positions_op(n: Names, ids: list[int]) -> Op[Rows]:
    """Rows ``(id, position in its session)`` of these messages."""
    marks = ", ".join(["%s"] * len(ids))
    query = (f"SELECT m.id, (SELECT COUNT(*) FROM {n.m} AS p WHERE p.sid = m.sid"
             f" AND p.id < m.id) FROM {n.m} AS m WHERE m.id IN ({marks})")
    return Op(query, tuple(ids), list)


def _candidates_op(n: Names, against: str, owner: str | None, batch: int,
                   before: int | None) -> Op[Rows]:
    """Rows ``(session_id, id, message, position)`` matching ``against``, newest first;
    positions are counted on the ``(sid, id)`` key for these rows only."""
    where = ""
    params: tuple[Any, ...] = (against,)
    if owner is not None:
        where, params = where + " AND s.owner = %s", (*params, _id_bytes(owner))
    if before is not None:
        where, params = where + " AND m.id < %s", (*params, before)
    query = (
        f"SELECT c.session_id, c.id, c.message, (SELECT COUNT(*) FROM {n.m} AS p"
        "  WHERE p.sid = c.sid AND p.id < c.id)"
        f" FROM (SELECT s.session_id, m.id, m.sid, m.message FROM {n.m} AS m"
        f"  JOIN {n.s} AS s ON s.sid = m.sid"
        f"  WHERE MATCH(m.search_text) AGAINST (%s IN BOOLEAN MODE) AND {_LIVE}{where}"
        "  ORDER BY m.id DESC LIMIT %s) AS c ORDER BY c.id DESC")
    return Op(query, (*params, batch), list)


# -- fork ---------------------------------------------------------------------------------


def fork_op(n: Names, source: SessionInfo, new_session_id: str, count: int,
            ttl: float | None) -> Op[None]:
    """Copy a session's first ``count`` rows into a new session, server-side, in one
    transaction: the new row (the source's title, metadata and owner, its parent and
    fork point), then ``INSERT ... SELECT`` of the rows. An expired row of the new id
    is dropped first; a live one (created since the caller checked) fails the INSERT."""
    query = (
        "START TRANSACTION;"
        f" DELETE t, tm FROM {n.s} AS t LEFT JOIN {n.m} AS tm ON tm.sid = t.sid"
        f" WHERE t.session_hash = %s AND t.session_id = %s AND NOT {_live('t')};"
        f" INSERT INTO {n.s} (session_hash, session_id, created_at, updated_at, expires_at,"
        f" message_count, {', '.join(_SESSION_COLUMNS)})"
        f" VALUES (%s, %s, {_NOW}, {_NOW}, {_TTL}, 0, %s, %s, %s, %s, %s);"
        " SET @threadline_sid = LAST_INSERT_ID();"
        f" INSERT INTO {n.m} (sid, msg_key, message, search_text)"
        " SELECT @threadline_sid, m.msg_key, m.message, m.search_text"
        f" FROM {n.s} AS s JOIN {n.m} AS m ON m.sid = s.sid"
        f" WHERE s.session_hash = %s AND s.session_id = %s AND {_LIVE}"
        " ORDER BY m.id LIMIT %s; SET @threadline_added = ROW_COUNT();"
        f" UPDATE {n.s} SET message_count = @threadline_added WHERE sid = @threadline_sid;"
        " COMMIT")
    new = (_hash(new_session_id), _id_bytes(new_session_id))
    fields = {"title": source.title, "metadata": dict(source.metadata),
              "owner": source.owner, "parent": source.session_id, "fork_point": count}
    values = tuple(_column_value(column, fields[column]) for column in _SESSION_COLUMNS)
    params = (*new, *new, _micros(ttl), *values, _hash(source.session_id),
              _id_bytes(source.session_id), count)
    return Op(query, params, no_result, retry=False, write=True)


STATEMENTS = Statements(append=_append_op, get=_get_op, delete=_delete_op, page=_page_op,
                        info=_info_op, expire=_expire_op, purge=_purge_op,
                        destroy=_destroy_op, ping=PING, after=_after_op, update=_update_op,
                        stats=_stats_op)
