"""Redis under faults: a server that stops answering, a reply lost after Redis ran an
append, poisoned rows, a message over the server's size limit.

Real servers only: the shared Redis behind a TCP proxy (``StallingProxy`` and a subclass
that loses one reply), or a private redis-server started on a free port.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import redis
from conftest import require_server

from threadline import AIMessage, HumanMessage, InputError, StoreConnectionError
from threadline._errors import StoreTimeoutError
from threadline.stores import open_store
from threadline.stores.redis._ops import DEFAULT_MAX_BULK, max_bulk
from threadline.stores.redis._store import RedisStore

from .scenarios import POISON, StallingProxy, poisoned_rows_scenario
from .test_redis import PrivateRedis

SHARED = "redis://127.0.0.1:6379/0"
TIMEOUT = 0.5
#: How much later than its timeout a call may fail on a loaded machine.
SLACK = 1.5


@pytest.fixture
def prefix() -> Iterator[str]:
    """A unique key prefix on the shared server; its keys are deleted afterwards."""
    require_server("127.0.0.1", 6379, "Redis")
    value = f"t{secrets.token_hex(5)}:"
    yield value
    store = RedisStore(SHARED, key_prefix=value)
    store.destroy()
    store.close()


@pytest.fixture
def proxy() -> Iterator[StallingProxy]:
    require_server("127.0.0.1", 6379, "Redis")
    server = StallingProxy("127.0.0.1", 6379)
    yield server
    server.close()


def contents(messages: Sequence[object]) -> list[str]:
    return [m.content for m in messages]  # type: ignore[attr-defined]


def _via(proxy: StallingProxy, prefix: str, **options: Any) -> RedisStore:
    return RedisStore(f"redis://127.0.0.1:{proxy.port}/0", key_prefix=prefix, **options)


def _turn(n: int) -> list[HumanMessage | AIMessage]:
    return [HumanMessage(f"q{n}", id=f"q{n}"), AIMessage(f"a{n}", id=f"a{n}")]


def _times_out(call: Callable[[], object], kind: str, limit: float) -> StoreTimeoutError:
    started = time.monotonic()
    with pytest.raises(StoreTimeoutError) as info:
        call()
    elapsed = time.monotonic() - started
    assert limit * 0.9 <= elapsed < limit + SLACK, elapsed
    assert info.value.kind == kind and info.value.timeout == limit
    assert isinstance(info.value, StoreConnectionError | TimeoutError)
    return info.value


# -- a server that stops answering ----------------------------------------------------------


def test_stalled_server_times_out_writes_and_reads(proxy: StallingProxy, prefix: str) -> None:
    store = _via(proxy, prefix, timeout=TIMEOUT)
    store.append("s", _turn(1))  # connected: the next calls find a pooled connection
    proxy.stall()
    error = _times_out(lambda: store.append("s", _turn(2)), "read", TIMEOUT)
    assert "did not answer within 0.5 s" in str(error)
    assert "may or may not have been stored" in str(error)  # Redis may still run it
    proxy.resume()
    store.append("s", _turn(2))  # the user's retry: stored once, ran late or not
    assert contents(store.get_messages("s")) == ["q1", "a1", "q2", "a2"]
    proxy.stall()
    error = _times_out(lambda: store.get_messages("s"), "read", TIMEOUT)
    assert "may or may not" not in str(error)
    proxy.resume()
    assert contents(store.get_messages("s", last=2)) == ["q2", "a2"]
    store.close()


def test_stalled_server_times_out_async_writes_and_reads(proxy: StallingProxy,
                                                         prefix: str) -> None:
    store = _via(proxy, prefix, timeout=TIMEOUT)

    async def timed(call: Callable[[], Any]) -> StoreTimeoutError:
        started = time.monotonic()
        with pytest.raises(StoreTimeoutError) as info:
            await call()
        assert TIMEOUT * 0.9 <= time.monotonic() - started < TIMEOUT + SLACK
        assert info.value.kind == "read"
        return info.value

    async def main() -> list[str]:
        await store.aappend("s", _turn(1))
        proxy.stall()
        error = await timed(lambda: store.aappend("s", _turn(2)))
        assert "may or may not have been stored" in str(error)
        proxy.resume()
        await store.aappend("s", _turn(2))
        proxy.stall()
        await timed(lambda: store.aget_messages("s"))
        proxy.resume()
        return contents(await store.aget_messages("s"))

    assert asyncio.run(main()) == ["q1", "a1", "q2", "a2"]
    store.close()


def test_stalled_before_connecting_is_a_connect_timeout(proxy: StallingProxy,
                                                        prefix: str) -> None:
    """A proxy that accepts but never forwards: the handshake after the TCP connect gets
    no answer, bounded by connect_timeout (not timeout); nothing was sent."""
    store = _via(proxy, prefix, timeout=5, connect_timeout=TIMEOUT)
    proxy.stall()
    error = _times_out(lambda: store.get_messages("s"), "connect", TIMEOUT)
    assert "cannot reach Redis" in str(error)
    error = _times_out(lambda: store.append("s", _turn(1)), "connect", TIMEOUT)
    assert "may or may not" not in str(error)  # nothing was sent

    async def main() -> StoreTimeoutError:
        with pytest.raises(StoreTimeoutError) as info:
            await store.aappend("s", _turn(1))
        return info.value

    started = time.monotonic()
    assert asyncio.run(main()).kind == "connect"
    assert time.monotonic() - started < TIMEOUT + SLACK
    proxy.resume()
    store.append("s", _turn(1))
    assert contents(store.get_messages("s")) == ["q1", "a1"]
    store.close()


def test_exhausted_pool_is_a_pool_timeout(proxy: StallingProxy, prefix: str) -> None:
    store = _via(proxy, prefix, timeout=1.0, pool_timeout=0.2, pool_size=1)
    store.get_messages("s")
    proxy.stall()
    def hold() -> None:
        with pytest.raises(StoreTimeoutError):
            store.get_messages("s")

    holder = threading.Thread(target=hold)
    holder.start()  # takes the only connection, waits for an answer for 1 s
    time.sleep(0.1)
    error = _times_out(lambda: store.get_messages("s"), "pool", 0.2)
    assert "pool_size=1" in str(error) and "raise pool_size" in str(error)
    holder.join()

    async def main() -> StoreTimeoutError:
        await store.aget_messages("s")  # this loop's pool, connected
        proxy.stall()
        first = asyncio.create_task(store.aget_messages("s"))
        await asyncio.sleep(0.1)
        with pytest.raises(StoreTimeoutError) as info:
            await store.aget_messages("s")
        with pytest.raises(StoreTimeoutError):
            await first
        return info.value

    proxy.resume()
    assert asyncio.run(main()).kind == "pool"
    proxy.resume()
    store.close()


# -- a reply lost after Redis ran the append ------------------------------------------------


class ReplyLosingProxy(StallingProxy):
    """Forwards everything, except that once :attr:`armed`, it drops the connection
    instead of forwarding the next reply: Redis ran the command, the client never hears
    of it (a connection reset at the worst moment)."""

    def __init__(self, host: str, port: int) -> None:
        self.armed = threading.Event()
        self.lost = 0
        super().__init__(host, port)

    def _pump(self, source: object, sink: object) -> None:
        assert isinstance(source, socket.socket) and isinstance(sink, socket.socket)
        try:
            from_server = source.getpeername()[1] == self.target[1]
        except OSError:
            return
        if not from_server:
            super()._pump(source, sink)
            return
        try:
            while data := source.recv(65536):
                if self.armed.is_set():
                    self.armed.clear()
                    self.lost += 1
                    for each in (sink, source):
                        each.shutdown(socket.SHUT_RDWR)
                        each.close()
                    return
                sink.sendall(data)
        except OSError:
            pass


@pytest.fixture
def losing_proxy() -> Iterator[ReplyLosingProxy]:
    require_server("127.0.0.1", 6379, "Redis")
    server = ReplyLosingProxy("127.0.0.1", 6379)
    yield server
    server.close()


def test_lost_reply_is_retried_once_and_stored_once(losing_proxy: ReplyLosingProxy,
                                                    prefix: str) -> None:
    store = _via(losing_proxy, prefix)
    store.append("s", _turn(1))
    losing_proxy.armed.set()
    store.append("s", _turn(2))  # ran, reply lost, sent again with the same ids
    assert losing_proxy.lost == 1
    assert contents(store.get_messages("s")) == ["q1", "a1", "q2", "a2"]
    info = store.session_info("s")
    assert info is not None and info.message_count == 4

    async def main() -> list[str]:
        await store.aget_messages("s")  # this loop's connection, ready
        losing_proxy.armed.set()
        await store.aappend("s", _turn(3))
        return contents(await store.aget_messages("s"))

    assert asyncio.run(main()) == ["q1", "a1", "q2", "a2", "q3", "a3"]
    assert losing_proxy.lost == 2
    store.close()


def test_lost_reply_without_ids_is_reported_not_resent(losing_proxy: ReplyLosingProxy,
                                                       prefix: str) -> None:
    store = _via(losing_proxy, prefix)
    store.get_messages("s")
    losing_proxy.armed.set()
    with pytest.raises(StoreConnectionError) as info:
        store.append("s", [HumanMessage("no id")])
    assert "may or may not have been stored" in str(info.value)
    assert "no ids" in str(info.value)
    assert contents(store.get_messages("s")) == ["no id"]  # it had run: once, not twice
    store.close()


# -- poisoned rows --------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::threadline.SkippedMessageWarning")
def test_poisoned_rows(prefix: str) -> None:
    store = RedisStore(SHARED, key_prefix=prefix)
    raw = redis.Redis.from_url(SHARED)

    def insert_raw(session_id: str, rows: list[str]) -> None:
        # Oldest first: each LPUSH puts its row at the head, so the newest ends first.
        raw.lpush(prefix + session_id, *rows)
        raw.zadd(prefix + "\x00sessions", {session_id: 0})

    poisoned_rows_scenario(store, insert_raw)
    assert len(store.list_sessions(limit=1000).session_ids) == len(POISON)
    raw.close()
    store.close()


def test_poisoned_rows_do_not_stop_an_append_learning_ids(prefix: str) -> None:
    """The append script reads rows other writers pushed to learn their ids: rows it
    cannot decode (deep nesting, not JSON, an id that is not a string) are passed over."""
    store = RedisStore(SHARED, key_prefix=prefix)
    raw = redis.Redis.from_url(SHARED)
    good = json.dumps({"type": "human", "data": {"content": "known", "id": "k1"}})
    rows = ["{not json", "[" * 5000 + "]" * 5000, '{"type":"human","data":{"id":7}}', good]
    raw.lpush(prefix + "s", *rows)
    store.append("s", [HumanMessage("known", id="k1"), HumanMessage("new", id="k2")])
    assert raw.llen(prefix + "s") == 5
    assert raw.smembers(prefix + "\x00ids\x00s") == {b"k1", b"k2"}
    raw.close()
    store.close()


# -- size limits ----------------------------------------------------------------------------


@pytest.fixture
def small_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A private redis-server that takes values of 1 MB at most."""
    server = PrivateRedis(tmp_path, "--proto-max-bulk-len", "1mb")
    server.start()
    yield server
    server.stop()


def test_message_over_proto_max_bulk_len_is_refused_before_sending(
        small_redis: PrivateRedis) -> None:
    store = open_store(small_redis.url)
    store.append("s", [HumanMessage("small", id="m0")])
    # 400,000 characters, 1,200,000 bytes of UTF-8: the limit is in bytes.
    for big in ("x" * (1024 * 1024 + 1), "€" * 400_000):
        with pytest.raises(InputError, match=r"larger than Redis's proto-max-bulk-len, its "
                                             r"largest value \(1,048,576 bytes\)"):
            store.append("s", [HumanMessage("q", id="m1"), AIMessage(big, id="m2")])
        with pytest.raises(InputError, match="nothing was stored"):
            asyncio.run(store.aappend("s", [HumanMessage(big)]))
    assert contents(store.get_messages("s")) == ["small"]  # nothing stored, still usable
    under = "y" * 1_000_000  # its JSON is under 1 MB: sent, stored
    store.append("s", [HumanMessage(under, id="m3")])
    assert contents(store.get_messages("s", last=1)) == [under]
    store.close()


def test_refused_config_get_assumes_redis_default_limit(tmp_path: Path) -> None:
    server = PrivateRedis(tmp_path, "--rename-command", "CONFIG", f"c{secrets.token_hex(8)}")
    server.start()
    try:
        store = open_store(server.url)
        big = "z" * (2 * 1024 * 1024)  # over 1 MB: the store asks, is refused, assumes 512 MB
        store.append("s", [HumanMessage(big)])
        assert contents(store.get_messages("s")) == [big]
        store.close()
    finally:
        server.stop()


def test_max_bulk_reads_every_reply_shape() -> None:
    assert max_bulk({"proto-max-bulk-len": "1048576"}) == 1048576
    assert max_bulk([b"proto-max-bulk-len", b"2097152"]) == 2097152
    assert max_bulk(redis.ResponseError("NOPERM")) == DEFAULT_MAX_BULK
    assert max_bulk([]) == max_bulk({}) == DEFAULT_MAX_BULK
