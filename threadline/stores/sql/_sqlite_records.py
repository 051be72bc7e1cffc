"""Records on ``sqlite://`` (see :mod:`threadline.stores.sql._records_sql` for the layout).

``<table>_recsets`` is keyed by the session id (TEXT, as the sessions table) with an
``INTEGER PRIMARY KEY`` rid; ``<table>_records`` is a rowid table whose primary key
``(rid, key)`` is the index every read uses (its values may be megabytes: a WITHOUT
ROWID table would hold them in the b-tree). Statements are composed once per store
(:class:`RecordSQL`) and key lists are bound as one JSON array (``json_each``), so each
statement text is constant and stays in sqlite3's statement cache.

A put is one ``BEGIN IMMEDIATE`` transaction like every write of the store: read the
recsets row, start the session afresh if it expired, write its expiry, ``executemany``
the upserts, one DELETE for the deletes.

Async: each method builds its statement (or transaction body) once, and the sync method
runs it with ``_run`` while the async one runs it with ``_arun`` (on the event loop's
thread when nothing waits, see :mod:`threadline.stores.sql._sqlite`); calls larger than
:data:`INLINE_ROWS` rows or :data:`INLINE_BYTES` bytes go to a worker thread whole.
"""

from __future__ import annotations

import json
import sqlite3
import time
from abc import abstractmethod
from collections.abc import Callable, Collection, Mapping
from typing import Any, TypeVar

from threadline.stores._base import Store, validate_ttl
from threadline.stores._records import (
    check_record_batch,
    check_record_keys,
    check_scan_args,
    validate_record_key,
)
from threadline.stores.sql._common import TableNames, check_utf8_session_id, quote_ansi
from threadline.stores.sql._records_sql import prefix_range, scan_range

__all__ = ["INLINE_BYTES", "INLINE_ROWS", "RecordSQL", "SQLiteRecords",
           "create_records_tables", "drop_records", "too_big"]

T = TypeVar("T")

#: The most rows (messages, records) an async call reads or writes on the event loop's
#: thread (~1 ms of SQLite and decoding); larger calls run in a worker thread.
INLINE_ROWS = 500
#: The most bytes of record values an async put writes on the event loop's thread.
INLINE_BYTES = 1 << 20


def create_records_tables(conn: sqlite3.Connection, names: TableNames) -> None:
    """Schema migration 3: the records tables."""
    rs, r = quote_ansi(names.recsets), quote_ansi(names.records)
    conn.execute(f"CREATE TABLE IF NOT EXISTS {rs} (rid INTEGER PRIMARY KEY, "
                 "session_id TEXT NOT NULL UNIQUE, expires_at REAL)")
    conn.execute(f"CREATE INDEX IF NOT EXISTS {quote_ansi(names.recsets_expires_index)} "
                 f"ON {rs} (expires_at) WHERE expires_at IS NOT NULL")
    conn.execute(f"CREATE TABLE IF NOT EXISTS {r} (rid INTEGER NOT NULL, key TEXT NOT NULL, "
                 "value BLOB NOT NULL, PRIMARY KEY (rid, key))")


class RecordSQL:
    """The records statements of one store (``?`` parameters)."""

    def __init__(self, names: TableNames) -> None:
        rs, r = quote_ansi(names.recsets), quote_ansi(names.records)
        live = "(expires_at IS NULL OR expires_at > ?)"
        rid = f"(SELECT rid FROM {rs} WHERE session_id = ? AND {live})"  # (sid, now)
        keys = "(SELECT value FROM json_each(?))"  # a JSON array of keys
        self.tables = (rs, r)
        self.space = f"SELECT rid, expires_at FROM {rs} WHERE session_id = ?"
        self.new_space = f"INSERT INTO {rs} (session_id, expires_at) VALUES (?, ?)"
        self.set_expiry = f"UPDATE {rs} SET expires_at = ? WHERE rid = ?"
        self.drop_space = f"DELETE FROM {rs} WHERE rid = ?"
        self.upsert = (f"INSERT INTO {r} (rid, key, value) VALUES (?, ?, ?) "
                       "ON CONFLICT (rid, key) DO UPDATE SET value = excluded.value")
        self.any_record = f"SELECT EXISTS (SELECT 1 FROM {r} WHERE rid = ?)"
        self.delete_all = f"DELETE FROM {r} WHERE rid = ?"
        self.delete_keys = f"DELETE FROM {r} WHERE rid = ? AND key IN {keys}"
        self.delete_range = f"DELETE FROM {r} WHERE rid = ? AND key >= ? AND key < ?"
        self.get = f"SELECT key, value FROM {r} WHERE rid = {rid} AND key IN {keys}"
        #: By (reverse, keys_only): (sid, now, low, high, limit or -1).
        self.scan = {
            (reverse, keys_only):
                f"SELECT key{'' if keys_only else ', value'} FROM {r} WHERE rid = {rid} "
                f"AND key >= ? AND key < ? ORDER BY key{' DESC' if reverse else ''} LIMIT ?"
            for reverse in (False, True) for keys_only in (False, True)}
        self.expire = f"UPDATE {rs} SET expires_at = ? WHERE session_id = ? AND {live}"
        self.purge_records = (f"DELETE FROM {r} WHERE rid IN "
                              f"(SELECT rid FROM {rs} WHERE expires_at <= ?)")
        self.purge_spaces = f"DELETE FROM {rs} WHERE expires_at <= ?"


def drop_records(conn: sqlite3.Connection, sql: RecordSQL, sid: str, now: float) -> bool:
    """Delete a session's records (inside the caller's transaction); whether it had
    live ones."""
    row = conn.execute(sql.space, (sid,)).fetchone()
    if row is None:
        return False
    had = (row[1] is None or row[1] > now) and bool(
        conn.execute(sql.any_record, (row[0],)).fetchone()[0])
    conn.execute(sql.delete_all, (row[0],))
    conn.execute(sql.drop_space, (row[0],))
    return had


def _put(conn: sqlite3.Connection, sql: RecordSQL, sid: str, batch: dict[str, bytes],
         doomed: list[str], ttl: float | None) -> None:
    now = time.time()
    row = conn.execute(sql.space, (sid,)).fetchone()
    if row is not None and row[1] is not None and row[1] <= now:
        drop_records(conn, sql, sid, now)  # expired: written again, it starts empty
        row = None
    expires = None if ttl is None else now + ttl
    if row is None:
        if not batch:
            return  # deleting from an empty record space
        rid = conn.execute(sql.new_space, (sid, expires)).lastrowid
    else:
        rid = row[0]
        if expires is not None:
            conn.execute(sql.set_expiry, (expires, rid))
    if batch:
        conn.executemany(sql.upsert, [(rid, key, value) for key, value in batch.items()])
    if doomed:
        conn.execute(sql.delete_keys, (rid, json.dumps(doomed)))


class SQLiteRecords(Store):
    """The records methods of :class:`~threadline.stores.sql._sqlite.SQLiteStore`."""

    supports_records = True
    _records_sql: RecordSQL

    @abstractmethod
    def _run(self, work: Callable[[sqlite3.Connection], T], *, write: bool = False) -> T:
        """Run ``work`` on a connection (in one write transaction if asked)."""

    @abstractmethod
    async def _arun(self, work: Callable[[sqlite3.Connection], T], *,
                    write: bool = False) -> T:
        """``_run`` for the async methods, inline on the event loop when nothing waits."""

    def put_records(self, session_id: str, records: Mapping[str, bytes], *,
                    delete: Collection[str] = (), ttl: float | None = None) -> None:
        work = self._put_work(session_id, records, delete, ttl)
        if work is not None:
            self._run(work, write=True)

    def _put_work(self, session_id: str, records: Mapping[str, bytes],
                  delete: Collection[str], ttl: float | None
                  ) -> Callable[[sqlite3.Connection], None] | None:
        """The transaction body of a put, everything checked (``None``: nothing to do)."""
        sid = check_utf8_session_id(session_id)
        batch = check_record_batch(records, delete, self.max_message_bytes)
        doomed = list(delete)  # validated by check_record_batch
        ttl = validate_ttl(ttl) or self.ttl
        if not batch and not doomed and ttl is None:
            return None
        sql = self._records_sql
        return lambda conn: _put(conn, sql, sid, batch, doomed, ttl)

    async def aput_records(self, session_id: str, records: Mapping[str, bytes], *,
                           delete: Collection[str] = (), ttl: float | None = None) -> None:
        if len(records) + len(delete) > INLINE_ROWS or too_big(records):
            await super().aput_records(session_id, records, delete=delete, ttl=ttl)
            return
        work = self._put_work(session_id, records, delete, ttl)
        if work is not None:
            await self._arun(work, write=True)

    def get_records(self, session_id: str, keys: Collection[str]) -> dict[str, bytes]:
        read = self._get_read(session_id, keys)
        return {} if read is None else {key: bytes(value) for key, value in self._run(read)}

    async def aget_records(self, session_id: str, keys: Collection[str]) -> dict[str, bytes]:
        if len(keys) > INLINE_ROWS:
            return await super().aget_records(session_id, keys)
        read = self._get_read(session_id, keys)
        if read is None:
            return {}
        return {key: bytes(value) for key, value in await self._arun(read)}

    def _get_read(self, session_id: str, keys: Collection[str]
                  ) -> Callable[[sqlite3.Connection], list[Any]] | None:
        sid = check_utf8_session_id(session_id)
        wanted = check_record_keys(keys)
        if not wanted:
            return None
        params = (sid, time.time(), json.dumps(wanted))
        sql = self._records_sql.get
        return lambda conn: conn.execute(sql, params).fetchall()

    def scan_records(self, session_id: str, prefix: str = "", *, after: str | None = None,
                     before: str | None = None, limit: int | None = None,
                     reverse: bool = False, keys_only: bool = False
                     ) -> list[tuple[str, bytes]]:
        read = self._scan_read(session_id, prefix, after, before, limit, reverse, keys_only)
        return [] if read is None else _scanned(self._run(read), keys_only)

    async def ascan_records(self, session_id: str, prefix: str = "", *,
                            after: str | None = None, before: str | None = None,
                            limit: int | None = None, reverse: bool = False,
                            keys_only: bool = False) -> list[tuple[str, bytes]]:
        # Keys are short: a keys-only scan (the tombstones of a session) runs inline
        # whatever its limit; values may be large, so a scan of them only when bounded.
        if not keys_only and (limit is None or limit > INLINE_ROWS):
            return await super().ascan_records(session_id, prefix, after=after,
                                               before=before, limit=limit, reverse=reverse,
                                               keys_only=keys_only)
        read = self._scan_read(session_id, prefix, after, before, limit, reverse, keys_only)
        return [] if read is None else _scanned(await self._arun(read), keys_only)

    def _scan_read(self, session_id: str, prefix: str, after: str | None,
                   before: str | None, limit: int | None, reverse: bool, keys_only: bool
                   ) -> Callable[[sqlite3.Connection], list[Any]] | None:
        sid = check_utf8_session_id(session_id)
        check_scan_args(prefix, after, before, limit)
        bounds = scan_range(prefix, after, before)
        if bounds is None:
            return None
        query = self._records_sql.scan[reverse, keys_only]
        params = (sid, time.time(), *bounds, -1 if limit is None else limit)
        return lambda conn: conn.execute(query, params).fetchall()

    def delete_records(self, session_id: str, keys: Collection[str] | None = None, *,
                       prefix: str | None = None) -> None:
        sid = check_utf8_session_id(session_id)
        wanted = None if keys is None else check_record_keys(keys)
        if prefix is not None:
            validate_record_key(prefix)
        if wanted == [] and prefix is None:
            return
        sql = self._records_sql

        def work(conn: sqlite3.Connection) -> None:
            now = time.time()
            if wanted is None and prefix is None:
                drop_records(conn, sql, sid, now)
                return
            row = conn.execute(sql.space, (sid,)).fetchone()
            if row is None or (row[1] is not None and row[1] <= now):
                return  # expired records are already gone to readers (purge drops them)
            if wanted:
                conn.execute(sql.delete_keys, (row[0], json.dumps(wanted)))
            if prefix is not None:
                conn.execute(sql.delete_range, (row[0], *prefix_range(prefix)))

        self._run(work, write=True)


def _scanned(rows: list[Any], keys_only: bool) -> list[tuple[str, bytes]]:
    if keys_only:
        return [(row[0], b"") for row in rows]
    return [(key, bytes(value)) for key, value in rows]


def too_big(records: Mapping[str, bytes]) -> bool:
    """More record bytes than an async put writes on the event loop's thread."""
    total = 0
    for value in records.values():
        total += len(value) if isinstance(value, bytes | bytearray | memoryview) else 0
        if total > INLINE_BYTES:
            return True
    return False
