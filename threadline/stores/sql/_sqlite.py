"""``sqlite://`` — sessions in a SQLite database file (stdlib ``sqlite3``), or in memory.

URLs: ``sqlite:///chat.db`` (relative path), ``sqlite:////var/lib/app/chat.db``
(absolute), ``sqlite://`` or ``sqlite:///:memory:`` (private in-memory database).
Options: ``table`` (messages table, default ``threadline_messages``), ``timeout``
(seconds a writer waits for the lock, default 30), ``ttl``.

Schema: the messages table has LangChain's ``SQLChatMessageHistory`` columns (``id``
autoincrement, ``session_id``, ``message`` JSON text), so a LangChain database is read as
it is, plus a nullable ``message_id`` (the message's id) with a unique index on
``(session_id, message_id)``: an append skips the ids the session holds (``ON CONFLICT DO
NOTHING``; the message count adds the rows inserted), which makes a retried append
harmless. ``<table>_sessions`` holds one row per session (times, expiry, message count)
and ``<table>_schema`` the schema version; ``<table>_recsets`` and ``<table>_records``
keep the sessions' records (:mod:`threadline.stores.sql._sqlite_records`); the sessions
table also holds each session's title, metadata, owner and fork origin, and ``<table>_fts``
(FTS5) the words of each message for search, written in the append's transaction
(:mod:`threadline.stores.sql._sqlite_sessions`). Migrations are
a list of functions (:mod:`threadline.stores.sql._common`), applied in a ``BEGIN
IMMEDIATE`` transaction once per process per store.

Concurrency: the database runs in WAL mode (readers never block the writer); reads are one
SELECT each (a statement sees one consistent snapshot); :meth:`SQLiteStore.iter_messages`
reads a session in pages (keyset paging on the row id, one SELECT per page), so memory
stays flat. Connections (one per thread, and the event loop's, on which short async calls
run without a thread hop) are :mod:`threadline.stores.sql._sqlite_connect`'s; a database
file the store creates is made 0600 there.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from threadline._errors import ConfigurationError, StoreError
from threadline.messages._values import BaseMessage
from threadline.stores._base import (
    Store,
    check_last,
    check_limit,
    check_messages,
    decode_messages,
    encode_message,
    stream_pages,
    validate_identifier,
    validate_ttl,
)
from threadline.stores._url import StoreURL
from threadline.stores.sql._common import (
    DEFAULT_TABLE,
    Migration,
    TableNames,
    check_text_sizes,
    check_utf8_session_id,
    first_of_each_id,
    pending_migrations,
    quote_ansi,
    table_names,
)
from threadline.stores.sql._sqlite_connect import SQLiteConnections
from threadline.stores.sql._sqlite_records import (
    INLINE_ROWS,
    RecordSQL,
    SQLiteRecords,
    create_records_tables,
    drop_records,
    too_big,
)
from threadline.stores.sql._sqlite_sessions import (
    SessionSQL,
    SQLiteSessions,
    add_session_fields,
    ensure_search_index,
)

__all__ = ["SQLiteStore"]

T = TypeVar("T")

def _create_tables(conn: sqlite3.Connection, names: TableNames) -> None:
    m, s = quote_ansi(names.messages), quote_ansi(names.sessions)
    conn.execute(f"CREATE TABLE IF NOT EXISTS {m} (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                 "session_id TEXT NOT NULL, message TEXT NOT NULL)")
    conn.execute(f"CREATE INDEX IF NOT EXISTS {quote_ansi(names.messages_index)} "
                 f"ON {m} (session_id, id)")
    conn.execute(f"CREATE TABLE IF NOT EXISTS {s} (session_id TEXT PRIMARY KEY, "
                 "created_at REAL NOT NULL, updated_at REAL NOT NULL, expires_at REAL, "
                 "message_count INTEGER NOT NULL DEFAULT 0)")
    conn.execute(f"CREATE INDEX IF NOT EXISTS {quote_ansi(names.expires_index)} "
                 f"ON {s} (expires_at) WHERE expires_at IS NOT NULL")
    # A table LangChain wrote has messages but no session rows: describe its sessions.
    now = time.time()
    conn.execute(f"INSERT OR IGNORE INTO {s} (session_id, created_at, updated_at, "
                 f"message_count) SELECT session_id, ?, ?, count(*) FROM {m} "
                 "GROUP BY session_id", (now, now))


def _add_message_ids(conn: sqlite3.Connection, names: TableNames) -> None:
    m = quote_ansi(names.messages)
    conn.execute(f"ALTER TABLE {m} ADD COLUMN message_id TEXT")
    conn.execute(f"CREATE UNIQUE INDEX {quote_ansi(names.ids_index)} "
                 f"ON {m} (session_id, message_id) WHERE message_id IS NOT NULL")


MIGRATIONS: list[Migration[sqlite3.Connection]] = [
    Migration("create messages and sessions tables", _create_tables),
    Migration("message ids, unique per session", _add_message_ids),
    Migration("records", create_records_tables),
    Migration("session fields, listing indexes, full-text index", add_session_fields),
]

_check_text = check_utf8_session_id


class SQLiteStore(SQLiteConnections, SQLiteSessions, SQLiteRecords):
    """Sessions in SQLite: ``open_store("sqlite:///chat.db", table="chat", ttl=86400)``."""

    OPTIONS: ClassVar[dict[str, Any]] = {**Store.OPTIONS, "table": str, "timeout": float}
    #: SQLite's default SQLITE_MAX_LENGTH: the largest string or row it stores.
    MAX_MESSAGE_BYTES: ClassVar[int] = 1_000_000_000

    def __init__(self, url: StoreURL | str, **options: Any) -> None:
        super().__init__(url, **options)
        if self.url.host or self.url.port or self.url.username:
            raise ConfigurationError(
                f"a sqlite URL names a file, not a server: got {self.url.render()!r}; "
                "use sqlite:///relative.db, sqlite:////absolute/path.db or sqlite://"
            )
        table = self.options.get("table")
        self.table = validate_identifier(DEFAULT_TABLE if table is None else table)
        self.names = table_names(self.table)
        timeout = self.options.get("timeout")
        self.timeout = 30.0 if timeout is None else float(timeout)
        if self.timeout < 0:
            raise ConfigurationError(f"timeout must be >= 0 seconds, got {self.timeout}")
        database = self.url.database
        self.memory = database in ("", ":memory:")
        self.path: Path | None = None if self.memory else Path(database)
        m, s = quote_ansi(self.names.messages), quote_ansi(self.names.sessions)
        self._m, self._s = m, s
        self._records_sql = RecordSQL(self.names)
        self._sessions_sql = SessionSQL(self.names)
        # Rows of sessions without a sessions row (written by LangChain) stay visible.
        self._alive = f"NOT EXISTS (SELECT 1 FROM {s} WHERE session_id = ? AND expires_at <= ?)"
        self._lock = threading.RLock()  # guards the connection table and the memory DB
        self._conns: dict[int, tuple[threading.Thread, sqlite3.Connection]] = {}
        # The event loop threads' connections: busy timeout 0, no autocheckpoint.
        self._nowait: dict[int, tuple[threading.Thread, sqlite3.Connection]] = {}
        self._inline_writes = 0
        self._shared: sqlite3.Connection | None = None
        self._ready = False
        self._closed = False

    # -- the contract --------------------------------------------------------------------------

    def setup(self) -> None:
        """Create or migrate the tables (idempotent; safe with concurrent processes)."""
        with self._connection() as conn:
            schema = quote_ansi(self.names.schema)
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.execute(f"CREATE TABLE IF NOT EXISTS {schema} "
                                 "(id INTEGER PRIMARY KEY CHECK (id = 1), "
                                 "version INTEGER NOT NULL)")
                    row = conn.execute(f"SELECT version FROM {schema}").fetchone()
                    version = row[0] if row else 0
                    for number, migration in pending_migrations(MIGRATIONS, version):
                        migration.apply(conn, self.names)
                        conn.execute(f"INSERT INTO {schema} (id, version) VALUES (1, ?) "
                                     "ON CONFLICT (id) DO UPDATE SET version = excluded.version",
                                     (number,))
                    # Also made here, not only by migration 4: a database set up by a
                    # sqlite3 without FTS5 gets its index from the first one with it.
                    fts = ensure_search_index(conn, self.names)
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StoreError(f"cannot set up SQLite tables on {self.url.render()!r}: "
                                 f"{exc}") from exc
        self._fts = fts
        self._ready = True

    def append(self, session_id: str, messages: Sequence[BaseMessage], *,
               ttl: float | None = None) -> None:
        work = self._append_work(session_id, messages, ttl)
        if work is not None:
            self._run(work, write=True)

    def append_with_records(self, session_id: str, messages: Sequence[BaseMessage],
                            records: Mapping[str, bytes], *, ttl: float | None = None
                            ) -> None:
        """The records and the messages in one transaction (a server turn's one write)."""
        self._run(self._records_append_work(session_id, messages, records, ttl), write=True)

    def _records_append_work(self, session_id: str, messages: Sequence[BaseMessage],
                             records: Mapping[str, bytes], ttl: float | None
                             ) -> Callable[[sqlite3.Connection], None]:
        put = self._put_work(session_id, records, (), ttl)
        add = self._append_work(session_id, messages, ttl)

        def work(conn: sqlite3.Connection) -> None:
            if put is not None:
                put(conn)
            if add is not None:
                add(conn)

        return work

    def _append_work(self, session_id: str, messages: Sequence[BaseMessage],
                     ttl: float | None) -> Callable[[sqlite3.Connection], None] | None:
        """The transaction body of an append, everything checked (``None``: nothing to
        write)."""
        sid = _check_text(session_id)
        batch = first_of_each_id(check_messages(messages))
        ttl = validate_ttl(ttl) or self.ttl
        if not batch:
            return None
        texts = [encode_message(m) for m in batch]
        self.check_sizes(texts)
        check_text_sizes(texts, self.MAX_MESSAGE_BYTES, "SQLite's maximum string length")
        rows = [(sid, m.id, text) for m, text in zip(batch, texts, strict=True)]
        m, s = self._m, self._s

        def work(conn: sqlite3.Connection) -> None:
            now = time.time()
            self._forget_if_expired(conn, sid, now)
            # One statement for the batch: cheaper than executemany for a turn's few rows.
            # The ids the session holds are skipped; rowcount is the rows inserted (with
            # the search index, the rows it returns: their words are indexed with them).
            values = ", ".join(["(?, ?, ?)"] * len(rows))
            insert = (f"INSERT INTO {m} (session_id, message_id, message) VALUES {values} "
                      "ON CONFLICT DO NOTHING")
            params = [v for row in rows for v in row]
            if self._fts:
                inserted = conn.execute(insert + " RETURNING id, message_id",
                                        params).fetchall()
                self._index(conn, batch, inserted)
                added = len(inserted)
            else:
                added = conn.execute(insert, params).rowcount
            expires = None if ttl is None else now + ttl
            conn.execute(
                f"INSERT INTO {s} (session_id, created_at, updated_at, expires_at, "
                "message_count) VALUES (?, ?, ?, ?, ?) ON CONFLICT (session_id) DO UPDATE "
                "SET updated_at = excluded.updated_at, "
                "message_count = message_count + excluded.message_count, "
                "expires_at = coalesce(excluded.expires_at, expires_at)",
                (sid, now, now, expires, added),
            )

        return work

    def get_messages(self, session_id: str, *, last: int | None = None,
                     skip_invalid: bool = False) -> list[BaseMessage]:
        sid, last, read = self._messages_read(session_id, last)
        return _decode(sid, last, [] if read is None else self._run(read), skip_invalid)

    def _messages_read(self, session_id: str, last: int | None
                       ) -> tuple[str, int | None, Callable[[sqlite3.Connection], list[Any]]
                                  | None]:
        """The checked session id and ``last``, and the read (``None``: nothing to read)."""
        sid = _check_text(session_id)
        last = check_last(last)
        if last == 0:
            return sid, last, None
        alive = self._alive
        if last is None:
            sql = (f"SELECT message FROM {self._m} WHERE session_id = ? AND {alive} "
                   "ORDER BY id")
            params: tuple[Any, ...] = (sid, sid, time.time())
        else:
            sql = (f"SELECT message FROM {self._m} WHERE session_id = ? AND {alive} "
                   "ORDER BY id DESC LIMIT ?")
            params = (sid, sid, time.time(), last)
        return sid, last, lambda conn: conn.execute(sql, params).fetchall()

    def iter_messages(self, session_id: str, *, page_size: int = 1000,
                      skip_invalid: bool = False) -> Iterator[BaseMessage]:
        """The session's messages, oldest first, ``page_size`` rows per SELECT (keyset
        paging on the row id, on the ``(session_id, id)`` index)."""
        sid = _check_text(session_id)
        size = check_limit(page_size)
        sql = (f"SELECT id, message FROM {self._m} WHERE session_id = ? AND id > ? "
               f"AND {self._alive} ORDER BY id LIMIT ?")

        def fetch(after: int | None) -> tuple[list[str], int | None]:
            params = (sid, after or 0, sid, time.time(), size)
            rows = self._run(lambda conn: conn.execute(sql, params).fetchall())
            return [row[1] for row in rows], rows[-1][0] if len(rows) == size else None

        return stream_pages(fetch, session_id=sid, skip_invalid=skip_invalid)

    def delete_session(self, session_id: str) -> bool:
        sid = _check_text(session_id)
        s = self._s

        def work(conn: sqlite3.Connection) -> bool:
            had_records = drop_records(conn, self._records_sql, sid, time.time())
            row = conn.execute(f"SELECT expires_at FROM {s} WHERE session_id = ?",
                               (sid,)).fetchone()
            deleted = self._forget_messages(conn, sid)
            conn.execute(f"DELETE FROM {s} WHERE session_id = ?", (sid,))
            if row is None:
                return deleted > 0 or had_records
            return had_records or row[0] is None or row[0] > time.time()

        return self._run(work, write=True)

    def expire(self, session_id: str, ttl: float | None) -> None:
        sid = _check_text(session_id)
        ttl = validate_ttl(ttl)

        def work(conn: sqlite3.Connection) -> None:
            now = time.time()
            expires = None if ttl is None else now + ttl
            conn.execute(f"UPDATE {self._s} SET expires_at = ? WHERE session_id = ? "
                         "AND (expires_at IS NULL OR expires_at > ?)", (expires, sid, now))
            conn.execute(self._records_sql.expire, (expires, sid, now))

        self._run(work, write=True)

    def purge_expired(self) -> int:
        m, s = self._m, self._s

        def work(conn: sqlite3.Connection) -> int:
            now = time.time()
            if self._fts:
                conn.execute(self._sessions_sql.unindex_expired, (now,))
            conn.execute(f"DELETE FROM {m} WHERE session_id IN (SELECT session_id FROM {s} "
                         "WHERE expires_at <= ?)", (now,))
            conn.execute(self._records_sql.purge_records, (now,))
            conn.execute(self._records_sql.purge_spaces, (now,))
            return conn.execute(f"DELETE FROM {s} WHERE expires_at <= ?", (now,)).rowcount

        return self._run(work, write=True)

    # -- async: on the event loop's thread when nothing waits ---------------------------------

    async def aget_messages(self, session_id: str, *, last: int | None = None,
                            skip_invalid: bool = False) -> list[BaseMessage]:
        if last is None or not isinstance(last, int) or last > INLINE_ROWS:
            return await super().aget_messages(session_id, last=last,
                                               skip_invalid=skip_invalid)
        sid, last, read = self._messages_read(session_id, last)
        return _decode(sid, last, [] if read is None else await self._arun(read),
                       skip_invalid)

    async def aappend(self, session_id: str, messages: Sequence[BaseMessage], *,
                      ttl: float | None = None) -> None:
        batch = list(messages)  # any iterable, as the sync method takes
        if len(batch) > INLINE_ROWS:
            await super().aappend(session_id, batch, ttl=ttl)
            return
        work = self._append_work(session_id, batch, ttl)
        if work is not None:
            await self._arun(work, write=True)

    async def aappend_with_records(self, session_id: str, messages: Sequence[BaseMessage],
                                   records: Mapping[str, bytes], *,
                                   ttl: float | None = None) -> None:
        batch = list(messages)
        if len(batch) + len(records) > INLINE_ROWS or too_big(records):
            await super().aappend_with_records(session_id, batch, records, ttl=ttl)
            return
        await self._arun(self._records_append_work(session_id, batch, records, ttl),
                         write=True)

    def destroy(self) -> None:
        """Drop this store's tables (messages, sessions, records, search index, schema)."""
        def work(conn: sqlite3.Connection) -> None:
            names = self.names
            for name in (names.search_index, names.messages, names.sessions, names.records,
                         names.recsets, names.schema):
                conn.execute(f"DROP TABLE IF EXISTS {quote_ansi(name)}")

        self._ready = True  # nothing to set up before dropping
        self._run(work, write=True)
        self._ready = False


def _decode(sid: str, last: int | None, rows: list[Any],
            skip_invalid: bool) -> list[BaseMessage]:
    if last is not None:
        rows.reverse()
    return decode_messages([row[0] for row in rows], session_id=sid,
                           skip_invalid=skip_invalid, from_end=last is not None)
