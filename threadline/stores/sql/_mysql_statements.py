"""MySQL / MariaDB statements (pure): schema migrations and one :class:`Op` per operation.

Nothing here touches a connection; :mod:`threadline.stores.sql._mysql` runs the ops.
``append`` is ONE round trip: a multi-statement transaction (``START TRANSACTION;``
upsert of the sessions row, multi-row INSERT, ``COMMIT``), parameters escaped by the
driver. The upsert takes the session row's lock first, which serialises writers of one
session so each batch stays contiguous. Session ids are stored as utf8 bytes in a BLOB
(byte order = code point order, no PAD SPACE collation surprises) and looked up by a
``BINARY(32)`` sha256 of them, so 10 KB ids work with a btree; queries compare the id as
well. Messages are utf8mb4 LONGTEXT, times are UTC ``DATETIME(6)``.

Message ids: ``msg_key`` is 16 bytes of the id's sha256 (NULL without an id), unique per
session (``UNIQUE (sid, msg_key)``; NULLs never clash). The batch INSERT skips the keys the
session holds (``ON DUPLICATE KEY UPDATE id = id`` changes nothing, so ``ROW_COUNT()`` is
the number of rows inserted, which is what the message count adds). An expired session's
rows are deleted before the INSERT, so its ids are forgotten with them.

Records live in ``<table>_recsets`` / ``<table>_records`` (migration 3; their statements
are in :mod:`threadline.stores.sql._mysql_records`); ``delete``, ``expire``, ``purge`` and
``destroy`` below cover them in the same round trip and transaction.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Generator, Sequence
from datetime import UTC, datetime
from typing import Any

from threadline._errors import ConfigurationError, StoreError
from threadline.messages._values import BaseMessage
from threadline.stores._base import SessionInfo, SessionPage, decode_messages, validate_identifier
from threadline.stores.sql._server import Op, Rows, Statements, no_result

__all__ = ["MIGRATIONS", "STATEMENTS", "Names", "setup_steps"]

_NOW = "UTC_TIMESTAMP(6)"
_TTL = "DATE_ADD(UTC_TIMESTAMP(6), INTERVAL %s MICROSECOND)"  # NULL ttl -> NULL


def _id_bytes(session_id: str) -> bytes:
    return session_id.encode("utf-8", "surrogatepass")


def _hash(session_id: str) -> bytes:
    return hashlib.sha256(_id_bytes(session_id)).digest()


def _message_key(message_id: str | None) -> bytes | None:
    if message_id is None:
        return None
    return hashlib.sha256(message_id.encode("utf-8", "surrogatepass")).digest()[:16]


def _micros(ttl: float | None) -> int | None:
    return None if ttl is None else max(1, round(ttl * 1_000_000))


def _utc(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None else None


def _text(value: str | bytes) -> str:
    return value.decode("utf-8", "surrogatepass") if isinstance(value, bytes) else value


class Names:
    def __init__(self, table: str) -> None:
        validate_identifier(table)
        if len(table) > 55:  # MySQL identifiers are at most 64 characters
            raise ConfigurationError(
                f"table name {table!r} is too long: at most 55 characters "
                "(the store adds '_sessions' to it)")
        self.table = table
        # Backticks are safe: validate_identifier allows only [A-Za-z0-9_].
        self.m = f"`{table}`"
        self.s = f"`{table}_sessions`"
        self.schema = f"`{table}_schema`"
        self.rs = f"`{table}_recsets`"
        self.r = f"`{table}_records`"


def _live(alias: str) -> str:
    return f"({alias}.expires_at IS NULL OR {alias}.expires_at > {_NOW})"


_LIVE = _live("s")
_TABLE_OPTIONS = "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"


def _migration_1(n: Names, columns: set[str]) -> list[str]:
    return [
        f"CREATE TABLE {n.s} ("
        " sid BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
        " session_hash BINARY(32) NOT NULL UNIQUE,"
        " session_id MEDIUMBLOB NOT NULL,"
        " created_at DATETIME(6) NOT NULL,"
        " updated_at DATETIME(6) NOT NULL,"
        " expires_at DATETIME(6) NULL,"
        " message_count BIGINT NOT NULL DEFAULT 0,"
        " floor_id BIGINT NOT NULL DEFAULT 0,"
        f" KEY expires (expires_at)) {_TABLE_OPTIONS}",
        f"CREATE TABLE {n.m} ("
        " id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
        " sid BIGINT NOT NULL,"
        " message LONGTEXT NOT NULL,"
        f" KEY sid_id (sid, id)) {_TABLE_OPTIONS}",
    ]


def _migration_2(n: Names, columns: set[str]) -> list[str]:
    """Message ids: appends skip the ids a session holds (old rows have none). DDL
    commits by itself in MySQL, so a setup killed after it finds the column there."""
    if "msg_key" in columns:
        return []
    return [f"ALTER TABLE {n.m} ADD COLUMN msg_key BINARY(16) NULL,"
            " ADD UNIQUE KEY sid_key (sid, msg_key)"]


def _migration_3(n: Names, columns: set[str]) -> list[str]:
    """Records: one row per session that has some (its expiry), and the records, keyed
    in byte order (VARBINARY) and cut in chunks below max_allowed_packet. IF NOT EXISTS:
    DDL commits by itself, so a setup killed after it finds the table there."""
    return [
        f"CREATE TABLE IF NOT EXISTS {n.rs} ("
        " rid BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
        " session_hash BINARY(32) NOT NULL UNIQUE,"
        " session_id MEDIUMBLOB NOT NULL,"
        " expires_at DATETIME(6) NULL,"
        f" KEY expires (expires_at)) {_TABLE_OPTIONS}",
        f"CREATE TABLE IF NOT EXISTS {n.r} ("
        " rid BIGINT NOT NULL,"
        " rkey VARBINARY(512) NOT NULL,"
        " chunk INT NOT NULL,"
        " value LONGBLOB NOT NULL,"
        f" PRIMARY KEY (rid, rkey, chunk)) {_TABLE_OPTIONS}",
    ]


#: Schema migrations, in order; the schema table holds how many have run. Each gets the
#: columns the messages table has.
MIGRATIONS: list[Callable[[Names, set[str]], list[str]]] = [
    _migration_1, _migration_2, _migration_3]


def setup_steps(n: Names) -> Generator[Op[Any], Rows, int]:
    """Create or migrate the schema; returns the server's ``max_allowed_packet``."""
    # DDL commits implicitly in MySQL: a named lock serialises concurrent setups.
    # The lock is released at the end, or with the connection the shells close on error.
    yield Op("SELECT GET_LOCK(%s, 30)", (f"threadline:{n.table}",), no_result)
    rows = yield Op(
        "SELECT table_name FROM information_schema.tables"
        " WHERE table_schema = DATABASE() AND table_name IN (%s, %s)",
        (n.table, f"{n.table}_schema"), list)
    existing = {_text(r[0]) for r in rows}
    if f"{n.table}_schema" not in existing:
        if n.table in existing:
            raise ConfigurationError(
                f"table {n.table!r} exists but was not created by threadline; "
                "choose another table name with table=...")
        yield Op(f"CREATE TABLE {n.schema} (version INT NOT NULL) {_TABLE_OPTIONS}",
                  (), no_result)
        yield Op(f"INSERT INTO {n.schema} VALUES (0)", (), no_result)
    rows = yield Op(f"SELECT version FROM {n.schema}", (), list)
    version = int(rows[0][0])
    if version > len(MIGRATIONS):
        raise StoreError(
            f"the schema of table {n.table!r} is version {version}, newer than this "
            f"threadline knows ({len(MIGRATIONS)}); upgrade threadline")
    columns: set[str] = set()
    if 0 < version < len(MIGRATIONS):
        rows = yield Op("SELECT column_name FROM information_schema.columns"
                        " WHERE table_schema = DATABASE() AND table_name = %s", (n.table,), list)
        columns = {_text(r[0]) for r in rows}
    for migration in MIGRATIONS[version:]:
        for statement in migration(n, columns):
            yield Op(statement, (), no_result)
    if version < len(MIGRATIONS):
        yield Op(f"UPDATE {n.schema} SET version = %s", (len(MIGRATIONS),), no_result)
    rows = yield Op("SELECT @@max_allowed_packet, RELEASE_LOCK(%s)",
                    (f"threadline:{n.table}",), list)
    return int(rows[0][0])


def _append_op(n: Names, session_id: str, texts: Sequence[str],
               message_ids: Sequence[str | None], ttl: float | None) -> Op[None]:
    expired = f"expires_at <= {_NOW}"
    # ON DUPLICATE KEY UPDATE assigns left to right and later expressions see earlier
    # results, so everything that looks at the old expires_at comes before it. An
    # expired (unpurged) session restarts: its older messages are deleted below.
    query = (
        "START TRANSACTION;"
        f" INSERT INTO {n.s} (session_hash, session_id, created_at, updated_at, expires_at,"
        " message_count)"
        f" VALUES (%s, %s, {_NOW}, {_NOW}, {_TTL}, 0)"
        " ON DUPLICATE KEY UPDATE sid = LAST_INSERT_ID(sid),"
        f" created_at = IF({expired}, VALUES(created_at), created_at),"
        f" message_count = IF({expired}, 0, message_count),"
        f" floor_id = IF({expired}, (SELECT COALESCE(MAX(id), 0) FROM {n.m}), floor_id),"
        " updated_at = VALUES(updated_at),"
        f" expires_at = COALESCE(VALUES(expires_at), IF({expired}, NULL, expires_at));"
        " SET @threadline_sid = LAST_INSERT_ID();"
        f" DELETE m FROM {n.m} AS m JOIN {n.s} AS s ON s.sid = m.sid"
        " WHERE m.sid = @threadline_sid AND m.id <= s.floor_id;"
        f" INSERT INTO {n.m} (sid, msg_key, message) VALUES "
        + ", ".join(["(@threadline_sid, %s, %s)"] * len(texts))
        + " ON DUPLICATE KEY UPDATE id = id;"
        " SET @threadline_added = ROW_COUNT();"
        f" UPDATE {n.s} SET message_count = message_count + @threadline_added"
        " WHERE sid = @threadline_sid; COMMIT"
    )
    rows = [v for key, text in zip(message_ids, texts, strict=True)
            for v in (_message_key(key), text)]
    params = (_hash(session_id), _id_bytes(session_id), _micros(ttl), *rows)
    # Safe to run again after a dropped connection only if every message has an id.
    return Op(query, params, no_result, retry=None not in message_ids, write=True,
              texts=texts)


def _get_op(n: Names, session_id: str, last: int | None,
            skip_invalid: bool = False) -> Op[list[BaseMessage]]:
    base = (f"SELECT m.message FROM {n.s} AS s JOIN {n.m} AS m ON m.sid = s.sid"
            f" WHERE s.session_hash = %s AND s.session_id = %s AND {_LIVE}")
    params: tuple[Any, ...] = (_hash(session_id), _id_bytes(session_id))
    if last is None:
        return Op(base + " ORDER BY m.id", params,
                   lambda rows: decode_messages([r[0] for r in rows], session_id=session_id,
                                                skip_invalid=skip_invalid))
    return Op(base + " ORDER BY m.id DESC LIMIT %s", (*params, last),
               lambda rows: decode_messages([r[0] for r in reversed(rows)],
                                            session_id=session_id, skip_invalid=skip_invalid,
                                            from_end=True))


def _after_op(n: Names, session_id: str, after: int, limit: int) -> Op[Rows]:
    """One page of a streamed read: the next ``limit`` rows ``(id, message)`` after
    message ``after``, on the ``(sid, id)`` key."""
    query = (f"SELECT m.id, m.message FROM {n.s} AS s JOIN {n.m} AS m ON m.sid = s.sid"
             f" WHERE s.session_hash = %s AND s.session_id = %s AND {_LIVE} AND m.id > %s"
             " ORDER BY m.id LIMIT %s")
    return Op(query, (_hash(session_id), _id_bytes(session_id), after, limit), list)


def _delete_op(n: Names, session_id: str) -> Op[bool]:
    # True if the session had live messages or live records. The recsets row is locked
    # first, as every write of records does (no deadlock with a put); that SELECT INTO
    # returns no rows, so the count is the op's result.
    query = (
        "START TRANSACTION;"
        f" SELECT COUNT(*) INTO @threadline_locked FROM {n.rs}"
        " WHERE session_hash = %s AND session_id = %s FOR UPDATE;"
        f" SELECT COUNT(*) + EXISTS (SELECT 1 FROM {n.rs} AS x JOIN {n.r} AS r"
        f" ON r.rid = x.rid WHERE x.session_hash = %s AND x.session_id = %s AND {_live('x')})"
        f" FROM {n.s} AS s WHERE s.session_hash = %s AND s.session_id = %s"
        f" AND {_LIVE} FOR UPDATE;"
        f" DELETE s, m FROM {n.s} AS s LEFT JOIN {n.m} AS m ON m.sid = s.sid"
        " WHERE s.session_hash = %s AND s.session_id = %s;"
        f" DELETE x, r FROM {n.rs} AS x LEFT JOIN {n.r} AS r ON r.rid = x.rid"
        " WHERE x.session_hash = %s AND x.session_id = %s; COMMIT")
    key = (_hash(session_id), _id_bytes(session_id))
    return Op(query, key * 5, lambda rows: int(rows[0][0]) > 0, write=True)


def _list_op(n: Names, prefix: str, limit: int, cursor: str | None) -> Op[SessionPage]:
    raw = _id_bytes(prefix)
    query = (f"SELECT s.session_id FROM {n.s} AS s WHERE {_LIVE}"
             " AND LEFT(s.session_id, %s) = %s AND (%s IS NULL OR s.session_id > %s)"
             " ORDER BY s.session_id LIMIT %s")
    after = None if cursor is None else _id_bytes(cursor)

    def page(rows: Rows) -> SessionPage:
        ids = [_text(r[0]) for r in rows[:limit]]
        return SessionPage(ids, ids[-1] if len(rows) > limit else None)

    return Op(query, (len(raw), raw, after, after, limit + 1), page)


def _info_op(n: Names, session_id: str) -> Op[SessionInfo | None]:
    query = (f"SELECT s.message_count, s.created_at, s.updated_at, s.expires_at FROM {n.s} AS s"
             f" WHERE s.session_hash = %s AND s.session_id = %s AND {_LIVE}")

    def info(rows: Rows) -> SessionInfo | None:
        if not rows:
            return None
        count, created, updated, expires = rows[0]
        return SessionInfo(session_id, int(count), _utc(created), _utc(updated), _utc(expires))

    return Op(query, (_hash(session_id), _id_bytes(session_id)), info)


def _expire_op(n: Names, session_id: str, ttl: float | None) -> Op[None]:
    # The recsets row first, then the sessions row: the order of every write.
    query = ("START TRANSACTION;"
             f" UPDATE {n.rs} AS s SET s.expires_at = {_TTL}"
             f" WHERE s.session_hash = %s AND s.session_id = %s AND {_LIVE};"
             f" UPDATE {n.s} AS s SET s.expires_at = {_TTL}"
             f" WHERE s.session_hash = %s AND s.session_id = %s AND {_LIVE}; COMMIT")
    params = (_micros(ttl), _hash(session_id), _id_bytes(session_id))
    return Op(query, params * 2, no_result, write=True)


def _purge_op(n: Names) -> Op[int]:
    # The count is what is deleted: rows are locked FOR UPDATE. Records go first (the
    # lock order of every write; a DELETE has no result set, so the count is the first).
    query = (
        "START TRANSACTION;"
        f" DELETE x, r FROM {n.rs} AS x LEFT JOIN {n.r} AS r ON r.rid = x.rid"
        f" WHERE x.expires_at <= {_NOW};"
        f" SELECT COUNT(*) FROM {n.s} WHERE expires_at <= {_NOW} FOR UPDATE;"
        f" DELETE s, m FROM {n.s} AS s LEFT JOIN {n.m} AS m ON m.sid = s.sid"
        f" WHERE s.expires_at <= {_NOW}; COMMIT")
    return Op(query, (), lambda rows: int(rows[0][0]), write=True)


def _destroy_op(n: Names) -> Op[None]:
    return Op(f"DROP TABLE IF EXISTS {n.m}, {n.s}, {n.r}, {n.rs}, {n.schema}", (), no_result,
              write=True)


_PING = Op("SELECT 1", (), no_result)

STATEMENTS = Statements(append=_append_op, get=_get_op, delete=_delete_op, page=_list_op,
                        info=_info_op, expire=_expire_op, purge=_purge_op,
                        destroy=_destroy_op, ping=_PING, after=_after_op)
