"""``redis://``, ``rediss://`` and ``unix://`` — sessions in Redis, readable by LangChain.

Layout (``P`` is the ``key_prefix`` option, default LangChain's ``"message_store:"``):

* ``P{session_id}`` — a list of messages, **newest first**: LPUSH of the LangChain dict
  as JSON. This is exactly what langchain-community's ``RedisChatMessageHistory``
  writes and reads, so either library reads the other's sessions.
* ``P\\0meta\\0{session_id}`` — a hash: ``created_at`` / ``updated_at`` (epoch seconds).
* ``P\\0sessions`` — a sorted set of session ids, all scored 0, so ``ZRANGEBYLEX`` lists
  ids by prefix in byte order (= code-point order) with the last id as the cursor.
* ``P\\0schema`` — the layout version.

Our own keys put a NUL right after the prefix; :func:`validate_session_id` rejects NUL,
so no session id can ever name one of them. The message count is the list's LLEN (not a
counter that LangChain's writes would leave stale).

Appending is one round trip: a MULTI/EXEC pipeline with the LPUSH of the whole batch,
the metadata, PEXPIRE of the list and hash when a ttl applies, and the index ZADD.
Reading the last N is one LRANGE. Redis expires keys by itself; the index entry of an
expired (or LangChain-cleared) session outlives its list, so listing skips entries whose
list is gone and drops them with a small atomic script, and :meth:`purge_expired` sweeps
the whole index. Sessions LangChain wrote are not in the index until
:meth:`RedisStore.reindex` (a SCAN) adds them; they can be read, appended and deleted
by id at any time.

Each pure function below builds the commands of one operation or reads a reply; an
operation is a generator of command batches, driven by the sync client (a
``redis.ConnectionPool``) or by a ``redis.asyncio`` client. An asyncio client is bound
to the loop that created it, so there is one per running loop, created on first use and
closed when that loop's tasks are cancelled (as ``asyncio.run`` does on exit).

Connection errors are retried with exponential backoff (redis-py ``Retry``), so a
restarted server is reconnected on the next call; a dead pooled connection is detected
before a command is sent. Timeouts are not retried: a transaction that timed out may
still run, and running it twice would duplicate messages.

>>> store = open_store("redis://localhost:6379/0?key_prefix=chat:", ttl=86400)
>>> store.append("s1", [HumanMessage("hi")])
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar

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
    decode_messages,
    encode_message,
    validate_key_prefix,
    validate_session_id,
    validate_ttl,
)
from threadline.stores._memory import check_messages, check_page_args
from threadline.stores._url import StoreURL

try:
    import redis
    import redis.asyncio as aioredis
    from redis.backoff import ExponentialWithJitterBackoff
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingDependencyError("redis", "redis") from exc

__all__ = ["RedisChatMessageHistory", "RedisStore"]

T = TypeVar("T")

SCHEMA_VERSION = 1
_SCAN_BATCH = 500
_RETRIES = 3

# Drop index entries (and metadata) of sessions whose list is gone, atomically, so a
# session re-created meanwhile keeps its entry. KEYS: index, then (list, meta) pairs;
# ARGV: the session ids.
_CLEANUP_SCRIPT = """
local removed = 0
for i = 1, #ARGV do
  if redis.call('EXISTS', KEYS[2 * i]) == 0 then
    removed = removed + redis.call('ZREM', KEYS[1], ARGV[i])
    redis.call('DEL', KEYS[2 * i + 1])
  end
end
return removed
"""


# Pools whose keys under a prefix have had their layout checked: prefix set per pool.
_ready_pools: weakref.WeakKeyDictionary[Any, set[bytes]] = weakref.WeakKeyDictionary()
_ready_lock = threading.Lock()


def _connect_timeout(value: Any) -> float:
    seconds = float(value)
    if not seconds > 0:
        raise ValueError(f"connect_timeout must be a positive number of seconds, got {value!r}")
    return seconds


# -- keys and commands (pure) ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Keys:
    prefix: bytes

    @property
    def index(self) -> bytes:
        return self.prefix + b"\x00sessions"

    @property
    def schema(self) -> bytes:
        return self.prefix + b"\x00schema"

    def messages(self, sid: bytes) -> bytes:
        return self.prefix + sid

    def meta(self, sid: bytes) -> bytes:
        return self.prefix + b"\x00meta\x00" + sid


def _sid(session_id: str) -> bytes:
    # surrogatepass: any str validate_session_id accepts round-trips.
    return validate_session_id(session_id).encode("utf-8", "surrogatepass")


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogatepass")


def _utc(raw: bytes | None) -> datetime | None:
    return None if raw is None else datetime.fromtimestamp(float(raw), UTC)


def _ms(ttl: float) -> int:
    return max(1, round(ttl * 1000))


Command = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class _Batch:
    """Commands sent in one round trip; ``transaction`` wraps them in MULTI/EXEC."""

    commands: list[Command]
    transaction: bool = False


# An operation: yields batches, receives each batch's replies, returns its result.
Operation = Generator[_Batch, list[Any], T]


def _cleanup_command(keys: _Keys, sids: Sequence[bytes]) -> Command:
    pairs = [k for sid in sids for k in (keys.messages(sid), keys.meta(sid))]
    return ("EVAL", _CLEANUP_SCRIPT, 1 + len(pairs), keys.index, *pairs, *sids)


def _setup_op(keys: _Keys) -> Operation[None]:
    (_, version) = yield _Batch([("SET", keys.schema, SCHEMA_VERSION, "NX"),
                                 ("GET", keys.schema)])
    if version is not None and int(version) > SCHEMA_VERSION:
        raise StoreError(
            f"the keys under this prefix use layout version {int(version)}, newer than this "
            f"threadline understands ({SCHEMA_VERSION}); upgrade threadline"
        )


def _append_op(keys: _Keys, session_id: str, messages: Sequence[BaseMessage],
               ttl: float | None) -> Operation[None]:
    sid = _sid(session_id)
    batch = check_messages(messages)
    if not batch:
        return
    encoded = [encode_message(m) for m in batch]
    now = repr(time.time())
    key, meta = keys.messages(sid), keys.meta(sid)
    # LPUSH with several values pushes them one by one: the last (newest) ends at the head.
    commands: list[Command] = [("LPUSH", key, *encoded),
                               ("HSETNX", meta, "created_at", now),
                               ("HSET", meta, "updated_at", now)]
    if ttl is not None:
        commands += [("PEXPIRE", key, _ms(ttl)), ("PEXPIRE", meta, _ms(ttl))]
    commands.append(("ZADD", keys.index, "NX", 0, sid))
    yield _Batch(commands, transaction=True)


def _get_op(keys: _Keys, session_id: str, last: int | None) -> Operation[list[BaseMessage]]:
    sid = _sid(session_id)
    if last is not None and (isinstance(last, bool) or not isinstance(last, int) or last < 0):
        raise InputError(f"last must be a non-negative int or None, got {last!r}")
    if last == 0:
        return []
    (items,) = yield _Batch([("LRANGE", keys.messages(sid), 0, -1 if last is None else last - 1)])
    return decode_messages(items[::-1])


def _delete_op(keys: _Keys, session_id: str) -> Operation[bool]:
    sid = _sid(session_id)
    deleted, _, _ = yield _Batch([("DEL", keys.messages(sid)), ("DEL", keys.meta(sid)),
                                  ("ZREM", keys.index, sid)], transaction=True)
    return bool(deleted)


def _info_op(keys: _Keys, session_id: str) -> Operation[SessionInfo | None]:
    sid = _sid(session_id)
    key = keys.messages(sid)
    count, (created, updated), pttl = yield _Batch(
        [("LLEN", key), ("HMGET", keys.meta(sid), "created_at", "updated_at"),
         ("PTTL", key)], transaction=True)
    if not count:
        return None
    expires = (datetime.now(UTC).timestamp() + pttl / 1000) if pttl > 0 else None
    return SessionInfo(session_id, int(count), _utc(created), _utc(updated),
                       None if expires is None else datetime.fromtimestamp(expires, UTC))


def _expire_op(keys: _Keys, session_id: str, ttl: float | None) -> Operation[None]:
    sid = _sid(session_id)
    ttl = validate_ttl(ttl)
    pair = (keys.messages(sid), keys.meta(sid))
    if ttl is None:
        yield _Batch([("PERSIST", k) for k in pair], transaction=True)
    else:
        yield _Batch([("PEXPIRE", k, _ms(ttl)) for k in pair], transaction=True)


def _live_op(keys: _Keys, sids: list[bytes]) -> Operation[tuple[list[bytes], int]]:
    """The ids whose list exists; the others are dropped from the index."""
    if not sids:
        return [], 0
    exists = yield _Batch([("EXISTS", keys.messages(sid)) for sid in sids])
    dead = [sid for sid, found in zip(sids, exists, strict=True) if not found]
    removed = 0
    if dead:
        (removed,) = yield _Batch([_cleanup_command(keys, dead)])
    return [sid for sid, found in zip(sids, exists, strict=True) if found], int(removed)


def _list_op(keys: _Keys, prefix: str, limit: int,
             cursor: str | None) -> Operation[SessionPage]:
    check_page_args(prefix, limit, cursor)
    low = prefix.encode("utf-8", "surrogatepass")
    start = b"[" + low if low else b"-"
    if cursor is not None:
        after = cursor.encode("utf-8", "surrogatepass")
        if after >= low:
            start = b"(" + after
    # No UTF-8 byte is 0xff, so every id starting with the prefix sorts below prefix+0xff.
    stop = b"(" + low + b"\xff" if low else b"+"
    found: list[bytes] = []
    while len(found) <= limit:
        want = limit + 1 - len(found)
        (batch,) = yield _Batch([("ZRANGEBYLEX", keys.index, start, stop, "LIMIT", 0, want)])
        live, _ = yield from _live_op(keys, list(batch))
        found += live
        if len(batch) < want:
            break
        start = b"(" + batch[-1]
    ids = [_text(sid) for sid in found[:limit]]
    return SessionPage(ids, ids[-1] if len(found) > limit else None)


def _purge_op(keys: _Keys) -> Operation[int]:
    start, removed = b"-", 0
    while True:
        (batch,) = yield _Batch([("ZRANGEBYLEX", keys.index, start, b"+",
                                  "LIMIT", 0, _SCAN_BATCH)])
        _, dropped = yield from _live_op(keys, list(batch))
        removed += dropped
        if len(batch) < _SCAN_BATCH:
            return removed
        start = b"(" + batch[-1]


def _glob_escape(raw: bytes) -> bytes:
    out = bytearray()
    for byte in raw:
        if byte in b"*?[]\\":
            out += b"\\"
        out.append(byte)
    return bytes(out)


# -- connections ----------------------------------------------------------------------------


def _pool_kwargs(url: StoreURL, options: dict[str, Any]) -> dict[str, Any]:
    """Connection keywords shared by the sync and asyncio pools (classes excluded)."""
    timeout = options.get("connect_timeout") or 5.0
    kwargs: dict[str, Any] = {
        "username": url.username,
        "password": url.password,
        "socket_connect_timeout": timeout,
        "socket_timeout": timeout,
        "max_connections": options.get("pool_size") or 50,
    }
    db = options.get("db")
    if url.scheme == "unix":
        if not url.path:
            raise ConfigurationError("a unix:// Redis URL needs a socket path: "
                                     "unix:///run/redis/redis.sock?db=0")
        kwargs["path"] = url.path
    else:
        if db is None and url.database:
            try:
                db = int(url.database)
            except ValueError:
                raise ConfigurationError(
                    f"the path of a Redis URL is a database number, got {url.database!r} "
                    f"in {url.render()}"
                ) from None
        kwargs["host"] = url.host or "localhost"
        kwargs["port"] = url.port or 6379
    kwargs["db"] = db or 0
    if url.scheme == "rediss":
        kwargs["ssl_cert_reqs"] = options.get("ssl_cert_reqs") or "required"
        if options.get("ssl_ca_certs"):
            kwargs["ssl_ca_certs"] = options["ssl_ca_certs"]
    elif options.get("ssl_cert_reqs") or options.get("ssl_ca_certs"):
        raise ConfigurationError("ssl_cert_reqs / ssl_ca_certs need a rediss:// URL")
    return kwargs


def _sync_pool(url: StoreURL, kwargs: dict[str, Any]) -> redis.ConnectionPool:
    from redis.retry import Retry

    retry = Retry(ExponentialWithJitterBackoff(cap=1.0, base=0.05), _RETRIES,
                        supported_errors=(redis.ConnectionError,))
    cls: type[redis.connection.AbstractConnection] = {
        "unix": redis.UnixDomainSocketConnection, "rediss": redis.SSLConnection,
    }.get(url.scheme, redis.Connection)
    return redis.ConnectionPool(connection_class=cls, retry=retry, **kwargs)


def _async_client(url: StoreURL, kwargs: dict[str, Any]) -> aioredis.Redis:
    from redis.asyncio.retry import Retry

    retry = Retry(ExponentialWithJitterBackoff(cap=1.0, base=0.05), _RETRIES,
                  supported_errors=(redis.ConnectionError,))
    cls: type[aioredis.connection.AbstractConnection] = {
        "unix": aioredis.UnixDomainSocketConnection, "rediss": aioredis.SSLConnection,
    }.get(url.scheme, aioredis.Connection)
    pool = aioredis.ConnectionPool(connection_class=cls, retry=retry, **kwargs)
    return aioredis.Redis.from_pool(pool)  # the client closes the pool with it


class RedisStore(Store):
    """Sessions in Redis, in LangChain's layout: ``open_store("redis://localhost/0")``.

    Options: ``key_prefix`` (default ``"message_store:"``), ``connect_timeout`` (seconds,
    default 5; also the socket timeout), ``pool_size`` (default 50), ``db`` (for
    ``unix://`` URLs), ``ssl_cert_reqs`` / ``ssl_ca_certs`` (``rediss://``), ``ttl``.

    >>> store = open_store("redis://localhost:6379/0", ttl=3600)
    >>> store.history("user-1").add_user_message("hi")
    """

    OPTIONS: ClassVar[dict[str, Any]] = {
        **Store.OPTIONS,
        "key_prefix": validate_key_prefix,
        "connect_timeout": _connect_timeout,
        "pool_size": int,
        "db": int,
        "ssl_cert_reqs": str,
        "ssl_ca_certs": str,
    }

    def __init__(self, url: StoreURL | str = "redis://localhost:6379/0", *,
                 client: redis.Redis | None = None, **options: Any) -> None:
        super().__init__(url, **options)
        prefix = self.options.get("key_prefix")
        self.key_prefix: str = "message_store:" if prefix is None else prefix
        self._keys = _Keys(self.key_prefix.encode())
        self._kwargs = _pool_kwargs(self.url, self.options)
        # Creating a pool opens no connection: the first command does.
        self._owns_client = client is None
        self.client: redis.Redis = (
            redis.Redis(connection_pool=_sync_pool(self.url, self._kwargs))
            if client is None else client
        )
        self._loop_clients: dict[asyncio.AbstractEventLoop,
                                 tuple[aioredis.Redis, asyncio.Task[None]]] = {}
        self._lock = threading.Lock()
        self._ready = self._keys.prefix in _ready_pools.get(self.client.connection_pool, ())
        self._closed = False

    @classmethod
    def from_client(cls, client: redis.Redis, **options: Any) -> RedisStore:
        """A store on an existing ``redis.Redis`` client (not closed by the store; its
        async methods run in a worker thread)."""
        kw = client.connection_pool.connection_kwargs
        url = (f"unix://{kw['path']}" if "path" in kw else
               f"redis://{kw.get('host', 'localhost')}:{kw.get('port', 6379)}/{kw.get('db', 0)}")
        return cls(url, client=client, **options)

    # -- driving operations ----------------------------------------------------------------

    @contextmanager
    def _errors(self) -> Iterator[None]:
        if self._closed:
            raise StoreError(f"this store is closed: {self!r}")
        try:
            yield
        except redis.AuthenticationError as exc:
            raise StoreConnectionError(
                f"Redis at {self.url.render()} refused the credentials (wrong or missing "
                f"username/password): {exc}"
            ) from exc
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise StoreConnectionError(
                f"cannot reach Redis at {self.url.render()}: {exc}"
            ) from exc
        except redis.ResponseError as exc:
            raise StoreError(f"Redis at {self.url.render()} refused a command: {exc}") from exc
        except redis.RedisError as exc:
            raise StoreError(f"Redis error at {self.url.render()}: {exc}") from exc

    def _run(self, op: Operation[T]) -> T:
        with self._errors():
            if not self._ready:
                self.setup()
            return self._drive(op)

    def _drive(self, op: Operation[T]) -> T:
        try:
            batch = next(op)
            while True:
                batch = op.send(self._execute(batch))
        except StopIteration as stop:
            result: T = stop.value
            return result

    def _execute(self, batch: _Batch) -> list[Any]:
        # redis-py leaves execute_command untyped: Any keeps mypy strict elsewhere.
        client: Any = self.client
        if len(batch.commands) == 1 and not batch.transaction:
            return [client.execute_command(*batch.commands[0])]
        pipe: Any = client.pipeline(transaction=batch.transaction)
        for command in batch.commands:
            pipe.execute_command(*command)
        replies: list[Any] = pipe.execute()
        return replies

    async def _arun(self, op: Operation[T], sync: Callable[[], T]) -> T:
        if not self._owns_client:
            # A client we did not create has no asyncio twin: use the thread adapter.
            return await run_sync(sync)
        with self._errors():
            client = self._aclient()
            if not self._ready:
                await self._adrive(client, _setup_op(self._keys))
                self._mark_ready()
            return await self._adrive(client, op)

    async def _adrive(self, client: Any, op: Operation[T]) -> T:
        try:
            batch = next(op)
            while True:
                if len(batch.commands) == 1 and not batch.transaction:
                    replies = [await client.execute_command(*batch.commands[0])]
                else:
                    pipe = client.pipeline(transaction=batch.transaction)
                    for command in batch.commands:
                        pipe.execute_command(*command)
                    replies = await pipe.execute()
                batch = op.send(replies)
        except StopIteration as stop:
            result: T = stop.value
            return result

    def _aclient(self) -> aioredis.Redis:
        loop = asyncio.get_running_loop()
        entry = self._loop_clients.get(loop)
        if entry is not None:
            return entry[0]
        with self._lock:
            for stale in [lp for lp in self._loop_clients if lp.is_closed()]:
                del self._loop_clients[stale]
        client = _async_client(self.url, self._kwargs)
        # The task's cancellation (asyncio.run cancels every task before closing its
        # loop) is our chance to close this loop's connections while the loop still runs.
        task = loop.create_task(self._hold(loop, client), name="threadline-redis-client")
        self._loop_clients[loop] = (client, task)
        return client

    async def _hold(self, loop: asyncio.AbstractEventLoop, client: aioredis.Redis) -> None:
        try:
            await loop.create_future()
        finally:
            self._loop_clients.pop(loop, None)
            await client.aclose()

    # -- the contract ------------------------------------------------------------------------

    def setup(self) -> None:
        with self._errors():
            self._drive(_setup_op(self._keys))
        self._mark_ready()

    def _mark_ready(self) -> None:
        # Remembered per pool, so stores made per turn on one client (from_client) do
        # not check the layout version on every turn.
        self._ready = True
        with _ready_lock:
            _ready_pools.setdefault(self.client.connection_pool, set()).add(self._keys.prefix)

    def append(self, session_id: str, messages: Sequence[BaseMessage], *,
               ttl: float | None = None) -> None:
        self._run(_append_op(self._keys, session_id, messages, validate_ttl(ttl) or self.ttl))

    def get_messages(self, session_id: str, *, last: int | None = None) -> list[BaseMessage]:
        return self._run(_get_op(self._keys, session_id, last))

    def delete_session(self, session_id: str) -> bool:
        return self._run(_delete_op(self._keys, session_id))

    def list_sessions(self, *, prefix: str = "", limit: int = 100,
                      cursor: str | None = None) -> SessionPage:
        return self._run(_list_op(self._keys, prefix, limit, cursor))

    def session_info(self, session_id: str) -> SessionInfo | None:
        return self._run(_info_op(self._keys, session_id))

    def expire(self, session_id: str, ttl: float | None) -> None:
        self._run(_expire_op(self._keys, session_id, ttl))

    def purge_expired(self) -> int:
        """Drop the index entries of sessions Redis has expired; how many."""
        return self._run(_purge_op(self._keys))

    def ping(self) -> None:
        with self._errors():
            self.client.ping()

    def close(self) -> None:
        self._closed = True
        for loop, (_, task) in list(self._loop_clients.items()):
            if not loop.is_closed():
                loop.call_soon_threadsafe(task.cancel)
        self._loop_clients.clear()
        if self._owns_client:
            self.client.close()
            self.client.connection_pool.disconnect()

    # -- native async twins ---------------------------------------------------------------

    async def asetup(self) -> None:
        await self._arun(_setup_op(self._keys), self.setup)

    async def aappend(self, session_id: str, messages: Sequence[BaseMessage], *,
                      ttl: float | None = None) -> None:
        batch = list(messages)
        await self._arun(
            _append_op(self._keys, session_id, batch, validate_ttl(ttl) or self.ttl),
            lambda: self.append(session_id, batch, ttl=ttl))

    async def aget_messages(self, session_id: str, *,
                            last: int | None = None) -> list[BaseMessage]:
        return await self._arun(_get_op(self._keys, session_id, last),
                                lambda: self.get_messages(session_id, last=last))

    async def adelete_session(self, session_id: str) -> bool:
        return await self._arun(_delete_op(self._keys, session_id),
                                lambda: self.delete_session(session_id))

    async def alist_sessions(self, *, prefix: str = "", limit: int = 100,
                             cursor: str | None = None) -> SessionPage:
        return await self._arun(
            _list_op(self._keys, prefix, limit, cursor),
            lambda: self.list_sessions(prefix=prefix, limit=limit, cursor=cursor))

    async def asession_info(self, session_id: str) -> SessionInfo | None:
        return await self._arun(_info_op(self._keys, session_id),
                                lambda: self.session_info(session_id))

    async def aexpire(self, session_id: str, ttl: float | None) -> None:
        await self._arun(_expire_op(self._keys, session_id, ttl),
                         lambda: self.expire(session_id, ttl))

    async def apurge_expired(self) -> int:
        return await self._arun(_purge_op(self._keys), self.purge_expired)

    async def aclose(self) -> None:
        entry = self._loop_clients.get(asyncio.get_running_loop()) if self._owns_client else None
        if entry is not None:
            entry[1].cancel()
            with suppress(asyncio.CancelledError):
                await entry[1]
        self.close()

    # -- beyond the contract ---------------------------------------------------------------

    def reindex(self) -> int:
        """Add sessions that are in Redis but not in the index (written by LangChain's
        ``RedisChatMessageHistory``) with a SCAN over the prefix; how many were added.

        Without it such sessions are readable and writable by id but not listed.
        """
        pattern = _glob_escape(self._keys.prefix) + b"*"
        cut = len(self._keys.prefix)
        added = 0
        with self._errors():
            for chunk in self._scan(pattern, type_="list"):
                sids = [key[cut:] for key in chunk if b"\x00" not in key[cut:]]
                if sids:
                    added += int(self.client.zadd(  # type: ignore[arg-type]
                        self._keys.index, dict.fromkeys(sids, 0), nx=True))
        return added

    def destroy(self) -> None:
        """Delete every key of this store: its sessions, their metadata and the index.

        With a non-empty prefix, every key under the prefix goes (LangChain's sessions
        too); with an empty prefix, only the sessions in the index and our own keys.
        """
        with self._errors():
            if self._keys.prefix:
                for chunk in self._scan(_glob_escape(self._keys.prefix) + b"*"):
                    self.client.unlink(*chunk)
                return
            start = b"-"
            while True:
                sids: list[bytes] = list(self.client.zrangebylex(  # type: ignore[arg-type]
                    self._keys.index, start, b"+", 0, _SCAN_BATCH))
                if sids:
                    self.client.unlink(*[k for s in sids for k in
                                         (self._keys.messages(s), self._keys.meta(s))])
                if len(sids) < _SCAN_BATCH:
                    break
                start = b"(" + sids[-1]
            for chunk in self._scan(b"\x00*"):
                self.client.unlink(*chunk)

    def _scan(self, pattern: bytes, type_: str | None = None) -> Iterator[list[bytes]]:
        cursor = 0
        while True:
            cursor, keys = self.client.scan(cursor, match=pattern, count=1000, _type=type_)
            if keys:
                yield list(keys)  # type: ignore[arg-type]
            if cursor == 0:
                return


class RedisChatMessageHistory(StoreHistory):
    """LangChain's ``RedisChatMessageHistory``, on a shared connection pool.

    Same arguments and same data as ``langchain_community.chat_message_histories
    .RedisChatMessageHistory``, but objects created per turn (as RunnableWithMessageHistory
    does) share one store per URL and prefix instead of connecting anew, and a turn's
    messages are written in one round trip.

    >>> history = RedisChatMessageHistory("user-1", url="redis://localhost:6379/0", ttl=600)
    >>> history.add_user_message("hi")
    >>> history.messages
    [HumanMessage(content='hi')]
    """

    def __init__(self, session_id: str, url: str = "redis://localhost:6379/0",
                 key_prefix: str = "message_store:", ttl: float | None = None, *,
                 redis_client: redis.Redis | None = None) -> None:
        from threadline.stores import shared_store

        store: Store
        if redis_client is not None:
            store = RedisStore.from_client(redis_client, key_prefix=key_prefix)
        else:
            store = shared_store(url, key_prefix=key_prefix)
        # LangChain treats a falsy ttl as "no expiry".
        super().__init__(store, session_id, ttl=ttl or None)
        self.key_prefix = key_prefix

    @property
    def redis_client(self) -> redis.Redis:
        store = self.store
        assert isinstance(store, RedisStore)
        return store.client

    @property
    def key(self) -> str:
        """The Redis key of this session's list (LangChain's name)."""
        return self.key_prefix + self.session_id
