"""The Redis store on a real Redis Cluster (``redis+cluster://``): slots, listing across
shards, TTL, concurrency from threads and processes, ``wait_replicas`` and a failover.

The contract suites (test_contract.py, test_sessions.py, test_records.py) run on the
cluster too, as backend ``redis-cluster`` (tests/stores/conftest.py); this module checks
what only a cluster has. The cluster is private (tests/stores/redis_cluster.py); the
failover test starts its own, since it kills a master.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import require_server

from threadline import AIMessage, ConfigurationError, HumanMessage, StoreError
from threadline.stores import open_store
from threadline.stores.redis._cluster_keys import SHARDS, ClusterKeys
from threadline.stores.redis._cluster_store import RedisClusterStore

from .redis_cluster import RedisCluster, shared_cluster


@pytest.fixture(scope="module")
def cluster() -> RedisCluster:
    return shared_cluster()


@pytest.fixture
def prefix() -> str:
    return f"c{secrets.token_hex(4)}:"


@pytest.fixture
def store(cluster: RedisCluster, prefix: str) -> Iterator[RedisClusterStore]:
    opened = open_store(cluster.url(key_prefix=prefix))
    assert isinstance(opened, RedisClusterStore)
    yield opened
    opened.destroy()
    opened.close()


def _raw(store: RedisClusterStore) -> Any:
    return store._client()


def _all_keys(store: RedisClusterStore) -> list[bytes]:
    client = _raw(store)
    found: list[bytes] = []
    for node in client.get_primaries():
        conn = client.get_redis_connection(node)
        found += conn.scan_iter(match=store.key_prefix.encode() + b"*", count=1000)
    return found


def turn(sid: str, n: int) -> list[HumanMessage | AIMessage]:
    return [HumanMessage(f"q{n}", id=f"{sid}-q{n}"), AIMessage(f"a{n}", id=f"{sid}-a{n}")]


# -- layout -----------------------------------------------------------------------------------


def test_every_key_of_a_session_is_in_one_slot(store: RedisClusterStore) -> None:
    ids = ["plain", "with{brace}", "}{", "a:b:c", "ünï"]
    for sid in ids:
        store.append(sid, turn(sid, 1), ttl=60)
        store.update_session(sid, title="t", owner="alice", metadata={"k": "v"})
        store.put_records(sid, {"r1": b"v"})
    client = _raw(store)
    keys = _all_keys(store)
    slots_by_session: dict[str, set[int]] = {}
    layout = ClusterKeys(store.key_prefix.encode())
    for sid in ids:
        raw = sid.encode()
        own = [layout.messages(raw), layout.meta(raw), layout.ids(raw), *layout.records(raw)]
        assert set(own) <= set(keys)  # every key of the session exists...
        # ...and the server puts them in one slot (CLUSTER KEYSLOT, not our own hashing).
        slots_by_session[sid] = {client.execute_command("CLUSTER KEYSLOT", key,
                                                        target_nodes=client.get_random_node())
                                 for key in own}
        assert len(slots_by_session[sid]) == 1, sid
    # A shard's two sets share a slot, and so do an owner's.
    for pair in (layout.shard(3), layout.owner_sets("alice")):
        assert len({client.keyslot(key) for key in pair}) == 1
    assert set(layout.owner_sets("alice")) <= set(keys)
    # Sessions spread over slots, and the index over several masters.
    assert len({next(iter(s)) for s in slots_by_session.values()}) > 1
    masters = {client.get_node_from_key(layout.shard(n)[0]).name for n in range(SHARDS)}
    assert len(masters) >= 2


def test_prefix_url_and_driver_checks(cluster: RedisCluster) -> None:
    with pytest.raises(ConfigurationError, match="may not hold"):
        open_store(cluster.url(key_prefix="a{b}:"))
    with pytest.raises(ConfigurationError, match="database 0"):
        open_store(cluster.url().rstrip("/") + "/3")
    with pytest.raises(ConfigurationError, match="unknown option"):
        open_store(cluster.url(db="1"))
    with pytest.raises(ConfigurationError, match="driver"):
        open_store("redis+sentinel://127.0.0.1:26379/")
    with pytest.raises(StoreError, match="not supported"):
        open_store(cluster.url(key_prefix="x:")).reindex()


def test_append_waits_out_a_slot_migration(cluster: RedisCluster, prefix: str) -> None:
    """While a new session's slot moves to another master (MIGRATING / IMPORTING), Redis
    cannot run a multi-key script on it (ASK from the source, then TRYAGAIN from the
    target: the keys are not all in one place): the append is retried, having run
    nowhere, and lands on the new owner once the move is done (MOVED)."""
    store = open_store(cluster.url(key_prefix=prefix, timeout="8"))
    assert isinstance(store, RedisClusterStore)
    layout = ClusterKeys(store.key_prefix.encode())
    key = layout.messages(b"moving")
    store.setup()
    client = _raw(store)
    slot = client.keyslot(key)
    source = client.get_node_from_key(key)
    target = next(node for node in client.get_primaries() if node.name != source.name)

    def node_id(node: Any) -> str:
        raw = client.get_redis_connection(node).execute_command("CLUSTER MYID")
        return raw.decode() if isinstance(raw, bytes) else str(raw)

    source_id, target_id = node_id(source), node_id(target)
    client.get_redis_connection(target).execute_command(
        "CLUSTER SETSLOT", slot, "IMPORTING", source_id)
    client.get_redis_connection(source).execute_command(
        "CLUSTER SETSLOT", slot, "MIGRATING", target_id)
    errors: list[BaseException] = []

    def append() -> None:
        try:
            store.append("moving", turn("moving", 1))
        except BaseException as exc:  # reported below
            errors.append(exc)

    writer = threading.Thread(target=append)
    try:
        writer.start()
        time.sleep(0.7)
        assert writer.is_alive()  # waiting for the move, not failed
    finally:
        for node in client.get_primaries():  # finish the move (the slot held nothing else)
            client.get_redis_connection(node).execute_command(
                "CLUSTER SETSLOT", slot, "NODE", target_id)
        writer.join(10)
    try:
        assert errors == []
        assert client.get_node_from_key(key).name == target.name
        assert client.get_redis_connection(target).execute_command(
            "CLUSTER COUNTKEYSINSLOT", slot) == 3  # list, hash, id set: on the target
        assert [m.content for m in store.get_messages("moving")] == ["q1", "a1"]
        store.append("moving", turn("moving", 1))  # a resend: stored once
        assert len(store.get_messages("moving")) == 2
    finally:
        store.destroy()
        store.close()


# -- listing across slots ---------------------------------------------------------------------


def test_listing_is_complete_and_ordered_across_shards(store: RedisClusterStore) -> None:
    ids = [f"s{n:04d}-{secrets.token_hex(2)}" for n in range(300)]
    for sid in ids:
        store.append(sid, [HumanMessage(sid)])
    # By id: keyset pages of an odd size, complete, sorted, no duplicates.
    seen: list[str] = []
    cursor = None
    while True:
        page = store.list_sessions(limit=37, cursor=cursor)
        seen += page.session_ids
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == sorted(ids)
    # Recent first: the reverse of the append order (one writer: increasing times).
    recent: list[str] = []
    cursor = None
    while True:
        page = store.list_sessions(order="recent", limit=41, cursor=cursor)
        recent += page.session_ids
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert recent == ids[::-1]
    # A prefix filter walks the shards too.
    assert store.list_sessions(prefix="s01", limit=1000).session_ids == sorted(
        sid for sid in ids if sid.startswith("s01"))
    # Deleting takes a session out of its shard; the rest stays listed.
    assert store.delete_session(ids[5])
    assert ids[5] not in store.list_sessions(limit=1000).session_ids
    assert len(store.list_sessions(limit=1000).session_ids) == 299


def test_ttl_expired_sessions_are_skipped_then_purged(cluster: RedisCluster,
                                                      prefix: str) -> None:
    store = open_store(cluster.url(key_prefix=prefix, timeout="0.5"))
    try:
        store.append("short", turn("short", 1), ttl=0.3)
        store.append("long", turn("long", 1), ttl=60)
        store.update_session("short", owner="bob")
        assert store.list_sessions().session_ids == ["long", "short"]
        time.sleep(0.6)
        assert store.get_messages("short") == []
        assert store.session_info("short") is None
        assert store.list_sessions().session_ids == ["long"]
        assert store.list_sessions(order="recent").session_ids == ["long"]
        assert store.list_sessions(owner="bob").session_ids == []
        # The entry is older than the grace (the store's timeout): purge drops it.
        assert store.purge_expired() == 1
        assert store.purge_expired() == 0
        info = store.session_info("long")
        assert info is not None and info.expires_at is not None
    finally:
        store.destroy()
        store.close()


def test_purge_keeps_an_entry_younger_than_the_grace(store: RedisClusterStore) -> None:
    """An append adds its session to the index before it creates it: purge must not
    take such an entry (here: one whose session never came) while it is fresh."""
    layout = ClusterKeys(store.key_prefix.encode())
    store.setup()
    by_id, by_recent = layout.shard_for(b"pending")
    client = _raw(store)
    client.zadd(by_id, {b"pending": 0})
    client.zadd(by_recent, {b"pending": time.time()})
    assert store.list_sessions().session_ids == []  # skipped: no such session
    assert store.purge_expired() == 0  # fresh (default timeout 30 s): kept
    assert client.zscore(by_id, b"pending") == 0


# -- concurrency ------------------------------------------------------------------------------

_WORKER = """
import sys
from threadline import HumanMessage
from threadline.stores import open_store
url, worker, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
store = open_store(url)
for n in range(count):
    sid = f"conv{n % 6}"
    store.append(sid, [HumanMessage(f"p{worker}-{n}", id=f"p{worker}-{n}")])
store.close()
"""


def test_concurrent_appends_from_threads_and_processes(cluster: RedisCluster,
                                                       store: RedisClusterStore) -> None:
    count = 60
    procs = [subprocess.Popen([sys.executable, "-c", _WORKER, cluster.url(
        key_prefix=store.key_prefix), str(w), str(count)], stderr=subprocess.PIPE)
        for w in range(2)]
    errors: list[BaseException] = []

    def thread_writer(worker: int) -> None:
        try:
            for n in range(count):
                sid = f"conv{n % 6}"
                store.append(sid, [HumanMessage(f"t{worker}-{n}", id=f"t{worker}-{n}")])
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=thread_writer, args=(w,)) for w in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
    assert errors == []
    expected = {f"{kind}{w}-{n}" for kind, writers in (("t", 3), ("p", 2))
                for w in range(writers) for n in range(count)}
    stored: list[str] = []
    for k in range(6):
        messages = store.get_messages(f"conv{k}")
        stored += [m.id or "" for m in messages]
        # Each writer's messages to one session stay in its order.
        for writer in [f"t{w}" for w in range(3)] + [f"p{w}" for w in range(2)]:
            mine = [int(i.split("-")[1]) for i in (m.id or "" for m in messages)
                    if i.startswith(writer + "-")]
            assert mine == sorted(mine)
    assert sorted(stored) == sorted(expected)  # every message once
    assert store.list_sessions().session_ids == [f"conv{k}" for k in range(6)]


# -- wait_replicas ----------------------------------------------------------------------------


def test_wait_replicas_acknowledged_on_the_cluster(cluster: RedisCluster, prefix: str) -> None:
    store = open_store(cluster.url(key_prefix=prefix, wait_replicas="1"))
    try:
        for n in range(5):
            store.append(f"w{n}", turn(f"w{n}", 1))  # every master has one replica
        assert [len(store.get_messages(f"w{n}")) for n in range(5)] == [2] * 5
    finally:
        store.destroy()
        store.close()


def test_wait_replicas_short_says_the_append_is_stored(cluster: RedisCluster,
                                                       prefix: str) -> None:
    store = open_store(cluster.url(key_prefix=prefix, wait_replicas="3", timeout="0.6"))
    try:
        started = time.monotonic()
        with pytest.raises(StoreError, match="stored on the Redis master") as info:
            store.append("s", turn("s", 1))
        assert time.monotonic() - started < 3
        assert "1 of the 3 replicas" in str(info.value)
        assert "again is safe" in str(info.value)
        assert len(store.get_messages("s")) == 2  # it IS stored
        with pytest.raises(StoreError, match="no ids"):
            store.append("s", [HumanMessage("no id")])
    finally:
        store.destroy()
        store.close()


def test_wait_replicas_on_one_node() -> None:
    """WAIT works on one server too: the shared Redis has no replica, so asking for
    one fails after the wait, with the append stored."""
    require_server("127.0.0.1", 6379, "Redis")
    prefix = f"w{secrets.token_hex(4)}:"
    store = open_store(f"redis://127.0.0.1:6379/0?key_prefix={prefix}&wait_replicas=1"
                       "&timeout=0.4")
    try:
        with pytest.raises(StoreError, match="0 of the 1 replicas"):
            store.append("s", turn("s", 1))
        assert len(store.get_messages("s")) == 2
        import asyncio

        with pytest.raises(StoreError, match="0 of the 1 replicas"):
            asyncio.run(store.aappend("s", turn("s", 2)))
        assert len(store.get_messages("s")) == 4
        plain = open_store(f"redis://127.0.0.1:6379/0?key_prefix={prefix}&wait_replicas=0")
        plain.append("s", turn("s", 3))  # 0: no WAIT
        plain.close()
    finally:
        store.destroy()  # type: ignore[attr-defined]
        store.close()


# -- failover ---------------------------------------------------------------------------------


def test_master_killed_mid_run_loses_no_acknowledged_message() -> None:
    """A writer appends turns with wait_replicas=1 while the master of its session's
    slot is SIGKILLed: once the replica is promoted the writer carries on, and every
    append that returned is there, once."""
    cluster = RedisCluster()
    cluster.start()
    try:
        store = open_store(cluster.url(key_prefix="f:", wait_replicas="1", timeout="3"))
        layout = ClusterKeys(b"f:")
        victim = cluster.serving(layout.messages(b"conv").decode())
        assert victim is not None
        acked: list[int] = []
        failed: list[BaseException] = []
        stop = threading.Event()

        def writer() -> None:
            n = 0
            while not stop.is_set():
                try:
                    store.append("conv", turn("conv", n))
                    acked.append(n)
                except StoreError as exc:  # not acknowledged: may or may not be stored
                    failed.append(exc)
                n += 1

        thread = threading.Thread(target=writer)
        thread.start()
        try:
            started = time.monotonic()
            while len(acked) < 20 and time.monotonic() < started + 10:
                time.sleep(0.02)
            before = len(acked)
            assert before >= 20, failed[:3]
            cluster.kill(victim)
            # The replica takes over (cluster-node-timeout 1000 ms); the old master comes
            # back as its replica, so WAIT 1 is answered again and the writer is
            # acknowledged again.
            deadline = time.monotonic() + 25
            key = layout.messages(b"conv").decode()
            while time.monotonic() < deadline and cluster.serving(key) in (victim, None):
                time.sleep(0.1)
            assert cluster.serving(key) not in (victim, None)  # the replica took over
            promoted_at = len(acked)
            cluster.restart(victim)
            while time.monotonic() < deadline and len(acked) <= promoted_at:
                time.sleep(0.1)
        finally:
            stop.set()
            thread.join(30)
        assert len(acked) > promoted_at, (len(acked), promoted_at, failed[-3:])
        stored = [m.id for m in store.get_messages("conv")]
        assert len(stored) == len(set(stored))  # nothing twice
        missing = [n for n in acked if f"conv-q{n}" not in stored or f"conv-a{n}" not in stored]
        assert missing == []
        store.close()
    finally:
        cluster.stop()
