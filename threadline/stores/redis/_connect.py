"""Connections to Redis: pools, timeouts, and telling where a failure happened.

Where a call failed decides what the user is told and whether an append may be sent
again, so failures are marked where redis-py cannot say it:

* :class:`ConnectTimeout`: no answer while connecting, the TCP connect or the handshake
  (CLIENT SETINFO, AUTH, SELECT) that follows it, both bounded by ``connect_timeout``;
* :class:`PoolExhausted`: every pooled connection stayed busy for ``pool_timeout``;
* :class:`SentAndLost`: the connection failed after a write was sent, so the server
  may or may not have run it.

Appends go through :func:`send_once` / :func:`asend_once`: one command on one pooled
connection, never sent again by redis-py's own retry (which resends a command whose
connection dropped, and so could store a turn twice). The store decides about a second
try itself (see :mod:`threadline.stores.redis._store`). Other commands keep redis-py's
retry of connection errors with backoff: they are reads, or writes that are idempotent.

A script is sent by its SHA1 (:func:`by_sha`: EVALSHA), not its text (several KB to
send and for the server to hash on every call); when the server does not have it (a
restart, ``SCRIPT FLUSH``) it answers NOSCRIPT without running anything, and the text
follows on the same connection (EVAL, which also caches it).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import inspect
from typing import Any

import redis
import redis.asyncio as aioredis
from redis.backoff import ExponentialWithJitterBackoff

from threadline._errors import ConfigurationError
from threadline.stores._url import StoreURL

__all__ = [
    "DEFAULT_TIMEOUT",
    "ConnectTimeout",
    "PoolExhausted",
    "SentAndLost",
    "asend_once",
    "async_client",
    "by_sha",
    "pool_kwargs",
    "seconds",
    "send_once",
    "sync_pool",
]

RETRIES = 3
DEFAULT_TIMEOUT = 30.0
DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_POOL_SIZE = 50


class ConnectTimeout(redis.TimeoutError):
    """The server did not answer while a connection was being set up."""


class PoolExhausted(redis.ConnectionError):
    """No pooled connection became free within the pool timeout."""


class SentAndLost(redis.ConnectionError):
    """The connection failed after a write was sent: it may or may not have run."""


def seconds(name: str) -> Any:
    """The validator of a URL option giving a positive number of seconds."""

    def check(value: Any) -> float:
        number = float(value)
        if not number > 0:
            raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
        return number

    return check


def pool_kwargs(url: StoreURL, options: dict[str, Any]) -> dict[str, Any]:
    """Keywords of the sync and asyncio pools (connection class excluded): ``timeout``
    bounds each command (socket timeout) and, unless overridden, the wait for a pooled
    connection; ``connect_timeout`` (default min(5 s, timeout)) bounds connecting."""
    timeout = options.get("timeout") or DEFAULT_TIMEOUT
    kwargs: dict[str, Any] = {
        "username": url.username,
        "password": url.password,
        "socket_connect_timeout": (options.get("connect_timeout")
                                   or min(DEFAULT_CONNECT_TIMEOUT, timeout)),
        "socket_timeout": timeout,
        "max_connections": options.get("pool_size") or DEFAULT_POOL_SIZE,
        "timeout": options.get("pool_timeout") or timeout,  # the pool's wait
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


# -- the handshake after connecting, bounded by the connect timeout -------------------------


def _handshake(conn: Any) -> None:
    # redis-py reads the handshake's replies with the socket (command) timeout.
    conn._sock.settimeout(conn.socket_connect_timeout)
    try:
        conn.on_connect()
    except redis.TimeoutError as exc:
        raise ConnectTimeout(f"no answer to the connection handshake: {exc}") from exc
    finally:
        if conn._sock is not None:
            conn._sock.settimeout(conn.socket_timeout)


async def _ahandshake(conn: Any) -> None:
    try:
        async with asyncio.timeout(conn.socket_connect_timeout):
            await conn.on_connect()
    except (TimeoutError, redis.TimeoutError) as exc:
        raise ConnectTimeout(f"no answer to the connection handshake: {exc}") from exc


# -- pools that say when they are exhausted -------------------------------------------------


def _exhausted(pool: Any, exc: redis.ConnectionError) -> redis.ConnectionError:
    if type(exc) is not redis.ConnectionError or "No connection available" not in str(exc):
        return exc
    return PoolExhausted(f"all {pool.max_connections} pooled connections stayed busy for "
                         f"{pool.timeout:g} s")


class _Pool(redis.BlockingConnectionPool):
    def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().get_connection(*args, **kwargs)  # type: ignore[no-untyped-call]
        except redis.ConnectionError as exc:
            raise _exhausted(self, exc) from exc


class _AsyncPool(aioredis.BlockingConnectionPool):
    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().get_connection(*args, **kwargs)  # type: ignore[no-untyped-call]
        except redis.ConnectionError as exc:
            raise _exhausted(self, exc) from exc


def _pool(url: StoreURL, kwargs: dict[str, Any], lib: Any, pool_class: Any,
          retry_class: Any, handshake: Any) -> Any:
    """A blocking pool of ``lib`` (``redis`` or ``redis.asyncio``) whose commands retry
    connection errors with backoff (not timeouts: the command may have run)."""
    retry = retry_class(ExponentialWithJitterBackoff(cap=1.0, base=0.05), RETRIES,
                        supported_errors=(redis.ConnectionError,))
    cls = {"unix": lib.UnixDomainSocketConnection,
           "rediss": lib.SSLConnection}.get(url.scheme, lib.Connection)
    return pool_class(connection_class=cls, retry=retry, redis_connect_func=handshake,
                      **kwargs)


def sync_pool(url: StoreURL, kwargs: dict[str, Any]) -> redis.ConnectionPool:
    from redis.retry import Retry

    pool: redis.ConnectionPool = _pool(url, kwargs, redis, _Pool, Retry, _handshake)
    return pool


def async_client(url: StoreURL, kwargs: dict[str, Any]) -> aioredis.Redis:
    from redis.asyncio.retry import Retry

    # The client closes the pool with it.
    return aioredis.Redis.from_pool(_pool(url, kwargs, aioredis, _AsyncPool, Retry,
                                          _ahandshake))


# -- scripts by their SHA1 --------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _sha(script: str) -> str:
    return hashlib.sha1(script.encode("utf-8")).hexdigest()


def by_sha(command: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """An EVAL ``command`` as the EVALSHA of its script; ``None`` for another command."""
    if command[0] != "EVAL":
        return None
    return ("EVALSHA", _sha(command[1]), *command[2:])


# -- one command, sent once ----------------------------------------------------------------

_NOT_RUN = object()


def _count_acks(acks: list[int] | None, reply: Any) -> None:
    if acks is not None:
        acks.append(int(reply))

# redis-py before 5.3 wants a command name to hand out a connection (and warns since).
_param = inspect.signature(redis.ConnectionPool.get_connection).parameters.get("command_name")
_GET_ARGS: tuple[str, ...] = (
    ("EVAL",) if _param is not None and _param.default is inspect.Parameter.empty else ())


def send_once(client: Any, command: tuple[Any, ...], *, writes: bool,
              errors_as_replies: bool = False, wait: tuple[int, int] | None = None,
              acks: list[int] | None = None, asking: bool = False) -> Any:
    """Run ``command`` on a pooled connection of the sync ``client``, sending it once.

    Failures to get a connection sent nothing and propagate as they are; a connection
    failure after sending a write raises :class:`SentAndLost`. A command Redis refuses
    returns its error when ``errors_as_replies``, else raises it.

    ``wait`` (replicas, milliseconds): a ``WAIT`` follows on the same connection (WAIT
    counts the replicas that have every write *of that connection*); the number of
    replicas that acknowledged is appended to ``acks``. A connection lost during the
    WAIT is a :class:`SentAndLost` too: the write ran, but may die with its master.

    ``asking``: the node was named by a cluster's ASK redirection (its slot is being
    imported): each command is preceded by ASKING, which lets the next one in."""
    pool = client.connection_pool
    conn = pool.get_connection(*_GET_ARGS)

    def ask() -> None:
        if asking:
            conn.send_command("ASKING")
            client.parse_response(conn, "ASKING")

    try:
        reply: Any = _NOT_RUN
        cached = by_sha(command)
        if cached is not None:
            try:
                ask()
                conn.send_command(*cached)
                reply = client.parse_response(conn, cached[0])
            except redis.exceptions.NoScriptError:
                pass  # the script did not run: send its text
        if reply is _NOT_RUN:
            ask()
            conn.send_command(*command)
            reply = client.parse_response(conn, command[0])
        if wait is not None:
            conn.send_command("WAIT", *wait)
            _count_acks(acks, client.parse_response(conn, "WAIT"))
        return reply
    except redis.ResponseError as exc:
        if errors_as_replies:
            return exc
        raise
    except redis.ConnectionError as exc:
        conn.disconnect()
        if writes:
            raise SentAndLost(str(exc)) from exc
        raise
    except BaseException:
        conn.disconnect()  # a reply may still be on its way: never reuse the connection
        raise
    finally:
        pool.release(conn)


async def asend_once(client: Any, command: tuple[Any, ...], *, writes: bool,
                     errors_as_replies: bool = False, wait: tuple[int, int] | None = None,
                     acks: list[int] | None = None) -> Any:
    """:func:`send_once` on an asyncio client."""
    pool = client.connection_pool
    conn = await pool.get_connection(*_GET_ARGS)
    try:
        reply: Any = _NOT_RUN
        cached = by_sha(command)
        if cached is not None:
            try:
                await conn.send_command(*cached)
                reply = await client.parse_response(conn, cached[0])
            except redis.exceptions.NoScriptError:
                pass  # the script did not run: send its text
        if reply is _NOT_RUN:
            await conn.send_command(*command)
            reply = await client.parse_response(conn, command[0])
        if wait is not None:
            await conn.send_command("WAIT", *wait)
            _count_acks(acks, await client.parse_response(conn, "WAIT"))
        return reply
    except redis.ResponseError as exc:
        if errors_as_replies:
            return exc
        raise
    except redis.ConnectionError as exc:
        await conn.disconnect()
        if writes:
            raise SentAndLost(str(exc)) from exc
        raise
    except BaseException:
        await conn.disconnect()
        raise
    finally:
        await pool.release(conn)
