"""Redis-specific behaviour: LangChain's data layout, failures and a real event loop.

The contract suite (test_contract.py) covers what every backend does; here are the
cases only Redis has. Restart, password and slow-server cases run on a PRIVATE
redis-server started on a free port in a temp dir (never the shared server).
"""

from __future__ import annotations

import asyncio
import gc
import json
import secrets
import shutil
import socket
import subprocess
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import redis
from conftest import require_server

from threadline import AIMessage, HumanMessage, StoreConnectionError, SystemMessage
from threadline._errors import ConfigurationError
from threadline.stores import open_store, shared_store
from threadline.stores.compat._redis import RedisChatMessageHistory
from threadline.stores.redis._store import RedisStore

SHARED = "redis://127.0.0.1:6379/0"


def _texts(messages: Sequence[object]) -> list[str]:
    return [m.content for m in messages]  # type: ignore[attr-defined]


@pytest.fixture
def prefix() -> Iterator[str]:
    """A unique key prefix on the shared server; its keys are deleted afterwards."""
    require_server("127.0.0.1", 6379, "Redis")
    value = f"t{secrets.token_hex(5)}:"
    yield value
    store = RedisStore(SHARED, key_prefix=value)
    store.destroy()
    store.close()


class PrivateRedis:
    """A redis-server of our own, on a free port, with its data in ``directory``."""

    def __init__(self, directory: Path, *args: str) -> None:
        self.directory = directory
        self.args = args
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--dir", str(self.directory), *self.args],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("the private redis-server did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # SIGTERM: Redis flushes its append-only file
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    servers: list[PrivateRedis] = []

    def make(*args: str) -> PrivateRedis:
        server = PrivateRedis(tmp_path / f"r{len(servers)}", *args)
        server.directory.mkdir()
        servers.append(server)
        server.start()
        return server

    server = make()
    server.make = make  # type: ignore[attr-defined]
    try:
        yield server
    finally:
        for each in servers:
            each.stop()


# -- LangChain's layout ------------------------------------------------------------------


def test_langchain_reads_ours_and_we_read_langchains(prefix: str) -> None:
    from langchain_community.chat_message_histories import (
        RedisChatMessageHistory as LangChainHistory,
    )
    from langchain_core.messages import AIMessage as LcAI
    from langchain_core.messages import HumanMessage as LcHuman

    theirs = LangChainHistory("lc", url=SHARED, key_prefix=prefix)
    theirs.add_messages([LcHuman("hello"), LcAI("hi there", id="m1")])
    ours = RedisChatMessageHistory("lc", url=SHARED, key_prefix=prefix)
    assert ours.messages == [HumanMessage("hello"), AIMessage("hi there", id="m1")]
    ours.add_messages([HumanMessage("ünïcode ✓"), AIMessage("ok")])
    assert [(m.type, m.content) for m in theirs.messages] == [
        ("human", "hello"), ("ai", "hi there"), ("human", "ünïcode ✓"), ("ai", "ok")]
    assert _texts(ours.get_messages(last=2)) == ["ünïcode ✓", "ok"]

    # Newest first in the list, as LangChain's LPUSH leaves it.
    raw = redis.Redis.from_url(SHARED)
    head = json.loads(raw.lindex(prefix + "lc", 0))  # type: ignore[arg-type]
    assert head["type"] == "ai" and head["data"]["content"] == "ok"
    assert ours.key == prefix + "lc"

    # LangChain's clear() deletes the list only: our leftovers must not resurrect it.
    theirs.clear()
    store = ours.store
    assert store.get_messages("lc") == [] and store.session_info("lc") is None
    assert store.list_sessions().session_ids == []
    raw.close()


def _langchain(session_id: str, prefix: str) -> Any:
    """LangChain's own RedisChatMessageHistory on the shared server and our prefix."""
    from langchain_community.chat_message_histories import (
        RedisChatMessageHistory as LangChainHistory,
    )

    return LangChainHistory(session_id, url=SHARED, key_prefix=prefix)


def _leftovers(raw: redis.Redis, prefix: str, session_id: str) -> list[str]:
    """Which keys of one session still exist: its list, its metadata, its index entry."""
    key = (prefix + session_id).encode()
    meta = prefix.encode() + b"\x00meta\x00" + session_id.encode()
    found = [name for name, k in (("list", key), ("meta", meta)) if raw.exists(k)]
    if raw.zscore(prefix.encode() + b"\x00sessions", session_id) is not None:
        found.append("index")
    return found


def test_langchain_clear_then_listing_leaves_nothing(prefix: str, raw: redis.Redis) -> None:
    store = RedisStore(SHARED, key_prefix=prefix)
    store.append("gone", [HumanMessage("a"), AIMessage("b")], ttl=600)
    store.append("kept", [HumanMessage("c")])
    _langchain("gone", prefix).clear()  # deletes the list only
    assert _leftovers(raw, prefix, "gone") == ["meta", "index"]
    assert store.session_info("gone") is None and store.get_messages("gone") == []
    assert asyncio.run(store.asession_info("gone")) is None
    assert asyncio.run(store.aget_messages("gone", last=1)) == []
    assert store.list_sessions().session_ids == ["kept"]
    assert _leftovers(raw, prefix, "gone") == []
    assert _leftovers(raw, prefix, "kept") == ["list", "meta", "index"]
    assert store.purge_expired() == 0
    store.close()


def test_langchain_clear_then_purge_leaves_nothing(prefix: str, raw: redis.Redis) -> None:
    store = RedisStore(SHARED, key_prefix=prefix)
    for sid in ("a", "b", "c"):
        store.append(sid, [HumanMessage(sid)])
    _langchain("a", prefix).clear()
    _langchain("c", prefix).clear()
    assert asyncio.run(store.apurge_expired()) == 2
    assert _leftovers(raw, prefix, "a") == _leftovers(raw, prefix, "c") == []
    assert _leftovers(raw, prefix, "b") == ["list", "meta", "index"]
    assert store.purge_expired() == 0
    assert store.list_sessions().session_ids == ["b"]
    store.close()


def test_purge_finds_orphan_metadata_the_index_lost(prefix: str, raw: redis.Redis) -> None:
    store = RedisStore(SHARED, key_prefix=prefix)
    # A store whose prefix extends ours is another store: its keys are not ours to purge.
    odd = RedisStore(SHARED, key_prefix=prefix + "sub:")
    for each in (store, odd):
        each.append("cleared", [HumanMessage("x")])
        each.append("live", [HumanMessage("y")])
        _langchain("cleared", each.key_prefix).clear()
        # What an older threadline's listing left: the index entry dropped, the hash kept.
        raw.zrem(each.key_prefix + "\x00sessions", "cleared")
    raw.hset(prefix + "\x00meta\x00never-listed", mapping={"created_at": "1.0"})
    assert store.purge_expired() == 2  # "cleared" and "never-listed", under this prefix only
    assert _leftovers(raw, prefix, "cleared") == _leftovers(raw, prefix, "never-listed") == []
    assert _leftovers(raw, odd.key_prefix, "cleared") == ["meta"]
    info = store.session_info("live")
    assert info is not None and info.created_at is not None and info.message_count == 1
    assert odd.purge_expired() == 1
    assert _leftovers(raw, odd.key_prefix, "cleared") == []
    assert _leftovers(raw, odd.key_prefix, "live") == ["list", "meta", "index"]
    store.close()
    odd.close()


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_append_after_langchain_clear_starts_afresh(prefix: str, raw: redis.Redis,
                                                    mode: str) -> None:
    from langchain_core.messages import AIMessage as LcAI
    from langchain_core.messages import HumanMessage as LcHuman

    store = RedisStore(SHARED, key_prefix=prefix)

    def append(message: HumanMessage | AIMessage) -> None:
        if mode == "sync":
            store.append("s", [message])
        else:
            asyncio.run(store.aappend("s", [message]))

    append(HumanMessage("old 1"))
    append(AIMessage("old 2"))
    before = store.session_info("s")
    assert before is not None and before.created_at is not None
    assert before.updated_at is not None and before.updated_at >= before.created_at
    time.sleep(0.05)
    theirs = _langchain("s", prefix)
    theirs.clear()
    append(HumanMessage("new"))
    after = store.session_info("s")
    assert after is not None and after.message_count == 1
    assert after.created_at is not None and after.created_at > before.updated_at
    assert after.updated_at == after.created_at
    # Either library reads what the other wrote, after the clear as before it.
    assert [(m.type, m.content) for m in theirs.messages] == [("human", "new")]
    theirs.add_messages([LcAI("from langchain"), LcHuman("and again")])
    assert store.get_messages("s") == [HumanMessage("new"), AIMessage("from langchain"),
                                       HumanMessage("and again")]
    append(AIMessage("from threadline"))
    assert [m.content for m in theirs.messages][-1] == "from threadline"
    later = store.session_info("s")
    assert later is not None and later.created_at == after.created_at  # not reset again
    assert later.message_count == 4
    assert _leftovers(raw, prefix, "s") == ["list", "meta", "index"]
    store.close()


def test_append_is_one_script_call() -> None:
    from threadline.stores._base import encode_message
    from threadline.stores.redis._keys import Keys
    from threadline.stores.redis._ops import append_op
    from threadline.stores.redis._scripts import APPEND

    for ttl, expiry in ((None, ""), (30.0, 30000)):
        messages = [HumanMessage("q", id="m1"), AIMessage("a")]
        op = append_op(Keys(b"p:"), "s", messages, [encode_message(m) for m in messages], ttl)
        batch = next(op)
        assert not batch.transaction and batch.writes and len(batch.commands) == 1
        # The script alone checks the key is ours, skips known ids and pushes.
        command = batch.commands[0]
        assert command[:8] == ("EVAL", APPEND, 5, b"p:s", b"p:\x00meta\x00s",
                               b"p:\x00ids\x00s", b"p:\x00sessions", b"p:\x00recent")
        assert command[8:10] == (b"s", 0)  # the session id, no rival prefix
        assert command[10:12] == (b"p:\x00orecent\x00", b"p:\x00oids\x00")  # owner sets
        assert command[13:] == (expiry, "=m1", command[15], "", command[17])
        with pytest.raises(StopIteration):
            op.send([2])  # no second round trip


def _ids(raw: redis.Redis, prefix: str, session_id: str) -> set[bytes | str]:
    return raw.smembers(prefix + "\x00ids\x00" + session_id)


def test_ids_other_writers_pushed_are_learnt(prefix: str, raw: redis.Redis) -> None:
    from langchain_core.messages import AIMessage as LcAI
    from langchain_core.messages import HumanMessage as LcHuman

    theirs = _langchain("s", prefix)
    theirs.add_messages([LcHuman("q1", id="m1"), LcAI("a1", id="m2")])
    store = RedisStore(SHARED, key_prefix=prefix)
    # A retry of LangChain's turn plus a new message: only the new one is stored.
    store.append("s", [HumanMessage("q1", id="m1"), AIMessage("a1", id="m2"),
                       HumanMessage("q2", id="m3")])
    assert _texts(store.get_messages("s")) == ["q1", "a1", "q2"]
    theirs.add_messages([LcAI("a2", id="m4"), LcHuman("no id")])  # after our set exists
    store.append("s", [AIMessage("a2", id="m4"), HumanMessage("q3", id="m5")])
    assert _texts(store.get_messages("s")) == ["q1", "a1", "q2", "a2", "no id", "q3"]
    assert _ids(raw, prefix, "s") == {b"m1", b"m2", b"m3", b"m4", b"m5"}
    # Someone trimmed the list below what the set covers: the set is rebuilt from it.
    raw.ltrim(prefix + "s", 0, 1)
    store.append("s", [HumanMessage("q1", id="m1"), HumanMessage("q3", id="m5")])
    assert _texts(store.get_messages("s")) == ["no id", "q3", "q1"]
    assert [m.content for m in theirs.messages] == ["no id", "q3", "q1"]

    # A session of threadline before id sets (no set, no ids_cover): learnt whole, once.
    store.append("old", [HumanMessage("x", id="o1"), AIMessage("y", id="o2")])
    raw.delete(prefix + "\x00ids\x00old")
    raw.hdel(prefix + "\x00meta\x00old", "ids_cover")
    store.append("old", [AIMessage("y", id="o2"), HumanMessage("z", id="o3")])
    assert _texts(store.get_messages("old")) == ["x", "y", "z"]
    store.close()


def test_id_set_lives_and_dies_with_the_session(prefix: str, raw: redis.Redis) -> None:
    store = RedisStore(SHARED, key_prefix=prefix)

    def ttls(session_id: str) -> list[int]:
        keys = [prefix + session_id, prefix + "\x00meta\x00" + session_id,
                prefix + "\x00ids\x00" + session_id]
        return [int(raw.pttl(k)) for k in keys]

    store.append("s", [HumanMessage("q", id="m1")], ttl=60)
    assert all(59_000 < t <= 60_000 for t in ttls("s"))
    store.expire("s", None)
    assert ttls("s") == [-1, -1, -1]
    store.expire("s", 30)
    assert all(29_000 < t <= 30_000 for t in ttls("s"))
    store.delete_session("s")
    assert ttls("s") == [-2, -2, -2]  # all gone

    # No ttl given: the hash and the set take the expiry LangChain gave the list.
    theirs = _langchain("lc", prefix)
    theirs.ttl = 100
    theirs.add_user_message("from langchain")
    store.append("lc", [HumanMessage("ours", id="i1")])
    assert all(99_000 < t <= 100_000 for t in ttls("lc"))
    theirs.clear()  # the list only: the next append forgets the old ids
    store.append("lc", [HumanMessage("ours", id="i1")])
    assert _texts(store.get_messages("lc")) == ["ours"] and ttls("lc")[2] == -1

    # Expired for real: the ids go with the messages.
    store.append("short", [HumanMessage("a", id="x")], ttl=0.2)
    time.sleep(0.3)
    assert ttls("short") == [-2, -2, -2]
    store.append("short", [HumanMessage("a", id="x")])
    assert _texts(store.get_messages("short")) == ["a"]
    store.close()


def test_purge_drops_orphan_id_sets(prefix: str, raw: redis.Redis) -> None:
    store = RedisStore(SHARED, key_prefix=prefix)
    store.append("live", [HumanMessage("x", id="l1")])
    raw.sadd(prefix + "\x00ids\x00orphan", "o1")  # an older threadline dropped the rest
    assert store.purge_expired() == 1
    assert not raw.exists(prefix + "\x00ids\x00orphan")
    assert _ids(raw, prefix, "live") == {b"l1"}
    assert store.purge_expired() == 0
    store.close()


def test_reindex_finds_sessions_langchain_wrote(prefix: str) -> None:
    from langchain_community.chat_message_histories import (
        RedisChatMessageHistory as LangChainHistory,
    )

    for sid in ("b", "a/1"):
        LangChainHistory(sid, url=SHARED, key_prefix=prefix).add_user_message("x")
    store = RedisStore(SHARED, key_prefix=prefix)
    store.append("ours", [HumanMessage("y")])
    assert store.list_sessions().session_ids == ["ours"]  # not indexed yet
    assert store.reindex() == 2
    assert store.reindex() == 0
    assert store.list_sessions().session_ids == ["a/1", "b", "ours"]
    info = store.session_info("b")
    assert info is not None and info.message_count == 1 and info.created_at is None
    store.close()


def test_history_objects_share_one_pool(prefix: str) -> None:
    first = RedisChatMessageHistory("s", url=SHARED, key_prefix=prefix, ttl=60)
    second = RedisChatMessageHistory("s", url=SHARED, key_prefix=prefix)
    assert first.store is second.store is shared_store(SHARED, key_prefix=prefix)
    first.add_user_message("hi")
    info = second.store.session_info("s")
    assert info is not None and info.expires_at is not None  # the history's ttl applied
    client = redis.Redis.from_url(SHARED)
    via_client = RedisChatMessageHistory("s", key_prefix=prefix, redis_client=client)
    assert _texts(via_client.messages) == ["hi"]
    assert _texts(asyncio.run(via_client.aget_messages())) == ["hi"]
    turn = [HumanMessage("q", id="c1"), AIMessage("a", id="c2")]
    via_client.add_messages(turn)
    asyncio.run(via_client.aadd_messages(turn))  # a retry, through the thread adapter
    assert _texts(via_client.messages) == ["hi", "q", "a"]
    client.close()


def test_our_keys_cannot_collide_with_sessions(prefix: str) -> None:
    store = RedisStore(SHARED, key_prefix=prefix)
    store.append("sessions", [HumanMessage("a")])
    store.append("meta", [HumanMessage("b")])
    raw = redis.Redis.from_url(SHARED)
    keys = sorted(raw.scan_iter(match=prefix + "*"))
    internal = [k for k in keys if k.startswith(prefix.encode() + b"\x00")]
    assert sorted(set(keys) - set(internal)) == [prefix.encode() + b"meta",
                                                 prefix.encode() + b"sessions"]
    assert raw.type(prefix + "sessions") == b"list"
    assert store.list_sessions().session_ids == ["meta", "sessions"]
    raw.close()
    store.close()


def test_ttl_expires_for_real(prefix: str) -> None:
    store = RedisStore(SHARED, key_prefix=prefix, ttl=1)
    store.append("gone", [HumanMessage("a")])
    store.append("kept", [HumanMessage("b")], ttl=30)
    time.sleep(1.2)
    assert store.get_messages("gone") == []
    assert store.purge_expired() == 1  # the dead index entry
    assert store.purge_expired() == 0
    assert store.list_sessions().session_ids == ["kept"]
    raw = redis.Redis.from_url(SHARED)
    assert not any(b"gone" in k for k in raw.scan_iter(match=prefix + "*"))
    raw.close()
    # Listing drops dead entries too, without purge_expired.
    store.expire("kept", 0.2)
    time.sleep(0.4)
    assert store.list_sessions().session_ids == []
    assert store.purge_expired() == 0
    store.close()


def test_malformed_urls_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="database number"):
        open_store("redis://localhost/chat")
    with pytest.raises(ConfigurationError, match="rediss"):
        open_store("redis://localhost/0?ssl_cert_reqs=none")
    with pytest.raises(ConfigurationError, match="connect_timeout"):
        open_store("redis://localhost/0?connect_timeout=-1")
    for name in ("timeout", "pool_timeout"):
        with pytest.raises(ConfigurationError, match=name):
            open_store(f"redis://localhost/0?{name}=0")


# -- failures --------------------------------------------------------------------------------


def test_server_down_at_start_fails_fast(tmp_path: Path) -> None:
    for url in ("redis://:pw-secret@127.0.0.1:1/0", f"unix://{tmp_path}/none.sock?db=1"):
        store = open_store(url, connect_timeout=1)
        started = time.monotonic()
        with pytest.raises(StoreConnectionError) as info:
            store.append("s", [HumanMessage("x")])
        with pytest.raises(StoreConnectionError):
            asyncio.run(store.aget_messages("s"))
        assert time.monotonic() - started < 8
        assert "pw-secret" not in str(info.value)
        store.close()


def test_restart_mid_conversation(private_redis: PrivateRedis) -> None:
    store = open_store(private_redis.url, connect_timeout=2)
    history = store.history("chat")
    history.add_messages([HumanMessage("q1"), AIMessage("a1")])

    async def turn(n: int) -> list[str]:
        await history.aadd_messages([HumanMessage(f"q{n}"), AIMessage(f"a{n}")])
        return _texts(await history.aget_messages())

    private_redis.stop()
    with pytest.raises(StoreConnectionError):
        history.get_messages()
    private_redis.start()
    # The pooled connections are dead; the next calls reconnect by themselves.
    assert _texts(history.get_messages()) == ["q1", "a1"]
    history.add_messages([HumanMessage("q2"), AIMessage("a2")])

    async def restart_inside_one_loop() -> list[str]:
        await turn(3)
        private_redis.stop()
        private_redis.start()
        return await turn(4)

    assert asyncio.run(restart_inside_one_loop()) == [
        "q1", "a1", "q2", "a2", "q3", "a3", "q4", "a4"]
    info = store.session_info("chat")
    assert info is not None and info.message_count == 8
    store.close()


def test_wrong_password_is_a_clear_error(private_redis: PrivateRedis) -> None:
    server = private_redis.make("--requirepass", "right-pw")  # type: ignore[attr-defined]
    base = f"127.0.0.1:{server.port}/0"
    for url in (f"redis://:wrong-pw@{base}", f"redis://{base}"):
        store = open_store(url, connect_timeout=2)
        started = time.monotonic()
        with pytest.raises(StoreConnectionError, match="credentials") as info:
            store.get_messages("s")
        assert time.monotonic() - started < 5
        assert "wrong-pw" not in str(info.value) and "wrong-pw" not in repr(store)
        store.close()
    good = open_store(f"redis://:right-pw@{base}")
    good.append("s", [HumanMessage("x")])
    assert _texts(good.get_messages("s")) == ["x"]
    good.close()


def test_async_never_blocks_the_loop(private_redis: PrivateRedis) -> None:
    server = private_redis.make("--enable-debug-command", "yes")  # type: ignore[attr-defined]
    store = open_store(server.url)
    store.append("s", [SystemMessage("sys")])

    def slow_server() -> None:
        with redis.Redis(port=server.port) as other:
            other.execute_command("DEBUG", "SLEEP", "0.3")

    async def main() -> tuple[float, float, float]:
        await store.aget_messages("s")  # connect first: time only the slow server
        gaps: list[float] = []
        stop = asyncio.Event()

        async def tick() -> None:
            last = time.monotonic()
            while not stop.is_set():
                await asyncio.sleep(0.01)
                now = time.monotonic()
                gaps.append(now - last)
                last = now

        ticker = asyncio.create_task(tick())
        await asyncio.sleep(0.02)
        sleeper = threading.Thread(target=slow_server)
        sleeper.start()
        await asyncio.sleep(0.05)  # the server is now asleep
        started = time.monotonic()
        await store.aappend("s", [HumanMessage("q"), AIMessage("a")])
        messages = await store.aget_messages("s", last=2)
        waited = time.monotonic() - started
        stop.set()
        await ticker
        await asyncio.to_thread(sleeper.join)
        assert _texts(messages) == ["q", "a"]
        return waited, max(gaps), len(gaps)

    waited, worst_gap, ticks = asyncio.run(main())
    assert waited >= 0.15  # the calls really waited for the sleeping server
    assert worst_gap < 0.12 and ticks >= 10
    store.close()


def test_repeated_asyncio_run_reuses_nothing_stale(private_redis: PrivateRedis) -> None:
    store = open_store(private_redis.url)
    assert isinstance(store, RedisStore)
    before = len(redis.Redis(port=private_redis.port).client_list())
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        for n in range(5):
            asyncio.run(store.aappend("s", [HumanMessage(f"m{n}")]))
            assert store._loop_clients == {}  # closed with its loop
        gc.collect()
    assert _texts(store.get_messages("s")) == [f"m{n}" for n in range(5)]
    after = len(redis.Redis(port=private_redis.port).client_list())
    assert after <= before + 2  # no connection left behind per loop
    store.close()


def test_unix_socket_url_with_db(private_redis: PrivateRedis, tmp_path: Path) -> None:
    path = tmp_path / "redis.sock"
    server = private_redis.make("--unixsocket", str(path))  # type: ignore[attr-defined]
    store = open_store(f"unix://{path}?db=3&key_prefix=u:")
    store.append("s", [HumanMessage("over a socket")])
    assert _texts(asyncio.run(store.aget_messages("s"))) == ["over a socket"]
    with redis.Redis(port=server.port, db=3) as raw:
        assert raw.llen("u:s") == 1
    store.close()


def test_scripts_go_by_sha_and_survive_a_script_flush(private_redis: PrivateRedis) -> None:
    """Scripts are sent by SHA1 (EVALSHA); a server that lost them (a restart, SCRIPT
    FLUSH) answers NOSCRIPT without running anything and gets the text: every append,
    sync and async, is stored exactly once."""
    raw = redis.Redis.from_url(private_redis.url)
    store = RedisStore(private_redis.url)
    try:
        store.append("s", [HumanMessage("q1", id="m1")])
        evals = raw.info("commandstats")
        assert "cmdstat_evalsha" in evals
        sent_text = evals.get("cmdstat_eval", {}).get("calls", 0)
        store.append("s", [AIMessage("a1", id="m2")])
        assert raw.info("commandstats").get("cmdstat_eval", {}).get("calls", 0) == sent_text
        raw.script_flush()
        store.append("s", [HumanMessage("q2", id="m3")])  # NOSCRIPT, then the text
        raw.script_flush()
        asyncio.run(store.aappend("s", [AIMessage("a2", id="m4")]))
        raw.script_flush()
        assert _texts(store.get_messages("s", last=3)) == ["a1", "q2", "a2"]
        assert _texts(asyncio.run(store.aget_messages("s"))) == ["q1", "a1", "q2", "a2"]
    finally:
        store.close()
        raw.close()
