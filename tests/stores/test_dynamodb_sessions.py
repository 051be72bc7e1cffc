"""DynamoDB sessions as objects, against a real moto server (tests/stores/dynamo_server.py).

The sessions contract runs in test_sessions.py (backend id ``dynamodb``); here: where the
fields live on the session item, that listings and stats read the sparse listing indexes
(never the messages), that an id-order page costs the same Queries and index entries at
any depth and store size (never a Scan), the prefix / cursor / long-id edge cases of the
id order against a plain ``sorted()``, that every write path keys the id indexes, that an
older table gets its indexes and listing attributes once, that a table without indexes
answers the same through Scans, and how update_session treats TTLs and expired sessions.
"""

from __future__ import annotations

import io
import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("boto3")

from threadline import AIMessage, HumanMessage, InputError
from threadline.stores import open_store
from threadline.stores._sessions import recent_cursor
from threadline.stores._transfer import export_sessions, import_sessions
from threadline.stores.dynamodb._items import META_SEQ, SCHEMA_PK, SCHEMA_VERSION, partition_key
from threadline.stores.dynamodb._session_items import (
    ID_INDEX,
    ID_KEY_CHARS,
    ID_PROJECTED,
    INDEX_KEYS,
    OWNER_ID_INDEX,
    OWNER_INDEX,
    PROJECTED,
    RECENT_INDEX,
    RECENT_SHARDS,
    id_key,
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


def test_new_table_has_the_listing_indexes(store: DynamoDBStore) -> None:
    store.setup()
    table = store.client().describe_table(TableName=store.table)["Table"]
    indexes = {index["IndexName"]: index for index in table["GlobalSecondaryIndexes"]}
    assert set(indexes) == {RECENT_INDEX, OWNER_INDEX, ID_INDEX, OWNER_ID_INDEX}
    for name, index in indexes.items():
        assert [k["AttributeName"] for k in index["KeySchema"]] == list(INDEX_KEYS[name])
        # The id indexes leave Count out: an append (no TTL) changes nothing they hold.
        projected = ID_PROJECTED if name in (ID_INDEX, OWNER_ID_INDEX) else PROJECTED
        assert index["Projection"] == {"ProjectionType": "INCLUDE",
                                       "NonKeyAttributes": list(projected)}
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
    assert calls.take() == [("Query", OWNER_ID_INDEX)]
    page = store.list_sessions(limit=5)
    assert page.session_ids == [f"s{n:02d}" for n in range(5)] and page.next_cursor == "s04"
    assert calls.take() == [("Query", ID_INDEX)] * RECENT_SHARDS
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


def _make_old(store: DynamoDBStore, version: int = 1) -> None:
    """Turn the table into what threadline wrote before the listing indexes (layout 1),
    or before the id indexes (layout 2)."""
    client = store.client()
    dropped = list(INDEX_KEYS) if version == 1 else [ID_INDEX, OWNER_ID_INDEX]
    present = client.describe_table(TableName=store.table)["Table"].get(
        "GlobalSecondaryIndexes", [])
    for index in {index["IndexName"] for index in present} & set(dropped):
        client.update_table(TableName=store.table,
                            GlobalSecondaryIndexUpdates=[{"Delete": {"IndexName": index}}])
    removed = "REMOVE Lst, Rk, Ik" if version == 1 else "REMOVE Ik"
    for item in store._scan("#seq = :meta", "#pk", {":meta": {"N": str(META_SEQ)}}):
        client.update_item(TableName=store.table, Key=store._requests.key(
            item[store.pk_name]["S"], META_SEQ), UpdateExpression=removed)
    client.put_item(TableName=store.table, Item={**store._requests.key(SCHEMA_PK, 0),
                                                 "Version": {"N": str(version)}})


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
        assert [name for name, _ in calls.take()].count("UpdateTable") == len(INDEX_KEYS)
        table = upgraded.client().describe_table(TableName=store.table)["Table"]
        assert {i["IndexName"] for i in table["GlobalSecondaryIndexes"]} == set(INDEX_KEYS)
        assert _meta(store, "a")["Rk"]["S"] == rank(
            rank_micros(float(_meta(store, "a")["UpdatedAt"]["N"])), "a")
        assert _meta(store, "a")["Ik"] == {"S": "a"}
        calls.take()
        assert upgraded.list_sessions().session_ids == ["a", "b", "c"]
        assert calls.take() == [("Query", ID_INDEX)] * RECENT_SHARDS
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
    queries: list[dict[str, Any]] = [
        {}, {"owner": "u1"}, {"metadata": {"kind": "chat"}}, {"prefix": "u1/"},
        {"owner": "u2", "metadata": {"kind": "x"}}]
    indexed = [store.list_sessions(order=order, **query).session_ids
               for order in ("id", "recent") for query in queries]
    _make_old(store)
    plain = _open(store.table, manage_indexes=False)
    try:
        calls = Calls(plain)
        scanned = [plain.list_sessions(order=order, **query).session_ids
                   for order in ("id", "recent") for query in queries]
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
    queries: list[dict[str, Any]] = [{}, {"owner": "u1"}, {"metadata": {"k": "v"}}]
    for query in queries:
        walked, cursor = [], None
        while True:
            page = store.list_sessions(order="recent", limit=1, cursor=cursor, **query)
            walked += page.session_ids
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert walked == ids[::-1]
    assert sorted(store.list_sessions(owner="u1")) == sorted(ids)


# -- the id order ------------------------------------------------------------------------


class Reads:
    """The operations a store's client sends, and the entries its Queries and Scans read
    (``ScannedCount``: what DynamoDB bills, before filters)."""

    def __init__(self, store: DynamoDBStore) -> None:
        self.operations: list[str] = []
        self.scanned = 0
        events = store.client().meta.events
        events.register("before-parameter-build.dynamodb", self._sent)
        events.register("after-call.dynamodb", self._answered)

    def _sent(self, model: Any, **_: Any) -> None:
        self.operations.append(model.name)

    def _answered(self, model: Any, parsed: dict[str, Any], **_: Any) -> None:
        if model.name in ("Query", "Scan"):
            self.scanned += int(parsed.get("ScannedCount", 0))

    def take(self) -> tuple[list[str], int]:
        taken = self.operations, self.scanned
        self.operations, self.scanned = [], 0
        return taken


def _seed(store: DynamoDBStore, numbers: range) -> None:
    """Sessions ``a/000000``, ``b/000001``, ... (owner ``u<n % 3>``), each the session
    item ``update_session`` would write, put 25 a request: a big table in seconds."""
    store.setup()
    now = time.time()
    items = [store._sessions._new_item(sid, sid, {"owner": f"u{n % 3}"}, now)
             for n in numbers for sid in [f"{'ab'[n % 2]}/{n:06d}"]]
    for start in range(0, len(items), 25):
        store.client().batch_write_item(RequestItems={store.table: [
            {"PutRequest": {"Item": item}} for item in items[start:start + 25]]})


def test_an_id_page_costs_the_same_at_any_depth_and_size(store: DynamoDBStore) -> None:
    limit = 20
    reads = Reads(store)
    costs: dict[tuple[int, str, bool], int] = {}
    for size in (200, 2000):
        _seed(store, range(200 if costs else 0, size))
        ids = sorted(f"{'ab'[n % 2]}/{n:06d}" for n in range(size))
        by_b = [sid for sid in ids if sid.startswith("b/")]
        owned = [sid for sid in ids if int(sid[2:]) % 3 == 1]
        owned_a = [sid for sid in owned if sid.startswith("a/")]
        cases: list[tuple[str, dict[str, Any], list[str], int]] = [
            ("all", {}, ids, RECENT_SHARDS),
            ("prefix", {"prefix": "b/"}, by_b, RECENT_SHARDS),
            ("owner", {"owner": "u1"}, owned, 1),
            ("owner+prefix", {"owner": "u1", "prefix": "a/"}, owned_a, 1),
        ]
        for name, query, matching, queries in cases:
            # The first page, and a deep one (3/4 of the way) reached by its cursor.
            for cursor in [None, matching[len(matching) * 3 // 4]]:
                expected = [sid for sid in matching if cursor is None or sid > cursor]
                reads.take()
                page = store.list_sessions(limit=limit, cursor=cursor, **query)
                assert page.session_ids == expected[:limit], (name, cursor)
                assert page.next_cursor == (
                    expected[limit - 1] if len(expected) > limit else None), (name, cursor)
                operations, scanned = reads.take()
                assert operations == ["Query"] * queries, (name, cursor)  # never a Scan
                # limit + 1 entries a shard at most (+ 1 where the condition includes
                # the cursor), whatever the page's depth and the store's size.
                assert min(limit, len(expected)) <= scanned <= queries * (limit + 2), (
                    name, cursor, scanned)
                costs[size, name, cursor is None] = scanned
    for name in ["all", "prefix", "owner", "owner+prefix"]:
        # The same at 200 and 2,000 sessions; at 2,000 a deep page (not near the end, so
        # every shard still has a page to give) reads what the first one does, + 1 a
        # Query where the cursor itself is read.
        assert costs[200, name, True] == costs[2000, name, True], name
        queries = 1 if name.startswith("owner") else RECENT_SHARDS
        assert 0 <= costs[2000, name, False] - costs[2000, name, True] <= queries, name


# Ids around the 256-code-point cut of Ik: runs sharing their first 256 characters (a
# tie of Ik, ordered by the full id), 2- and 4-byte characters at the cut, a hashed
# partition key, a reserved one, the characters next to the surrogates.
_LONG = "L" * (ID_KEY_CHARS - 1)
_EDGE_IDS = [
    "a", "a/b", "a/bc", "a/b\U0001f600", "b", "#reserved", "\ud7ff", "\ue000", "\U0010fffd",
    _LONG, _LONG + "a", _LONG + "b", _LONG + "bz", _LONG + "b" + "x" * 10, _LONG + "é",
    _LONG + "b\U0001f600", "L" * 300 + "q", "L" * 300, "é" * 300, "é" * 256 + "a",
    "é" * 255 + "a" * 2, "é" * (ID_KEY_CHARS - 1), "z" * 5000,
    # A tie whose members have hashed partition keys: the index holds them in no
    # useful order (here: by hash), the listing sorts them.
    *("L" * 300 + char * 800 for char in "pmon"),
]


def _walk(store: DynamoDBStore, limit: int, cursor: str | None, **query: Any) -> list[str]:
    walked: list[str] = []
    while True:
        page = store.list_sessions(limit=limit, cursor=cursor, **query)
        assert len(page) <= limit
        walked += page.session_ids
        if page.next_cursor is None:
            return walked
        assert page.next_cursor == page.session_ids[-1]
        cursor = page.next_cursor


def test_id_order_edge_cases_match_sorted(store: DynamoDBStore) -> None:
    for number, sid in enumerate(_EDGE_IDS):
        store.update_session(sid, owner="u1" if number % 2 else None)
    for sid in ["é" * 300, "z" * 5000]:  # Ik: the id cut to 256 code points (1024 bytes)
        assert _meta(store, partition_key(sid))["Ik"] == {"S": sid[:ID_KEY_CHARS]}
    owned = {sid for number, sid in enumerate(_EDGE_IDS) if number % 2}
    prefixes = ["", "a/", "a/b", _LONG + "b", "L" * 300, "L" * 257, "é", "é" * 256,
                "\U0001f600"]
    cursors = [None, "", "0", "a/b", "a/b\ud800", _LONG, "L" * 256, _LONG + "b",
               _LONG + "b\ud800", "L" * 300, "é" * 256, "é" * 300, "\U0010ffff"]
    calls = Calls(store)
    for owner in [None, "u1"]:
        for prefix in prefixes:
            for cursor in cursors:
                expected = sorted(sid for sid in _EDGE_IDS if sid.startswith(prefix)
                                  and (cursor is None or sid > cursor)
                                  and (owner is None or sid in owned))
                where = (owner, prefix, cursor)
                page = store.list_sessions(owner=owner, prefix=prefix, cursor=cursor, limit=3)
                assert page.session_ids == expected[:3], where
                assert page.next_cursor == (expected[2] if len(expected) > 3 else None), where
                if cursor in (None, _LONG):
                    assert _walk(store, 2, cursor, owner=owner, prefix=prefix) == expected
    assert {name for name, _ in calls.take()} == {"Query"}
    with pytest.raises(InputError, match="surrogate"):  # no id holds one: refused
        store.list_sessions(prefix="\ud800")
    assert calls.take() == []


def test_every_write_path_keys_the_id_index(table: str) -> None:
    plain = _open(table)
    timed = _open(table, ttl=60)
    try:
        plain.append("appended", _turn("x"))  # a new session item (transaction Put)
        plain.update_session("named", title="t")  # UpdateItem creating it
        timed.update_session("timed", title="t")  # PutItem of a store with a TTL
        plain.fork("appended", "forked")
        source = open_store("memory://")
        source.append("imported", _turn("y"))
        exported = io.StringIO()
        export_sessions(source, exported)
        exported.seek(0)
        import_sessions(plain, exported)
        plain.append("restarted", _turn("z"), ttl=1)
        plain.append("renamed", _turn("z"), ttl=1)
        time.sleep(1.2)
        plain.append("restarted", _turn("again"))  # an expired session item replaced
        plain.update_session("renamed", title="new")  # the same, by update_session
        # An item that lost its Ik (say, written by an older threadline) gets it back
        # from the next write to it, whichever path.
        for sid in ["appended", "named"]:
            plain.client().update_item(TableName=table, Key=plain._requests.key(
                sid, META_SEQ), UpdateExpression="REMOVE Ik")
        plain.append("appended", _turn("more"))
        timed.update_session("named", title="u")
        ids = ["appended", "forked", "imported", "named", "renamed", "restarted", "timed"]
        for sid in ids:
            assert _meta(plain, sid)["Ik"] == {"S": id_key(sid)}, sid
        calls = Calls(plain)
        assert plain.list_sessions().session_ids == ids
        assert calls.take() == [("Query", ID_INDEX)] * RECENT_SHARDS
    finally:
        plain.destroy()
        plain.close()
        timed.close()


def test_a_layout_2_table_gets_the_id_indexes(store: DynamoDBStore) -> None:
    for sid in ["c", "a", "b"]:
        store.append(sid, _turn(sid))
        store.update_session(sid, owner="u1")
    _make_old(store, version=2)
    old = _open(store.table, manage_indexes=False)  # without the id indexes: a Scan
    try:
        old.setup()
        calls = Calls(old)
        assert old.list_sessions().session_ids == ["a", "b", "c"]
        assert old.list_sessions(owner="u1", limit=2).session_ids == ["a", "b"]
        assert [name for name, _ in calls.take()] == ["Scan", "Query"]  # owner: recent index
        assert "Ik" in _meta(store, "a")  # ... but migration 3 ran
    finally:
        old.close()
    _make_old(store, version=2)
    upgraded = DynamoDBStore(store.url)
    try:
        calls = Calls(upgraded)
        assert upgraded.list_sessions(limit=2).session_ids == ["a", "b"]
        sent = calls.take()
        assert [name for name, _ in sent].count("UpdateTable") == 2
        assert sent[-RECENT_SHARDS:] == [("Query", ID_INDEX)] * RECENT_SHARDS
        assert upgraded.list_sessions(owner="u1", cursor="a").session_ids == ["b", "c"]
        assert calls.take() == [("Query", OWNER_ID_INDEX)]
        assert {_meta(store, sid)["Ik"]["S"] for sid in "abc"} == {"a", "b", "c"}
        schema = store.client().get_item(TableName=store.table,
                                          Key=store._requests.key(SCHEMA_PK, 0))["Item"]
        assert schema["Version"] == {"N": str(SCHEMA_VERSION)}
    finally:
        upgraded.close()
