"""Cosmos DB specifics; the Store contract runs in test_contract.py (id "cosmos").

The production append path (head replace with If-Match inside one transactional batch)
cannot run on @vercel/cosmosdb-server (its batches take creates only), so it is checked
here on the requests it produces (pure); everything else runs on the emulator.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import json
import time
from collections.abc import Sequence
from typing import Any

import pytest

from threadline import AIMessage, HumanMessage, StoreConnectionError
from threadline._errors import ConfigurationError, InputError
from threadline.stores import open_store, session_key
from threadline.stores.compat._cosmos import (
    CosmosDBChatMessageHistory,
    endpoint_url,
    parse_connection_string,
)
from threadline.stores.cosmos._docs import (
    HEAD_ID,
    SessionState,
    id_doc_id,
    partition_key,
    plan_append,
)
from threadline.stores.cosmos._ops import BatchFailure, _append_op, _Batch, _Context, _Query
from threadline.stores.cosmos._store import CosmosStore

from .cosmos_server import KEY, CosmosServer, shared_server
from .scenarios import langchain_drop_in_scenario

# -- pure: the production path ----------------------------------------------------------------


def test_plan_new_live_and_expired_sessions() -> None:
    now = 1_700_000_000.0
    new = plan_append(SessionState(), "s", ["m1", "m2"], now, None)
    assert new.head_op[0] == "create" and new.head["n"] == 2 and "ttl" not in new.head
    ids = [op[1][0]["id"] for op in new.message_ops]
    assert ids == sorted(ids) and all(i < HEAD_ID for i in ids)
    assert new.batch()[0] is new.head_op  # the head first: it is the transaction's lock

    head = {**new.head, "_etag": '"e1"'}
    live = plan_append(SessionState(head, 2), "s", ["m3"], now + 5, 60)
    assert live.head_op == ("replace", (HEAD_ID, live.head), {"if_match_etag": '"e1"'})
    assert live.head["n"] == 3 and live.head["c"] == now and live.head["e"] == new.epoch
    assert live.head["x"] == now + 65 and live.head["ttl"] == 60
    assert live.message_ops[0][1][0]["s"] == 3

    expired = {**live.head, "x": now + 1, "_etag": '"e2"'}
    again = plan_append(SessionState(expired, 3), "s", ["m4"], now + 10, None)
    assert again.epoch > new.epoch and again.head["n"] == 1 and again.head["x"] is None
    assert again.head_op[2] == {"if_match_etag": '"e2"'}
    assert again.message_ops[0][1][0]["id"] > ids[-1]  # a new incarnation sorts after


def _no_limit(texts: Sequence[str]) -> None:
    """An append's size check that accepts everything (the store's is tested elsewhere)."""


def _drive_production(texts: list[str], state_docs: list[dict[str, Any]]) -> list[Any]:
    ctx = _Context(emulator=False, ttl=None)
    op = _append_op(ctx, "s", [HumanMessage(t) for t in texts], None, _no_limit)
    requests = [next(op)]
    assert isinstance(requests[0], _Query)
    reply: Any = state_docs
    while True:
        try:
            request = op.send(reply)
        except StopIteration:
            return requests
        requests.append(request)
        assert isinstance(request, _Batch)
        reply = (200, [{"resourceBody": {**request.ops[0][1][-1], "_etag": '"x"'}}])


def test_production_append_is_one_batch_per_99_messages() -> None:
    requests = _drive_production([f"m{i}" for i in range(150)], [])
    batches = requests[1:]
    assert [len(b.ops) for b in batches] == [100, 52]
    assert all(b.pk == partition_key("s") for b in batches)
    assert batches[0].ops[0][0] == "create"
    assert batches[1].ops[0][0] == "replace"  # the cached head of the first transaction
    seqs = [op[1][0]["s"] for b in batches for op in b.ops[1:]]
    assert seqs == list(range(1, 151))


def _live_head(count: int) -> dict[str, Any]:
    plan = plan_append(SessionState(), "s", [f"m{i}" for i in range(count)], 1.7e9, None)
    return {**plan.head, "_etag": '"e1"'}


def _ops_of(batch: _Batch) -> list[tuple[str, str]]:
    """(kind, document type) of each operation: the head, id documents, messages."""
    return [(op[0], op[1][-1]["t"]) for op in batch.ops]


def test_production_append_leaves_out_known_ids() -> None:
    head = _live_head(2)
    op = _append_op(_Context(emulator=False, ttl=None), "s", [
        HumanMessage("q1", id="q1"), AIMessage("a1", id="a1"), HumanMessage("again", id="q1"),
        HumanMessage("no id")], None, _no_limit)
    assert isinstance(next(op), _Query)  # the head (nothing cached)
    batch = op.send([head])
    assert isinstance(batch, _Batch) and batch.lost_ok
    # The id repeated in the batch is written once; id documents after the head.
    assert _ops_of(batch) == [("replace", "h"), ("create", "k"), ("create", "k"),
                              ("create", "m"), ("create", "m"), ("create", "m")]
    assert batch.ops[1][1][0]["id"] == id_doc_id(head["e"], "q1")
    assert batch.ops[3][1][0]["s"] == 3 and batch.ops[0][1][1]["n"] == 5
    # q1 is known: its id document conflicts, the batch fails whole; one query says which.
    query = op.send((409, BatchFailure(1, [])))
    assert isinstance(query, _Query) and "ARRAY_CONTAINS" in query.sql
    again = op.send([{"id": id_doc_id(head["e"], "q1")}])
    assert isinstance(again, _Batch)
    assert [json.loads(o[1][0]["m"])["data"]["content"] for o in again.ops[2:]] == [
        "a1", "no id"]
    assert again.ops[0][1][1]["n"] == 4 and again.ops[2][1][0]["s"] == 3
    with pytest.raises(StopIteration):
        op.send((200, [{"resourceBody": {**again.ops[0][1][1], "_etag": '"e2"'}}]))


@pytest.mark.parametrize("landed", [True, False])
def test_production_append_retries_a_lost_answer_once(landed: bool) -> None:
    head = _live_head(1)
    op = _append_op(_Context(emulator=False, ttl=None), "s", [HumanMessage("q")], None,
                    _no_limit)
    next(op)
    first = op.send([head])
    assert isinstance(first, _Batch) and first.lost_ok
    token = first.ops[1][1][0]["k"]  # the first message carries the write's token
    check = op.send((0, ConnectionError("reset")))
    assert isinstance(check, _Query) and check.params["@k"] == token
    if landed:
        with pytest.raises(StopIteration):
            op.send([{"id": "x"}])
        return
    assert isinstance(op.send([]), _Query)  # a fresh head
    second = op.send([head])
    assert isinstance(second, _Batch) and not second.lost_ok  # no third try
    assert [o[1][0]["id"] for o in second.ops[1:]] == [o[1][0]["id"] for o in first.ops[1:]]
    assert second.ops[1][1][0]["k"] == token


def test_partition_key_is_a_hash() -> None:
    assert len(partition_key("x" * 16_000)) == 64
    assert partition_key("a") != partition_key("A")


def test_connection_strings_and_urls() -> None:
    endpoint, key = parse_connection_string(
        "AccountEndpoint=https://acct.documents.azure.com:443/;AccountKey=ab/c+d==;")
    assert (endpoint, key) == ("https://acct.documents.azure.com:443/", "ab/c+d==")
    with pytest.raises(ConfigurationError):
        parse_connection_string("Endpoint=x")
    url = endpoint_url(endpoint, key, "db", "msgs")
    assert "ab/c" not in repr(url) and url.password == key
    store = open_store(url)
    assert isinstance(store, CosmosStore)
    assert store.endpoint == "https://acct.documents.azure.com:443/"
    assert (store.database, store.container_name) == ("db", "msgs")
    assert "ab/c" not in repr(store)
    assert "tls=false" in str(endpoint_url("http://localhost:8081/", key, "d", "c"))


@pytest.mark.parametrize("bad", [
    "cosmos://k:KEY@/db/c", "cosmos://k:KEY@host/a/b/c", "cosmos://k:KEY@host/d?b/c",
    "cosmos://k:KEY@host/db/has%23hash", "cosmos://k:KEY@host/db/%20sp", "cosmos://host/db/c",
])
def test_bad_urls_rejected(bad: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COSMOS_KEY", raising=False)
    with pytest.raises(ConfigurationError):
        open_store(bad)


def test_key_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COSMOS_KEY", "env-key")
    store = open_store("cosmos://acct.documents.azure.com/db/c")
    assert store._credential == "env-key"  # type: ignore[attr-defined]


def test_langchain_constructor_shape() -> None:
    from langchain_community.chat_message_histories import (
        CosmosDBChatMessageHistory as LangChainCosmos,
    )

    ours = list(inspect.signature(CosmosDBChatMessageHistory).parameters)
    theirs = list(inspect.signature(LangChainCosmos).parameters)
    assert ours[:len(theirs)] == theirs
    with pytest.raises(InputError, match="connection string or a credential"):
        CosmosDBChatMessageHistory("https://h:1/", "d", "c", "s", "u")


# -- on the emulator ------------------------------------------------------------------------


def _unique() -> str:
    import secrets

    return "t_" + secrets.token_hex(5)


def test_langchain_class_on_the_emulator() -> None:
    server = shared_server()
    container = _unique()
    history = CosmosDBChatMessageHistory(
        server.endpoint, "test", container, session_id="conv/1", user_id="u%1",
        credential=KEY, cosmos_client_kwargs={"connection_verify": False},
        store_options={"emulator": True})
    try:
        with history:
            history.add_messages([HumanMessage("hi"), AIMessage("hello")])
        again = CosmosDBChatMessageHistory(
            server.endpoint, "test", container, "conv/1", "u%1",
            connection_string=f"AccountEndpoint={server.endpoint};AccountKey={KEY};",
            cosmos_client_kwargs={"connection_verify": False},
            store_options={"emulator": True})
        assert [m.text for m in again.messages] == ["hi", "hello"]
        assert history.store is not again.store or history.store is again.store
        assert history.session_id == session_key("u%1", "conv/1")
        assert history.store.list_sessions(prefix="u%251/").session_ids == [history.session_id]
    finally:
        history.store.destroy()  # type: ignore[attr-defined]


def test_langchain_container_is_recognised() -> None:
    """LangChain's own class works on the emulator; its container is not ours."""
    from langchain_community.chat_message_histories import (
        CosmosDBChatMessageHistory as LangChainCosmos,
    )

    server = shared_server()
    container = _unique()
    theirs = LangChainCosmos(server.endpoint, "test", container, "s1", "u1", credential=KEY,
                             cosmos_client_kwargs={"connection_verify": False})
    theirs.prepare_cosmos()
    from langchain_core.messages import HumanMessage as LangChainHuman

    theirs.add_message(LangChainHuman("from langchain"))
    store = open_store(server.url(container))
    try:
        assert [m.content for m in LangChainCosmos(
            server.endpoint, "test", container, "s1", "u1", credential=KEY,
            cosmos_client_kwargs={"connection_verify": False}).__enter__().messages] == [
            "from langchain"]
        with pytest.raises(ConfigurationError, match="LangChain"):
            store.get_messages("s1")
    finally:
        store.destroy()  # type: ignore[attr-defined]
        store.close()


def test_layout_ttl_and_orphan_purge() -> None:
    server = shared_server()
    store = open_store(server.url(_unique()))
    assert isinstance(store, CosmosStore)
    try:
        store.append("a", [HumanMessage("1")], ttl=30)
        store.append("b", [HumanMessage("2")])
        container = store._sync_container()
        assert container.read()["defaultTtl"] == -1
        head = next(iter(container.query_items(
            "SELECT * FROM c WHERE c.pk = @pk AND c.id = @id", partition_key=partition_key("a"),
            parameters=[{"name": "@pk", "value": partition_key("a")},
                        {"name": "@id", "value": HEAD_ID}])))
        assert head["ttl"] == 30 and head["sid"] == "a" and head["n"] == 1
        # Cosmos DB deletes an expired head by itself: its messages become orphans.
        container.delete_item(HEAD_ID, partition_key=partition_key("a"))
        assert store.get_messages("a") == [] and store.session_info("a") is None
        assert store.purge_expired() == 1
        assert store.purge_expired() == 0
        assert [m.text for m in store.get_messages("b")] == ["2"]
        store.append("a", [HumanMessage("new")])
        assert [m.text for m in store.get_messages("a")] == ["new"]
    finally:
        store.destroy()  # type: ignore[attr-defined]
        store.close()


def test_server_down_and_back() -> None:
    with CosmosServer() as server:
        store = open_store(server.url("c"), connect_timeout=2)
        store.append("s", [HumanMessage("before")])
        server.stop()
        started = time.monotonic()
        with pytest.raises(StoreConnectionError):
            store.get_messages("s")
        with pytest.raises(StoreConnectionError):
            asyncio.run(store.aget_messages("s"))
        assert time.monotonic() - started < 20
        server.start()  # same port; the emulator forgets everything on restart
        store.setup()
        store.append("s", [HumanMessage("after")])
        assert [m.text for m in store.get_messages("s")] == ["after"]
        store.close()


def test_async_methods_do_not_block_the_loop() -> None:
    server = shared_server()
    store = open_store(server.url(_unique()))
    store.append("big", [HumanMessage(f"{i}" + "x" * 20_000) for i in range(99)])

    async def main() -> tuple[float, int, float]:
        stamps: list[float] = []
        stop = asyncio.Event()

        async def ticker() -> None:
            while not stop.is_set():
                stamps.append(time.perf_counter())
                await asyncio.sleep(0.002)

        task = asyncio.create_task(ticker())
        await asyncio.sleep(0.01)
        for i in range(5):
            await store.aappend("s", [HumanMessage(f"q{i}"), AIMessage(f"a{i}")])
            await store.aget_messages("s", last=20)
        started = time.perf_counter()
        assert len(await store.aget_messages("big")) == 99  # ~2 MB from the server
        elapsed = time.perf_counter() - started
        during = sum(started < t < started + elapsed for t in stamps)
        stop.set()
        await task
        assert [m.text for m in await store.aget_messages("s", last=2)] == ["q4", "a4"]
        gaps = [b - a for a, b in itertools.pairwise(stamps)]
        return max(gaps), during, elapsed

    try:
        longest, during, elapsed = asyncio.run(main())
        # A blocking call would stall the ticker for the whole read (no tick during it).
        assert during >= 2, (during, elapsed)
        assert longest < 0.25, longest
    finally:
        store.destroy()  # type: ignore[attr-defined]
        store.close()


def test_langchain_drop_in_inside_langchains_own_classes() -> None:
    from langchain_core.messages import HumanMessage as LcHuman

    from threadline import langchain as bridge

    server = shared_server()
    container = _unique()

    def history(session_id: str) -> bridge.CosmosDBChatMessageHistory:
        return bridge.CosmosDBChatMessageHistory(
            server.endpoint, "test", container, session_id=session_id, user_id="u1",
            credential=KEY, cosmos_client_kwargs={"connection_verify": False},
            store_options={"emulator": True})

    try:
        langchain_drop_in_scenario(history)
        with history("s3") as scoped:  # LangChain's class is a context manager too
            scoped.add_messages([LcHuman("x")])
    finally:
        history("s1").store.destroy()  # type: ignore[attr-defined]
