"""SQLite's side of the sessions contract: fields, listings, FTS5 search, stats and fork.

:class:`SQLiteSessions` is a mixin of :class:`~threadline.stores.sql._sqlite.SQLiteStore`;
the statement texts are built once per store by :class:`SessionSQL` and the pure helpers
below, so nothing but bound parameters ever carries a session id, an owner, a metadata
pair or a search query.

Schema (migration 4, :func:`add_session_fields`): the sessions table gains ``title``,
``metadata`` (a JSON object; NULL when empty), ``owner``, ``parent`` and ``fork_point``,
and three indexes that let every listing read rows in the order it returns them (no
sort, and keyset pagination that costs the same on the last page as on the first):
``(updated_at, session_id)`` for the recent-first listing (walked backwards),
``(owner, updated_at, session_id)`` for one owner's and ``(owner, session_id)`` for one
owner's listing by id. The recent cursor is the last row's ``(updated_at, session_id)``,
compared as a row value.

Search: an FTS5 table (``names.search_index``) with one row per message that has words,
keyed by the messages table's ``id``, written in the append's transaction and deleted with
the messages (delete, expiry, purge, destroy). It holds the words of
:func:`~threadline.stores._sessions.message_text` as Python splits and case-folds them
for :func:`~threadline.stores._sessions.message_matches` (:func:`index_words`), not the
raw text: FTS5's tokenizer then sees the same words on both sides, so a Python-only fold
(``ß`` -> ``ss``) or a character FTS5's Unicode 6.1 tables do not know can never hide a
match. The MATCH expression is built from the query's terms only, each a double-quoted
string (:func:`match_expression`); every candidate is decoded and checked with
``message_matches``, and its position counted on the ``(session_id, id)`` index.

Where the ``sqlite3`` module lacks FTS5 (or SQLite is older than 3.35, without
``RETURNING``) the table is not made and search is the portable scan of
:func:`~threadline.stores._sessions.scan_search`; a later setup with FTS5 makes and fills
it, and a store whose database has it refuses to work without FTS5 (its writes would
leave the index behind). Rows another program writes into the messages table
(LangChain's own ``SQLChatMessageHistory``) are not indexed: search misses them.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from abc import abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

from threadline._errors import InputError, MessageFormatError, StoreError
from threadline.messages._values import BaseMessage
from threadline.stores._base import (
    SessionInfo,
    SessionPage,
    Store,
    decode_message,
    validate_session_id,
)
from threadline.stores._sessions import (
    ListQuery,
    Order,
    SearchHit,
    SessionChanges,
    StoreStats,
    check_list_args,
    check_search_args,
    decode_recent_cursor,
    make_snippet,
    message_matches,
    message_text,
    recent_cursor,
    scan_search,
)
from threadline.stores.sql._common import (
    TableNames,
    check_utf8_session_id,
    prefix_upper_bound,
    quote_ansi,
)

__all__ = [
    "SEARCH_INDEX",
    "SessionSQL",
    "SQLiteSessions",
    "add_session_fields",
    "ensure_search_index",
    "index_rows",
    "index_words",
    "match_expression",
    "match_inserted",
    "owner_id_index",
]

T = TypeVar("T")

#: The session fields ``update_session`` and ``fork`` set, which are also their columns.
FIELDS: Final = ("title", "metadata", "owner", "parent", "fork_point")
_LIVE = "(expires_at IS NULL OR expires_at > ?)"
#: The words of :func:`~threadline.stores._sessions.search_terms` and ``message_matches``.
_WORD = re.compile(r"[^\W_]+")
#: Candidate rows a search reads beyond its limit per query: few candidates fail the
#: check, and each costs a count of its position.
_SEARCH_SLACK = 10


def _search_index_supported() -> bool:
    """Whether this ``sqlite3`` can keep the FTS5 index: FTS5 compiled in, and
    ``RETURNING`` (SQLite 3.35) to learn the ids an append inserted."""
    if sqlite3.sqlite_version_info < (3, 35, 0):
        return False
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute("CREATE VIRTUAL TABLE temp.probe USING fts5(words)")
    except sqlite3.Error:
        return False
    finally:
        conn.close()
    return True


#: Whether stores keep a full-text index (tests turn it off to exercise the fallback).
SEARCH_INDEX: bool = _search_index_supported()


def owner_id_index(names: TableNames) -> str:
    """The name of the ``(owner, session_id)`` index (not in TableNames: SQLite only)."""
    return f"{names.messages}_owner_id_idx"


def index_words(message: BaseMessage) -> str:
    """The words search can find in a message, case-folded, each once, space-separated
    (first occurrence order, so a word FTS5 splits in two keeps its halves adjacent)."""
    words = dict.fromkeys(word.casefold() for word in _WORD.findall(message_text(message)))
    return " ".join(words)


def match_expression(terms: Iterable[str]) -> str:
    """An FTS5 MATCH expression requiring every term: each a double-quoted string
    (internal quotes doubled), so no term is ever read as an operator.

    >>> match_expression(["oslo", 'we"ather'])
    '"oslo" "we""ather"'
    """
    return " ".join('"' + term.replace('"', '""') + '"' for term in terms)


def match_inserted(keys: Sequence[object], inserted: Iterable[tuple[int, str | None]]
                   ) -> list[int | None]:
    """The row id each of a batch's rows got (``None``: not inserted), from the ``(id,
    message_id)`` rows an ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` gave back, in
    any order. ``keys`` are the batch's message ids: the rows were inserted in batch
    order (ids ascending), skipping those whose id the session held, so the returned
    rows sorted by id are the batch less the skipped, which a walk finds by message id
    (as SQLite stores it: text)."""
    rows = sorted(inserted)
    if len(rows) == len(keys):  # nothing skipped: the usual append
        return [rowid for rowid, _ in rows]
    found: list[int | None] = []
    index = 0
    for key in keys:
        stored = None if key is None else key if isinstance(key, str) else str(key)
        if index < len(rows) and rows[index][1] == stored:
            found.append(rows[index][0])
            index += 1
        else:
            found.append(None)
    return found


def index_rows(batch: Sequence[BaseMessage], inserted: Iterable[tuple[int, str | None]]
               ) -> list[tuple[int, str]]:
    """``(rowid, words)`` for the index, from an append's batch and the rows its INSERT
    returned (see :func:`match_inserted`); messages without words are left out."""
    rowids = match_inserted([message.id for message in batch], inserted)
    return [(rowid, words) for message, rowid in zip(batch, rowids, strict=True)
            if rowid is not None and (words := index_words(message))]


def add_session_fields(conn: sqlite3.Connection, names: TableNames) -> None:
    """Schema migration 4: the session fields, the listing indexes, the search index."""
    s = quote_ansi(names.sessions)
    for column in ("title TEXT", "metadata TEXT", "owner TEXT", "parent TEXT",
                   "fork_point INTEGER"):
        conn.execute(f"ALTER TABLE {s} ADD COLUMN {column}")
    conn.execute(f"CREATE INDEX IF NOT EXISTS {quote_ansi(names.recent_index)} "
                 f"ON {s} (updated_at, session_id)")
    conn.execute(f"CREATE INDEX IF NOT EXISTS {quote_ansi(names.owner_index)} "
                 f"ON {s} (owner, updated_at, session_id)")
    conn.execute(f"CREATE INDEX IF NOT EXISTS {quote_ansi(owner_id_index(names))} "
                 f"ON {s} (owner, session_id)")
    ensure_search_index(conn, names)


def ensure_search_index(conn: sqlite3.Connection, names: TableNames) -> bool:
    """Make the FTS5 table and index every message already stored, unless it exists or
    this sqlite3 cannot keep it; whether the store has it. Runs in setup's transaction."""
    exists = conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?",
                          (names.search_index,)).fetchone() is not None
    if exists and not SEARCH_INDEX:
        raise StoreError(
            f"this database keeps a full-text index ({names.search_index}) that this "
            f"Python's sqlite3 (SQLite {sqlite3.sqlite_version}) cannot maintain: use a "
            "Python whose sqlite3 has FTS5 and SQLite 3.35 or newer")
    if exists or not SEARCH_INDEX:
        return exists
    f, m = quote_ansi(names.search_index), quote_ansi(names.messages)
    # remove_diacritics 0: the words are already what Python compares; folding accents
    # too would only add candidates that fail the check.
    conn.execute(f"CREATE VIRTUAL TABLE {f} USING fts5(words, "
                 "tokenize = 'unicode61 remove_diacritics 0')")
    rows = conn.execute(f"SELECT id, message FROM {m}")
    while page := rows.fetchmany(500):
        indexed: list[tuple[int, str]] = []
        for rowid, text in page:
            try:
                words = index_words(decode_message(text))
            except MessageFormatError:
                continue  # unreadable rows are skipped by reads too
            if words:
                indexed.append((rowid, words))
        conn.executemany(f"INSERT INTO {f} (rowid, words) VALUES (?, ?)", indexed)
    return True


class SessionSQL:
    """The sessions statements of one store (``?`` parameters)."""

    def __init__(self, names: TableNames) -> None:
        m, s = quote_ansi(names.messages), quote_ansi(names.sessions)
        f = quote_ansi(names.search_index)
        self.tables = (m, s, f)
        self.expiry = f"SELECT expires_at FROM {s} WHERE session_id = ?"
        self.info = (f"SELECT created_at, updated_at, expires_at, message_count, "
                     f"{', '.join(FIELDS)} FROM {s} WHERE session_id = ? AND {_LIVE}")
        self.index = f"INSERT INTO {f} (rowid, words) VALUES (?, ?)"
        self.unindex_session = (f"DELETE FROM {f} WHERE rowid IN "
                                f"(SELECT id FROM {m} WHERE session_id = ?)")
        self.unindex_expired = (f"DELETE FROM {f} WHERE rowid IN (SELECT id FROM {m} "
                                f"WHERE session_id IN (SELECT session_id FROM {s} "
                                "WHERE expires_at <= ?))")
        self.stats = f"SELECT count(*), coalesce(sum(message_count), 0) FROM {s} WHERE {_LIVE}"
        self.file_stats = (f"SELECT count(*), coalesce(sum(message_count), 0), "
                           "(SELECT page_count * page_size FROM pragma_page_count(), "
                           f"pragma_page_size()) FROM {s} WHERE {_LIVE}")
        #: Params: (match, before rowid, now, [owner,] limit).
        self.search = {
            # No alias for the FTS5 table: MATCH takes the table's own name.
            scoped: f"SELECT {f}.rowid, m.session_id, m.message, (SELECT count(*) FROM {m} "
                    "AS p WHERE p.session_id = m.session_id AND p.id < m.id) "
                    f"FROM {f} JOIN {m} AS m ON m.id = {f}.rowid "
                    f"LEFT JOIN {s} AS s ON s.session_id = m.session_id "
                    f"WHERE {f} MATCH ? AND {f}.rowid < ? "
                    "AND (s.expires_at IS NULL OR s.expires_at > ?)"
                    f"{' AND s.owner = ?' if scoped else ''} "
                    f"ORDER BY {f}.rowid DESC LIMIT ?"
            for scoped in (False, True)}

    def upsert(self, fields: Iterable[str]) -> str:
        """Create a session (its count taken from rows already there, e.g. LangChain's)
        or set ``fields`` of an existing one; never touches ``updated_at``. Params:
        (sid, created, updated, expires, sid, *values)."""
        m, s, _ = self.tables
        columns = [name for name in FIELDS if name in fields]  # only known names
        extra = "".join(f", {name}" for name in columns)
        marks = ", ?" * len(columns)
        sets = ", ".join(f"{name} = excluded.{name}" for name in columns)
        conflict = f"DO UPDATE SET {sets}" if sets else "DO NOTHING"
        return (f"INSERT INTO {s} (session_id, created_at, updated_at, expires_at, "
                f"message_count{extra}) VALUES (?, ?, ?, ?, "
                f"(SELECT count(*) FROM {m} WHERE session_id = ?){marks}) "
                f"ON CONFLICT (session_id) {conflict}")

    def listing(self, query: ListQuery, now: float) -> tuple[str, list[Any]]:
        """The page query of a listing (one row more than the limit) and its params."""
        where = [_LIVE]
        params: list[Any] = [now]
        if query.owner is not None:
            where.append("owner = ?")
            params.append(query.owner)
        after = query.cursor if query.order == "id" else None
        # By id the prefix is a range of the id index. Most recent first it is a filter
        # (unary ``+``: not an index term) on the walk of the recent index: otherwise
        # SQLite reads every session of the prefix and sorts them, which grows with
        # the store.
        column = "session_id" if query.order == "id" else "+session_id"
        if query.prefix:
            # One lower bound, the higher: with two, SQLite may start the range at the
            # prefix and filter its way to the cursor, page after page.
            if after is None or after < query.prefix:
                where.append(f"{column} >= ?")
                params.append(query.prefix)
                after = None
            upper = prefix_upper_bound(query.prefix)
            if upper is not None:
                where.append(f"{column} < ?")
                params.append(upper)
        for key, value in (query.metadata or {}).items():
            # json_each, not json_extract: a key may hold '"' or '.', which a JSON path
            # cannot quote.
            where.append("EXISTS (SELECT 1 FROM json_each(metadata) "
                         "WHERE key = ? AND value = ?)")
            params.extend((key, value))
        if query.order == "id":
            if after is not None:
                where.append("session_id > ?")
                params.append(after)
            order = "session_id"
        else:
            if query.cursor is not None:
                where.append("(updated_at, session_id) < (?, ?)")
                params.extend(_recent_position(query.cursor))
            order = "updated_at DESC, session_id DESC"
        params.append(query.limit + 1)
        _, s, _ = self.tables
        return (f"SELECT session_id, updated_at FROM {s} WHERE {' AND '.join(where)} "
                f"ORDER BY {order} LIMIT ?", params)


def _recent_position(cursor: str) -> tuple[float, str]:
    """The ``(updated_at, session_id)`` a recent-first cursor of this store holds: a
    number SQLite can bind and text it can encode, else an :class:`InputError`."""
    updated, last = decode_recent_cursor(cursor)
    try:
        if not isinstance(updated, float | int):
            raise ValueError
        last.encode("utf-8")
        return float(updated), last
    except (ValueError, OverflowError):  # UnicodeEncodeError is a ValueError
        raise InputError(f"not a cursor of this store: {cursor!r:.80}") from None


def _utc(timestamp: float | None) -> datetime | None:
    return None if timestamp is None else datetime.fromtimestamp(timestamp, UTC)


def _info(sid: str, row: Any) -> SessionInfo | None:
    """A session's info from its row of the info query."""
    if row is None:
        return None
    metadata = json.loads(row[5]) if row[5] else {}
    return SessionInfo(sid, row[3], _utc(row[0]), _utc(row[1]), _utc(row[2]),
                       row[4], metadata, row[6], row[7], row[8])


class SQLiteSessions(Store):
    """The sessions methods of :class:`~threadline.stores.sql._sqlite.SQLiteStore`."""

    _sessions_sql: SessionSQL
    #: Set by setup: the store keeps the FTS5 index.
    _fts: bool = False
    _ready: bool
    memory: bool

    @abstractmethod
    def _run(self, work: Callable[[sqlite3.Connection], T], *, write: bool = False) -> T:
        """Run ``work`` on a connection (in one write transaction if asked)."""

    @abstractmethod
    async def _arun(self, work: Callable[[sqlite3.Connection], T], *,
                    write: bool = False) -> T:
        """``_run`` for the async methods, inline on the event loop when nothing waits."""

    # -- helpers for the store's own writes (inside its transactions) -----------------------

    def _forget_messages(self, conn: sqlite3.Connection, sid: str) -> int:
        """Delete a session's messages and their index rows; how many messages."""
        m, _, _ = self._sessions_sql.tables
        if self._fts:
            conn.execute(self._sessions_sql.unindex_session, (sid,))
        return conn.execute(f"DELETE FROM {m} WHERE session_id = ?", (sid,)).rowcount

    def _forget_if_expired(self, conn: sqlite3.Connection, sid: str, now: float) -> None:
        """An expired session that is written again starts afresh: its messages, ids,
        title, metadata and owner are forgotten."""
        row = conn.execute(self._sessions_sql.expiry, (sid,)).fetchone()
        if row is not None and row[0] is not None and row[0] <= now:
            self._forget_messages(conn, sid)
            conn.execute(f"DELETE FROM {self._sessions_sql.tables[1]} WHERE session_id = ?",
                         (sid,))

    def _index(self, conn: sqlite3.Connection, batch: Sequence[BaseMessage],
               inserted: Iterable[tuple[int, str | None]]) -> None:
        rows = index_rows(batch, inserted)
        if rows:
            conn.executemany(self._sessions_sql.index, rows)

    # -- the contract ------------------------------------------------------------------------

    def session_info(self, session_id: str) -> SessionInfo | None:
        sid, read = self._info_read(session_id)
        return _info(sid, self._run(read))

    async def asession_info(self, session_id: str) -> SessionInfo | None:
        sid, read = self._info_read(session_id)
        return _info(sid, await self._arun(read))

    def _info_read(self, session_id: str
                   ) -> tuple[str, Callable[[sqlite3.Connection], Any]]:
        sid = check_utf8_session_id(session_id)
        sql = self._sessions_sql.info
        return sid, lambda conn: conn.execute(sql, (sid, time.time())).fetchone()

    def _update_session(self, session_id: str, changes: SessionChanges) -> None:
        sid = check_utf8_session_id(session_id)
        given = changes.given()
        if "metadata" in given:
            given["metadata"] = (json.dumps(given["metadata"], ensure_ascii=False)
                                 if given["metadata"] else None)
        sql = self._sessions_sql.upsert(given)
        values = [given[name] for name in FIELDS if name in given]
        ttl = self.ttl

        def work(conn: sqlite3.Connection) -> None:
            now = time.time()
            self._forget_if_expired(conn, sid, now)
            expires = None if ttl is None else now + ttl
            conn.execute(sql, (sid, now, now, expires, sid, *values))

        self._run(work, write=True)

    def list_sessions(self, *, order: Order = "id", owner: str | None = None,
                      prefix: str = "", metadata: Mapping[str, str] | None = None,
                      limit: int = 100, cursor: str | None = None) -> SessionPage:
        query = check_list_args(order, owner, prefix, metadata, limit, cursor)
        if query.prefix:
            check_utf8_session_id(query.prefix)
        sql, params = self._sessions_sql.listing(query, time.time())
        rows = self._run(lambda conn: conn.execute(sql, params).fetchall())
        if len(rows) <= query.limit:
            return SessionPage([row[0] for row in rows], None)
        last_id, last_updated = rows[query.limit - 1]
        following = last_id if query.order == "id" else recent_cursor(last_updated, last_id)
        return SessionPage([row[0] for row in rows[:query.limit]], following)

    def search(self, query: str, *, owner: str | None = None,
               limit: int = 20) -> list[SearchHit]:
        """Candidates from the FTS5 index, newest first, each checked on its decoded
        message; the portable scan where this sqlite3 has no FTS5."""
        terms = check_search_args(query, owner, limit)
        if not self._ready:
            self.setup()
        if not self._fts:
            return scan_search(self, terms, owner, limit)
        sql = self._sessions_sql.search[owner is not None]
        scope = [] if owner is None else [owner]
        match = match_expression(terms)

        size = limit + _SEARCH_SLACK

        def page(before: int) -> list[Any]:
            params = (match, before, time.time(), *scope, size)
            return self._run(lambda conn: conn.execute(sql, params).fetchall())

        hits: list[SearchHit] = []
        before = 2**63 - 1
        while len(hits) < limit:
            rows = page(before)
            for _rowid, session_id, stored, position in rows:
                try:
                    text = message_text(decode_message(stored))
                except MessageFormatError:
                    continue  # an unreadable row is not a hit
                if message_matches(text, terms):
                    hits.append(SearchHit(session_id, position, make_snippet(text, terms)))
            if len(rows) < size:
                break
            before = rows[-1][0]
        return hits[:limit]

    def stats(self) -> StoreStats:
        """Sessions and messages of the live sessions rows, and (a file database) its
        size, in one query."""
        sql = self._sessions_sql.stats if self.memory else self._sessions_sql.file_stats
        row = self._run(lambda conn: conn.execute(sql, (time.time(),)).fetchone())
        return StoreStats(row[0], row[1], None if self.memory else row[2])

    def fork(self, session_id: str, new_session_id: str, *,
             at: int | None = None) -> SessionInfo:
        """The base's fork (same checks, errors and result) in one transaction: the
        session row, then the message rows copied by INSERT ... SELECT (their stored
        text as it is), their index rows with them."""
        validate_session_id(new_session_id)
        source = self._fork_source(session_id, new_session_id, at)
        src, new = check_utf8_session_id(session_id), check_utf8_session_id(new_session_id)
        count = source.message_count if at is None else at
        fields: dict[str, Any] = {
            "title": source.title, "owner": source.owner, "parent": src, "fork_point": count,
            "metadata": json.dumps(dict(source.metadata), ensure_ascii=False)
            if source.metadata else None}
        values = [fields[name] for name in FIELDS]
        sql = self._sessions_sql
        m, s, f = sql.tables
        upsert = sql.upsert(fields)
        ttl = self.ttl

        def work(conn: sqlite3.Connection) -> None:
            now = time.time()
            self._forget_if_expired(conn, new, now)
            expires = None if ttl is None else now + ttl
            conn.execute(upsert, (new, now, now, expires, new, *values))
            # The source's first rows, as the base's iter_messages would read them now.
            old = conn.execute(f"SELECT id, message_id FROM {m} WHERE session_id = ? "
                               "ORDER BY id LIMIT ?", (src, count)).fetchall()
            if not old:
                return
            added = conn.execute(
                f"INSERT INTO {m} (session_id, message_id, message) SELECT ?, message_id, "
                f"message FROM {m} WHERE session_id = ? AND id <= ? ORDER BY id "
                "ON CONFLICT DO NOTHING RETURNING id, message_id",
                (new, src, old[-1][0])).fetchall()
            if self._fts:
                new_ids = match_inserted([row[1] for row in old], added)
                conn.executemany(
                    f"INSERT INTO {f} (rowid, words) SELECT ?, words FROM {f} WHERE rowid = ?",
                    [(new_id, row[0]) for new_id, row in zip(new_ids, old, strict=True)
                     if new_id is not None])
            conn.execute(f"UPDATE {s} SET updated_at = ?, message_count = message_count + ? "
                         "WHERE session_id = ?", (time.time(), len(added), new))

        self._run(work, write=True)
        info = self.session_info(new)
        assert info is not None
        return info
