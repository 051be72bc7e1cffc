"""DynamoDB sessions as objects, against a real moto server (tests/stores/dynamo_server.py).

The sessions contract runs in test_sessions.py (backend id ``dynamodb``); here: where the
fields live on the session item, that listings and stats read the sparse listing indexes
(never the messages), that an older table gets its indexes and listing attributes once,
that a table without indexes answers the same through Scans, and how update_session
treats TTLs and expired sessions.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("boto3")

from threadline import AIMessage, HumanMessage, InputError
from threadline.stores import open_store
from threadline.stores._sessions import recent_cursor
from threadline.stores.dynamodb._items import META_SEQ, SCHEMA_PK, SCHEMA_VERSION
from threadline.stores.dynamodb._session_items import (
    OWNER_INDEX,
    PROJECTED,
    RECENT_INDEX,
    RECENT_SHARDS,
    rank,
    rank_micros,
)
from threadline.stores.dynamodb._store import DynamoDBStore

from .dynamo_server import moto_server

TICK = 0.03


def _open(table: str, **options: Any) -> DynamoDBStore:
    opened = open_store(moto_server().url(table), **options)
    assert isinstance(opened, DynamoDBStore)
    return opened


@pytest.fixture
def table() -> str:
    return f"t_{secrets.token_hex(5)}"


@pytest.fixture
def store(table: str) -> Iterator[DynamoDBStore]:
    opened = _open(table)
    try:
        yield opened
    finally:
        opened.destroy()
        opened.close()


def _turn(text: str) -> list[Any]:
    return [HumanMessage(text), AIMessage(f"re: {text}")]


def _meta(store: DynamoDBStore, pk: str) -> dict[str, Any]:
    found = store.client().get_item(TableName=store.table, Key=store._requests.key(pk, META_SEQ),
                                    ConsistentRead=True)
    item: dict[str, Any] = found["Item"]
    return item


class Calls:
    """The operations a store's client sends (and the index each Query names)."""

    def __init__(self, store: DynamoDBStore) -> None:
        self.seen: list[tuple[str, str | None]] = []
        store.client().meta.events.register("before-parameter-build.dynamodb", self._record)

    def _record(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        self.seen.append((model.name, params.get("IndexName")))

    def take(self) -> list[tuple[str, str | None]]:
        seen, self.seen = self.seen, []
        return seen


def test_fields_live_on_the_session_item(store: DynamoDBStore) -> None:
    store.append("s", _turn("hi"))
    before = _meta(store, "s")
    time.sleep(TICK)
    store.update_session("s", title="T", metadata={"k": "v", "empty": ""}, owner="u1")
    item = _meta(store, "s")
    assert item["Title"] == {"S": "T"} and item["Owner"] == {"S": "u1"}
    assert item["Meta"] == {"M": {"k": {"S": "v"}, "empty": {"S": ""}}}  # a map: filterable
    # Renaming is not activity: the time and the listing key stay.
    assert (item["UpdatedAt"], item["Rk"], item["Lst"]) == (
        before["UpdatedAt"], before["Rk"], before["Lst"])
    assert item["Rk"]["S"] == rank(rank_micros(float(item["UpdatedAt"]["N"])), "s")
    store.update_session("s", title=None, metadata=None, owner=None)
    item = _meta(store, "s")
    assert not {"Title", "Meta", "Owner"} & set(item)  # cleared: out of the owner index
    # Only session items carry the index keys: the indexes hold no message.
    for entry in store._scan("attribute_exists(#lst) OR attribute_exists(#own)", "#pk, #seq",
                             {}):
        assert int(entry["Seq"]["N"]) == META_SEQ


def test_new_table_has_both_indexes(store: DynamoDBStore) -> None:
    store.setup()
    table = store.client().describe_table(TableName=store.table)["Table"]
    indexes = {index["IndexName"]: index for index in table["GlobalSecondaryIndexes"]}
    assert set(indexes) == {RECENT_INDEX, OWNER_INDEX}
    for index in indexes.values():
        assert index["Projection"] == {"ProjectionType": "INCLUDE",
                                       "NonKeyAttributes": list(PROJECTED)}
    schema = store.client().get_item(TableName=store.table,
                                      Key=store._requests.key(SCHEMA_PK, 0))["Item"]
    assert schema["Version"] == {"N": str(SCHEMA_VERSION)}


def test_listings_and_stats_read_the_indexes_not_the_table(store: DynamoDBStore) -> None:
    for number in range(12):
        store.append(f"s{number:02d}", _turn(f"q{number}"))
        store.update_session(f"s{number:02d}", owner="u1" if number % 2 else "u2")
        time.sleep(0.002)
    shards = {_meta(store, f"s{number:02d}")["Lst"]["S"] for number in range(12)}
    assert len(shards) > 1  # spread over the shards, merged back in order
    calls = Calls(store)
    page = store.list_sessions(order="recent", limit=5)
    assert page.session_ids == [f"s{number:02d}" for number in range(11, 6, -1)]
    assert calls.take() == [("Query", RECENT_INDEX)] * RECENT_SHARDS
    page = store.list_sessions(order="recent", limit=5, cursor=page.next_cursor)
    assert page.session_ids == [f"s{number:02d}" for number in range(6, 1, -1)]
    calls.take()
    assert store.list_sessions(order="recent", owner="u1", limit=3).session_ids == [
        "s11", "s09", "s07"]
    assert calls.take() == [("Query", OWNER_INDEX)]
    assert store.list_sessions(owner="u2").session_ids == [f"s{n:02d}" for n in range(0, 12, 2)]
    assert calls.take() == [("Query", OWNER_INDEX)]
    assert store.stats()[:2] == (12, 24)
    assert set(calls.take()) == {("Query", RECENT_INDEX)}
    assert store.search("q3") and ("Scan", None) not in calls.take()


def test_expired_sessions_are_not_listed(store: DynamoDBStore) -> None:
    store.append("gone", _turn("x"), ttl=1)
    store.update_session("gone", owner="u1")
    store.append("kept", _turn("y"))
    store.update_session("kept", owner="u1")
    time.sleep(1.2)
    assert store.list_sessions(order="recent").session_ids == ["kept"]
    assert store.list_sessions(order="recent", owner="u1").session_ids == ["kept"]
    assert store.list_sessions(owner="u1").session_ids == ["kept"]
    assert store.stats()[:2] == (1, 2)


def _make_old(store: DynamoDBStore) -> None:
    """Turn the table into what threadline wrote before the listing indexes (layout 1)."""
    client = store.client()
    for index in (RECENT_INDEX, OWNER_INDEX):
        client.update_table(TableName=store.table,
                            GlobalSecondaryIndexUpdates=[{"Delete": {"IndexName": index}}])
    for item in store._scan("#seq = :meta", "#pk", {":meta": {"N": str(META_SEQ)}}):
        client.update_item(TableName=store.table, Key=store._requests.key(
            item[store.pk_name]["S"], META_SEQ), UpdateExpression="REMOVE Lst, Rk")
    client.put_item(TableName=store.table, Item={**store._requests.key(SCHEMA_PK, 0),
                                                 "Version": {"N": "1"}})


def test_an_older_table_gets_its_indexes_once(store: DynamoDBStore) -> None:
    for sid in ["a", "b", "c"]:
        store.append(sid, _turn(sid))
        time.sleep(TICK)
    store.append("a", _turn("again"))
    _make_old(store)
    table = store.client().describe_table(TableName=store.table)["Table"]
    assert not table.get("GlobalSecondaryIndexes")
    upgraded = DynamoDBStore(store.url)
    try:
        calls = Calls(upgraded)
        assert upgraded.list_sessions(order="recent").session_ids == ["a", "c", "b"]
        assert [name for name, _ in calls.take()].count("UpdateTable") == 2
        table = upgraded.client().describe_table(TableName=store.table)["Table"]
        assert {i["IndexName"] for i in table["GlobalSecondaryIndexes"]} == {
            RECENT_INDEX, OWNER_INDEX}
        assert _meta(store, "a")["Rk"]["S"] == rank(
            rank_micros(float(_meta(store, "a")["UpdatedAt"]["N"])), "a")
        upgraded.setup()  # idempotent: nothing more to add or migrate
        assert "UpdateTable" not in [name for name, _ in calls.take()]
    finally:
        upgraded.close()


def test_without_indexes_scans_answer_the_same(store: DynamoDBStore) -> None:
    layout = {"u1/a": ("u1", {"kind": "chat"}), "u1/b": ("u1", {"kind": "agent"}),
              "u2/a": ("u2", {"kind": "chat"}), "x/c": (None, {"kind": "chat"})}
    for sid, (owner, metadata) in layout.items():
        store.append(sid, _turn(sid))
        store.update_session(sid, owner=owner, metadata=metadata)
        time.sleep(TICK)
    indexed = [store.list_sessions(order=order, **query).session_ids
               for order in ("id", "recent")
               for query in [{}, {"owner": "u1"}, {"metadata": {"kind": "chat"}},
                             {"prefix": "u1/"}, {"owner": "u2", "metadata": {"kind": "x"}}]]
    _make_old(store)
    plain = _open(store.table, manage_indexes=False)
    try:
        calls = Calls(plain)
        scanned = [plain.list_sessions(order=order, **query).session_ids
                   for order in ("id", "recent")
                   for query in [{}, {"owner": "u1"}, {"metadata": {"kind": "chat"}},
                                 {"prefix": "u1/"}, {"owner": "u2", "metadata": {"kind": "x"}}]]
        assert scanned == indexed
        sent = {name for name, _ in calls.take()}
        assert "UpdateTable" not in sent and "Query" not in sent
        first = plain.list_sessions(order="recent", limit=3)
        rest = plain.list_sessions(order="recent", limit=3, cursor=first.next_cursor)
        assert first.session_ids + rest.session_ids == ["x/c", "u2/a", "u1/b", "u1/a"]
        assert plain.stats()[:2] == (4, 8)
    finally:
        plain.close()


def test_update_session_with_a_store_ttl(table: str) -> None:
    plain = _open(table)
    timed = _open(table, ttl=60)
    try:
        plain.append("old", _turn("x"))
        timed.update_session("old", title="renamed")  # an existing session keeps no-expiry
        info = timed.session_info("old")
        assert info is not None and info.expires_at is None and info.message_count == 2
        timed.update_session("new", title="fresh")  # a new one gets the store's TTL
        info = timed.session_info("new")
        assert info is not None and info.expires_at is not None and info.message_count == 0
        assert "new" in timed.list_sessions(order="recent")
        # One request in the usual cases: a put for a session this store has not seen,
        # an update for one it has; without a TTL always one update.
        timed_calls, plain_calls = Calls(timed), Calls(plain)
        timed.update_session("newer", title="x")
        timed.update_session("newer", title="y")
        assert [name for name, _ in timed_calls.take()] == ["PutItem", "UpdateItem"]
        plain.update_session("newest", title="x")
        plain.update_session("newest", title="y")
        assert [name for name, _ in plain_calls.take()] == ["UpdateItem", "UpdateItem"]
        timed.update_session("newest", title="z")  # exists, not seen: put refused, update
        assert [name for name, _ in timed_calls.take()] == ["PutItem", "UpdateItem"]
        info = timed.session_info("newest")
        assert info is not None and info.expires_at is None and info.title == "z"
    finally:
        plain.destroy()
        plain.close()
        timed.close()


def test_an_expired_session_is_replaced_not_renamed(store: DynamoDBStore) -> None:
    store.append("s", _turn("x"), ttl=1)
    store.update_session("s", title="old title", metadata={"a": "b"})
    time.sleep(1.2)
    store.update_session("s", owner="u1")
    info = store.session_info("s")
    assert info is not None
    assert (info.title, dict(info.metadata), info.owner, info.message_count) == (
        None, {}, "u1", 0)
    assert store.get_messages("s") == []
    store.append("s", _turn("y"))
    assert [m.text for m in store.get_messages("s")] == ["y", "re: y"]


def test_cursors_of_other_stores_are_refused(store: DynamoDBStore) -> None:
    store.append("s", _turn("x"))
    for cursor in [recent_cursor(1.5, "s"), recent_cursor("2024", "s"),
                   recent_cursor(-1, "s"), recent_cursor(10**17, "s"),
                   recent_cursor(5, "")]:
        with pytest.raises(InputError):
            store.list_sessions(order="recent", cursor=cursor)


def test_hostile_metadata_keys_are_placeholders(store: DynamoDBStore) -> None:
    keys = ["#md", ":m0", "a.b[0]", "Meta.k", "#m0 OR 1=1", "size(Meta)"]
    store.append("s", _turn("x"))
    store.update_session("s", metadata=dict.fromkeys(keys, "v"))
    store.append("t", _turn("y"))
    store.update_session("t", metadata={"k": "v"})
    for key in keys:
        for order in ("id", "recent"):
            assert store.list_sessions(order=order, metadata={key: "v"}).session_ids == ["s"]
    assert store.list_sessions(metadata={"Meta.k": "v", "k": "v"}).session_ids == []


def test_hashed_and_reserved_ids_page_in_the_recent_order(store: DynamoDBStore) -> None:
    ids = ["#reserved", "é" * 600, "plain", "z" * 5000]  # the long ones are hashed keys
    for sid in ids:
        store.append(sid, _turn("x"))
        store.update_session(sid, owner="u1", metadata={"k": "v"})
        time.sleep(TICK)
    for query in [{}, {"owner": "u1"}, {"metadata": {"k": "v"}}]:
        walked, cursor = [], None
        while True:
            page = store.list_sessions(order="recent", limit=1, cursor=cursor, **query)
            walked += page.session_ids
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert walked == ids[::-1]
    assert sorted(store.list_sessions(owner="u1")) == sorted(ids)
