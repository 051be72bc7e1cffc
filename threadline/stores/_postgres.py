"""PostgreSQL store: psycopg 3 with psycopg_pool, one round trip per call.

Design:

* Every operation is a pure value, :class:`_Op` (a SQL statement, its parameters, how
  to turn the rows into a result, whether it is safe to retry); the sync shell runs it on
  a ``ConnectionPool``, the async shell on a small pool of ``AsyncConnection``
  (:class:`_AsyncPool`, loop-agnostic, see there why). Schema setup is a
  generator of ops that both shells drive, so there is no sync/async copy of the SQL.
* Connections are autocommit: each op is ONE statement, hence one round trip and its own
  transaction, never idle in transaction. ``append`` is a single statement whose CTEs
  upsert the sessions row (which also serialises concurrent writers of one session on
  its row lock, keeping each batch contiguous) and insert the batch from
  ``unnest(%s::text[]) WITH ORDINALITY``.
* Messages are TEXT (jsonb rejects ``\\u0000``). Sessions are keyed by the sha256 of the
  id (a btree cannot index 10 KB ids); queries compare the id as well.
* Pools open lazily. A first direct connection with ``connect_timeout`` turns "server
  down" or "bad password" into a prompt :class:`StoreConnectionError` carrying the
  server's reason. The pool's ``check`` costs no round trip: a pooled connection whose
  socket is readable while idle was closed by the server (restart), so it is verified
  and dropped. Reads are retried once on a broken connection; writes are not retried
  (the statement may have run), which the pre-use check makes rare.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import select
import threading
from collections.abc import Awaitable, Callable, Generator, Sequence
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
    StoreHistory,
    decode_message,
    encode_message,
    validate_identifier,
    validate_session_id,
    validate_ttl,
)
from threadline.stores._url import StoreURL

try:
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import make_conninfo
    from psycopg_pool import ConnectionPool, PoolTimeout
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise MissingDependencyError("psycopg and psycopg-pool", "postgres") from exc

__all__ = ["PostgresChatMessageHistory", "PostgresStore"]

T = TypeVar("T")

DEFAULT_TABLE = "threadline_messages"


class _Op(NamedTuple, Generic[T]):
    query: sql.SQL | sql.Composed | str
    params: tuple[Any, ...] | dict[str, Any]
    result: Callable[[list[tuple[Any, ...]]], T]
    retry: bool = True  # safe to run twice (reads, idempotent writes)


def _none(rows: list[tuple[Any, ...]]) -> None:
    return None


def _session_hash(session_id: str) -> bytes:
    return hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).digest()


def _utc(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC) if value is not None else None


class _Names:
    """The quoted identifiers of one store's tables and indexes."""

    def __init__(self, table: str) -> None:
        validate_identifier(table)
        if len(table) > 54:  # PostgreSQL truncates identifiers to 63 bytes
            raise ConfigurationError(
                f"table name {table!r} is too long: at most 54 characters "
                "(the store adds '_sessions' to it)"
            )
        self.table = table
        self.messages = sql.Identifier(table)
        self.sessions = sql.Identifier(f"{table}_sessions")
        self.schema = sql.Identifier(f"{table}_schema")
        self.messages_index = sql.Identifier(f"{table}_sid_id")


# -- pure core: schema and statements ------------------------------------------------------

_LIVE = sql.SQL("(s.expires_at IS NULL OR s.expires_at > now())")


def _migration_1(n: _Names) -> list[sql.Composed]:
    return [
        sql.SQL(
            "CREATE TABLE {sessions} ("
            " sid bigserial PRIMARY KEY,"
            " session_hash bytea NOT NULL UNIQUE,"
            " session_id text NOT NULL,"
            " created_at timestamptz NOT NULL DEFAULT now(),"
            " updated_at timestamptz NOT NULL DEFAULT now(),"
            " expires_at timestamptz,"
            " message_count bigint NOT NULL DEFAULT 0)"
        ).format(sessions=n.sessions),
        sql.SQL(
            "CREATE TABLE {messages} ("
            " id bigserial PRIMARY KEY,"
            " sid bigint NOT NULL,"
            " message text NOT NULL)"
        ).format(messages=n.messages),
        sql.SQL("CREATE INDEX {index} ON {messages} (sid, id)").format(
            index=n.messages_index, messages=n.messages
        ),
    ]


#: Schema migrations, in order; the schema table holds how many have run.
MIGRATIONS: list[Callable[[_Names], list[sql.Composed]]] = [_migration_1]


def _setup_steps(n: _Names) -> Generator[_Op[Any], list[tuple[Any, ...]], None]:
    """Create or migrate the schema, inside one transaction the shell opens."""
    # Serialise concurrent setups (CREATE TABLE IF NOT EXISTS races on the catalog).
    yield _Op(sql.SQL("SELECT pg_advisory_xact_lock(hashtext(%s))"), (n.table,), _none)
    rows = yield _Op(
        sql.SQL("SELECT to_regclass(%s) IS NOT NULL, to_regclass(%s) IS NOT NULL"),
        (_regclass(f"{n.table}_schema"), _regclass(n.table)), list)
    has_schema, has_messages = rows[0]
    if not has_schema:
        if has_messages:
            raise ConfigurationError(
                f"table {n.table!r} exists but was not created by threadline (perhaps a "
                "LangChain message_store table); choose another table name with table=..."
            )
        yield _Op(sql.SQL("CREATE TABLE {schema} (version integer NOT NULL)").format(
            schema=n.schema), (), _none)
        yield _Op(sql.SQL("INSERT INTO {schema} VALUES (0)").format(schema=n.schema), (), _none)
    rows = yield _Op(sql.SQL("SELECT version FROM {schema}").format(schema=n.schema), (), list)
    version = rows[0][0]
    if version > len(MIGRATIONS):
        raise StoreError(
            f"the schema of table {n.table!r} is version {version}, newer than this "
            f"threadline knows ({len(MIGRATIONS)}); upgrade threadline"
        )
    for migration in MIGRATIONS[version:]:
        for statement in migration(n):
            yield _Op(statement, (), _none)
    if version < len(MIGRATIONS):
        yield _Op(sql.SQL("UPDATE {schema} SET version = %s").format(schema=n.schema),
                  (len(MIGRATIONS),), _none)


def _regclass(name: str) -> str:
    return '"' + name + '"'  # validated identifier: quoting is enough


def _destroy_op(n: _Names) -> _Op[None]:
    return _Op(sql.SQL("DROP TABLE IF EXISTS {m}, {s}, {schema}").format(
        m=n.messages, s=n.sessions, schema=n.schema), (), _none, retry=True)


def _append_op(n: _Names, session_id: str, messages: Sequence[BaseMessage],
               ttl: float | None) -> _Op[None]:
    texts = [encode_message(m) for m in messages]
    # Old messages of an expired (not yet purged) session are deleted, and its counters
    # restart: appending to an expired session starts a new conversation. The DELETE
    # sees the statement's snapshot, so never the rows this statement inserts.
    query = sql.SQL(
        "WITH gone AS ("
        " DELETE FROM {m} USING {s} AS s"
        " WHERE s.session_hash = %(h)s AND s.session_id = %(sid)s"
        " AND s.expires_at <= now() AND {m}.sid = s.sid),"
        " upsert AS ("
        " INSERT INTO {s} AS s (session_hash, session_id, expires_at, message_count)"
        " VALUES (%(h)s, %(sid)s, now() + %(ttl)s::float8 * interval '1 second', %(n)s)"
        " ON CONFLICT (session_hash) DO UPDATE SET"
        " updated_at = now(),"
        " created_at = CASE WHEN s.expires_at <= now() THEN now() ELSE s.created_at END,"
        " message_count = CASE WHEN s.expires_at <= now() THEN excluded.message_count"
        "  ELSE s.message_count + excluded.message_count END,"
        " expires_at = COALESCE(excluded.expires_at,"
        "  CASE WHEN s.expires_at <= now() THEN NULL ELSE s.expires_at END)"
        " RETURNING sid)"
        " INSERT INTO {m} (sid, message)"
        " SELECT upsert.sid, batch.message FROM upsert,"
        " unnest(%(texts)s::text[]) WITH ORDINALITY AS batch(message, ord)"
        " ORDER BY batch.ord"
    ).format(m=n.messages, s=n.sessions)
    params = {"h": _session_hash(session_id), "sid": session_id, "ttl": ttl,
              "n": len(texts), "texts": texts}
    return _Op(query, params, _none, retry=False)


def _get_op(n: _Names, session_id: str, last: int | None) -> _Op[list[BaseMessage]]:
    base = sql.SQL(
        "SELECT m.message FROM {s} AS s JOIN {m} AS m ON m.sid = s.sid"
        " WHERE s.session_hash = %s AND s.session_id = %s AND {live}"
    ).format(m=n.messages, s=n.sessions, live=_LIVE)
    params: tuple[Any, ...] = (_session_hash(session_id), session_id)
    if last is None:
        return _Op(base + sql.SQL(" ORDER BY m.id"), params,
                   lambda rows: [decode_message(r[0]) for r in rows])
    return _Op(base + sql.SQL(" ORDER BY m.id DESC LIMIT %s"), (*params, last),
               lambda rows: [decode_message(r[0]) for r in reversed(rows)])


def _delete_op(n: _Names, session_id: str) -> _Op[bool]:
    query = sql.SQL(
        "WITH d AS (DELETE FROM {s} AS s WHERE s.session_hash = %s AND s.session_id = %s"
        " RETURNING s.sid, {live} AS live),"
        " dm AS (DELETE FROM {m} WHERE sid IN (SELECT sid FROM d))"
        " SELECT count(*) FILTER (WHERE live) FROM d"
    ).format(m=n.messages, s=n.sessions, live=_LIVE)
    return _Op(query, (_session_hash(session_id), session_id), lambda rows: rows[0][0] > 0)


def _list_op(n: _Names, prefix: str, limit: int, cursor: str | None) -> _Op[SessionPage]:
    query = sql.SQL(
        "SELECT s.session_id FROM {s} AS s WHERE {live} AND starts_with(s.session_id, %s)"
        " AND (%s::text IS NULL OR s.session_id COLLATE \"C\" > %s::text)"
        " ORDER BY s.session_id COLLATE \"C\" LIMIT %s"
    ).format(s=n.sessions, live=_LIVE)

    def page(rows: list[tuple[Any, ...]]) -> SessionPage:
        ids = [r[0] for r in rows[:limit]]
        return SessionPage(ids, ids[-1] if len(rows) > limit else None)

    return _Op(query, (prefix, cursor, cursor, limit + 1), page)


def _info_op(n: _Names, session_id: str) -> _Op[SessionInfo | None]:
    query = sql.SQL(
        "SELECT s.message_count, s.created_at, s.updated_at, s.expires_at FROM {s} AS s"
        " WHERE s.session_hash = %s AND s.session_id = %s AND {live}"
    ).format(s=n.sessions, live=_LIVE)

    def info(rows: list[tuple[Any, ...]]) -> SessionInfo | None:
        if not rows:
            return None
        count, created, updated, expires = rows[0]
        return SessionInfo(session_id, int(count), _utc(created), _utc(updated), _utc(expires))

    return _Op(query, (_session_hash(session_id), session_id), info)


def _expire_op(n: _Names, session_id: str, ttl: float | None) -> _Op[None]:
    query = sql.SQL(
        "UPDATE {s} AS s SET expires_at = now() + %s::float8 * interval '1 second'"
        " WHERE s.session_hash = %s AND s.session_id = %s AND {live}"
    ).format(s=n.sessions, live=_LIVE)
    return _Op(query, (ttl, _session_hash(session_id), session_id), _none)


def _purge_op(n: _Names) -> _Op[int]:
    query = sql.SQL(
        "WITH d AS (DELETE FROM {s} WHERE expires_at <= now() RETURNING sid),"
        " dm AS (DELETE FROM {m} WHERE sid IN (SELECT sid FROM d))"
        " SELECT count(*) FROM d"
    ).format(m=n.messages, s=n.sessions)
    return _Op(query, (), lambda rows: int(rows[0][0]))


_PING = _Op("SELECT 1", (), _none)


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


def _conninfo(url: StoreURL, options: dict[str, Any]) -> str:
    params: dict[str, Any] = {
        "host": url.host,
        "port": url.port,
        "dbname": url.database or None,
        "user": url.username,
        "password": url.password,
        "sslmode": options.get("sslmode"),
        "application_name": options.get("application_name"),
    }
    return make_conninfo("", **{k: v for k, v in params.items() if v is not None})


def _url_from_connection(conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any]
                         ) -> StoreURL:
    info = conn.info
    host = info.host if not info.host.startswith("/") else None
    return StoreURL("postgresql", username=info.user, host=host, port=int(info.port),
                    path="/" + info.dbname)


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
            raise PoolTimeout(f"no free connection within {self._timeout:g} s") from exc
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


class PostgresStore(Store):
    """Chat histories in PostgreSQL.

    >>> store = PostgresStore("postgresql://app@localhost/chat", ttl=86400)  # doctest: +SKIP
    >>> store.history("user-1/conv-7").add_user_message("hi")  # doctest: +SKIP

    Options (URL query or keywords): ``table`` (messages table; the sessions table is
    ``<table>_sessions``), ``connect_timeout`` (seconds, default 5), ``pool_size``
    (default 5), ``pool_timeout`` (seconds to wait for a free connection, default 10),
    ``sslmode``, ``application_name``, ``ttl``. ``sync_connection`` /
    ``async_connection`` (keywords only) make the store use your psycopg connection
    instead of a pool.
    """

    OPTIONS: ClassVar[dict[str, Any]] = {
        **Store.OPTIONS, "table": str, "connect_timeout": float, "pool_size": int,
        "pool_timeout": float, "sslmode": str, "application_name": str}

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
        table = self.options.get("table")
        self._names = _Names(DEFAULT_TABLE if table is None else table)
        given = {k: v for k, v in self.options.items() if v is not None}
        self.connect_timeout = float(given.get("connect_timeout", 5.0))
        self.pool_size = int(given.get("pool_size", 5))
        self.pool_timeout = float(given.get("pool_timeout", 10.0))
        if self.connect_timeout <= 0 or self.pool_size < 1 or self.pool_timeout <= 0:
            raise ConfigurationError(
                "connect_timeout and pool_timeout must be positive and pool_size at least 1")
        self._conninfo = _conninfo(self.url, self.options)
        self._user_conn = sync_connection
        self._user_aconn = async_connection
        self._lock = threading.Lock()  # guards pool creation and the user's connection
        self._pool: ConnectionPool[psycopg.Connection[Any]] | None = None
        self._apool: _AsyncPool | None = None
        self._ready = False  # schema set up by this process
        self._closed = False

    @property
    def table(self) -> str:
        return self._names.table

    # -- errors --------------------------------------------------------------------------

    def _scrub(self, text: str) -> str:
        password = self.url.password
        return text.replace(password, "***") if password else text

    def _wrap(self, exc: BaseException, what: str) -> StoreError:
        if isinstance(exc, StoreError):
            return exc
        where = self.url.render(with_query=False)
        reason = self._scrub(str(exc).strip()) or type(exc).__name__
        if isinstance(exc, PoolTimeout | psycopg.OperationalError | OSError):
            return StoreConnectionError(f"cannot {what} PostgreSQL at {where}: {reason}")
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
                    psycopg.connect(self._conninfo, connect_timeout=self._timeout()).close()
                except psycopg.Error as exc:
                    raise self._wrap(exc, "connect to") from exc
                self._pool = ConnectionPool(
                    self._conninfo, min_size=1, max_size=self.pool_size, open=True,
                    kwargs={"autocommit": True, "connect_timeout": self._timeout()},
                    check=_check, timeout=self.pool_timeout,
                    name=f"threadline:{self.table}")
            return self._pool

    def _execute(self, conn: psycopg.Connection[Any], op: _Op[T]) -> T:
        cur = conn.execute(op.query, op.params)
        rows = cur.fetchall() if cur.description is not None else []
        return op.result(rows)

    def _run(self, op: _Op[T], *, setup: bool = True) -> T:
        if self._user_conn is None and self._user_aconn is not None:
            raise InputError("this store was given only an async_connection: use the "
                             "async methods, or pass sync_connection= as well")
        if setup and not self._ready:
            self.setup()
        if self._user_conn is not None:
            with self._lock:
                try:
                    with self._user_conn.transaction():
                        return self._execute(self._user_conn, op)
                except psycopg.Error as exc:
                    raise self._wrap(exc, "query") from exc
        for attempt in (1, 2):
            pool = self._get_pool()
            conn: psycopg.Connection[Any] | None = None
            try:
                with pool.connection() as conn:
                    return self._execute(conn, op)
            except psycopg.OperationalError as exc:
                if attempt == 1 and op.retry and conn is not None and conn.broken:
                    continue  # the pool dropped the broken connection; the next is fresh
                raise self._wrap(exc, "query") from exc
            except (psycopg.Error, PoolTimeout) as exc:
                raise self._wrap(exc, "query") from exc
        raise AssertionError("unreachable")

    def setup(self) -> None:
        """Create or migrate the tables (idempotent; runs once per process by itself)."""
        if self._user_conn is None and self._user_aconn is not None:
            raise InputError("this store was given only an async_connection: use asetup()")
        try:
            if self._user_conn is not None:
                with self._lock, self._user_conn.transaction():
                    self._drive_setup(self._user_conn)
            else:
                with self._get_pool().connection() as conn, conn.transaction():
                    self._drive_setup(conn)
        except (psycopg.Error, PoolTimeout) as exc:
            raise self._wrap(exc, "set up the schema in") from exc
        self._ready = True

    def _drive_setup(self, conn: psycopg.Connection[Any]) -> None:
        steps = _setup_steps(self._names)
        try:
            op = next(steps)
            while True:
                op = steps.send(self._execute(conn, op))
        except StopIteration:
            pass

    def append(self, session_id: str, messages: Sequence[BaseMessage], *,
               ttl: float | None = None) -> None:
        op = self._append(session_id, messages, ttl)
        if op is not None:
            self._run(op)

    def _append(self, session_id: str, messages: Sequence[BaseMessage],
                ttl: float | None) -> _Op[None] | None:
        validate_session_id(session_id)
        ttl = validate_ttl(ttl) or self.ttl
        messages = list(messages)
        return _append_op(self._names, session_id, messages, ttl) if messages else None

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
            self._conninfo, autocommit=True, connect_timeout=self._timeout())

    async def _aexecute(self, conn: psycopg.AsyncConnection[Any], op: _Op[T]) -> T:
        cur = await conn.execute(op.query, op.params)
        rows = await cur.fetchall() if cur.description is not None else []
        return op.result(rows)

    async def _arun(self, op: _Op[T], *, setup: bool = True) -> T:
        if self._user_aconn is None and self._user_conn is not None:
            return await run_sync(self._run, op, setup=setup)  # the user's sync connection
        if setup and not self._ready:
            await self.asetup()
        if self._user_aconn is not None:
            try:
                async with self._user_aconn.transaction():
                    return await self._aexecute(self._user_aconn, op)
            except psycopg.Error as exc:
                raise self._wrap(exc, "query") from exc
        for attempt in (1, 2):
            pool = await self._get_apool()
            try:
                aconn = await pool.acquire()
            except (psycopg.Error, PoolTimeout) as exc:
                raise self._wrap(exc, "connect to") from exc
            try:
                return await self._aexecute(aconn, op)
            except psycopg.OperationalError as exc:
                if attempt == 1 and op.retry and aconn.broken:
                    continue
                raise self._wrap(exc, "query") from exc
            except psycopg.Error as exc:
                raise self._wrap(exc, "query") from exc
            finally:
                pool.release(aconn)
        raise AssertionError("unreachable")

    async def asetup(self) -> None:
        if self._user_aconn is None and self._user_conn is not None:
            return await run_sync(self.setup)
        try:
            if self._user_aconn is not None:
                async with self._user_aconn.transaction():
                    await self._adrive_setup(self._user_aconn)
            else:
                pool = await self._get_apool()
                aconn = await pool.acquire()
                try:
                    async with aconn.transaction():
                        await self._adrive_setup(aconn)
                finally:
                    pool.release(aconn)
        except (psycopg.Error, PoolTimeout) as exc:
            raise self._wrap(exc, "set up the schema in") from exc
        self._ready = True

    async def _adrive_setup(self, conn: psycopg.AsyncConnection[Any]) -> None:
        steps = _setup_steps(self._names)
        try:
            op = next(steps)
            while True:
                op = steps.send(await self._aexecute(conn, op))
        except StopIteration:
            pass

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

    async def adestroy(self) -> None:
        await self._arun(_destroy_op(self._names), setup=False)
        self._ready = False

    async def aclose(self) -> None:
        if self._pool is not None:
            await run_sync(self.close)
        else:
            self.close()


def _limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InputError(f"limit must be a positive int, got {limit!r}")
    return limit


def _url_from_dsn(dsn: str) -> StoreURL:
    """A store URL from a libpq ``key=value`` connection string."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        params = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as exc:
        raise ConfigurationError(
            "connection_string must be a postgresql:// URL or a libpq 'key=value' "
            "string; it could not be parsed") from exc
    port = params.get("port")
    return StoreURL("postgresql", username=_opt_str(params.get("user")),
                    password=_opt_str(params.get("password")),
                    host=_opt_str(params.get("host")), port=int(port) if port else None,
                    path="/" + str(params.get("dbname") or ""))


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)


class PostgresChatMessageHistory(StoreHistory):
    """A PostgreSQL chat history with both LangChain constructor shapes.

    langchain-community's shape shares one pool per URL across the per-turn objects::

        history = PostgresChatMessageHistory(
            "user-1/conv-7", connection_string="postgresql://app@localhost/chat",
            table_name="message_store")

    langchain-postgres' shape uses your psycopg connection (any session id, not only
    UUIDs)::

        PostgresChatMessageHistory.create_tables(conn, "chat_history")
        history = PostgresChatMessageHistory("chat_history", "conv-7", sync_connection=conn)

    The tables are threadline's (``<table_name>`` and ``<table_name>_sessions``), not
    LangChain's: an existing LangChain table of that name is refused, never altered.
    """

    def __init__(self, *args: str, session_id: str | None = None,
                 connection_string: str | None = None, table_name: str | None = None,
                 sync_connection: psycopg.Connection[Any] | None = None,
                 async_connection: psycopg.AsyncConnection[Any] | None = None,
                 ttl: float | None = None) -> None:
        store: Store
        if sync_connection is not None or async_connection is not None:
            # langchain-postgres: (table_name, session_id, /, *, sync_connection, ...)
            if len(args) != 2 or session_id is not None or connection_string is not None:
                raise InputError(
                    "with a connection, call PostgresChatMessageHistory(table_name, "
                    "session_id, sync_connection=conn) or (..., async_connection=aconn)")
            table_name, session_id = args
            conn = sync_connection if sync_connection is not None else async_connection
            assert conn is not None
            store = PostgresStore(_url_from_connection(conn), table=table_name,
                                  sync_connection=sync_connection,
                                  async_connection=async_connection)
        else:
            # langchain-community: (session_id, connection_string, table_name)
            names = ("session_id", "connection_string", "table_name")
            if len(args) > len(names):
                raise InputError(f"PostgresChatMessageHistory takes at most 3 positional "
                                 f"arguments {names}, got {len(args)}")
            given = dict(zip(names, args, strict=False))
            for name, value in (("session_id", session_id),
                                ("connection_string", connection_string),
                                ("table_name", table_name)):
                if value is not None:
                    if name in given:
                        raise InputError(f"{name} given twice")
                    given[name] = value
            session_id = given.get("session_id")
            dsn = given.get("connection_string")
            if dsn is None:
                raise ConfigurationError(
                    "PostgresChatMessageHistory needs connection_string='postgresql://"
                    "user@host/db' (or sync_connection= / async_connection=)")
            url = StoreURL.parse(dsn) if "://" in dsn else _url_from_dsn(dsn)
            from threadline.stores import shared_store

            store = shared_store(url, table=given.get("table_name", "message_store"))
        if session_id is None:
            raise InputError("PostgresChatMessageHistory needs a session_id")
        super().__init__(store, session_id, ttl=ttl)

    @staticmethod
    def create_tables(connection: psycopg.Connection[Any], table_name: str, /) -> None:
        """Create (or migrate) the tables through your connection."""
        PostgresStore(_url_from_connection(connection), table=table_name,
                      sync_connection=connection).setup()

    @staticmethod
    async def acreate_tables(connection: psycopg.AsyncConnection[Any], table_name: str, /
                             ) -> None:
        await PostgresStore(_url_from_connection(connection), table=table_name,
                            async_connection=connection).asetup()

    @staticmethod
    def drop_table(connection: psycopg.Connection[Any], table_name: str, /) -> None:
        """Drop the tables (every session in them is lost)."""
        PostgresStore(_url_from_connection(connection), table=table_name,
                      sync_connection=connection).destroy()

    @staticmethod
    async def adrop_table(connection: psycopg.AsyncConnection[Any], table_name: str, /
                          ) -> None:
        await PostgresStore(_url_from_connection(connection), table=table_name,
                            async_connection=connection).adestroy()
