"""``redis://``, ``rediss://`` and ``unix://`` — sessions in Redis, readable by LangChain.

Layout (``P`` is the ``key_prefix`` option, default LangChain's ``"message_store:"``):

* ``P{session_id}`` — a list of messages, **newest first**: LPUSH of the LangChain dict
  as JSON. This is exactly what langchain-community's ``RedisChatMessageHistory``
  writes and reads, so either library reads the other's sessions.
* ``P\\0meta\\0{session_id}`` — a hash: ``created_at`` / ``updated_at`` (epoch seconds),
  ``ids_cover`` (how many of the list's oldest messages the id set accounts for).
* ``P\\0ids\\0{session_id}`` — a set: the ids of the session's messages, so an append
  skips a message whose id the session holds (a retried turn is stored once).
* ``P\\0sessions`` — a sorted set of session ids, all scored 0, so ``ZRANGEBYLEX`` lists
  ids by prefix in byte order (= code-point order) with the last id as the cursor.
* ``P\\0schema`` — the layout version (2: a store of layout 1 gets its recent set built
  from the index, once, by ``setup``).
* ``P\\0recent``, ``P\\0orecent\\0{owner}``, ``P\\0oids\\0{owner}`` — sorted sets of
  sessions by last activity, and an owner's by activity and by id; the hash also holds a
  session's title, metadata, owner, parent and fork point (see
  :mod:`threadline.stores.redis._sessions`).
* ``P\\0rec\\0{session_id}`` and ``P\\0reckeys\\0{session_id}`` — the session's records:
  a hash of values and a sorted set of their keys (see
  :mod:`threadline.stores.redis._records`); deleted and expired with the session.

Our own keys put a NUL right after the prefix; :func:`validate_session_id` rejects NUL,
so no session id can ever name one of them, and LangChain, which reads ``P{session_id}``
only, never sees them. The message count is the list's LLEN (not a counter that
LangChain's writes would leave stale).

**Namespaces.** ``key_prefix`` must not be empty (a session id would then name any key
of the database) and must end with ``:``. Keys stay LangChain's (``P{session_id}``, no
escaping: LangChain reads and writes the same sessions, ids with ``:`` included), so one
list can fall in two stores' namespaces: ``t1:admin:x`` is session ``admin:x`` of the
store ``t1:`` and session ``x`` of the store ``t1:admin:``. Such a list has *rivals*
(:meth:`~threadline.stores.redis._keys.Keys.rivals`: the other prefixes a store could
have, ending at one of the key's ``:``); most have none (a prefix with one ``:``, at its
end, and an id without ``:``). Every operation on one session is a script that first
settles, atomically, whose the list is (see :mod:`threadline.stores.redis._scripts`):

* a key that is not a list is no session (another application's string, hash...): it is
  never read, written, expired or deleted, and an append to it raises ``InputError``;
* the indexes are the source of truth: a list a rival's index names is the rival's, one
  ours names is ours;
* a list no index names (LangChain wrote it) belongs to the store with the longest
  prefix covering it among those that exist (their ``\0schema`` key does): so a
  LangChain session ``user:1`` is read by id under ``message_store:``, unless a store
  ``message_store:user:`` exists;
* a new session (no list) is the first appender's: its append drops rivals' index
  entries, hashes and id sets left for the same list by sessions that are gone.

A session another store owns does not exist for this one: reads are empty,
``session_info`` is None, ``delete_session`` is False and deletes nothing of it,
``expire`` leaves it alone, an append raises ``InputError`` and stores nothing. Listing,
:meth:`~RedisStore.purge_expired`, :meth:`~RedisStore.reindex` and
:meth:`~RedisStore.destroy` apply the same rule, so ``destroy()`` of ``t1:`` deletes
none of ``t1:admin:``'s keys. What a prefix cannot protect: another application's
*lists* under it (LangChain's layout gives them session names): give each application
its own prefix.

The list is the session: one whose list is gone does not exist, whatever our own keys
say, except a session ``update_session`` created and nothing was appended to yet (Redis
keeps no empty list: its hash, marked ``empty``, is the session; see ``_sessions``).
Redis expires list, hash and id set together (every append gives the three one expiry),
but LangChain's ``clear()`` deletes the list only, leaving the rest behind. So
``session_info`` and reads answer "no such session"; the next append starts it afresh
(its script sees that the list is missing and drops the stale hash and ids, so
``created_at`` is the time of that append and old ids are forgotten); listing skips index
entries whose list is gone and drops them, their hash and id set with a small atomic
script; and :meth:`purge_expired` sweeps the whole index, then SCANs the prefix for
hashes and id sets whose index entry is gone too, then the recent and owners' sets.

Appending is one round trip: one EVAL of a script (``APPEND`` in ``_scripts``) that
skips messages whose id the set holds, LPUSHes the others, stamps the hash, sets the
expiry of the three keys and adds the index entry, atomically. Messages other writers
pushed (LangChain, or threadline before id sets) have their ids learnt by the next
append, which reads only those (the list grew past ``ids_cover``). Reading the last N is
one script call (an LRANGE); :meth:`RedisStore.iter_messages` reads ``page_size``
messages per LRANGE, counted from the list's oldest end. Sessions LangChain wrote are not
in the index until :meth:`RedisStore.reindex` (a SCAN) adds them; they can be read,
appended and deleted by id at any time (if they are this store's, above). A message
larger than the store's ``max_message_bytes`` or than the server's
``proto-max-bulk-len`` (512 MB unless configured; read with CONFIG GET when a message is
over 1 MB, Redis's smallest possible limit) is refused with an
:class:`~threadline.InputError` before anything is sent.

Each operation is a pure generator of command batches (:mod:`threadline.stores.redis._ops`),
driven here by the sync client (a blocking ``redis.ConnectionPool``) or by a
``redis.asyncio`` client. An asyncio client is bound to the loop that created it, so
there is one per running loop, created on first use and closed when that loop's tasks
are cancelled (as ``asyncio.run`` does on exit).

Failures (see :mod:`threadline.stores.redis._connect`): ``timeout`` (default 30 s)
bounds each command and the wait for a pooled connection, ``connect_timeout`` (default
min(5 s, timeout)) connecting; running out raises :class:`~threadline.StoreTimeoutError`
of kind "connect", "read" or "pool". Reads and idempotent writes retry connection errors
with exponential backoff (redis-py ``Retry``), so a restarted server is reconnected on the
next call; a dead pooled connection is detected before a command is sent. An append is
never resent by redis-py: when its connection fails after sending, the server may or may
not have run it, so the store sends it once more only if every message has an id (the
script then stores each id once); otherwise, and after a timeout (a second wait could
double the bound ``timeout`` promises), the error says the outcome is unknown.

>>> store = open_store("redis://localhost:6379/0?key_prefix=chat:", ttl=86400)
>>> store.append("s1", [HumanMessage("hi")])
"""

from __future__ import annotations

import asyncio
import importlib
import threading
import weakref
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from threadline._concurrency import run_sync
from threadline._errors import (
    ConfigurationError,
    MissingDependencyError,
    StoreConnectionError,
    StoreError,
    StoreTimeoutError,
)
from threadline.messages._values import BaseMessage
from threadline.stores._base import (
    SessionInfo,
    Store,
    check_limit,
    check_messages,
    stream_pages,
    validate_ttl,
)
from threadline.stores._url import StoreURL
from threadline.stores.redis._keys import DEFAULT_PREFIX, Keys, check_prefix, sid_bytes
from threadline.stores.redis._layout import setup_op
from threadline.stores.redis._ops import (
    Batch,
    Operation,
    append_op,
    delete_op,
    destroy_op,
    encode_batch,
    expire_op,
    get_op,
    page_op,
    reindex_op,
)
from threadline.stores.redis._records import (
    delete_records_op,
    get_records_op,
    put_records_op,
    scan_records_op,
)
from threadline.stores.redis._session_store import SessionMethods
from threadline.stores.redis._sessions import info_op, purge_all_op

try:
    import redis
    import redis.asyncio as aioredis
    from redis.client import NEVER_DECODE

    from threadline.stores.redis._connect import (
        DEFAULT_TIMEOUT,
        ConnectTimeout,
        PoolExhausted,
        SentAndLost,
        asend_once,
        async_client,
        by_sha,
        pool_kwargs,
        seconds,
        send_once,
        sync_pool,
    )
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingDependencyError("redis", "redis") from exc

__all__ = ["RedisStore"]

T = TypeVar("T")

#: The store classes of URL drivers (``redis+cluster://``), as lazy "module:Class" strings
#: like the backends of :mod:`threadline.stores` (the cluster store subclasses this one).
DRIVERS = {"cluster": "threadline.stores.redis._cluster_store:RedisClusterStore"}

# Pools whose keys under a prefix have had their layout checked: prefix set per pool.
_ready_pools: weakref.WeakKeyDictionary[Any, set[bytes]] = weakref.WeakKeyDictionary()
_ready_lock = threading.Lock()


@dataclass(slots=True)
class _Append:
    """One append call: may it be sent again (every message has an id), and has a
    request that writes been sent yet (then a failure leaves its outcome unknown)?"""

    resend: bool
    sent: bool = False
    #: How many replicas acknowledged each write (``wait_replicas``: WAIT after it).
    acks: list[int] = field(default_factory=list)


def _options(batch: Batch) -> dict[str, Any]:
    """redis-py's per-command options for a batch: NEVER_DECODE keeps a raw batch's
    replies bytes on a client that decodes responses (one given to from_client)."""
    return {NEVER_DECODE: []} if batch.raw else {}


async def _aexecute_one(client: Any, command: tuple[Any, ...], options: dict[str, Any]) -> Any:
    """One command on an asyncio client; a script by its SHA1 first (see ``by_sha``)."""
    cached = by_sha(command)
    if cached is not None:
        try:
            return await client.execute_command(*cached, **options)
        except redis.exceptions.NoScriptError:
            pass  # the script did not run: send its text
    return await client.execute_command(*command, **options)


def wait_replicas(value: Any) -> int:
    """The ``wait_replicas`` option: how many replicas must have an append."""
    number = int(value)
    if number < 0:
        raise ValueError(f"wait_replicas must be 0 or more, got {value!r}")
    return number


def wait_for(options: Mapping[str, Any]) -> tuple[int, int] | None:
    """``WAIT``'s arguments for the options (replicas, milliseconds), or None: half the
    ``timeout``, so the reply comes before the socket's own timeout."""
    replicas = options.get("wait_replicas")
    if not replicas:
        return None
    timeout = options.get("timeout") or DEFAULT_TIMEOUT
    return replicas, max(1, round(timeout * 500))


def _resendable(messages: Sequence[BaseMessage]) -> bool:
    return all(m.id is not None for m in messages)


def _outcome(append: _Append | None) -> str:
    """What an error of an append must add: whether it may have been stored."""
    if append is None or not append.sent:
        return ""
    if append.resend:
        return ("; the append may or may not have been stored: appending the same "
                "messages again is safe (they have ids, and a session stores an id once)")
    return ("; the append may or may not have been stored (its messages have no ids, so "
            "it was not sent again: that could store them twice)")


class RedisStore(SessionMethods, Store):
    """Sessions in Redis, in LangChain's layout: ``open_store("redis://localhost/0")``.

    Options: ``key_prefix`` (default ``"message_store:"``; not empty, ending with ``:``,
    see the module's docstring), ``timeout`` (seconds, default
    30: bounds each command, connecting and each wait for a pooled connection),
    ``connect_timeout`` (default min(5, timeout)), ``pool_timeout`` (default timeout),
    ``pool_size`` (default 50), ``db`` (for ``unix://`` URLs), ``ssl_cert_reqs`` /
    ``ssl_ca_certs`` (``rediss://``), ``ttl``, ``wait_replicas`` (an append returns once
    that many replicas have it: Redis's ``WAIT``, bounded by half the ``timeout``; else a
    :class:`~threadline.StoreError` says the append is on the master only).

    >>> store = open_store("redis://localhost:6379/0", ttl=3600)
    >>> store.history("user-1").add_user_message("hi")
    """

    OPTIONS: ClassVar[dict[str, Any]] = {
        **Store.OPTIONS,
        "key_prefix": check_prefix,
        "timeout": seconds("timeout"),
        "connect_timeout": seconds("connect_timeout"),
        "pool_timeout": seconds("pool_timeout"),
        "pool_size": int,
        "db": int,
        "ssl_cert_reqs": str,
        "ssl_ca_certs": str,
        "wait_replicas": wait_replicas,
    }

    def __new__(cls, url: StoreURL | str = "redis://localhost:6379/0", *args: Any,
                **options: Any) -> RedisStore:
        # redis+cluster:// parses as scheme redis, driver cluster: one registry entry.
        if cls is RedisStore:
            driver = StoreURL.parse(url).driver
            if driver is not None:
                target = DRIVERS.get(driver)
                if target is None:
                    raise ConfigurationError(
                        f"unknown Redis URL driver {driver!r}: use redis:// for one server "
                        "or redis+cluster:// (rediss+cluster://) for a Redis Cluster")
                module, _, name = target.partition(":")
                chosen: type[RedisStore] = getattr(importlib.import_module(module), name)
                return super().__new__(chosen)
        return super().__new__(cls)

    def __init__(self, url: StoreURL | str = "redis://localhost:6379/0", *,
                 client: redis.Redis | None = None, **options: Any) -> None:
        super().__init__(url, **options)
        prefix = self.options.get("key_prefix")
        self.key_prefix: str = DEFAULT_PREFIX if prefix is None else prefix
        self._keys = Keys(self.key_prefix.encode())
        self._kwargs = pool_kwargs(self.url, self.options)
        # Creating a pool opens no connection: the first command does.
        self._owns_client = client is None
        self.client: redis.Redis = (
            redis.Redis(connection_pool=sync_pool(self.url, self._kwargs))
            if client is None else client
        )
        self._loop_clients: dict[asyncio.AbstractEventLoop,
                                 tuple[aioredis.Redis, asyncio.Task[None]]] = {}
        self._lock = threading.Lock()
        self._ready = self._keys.prefix in _ready_pools.get(self.client.connection_pool, ())
        self._closed = False
        self._wait = wait_for(self.options)

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
    def _errors(self, append: _Append | None = None) -> Iterator[None]:
        if self._closed:
            raise StoreError(f"this store is closed: {self!r}")
        try:
            yield
        except PoolExhausted as exc:
            wait = self._setting("timeout")
            raise StoreTimeoutError(
                f"no free connection to Redis at {self.url.render()}: {exc} (pool_size="
                f"{self._setting('max_connections')}); raise pool_size or lower the load",
                kind="pool", timeout=wait) from exc
        except redis.AuthenticationError as exc:
            raise StoreConnectionError(
                f"Redis at {self.url.render()} refused the credentials (wrong or missing "
                f"username/password): {exc}"
            ) from exc
        except redis.TimeoutError as exc:
            connect = isinstance(exc, ConnectTimeout) or "connecting" in str(exc)
            limit = self._setting("socket_connect_timeout" if connect else "socket_timeout")
            within = f" within {limit:g} s" if isinstance(limit, int | float) else ""
            what = ("cannot reach Redis at {url}{within} (connect_timeout)" if connect else
                    "Redis at {url} did not answer{within} (timeout)")
            raise StoreTimeoutError(
                what.format(url=self.url.render(), within=within) + f": {exc}"
                + _outcome(append), kind="connect" if connect else "read",
                timeout=limit) from exc
        except SentAndLost as exc:
            raise StoreConnectionError(
                f"the connection to Redis at {self.url.render()} failed: {exc}"
                + _outcome(append)) from exc
        except redis.ConnectionError as exc:
            raise StoreConnectionError(
                f"cannot reach Redis at {self.url.render()}: {exc}" + _outcome(append)
            ) from exc
        except redis.ResponseError as exc:
            raise StoreError(f"Redis at {self.url.render()} refused a command: {exc}") from exc
        except redis.RedisError as exc:
            raise StoreError(f"Redis error at {self.url.render()}: {exc}") from exc

    def _setting(self, name: str) -> Any:
        """A timeout or size of the sync pool (ours or the client's we were given)."""
        pool = self.client.connection_pool
        if name in ("timeout", "max_connections"):
            return getattr(pool, name, None)
        return pool.connection_kwargs.get(name)

    def _run(self, op: Operation[T]) -> T:
        with self._errors():
            if not self._ready:
                self.setup()
            return self._drive(op)

    def _drive(self, op: Operation[T], append: _Append | None = None) -> T:
        try:
            batch = next(op)
            while True:
                batch = op.send(self._execute(batch, append))
        except StopIteration as stop:
            result: T = stop.value
            return result

    def _execute(self, batch: Batch, append: _Append | None = None) -> list[Any]:
        # redis-py leaves execute_command untyped: Any keeps mypy strict elsewhere.
        client: Any = self.client
        if append is not None:  # an append's commands: one each, sent once
            append.sent |= batch.writes
            wait = self._wait if batch.writes else None
            return [send_once(client, command, writes=batch.writes,
                              errors_as_replies=batch.errors_as_replies, wait=wait,
                              acks=append.acks)
                    for command in batch.commands]
        options = _options(batch)
        if len(batch.commands) == 1 and not (batch.transaction or batch.errors_as_replies):
            command = batch.commands[0]
            cached = by_sha(command)
            if cached is not None:
                try:
                    return [client.execute_command(*cached, **options)]
                except redis.exceptions.NoScriptError:
                    pass  # the script did not run: send its text
            return [client.execute_command(*command, **options)]
        pipe: Any = client.pipeline(transaction=batch.transaction)
        for command in batch.commands:
            pipe.execute_command(*command, **options)
        return list(pipe.execute(raise_on_error=not batch.errors_as_replies))

    def _append(self, make: Callable[[], Operation[int]], resend: bool) -> None:
        """Run an append; after a connection failure that leaves its outcome unknown,
        once more when every message has an id (the script skips the ids it holds)."""
        append = _Append(resend)
        with self._errors(append):
            if not self._ready:
                self.setup()
            try:
                self._drive(make(), append)
            except SentAndLost:
                if not resend:
                    raise
                append.acks.clear()
                self._before_resend()
                self._drive(make(), append)
        self._check_acks(append)

    def _before_resend(self) -> None:
        """What to do before an append is sent again (a cluster reloads its slot map)."""

    async def _arun(self, op: Operation[T], sync: Callable[[], T]) -> T:
        if not self._owns_client:
            # A client we did not create has no asyncio twin: use the thread adapter.
            return await run_sync(sync)
        with self._errors():
            client = self._aclient()
            if not self._ready:
                await self._adrive(client, setup_op(self._keys))
                self._mark_ready()
            return await self._adrive(client, op)

    async def _adrive(self, client: Any, op: Operation[T], append: _Append | None = None) -> T:
        try:
            batch = next(op)
            while True:
                if append is not None:
                    append.sent |= batch.writes
                    wait = self._wait if batch.writes else None
                    replies = [await asend_once(client, command, writes=batch.writes,
                                                errors_as_replies=batch.errors_as_replies,
                                                wait=wait, acks=append.acks)
                               for command in batch.commands]
                elif len(batch.commands) == 1 and not (batch.transaction
                                                       or batch.errors_as_replies):
                    replies = [await _aexecute_one(client, batch.commands[0],
                                                   _options(batch))]
                else:
                    pipe = client.pipeline(transaction=batch.transaction)
                    for command in batch.commands:
                        pipe.execute_command(*command, **_options(batch))
                    replies = await pipe.execute(raise_on_error=not batch.errors_as_replies)
                batch = op.send(replies)
        except StopIteration as stop:
            result: T = stop.value
            return result

    async def _aappend(self, make: Callable[[], Operation[int]], resend: bool,
                       sync: Callable[[], None]) -> None:
        """:meth:`_append` on this loop's asyncio client."""
        if not self._owns_client:
            return await run_sync(sync)
        append = _Append(resend)
        with self._errors(append):
            client = self._aclient()
            if not self._ready:
                await self._adrive(client, setup_op(self._keys))
                self._mark_ready()
            try:
                await self._adrive(client, make(), append)
            except SentAndLost:
                if not resend:
                    raise
                append.acks.clear()
                await self._adrive(client, make(), append)
        self._check_acks(append)

    def _check_acks(self, append: _Append) -> None:
        """``wait_replicas``: fewer replicas than asked acknowledged within the wait."""
        if self._wait is None or not append.acks or min(append.acks) >= self._wait[0]:
            return
        raise StoreError(
            f"the append was stored on the Redis master at {self.url.render()}, but only "
            f"{min(append.acks)} of the {self._wait[0]} replicas asked for (wait_replicas) "
            f"acknowledged it within {self._wait[1] / 1000:g} s: it may be lost if that "
            "master fails now" + (
                "; appending the same messages again is safe (they have ids, and a session "
                "stores an id once)" if append.resend else
                "; its messages have no ids: appending them again would store them twice"))

    def _aclient(self) -> aioredis.Redis:
        loop = asyncio.get_running_loop()
        entry = self._loop_clients.get(loop)
        if entry is not None:
            return entry[0]
        with self._lock:
            for stale in [lp for lp in self._loop_clients if lp.is_closed()]:
                del self._loop_clients[stale]
        client = async_client(self.url, self._kwargs)
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
            self._drive(setup_op(self._keys))
        self._mark_ready()

    def _mark_ready(self) -> None:
        # Remembered per pool, so stores made per turn on one client (from_client) do
        # not check the layout version on every turn.
        self._ready = True
        with _ready_lock:
            _ready_pools.setdefault(self.client.connection_pool, set()).add(self._keys.prefix)

    def append(self, session_id: str, messages: Sequence[BaseMessage], *,
               ttl: float | None = None) -> None:
        batch, ttl = check_messages(messages), validate_ttl(ttl) or self.ttl
        encoded = encode_batch(session_id, batch, self.check_sizes)  # before any I/O
        self._append(lambda: append_op(self._keys, session_id, batch, encoded, ttl),
                     _resendable(batch))

    def get_messages(self, session_id: str, *, last: int | None = None,
                     skip_invalid: bool = False) -> list[BaseMessage]:
        return self._run(get_op(self._keys, session_id, last, skip_invalid))

    def iter_messages(self, session_id: str, *, page_size: int = 1000,
                      skip_invalid: bool = False) -> Iterator[BaseMessage]:
        """The session's messages, oldest first, one LRANGE of ``page_size`` per page,
        counted from the list's tail (the oldest end), so appends meanwhile move nothing."""
        sid, size = sid_bytes(session_id), check_limit(page_size)

        def fetch(start: int | None) -> tuple[list[bytes], int | None]:
            texts = self._run(page_op(self._keys, sid, start or 0, size))
            return texts, (start or 0) + size if len(texts) == size else None

        return stream_pages(fetch, session_id=session_id, skip_invalid=skip_invalid)

    def delete_session(self, session_id: str) -> bool:
        return self._run(delete_op(self._keys, session_id))

    def session_info(self, session_id: str) -> SessionInfo | None:
        return self._run(info_op(self._keys, session_id))

    def expire(self, session_id: str, ttl: float | None) -> None:
        self._run(expire_op(self._keys, session_id, ttl))

    def purge_expired(self) -> int:
        """Drop what is left of sessions whose list is gone (expired, or cleared by
        LangChain): index entries, then metadata hashes found by a SCAN of the prefix,
        then members of the recent and owners' sets; how many sessions lost a key."""
        return self._run(purge_all_op(self._keys))

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
        await self._arun(setup_op(self._keys), self.setup)

    async def aappend(self, session_id: str, messages: Sequence[BaseMessage], *,
                      ttl: float | None = None) -> None:
        batch, default = check_messages(list(messages)), validate_ttl(ttl) or self.ttl
        encoded = encode_batch(session_id, batch, self.check_sizes)
        await self._aappend(lambda: append_op(self._keys, session_id, batch, encoded, default),
                            _resendable(batch),
                            lambda: self.append(session_id, batch, ttl=ttl))

    async def aget_messages(self, session_id: str, *, last: int | None = None,
                            skip_invalid: bool = False) -> list[BaseMessage]:
        return await self._arun(
            get_op(self._keys, session_id, last, skip_invalid),
            lambda: self.get_messages(session_id, last=last, skip_invalid=skip_invalid))

    async def adelete_session(self, session_id: str) -> bool:
        return await self._arun(delete_op(self._keys, session_id),
                                lambda: self.delete_session(session_id))

    async def asession_info(self, session_id: str) -> SessionInfo | None:
        return await self._arun(info_op(self._keys, session_id),
                                lambda: self.session_info(session_id))

    async def aexpire(self, session_id: str, ttl: float | None) -> None:
        await self._arun(expire_op(self._keys, session_id, ttl),
                         lambda: self.expire(session_id, ttl))

    async def apurge_expired(self) -> int:
        return await self._arun(purge_all_op(self._keys), self.purge_expired)

    async def aclose(self) -> None:
        entry = self._loop_clients.get(asyncio.get_running_loop()) if self._owns_client else None
        if entry is not None:
            entry[1].cancel()
            with suppress(asyncio.CancelledError):
                await entry[1]
        self.close()

    # -- records (see threadline.stores.redis._records) ----------------------------------

    supports_records = True
    native_async = True

    def put_records(self, session_id: str, records: Mapping[str, bytes], *,
                    delete: Collection[str] = (), ttl: float | None = None) -> None:
        self._run(put_records_op(self._keys, session_id, records, delete,
                                 validate_ttl(ttl) or self.ttl, self.max_message_bytes))

    def get_records(self, session_id: str, keys: Collection[str]) -> dict[str, bytes]:
        return self._run(get_records_op(self._keys, session_id, keys))

    def scan_records(self, session_id: str, prefix: str = "", *, after: str | None = None,
                     before: str | None = None, limit: int | None = None,
                     reverse: bool = False, keys_only: bool = False
                     ) -> list[tuple[str, bytes]]:
        return self._run(scan_records_op(self._keys, session_id, prefix, after, before,
                                         limit, reverse, keys_only))

    def delete_records(self, session_id: str, keys: Collection[str] | None = None, *,
                       prefix: str | None = None) -> None:
        self._run(delete_records_op(self._keys, session_id, keys, prefix))

    async def aput_records(self, session_id: str, records: Mapping[str, bytes], *,
                           delete: Collection[str] = (), ttl: float | None = None) -> None:
        await self._arun(
            put_records_op(self._keys, session_id, records, delete,
                           validate_ttl(ttl) or self.ttl, self.max_message_bytes),
            lambda: self.put_records(session_id, records, delete=delete, ttl=ttl))

    async def aget_records(self, session_id: str, keys: Collection[str]) -> dict[str, bytes]:
        return await self._arun(get_records_op(self._keys, session_id, keys),
                                lambda: self.get_records(session_id, keys))

    async def ascan_records(self, session_id: str, prefix: str = "", *,
                            after: str | None = None, before: str | None = None,
                            limit: int | None = None, reverse: bool = False,
                            keys_only: bool = False) -> list[tuple[str, bytes]]:
        return await self._arun(
            scan_records_op(self._keys, session_id, prefix, after, before, limit, reverse,
                            keys_only),
            lambda: self.scan_records(session_id, prefix, after=after, before=before,
                                      limit=limit, reverse=reverse, keys_only=keys_only))

    async def adelete_records(self, session_id: str, keys: Collection[str] | None = None, *,
                              prefix: str | None = None) -> None:
        await self._arun(delete_records_op(self._keys, session_id, keys, prefix),
                         lambda: self.delete_records(session_id, keys, prefix=prefix))

    # -- beyond the contract ---------------------------------------------------------------

    def reindex(self) -> int:
        """Add sessions that are in Redis but not in the index (written by LangChain's
        ``RedisChatMessageHistory``) with a SCAN over the prefix; how many were added.

        Without it such sessions are readable and writable by id but not listed. Lists
        another store owns (see the module's docstring) are not added.
        """
        return self._run(reindex_op(self._keys))

    def destroy(self) -> None:
        """Delete every key of this store: its sessions (LangChain's under its prefix
        too), their metadata and records, and the index; nothing another store or
        application owns, even under a prefix that starts with this one (``chat:`` and
        ``chat:admin:``)."""
        with self._errors():
            self._drive(destroy_op(self._keys))
        # Its layout version went too: the next call writes it again.
        self._ready = False
        with _ready_lock:
            _ready_pools.get(self.client.connection_pool, set()).discard(self._keys.prefix)
