"""Cosmos DB records: the documents, the production write path and the emulator specifics.

The records contract runs in test_records.py (``-k cosmos``). The production path
(conditional writes and patches inside transactional batches) cannot run on
@vercel/cosmosdb-server, whose batches take creates only: it is checked here on the
requests it produces (pure), and on the emulator through a driver that runs each batch
operation by operation.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest

from threadline import HumanMessage
from threadline.stores import open_store
from threadline.stores.cosmos._docs import partition_key
from threadline.stores.cosmos._ops import _OK, BatchFailure, _Batch, _Context, _Query, _Write
from threadline.stores.cosmos._record_docs import (
    ALL_SQL,
    EXISTING_SQL,
    ORPHAN_AGE,
    SEGMENT,
    join_value,
    part_bodies,
    record_body,
    record_id,
    scan_query,
    segments,
    ttl_seconds,
)
from threadline.stores.cosmos._record_ops import put_records_op
from threadline.stores.cosmos._store import CosmosStore

from .cosmos_server import shared_server

# -- pure: documents ----------------------------------------------------------------------------


def test_ids_are_valid_and_sort_below_messages() -> None:
    for key in ["a", "x/y\\z?q#f", "~" * 512]:
        rid = record_id(key)
        assert len(rid) == 65 and not set(rid) & set("/\\?#")
        assert rid < "-" < "0000000000000.0000000001"  # below id documents and messages
    assert record_id("a") != record_id("b")


@pytest.mark.parametrize("size", [0, 1, 5, SEGMENT * 3 // 4, SEGMENT * 3 // 4 + 1, 3_000_000])
def test_segments_join_back(size: int) -> None:
    value = os.urandom(size)
    first, *rest = segments(value)
    assert len(first) <= SEGMENT and all(0 < len(s) <= SEGMENT for s in rest)
    body = record_body("pk", "k", first, "v1" if rest else None, len(rest), None, 0.0)
    parts = {p["id"]: p["d"] for p in part_bodies("pk", "k", rest, "v1", None, 0.0)}
    assert join_value(body, parts) == value
    if rest:  # a part missing: the version was replaced meanwhile
        assert join_value(body, dict(list(parts.items())[1:])) is None


def test_ttl_seconds_outlive_the_deadline() -> None:
    assert ttl_seconds(None, 5.0) == -1
    assert ttl_seconds(10.5, 0.9) == 11  # _ts is 0: deleted at 11, after 10.5
    assert ttl_seconds(1.0, 5.0) == 2


def test_scan_query_uses_a_range_on_the_key() -> None:
    sql, params = scan_query("pk", "c/", "c/1", None, 3, True, True, 9.0)
    assert sql.startswith("SELECT TOP @k c.rk FROM c") and sql.endswith("ORDER BY c.rk DESC")
    assert "c.rk >= @lo AND c.rk < @hi" in sql and "c.rk > @after" in sql
    assert params["@hi"] == "c/\x7f" and params["@k"] == 3 and "@before" not in params
    sql, params = scan_query("pk", "", None, None, None, False, False, 9.0)
    assert "TOP" not in sql and "@lo" not in params and "c.v" in sql


# -- pure: the production write path ------------------------------------------------------------


def _start(records: dict[str, bytes], delete: list[str] = [],  # noqa: B006
           ttl: float | None = None) -> tuple[Any, Any]:
    op = put_records_op(_Context(emulator=False, ttl=None), "s", records, delete, ttl, None,
                        64 * 1024 * 1024)
    return op, next(op)


def test_production_put_is_one_conditional_batch() -> None:
    op, query = _start({"b": b"2", "a": b"1"}, ["z", "y", "z"])
    assert isinstance(query, _Query) and query.sql == EXISTING_SQL
    assert set(query.params["@ids"]) == {record_id(k) for k in "abzy"}
    old_z = {"id": record_id("z"), "_etag": "ez", "pv": "v0", "pn": 2}
    batch = op.send([{"id": record_id("a"), "_etag": "ea", "pv": None, "pn": 0}, old_z])
    assert isinstance(batch, _Batch) and batch.pk == partition_key("s")
    # Records in the given order, then the deletes of what exists; all conditional.
    assert [(o[0], o[1][0] if o[0] != "create" else o[1][0]["rk"]) for o in batch.ops] == [
        ("create", "b"), ("replace", record_id("a")), ("delete", record_id("z"))]
    assert batch.ops[1][2] == {"if_match_etag": "ea"}
    assert batch.ops[2][2] == {"if_match_etag": "ez"}
    assert batch.ops[0][1][0]["x"] is None and batch.ops[0][1][0]["ttl"] == -1
    garbage = op.send((200, []))  # then the parts of the version deleted
    assert isinstance(garbage, _Batch)
    assert [o[1][0] for o in garbage.ops] == [f"{record_id('z')}.v0.1", f"{record_id('z')}.v0.2"]
    with pytest.raises(StopIteration):
        op.send((200, []))


def test_production_put_retries_from_the_conflict() -> None:
    op, _ = _start({f"k{i:03d}": b"v" for i in range(150)})
    first = op.send([])
    assert isinstance(first, _Batch) and len(first.ops) == 100
    second = op.send((200, []))
    assert isinstance(second, _Batch) and len(second.ops) == 50
    # A concurrent writer created k120: the second batch failed whole; only it is redone.
    op.send((409, BatchFailure(20, [])))  # the backoff, then a fresh query
    query = op.send(None)
    assert isinstance(query, _Query) and len(query.params["@ids"]) == 50
    again = op.send([{"id": record_id("k120"), "_etag": "e", "pv": None, "pn": 0}])
    assert isinstance(again, _Batch) and len(again.ops) == 50
    assert again.ops[20][0] == "replace" and again.ops[19][0] == "create"
    with pytest.raises(StopIteration):
        op.send((200, []))


def test_production_put_with_ttl_refreshes_every_live_record_first() -> None:
    before = time.time()
    op, query = _start({"new": b"n", "big": b"x" * (SEGMENT + 10)}, ttl=60)
    assert isinstance(query, _Query) and query.sql == ALL_SQL
    refresh = op.send([
        {"id": record_id("old"), "t": "r", "r": None, "x": None},
        {"id": record_id("gone"), "t": "r", "r": None, "x": before - 1},  # expired: stays so
        {"id": record_id("big"), "t": "r", "r": None, "x": None},  # about to be replaced
        {"id": f"{record_id('big')}.v0.1", "t": "p", "r": record_id("big"), "x": None},
        {"id": f"{record_id('old2')}.v0.1", "t": "p", "r": record_id("old2"), "x": None},
    ])
    assert isinstance(refresh, _Batch)
    assert [o[0] for o in refresh.ops] == ["patch", "patch"]
    assert [o[1][0] for o in refresh.ops] == [record_id("old"), f"{record_id('old2')}.v0.1"]
    deadline = refresh.ops[0][1][1][0]["value"]
    assert before + 60 <= deadline <= time.time() + 60
    part = op.send((200, []))  # the long value's part, before any record points at it
    assert isinstance(part, _Write) and part.kind == "create" and part.body is not None
    assert part.body["t"] == "p" and part.body["x"] == deadline
    query = op.send((200, part.body))
    assert isinstance(query, _Query) and query.sql == EXISTING_SQL
    batch = op.send([])
    assert isinstance(batch, _Batch)
    assert [o[1][0]["x"] for o in batch.ops] == [deadline, deadline]
    assert batch.ops[1][1][0]["pn"] == 1 and batch.ops[1][1][0]["pv"] == part.body["pv"]


# -- on the emulator ------------------------------------------------------------------------------


@pytest.fixture
def store() -> Iterator[CosmosStore]:
    opened = open_store(shared_server().url("t_" + secrets.token_hex(5)))
    assert isinstance(opened, CosmosStore)
    try:
        yield opened
    finally:
        opened.destroy()
        opened.close()


def _docs(store: CosmosStore, sql: str) -> list[dict[str, Any]]:
    return list(store._sync_container().query_items(sql, enable_cross_partition_query=True))


def _batches_one_by_one(store: CosmosStore) -> list[_Batch]:
    """Run the production path on the emulator: each batch operation by operation (not
    atomic, which single-threaded tests never notice). Returns the batches sent."""
    store._ctx.emulator = False
    execute = store._execute_once
    sent: list[_Batch] = []

    def run(request: Any) -> Any:
        if not isinstance(request, _Batch):
            return execute(request)
        sent.append(request)
        results = []
        for index, (kind, args, *rest) in enumerate(request.ops):
            etag = rest[0].get("if_match_etag") if rest else None
            if kind == "create":
                write = _Write("create", request.pk, args[0]["id"], args[0])
            elif kind == "patch":
                write = _Write("patch", request.pk, args[0], etag=etag, patch=args[1])
            elif kind == "replace":
                write = _Write("replace", request.pk, args[0], args[1], etag)
            else:
                write = _Write("delete", request.pk, args[0], etag=etag)
            status, body = execute(write)
            if status not in _OK:
                return status, BatchFailure(index, [])
            results.append({"statusCode": status, "resourceBody": body})
        return 200, results

    store._execute_once = run  # type: ignore[method-assign]
    return sent


@pytest.mark.parametrize("production", [False, True])
def test_a_16_mib_value_is_stored_in_parts(store: CosmosStore, production: bool) -> None:
    sent = _batches_one_by_one(store) if production else []
    big = os.urandom(store.max_message_bytes)
    store.append("s", [HumanMessage("q")])
    store.put_records("s", {"big": big, "small": b"s"})
    parts = _docs(store, "SELECT c.id, c.d FROM c WHERE c.t = 'p'")
    assert len(parts) == len(segments(big)) - 1 == 14
    assert all(len(p["d"]) <= SEGMENT for p in parts)
    assert all(not set(d["id"]) & set("/\\?#") and len(d["id"]) <= 255
               for d in _docs(store, "SELECT c.id FROM c"))
    assert store.get_records("s", ["big"]) == {"big": big}
    assert store.scan_records("s") == [("big", big), ("small", b"s")]
    assert store.scan_records("s", keys_only=True) == [("big", b""), ("small", b"")]
    assert [m.text for m in store.get_messages("s")] == ["q"]
    # Replaced by a short value: the old version's parts are deleted.
    store.put_records("s", {"big": b"short"})
    assert _docs(store, "SELECT c.id FROM c WHERE c.t = 'p'") == []
    assert store.get_records("s", ["big"]) == {"big": b"short"}
    if production:
        assert sent and all(len(b.ops) <= 100 for b in sent)


def test_production_path_on_the_emulator(store: CosmosStore) -> None:
    sent = _batches_one_by_one(store)
    store.put_records("s", {f"k{i:03d}": b"v" for i in range(12)}, ttl=60)
    assert [len(b.ops) for b in sent] == [12]
    store.put_records("s", {"new": b"n"}, delete=["k000", "missing"], ttl=60)
    patched = [o for b in sent[1:] for o in b.ops if o[0] == "patch"]
    assert len(patched) == 11  # every other live record got the new deadline
    assert store.get_records("s", ["k000", "k001", "new"]) == {"k001": b"v", "new": b"n"}
    deadlines = {d["x"] for d in _docs(store, "SELECT c.x FROM c WHERE c.t = 'r'")}
    assert len(deadlines) == 1
    store.expire("s", None)
    assert {d["x"] for d in _docs(store, "SELECT c.x FROM c WHERE c.t = 'r'")} == {None}
    store.delete_records("s", prefix="k01")
    assert len(store.scan_records("s", keys_only=True)) == 10
    assert store.delete_session("s") is True
    assert _docs(store, "SELECT c.id FROM c WHERE c.t IN ('r', 'p')") == []


def test_expiry_reaches_the_parts_and_purge_removes_them(store: CosmosStore) -> None:
    big = os.urandom(2 * SEGMENT)
    store.put_records("s", {"big": big, "k": b"v"})
    store.put_records("kept", {"big": big})
    store.expire("s", 0.5)
    expiring = _docs(store, "SELECT c.t FROM c WHERE c.t IN ('r', 'p') AND NOT IS_NULL(c.x)")
    assert {d["t"] for d in expiring} == {"r", "p"}
    time.sleep(0.8)
    assert store.get_records("s", ["big", "k"]) == {}
    assert store.purge_expired() == 0  # sessions: it had records only
    assert store.scan_records("s") == []
    left = _docs(store, "SELECT c.pk FROM c WHERE c.t IN ('r', 'p')")
    assert {d["pk"] for d in left} == {partition_key("kept")}
    assert store.get_records("kept", ["big"]) == {"big": big}


def test_purge_removes_old_orphaned_parts_only(store: CosmosStore) -> None:
    big = os.urandom(2 * SEGMENT)
    store.put_records("s", {"big": big})
    container = store._sync_container()
    pk, old = partition_key("s"), time.time() - ORPHAN_AGE - 1
    rid = record_id("big")
    for part in _docs(store, "SELECT c.id FROM c WHERE c.t = 'p'"):  # old, but in use
        container.patch_item(part["id"], pk, [{"op": "set", "path": "/w", "value": old}])
    orphans = part_bodies(pk, "big", ["AAAA"], "dead", None, old)
    orphans += part_bodies(pk, "big", ["AAAA"], "young", None, time.time())
    for body in orphans:
        container.create_item(body)
    store.purge_expired()
    ids = {d["id"] for d in _docs(store, "SELECT c.id FROM c WHERE c.t = 'p'")}
    assert f"{rid}.dead.1" not in ids and f"{rid}.young.1" in ids
    assert store.get_records("s", ["big"]) == {"big": big}


def test_session_with_only_expired_records_is_not_deleted_twice(store: CosmosStore) -> None:
    store.put_records("s", {"k": b"v"}, ttl=0.3)
    time.sleep(0.5)
    assert store.delete_session("s") is False  # expired: nothing was there
    store.put_records("s", {"k": b"v"})
    assert store.delete_session("s") is True
    assert store.delete_session("s") is False


def test_async_deadlines(store: CosmosStore) -> None:
    async def run() -> list[Any]:
        await store.aput_records("s", {"a": b"1"}, ttl=60)
        await store.aput_records("s", {"b": b"2"}, ttl=0.5)  # patches a: 0.5 s as well
        await store.aexpire("s", 60)
        await asyncio.sleep(0.8)
        kept = await store.ascan_records("s")
        await store.aexpire("s", None)
        return [kept, await store.adelete_session("s"), await store.adelete_session("s")]

    assert asyncio.run(run()) == [[("a", b"1"), ("b", b"2")], True, False]
