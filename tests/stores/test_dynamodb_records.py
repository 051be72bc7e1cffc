"""DynamoDB records specifics, against a real moto server (tests/stores/dynamo_server.py).

The records contract runs in test_records.py (backend id ``dynamodb``); here: the records
table and its layout, values stored in parts (written over, deleted, read while written
over), batches of several transactions, generations of an expired session, purging,
repeated requests and the table's name.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("boto3")

from threadline import ConfigurationError, HumanMessage, StoreError
from threadline.stores import open_store
from threadline.stores.dynamodb._record_items import PART_BYTES, key_range, part_key
from threadline.stores.dynamodb._store import DynamoDBStore

from .dynamo_server import moto_server


@pytest.fixture
def store() -> Iterator[DynamoDBStore]:
    opened = open_store(moto_server().url(f"t_{secrets.token_hex(5)}"))
    assert isinstance(opened, DynamoDBStore)
    try:
        yield opened
    finally:
        opened.destroy()
        opened.close()


def _raw(store: DynamoDBStore, session: str = "s") -> dict[str, dict[str, Any]]:
    """The records table's items of a session, by sort key."""
    table = store._record_table
    pages = table._pages("query", table._between(session, " ", "\x7f\x7f"))
    return {item["RecordKey"]["S"]: item for page in pages for item in page}


def _calls(store: DynamoDBStore) -> list[tuple[str, dict[str, Any]]]:
    """Every request the store's client sends from now on: (operation, parameters)."""
    seen: list[tuple[str, dict[str, Any]]] = []
    store.client().meta.events.register(
        "provide-client-params.dynamodb",
        lambda params, model, **_: seen.append((model.name, params)))
    return seen


def test_key_range_bounds() -> None:
    assert key_range("", None, None) == ("!", "\x7f")
    assert key_range("c/", "c/5", None) == ("c/5!", "c/\x7f")
    assert key_range("c/", None, "c/3") == ("c/", "c/3")
    assert key_range("c/", "c/3", "c/3!") is None
    assert key_range("b", "c", None) is None


def test_records_table_layout_and_ttl(store: DynamoDBStore) -> None:
    client = store.client()
    store.append("s", [HumanMessage("q")])
    assert store.get_records("s", ["k"]) == {}  # no records table yet: nothing, no error
    assert store.scan_records("s") == [] and store.delete_session("none") is False
    assert store._record_table.name not in client.list_tables()["TableNames"]
    store.put_records("s", {"k": b"v"}, ttl=60)
    name = f"{store.table}_records"
    assert store._record_table.name == name
    ttl = client.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expireAt"}
    items = _raw(store)
    assert sorted(items) == [" ", "k"]
    head, record = items[" "], items["k"]
    assert "expireAt" in head and record["Gen"] == head["Gen"]
    assert "expireAt" not in record and "ExpiresAt" not in record  # one write per TTL
    # the message table holds no record item
    messages = list(store._scan("attribute_exists(#pk)", "#pk, #seq", {}))
    assert len(messages) == 3  # the schema item, the session item, the message


def test_large_values_in_parts(store: DynamoDBStore) -> None:
    huge = os.urandom(store.max_message_bytes)  # 16 MiB: 44 items, several transactions
    calls = _calls(store)
    store.put_records("s", {"a": b"first", "huge": huge, "z": b"last"})
    assert sum(op == "TransactWriteItems" for op, _ in calls) > 4
    assert store.get_records("s", ["huge"]) == {"huge": huge}
    assert store.scan_records("s") == [("a", b"first"), ("huge", huge), ("z", b"last")]
    assert len(_raw(store)) == 1 + 3 + len(huge) // PART_BYTES
    # written over by a smaller value in parts: the old parts go
    medium = os.urandom(PART_BYTES * 2 + 1)
    store.put_records("s", {"huge": medium})
    assert store.get_records("s", ["huge"]) == {"huge": medium}
    assert len(_raw(store)) == 1 + 3 + 2
    # then by one item, deleted with others by prefix, and by key
    store.put_records("s", {"huge": b"small", "p/1": medium, "p/2": medium, "q": medium})
    assert len(_raw(store)) == 1 + 6 + 6
    store.delete_records("s", prefix="p/")
    store.delete_records("s", ["q"])
    assert sorted(_raw(store)) == [" ", "a", "huge", "z"]
    store.put_records("s", {"q": medium})
    store.put_records("s", {}, delete=["q"])
    assert sorted(_raw(store)) == [" ", "a", "huge", "z"]
    assert store.delete_session("s") is True
    assert _raw(store) == {}


def test_one_transaction_when_it_fits_several_in_order_otherwise(store: DynamoDBStore) -> None:
    calls = _calls(store)
    store.put_records("s", {f"k{i:03d}": b"v" for i in range(98)}, delete=["x"])
    writes = [params for op, params in calls if op == "TransactWriteItems"]
    assert len(writes) == 1 and len(writes[0]["TransactItems"]) == 100  # with the head
    calls.clear()
    store.put_records("s", {f"m{i:03d}": str(i).encode() for i in range(250)},
                      delete=["k000"])
    writes = [params for op, params in calls if op == "TransactWriteItems"]
    assert len(writes) == 3
    last = writes[-1]["TransactItems"]
    assert "Delete" in last[-1] and "Put" in last[-2]  # records first, then the deletes
    assert len(store.scan_records("s", "m")) == 250
    assert len(store.scan_records("s", "k")) == 97


def test_records_deleted_between_steps_are_written_again(store: DynamoDBStore) -> None:
    other = DynamoDBStore(store.url)
    sent: list[int] = []

    def delete_after_the_first_step(**_: Any) -> None:
        sent.append(1)
        if len(sent) == 1:
            other.delete_records("s")  # the head goes: the first step's records vanish

    store.client().meta.events.register("after-call.dynamodb.TransactWriteItems",
                                        delete_after_the_first_step)
    try:
        store.put_records("s", {f"k{i:03d}": b"v" for i in range(150)})
    finally:
        other.close()
    assert len(store.scan_records("s")) == 150 and len(sent) == 4  # 2 steps, then 2 again
    store.purge_expired()  # the first generation's records go
    assert len(_raw(store)) == 151


def test_a_small_scan_reads_a_page_not_the_session(store: DynamoDBStore) -> None:
    store.put_records("s", {f"c/{i:04d}": b"x" * 1000 for i in range(300)})
    calls = _calls(store)
    got = store.scan_records("s", "c/", before="c/0200", reverse=True, limit=2)
    assert [key for key, _ in got] == ["c/0199", "c/0198"]
    queries = [params for op, params in calls if op == "Query"]
    assert len(queries) == 1 and queries[0]["Limit"] == 3


def test_expired_generation_is_invisible_then_purged(store: DynamoDBStore) -> None:
    store.put_records("e", {"old/1": b"1", "old/2": os.urandom(PART_BYTES + 5)}, ttl=0.5)
    time.sleep(0.7)
    assert store.scan_records("e") == [] and store.get_records("e", ["old/1"]) == {}
    store.put_records("e", {"new": b"n"})  # a new generation: the old records stay unseen
    assert store.scan_records("e") == [("new", b"n")]
    assert store.get_records("e", ["old/1", "new"]) == {"new": b"n"}
    assert len(_raw(store, "e")) == 5  # the head, new, and the leftovers: old/1, old/2 + part
    store.purge_expired()
    assert sorted(_raw(store, "e")) == [" ", "new"]
    store.put_records("gone", {"k": b"v"}, ttl=0.5)
    time.sleep(0.7)
    store.purge_expired()
    assert _raw(store, "gone") == {}
    assert store.delete_session("gone") is False


def test_orphaned_parts_are_purged_when_old(store: DynamoDBStore) -> None:
    store.put_records("s", {"k": os.urandom(PART_BYTES + 1)})
    head = _raw(store)[" "]
    table = store._record_table
    for key, written in [(part_key("k", "crashed", 1), time.time() - 7200),
                         (part_key("k", "in-flight", 1), time.time())]:
        store.client().put_item(TableName=table.table, Item={
            **table.requests.record_key("s", key), "Gen": head["Gen"],
            "Value": {"B": b"x"}, "At": {"N": str(written)}})
    real = part_key("k", _raw(store)["k"]["Write"]["S"], 1)
    store.purge_expired()
    assert set(_raw(store)) == {" ", "k", real, part_key("k", "in-flight", 1)}
    assert len(store.get_records("s", ["k"])["k"]) == PART_BYTES + 1


def test_repeated_requests_store_once(store: DynamoDBStore) -> None:
    """moto runs a retried transaction again (DynamoDB would not): the write finds its
    own head and its own parts in place and keeps them."""
    table = store._record_table
    send = table._transact

    def twice(ops: list[dict[str, Any]], token: str) -> Any:
        send(ops, token)
        return send(ops, token)

    table._transact = twice  # type: ignore[method-assign]
    big = os.urandom(PART_BYTES + 10)
    store.put_records("r", {"big": big, "k": b"1"})
    store.put_records("r", {"big": big[::-1]}, delete=["k"])
    assert store.scan_records("r") == [("big", big[::-1])]
    assert len(_raw(store, "r")) == 3  # the head, big and its part


def test_a_value_written_over_while_read(store: DynamoDBStore) -> None:
    old, new = os.urandom(PART_BYTES + 1), os.urandom(PART_BYTES * 2)
    store.put_records("s", {"k": old})
    writer = DynamoDBStore(store.url)
    reads = []

    def write_over_once(**_: Any) -> None:
        reads.append(1)
        if len(reads) == 1:  # after the record was read, before its parts are
            writer.put_records("s", {"k": new})

    store.client().meta.events.register("after-call.dynamodb.BatchGetItem", write_over_once)
    try:
        assert store.get_records("s", ["k"]) == {"k": new}
    finally:
        writer.close()
    table = store._record_table
    read = table._batch_get

    def parts_never_found(pk: str, sort_keys: list[str]) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in read(pk, sort_keys).items() if not k.startswith("\x7f")}

    table._batch_get = parts_never_found  # type: ignore[method-assign]
    with pytest.raises(StoreError, match="kept changing"):
        store.get_records("s", ["k"])


def test_records_table_name() -> None:
    moto = moto_server()
    named = open_store(moto.url(f"t_{secrets.token_hex(5)}"),
                       records_table=f"r_{secrets.token_hex(5)}")
    long = open_store(moto.url("t" * 245 + secrets.token_hex(5)))
    try:
        named.put_records("s", {"k": b"v"})
        assert named.get_records("s", ["k"]) == {"k": b"v"}
        assert named._record_table.name in named.client().list_tables()["TableNames"]  # type: ignore[attr-defined]
        with pytest.raises(ConfigurationError, match="records_table"):
            long.put_records("s", {"k": b"v"})
        long.append("s", [HumanMessage("messages still work")])
        assert long.delete_session("s") is True
    finally:
        for opened in (named, long):
            opened.destroy()  # type: ignore[attr-defined]
            opened.close()
