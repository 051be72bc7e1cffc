"""PostgreSQL store: psycopg 3 with psycopg_pool, one round trip per call.

Design:

* Every operation is a pure :class:`~threadline.stores.sql._server.Op` built in
  :mod:`threadline.stores.sql._postgres_statements`; the Store methods are
  :class:`~threadline.stores.sql._server.SQLServerStore`'s. This module is the driver:
  the sync shell runs an op on a ``ConnectionPool``, the async shell on a small pool of
  ``AsyncConnection`` (:class:`_AsyncPool`, loop-agnostic, see there why). Schema setup
  is a generator of ops that both shells drive, so there is no sync/async copy of the SQL.
* Connections are autocommit: each op is ONE statement, hence one round trip and its own
  transaction, never idle in transaction (``append`` included: see the statements).
* Pools open lazily. A first direct connection with ``connect_timeout`` turns "server
  down" or "bad password" into a prompt :class:`StoreConnectionError` carrying the
  server's reason. The pool's ``check`` costs no round trip: a pooled connection whose
  socket is readable while idle was closed by the server (restart), so it is verified
  and dropped.
* Connecting (:mod:`._postgres_connect`, pure): every host of the URL and libpq's
  parameters go to libpq (``host=h1,h2 port=p1,p2 target_session_attrs=read-write``),
  so a failover is libpq's choice of host when the pool reconnects. A failure says
  which part failed (``StoreConnectionError.part``): the server (unreachable), the
  login, or the database (missing; the message says how to create it).
* Poolers: ``prepare_threshold`` is psycopg's (statements are prepared on the server
  after 5 runs); ``none`` for a transaction pooler, which runs each transaction on any
  server connection. Not detected (nothing on a connection tells a pooler apart, see
  docs/postgresql.md); the error it causes names the option. Every op is one statement
  in its own transaction, or setup's one transaction with a transaction-level advisory
  lock: no session state a pooler would lose.
* Timeouts: every statement runs under an alarm (:mod:`._watchdog`) that shuts the
  connection's socket down after ``timeout`` seconds, which ends psycopg's wait even
  when the network stalls; the call raises :class:`StoreTimeoutError` (kind "read") and
  the connection is dropped. Connecting is bounded by libpq's ``connect_timeout`` (at
  least 2 s), pool waits by ``pool_timeout`` (kind "pool" when every connection is busy).
* Retries: reads, and appends whose every message has an id (idempotent), run once more
  on a fresh connection when theirs broke (for an append: maybe after the server
  committed); a timeout is not retried. An append or a put of records that lost the
  race to create its session (a unique violation: nothing was written), or a deadlock
  victim (rolled back), runs again at once.
* Records (:mod:`._postgres_records`) are ops like the rest: one statement per call,
  native on both shells.
* Sessions (:mod:`._postgres_sessions`): fields, listings and stats are ops too. Search
  and the schema upgrade's indexing of older messages are generators of ops (several
  round trips, each its own statement) that both shells drive; ``fork`` copies the rows
  on the server in one statement after the base class's checks.
"""

from __future__ import annotations

import asyncio
import math
import select
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any, ClassVar, TypeVar

from threadline._concurrency import run_sync
from threadline._errors import (
    ConfigurationError,
    InputError,
    MissingDependencyError,
    StoreError,
)
from threadline.stores._base import SessionInfo
from threadline.stores._sessions import SearchHit, check_search_args
from threadline.stores._url import StoreURL
from threadline.stores.sql._postgres_connect import (
    DEFAULT_PREPARE_THRESHOLD,
    LIBPQ_OPTIONS,
    POOLED_PREPARE,
    POOLER_HINT,
    connection_error,
    conninfo,
    parse_prepare_threshold,
)
from threadline.stores.sql._postgres_records import RECORDS
from threadline.stores.sql._postgres_sessions import (
    STATEMENTS,
    fill_steps,
    fork_op,
    search_steps,
)
from threadline.stores.sql._postgres_statements import Names, setup_steps
from threadline.stores.sql._server import Op, adrive, drive
from threadline.stores.sql._server_records import SQLRecordsStore
from threadline.stores.sql._watchdog import WATCHDOG, arm_in_loop

try:
    import psycopg
    from psycopg_pool import ConnectionPool, PoolTimeout
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise MissingDependencyError("psycopg and psycopg-pool", "postgres") from exc

__all__ = ["PostgresStore"]

T = TypeVar("T")

#: Runs of an op that lost the race to create its session, or was a deadlock's victim
#: (either way nothing was written).
_CONFLICT_RUNS = 4
#: What a timed-out schema setup reports (as a read: it writes nothing a retry harms).
_SETUP = STATEMENTS.ping


# -- connection handling -------------------------------------------------------------------

def _closed_by_server(conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any]) -> bool:
    """An idle connection with something to read was (almost surely) closed by the
    server: a restart sends a FATAL message and EOF. Costs a syscall, no round trip."""
    if conn.closed:
        return True
    try:
        readable, _, _ = select.select([conn.fileno()], [], [], 0)
    except (OSError, ValueError, psycopg.Error):
        return True
    return bool(readable)


def _check(conn: psycopg.Connection[Any]) -> None:
    if _closed_by_server(conn):
        conn.execute("")  # raises on a dead connection: the pool drops it


class _PoolFull(PoolTimeout):
    """Every connection of the pool stayed busy (not: none could be opened)."""


class _AsyncPool:
    """A small pool of psycopg AsyncConnections with no background tasks.

    psycopg_pool's AsyncConnectionPool runs worker tasks in the loop that opened it;
    when that loop ends (every ``asyncio.run``) while one of them is connecting, the
    shutdown can hang. psycopg's async connections themselves are not bound to a loop,
    so this pool keeps them across loops and only its semaphore is per loop.
    """

    def __init__(self, connect: Callable[[], Awaitable[psycopg.AsyncConnection[Any]]],
                 size: int, timeout: float) -> None:
        self._connect = connect
        self._size = size
        self._timeout = timeout
        self._idle: list[psycopg.AsyncConnection[Any]] = []
        self._slots: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._slots is None or self._loop is not loop:
            self._slots, self._loop = asyncio.Semaphore(self._size), loop
        return self._slots

    async def acquire(self) -> psycopg.AsyncConnection[Any]:
        slots = self._semaphore()
        try:
            await asyncio.wait_for(slots.acquire(), self._timeout)
        except TimeoutError as exc:
            raise _PoolFull(f"no free connection within {self._timeout:g} s") from exc
        try:
            while self._idle:
                conn = self._idle.pop()
                if not _closed_by_server(conn):
                    return conn
                conn.pgconn.finish()  # closed by the server while idle (restart)
            return await self._connect()
        except BaseException:
            slots.release()
            raise

    def keep(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """Add a connection opened outside :meth:`acquire` to the idle ones."""
        self._idle.append(conn)

    def release(self, conn: psycopg.AsyncConnection[Any]) -> None:
        if conn.closed or conn.broken or (
                conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE):
            conn.pgconn.finish()
        else:
            self._idle.append(conn)
        if self._slots is not None and self._loop is asyncio.get_running_loop():
            self._slots.release()

    def close(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.pgconn.finish()  # libpq-level close: needs no event loop


class PostgresStore(SQLRecordsStore):
    """Chat histories in PostgreSQL.

    >>> store = PostgresStore("postgresql://app@localhost/chat", ttl=86400)  # doctest: +SKIP
    >>> store.history("user-1/conv-7").add_user_message("hi")  # doctest: +SKIP

    Options (URL query or keywords): ``table`` (messages table; the sessions table is
    ``<table>_sessions``), ``timeout`` (seconds a connect, a statement or a pool wait may
    take, default 30), ``connect_timeout`` (default 5, at most ``timeout``; libpq waits at
    least 2), ``pool_size`` (default 5), ``pool_timeout`` (seconds to wait for a free
    connection, default 10, at most ``timeout``), ``sslmode``, ``application_name``,
    ``ttl``. ``sync_connection`` / ``async_connection`` (keywords only) make the store
    use your psycopg connection instead of a pool.

    ``prepare_threshold`` (default 5, as psycopg's) is how many times a statement runs
    before it is prepared on the server; ``none`` never prepares, as a transaction pooler
    (PgBouncer in transaction mode) needs: ``postgresql://app@pgbouncer:6432/chat?
    prepare_threshold=none``. Several hosts (``postgresql://app@h1:5432,h2:5432/chat?
    target_session_attrs=read-write``) and libpq's connection parameters
    (:data:`LIBPQ_OPTIONS`: ``target_session_attrs``, ``load_balance_hosts``, ``sslmode``,
    ``sslrootcert``, ``keepalives_idle``...) are passed to libpq as they are.
    """

    OPTIONS: ClassVar[dict[str, Any]] = {
        **SQLRecordsStore.OPTIONS, **dict.fromkeys(LIBPQ_OPTIONS, str),
        "prepare_threshold": parse_prepare_threshold}
    STATEMENTS = STATEMENTS
    RECORDS = RECORDS
    #: A text field holds at most 1 GB (and one protocol message as much).
    MAX_MESSAGE_BYTES = (1 << 30) - 1024
    LIMIT_NAME = "PostgreSQL's 1 GB field limit"
    SERVER = "PostgreSQL"

    def __init__(self, url: StoreURL | str, *,
                 sync_connection: psycopg.Connection[Any] | None = None,
                 async_connection: psycopg.AsyncConnection[Any] | None = None,
                 **options: Any) -> None:
        super().__init__(url, **options)
        if self.url.scheme not in ("postgresql", "postgres") or self.url.driver not in (
                None, "psycopg", "psycopg3"):
            raise ConfigurationError(
                f"PostgresStore takes postgresql:// or postgresql+psycopg:// URLs, "
                f"got {self.url.render()!r}")
        self._configure(Names)
        self._conninfo = conninfo(self.url, self.options)
        threshold = self.options.get("prepare_threshold", DEFAULT_PREPARE_THRESHOLD)
        if threshold is not None and (isinstance(threshold, bool) or not isinstance(
                threshold, int) or threshold < 0):
            raise ConfigurationError(
                f"prepare_threshold must be a count of executions (0 or more) or none, "
                f"got {threshold!r}")
        #: Executions of a statement before psycopg prepares it; None: never (given as
        #: ``none``, or as the keyword ``prepare_threshold=None``).
        self.prepare_threshold: int | None = threshold
        self._user_conn = sync_connection
        self._user_aconn = async_connection
        self._lock = threading.Lock()  # guards pool creation and the user's connection
        self._pool: ConnectionPool[psycopg.Connection[Any]] | None = None
        self._apool: _AsyncPool | None = None
        # The connections of the sync pool in use, by id (to explain a pool timeout): a
        # set's add and discard are atomic, so the threads sharing the store take no lock
        # for it on every call.
        self._busy: set[int] = set()

    # -- sessions (the ops: threadline.stores.sql._postgres_sessions) ---------------------

    def search(self, query: str, *, owner: str | None = None,
               limit: int = 20) -> list[SearchHit]:
        """Full-text search on the GIN index: a page of candidates per round trip, until
        ``limit`` of them are confirmed (see :func:`search_steps`)."""
        terms = check_search_args(query, owner, limit)
        return drive(search_steps(self._names, terms, owner, limit), self._run)

    async def asearch(self, query: str, *, owner: str | None = None,
                      limit: int = 20) -> list[SearchHit]:
        terms = check_search_args(query, owner, limit)
        return await adrive(search_steps(self._names, terms, owner, limit), self._arun)

    def fork(self, session_id: str, new_session_id: str, *,
             at: int | None = None) -> SessionInfo:
        """:meth:`Store.fork <threadline.stores.Store.fork>` copying the rows on the
        server, in one statement (:func:`fork_op`): the messages never leave it."""
        source = self._fork_source(session_id, new_session_id, at)
        count = source.message_count if at is None else at
        info = self._run(fork_op(self._names, session_id, new_session_id, count, self.ttl))
        if info is None:  # deleted or expired since the check
            raise InputError(f"cannot fork {session_id!r:.80}: no such session")
        return info

    # -- errors --------------------------------------------------------------------------

    def _scrub(self, text: str) -> str:
        for secret in (self.url.password, self.options.get("sslpassword")):
            if secret:
                text = text.replace(secret, "***")
        return text

    def _wrap(self, exc: BaseException, what: str) -> StoreError:
        if isinstance(exc, StoreError):
            return exc
        if isinstance(exc, _PoolFull):
            return self._pool_timeout()
        if isinstance(exc, PoolTimeout):  # below pool_size, yet no connection came
            return self._connect_timeout(self.pool_timeout, "pool_timeout")
        where = self.url.render(with_query=False)
        reason = self._scrub(str(exc).strip()) or type(exc).__name__
        if isinstance(exc, psycopg.Error) and POOLED_PREPARE.search(reason):
            # (a "bind message" mismatch is an OperationalError, not a connection's end)
            return StoreError(f"PostgreSQL {what} failed at {where}: {reason}{POOLER_HINT}")
        if isinstance(exc, psycopg.OperationalError | OSError):
            error = connection_error(self.url, what, reason)
            if error.part == "server" and "timeout expired" in reason:
                return self._connect_timeout(self._timeout())  # libpq's connect_timeout
            return error
        return StoreError(f"PostgreSQL {what} failed at {where}: {reason}")

    def _timeout(self) -> int:
        return max(2, math.ceil(self.connect_timeout))  # libpq's minimum is 2 seconds

    # -- sync shell ----------------------------------------------------------------------

    def _get_pool(self) -> ConnectionPool[psycopg.Connection[Any]]:
        if self._closed:
            raise StoreError("the store is closed")
        pool = self._pool
        if pool is not None:
            return pool
        with self._lock:
            if self._pool is None:
                try:  # a direct first connection reports why the server refuses us
                    psycopg.connect(self._conninfo, connect_timeout=self._timeout(),
                                    prepare_threshold=self.prepare_threshold).close()
                except psycopg.Error as exc:
                    raise self._wrap(exc, "connect to") from exc
                self._pool = ConnectionPool(
                    self._conninfo, min_size=1, max_size=self.pool_size, open=True,
                    kwargs={"autocommit": True, "connect_timeout": self._timeout(),
                            "prepare_threshold": self.prepare_threshold},
                    check=_check, timeout=self.pool_timeout,
                    name=f"threadline:{self.table}")
            return self._pool

    @contextmanager
    def _pooled(self) -> Iterator[psycopg.Connection[Any]]:
        """A connection of the pool; a pool timeout says whether the pool was full."""
        pool = self._get_pool()
        try:
            conn = pool.getconn()
        except PoolTimeout as exc:
            if len(self._busy) >= self.pool_size:
                raise _PoolFull(str(exc)) from exc
            raise
        self._busy.add(id(conn))
        try:
            yield conn
        finally:
            self._busy.discard(id(conn))
            pool.putconn(conn)  # a broken or closed connection is dropped and replaced

    @contextmanager
    def _bounded(self, conn: psycopg.Connection[Any], op: Op[Any]) -> Iterator[None]:
        """Run the block (every round trip on ``conn``) within ``timeout`` seconds, or
        raise a read timeout about ``op``; the connection is then closed."""
        alarm = WATCHDOG.arm(conn.fileno(), self.timeout)
        try:
            yield
        except psycopg.Error as exc:
            if WATCHDOG.disarm(alarm):
                conn.close()
                raise self._read_timeout(op) from exc
            raise
        finally:
            if WATCHDOG.disarm(alarm):
                conn.close()  # answered in time, but the socket was just shut down

    @staticmethod
    def _execute(conn: psycopg.Connection[Any], op: Op[T]) -> T:
        cur = conn.execute(op.query, op.params)
        return op.result(cur.fetchall() if cur.description is not None else [])

    def _run(self, op: Op[T], *, setup: bool = True) -> T:
        if self._user_conn is None and self._user_aconn is not None:
            raise InputError("this store was given only an async_connection: use the "
                             "async methods, or pass sync_connection= as well")
        if setup and not self._ready:
            self.setup()
        dropped, runs = False, 0
        while True:
            runs += 1
            conn: psycopg.Connection[Any] | None = None
            try:
                if self._user_conn is not None:
                    user = self._user_conn
                    with self._lock, self._bounded(user, op), user.transaction():
                        return self._execute(user, op)
                with self._pooled() as conn, self._bounded(conn, op):
                    return self._execute(conn, op)
            except (psycopg.errors.UniqueViolation, psycopg.errors.DeadlockDetected) as exc:
                if runs < _CONFLICT_RUNS:
                    continue  # lost the race to create the session: nothing was written
                raise self._wrap(exc, "query") from exc
            except psycopg.OperationalError as exc:
                if (not dropped and op.retry and conn is not None and conn.broken):
                    dropped = True  # the pool dropped the broken connection
                    continue
                raise self._wrap(exc, "query") from exc
            except (psycopg.Error, PoolTimeout) as exc:
                raise self._wrap(exc, "query") from exc

    def setup(self) -> None:
        """Create or migrate the tables (idempotent; runs once per process by itself),
        then index the words of messages stored before the sessions schema, if any are
        left (:func:`fill_steps`: a statement per page, after the migration commits)."""
        if self._user_conn is None and self._user_aconn is not None:
            raise InputError("this store was given only an async_connection: use asetup()")
        try:
            if self._user_conn is not None:
                user = self._user_conn
                with self._lock, self._bounded(user, _SETUP), user.transaction():
                    below = self._drive_setup(user)
            else:
                with self._pooled() as conn, self._bounded(conn, _SETUP), conn.transaction():
                    below = self._drive_setup(conn)
        except (psycopg.Error, PoolTimeout) as exc:
            raise self._wrap(exc, "set up the schema in") from exc
        self._ready = True
        if below is not None:
            drive(fill_steps(self._names, below), lambda op: self._run(op, setup=False))

    def _run_all(self, ops: Sequence[Op[Any]]) -> None:
        """Run ``ops`` (whose results are not needed) in order, pipelined: one round trip
        for all of them (a put of records is one statement; with an append, two). Each
        statement commits on its own (an explicit transaction costs more round trips in
        pipeline mode); after a failed one the rest are not run."""
        if len(ops) == 1:
            self._run(ops[0])
            return
        if self._user_conn is None and self._user_aconn is not None:
            raise InputError("this store was given only an async_connection: use the "
                             "async methods, or pass sync_connection= as well")
        if not self._ready:
            self.setup()
        dropped, runs = False, 0
        while True:
            runs += 1
            conn: psycopg.Connection[Any] | None = None
            try:
                if self._user_conn is not None:
                    user = self._user_conn
                    with self._lock, self._bounded(user, ops[0]), user.transaction():
                        for op in ops:
                            self._execute(user, op)
                    return
                with self._pooled() as conn, self._bounded(conn, ops[0]), conn.pipeline():
                    for op in ops:
                        conn.execute(op.query, op.params)
                return
            except (psycopg.errors.UniqueViolation, psycopg.errors.DeadlockDetected) as exc:
                if runs < _CONFLICT_RUNS:
                    continue  # that statement wrote nothing; the others are idempotent
                raise self._wrap(exc, "query") from exc
            except psycopg.OperationalError as exc:
                if (not dropped and all(op.retry for op in ops) and conn is not None
                        and conn.broken):
                    dropped = True
                    continue
                raise self._wrap(exc, "query") from exc
            except (psycopg.Error, PoolTimeout) as exc:
                raise self._wrap(exc, "query") from exc

    async def _arun_all(self, ops: Sequence[Op[Any]]) -> None:
        if len(ops) == 1:
            await self._arun(ops[0])
            return
        if self._user_aconn is not None:  # the user's async connection: in order
            for op in ops:
                await self._arun(op)
            return
        await run_sync(self._run_all, ops)  # several ops: the sync pipelined transaction

    def _drive_setup(self, conn: psycopg.Connection[Any]) -> int | None:
        return drive(setup_steps(self._names), lambda op: self._execute(conn, op))

    def close(self) -> None:
        self._closed = True
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()
        apool, self._apool = self._apool, None
        if apool is not None:
            apool.close()

    # -- async shell ---------------------------------------------------------------------

    async def _get_apool(self) -> _AsyncPool:
        if self._closed:
            raise StoreError("the store is closed")
        if self._apool is None:
            try:  # a first direct connection reports why the server refuses us
                conn = await self._aconnect()
            except psycopg.Error as exc:
                raise self._wrap(exc, "connect to") from exc
            pool = _AsyncPool(self._aconnect, self.pool_size, self.pool_timeout)
            pool.keep(conn)
            self._apool = pool
        return self._apool

    async def _aconnect(self) -> psycopg.AsyncConnection[Any]:
        return await psycopg.AsyncConnection.connect(
            self._conninfo, autocommit=True, connect_timeout=self._timeout(),
            prepare_threshold=self.prepare_threshold)

    @asynccontextmanager
    async def _abounded(self, conn: psycopg.AsyncConnection[Any],
                        op: Op[Any]) -> AsyncIterator[None]:
        """:meth:`_bounded` on the event loop. (Cancelling psycopg's wait instead would
        send a cancel request through the same stalled network, and wait for it.)"""
        alarm = arm_in_loop(conn.fileno(), self.timeout)
        try:
            yield
        except psycopg.Error as exc:
            if alarm.disarm():
                conn.pgconn.finish()
                raise self._read_timeout(op) from exc
            raise
        finally:
            if alarm.disarm():
                conn.pgconn.finish()

    @staticmethod
    async def _aexecute(conn: psycopg.AsyncConnection[Any], op: Op[T]) -> T:
        cur = await conn.execute(op.query, op.params)
        return op.result(await cur.fetchall() if cur.description is not None else [])

    async def _arun(self, op: Op[T], *, setup: bool = True) -> T:
        if self._user_aconn is None and self._user_conn is not None:
            return await run_sync(self._run, op, setup=setup)  # the user's sync connection
        if setup and not self._ready:
            await self.asetup()
        dropped, runs = False, 0
        while True:
            runs += 1
            try:
                if self._user_aconn is not None:
                    user = self._user_aconn
                    async with self._abounded(user, op), user.transaction():
                        return await self._aexecute(user, op)
                return await self._aexecute_pooled(op)
            except (psycopg.errors.UniqueViolation, psycopg.errors.DeadlockDetected) as exc:
                if runs < _CONFLICT_RUNS:
                    continue  # lost the race to create the session: nothing was written
                raise self._wrap(exc, "query") from exc
            except _Broken as broken:
                if not dropped and op.retry:
                    dropped = True
                    continue
                raise self._wrap(broken.error, "query") from broken.error
            except psycopg.Error as exc:
                raise self._wrap(exc, "query") from exc

    async def _aexecute_pooled(self, op: Op[T]) -> T:
        pool = await self._get_apool()
        try:
            aconn = await pool.acquire()
        except (psycopg.Error, PoolTimeout) as exc:
            raise self._wrap(exc, "connect to") from exc
        try:
            async with self._abounded(aconn, op):
                return await self._aexecute(aconn, op)
        except psycopg.OperationalError as exc:
            if aconn.broken:
                raise _Broken(exc) from exc
            raise
        finally:
            pool.release(aconn)

    async def asetup(self) -> None:
        if self._user_aconn is None and self._user_conn is not None:
            return await run_sync(self.setup)
        try:
            if self._user_aconn is not None:
                user = self._user_aconn
                async with self._abounded(user, _SETUP), user.transaction():
                    below = await self._adrive_setup(user)
            else:
                pool = await self._get_apool()
                aconn = await pool.acquire()
                try:
                    async with self._abounded(aconn, _SETUP), aconn.transaction():
                        below = await self._adrive_setup(aconn)
                finally:
                    pool.release(aconn)
        except (psycopg.Error, PoolTimeout) as exc:
            raise self._wrap(exc, "set up the schema in") from exc
        self._ready = True
        if below is not None:
            await adrive(fill_steps(self._names, below),
                         lambda op: self._arun(op, setup=False))

    async def _adrive_setup(self, conn: psycopg.AsyncConnection[Any]) -> int | None:
        return await adrive(setup_steps(self._names), lambda op: self._aexecute(conn, op))

    async def adestroy(self) -> None:
        await self._arun(self.STATEMENTS.destroy(self._names), setup=False)
        self._ready = False

    async def aclose(self) -> None:
        if self._pool is not None:
            await run_sync(self.close)
        else:
            self.close()


class _Broken(Exception):
    """A pooled connection broke under an op (the op may be run again)."""

    def __init__(self, error: psycopg.OperationalError) -> None:
        super().__init__(str(error))
        self.error = error
