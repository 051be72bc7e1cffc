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
"""

from __future__ import annotations

import json
import sqlite3
import time
from abc import abstractmethod
from collections.abc import Callable, Collection, Mapping
from typing import TypeVar

from threadline.stores._base import Store, validate_ttl
from threadline.stores._records import (
    check_record_batch,
    check_record_keys,
    check_scan_args,
    validate_record_key,
)
from threadline.stores.sql._common import TableNames, check_utf8_session_id, quote_ansi
from threadline.stores.sql._records_sql import prefix_range, scan_range

__all__ = ["RecordSQL", "SQLiteRecords", "create_records_tables", "drop_records"]

T = TypeVar("T")


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

    def get_records(self, session_id: str, keys: Collection[str]) -> dict[str, bytes]:
        sid = check_utf8_session_id(session_id)
        wanted = check_record_keys(keys)
        if not wanted:
            return {}
        params = (sid, time.time(), json.dumps(wanted))
        rows = self._run(lambda conn: conn.execute(self._records_sql.get, params).fetchall())
        return {key: bytes(value) for key, value in rows}

    def scan_records(self, session_id: str, prefix: str = "", *, after: str | None = None,
                     before: str | None = None, limit: int | None = None,
                     reverse: bool = False, keys_only: bool = False
                     ) -> list[tuple[str, bytes]]:
        sid = check_utf8_session_id(session_id)
        check_scan_args(prefix, after, before, limit)
        bounds = scan_range(prefix, after, before)
        if bounds is None:
            return []
        query = self._records_sql.scan[reverse, keys_only]
        params = (sid, time.time(), *bounds, -1 if limit is None else limit)
        rows = self._run(lambda conn: conn.execute(query, params).fetchall())
        if keys_only:
            return [(row[0], b"") for row in rows]
        return [(key, bytes(value)) for key, value in rows]

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
