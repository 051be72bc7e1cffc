"""The records contract (threadline.stores._records), on every backend that keeps records.

Run one backend: ``.venv/bin/pytest tests/stores/test_records.py -k sqlite -q``.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from typing import Any

import pytest

from threadline import AIMessage, ConfigurationError, HumanMessage, InputError
from threadline.stores import Store
from threadline.stores._records import MAX_RECORD_KEY_LENGTH, escape_key_part

from .conftest import BackendSpec


@pytest.fixture
def rstore(backend: BackendSpec) -> Store:
    return backend.open()


def _keys(rows: list[tuple[str, bytes]]) -> list[str]:
    return [key for key, _ in rows]


def test_a_backend_without_records_refuses_them_clearly() -> None:
    """A third-party backend that implements only the message primitives."""
    from threadline.stores import MemoryStore

    class MessagesOnly(MemoryStore):
        supports_records = False
        put_records = Store.put_records  # type: ignore[assignment]

    store = MessagesOnly()
    with pytest.raises(ConfigurationError, match="keeps no records"):
        store.put_records("s", {"k": b"v"})


def test_put_get_scan_delete(rstore: Store) -> None:
    assert rstore.supports_records
    assert rstore.get_records("s", ["a"]) == {}
    assert rstore.scan_records("s") == []
    rstore.put_records("s", {"b/2": b"two", "b/1": b"one", "a": b"\x00\xff" * 3, "c": b""})
    assert rstore.get_records("s", ["a", "b/1", "missing", "c"]) == {
        "a": b"\x00\xff" * 3, "b/1": b"one", "c": b""}
    assert rstore.scan_records("s") == [("a", b"\x00\xff" * 3), ("b/1", b"one"),
                                        ("b/2", b"two"), ("c", b"")]
    assert rstore.scan_records("s", "b/") == [("b/1", b"one"), ("b/2", b"two")]
    assert rstore.scan_records("s", "b/", reverse=True, limit=1) == [("b/2", b"two")]
    assert rstore.scan_records("s", keys_only=True) == [
        ("a", b""), ("b/1", b""), ("b/2", b""), ("c", b"")]
    # upsert, and deletes in the same call
    rstore.put_records("s", {"b/1": b"ONE"}, delete=["c", "never-there"])
    assert rstore.scan_records("s") == [("a", b"\x00\xff" * 3), ("b/1", b"ONE"),
                                        ("b/2", b"two")]
    # records of other sessions are separate
    rstore.put_records("t", {"b/1": b"other"})
    assert rstore.get_records("s", ["b/1"]) == {"b/1": b"ONE"}
    rstore.delete_records("s", ["b/1"])
    assert _keys(rstore.scan_records("s")) == ["a", "b/2"]
    rstore.delete_records("s", prefix="b/")
    assert _keys(rstore.scan_records("s")) == ["a"]
    rstore.delete_records("s")
    assert rstore.scan_records("s") == []
    assert rstore.get_records("t", ["b/1"]) == {"b/1": b"other"}


def test_scan_bounds_order_and_prefixes(rstore: Store) -> None:
    ids = [f"c//{i:04d}" for i in range(30)]
    rstore.put_records("s", {k: k.encode() for k in ids})
    rstore.put_records("s", {"c/child%2F1/0001": b"x", "c/child/0001": b"y", "d": b"z",
                             "c/": b"edge", "b": b"w", "c~": b"tilde"})
    assert _keys(rstore.scan_records("s", "c//")) == ids
    assert _keys(rstore.scan_records("s", "c//", reverse=True, limit=3)) == ids[:-4:-1]
    assert _keys(rstore.scan_records("s", "c//", before="c//0010", reverse=True, limit=2)) \
        == ["c//0009", "c//0008"]
    assert _keys(rstore.scan_records("s", "c//", after="c//0027")) == ["c//0028", "c//0029"]
    assert _keys(rstore.scan_records("s", "c//", after="c//0003", before="c//0006")) == [
        "c//0004", "c//0005"]
    assert _keys(rstore.scan_records("s", "c/child/")) == ["c/child/0001"]
    assert _keys(rstore.scan_records("s", "c/")) == [
        "c/", *ids, "c/child%2F1/0001", "c/child/0001"]
    assert _keys(rstore.scan_records("s", "c", reverse=True, limit=2)) == ["c~", "c/child/0001"]
    # byte order over every printable character
    chars = [chr(c) for c in range(0x21, 0x7F)]
    rstore.put_records("o", {f"k{ch}": b"" for ch in reversed(chars)})
    assert _keys(rstore.scan_records("o", "k")) == [f"k{ch}" for ch in chars]
    assert _keys(rstore.scan_records("o", "k", reverse=True, limit=3)) == ["k~", "k}", "k|"]


def test_values_round_trip_exactly(rstore: Store) -> None:
    big = os.urandom(700_000)  # larger than one DynamoDB item
    every = bytes(range(256)) * 4
    rstore.put_records("s", {"big": big, "every": every, "empty": b""})
    assert rstore.get_records("s", ["big", "every", "empty"]) == {
        "big": big, "every": every, "empty": b""}
    assert rstore.scan_records("s") == [("big", big), ("empty", b""), ("every", every)]
    rstore.put_records("s", {"big": b"small now"})
    assert rstore.get_records("s", ["big"]) == {"big": b"small now"}


def test_records_do_not_touch_messages_or_listing(rstore: Store) -> None:
    rstore.put_records("only-records", {"k": b"v"})
    assert "only-records" not in rstore.list_sessions()
    assert rstore.session_info("only-records") is None
    assert rstore.get_messages("only-records") == []
    rstore.append("both", [HumanMessage("q", id="q1"), AIMessage("a", id="a1")])
    rstore.put_records("both", {"k": b"v"})
    rstore.delete_records("both")
    assert [m.content for m in rstore.get_messages("both")] == ["q", "a"]
    info = rstore.session_info("both")
    assert info is not None and info.message_count == 2


def test_delete_session_deletes_records(rstore: Store) -> None:
    rstore.append("both", [HumanMessage("q", id="q1")])
    rstore.put_records("both", {"k": b"v", "l": b"w"})
    rstore.put_records("only-records", {"k": b"v"})
    assert rstore.delete_session("both") is True
    assert rstore.scan_records("both") == []
    assert rstore.delete_session("only-records") is True
    assert rstore.get_records("only-records", ["k"]) == {}
    assert rstore.delete_session("only-records") is False


def test_records_expire_with_the_session(backend: BackendSpec) -> None:
    store = backend.open(ttl=backend.short_ttl)
    forever = backend.open() if not backend.separate_opens else store
    store.append("s", [HumanMessage("q", id="q1")])
    store.put_records("s", {"old": b"1"})
    time.sleep(backend.short_ttl * 0.6)
    store.put_records("s", {"new": b"2"})  # refreshes every record of the session
    time.sleep(backend.short_ttl * 0.6)
    assert store.get_records("s", ["old", "new"]) == {"old": b"1", "new": b"2"}
    forever.put_records("kept", {"k": b"v"}, ttl=None) if forever is not store else None
    store.put_records("gone", {"k": b"v"})
    store.expire("gone", backend.short_ttl / 3)
    time.sleep(backend.short_ttl + 0.3)
    assert store.get_records("s", ["old", "new"]) == {}
    assert store.scan_records("s") == []
    assert store.scan_records("gone") == []
    store.purge_expired()
    if forever is not store:
        assert forever.get_records("kept", ["k"]) == {"k": b"v"}
    # written again after expiry: a fresh, empty record space
    store.put_records("s", {"third": b"3"})
    assert _keys(store.scan_records("s")) == ["third"]


def test_expire_none_keeps_records(rstore: Store) -> None:
    rstore.put_records("s", {"k": b"v"}, ttl=60)
    rstore.expire("s", None)
    assert rstore.get_records("s", ["k"]) == {"k": b"v"}


@pytest.mark.parametrize("bad", ["", "has space", "tab\there", "é", "\x00", "x" * (
    MAX_RECORD_KEY_LENGTH + 1), 5, None, b"bytes"])
def test_bad_keys_refused(rstore: Store, bad: Any) -> None:
    with pytest.raises(InputError):
        rstore.put_records("s", {bad: b"v"})
    with pytest.raises(InputError):
        rstore.get_records("s", [bad])
    with pytest.raises(InputError):
        rstore.delete_records("s", [bad])
    assert rstore.scan_records("s") == []


def test_bad_values_and_batches_refused(backend: BackendSpec) -> None:
    store = backend.open(max_message_bytes=1000)
    with pytest.raises(InputError, match="max_message_bytes"):
        store.put_records("s", {"ok": b"v", "big": b"x" * 1001})
    with pytest.raises(InputError, match="bytes"):
        store.put_records("s", {"k": "text"})  # type: ignore[dict-item]
    with pytest.raises(InputError, match="both written and deleted"):
        store.put_records("s", {"k": b"v"}, delete=["k"])
    with pytest.raises(InputError):
        store.get_records("s", "k")  # a str is not a collection of keys
    with pytest.raises(InputError):
        store.scan_records("s", limit=0)
    with pytest.raises(InputError):
        store.put_records("", {"k": b"v"})
    assert store.scan_records("s") == []  # nothing of a refused batch was stored


def test_max_key_length_and_escaped_parts(rstore: Store) -> None:
    long = "k" * MAX_RECORD_KEY_LENGTH
    hostile = escape_key_part("ns/with space|é'\";--%")
    rstore.put_records("s", {long: b"1", f"c/{hostile}/1": b"2"})
    assert rstore.get_records("s", [long, f"c/{hostile}/1"]) == {
        long: b"1", f"c/{hostile}/1": b"2"}
    assert _keys(rstore.scan_records("s", f"c/{hostile}/")) == [f"c/{hostile}/1"]


def test_hostile_session_ids_keep_records_apart(rstore: Store) -> None:
    ids = ["a", "a%", "a_", "a'; DROP TABLE x; --", "a/b", "a:b", "é", "a" * 2000]
    for i, sid in enumerate(ids):
        rstore.put_records(sid, {"k": str(i).encode()})
    for i, sid in enumerate(ids):
        assert rstore.scan_records(sid) == [("k", str(i).encode())], sid


def test_concurrent_puts_to_one_session(rstore: Store) -> None:
    errors: list[BaseException] = []

    def writer(w: int) -> None:
        try:
            for i in range(15):
                rstore.put_records("s", {f"w{w}/{i:03d}": b"x", "shared": str(w).encode()})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    keys = _keys(rstore.scan_records("s"))
    assert len(keys) == 4 * 15 + 1 and "shared" in keys


def test_append_with_records(rstore: Store) -> None:
    rstore.append_with_records("s", [HumanMessage("q", id="q1")], {"k": b"v"})
    assert [m.content for m in rstore.get_messages("s")] == ["q"]
    assert rstore.get_records("s", ["k"]) == {"k": b"v"}
    # a retry stores the message once and the record's new value
    rstore.append_with_records("s", [HumanMessage("q", id="q1"), AIMessage("a", id="a1")],
                               {"k": b"v2"})
    assert [m.content for m in rstore.get_messages("s")] == ["q", "a"]
    assert rstore.get_records("s", ["k"]) == {"k": b"v2"}
    # refused records: the messages are not appended either
    with pytest.raises(InputError):
        rstore.append_with_records("s", [HumanMessage("x", id="x1")], {"bad key": b"v"})
    assert [m.content for m in rstore.get_messages("s")] == ["q", "a"]

    async def run() -> list[Any]:
        await rstore.aappend_with_records("t", [HumanMessage("q", id="q1")], {"k": b"a"})
        return [await rstore.aget_messages("t"), await rstore.aget_records("t", ["k"])]

    messages, records = asyncio.run(run())
    assert [m.content for m in messages] == ["q"] and records == {"k": b"a"}


def test_async_parity(rstore: Store) -> None:
    async def run() -> list[Any]:
        await rstore.aput_records("s", {"b": b"2", "a": b"1"}, delete=["z"])
        got = await rstore.aget_records("s", ["a", "b"])
        scanned = await rstore.ascan_records("s", reverse=True)
        await rstore.adelete_records("s", ["a"])
        after = await rstore.ascan_records("s", keys_only=True)
        await rstore.adelete_records("s", prefix="b")
        return [got, scanned, after, await rstore.ascan_records("s")]

    got, scanned, after, empty = asyncio.run(run())
    assert got == {"a": b"1", "b": b"2"}
    assert scanned == [("b", b"2"), ("a", b"1")]
    assert after == [("b", b"")]
    assert empty == []
