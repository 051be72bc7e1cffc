"""``redis+cluster://`` and ``rediss+cluster://`` — the Redis store on a Redis Cluster.

``open_store("redis+cluster://n1:7000,n2:7001/?key_prefix=chat:")``: the hosts are the
startup nodes of redis-py's ``RedisCluster`` (one is enough; the others are tried when
it is down). The Store API and its semantics are the single-node store's
(:class:`~threadline.stores.redis._store.RedisStore`), on the key layout of
:mod:`~threadline.stores.redis._cluster_keys` (every key of a session in one slot, the
sessions index in :data:`~threadline.stores.redis._cluster_keys.SHARDS` sorted sets) and
the operations of :mod:`~threadline.stores.redis._cluster_ops`.

**Appends** are one script on the session's slot, sent once on a connection of the
master that owns it (never resent blindly: see
:mod:`~threadline.stores.redis._connect`). A MOVED or ASK answer, a refused connection
or a cluster that is down ran nothing: the append is sent again, to the master the
refreshed slot map names, until ``timeout`` has passed, so a failover (a replica
promoted after its master failed) is ridden through. A connection lost after the
script was sent leaves its outcome unknown: it is sent once more only if every message
has an id (the script stores an id once), as on one node.

**wait_replicas=N** makes an append run ``WAIT N`` on the same connection right after
its script (WAIT counts the replicas that have every write of its connection), bounded
by half the ``timeout``. Without it, an acknowledged append is on the master only:
Redis replicates asynchronously, and a master that fails before its replica has the
write loses it when the replica is promoted. With it, the append returns only once N
replicas have it, so promoting one of them loses nothing; if fewer acknowledged in
time, a :class:`~threadline.StoreError` says the append IS stored on the master (and
whether sending it again is safe).

The async methods run the sync ones in a worker thread (``native_async`` is False).
``reindex`` is refused (LangChain does not write this layout); ``fork`` copies through
the client (the source and the fork are in different slots); ``stats`` counts with the
listing and ``session_info``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from typing import Any, ClassVar, TypeVar

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import (
    AskError,
    ClusterError,
    MovedError,
    RedisClusterException,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.retry import Retry

from threadline._concurrency import run_sync
from threadline._errors import ConfigurationError, StoreConnectionError, StoreError
from threadline.messages._values import BaseMessage
from threadline.stores._base import (
    SessionInfo,
    SessionPage,
    Store,
    check_messages,
    validate_ttl,
)
from threadline.stores._sessions import (
    Order,
    SearchHit,
    SessionChanges,
    StoreStats,
    check_list_args,
    check_search_args,
)
from threadline.stores._url import StoreURL
from threadline.stores.redis import _cluster_ops as ops
from threadline.stores.redis._cluster_keys import ClusterKeys, check_cluster_prefix
from threadline.stores.redis._connect import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_POOL_SIZE,
    DEFAULT_TIMEOUT,
    SentAndLost,
    by_sha,
    send_once,
)
from threadline.stores.redis._keys import DEFAULT_PREFIX
from threadline.stores.redis._ops import Batch, Operation, encode_batch, glob_escape
from threadline.stores.redis._search import search_op
from threadline.stores.redis._store import RedisStore, _Append, wait_for

__all__ = ["RedisClusterStore"]

T = TypeVar("T")

#: What sent nothing (or nothing that ran) and may be tried again once the slot map is
#: refreshed: no connection, a slot moving or without a master, a cluster that is down.
_RETRIED = (redis.ConnectionError, ClusterError, AskError, TryAgainError, SlotNotCoveredError,
            RedisClusterException)

_UNLINK_BATCH = 500


def _first_key(command: tuple[Any, ...]) -> Any:
    return command[3] if command[0] in ("EVAL", "EVALSHA") else command[1]


class RedisClusterStore(RedisStore):
    """Sessions on a Redis Cluster: ``open_store("redis+cluster://n1:7000,n2:7001/")``.

    Options as :class:`RedisStore` (``pool_size`` is per node; no ``db``: a cluster has
    database 0 only), ``key_prefix`` without ``{`` or ``}``, and ``wait_replicas``.
    """

    OPTIONS: ClassVar[dict[str, Any]] = {
        name: check for name, check in RedisStore.OPTIONS.items() if name != "db"
    } | {"key_prefix": check_cluster_prefix}

    native_async = False

    def __init__(self, url: StoreURL | str = "redis+cluster://localhost:6379/", *,
                 client: RedisCluster | None = None, **options: Any) -> None:
        Store.__init__(self, url, **options)
        if self.url.database not in ("", "0"):
            raise ConfigurationError(
                f"a Redis Cluster has database 0 only, got {self.url.database!r} in "
                f"{self.url.render()}")
        if client is not None:
            raise ConfigurationError("a cluster store makes its own RedisCluster client")
        prefix = self.options.get("key_prefix")
        self.key_prefix = check_cluster_prefix(DEFAULT_PREFIX if prefix is None else prefix)
        self._ckeys = ClusterKeys(self.key_prefix.encode())
        self._keys = self._ckeys
        self._timeout: float = self.options.get("timeout") or DEFAULT_TIMEOUT
        self._wait = wait_for(self.options)
        self._owns_client = True
        self._lock = threading.Lock()
        self._cluster: RedisCluster | None = None
        self._ready = False
        self._closed = False
        self._loop_clients = {}

    # -- the client ------------------------------------------------------------------------

    def _client(self) -> RedisCluster:
        """The RedisCluster client, made on first use (it reads the slot map then)."""
        if self._cluster is not None:
            return self._cluster
        with self._lock:
            if self._cluster is None:
                self._cluster = self._connect()
            return self._cluster

    def _connect(self) -> RedisCluster:
        url, options = self.url, self.options
        kwargs: dict[str, Any] = {
            "username": url.username,
            "password": url.password,
            "socket_timeout": self._timeout,
            "socket_connect_timeout": (options.get("connect_timeout")
                                       or min(DEFAULT_CONNECT_TIMEOUT, self._timeout)),
            "max_connections": options.get("pool_size") or DEFAULT_POOL_SIZE,
        }
        if url.scheme == "rediss":
            kwargs["ssl"] = True
            kwargs["ssl_cert_reqs"] = options.get("ssl_cert_reqs") or "required"
            if options.get("ssl_ca_certs"):
                kwargs["ssl_ca_certs"] = options["ssl_ca_certs"]
        elif options.get("ssl_cert_reqs") or options.get("ssl_ca_certs"):
            raise ConfigurationError("ssl_cert_reqs / ssl_ca_certs need a rediss+cluster:// URL")
        node: Any = ClusterNode
        nodes = [node(host or "localhost", port or 6379) for host, port in url.hosts]
        # A few quick retries inside redis-py; the store retries until its timeout.
        retry = Retry(ExponentialWithJitterBackoff(cap=0.5, base=0.05), 2)
        return RedisCluster(startup_nodes=nodes, retry=retry, **kwargs)

    def _refresh(self) -> None:
        """Read the slot map again (after a failover it names the promoted replica)."""
        client = self._cluster
        if client is None:
            return
        # Every node still down: the next attempt tries again.
        with suppress(redis.RedisError, RedisClusterException):
            client.nodes_manager.initialize()

    def _retrying(self, call: Callable[[], T]) -> T:
        """``call`` again while it fails having run nothing, until ``timeout``: what
        reads and idempotent writes get (redis-py resends them on one node too)."""
        deadline = time.monotonic() + self._timeout
        delay = 0.05
        while True:
            try:
                return call()
            except SentAndLost:
                raise
            except _RETRIED:
                # Never reached the cluster: no failover to wait for, fail as one node does.
                if self._cluster is None or time.monotonic() + delay > deadline:
                    raise
            time.sleep(delay)
            delay = min(2 * delay, 0.5)
            self._refresh()

    # -- driving operations -----------------------------------------------------------------

    @contextmanager
    def _errors(self, append: _Append | None = None) -> Iterator[None]:
        with super()._errors(append):
            try:
                yield
            except RedisClusterException as exc:
                raise StoreConnectionError(
                    f"the Redis Cluster at {self.url.render()} cannot serve the request: "
                    f"{exc}") from exc

    def _setting(self, name: str) -> Any:
        return {"timeout": self._timeout, "socket_timeout": self._timeout,
                "max_connections": self.options.get("pool_size") or DEFAULT_POOL_SIZE,
                "socket_connect_timeout": (self.options.get("connect_timeout")
                                           or min(DEFAULT_CONNECT_TIMEOUT, self._timeout)),
                }.get(name)

    def _run(self, op: Operation[T]) -> T:
        with self._errors():
            if not self._ready:
                self.setup()
            return self._drive(op)

    def _execute(self, batch: Batch, append: _Append | None = None) -> list[Any]:
        if append is not None and batch.writes:
            append.sent = True
            return [self._send_write(command, batch, append) for command in batch.commands]
        return self._retrying(lambda: self._execute_plain(batch))

    def _execute_plain(self, batch: Batch) -> list[Any]:
        client: Any = self._client()
        if len(batch.commands) == 1 and not batch.errors_as_replies:
            command = batch.commands[0]
            cached = by_sha(command)
            if cached is not None:
                try:
                    return [client.execute_command(*cached)]
                except redis.exceptions.NoScriptError:
                    pass  # the script did not run: send its text
            return [client.execute_command(*command)]
        # A cluster pipeline sends each node its commands; no MULTI across slots (no
        # operation of the cluster layout asks for one).
        pipe: Any = client.pipeline()
        for command in batch.commands:
            pipe.execute_command(*command)
        return list(pipe.execute(raise_on_error=not batch.errors_as_replies))

    def _send_write(self, command: tuple[Any, ...], batch: Batch, append: _Append) -> Any:
        """An append's script, sent once on a connection of the master of its slot (then
        WAIT, with ``wait_replicas``); sent again only while nothing ran."""
        key = _first_key(command)
        asked: list[tuple[str, int]] = []  # where an ASK redirection sent the next try

        def once() -> Any:
            client: Any = self._client()
            target = asked.pop() if asked else None
            node = None if target is None else client.get_node(host=target[0], port=target[1])
            asking = node is not None
            if node is None:
                node = client.get_node_from_key(key)
            try:
                reply = send_once(client.get_redis_connection(node), command, writes=True,
                                  errors_as_replies=batch.errors_as_replies, wait=self._wait,
                                  acks=append.acks, asking=asking)
                if isinstance(reply, _RETRIED):  # refused, so not run: as raised
                    raise reply
            except AskError as exc:
                if not isinstance(exc, MovedError):  # the slot is moving: ask its target
                    asked.append(exc.node_addr)
                raise
            return reply

        return self._retrying(once)

    def _before_resend(self) -> None:
        self._refresh()

    async def _arun(self, op: Operation[T], sync: Callable[[], T]) -> T:
        return await run_sync(sync)

    async def _aappend(self, make: Callable[[], Operation[int]], resend: bool,
                       sync: Callable[[], None]) -> None:
        await run_sync(sync)

    def _mark_ready(self) -> None:
        self._ready = True

    # -- the contract ------------------------------------------------------------------------

    def setup(self) -> None:
        with self._errors():
            self._drive(ops.setup_op(self._ckeys))
        self._mark_ready()

    def append(self, session_id: str, messages: Sequence[BaseMessage], *,
               ttl: float | None = None) -> None:
        batch = check_messages(messages)
        default = validate_ttl(ttl) or self.ttl
        encoded = encode_batch(session_id, batch, self.check_sizes)
        self._append(lambda: ops.append_op(self._ckeys, session_id, batch, encoded, default),
                     all(m.id is not None for m in batch))

    async def aappend(self, session_id: str, messages: Sequence[BaseMessage], *,
                      ttl: float | None = None) -> None:
        batch = list(messages)
        await run_sync(lambda: self.append(session_id, batch, ttl=ttl))

    def delete_session(self, session_id: str) -> bool:
        return self._run(ops.delete_op(self._ckeys, session_id))

    async def adelete_session(self, session_id: str) -> bool:
        return await run_sync(lambda: self.delete_session(session_id))

    def purge_expired(self) -> int:
        """Drop the index entries of sessions that are gone (expired), shard by shard;
        an entry newer than ``timeout`` seconds is left for the next purge (it may be an
        append's, made just before its session)."""
        return self._run(ops.purge_op(self._ckeys, self._timeout))

    async def apurge_expired(self) -> int:
        return await run_sync(self.purge_expired)

    def ping(self) -> None:
        with self._errors():
            self._retrying(lambda: self._client().ping())

    def close(self) -> None:
        self._closed = True
        client, self._cluster = self._cluster, None
        if client is not None:
            client.close()

    async def aclose(self) -> None:
        self.close()

    # -- sessions --------------------------------------------------------------------------

    def list_sessions(self, *, order: Order = "id", owner: str | None = None,
                      prefix: str = "", metadata: Mapping[str, str] | None = None,
                      limit: int = 100, cursor: str | None = None) -> SessionPage:
        """Session ids by id or newest first, merged from the index's shards (or read
        from the owner's sets); see :mod:`threadline.stores.redis._cluster_ops`."""
        query = check_list_args(order, owner, prefix, metadata, limit, cursor)
        return self._run(ops.list_sessions_op(self._ckeys, query))

    def _update_session(self, session_id: str, changes: SessionChanges) -> None:
        self._run(ops.update_op(self._ckeys, session_id, changes, self.ttl))

    def search(self, query: str, *, owner: str | None = None,
               limit: int = 20) -> list[SearchHit]:
        terms = check_search_args(query, owner, limit)
        return self._run(search_op(self._keys, terms, owner, limit,
                                   lister=ops.list_sessions_op))

    def stats(self) -> StoreStats:
        """Sessions and messages, counted from the listing and each session's info (no
        byte count)."""
        return Store.stats(self)

    def fork(self, session_id: str, new_session_id: str, *,
             at: int | None = None) -> SessionInfo:
        """The base's fork: the messages go through the client, the source and the fork
        being in different slots."""
        return Store.fork(self, session_id, new_session_id, at=at)

    # -- beyond the contract ---------------------------------------------------------------

    def reindex(self) -> int:
        raise StoreError("reindex() is not supported on a Redis Cluster store: it adds "
                         "sessions LangChain wrote, and LangChain does not write the "
                         "cluster layout")

    def destroy(self) -> None:
        """Delete every key of this store on every master (a SCAN of each for the keys
        starting with the prefix and ``{``: no other store's key does)."""
        pattern = glob_escape(self._keys.prefix + b"{") + b"*"

        def sweep() -> None:
            client: Any = self._client()
            for node in client.get_primaries():
                conn = client.get_redis_connection(node)
                doomed = list(conn.scan_iter(match=pattern, count=1000))
                for start in range(0, len(doomed), _UNLINK_BATCH):
                    pipe = conn.pipeline(transaction=False)
                    for key in doomed[start:start + _UNLINK_BATCH]:
                        pipe.unlink(key)
                    pipe.execute()

        with self._errors():
            self._retrying(sweep)
        self._ready = False
