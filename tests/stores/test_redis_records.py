"""Records on Redis: the key layout, expiry, raw bytes and namespaces.

The records contract (test_records.py) covers what every backend does; here are the
points only Redis has: two keys of the store's own per session, their expiry, values
kept bytes on a client that decodes responses, a scan in one round trip, nested
prefixes, and the server's proto-max-bulk-len.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
import redis

from threadline import HumanMessage, InputError
from threadline.stores.redis._records import scan_bounds
from threadline.stores.redis._store import RedisStore

from .test_redis import PrivateRedis

SHARED = "redis://127.0.0.1:6379/0"


def _records_keys(prefix: str, sid: str) -> tuple[bytes, bytes]:
    p, s = prefix.encode(), sid.encode()
    return p + b"\x00rec\x00" + s, p + b"\x00reckeys\x00" + s


def test_layout_is_a_hash_and_a_lex_index(base: str, raw: redis.Redis) -> None:
    store = RedisStore(SHARED, key_prefix=base)
    store.put_records("s", {"b": b"2", "a": b"\xff"})
    values, index = _records_keys(base, "s")
    assert raw.hgetall(values) == {b"a": b"\xff", b"b": b"2"}
    assert raw.zrange(index, 0, -1, withscores=True) == [(b"a", 0.0), (b"b", 0.0)]
    assert raw.pttl(values) == raw.pttl(index) == -1  # no ttl: no expiry
    # a session with records only has no list and no index entry
    assert raw.exists(base + "s") == 0 and raw.zcard(base.encode() + b"\x00sessions") == 0
    store.delete_records("s")
    assert raw.exists(values, index) == 0
    store.close()


def test_ttl_applies_to_both_keys_and_none_leaves_it(base: str, raw: redis.Redis) -> None:
    store = RedisStore(SHARED, key_prefix=base)
    values, index = _records_keys(base, "s")
    store.put_records("s", {"a": b"1"}, ttl=100)
    assert 99_000 < raw.pttl(values) <= 100_000 and 99_000 < raw.pttl(index) <= 100_000
    store.put_records("s", {"b": b"2"})  # no ttl: the records keep their deadline
    assert 0 < raw.pttl(values) <= 100_000 and 0 < raw.pttl(index) <= 100_000
    store.put_records("s", {}, ttl=500)  # an empty put still refreshes the deadline
    assert raw.pttl(values) > 100_000 and raw.pttl(index) > 100_000
    store.expire("s", None)
    assert raw.pttl(values) == raw.pttl(index) == -1
    store.expire("s", 50)
    assert 0 < raw.pttl(values) <= 50_000 and 0 < raw.pttl(index) <= 50_000
    # a store's ttl is the default
    with_ttl = RedisStore(SHARED, key_prefix=base, ttl=20)
    with_ttl.put_records("s", {"c": b"3"})
    assert 0 < raw.pttl(values) <= 20_000 and 0 < raw.pttl(index) <= 20_000
    with_ttl.close()
    store.close()


def test_values_stay_bytes_on_a_decoding_client(base: str) -> None:
    client = redis.Redis.from_url(SHARED, decode_responses=True)
    store = RedisStore.from_client(client, key_prefix=base)
    blob = bytes(range(256)) + b"\xc3\x28"  # not UTF-8
    store.put_records("s", {"k": blob, "l": b"text"})
    assert store.get_records("s", ["k", "l"]) == {"k": blob, "l": b"text"}
    assert store.scan_records("s") == [("k", blob), ("l", b"text")]
    assert store.scan_records("s", keys_only=True, reverse=True) == [("l", b""), ("k", b"")]
    assert asyncio.run(store.ascan_records("s", limit=1)) == [("k", blob)]
    store.append("s", [HumanMessage("hi")])  # messages still work on that client
    assert [m.content for m in store.get_messages("s")] == ["hi"]
    assert store.delete_session("s") is True
    assert store.scan_records("s") == []
    client.close()


def test_largest_value_round_trips(base: str) -> None:
    store = RedisStore(SHARED, key_prefix=base)
    big = os.urandom(store.max_message_bytes)  # 16 MiB by default
    store.put_records("s", {"big": big, "small": b"x"})
    assert store.get_records("s", ["big"]) == {"big": big}
    assert store.scan_records("s", limit=1) == [("big", big)]
    assert asyncio.run(store.aget_records("s", ["big"])) == {"big": big}
    store.close()


def test_a_scan_is_one_round_trip(base: str, monkeypatch: pytest.MonkeyPatch) -> None:
    store = RedisStore(SHARED, key_prefix=base)
    store.put_records("s", {f"k{i:05d}": b"v" for i in range(3000)})
    batches: list[Any] = []
    execute = store._execute

    def counting(batch: Any, append: Any = None) -> list[Any]:
        batches.append(batch)
        return execute(batch, append)

    monkeypatch.setattr(store, "_execute", counting)
    assert len(store.scan_records("s")) == 3000  # HMGET in chunks, inside the script
    assert store.scan_records("s", "k0", after="k00100", limit=2) == [
        ("k00101", b"v"), ("k00102", b"v")]
    assert store.get_records("s", ["k00001", "nope"]) == {"k00001": b"v"}
    assert [len(b.commands) for b in batches] == [1, 1, 1]
    store.delete_records("s", prefix="k0")  # thousands of keys, in chunks
    assert store.scan_records("s") == []
    store.close()


def test_scan_bounds() -> None:
    assert scan_bounds("", None, None) == (b"-", b"+")
    assert scan_bounds("c/", None, None) == (b"[c/", b"(c/\x7f")
    assert scan_bounds("c/", "a", "z") == (b"[c/", b"(c/\x7f")  # the prefix is tighter
    assert scan_bounds("c/", "c/5", "c/7") == (b"(c/5", b"(c/7")
    assert scan_bounds("", "a", None) == (b"(a", b"+")


def test_nested_prefixes_keep_records_apart(base: str, raw: redis.Redis) -> None:
    # "admin:x" of the store base and "x" of base + "admin:" share a list name, not records
    outer = RedisStore(SHARED, key_prefix=base)
    inner = RedisStore(SHARED, key_prefix=base + "admin:")
    outer.put_records("admin:x", {"k": b"outer"})
    inner.put_records("x", {"k": b"inner"})
    assert outer.get_records("admin:x", ["k"]) == {"k": b"outer"}
    assert inner.get_records("x", ["k"]) == {"k": b"inner"}
    inner.append("x", [HumanMessage("mine")])  # the list is inner's now
    assert outer.delete_session("admin:x") is True  # its records only
    assert inner.get_records("x", ["k"]) == {"k": b"inner"}
    assert [m.content for m in inner.get_messages("x")] == ["mine"]
    outer.put_records("admin:x", {"k": b"outer"})
    inner.destroy()
    assert outer.get_records("admin:x", ["k"]) == {"k": b"outer"}
    assert raw.exists(*_records_keys(base + "admin:", "x")) == 0
    outer.destroy()
    assert raw.exists(*_records_keys(base, "admin:x")) == 0
    outer.close()
    inner.close()


def test_records_beside_another_applications_key(base: str, raw: redis.Redis) -> None:
    raw.set(base + "app", "not ours")
    store = RedisStore(SHARED, key_prefix=base)
    store.put_records("app", {"k": b"v"})
    assert store.scan_records("app") == [("k", b"v")]
    store.expire("app", 60)
    assert raw.ttl(base + "app") == -1  # the foreign key is never expired...
    assert store.delete_session("app") is True  # ...nor deleted; the records go
    assert raw.get(base + "app") == b"not ours"
    assert store.delete_session("app") is False
    store.close()


def test_value_over_proto_max_bulk_len_is_refused(tmp_path: Path) -> None:
    server = PrivateRedis(tmp_path, "--proto-max-bulk-len", "1mb")
    server.start()
    try:
        store = RedisStore(server.url)
        store.put_records("s", {"k": b"small"})
        with pytest.raises(InputError, match=r"proto-max-bulk-len \(1,048,576 bytes\)"):
            store.put_records("s", {"big": b"x" * (1024 * 1024 + 1)}, delete=["k"])
        assert store.scan_records("s") == [("k", b"small")]  # nothing stored, nothing deleted
        store.put_records("s", {"fits": b"y" * (1024 * 1024)})
        assert store.get_records("s", ["fits"]) == {"fits": b"y" * (1024 * 1024)}
        store.close()
    finally:
        server.stop()
