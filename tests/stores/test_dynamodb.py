"""DynamoDB specifics, against a real moto server (tests/stores/dynamo_server.py).

The Store contract runs in test_contract.py (backend id ``dynamodb``); here: sessions far
beyond the 400 KB item limit, the LangChain layout import, connection failures, keys of
hostile or huge session ids, the LangChain-shaped class and a non-blocking event loop.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import secrets
import threading
import time
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("boto3")

from threadline import (
    AIMessage,
    BaseMessage,
    ConfigurationError,
    HumanMessage,
    InputError,
    StoreConnectionError,
)
from threadline.stores import open_store, shared_store
from threadline.stores._transfer import copy_sessions
from threadline.stores.compat._dynamodb import DynamoDBChatMessageHistory
from threadline.stores.dynamodb._items import META_SEQ, partition_key
from threadline.stores.dynamodb._store import DynamoDBStore

from .dynamo_server import KEY_ID, REGION, SECRET, MotoServer, moto_server
from .scenarios import langchain_drop_in_scenario


def _texts(messages: list[BaseMessage]) -> list[str]:
    return [m.text for m in messages]


@pytest.fixture
def store() -> Iterator[DynamoDBStore]:
    opened = open_store(moto_server().url(f"t_{secrets.token_hex(5)}"))
    assert isinstance(opened, DynamoDBStore)
    try:
        yield opened
    finally:
        opened.destroy()
        opened.close()


def _items(store: DynamoDBStore) -> list[dict[str, Any]]:
    return list(store._scan("attribute_exists(#pk)", "#pk, #seq", {}))


def test_session_far_larger_than_one_item(store: DynamoDBStore) -> None:
    big = "x" * 60_000
    turns = [[HumanMessage(f"{i}:{big}"), AIMessage(f"{i}:answer")] for i in range(20)]
    for turn in turns:  # ~1.2 MB: three times the 400 KB item limit
        store.append("big", turn)
    everything = store.get_messages("big")
    assert [m.text.split(":")[0] for m in everything] == [str(i // 2) for i in range(40)]
    assert everything[0].text == f"0:{big}"
    assert _texts(store.get_messages("big", last=2)) == [f"19:{big}", "19:answer"]
    info = store.session_info("big")
    assert info is not None and info.message_count == 40


def test_long_batches_are_chunked_in_order(store: DynamoDBStore) -> None:
    batch: list[BaseMessage] = [HumanMessage(f"m{i}") for i in range(250)]  # > 99 per tx
    store.append("long", batch)
    assert _texts(store.get_messages("long")) == [f"m{i}" for i in range(250)]
    assert _texts(store.get_messages("long", last=3)) == ["m247", "m248", "m249"]
    with pytest.raises(InputError, match="400 KB"):
        store.append("long", [HumanMessage("y" * 500_000)])
    assert len(store.get_messages("long")) == 250


def test_layout_and_ttl_setting(store: DynamoDBStore) -> None:
    store.append("s", [HumanMessage("a"), AIMessage("b")])
    client = store.client()
    ttl = client.describe_time_to_live(TableName=store.table)["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expireAt"}
    seqs = sorted(int(item["Seq"]["N"]) for item in _items(store)
                  if item["SessionId"]["S"] == "s")
    assert len(seqs) == 3 and seqs[-1] == META_SEQ and seqs[1] == seqs[0] + 1
    store.setup()  # idempotent


def test_writers_with_stale_views_never_collide(store: DynamoDBStore) -> None:
    other = DynamoDBStore(store.url)
    try:
        store.append("s", [HumanMessage("1")])
        other.append("s", [HumanMessage("2")])  # other has not seen the session
        store.append("s", [HumanMessage("3")])  # store's view (count 1) is stale
        other.append("s", [HumanMessage("4")])
        assert _texts(store.get_messages("s")) == ["1", "2", "3", "4"]
        assert _texts(other.get_messages("s", last=1)) == ["4"]
    finally:
        other.close()


def test_expired_session_restarts_and_leftovers_are_purged(store: DynamoDBStore) -> None:
    store.append("e", [HumanMessage("old1"), HumanMessage("old2"), HumanMessage("old3")],
                 ttl=0.5)
    time.sleep(0.7)
    assert store.get_messages("e") == []
    store.append("e", [HumanMessage("new")])  # replaces the expired session item
    assert _texts(store.get_messages("e")) == ["new"]
    assert _texts(store.get_messages("e", last=5)) == ["new"]
    assert len([i for i in _items(store) if i["SessionId"]["S"] == "e"]) == 5
    assert store.purge_expired() == 0  # nothing expired now, but the leftovers go
    assert len([i for i in _items(store) if i["SessionId"]["S"] == "e"]) == 2
    assert _texts(store.get_messages("e")) == ["new"]


class _LostAnswers(DynamoDBStore):
    """Sends every transaction twice, as botocore does when an answer is lost after the
    request landed (moto, unlike DynamoDB, ignores the ClientRequestToken)."""

    def _transact(self, ops: list[dict[str, Any]], request_token: str) -> Any:
        super()._transact(ops, request_token)
        return super()._transact(ops, request_token)


def test_a_repeated_write_is_recognised_not_duplicated(store: DynamoDBStore) -> None:
    repeating = _LostAnswers(store.url)
    try:
        repeating.append("r", [HumanMessage("q1"), AIMessage("a1")])  # creates the session
        repeating.append("r", [HumanMessage("q2"), AIMessage("a2")])
        store.append("r", [HumanMessage("other writer")])
        repeating.append("r", [HumanMessage("q3")])
        assert _texts(store.get_messages("r")) == ["q1", "a1", "q2", "a2", "other writer",
                                                   "q3"]
        info = store.session_info("r")
        assert info is not None and info.message_count == 6
    finally:
        repeating.close()


@pytest.mark.parametrize("sid", ["#schema", "#h:abc", "#", "é" * 600, "z" * 16_000])
def test_reserved_and_huge_session_ids(store: DynamoDBStore, sid: str) -> None:
    key = partition_key(sid)
    assert key != sid and key.startswith("#h:") and len(key) == 3 + 64
    store.append(sid, [HumanMessage("hello")])
    store.append(key, [HumanMessage("the hash itself")])  # another session entirely
    assert _texts(store.get_messages(sid)) == ["hello"]
    assert _texts(store.get_messages(key)) == ["the hash itself"]
    assert sorted(store.iter_sessions()) == sorted([sid, key])
    assert store.delete_session(sid) is True
    assert _texts(store.get_messages(key)) == ["the hash itself"]
    store.setup()  # the schema item is untouched by a session named "#schema"


def test_table_names() -> None:
    url = "dynamodb://k:s@{}?region=us-east-1&endpoint_url=http://127.0.0.1:1"
    for bad in ["ab", "sp ace", 'quo"te', "x; DROP TABLE y", "é" * 5, "a" * 256]:
        with pytest.raises((InputError, ConfigurationError)):
            open_store("dynamodb://k:s@x?region=us-east-1", table=bad)
    assert open_store(url.format("bad-name.1_x")).table == "bad-name.1_x"  # type: ignore[attr-defined]
    assert open_store("dynamodb:///MixedCase?region=us-east-1").table == "MixedCase"  # type: ignore[attr-defined]
    with pytest.raises(ConfigurationError, match="names its table"):
        open_store("dynamodb://?region=us-east-1")


def test_server_down_fails_fast_and_never_shows_the_secret() -> None:
    server = MotoServer().start()
    url = server.url("t_down", connect_timeout="1", max_attempts="2").replace(
        f"{KEY_ID}:{SECRET}@", "AKID:s3cr3t-pw@")
    store = open_store(url)
    try:
        store.append("s", [HumanMessage("before")])
        server.stop()
        started = time.monotonic()
        with pytest.raises(StoreConnectionError) as info:
            store.get_messages("s")
        assert time.monotonic() - started < 10
        assert "s3cr3t-pw" not in str(info.value) and "s3cr3t-pw" not in repr(store)
        with pytest.raises(StoreConnectionError):
            store.append("s", [HumanMessage("after")])
    finally:
        server.stop()
        store.close()


def test_langchain_table_is_imported() -> None:
    lc = pytest.importorskip("langchain_community.chat_message_histories")
    from langchain_core.messages import AIMessage as LcAI
    from langchain_core.messages import HumanMessage as LcHuman

    moto = moto_server()
    table = f"lc_{secrets.token_hex(5)}"
    store = open_store(moto.url(f"t_{secrets.token_hex(5)}"))
    import boto3

    session = boto3.session.Session(aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET,
                                    region_name=REGION)
    session.client("dynamodb", endpoint_url=moto.endpoint).create_table(
        TableName=table, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "SessionId", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "SessionId", "AttributeType": "S"}])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for sid in ("u1/c1", "u2"):
                history = lc.DynamoDBChatMessageHistory(
                    table_name=table, session_id=sid, endpoint_url=moto.endpoint,
                    boto3_session=session, coerce_float_to_decimal=True)
                history.add_messages([LcHuman(f"{sid} hi"), LcAI(
                    f"{sid} hello", response_metadata={"score": 0.5, "n": 3})])
                history.add_messages([LcHuman(f"{sid} again")])

        old = DynamoDBStore.langchain_source(table, region=REGION,
                                             endpoint_url=moto.endpoint,
                                             boto3_session=session)
        assert list(old.iter_sessions()) == ["u1/c1", "u2"]
        report = copy_sessions(old, store)
        assert report.messages == 6 and report.copied == 2
        got = store.get_messages("u1/c1")
        assert _texts(got) == ["u1/c1 hi", "u1/c1 hello", "u1/c1 again"]
        assert got[1].response_metadata == {"score": 0.5, "n": 3}
        assert copy_sessions(old, store).messages == 0  # idempotent
        with pytest.raises(ConfigurationError, match="langchain_source"):
            open_store(moto.url(table)).get_messages("u2")
    finally:
        store.destroy()  # type: ignore[attr-defined]
        session.client("dynamodb", endpoint_url=moto.endpoint).delete_table(TableName=table)


def test_langchain_shaped_class_shares_one_store() -> None:
    moto = moto_server()
    table = f"t_{secrets.token_hex(5)}"
    import boto3

    session = boto3.session.Session(aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET)
    first = DynamoDBChatMessageHistory(table, "s1", endpoint_url=moto.endpoint,
                                       boto3_session=session, region=REGION)
    try:
        first.add_messages([HumanMessage(f"m{i}") for i in range(5)])
        turn = DynamoDBChatMessageHistory(table, "s1", endpoint_url=moto.endpoint,
                                          boto3_session=session, region=REGION,
                                          history_size=2)
        assert turn.store is first.store
        assert _texts(turn.messages) == ["m3", "m4"]
        assert _texts(first.messages) == [f"m{i}" for i in range(5)]
        keyed = DynamoDBChatMessageHistory(table, "ignored", endpoint_url=moto.endpoint,
                                           key={"UserId": "u/1", "SessionId": "c1"},
                                           boto3_session=session, region=REGION, ttl=60)
        keyed.add_user_message("hi")
        assert keyed.session_id == "u%2F1/c1"
        info = keyed.store.session_info("u%2F1/c1")
        assert info is not None and info.expires_at is not None
        with pytest.raises(InputError):
            DynamoDBChatMessageHistory(table, "s", kms_key_id="alias/x")
        first.clear()
        assert first.messages == []
        assert "s1" in repr(first)
    finally:
        store = first.store
        store.destroy()  # type: ignore[attr-defined]
    assert shared_store("dynamodb://", table=table, primary_key_name="SessionId",
                        ttl_attribute="expireAt", endpoint_url=moto.endpoint, region=REGION,
                        boto3_session=session) is store


def test_async_methods_do_not_block_the_event_loop(store: DynamoDBStore) -> None:
    # ~3 MB to read: long enough that a call (tens of ms) dwarfs the few ms the ticker
    # can wait for the GIL while the worker thread decodes, even on a loaded machine.
    payload = "p" * 150_000
    store.append("a", [HumanMessage(payload) for _ in range(20)])
    # Which thread sends each request, seen through botocore's own event hooks.
    senders: set[int] = set()
    store.client().meta.events.register(
        "before-send.dynamodb", lambda **_: senders.add(threading.get_ident()))

    async def main() -> tuple[float, float]:
        ticks: list[float] = []
        stop = asyncio.Event()

        async def ticker() -> None:
            while not stop.is_set():
                ticks.append(time.perf_counter())
                await asyncio.sleep(0.002)

        task = asyncio.create_task(ticker())
        await asyncio.sleep(0.01)
        durations: list[float] = []
        started = time.perf_counter()
        for _ in range(3):
            begin = time.perf_counter()
            assert len(await store.aget_messages("a")) == 20
            durations.append(time.perf_counter() - begin)
        await store.aappend("a", [AIMessage("x")])
        stop.set()
        await task
        during = [t for t in ticks if t >= started]
        gaps = [b - a for a, b in itertools.pairwise(during)]
        return min(durations), max(gaps)

    # A collection of the whole test session's garbage can pause any thread for longer
    # than a call; it is not what this test is about.
    gc.collect()
    gc.disable()
    try:
        shortest_call, worst_gap = asyncio.run(main())
    finally:
        gc.enable()
    assert senders and threading.get_ident() not in senders  # every request off the loop
    # A blocking call would stall the ticker for the whole call (a ~3 MB read).
    assert shortest_call > 0.015
    assert worst_gap < shortest_call / 2, (worst_gap, shortest_call)


def test_langchain_drop_in_inside_langchains_own_classes() -> None:
    # threadline.langchain's DynamoDBChatMessageHistory, in LangChain's
    # RunnableWithMessageHistory and ConversationBufferMemory.
    import boto3

    from threadline import langchain as bridge

    moto = moto_server()
    table = f"t_{secrets.token_hex(5)}"
    session = boto3.session.Session(aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET)

    def history(session_id: str) -> bridge.DynamoDBChatMessageHistory:
        return bridge.DynamoDBChatMessageHistory(table, session_id, endpoint_url=moto.endpoint,
                                                 boto3_session=session, region=REGION)

    try:
        langchain_drop_in_scenario(history)
    finally:
        history("s1").store.destroy()  # type: ignore[attr-defined]
