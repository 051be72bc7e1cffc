"""Faults on the cloud stores, on real emulators: DynamoDB (moto, tests/stores/dynamo_server.py)
and Cosmos DB (@vercel/cosmosdb-server, tests/stores/cosmos_server.py).

Poisoned stored rows, messages above the item limits, a server that stops answering
(a :class:`StallingProxy` in front of it), and answers lost after the server committed
(a :class:`LosingProxy` that swallows one answer and drops the connection): the message
ids and the stores' write tokens keep every retry from storing anything twice. Each test
name says its backend, so ``-k dynamodb`` / ``-k cosmos`` select them.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import pytest

from threadline import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    InputError,
    StoreConnectionError,
    StoreTimeoutError,
)
from threadline.stores import Store, open_store

from .scenarios import StallingProxy, poisoned_rows_scenario
from .test_streaming import streamed_poison_scenario


def _texts(messages: list[BaseMessage]) -> list[str]:
    return [m.text for m in messages]


def _turn(n: int, ids: bool = True) -> list[BaseMessage]:
    return [HumanMessage(f"q{n}", id=f"q{n}" if ids else None),
            AIMessage(f"a{n}", id=f"a{n}" if ids else None)]


class LosingProxy(StallingProxy):
    """A TCP proxy that forwards everything, except after :meth:`arm`: the next request
    (the next bytes a client sends that contain ``marker``) loses its answer — the
    server gets the request and answers, the proxy swallows the answer and drops both
    connections. ``arm(request=True)`` swallows the request itself instead (the client
    sent it, the server never saw it). ``lost`` counts what was swallowed."""

    def __init__(self, host: str, port: int, marker: bytes = b"") -> None:
        super().__init__(host, port)
        self.marker = marker
        self.lost = 0
        self._armed: list[bool] = []  # pending arms: swallow the request itself?
        self._doomed: set[socket.socket] = set()  # server sockets whose answer is lost
        self._guard = threading.Lock()

    def arm(self, *, request: bool = False) -> None:
        with self._guard:
            self._armed.append(request)

    @staticmethod
    def _drop(*sockets: socket.socket) -> None:
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _pump(self, source: object, sink: object) -> None:
        assert isinstance(source, socket.socket) and isinstance(sink, socket.socket)
        # Accepted sockets have the listener's port: this pump carries requests.
        from_client = source.getsockname()[1] == self.port
        try:
            while not self._closed:
                data = source.recv(65536)
                if not data:
                    break
                with self._guard:
                    if source in self._doomed:  # the answer to the request: swallowed
                        self._doomed.discard(source)
                        self.lost += 1
                        drop = True
                    elif from_client and self._armed and self.marker in data:
                        drop = self._armed.pop(0)  # swallow the request itself?
                        if drop:
                            self.lost += 1
                        else:
                            self._doomed.add(sink)
                    else:
                        drop = False
                if drop:
                    self._drop(source, sink)
                    break
                sink.sendall(data)
        except OSError:
            pass


def _timed(call: Callable[[], object]) -> tuple[BaseException, float]:
    started = time.monotonic()
    with pytest.raises(StoreTimeoutError) as info:
        call()
    return info.value, time.monotonic() - started


def _stalled_server_scenario(store: Store, proxy: StallingProxy, timeout: float) -> None:
    """Through ``proxy``: a stall makes reads (sync and async) and appends raise
    StoreTimeoutError after about ``timeout`` (one try: botocore's or the SDK's retries
    would take twice as long at least); after resume the store works, and the append
    retried with the same ids is stored once, whether or not the stalled one landed."""
    store.append("s", _turn(1))
    proxy.stall()
    try:
        error, elapsed = _timed(lambda: store.get_messages("s"))
        assert error.kind == "read" and error.timeout == timeout  # type: ignore[attr-defined]
        assert "did not answer" in str(error)
        assert timeout * 0.9 <= elapsed < timeout * 1.9, elapsed
        error, elapsed = _timed(lambda: asyncio.run(store.aget_messages("s")))
        assert timeout * 0.9 <= elapsed < timeout * 1.9, elapsed
        error, elapsed = _timed(lambda: store.append("s", _turn(2)))
        assert "may or may not have been applied" in str(error)
        assert elapsed < timeout * 1.9, elapsed
    finally:
        proxy.resume()
    store.append("s", _turn(2))  # the retry, with the same ids
    assert _texts(store.get_messages("s")) == ["q1", "a1", "q2", "a2"]
    time.sleep(0.3)  # the stalled request, forwarded now, lands or fails: still one copy
    assert _texts(store.get_messages("s")) == ["q1", "a1", "q2", "a2"]
    info = store.session_info("s")
    assert info is not None and info.message_count == 4


# -- DynamoDB -------------------------------------------------------------------------------


@pytest.fixture
def dynamo() -> Iterator[Any]:
    pytest.importorskip("boto3")
    from threadline.stores.dynamodb._store import DynamoDBStore

    from .dynamo_server import moto_server

    store = open_store(moto_server().url(f"t_{secrets.token_hex(5)}"))
    assert isinstance(store, DynamoDBStore)
    try:
        yield store
    finally:
        store.destroy()
        store.close()


def _partition(store: Any, sid: str) -> list[int]:
    """The sort keys of a session's items (the store's raw layout)."""
    from threadline.stores.dynamodb._items import partition_key

    return sorted(int(item["Seq"]["N"]) for item in store._scan(
        "#pk = :pk", "#pk, #seq", {":pk": {"S": partition_key(sid)}}))


def _dynamo_raw(dynamo: Any) -> Callable[[str, list[str]], None]:
    """Writes a session's rows as they are, behind the store's back."""
    from threadline.stores.dynamodb._items import META_SEQ, _new_base, partition_key

    dynamo.setup()
    client = dynamo.client()

    def insert_raw(sid: str, rows: list[str]) -> None:
        pk, base, now = partition_key(sid), _new_base(), repr(time.time())
        key = dynamo._requests.key
        client.put_item(TableName=dynamo.table, Item={
            **key(pk, META_SEQ), "Session": {"S": sid}, "Base": {"N": str(base)},
            "Count": {"N": str(len(rows))}, "CreatedAt": {"N": now}, "UpdatedAt": {"N": now}})
        for i, row in enumerate(rows, 1):
            client.put_item(TableName=dynamo.table,
                            Item={**key(pk, base + i), "Message": {"S": row}})

    return insert_raw


def test_dynamodb_poisoned_rows(dynamo: Any) -> None:
    poisoned_rows_scenario(dynamo, _dynamo_raw(dynamo))


def test_dynamodb_streamed_read_names_poisoned_rows_by_session_position(dynamo: Any) -> None:
    streamed_poison_scenario(dynamo, _dynamo_raw(dynamo))


def test_dynamodb_oversized_message_refused_before_sending(dynamo: Any) -> None:
    sent: list[str] = []
    dynamo.client().meta.events.register(
        "before-send.dynamodb", lambda **kwargs: sent.append(kwargs["request"].url))
    dynamo.append("s", _turn(1))
    sent.clear()
    big = HumanMessage("x" * 410_000, id="big")
    with pytest.raises(InputError) as info:
        dynamo.append("s", [HumanMessage("q2", id="q2"), big])
    assert re.fullmatch(r"a message of 410,\d{3} bytes is larger than DynamoDB's 400 KB item "
                        r"limit \(409,600 bytes\); nothing was stored", str(info.value))
    assert sent == []  # refused before any request
    assert _texts(dynamo.get_messages("s")) == ["q1", "a1"]
    dynamo.append("s", [HumanMessage("y" * 400_000, id="near the limit")])
    assert len(dynamo.get_messages("s", last=1)[0].text) == 400_000
    # A server that is down is never asked either.
    down = open_store("dynamodb://k:s@t_down?region=us-east-1&endpoint_url=http://127.0.0.1:1")
    with pytest.raises(InputError, match="400 KB"):
        down.append("s", [big])
    down.close()


def test_dynamodb_stalled_server_times_out(dynamo: Any) -> None:
    from .dynamo_server import moto_server

    moto = moto_server()
    proxy = StallingProxy("127.0.0.1", moto.port)
    timeout = 2.0
    store = open_store(moto.url(dynamo.table, endpoint_url=f"http://127.0.0.1:{proxy.port}",
                                timeout=str(timeout)))
    try:
        _stalled_server_scenario(store, proxy, timeout)
    finally:
        store.close()
        proxy.close()


@pytest.mark.parametrize("ids", [True, False], ids=["with-ids", "without-ids"])
def test_dynamodb_lost_answer_after_commit_leaves_one_copy(dynamo: Any, ids: bool) -> None:
    """botocore retries the TransactWriteItems whose answer was lost (same request token);
    moto, unlike DynamoDB, runs it again, and the store sees its own write in place."""
    from .dynamo_server import moto_server

    moto = moto_server()
    proxy = LosingProxy("127.0.0.1", moto.port, marker=b"TransactWriteItems")
    store = open_store(moto.url(dynamo.table, endpoint_url=f"http://127.0.0.1:{proxy.port}"))
    try:
        store.append("s", _turn(1, ids))  # a new session (a conditional Put)
        proxy.arm()
        store.append("s", _turn(2, ids))
        assert proxy.lost == 1
        proxy.arm()
        extra = HumanMessage("q3", id="q3") if ids else HumanMessage("q4")
        store.append("s", [*_turn(3, ids), extra])  # with ids: q3 twice, stored once
        assert proxy.lost == 2
        expected = ["q1", "a1", "q2", "a2", "q3", "a3"] + ([] if ids else ["q4"])
        assert _texts(dynamo.get_messages("s")) == expected
        info = dynamo.session_info("s")
        assert info is not None and info.message_count == len(expected)
    finally:
        store.close()
        proxy.close()


def test_dynamodb_id_items_are_invisible_and_forgotten_with_the_session(dynamo: Any) -> None:
    batch = [HumanMessage(f"m{i}", id=f"id{i}") for i in range(130)]  # 3 transactions
    dynamo.append("s", batch)
    dynamo.append("s", [*batch, HumanMessage("new", id="new")])  # a retry, and one more
    assert _texts(dynamo.get_messages("s")) == [f"m{i}" for i in range(130)] + ["new"]
    assert _texts(dynamo.get_messages("s", last=2)) == ["m129", "new"]
    info = dynamo.session_info("s")
    assert info is not None and info.message_count == 131
    seqs = _partition(dynamo, "s")
    assert sum(seq < 0 for seq in seqs) == 131  # one id item per id, below the messages

    assert dynamo.delete_session("s") is True
    assert _partition(dynamo, "s") == []  # the id items went with it
    dynamo.append("s", batch[:2])  # ids forgotten: stored again
    assert _texts(dynamo.get_messages("s")) == ["m0", "m1"]

    # An expired session forgets its ids too; purge_expired removes the stale id items.
    dynamo.append("e", [HumanMessage("old", id="x"), HumanMessage("gone", id="y")], ttl=1.0)
    time.sleep(1.2)
    dynamo.append("e", [HumanMessage("again", id="x")])
    assert _texts(dynamo.get_messages("e")) == ["again"]
    assert sum(seq < 0 for seq in _partition(dynamo, "e")) == 2  # x (new), y (stale)
    dynamo.purge_expired()
    assert sum(seq < 0 for seq in _partition(dynamo, "e")) == 1
    dynamo.append("e", [HumanMessage("again", id="x"), HumanMessage("new", id="y")])
    assert _texts(dynamo.get_messages("e")) == ["again", "new"]


def test_dynamodb_langchain_table_with_a_bad_entry(dynamo: Any) -> None:
    """A LangChain-layout table (one item per session, a History list) holding an entry
    that is not a message: located error, or skipped and reported when copying."""
    import boto3

    from threadline import MessageFormatError, SkippedMessageWarning
    from threadline.stores._transfer import copy_sessions

    from .dynamo_server import KEY_ID, REGION, SECRET, moto_server

    table = f"lc_{secrets.token_hex(5)}"
    client = dynamo.client()
    client.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                        KeySchema=[{"AttributeName": "SessionId", "KeyType": "HASH"}],
                        AttributeDefinitions=[{"AttributeName": "SessionId",
                                               "AttributeType": "S"}])

    def entry(kind: str, content: dict[str, str]) -> dict[str, Any]:
        return {"M": {"type": {"S": kind}, "data": {"M": {"content": content}}}}

    client.put_item(TableName=table, Item={"SessionId": {"S": "s"}, "History": {"L": [
        entry("human", {"S": "hi"}), entry("human", {"N": "42"}), entry("ai", {"S": "hello"})]}})
    session = boto3.session.Session(aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET)
    old = dynamo.langchain_source(table, region=REGION, endpoint_url=moto_server().endpoint,
                                  boto3_session=session)
    try:
        with pytest.raises(MessageFormatError) as info:
            old.get_messages("s")
        assert info.value.session_id == "s" and info.value.position == 1
        with pytest.warns(SkippedMessageWarning):
            report = copy_sessions(old, dynamo, skip_invalid=True)
        assert report.messages == 2
        assert _texts(dynamo.get_messages("s")) == ["hi", "hello"]
    finally:
        client.delete_table(TableName=table)


# -- Cosmos DB ------------------------------------------------------------------------------


def _cosmos_store(port: int | None = None, **options: Any) -> Any:
    from threadline.stores.cosmos._store import CosmosStore

    from .cosmos_server import shared_server

    server = shared_server()
    url = server.url(f"t_{secrets.token_hex(5)}")
    if port is not None:
        url = url.replace(f":{server.port}/", f":{port}/")
    store = open_store(url, **options)
    assert isinstance(store, CosmosStore)
    return store


@pytest.fixture
def cosmos() -> Iterator[Any]:
    store = _cosmos_store()
    try:
        yield store
    finally:
        store.destroy()
        store.close()


def _cosmos_raw(cosmos: Any) -> Callable[[str, list[str]], None]:
    """Writes a session's documents as they are, behind the store's back."""
    from threadline.stores.cosmos._docs import _head_body, message_id, partition_key

    cosmos.setup()
    container = cosmos._sync_container()

    def insert_raw(sid: str, rows: list[str]) -> None:
        pk, now = partition_key(sid), time.time()
        epoch = int(now * 1000)
        container.create_item(_head_body(pk, sid, epoch, len(rows), now, now, None, now))
        for seq, row in enumerate(rows, 1):
            container.create_item({"id": message_id(epoch, seq), "pk": pk, "t": "m",
                                   "e": epoch, "s": seq, "w": now, "m": row})

    return insert_raw


def test_cosmos_poisoned_rows(cosmos: Any) -> None:
    poisoned_rows_scenario(cosmos, _cosmos_raw(cosmos))


def test_cosmos_streamed_read_names_poisoned_rows_by_session_position(cosmos: Any) -> None:
    streamed_poison_scenario(cosmos, _cosmos_raw(cosmos))


def test_cosmos_oversized_message_refused_before_sending(cosmos: Any) -> None:
    cosmos.append("s", _turn(1))
    big = HumanMessage("x" * (2 * 1024 * 1024), id="big")
    with pytest.raises(InputError) as info:
        cosmos.append("s", [HumanMessage("q2", id="q2"), big])
    assert "2 MB item limit (2,097,152 bytes)" in str(info.value)
    assert "nothing was stored" in str(info.value)
    with pytest.raises(InputError, match="2 MB item limit"):
        asyncio.run(cosmos.aappend("s", [big]))
    assert _texts(cosmos.get_messages("s")) == ["q1", "a1"]
    # Escaping counts: 700,000 quotes are 1.4 MB of text, 2.8 MB of JSON.
    with pytest.raises(InputError, match="2 MB item limit"):
        cosmos.append("s", [HumanMessage('"' * 700_000)])
    cosmos.append("s", [HumanMessage("y" * 1_500_000, id="near the limit")])
    assert len(cosmos.get_messages("s", last=1)[0].text) == 1_500_000
    # A server that is down is never asked either (not even to set up).
    down = open_store("cosmos://a:a2V5@127.0.0.1:1/db/c?verify=false&emulator=true")
    with pytest.raises(InputError, match="2 MB item limit"):
        down.append("s", [big])
    down.close()


def test_cosmos_stalled_server_times_out() -> None:
    from .cosmos_server import shared_server

    proxy = StallingProxy("127.0.0.1", shared_server().port)
    timeout = 2.0
    store = _cosmos_store(proxy.port, timeout=timeout)
    try:
        store.setup()
        _stalled_server_scenario(store, proxy, timeout)
    finally:
        store.destroy()
        store.close()
        proxy.close()


@pytest.fixture(scope="module")
def plain_cosmos() -> Iterator[int]:
    """The port of a Cosmos DB emulator speaking plain HTTP (``--no-ssl``), so that a
    proxy can tell an append's batch (its ``x-ms-cosmos-is-batch-request`` header)."""
    from .cosmos_server import _READY, CLI, shared_server

    shared_server()  # skips (or fails in CI) when node or the emulator is missing
    node = shutil.which("node")
    assert node is not None
    process = subprocess.Popen(
        [node, str(CLI), "--host", "127.0.0.1", "--port", "0", "--no-ssl"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert process.stdout is not None
    try:
        deadline, match = time.monotonic() + 30, None
        while match is None and time.monotonic() < deadline and process.poll() is None:
            match = _READY.search(process.stdout.readline())
        assert match is not None, "the plain-HTTP Cosmos DB emulator did not start"
        threading.Thread(target=process.stdout.read, daemon=True).start()  # keep draining
        yield int(match.group(1))
    finally:
        process.terminate()
        process.wait(10)


@pytest.mark.parametrize("ids", [True, False], ids=["with-ids", "without-ids"])
def test_cosmos_lost_answer_is_retried_once(plain_cosmos: int, ids: bool) -> None:
    from .cosmos_server import KEY

    proxy = LosingProxy("127.0.0.1", plain_cosmos, marker=b"x-ms-cosmos-is-batch-request")
    store = open_store(f"cosmos://emulator:{quote(KEY, safe='')}@127.0.0.1:{proxy.port}/test/"
                       f"t_{secrets.token_hex(5)}?tls=false&emulator=true")
    try:
        store.append("s", _turn(1, ids))
        # The answer is lost after the commit: the write's token shows it landed.
        proxy.arm()
        store.append("s", _turn(2, ids))
        assert proxy.lost == 1 and store.get_messages("s", last=2) == _turn(2, ids)
        # The request itself is lost: nothing landed, the append is sent once more.
        proxy.arm(request=True)
        store.append("s", _turn(3, ids))
        assert proxy.lost == 2
        # Both: the retry's answer is lost too. No second retry: the error says the
        # write may have been applied; the caller's retry with the same ids stores
        # nothing twice.
        proxy.arm(request=True)
        proxy.arm()
        with pytest.raises(StoreConnectionError, match="may or may not have been applied"):
            store.append("s", _turn(4, ids))
        assert proxy.lost == 4
        if ids:
            store.append("s", _turn(4, ids))
        # The async driver runs the same operation.
        proxy.arm()
        asyncio.run(store.aappend("s", _turn(5, ids)))
        proxy.arm(request=True)
        asyncio.run(store.aappend("s", _turn(6, ids)))
        assert proxy.lost == 6
        expected = [f"{k}{n}" for n in range(1, 7) for k in "qa"]
        assert _texts(store.get_messages("s")) == expected
        info = store.session_info("s")
        assert info is not None and info.message_count == len(expected)
    finally:
        store.destroy()  # type: ignore[attr-defined]
        store.close()
        proxy.close()


def test_cosmos_id_documents_are_invisible_and_forgotten_with_the_session(cosmos: Any) -> None:
    from threadline.stores.cosmos._docs import partition_key

    container = cosmos._sync_container()

    def kinds(sid: str) -> list[str]:
        pk = partition_key(sid)
        return sorted(doc["t"] for doc in container.query_items(
            "SELECT c.t FROM c WHERE c.pk = @pk", partition_key=pk,
            parameters=[{"name": "@pk", "value": pk}]))

    batch = [HumanMessage(f"m{i}", id=f"id{i}") for i in range(60)]  # 2 transactions
    cosmos.append("s", batch)
    cosmos.append("s", [*batch, HumanMessage("new", id="new")])
    assert _texts(cosmos.get_messages("s")) == [f"m{i}" for i in range(60)] + ["new"]
    assert _texts(cosmos.get_messages("s", last=2)) == ["m59", "new"]
    info = cosmos.session_info("s")
    assert info is not None and info.message_count == 61
    assert kinds("s") == ["h"] + ["k"] * 61 + ["m"] * 61
    assert cosmos.delete_session("s") is True
    assert kinds("s") == []
    cosmos.append("s", batch[:2])
    assert _texts(cosmos.get_messages("s")) == ["m0", "m1"]
