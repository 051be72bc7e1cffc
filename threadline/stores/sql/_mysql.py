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
* Both shells render a statement with its parameters escaped (:func:`_render`) before
  sending it, so its size is known: one larger than the server's ``max_allowed_packet``
  (read at setup) is refused with an :class:`InputError` instead of the server dropping
  the connection ("server has gone away").
* Timeouts: PyMySQL's ``read_timeout`` / ``write_timeout`` bound each statement (and the
  handshake), ``connect_timeout`` the TCP connect; the async shell bounds each statement
  with ``asyncio.timeout``. A timed-out connection is closed, never reused, and the call
  raises :class:`StoreTimeoutError` ("read", "connect" or "pool").
* Dropped connections: an idle pooled connection whose socket is readable was closed by
  the server (restart), so it is discarded before use at no round trip; reads, and
  appends whose every message has an id (idempotent), are run once more on a connection
  error; other writes are not (the statement may have run); timeouts are not retried.
* Sessions as objects (:mod:`._mysql_sessions`): ``search`` drives
  :func:`~._mysql_sessions.search_steps` (FULLTEXT candidates in batches, checked in
  Python; the portable scan when no term is indexed) and ``fork`` copies rows
  server-side in one transaction.
* Records (:mod:`._mysql_records`): a put larger than ``max_allowed_packet`` is several
  ops, run in order on one connection as one transaction (:meth:`MySQLStore._run_all`);
  when one fails the connection is closed, which rolls the transaction back, and a
  retry runs them all again.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import threading
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from typing import Any, TypeVar

from threadline._concurrency import run_sync
from threadline._errors import (
    ConfigurationError,
    InputError,
    MissingDependencyError,
    StoreConnectionError,
    StoreError,
)
from threadline.stores._base import SessionInfo, validate_session_id
from threadline.stores._sessions import SearchHit, check_search_args, scan_search
from threadline.stores._url import StoreURL
from threadline.stores.sql._common import check_text_sizes
from threadline.stores.sql._mysql_records import RECORDS
from threadline.stores.sql._mysql_sessions import STATEMENTS, fork_op, search_steps
from threadline.stores.sql._mysql_statements import (
    MAX_INDEXED_WORD,
    Names,
    ServerLimits,
    setup_steps,
)
from threadline.stores.sql._server import Op, Rows, adrive, drive
from threadline.stores.sql._server_records import SQLRecordsStore

try:
    import pymysql
    from pymysql.constants import CLIENT
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise MissingDependencyError("PyMySQL", "mysql") from exc

__all__ = ["MySQLStore"]

T = TypeVar("T")

#: Client errors meaning "the connection is gone" (2006 gone away, 2013 lost, ...).
_CONNECTION_ERRORS = {2003, 2006, 2013, 2055, 1053, 1927, 4031}
#: The server answered and would not let the user in: access denied (to the server, to
#: the database, without a password), host not allowed, unsupported authentication.
_LOGIN_REFUSED = {1044, 1045, 1130, 1251, 1698}
#: Runs of an op chosen as a deadlock's victim (InnoDB rolled its transaction back:
#: concurrent first appends of one session all wait on its new row, then deadlock).
_DEADLOCK_RUNS = 4


def _closed_by_server(conn: Any) -> bool:
    """An idle connection with bytes to read was closed by the server (a restart sends
    an error packet and EOF). A syscall, no round trip."""
    return _readable(getattr(conn, "_sock", None))


def _aclosed_by_server(conn: Any) -> bool:
    """:func:`_closed_by_server` for aiomysql: what its reader already got, then the
    socket itself (the loop may not have run since the server closed it)."""
    reader, writer = getattr(conn, "_reader", None), getattr(conn, "_writer", None)
    if reader is None or writer is None:
        return True
    if reader.at_eof() or len(getattr(reader, "_buffer", b"")):
        return True
    return _readable(writer.get_extra_info("socket"))


def _readable(sock: Any) -> bool:
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


def _deadlocked(exc: BaseException) -> bool:
    return (isinstance(exc, pymysql.err.OperationalError) and bool(exc.args)
            and exc.args[0] == 1213)


def _timed_out(exc: BaseException) -> bool:
    """A socket timeout, even wrapped by PyMySQL ("Lost connection ... (timed out)")."""
    seen: set[int] = set()
    error: BaseException | None = exc
    while error is not None and id(error) not in seen:
        if isinstance(error, TimeoutError):
            return True
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return False


def _render(conn: Any, op: Op[Any]) -> str:
    """The statement with its parameters escaped by the connection, as it is sent.
    Bytes are hex literals (aiomysql 0.3 cannot escape bytes with PyMySQL 1.2)."""
    if not op.params:
        return str(op.query)
    return str(op.query) % tuple(f"X'{p.hex()}'" if isinstance(p, bytes) else conn.escape(p)
                                 for p in op.params)


class _PoolFull(Exception):
    """Every connection of the pool stayed busy for ``pool_timeout``."""


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
            raise _PoolFull
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


class MySQLStore(SQLRecordsStore):
    """Chat histories in MySQL or MariaDB.

    >>> store = MySQLStore("mysql://app:secret@localhost/chat")  # doctest: +SKIP
    >>> store.history("user-1/conv-7").add_user_message("hi")  # doctest: +SKIP

    Options: ``table`` (messages table; sessions go in ``<table>_sessions``),
    ``timeout`` (seconds a connect, a statement or a pool wait may take, default 30),
    ``connect_timeout`` (default 5, at most ``timeout``), ``pool_size`` (default 5),
    ``pool_timeout`` (seconds to wait for a free connection, default 10, at most
    ``timeout``), ``ttl``.
    """

    STATEMENTS = STATEMENTS
    RECORDS = RECORDS
    #: Until the server's max_allowed_packet is read (at setup): MySQL's largest one.
    MAX_MESSAGE_BYTES = 1 << 30
    LIMIT_NAME = "MySQL's max_allowed_packet"
    SERVER = "MySQL"

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
        self._max_packet: int | None = None  # the server's max_allowed_packet
        # FULLTEXT word lengths (InnoDB's defaults until setup reads the server's).
        self._limits = ServerLimits(self.MAX_MESSAGE_BYTES, 3, MAX_INDEXED_WORD)
        self._pool: _SyncPool | None = None
        self._pool_lock = threading.Lock()
        self._apool: Any = None
        self._apool_loop: asyncio.AbstractEventLoop | None = None
        self._alock: asyncio.Lock | None = None
        self._keeper: AsyncGenerator[None, None] | None = None
        self._abusy = 0  # connections of the async pool in use (to explain a timeout)

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

    # -- errors and limits ---------------------------------------------------------------

    def _wrap(self, exc: BaseException, what: str, op: Op[Any] | None = None) -> StoreError:
        """``exc`` as a threadline error; a timeout is a read timeout when ``op`` was
        sent, else a connect timeout."""
        if isinstance(exc, StoreError):
            return exc
        if isinstance(exc, _PoolFull):
            return self._pool_timeout()
        if _timed_out(exc):
            return self._read_timeout(op) if op is not None else self._connect_timeout()
        where = self.url.render(with_query=False)
        reason = str(exc).strip() or type(exc).__name__
        if self.url.password:
            reason = reason.replace(self.url.password, "***")
        code = exc.args[0] if isinstance(exc, pymysql.err.MySQLError) and exc.args else None
        if code == 1049:
            name = self.url.database
            return StoreConnectionError(
                f"cannot {what} MySQL at {where}: the server is up and accepted the login, "
                f"but database {name!r} does not exist. Create it (CREATE DATABASE "
                f"`{name}` in the mariadb or mysql client); threadline creates its tables in "
                "it by itself (threadline db init creates them ahead of time), never the "
                f"database. The server said: {reason}", part="database")
        if code in _LOGIN_REFUSED:
            return StoreConnectionError(
                f"cannot {what} MySQL at {where}: the server is up but refused the login "
                "(authentication): check the user name and password in the URL, and that "
                f"this user may connect from here and use the database. The server said: "
                f"{reason}", part="authentication")
        if _is_connection_error(exc):
            if what == "connect to":
                return StoreConnectionError(
                    f"cannot connect to MySQL at {where}: the server is unreachable (is it "
                    f"running and listening on {self.url.host or 'localhost'}:"
                    f"{self.url.port or 3306}?): {reason}")
            return StoreConnectionError(f"cannot {what} MySQL at {where}: {reason}")
        return StoreError(f"MySQL {what} failed at {where}: {reason}")

    def _message_limit(self) -> int:
        return self._max_packet or self.MAX_MESSAGE_BYTES

    def _check_packet(self, op: Op[Any], query: str) -> None:
        """Refuse, before sending it, a statement larger than max_allowed_packet."""
        limit = self._max_packet
        if limit is None or len(query) * 4 < limit:  # a character is at most 4 bytes
            return
        check_text_sizes(op.texts, limit, self.LIMIT_NAME)
        size = len(query.encode("utf-8", "surrogatepass")) + 1  # + the command byte
        if size > limit and not op.texts:  # records: a get or delete of very many keys
            raise InputError(
                f"this call takes a statement of {size:,} bytes (escaped), larger than "
                f"{self.LIMIT_NAME} ({limit:,} bytes); pass fewer keys at a time")
        if size > limit:
            raise InputError(
                f"storing these {len(op.texts)} message(s) takes a statement of {size:,} "
                f"bytes (escaped), larger than {self.LIMIT_NAME} ({limit:,} bytes); "
                "append fewer or smaller messages at a time; nothing was stored")

    # -- sync shell ----------------------------------------------------------------------

    def _get_pool(self) -> _SyncPool:
        if self._closed:
            raise StoreError("the store is closed")
        with self._pool_lock:
            if self._pool is None:
                args = {**self._connect_args(), "read_timeout": self.timeout,
                        "write_timeout": self.timeout}
                self._pool = _SyncPool(lambda: pymysql.connect(**args), self.pool_size,
                                       self.pool_timeout)
            return self._pool

    def _execute(self, conn: Any, op: Op[T]) -> T:
        query = _render(conn, op)
        self._check_packet(op, query)
        with conn.cursor() as cur:
            cur.execute(query)
            first: Rows = list(cur.fetchall() or []) if cur.description is not None else []
            while cur.nextset():  # multi-statement ops: consume (and check) every result
                if not first and cur.description is not None:
                    first = list(cur.fetchall() or [])
        return op.result(first)

    def _acquire(self, pool: _SyncPool) -> Any:
        try:
            return pool.acquire()
        except (pymysql.err.MySQLError, OSError, _PoolFull) as exc:
            raise self._wrap(exc, "connect to") from exc

    def _run(self, op: Op[T], *, setup: bool = True) -> T:
        result: T = self._run_ops([op], setup=setup)[0]
        return result

    def _run_all(self, ops: Sequence[Op[Any]]) -> None:
        self._run_ops(ops)

    def _run_ops(self, ops: Sequence[Op[Any]], *, setup: bool = True) -> list[Any]:
        """Run ``ops`` in order on one connection (their own statements open and commit
        a transaction when there are several); the results of each."""
        if setup and not self._ready:
            self.setup()
        dropped, runs = False, 0
        while True:
            runs += 1
            pool = self._get_pool()
            conn = self._acquire(pool)
            broken = False
            op = ops[0]
            try:
                results = []
                for op in ops:
                    results.append(self._execute(conn, op))
                return results
            except (pymysql.err.MySQLError, OSError) as exc:
                broken = True  # never reuse a connection in an unknown state
                if _deadlocked(exc) and runs < _DEADLOCK_RUNS:
                    continue
                if not dropped and self._may_rerun(ops, exc):
                    dropped = True
                    continue
                raise self._wrap(exc, "query", op) from exc
            except InputError:
                broken = op is not ops[0]  # refused before sending, but maybe mid-transaction
                raise
            except BaseException:
                broken = True
                raise
            finally:
                pool.release(conn, broken=broken)

    @staticmethod
    def _may_rerun(ops: Sequence[Op[Any]], exc: BaseException) -> bool:
        """The connection dropped under ``ops`` (not a timeout) and they are idempotent."""
        return all(op.retry for op in ops) and _is_connection_error(exc) and not _timed_out(exc)

    def setup(self) -> None:
        """Create or migrate the tables (idempotent; runs once per process by itself)."""
        pool = self._get_pool()
        conn = self._acquire(pool)
        broken = True
        try:
            self._limits = drive(setup_steps(self._names),
                                 lambda op: self._execute(conn, op))
            self._max_packet = self._limits.max_packet
            broken = False
        except (pymysql.err.MySQLError, OSError) as exc:
            raise self._wrap(exc, "set up the schema in", self.STATEMENTS.ping) from exc
        finally:
            pool.release(conn, broken=broken)
        self._ready = True

    # -- sessions: search and fork ------------------------------------------------------

    def search(self, query: str, *, owner: str | None = None,
               limit: int = 20) -> list[SearchHit]:
        terms = check_search_args(query, owner, limit)
        if not self._ready:
            self.setup()  # the server's FULLTEXT word lengths decide the plan
        hits = drive(search_steps(self._names, terms, owner, limit, self._limits), self._run)
        return scan_search(self, terms, owner, limit) if hits is None else hits

    async def asearch(self, query: str, *, owner: str | None = None,
                      limit: int = 20) -> list[SearchHit]:
        terms = check_search_args(query, owner, limit)
        if not self._ready:
            await self.asetup()
        hits = await adrive(search_steps(self._names, terms, owner, limit, self._limits),
                            self._arun)
        if hits is None:
            return await run_sync(scan_search, self, terms, owner, limit)
        return hits

    def fork(self, session_id: str, new_session_id: str, *,
             at: int | None = None) -> SessionInfo:
        """:meth:`Store.fork` in one server-side transaction (the rows are copied by
        ``INSERT ... SELECT``, never read by the client)."""
        validate_session_id(new_session_id)
        source = self._fork_source(session_id, new_session_id, at)
        count = source.message_count if at is None else at
        self._run(fork_op(self._names, source, new_session_id, count, self.ttl))
        info = self.session_info(new_session_id)
        assert info is not None
        return info

    async def afork(self, session_id: str, new_session_id: str, *,
                    at: int | None = None) -> SessionInfo:
        validate_session_id(new_session_id)
        source = await run_sync(self._fork_source, session_id, new_session_id, at)
        count = source.message_count if at is None else at
        await self._arun(fork_op(self._names, source, new_session_id, count, self.ttl))
        info = await self.asession_info(new_session_id)
        assert info is not None
        return info

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
            self._abusy = 0
        async with self._alock:
            if self._apool is None:
                args = self._connect_args()
                args["db"] = args.pop("database")  # aiomysql's name for it
                try:  # the handshake too: aiomysql bounds only the TCP connect
                    async with asyncio.timeout(self.connect_timeout):
                        self._apool = await aiomysql.create_pool(
                            minsize=1, maxsize=self.pool_size, pool_recycle=3600, **args)
                except TimeoutError as exc:
                    raise self._connect_timeout() from exc
                except (pymysql.err.MySQLError, OSError) as exc:
                    raise self._wrap(exc, "connect to") from exc
                self._keeper = _close_with_loop(self._apool)
                await anext(self._keeper)
            return self._apool

    async def _aexecute(self, conn: Any, op: Op[T]) -> T:
        query = _render(conn, op)
        self._check_packet(op, query)
        # No "async with" cursor: on a timeout, closing it would read the rest of the
        # results from the stalled connection (the caller closes the connection).
        async with asyncio.timeout(self.timeout):
            cur = await conn.cursor()
            await cur.execute(query)
            first: Rows = (list(await cur.fetchall() or [])
                           if cur.description is not None else [])
            while await cur.nextset():
                if not first and cur.description is not None:
                    first = list(await cur.fetchall() or [])
            await cur.close()
        return op.result(first)

    async def _aacquire(self, pool: Any) -> Any:
        deadline = time.monotonic() + self.pool_timeout
        while True:
            try:
                async with asyncio.timeout(max(0.01, deadline - time.monotonic())):
                    conn = await pool.acquire()
            except TimeoutError as exc:
                if self._abusy >= self.pool_size:
                    raise self._pool_timeout() from exc
                raise self._connect_timeout(self.pool_timeout, "pool_timeout") from exc
            except (pymysql.err.MySQLError, OSError) as exc:
                raise self._wrap(exc, "connect to") from exc
            if not _aclosed_by_server(conn):
                self._abusy += 1
                return conn
            conn.close()  # closed by the server while idle (restart): take another
            pool.release(conn)

    def _arelease(self, pool: Any, conn: Any) -> None:
        self._abusy -= 1
        pool.release(conn)

    async def _arun(self, op: Op[T], *, setup: bool = True) -> T:
        result: T = (await self._arun_ops([op], setup=setup))[0]
        return result

    async def _arun_all(self, ops: Sequence[Op[Any]]) -> None:
        await self._arun_ops(ops)

    async def _arun_ops(self, ops: Sequence[Op[Any]], *, setup: bool = True) -> list[Any]:
        """:meth:`_run_ops` on aiomysql."""
        if setup and not self._ready:
            await self.asetup()
        dropped, runs = False, 0
        while True:
            runs += 1
            pool = await self._get_apool()
            conn = await self._aacquire(pool)
            op = ops[0]
            try:
                results = []
                for op in ops:
                    results.append(await self._aexecute(conn, op))
                return results
            except TimeoutError as exc:
                conn.close()  # mid-statement: never reuse it
                raise self._read_timeout(op) from exc
            except (pymysql.err.MySQLError, OSError) as exc:
                conn.close()  # never reuse a connection in an unknown state
                if _deadlocked(exc) and runs < _DEADLOCK_RUNS:
                    continue
                if not dropped and self._may_rerun(ops, exc):
                    dropped = True
                    continue
                raise self._wrap(exc, "query", op) from exc
            except BaseException as exc:
                if not isinstance(exc, InputError) or op is not ops[0]:
                    conn.close()  # a transaction may be open: closing rolls it back
                raise
            finally:
                self._arelease(pool, conn)

    async def asetup(self) -> None:
        pool = await self._get_apool()
        conn = await self._aacquire(pool)
        try:
            self._limits = await adrive(setup_steps(self._names),
                                        lambda op: self._aexecute(conn, op))
            self._max_packet = self._limits.max_packet
        except BaseException as exc:
            conn.close()  # also releases the setup lock
            if isinstance(exc, TimeoutError):
                raise self._read_timeout(self.STATEMENTS.ping) from exc
            if isinstance(exc, pymysql.err.MySQLError | OSError):
                raise self._wrap(exc, "set up the schema in", self.STATEMENTS.ping) from exc
            raise
        finally:
            self._arelease(pool, conn)
        self._ready = True

    async def aclose(self) -> None:
        keeper, self._keeper, self._apool = self._keeper, None, None
        if keeper is not None and self._apool_loop is asyncio.get_running_loop():
            await keeper.aclose()  # closes the pool
        if self._pool is not None:
            await run_sync(self.close)
        else:
            self.close()
