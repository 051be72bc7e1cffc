"""MySQL / MariaDB store: PyMySQL (sync, own small pool) and aiomysql (async).

Design:

* Every operation is a pure :class:`~threadline.stores.sql._server.Op` built in
  :mod:`threadline.stores.sql._mysql_statements` (statements, schema and migrations); the Store
  methods are :class:`~threadline.stores.sql._server.SQLServerStore`'s. This module is
  the driver: a sync shell runs an op on PyMySQL, an async shell on aiomysql; setup is
  a generator of ops both drive.
* Connections are autocommit with multi-statements on (``append`` is one round trip)
  and run READ COMMITTED (no gap locks, hence no deadlock between two writers creating
  the same session).
* Dropped connections: an idle pooled connection whose socket is readable was closed by
  the server (restart), so it is discarded before use at no round trip; reads are
  retried once on a connection error, writes are not (the statement may have run).
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import threading
import time
from collections.abc import AsyncGenerator, Callable
from typing import Any, TypeVar

from threadline._concurrency import run_sync
from threadline._errors import (
    ConfigurationError,
    MissingDependencyError,
    StoreConnectionError,
    StoreError,
)
from threadline.stores._url import StoreURL
from threadline.stores.sql._mysql_statements import STATEMENTS, Names, setup_steps
from threadline.stores.sql._server import Op, Rows, SQLServerStore, adrive, drive

try:
    import pymysql
    from pymysql.constants import CLIENT
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise MissingDependencyError("PyMySQL", "mysql") from exc

__all__ = ["MySQLStore"]

T = TypeVar("T")

#: Client errors meaning "the connection is gone" (2006 gone away, 2013 lost, ...).
_CONNECTION_ERRORS = {2003, 2006, 2013, 2055, 1053, 1927, 4031}


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


class MySQLStore(SQLServerStore):
    """Chat histories in MySQL or MariaDB.

    >>> store = MySQLStore("mysql://app:secret@localhost/chat")  # doctest: +SKIP
    >>> store.history("user-1/conv-7").add_user_message("hi")  # doctest: +SKIP

    Options: ``table`` (messages table; sessions go in ``<table>_sessions``),
    ``connect_timeout`` (seconds, default 5), ``pool_size`` (default 5),
    ``pool_timeout`` (seconds to wait for a free connection, default 10), ``ttl``.
    """

    STATEMENTS = STATEMENTS

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
        self._configure(Names)
        self._pool: _SyncPool | None = None
        self._pool_lock = threading.Lock()
        self._apool: Any = None
        self._apool_loop: asyncio.AbstractEventLoop | None = None
        self._alock: asyncio.Lock | None = None
        self._keeper: AsyncGenerator[None, None] | None = None

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
    def _execute(conn: Any, op: Op[T]) -> T:
        with conn.cursor() as cur:
            cur.execute(op.query, op.params or None)
            first: Rows = list(cur.fetchall() or []) if cur.description is not None else []
            while cur.nextset():  # multi-statement ops: consume (and check) every result
                if not first and cur.description is not None:
                    first = list(cur.fetchall() or [])
        return op.result(first)

    def _acquire(self, pool: _SyncPool) -> Any:
        try:
            return pool.acquire()
        except pymysql.err.MySQLError as exc:
            raise self._wrap(exc, "connect to") from exc

    def _run(self, op: Op[T], *, setup: bool = True) -> T:
        if setup and not self._ready:
            self.setup()
        for attempt in (1, 2):
            pool = self._get_pool()
            conn = self._acquire(pool)
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
        conn = self._acquire(pool)
        broken = True
        try:
            drive(setup_steps(self._names), lambda op: self._execute(conn, op))
            broken = False
        except (pymysql.err.MySQLError, OSError) as exc:
            raise self._wrap(exc, "set up the schema in") from exc
        finally:
            pool.release(conn, broken=broken)
        self._ready = True

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
    async def _aexecute(conn: Any, op: Op[T]) -> T:
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

    async def _arun(self, op: Op[T], *, setup: bool = True) -> T:
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
            await adrive(setup_steps(self._names), lambda op: self._aexecute(conn, op))
        except BaseException as exc:
            conn.close()  # also releases the setup lock
            if isinstance(exc, pymysql.err.MySQLError | OSError):
                raise self._wrap(exc, "set up the schema in") from exc
            raise
        finally:
            pool.release(conn)
        self._ready = True

    async def aclose(self) -> None:
        keeper, self._keeper, self._apool = self._keeper, None, None
        if keeper is not None and self._apool_loop is asyncio.get_running_loop():
            await keeper.aclose()  # closes the pool
        if self._pool is not None:
            await run_sync(self.close)
        else:
            self.close()
