"""MySQL / MariaDB store: PyMySQL (sync, own small pool) and aiomysql (async).

Design:

* Like the PostgreSQL store, every operation is a pure :class:`_Op` value (SQL text,
  parameters, how to turn rows into a result, whether a retry is safe) that a sync shell
  runs on PyMySQL and an async shell on aiomysql; setup is a generator of ops both drive.
* ``append`` is ONE round trip: a multi-statement transaction (``START TRANSACTION;``
  upsert of the sessions row, multi-row INSERT, ``COMMIT``), parameters escaped by the
  driver. The upsert takes the session row's lock first, which serialises writers of one
  session so each batch stays contiguous; connections run READ COMMITTED (no gap locks,
  hence no deadlock between two writers creating the same session).
* Session ids are stored as utf8 bytes in a BLOB (byte order = code point order, no
  PAD SPACE collation surprises) and looked up by a ``BINARY(32)`` sha256 of them, so
  10 KB ids work with a btree; queries compare the id as well. Messages are utf8mb4
  LONGTEXT, times are UTC ``DATETIME(6)``.
* Dropped connections: an idle pooled connection whose socket is readable was closed by
  the server (restart), so it is discarded before use at no round trip; reads are
  retried once on a connection error, writes are not (the statement may have run).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import select
import threading
import time
from collections.abc import AsyncGenerator, Callable, Generator, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, NamedTuple, TypeVar

from threadline._concurrency import run_sync
from threadline._errors import (
    ConfigurationError,
    InputError,
    MissingDependencyError,
    StoreConnectionError,
    StoreError,
)
from threadline._messages import BaseMessage
from threadline.stores._base import (
    SessionInfo,
    SessionPage,
    Store,
    decode_message,
    encode_message,
    validate_identifier,
    validate_session_id,
    validate_ttl,
)
from threadline.stores._url import StoreURL

try:
    import pymysql
    from pymysql.constants import CLIENT
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise MissingDependencyError("PyMySQL", "mysql") from exc

__all__ = ["MySQLStore"]

T = TypeVar("T")
Rows = list[tuple[Any, ...]]

DEFAULT_TABLE = "threadline_messages"
_NOW = "UTC_TIMESTAMP(6)"
_TTL = "DATE_ADD(UTC_TIMESTAMP(6), INTERVAL %s MICROSECOND)"  # NULL ttl -> NULL
#: Client errors meaning "the connection is gone" (2006 gone away, 2013 lost, ...).
_CONNECTION_ERRORS = {2003, 2006, 2013, 2055, 1053, 1927, 4031}


class _Op(NamedTuple, Generic[T]):
    query: str
    params: tuple[Any, ...]
    result: Callable[[Rows], T]
    retry: bool = True


def _none(rows: Rows) -> None:
    return None


def _id_bytes(session_id: str) -> bytes:
    return session_id.encode("utf-8", "surrogatepass")


def _hash(session_id: str) -> bytes:
    return hashlib.sha256(_id_bytes(session_id)).digest()


def _micros(ttl: float | None) -> int | None:
    return None if ttl is None else max(1, round(ttl * 1_000_000))


def _utc(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None else None


def _text(value: str | bytes) -> str:
    return value.decode("utf-8", "surrogatepass") if isinstance(value, bytes) else value


class _Names:
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


_LIVE = f"(s.expires_at IS NULL OR s.expires_at > {_NOW})"
_TABLE_OPTIONS = "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"


def _migration_1(n: _Names) -> list[str]:
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


#: Schema migrations, in order; the schema table holds how many have run.
MIGRATIONS: list[Callable[[_Names], list[str]]] = [_migration_1]


def _setup_steps(n: _Names) -> Generator[_Op[Any], Rows, None]:
    # DDL commits implicitly in MySQL: a named lock serialises concurrent setups.
    # The lock is released at the end, or with the connection the shells close on error.
    yield _Op("SELECT GET_LOCK(%s, 30)", (f"threadline:{n.table}",), _none)
    rows = yield _Op(
        "SELECT table_name FROM information_schema.tables"
        " WHERE table_schema = DATABASE() AND table_name IN (%s, %s)",
        (n.table, f"{n.table}_schema"), list)
    existing = {_text(r[0]) for r in rows}
    if f"{n.table}_schema" not in existing:
        if n.table in existing:
            raise ConfigurationError(
                f"table {n.table!r} exists but was not created by threadline; "
                "choose another table name with table=...")
        yield _Op(f"CREATE TABLE {n.schema} (version INT NOT NULL) {_TABLE_OPTIONS}",
                  (), _none)
        yield _Op(f"INSERT INTO {n.schema} VALUES (0)", (), _none)
    rows = yield _Op(f"SELECT version FROM {n.schema}", (), list)
    version = int(rows[0][0])
    if version > len(MIGRATIONS):
        raise StoreError(
            f"the schema of table {n.table!r} is version {version}, newer than this "
            f"threadline knows ({len(MIGRATIONS)}); upgrade threadline")
    for migration in MIGRATIONS[version:]:
        for statement in migration(n):
            yield _Op(statement, (), _none)
    if version < len(MIGRATIONS):
        yield _Op(f"UPDATE {n.schema} SET version = %s", (len(MIGRATIONS),), _none)
    yield _Op("SELECT RELEASE_LOCK(%s)", (f"threadline:{n.table}",), _none)


def _append_op(n: _Names, session_id: str, messages: Sequence[BaseMessage],
               ttl: float | None) -> _Op[None]:
    texts = [encode_message(m) for m in messages]
    expired = f"expires_at <= {_NOW}"
    # ON DUPLICATE KEY UPDATE assigns left to right and later expressions see earlier
    # results, so everything that looks at the old expires_at comes before it. An
    # expired (unpurged) session restarts: its older messages are deleted below.
    query = (
        "START TRANSACTION;"
        f" INSERT INTO {n.s} (session_hash, session_id, created_at, updated_at, expires_at,"
        " message_count)"
        f" VALUES (%s, %s, {_NOW}, {_NOW}, {_TTL}, %s)"
        " ON DUPLICATE KEY UPDATE sid = LAST_INSERT_ID(sid),"
        f" created_at = IF({expired}, VALUES(created_at), created_at),"
        f" message_count = IF({expired}, VALUES(message_count),"
        "  message_count + VALUES(message_count)),"
        f" floor_id = IF({expired}, (SELECT COALESCE(MAX(id), 0) FROM {n.m}), floor_id),"
        " updated_at = VALUES(updated_at),"
        f" expires_at = COALESCE(VALUES(expires_at), IF({expired}, NULL, expires_at));"
        " SET @threadline_sid = LAST_INSERT_ID();"
        f" DELETE m FROM {n.m} AS m JOIN {n.s} AS s ON s.sid = m.sid"
        " WHERE m.sid = @threadline_sid AND m.id <= s.floor_id;"
        f" INSERT INTO {n.m} (sid, message) VALUES "
        + ", ".join(["(@threadline_sid, %s)"] * len(texts))
        + "; COMMIT"
    )
    params = (_hash(session_id), _id_bytes(session_id), _micros(ttl), len(texts), *texts)
    return _Op(query, params, _none, retry=False)


def _get_op(n: _Names, session_id: str, last: int | None) -> _Op[list[BaseMessage]]:
    base = (f"SELECT m.message FROM {n.s} AS s JOIN {n.m} AS m ON m.sid = s.sid"
            f" WHERE s.session_hash = %s AND s.session_id = %s AND {_LIVE}")
    params: tuple[Any, ...] = (_hash(session_id), _id_bytes(session_id))
    if last is None:
        return _Op(base + " ORDER BY m.id", params,
                   lambda rows: [decode_message(r[0]) for r in rows])
    return _Op(base + " ORDER BY m.id DESC LIMIT %s", (*params, last),
               lambda rows: [decode_message(r[0]) for r in reversed(rows)])


def _delete_op(n: _Names, session_id: str) -> _Op[bool]:
    query = (
        "START TRANSACTION;"
        f" SELECT COUNT(*) FROM {n.s} AS s WHERE s.session_hash = %s AND s.session_id = %s"
        f" AND {_LIVE} FOR UPDATE;"
        f" DELETE s, m FROM {n.s} AS s LEFT JOIN {n.m} AS m ON m.sid = s.sid"
        " WHERE s.session_hash = %s AND s.session_id = %s; COMMIT")
    key = (_hash(session_id), _id_bytes(session_id))
    return _Op(query, (*key, *key), lambda rows: int(rows[0][0]) > 0)


def _list_op(n: _Names, prefix: str, limit: int, cursor: str | None) -> _Op[SessionPage]:
    raw = _id_bytes(prefix)
    query = (f"SELECT s.session_id FROM {n.s} AS s WHERE {_LIVE}"
             " AND LEFT(s.session_id, %s) = %s AND (%s IS NULL OR s.session_id > %s)"
             " ORDER BY s.session_id LIMIT %s")
    after = None if cursor is None else _id_bytes(cursor)

    def page(rows: Rows) -> SessionPage:
        ids = [_text(r[0]) for r in rows[:limit]]
        return SessionPage(ids, ids[-1] if len(rows) > limit else None)

    return _Op(query, (len(raw), raw, after, after, limit + 1), page)


def _info_op(n: _Names, session_id: str) -> _Op[SessionInfo | None]:
    query = (f"SELECT s.message_count, s.created_at, s.updated_at, s.expires_at FROM {n.s} AS s"
             f" WHERE s.session_hash = %s AND s.session_id = %s AND {_LIVE}")

    def info(rows: Rows) -> SessionInfo | None:
        if not rows:
            return None
        count, created, updated, expires = rows[0]
        return SessionInfo(session_id, int(count), _utc(created), _utc(updated), _utc(expires))

    return _Op(query, (_hash(session_id), _id_bytes(session_id)), info)


def _expire_op(n: _Names, session_id: str, ttl: float | None) -> _Op[None]:
    query = (f"UPDATE {n.s} AS s SET s.expires_at = {_TTL}"
             f" WHERE s.session_hash = %s AND s.session_id = %s AND {_LIVE}")
    return _Op(query, (_micros(ttl), _hash(session_id), _id_bytes(session_id)), _none)


def _purge_op(n: _Names) -> _Op[int]:
    # The first statement's count is what is deleted: rows are locked FOR UPDATE.
    query = (
        "START TRANSACTION;"
        f" SELECT COUNT(*) FROM {n.s} WHERE expires_at <= {_NOW} FOR UPDATE;"
        f" DELETE s, m FROM {n.s} AS s LEFT JOIN {n.m} AS m ON m.sid = s.sid"
        f" WHERE s.expires_at <= {_NOW}; COMMIT")
    return _Op(query, (), lambda rows: int(rows[0][0]))


def _destroy_op(n: _Names) -> _Op[None]:
    return _Op(f"DROP TABLE IF EXISTS {n.m}, {n.s}, {n.schema}", (), _none)


_PING = _Op("SELECT 1", (), _none)


def _limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InputError(f"limit must be a positive int, got {limit!r}")
    return limit


def _closed_by_server(conn: Any) -> bool:
    """An idle connection with bytes to read was closed by the server (a restart sends
    an error packet and EOF). A syscall, no round trip."""
    sock = getattr(conn, "_sock", None)
    if sock is None:
        return True
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


def _is_connection_error(exc: BaseException) -> bool:
    if isinstance(exc, pymysql.err.InterfaceError | ConnectionError | OSError):
        return True
    return (isinstance(exc, pymysql.err.OperationalError) and bool(exc.args)
            and exc.args[0] in _CONNECTION_ERRORS)


class _SyncPool:
    """A small thread-safe pool of PyMySQL connections, created on demand."""

    def __init__(self, connect: Callable[[], Any], size: int, timeout: float) -> None:
        self._connect = connect
        self._slots = threading.BoundedSemaphore(size)
        self._idle: list[Any] = []
        self._lock = threading.Lock()
        self._timeout = timeout

    def acquire(self) -> Any:
        if not self._slots.acquire(timeout=self._timeout):
            raise StoreConnectionError(
                f"no free MySQL connection within pool_timeout={self._timeout:g} s")
        try:
            while True:
                with self._lock:
                    conn = self._idle.pop() if self._idle else None
                if conn is None:
                    return self._connect()
                if not _closed_by_server(conn):
                    return conn
                _quiet_close(conn)
        except BaseException:
            self._slots.release()
            raise

    def release(self, conn: Any, *, broken: bool = False) -> None:
        if broken:
            _quiet_close(conn)
        else:
            with self._lock:
                self._idle.append(conn)
        self._slots.release()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            _quiet_close(conn)


def _quiet_close(conn: Any) -> None:
    with contextlib.suppress(Exception):  # the connection is being thrown away
        conn.close()


async def _close_with_loop(pool: Any) -> AsyncGenerator[None, None]:
    """Closes ``pool`` when its event loop shuts down: asyncio.run() finalises live async
    generators while the loop still runs, so a pool left open is closed cleanly."""
    try:
        yield
    finally:
        pool.close()
        await pool.wait_closed()


class MySQLStore(Store):
    """Chat histories in MySQL or MariaDB.

    >>> store = MySQLStore("mysql://app:secret@localhost/chat")  # doctest: +SKIP
    >>> store.history("user-1/conv-7").add_user_message("hi")  # doctest: +SKIP

    Options: ``table`` (messages table; sessions go in ``<table>_sessions``),
    ``connect_timeout`` (seconds, default 5), ``pool_size`` (default 5),
    ``pool_timeout`` (seconds to wait for a free connection, default 10), ``ttl``.
    """

    OPTIONS: ClassVar[dict[str, Any]] = {
        **Store.OPTIONS, "table": str, "connect_timeout": float, "pool_size": int,
        "pool_timeout": float}

    def __init__(self, url: StoreURL | str, **options: Any) -> None:
        super().__init__(url, **options)
        if self.url.scheme not in ("mysql", "mariadb") or self.url.driver not in (
                None, "pymysql", "aiomysql", "mysqldb"):
            raise ConfigurationError(
                f"MySQLStore takes mysql://, mariadb:// or mysql+pymysql:// URLs, "
                f"got {self.url.render()!r}")
        if not self.url.database:
            raise ConfigurationError(
                f"a MySQL store URL names a database: mysql://user@host:3306/dbname, "
                f"got {self.url.render()!r}")
        table = self.options.get("table")
        self._names = _Names(DEFAULT_TABLE if table is None else table)
        given = {k: v for k, v in self.options.items() if v is not None}
        self.connect_timeout = float(given.get("connect_timeout", 5.0))
        self.pool_size = int(given.get("pool_size", 5))
        self.pool_timeout = float(given.get("pool_timeout", 10.0))
        if self.connect_timeout <= 0 or self.pool_size < 1 or self.pool_timeout <= 0:
            raise ConfigurationError(
                "connect_timeout and pool_timeout must be positive and pool_size at least 1")
        self._pool: _SyncPool | None = None
        self._pool_lock = threading.Lock()
        self._apool: Any = None
        self._apool_loop: asyncio.AbstractEventLoop | None = None
        self._alock: asyncio.Lock | None = None
        self._keeper: AsyncGenerator[None, None] | None = None
        self._ready = False
        self._closed = False

    @property
    def table(self) -> str:
        return self._names.table

    def _connect_args(self) -> dict[str, Any]:
        return {
            "host": self.url.host or "localhost",
            "port": self.url.port or 3306,
            "user": self.url.username or "root",
            "password": self.url.password or "",
            "database": self.url.database,
            "charset": "utf8mb4",
            "autocommit": True,
            "connect_timeout": self.connect_timeout,
            "client_flag": CLIENT.MULTI_STATEMENTS,
            "init_command": "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
        }

    # -- errors --------------------------------------------------------------------------

    def _wrap(self, exc: BaseException, what: str) -> StoreError:
        if isinstance(exc, StoreError):
            return exc
        where = self.url.render(with_query=False)
        reason = str(exc).strip() or type(exc).__name__
        if self.url.password:
            reason = reason.replace(self.url.password, "***")
        if _is_connection_error(exc) or isinstance(exc, TimeoutError) or (
                isinstance(exc, pymysql.err.OperationalError) and exc.args
                and exc.args[0] in (1044, 1045, 1049)):  # access denied, unknown database
            return StoreConnectionError(f"cannot {what} MySQL at {where}: {reason}")
        return StoreError(f"MySQL {what} failed at {where}: {reason}")

    # -- sync shell ----------------------------------------------------------------------

    def _get_pool(self) -> _SyncPool:
        if self._closed:
            raise StoreError("the store is closed")
        with self._pool_lock:
            if self._pool is None:
                args = self._connect_args()
                self._pool = _SyncPool(lambda: pymysql.connect(**args), self.pool_size,
                                       self.pool_timeout)
            return self._pool

    @staticmethod
    def _execute(conn: Any, op: _Op[T]) -> T:
        with conn.cursor() as cur:
            cur.execute(op.query, op.params or None)
            first: Rows = list(cur.fetchall() or []) if cur.description is not None else []
            while cur.nextset():  # multi-statement ops: consume (and check) every result
                if not first and cur.description is not None:
                    first = list(cur.fetchall() or [])
        return op.result(first)

    def _run(self, op: _Op[T], *, setup: bool = True) -> T:
        if setup and not self._ready:
            self.setup()
        for attempt in (1, 2):
            pool = self._get_pool()
            try:
                conn = pool.acquire()
            except pymysql.err.MySQLError as exc:
                raise self._wrap(exc, "connect to") from exc
            broken = False
            try:
                return self._execute(conn, op)
            except (pymysql.err.MySQLError, OSError) as exc:
                broken = True  # never reuse a connection in an unknown state
                if attempt == 1 and op.retry and _is_connection_error(exc):
                    continue
                raise self._wrap(exc, "query") from exc
            finally:
                pool.release(conn, broken=broken)
        raise AssertionError("unreachable")

    def setup(self) -> None:
        """Create or migrate the tables (idempotent; runs once per process by itself)."""
        pool = self._get_pool()
        try:
            conn = pool.acquire()
        except pymysql.err.MySQLError as exc:
            raise self._wrap(exc, "connect to") from exc
        broken = True
        try:
            steps = _setup_steps(self._names)
            op = next(steps)
            while True:
                op = steps.send(self._execute(conn, op))
        except StopIteration:
            broken = False
        except (pymysql.err.MySQLError, OSError) as exc:
            raise self._wrap(exc, "set up the schema in") from exc
        finally:
            pool.release(conn, broken=broken)
        self._ready = True

    def _append(self, session_id: str, messages: Sequence[BaseMessage],
                ttl: float | None) -> _Op[None] | None:
        validate_session_id(session_id)
        ttl = validate_ttl(ttl) or self.ttl
        messages = list(messages)
        return _append_op(self._names, session_id, messages, ttl) if messages else None

    def append(self, session_id: str, messages: Sequence[BaseMessage], *,
               ttl: float | None = None) -> None:
        op = self._append(session_id, messages, ttl)
        if op is not None:
            self._run(op)

    def get_messages(self, session_id: str, *, last: int | None = None) -> list[BaseMessage]:
        validate_session_id(session_id)
        if last is not None and last <= 0:
            return []
        return self._run(_get_op(self._names, session_id, last))

    def delete_session(self, session_id: str) -> bool:
        return self._run(_delete_op(self._names, validate_session_id(session_id)))

    def list_sessions(self, *, prefix: str = "", limit: int = 100,
                      cursor: str | None = None) -> SessionPage:
        return self._run(_list_op(self._names, prefix, _limit(limit), cursor))

    def session_info(self, session_id: str) -> SessionInfo | None:
        return self._run(_info_op(self._names, validate_session_id(session_id)))

    def expire(self, session_id: str, ttl: float | None) -> None:
        validate_session_id(session_id)
        self._run(_expire_op(self._names, session_id, validate_ttl(ttl)))

    def purge_expired(self) -> int:
        return self._run(_purge_op(self._names))

    def ping(self) -> None:
        self._run(_PING, setup=False)

    def destroy(self) -> None:
        """Drop this store's tables (all sessions of this table are lost)."""
        self._run(_destroy_op(self._names), setup=False)
        self._ready = False

    def close(self) -> None:
        self._closed = True
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()
        self._apool = None  # an aiomysql pool needs its loop to close: see aclose()

    # -- async shell ---------------------------------------------------------------------

    async def _get_apool(self) -> Any:
        if self._closed:
            raise StoreError("the store is closed")
        try:
            import aiomysql  # type: ignore[import-untyped]
        except ImportError as exc:  # pragma: no cover
            raise MissingDependencyError("aiomysql", "mysql") from exc
        loop = asyncio.get_running_loop()
        if self._apool is not None and self._apool_loop is loop:
            return self._apool
        if self._alock is None or self._apool_loop is not loop:
            # asyncio objects belong to one loop; another asyncio.run gets a new pool.
            self._alock, self._apool, self._apool_loop = asyncio.Lock(), None, loop
        async with self._alock:
            if self._apool is None:
                args = self._connect_args()
                try:
                    args["db"] = args.pop("database")  # aiomysql's name for it
                    self._apool = await asyncio.wait_for(aiomysql.create_pool(
                        minsize=1, maxsize=self.pool_size, pool_recycle=3600, **args),
                        self.connect_timeout + 1)
                except (pymysql.err.MySQLError, OSError, TimeoutError) as exc:
                    raise self._wrap(exc, "connect to") from exc
                self._keeper = _close_with_loop(self._apool)
                await anext(self._keeper)
            return self._apool

    @staticmethod
    async def _aexecute(conn: Any, op: _Op[T]) -> T:
        # aiomysql 0.3 cannot escape bytes with PyMySQL 1.2: bind them as hex literals.
        query = op.query
        if op.params:
            query = query % tuple(f"X'{p.hex()}'" if isinstance(p, bytes) else conn.escape(p)
                                  for p in op.params)
        async with conn.cursor() as cur:
            await cur.execute(query)
            first: Rows = (list(await cur.fetchall() or [])
                           if cur.description is not None else [])
            while await cur.nextset():
                if not first and cur.description is not None:
                    first = list(await cur.fetchall() or [])
        return op.result(first)

    async def _aacquire(self, pool: Any) -> Any:
        deadline = time.monotonic() + self.pool_timeout
        while True:
            try:
                conn = await asyncio.wait_for(pool.acquire(),
                                              max(0.01, deadline - time.monotonic()))
            except TimeoutError as exc:
                raise StoreConnectionError(
                    f"no free MySQL connection within pool_timeout={self.pool_timeout:g} s"
                ) from exc
            except (pymysql.err.MySQLError, OSError) as exc:
                raise self._wrap(exc, "connect to") from exc
            reader = getattr(conn, "_reader", None)
            if reader is None or not (reader.at_eof() or getattr(reader, "eof_received", False)
                                      or len(getattr(reader, "_buffer", b""))):
                return conn
            conn.close()  # closed by the server while idle (restart): take another
            pool.release(conn)

    async def _arun(self, op: _Op[T], *, setup: bool = True) -> T:
        if setup and not self._ready:
            await self.asetup()
        for attempt in (1, 2):
            pool = await self._get_apool()
            conn = await self._aacquire(pool)
            try:
                return await self._aexecute(conn, op)
            except (pymysql.err.MySQLError, OSError) as exc:
                conn.close()  # never reuse a connection in an unknown state
                if attempt == 1 and op.retry and _is_connection_error(exc):
                    continue
                raise self._wrap(exc, "query") from exc
            finally:
                pool.release(conn)
        raise AssertionError("unreachable")

    async def asetup(self) -> None:
        pool = await self._get_apool()
        conn = await self._aacquire(pool)
        try:
            steps = _setup_steps(self._names)
            op = next(steps)
            while True:
                op = steps.send(await self._aexecute(conn, op))
        except StopIteration:
            pass
        except BaseException as exc:
            conn.close()  # also releases the setup lock
            if isinstance(exc, pymysql.err.MySQLError | OSError):
                raise self._wrap(exc, "set up the schema in") from exc
            raise
        finally:
            pool.release(conn)
        self._ready = True

    async def aappend(self, session_id: str, messages: Sequence[BaseMessage], *,
                      ttl: float | None = None) -> None:
        op = self._append(session_id, messages, ttl)
        if op is not None:
            await self._arun(op)

    async def aget_messages(self, session_id: str, *,
                            last: int | None = None) -> list[BaseMessage]:
        validate_session_id(session_id)
        if last is not None and last <= 0:
            return []
        return await self._arun(_get_op(self._names, session_id, last))

    async def adelete_session(self, session_id: str) -> bool:
        return await self._arun(_delete_op(self._names, validate_session_id(session_id)))

    async def alist_sessions(self, *, prefix: str = "", limit: int = 100,
                             cursor: str | None = None) -> SessionPage:
        return await self._arun(_list_op(self._names, prefix, _limit(limit), cursor))

    async def asession_info(self, session_id: str) -> SessionInfo | None:
        return await self._arun(_info_op(self._names, validate_session_id(session_id)))

    async def aexpire(self, session_id: str, ttl: float | None) -> None:
        validate_session_id(session_id)
        await self._arun(_expire_op(self._names, session_id, validate_ttl(ttl)))

    async def apurge_expired(self) -> int:
        return await self._arun(_purge_op(self._names))

    async def aclose(self) -> None:
        keeper, self._keeper, self._apool = self._keeper, None, None
        if keeper is not None and self._apool_loop is asyncio.get_running_loop():
            await keeper.aclose()  # closes the pool
        if self._pool is not None:
            await run_sync(self.close)
        else:
            self.close()
