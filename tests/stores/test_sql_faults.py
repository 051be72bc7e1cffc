"""Fault injection on the SQL stores, against the real servers: a network that stalls
(a TCP proxy that stops forwarding), a server that accepts connections but never
answers, an exhausted pool, a connection dropped after the server committed an append
(the store's one retry must not duplicate the turn), and poisoned rows.

PostgreSQL and MariaDB are the shared servers on 5432 / 3306; every test uses its own
tables, dropped at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
import socket
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import require_server

from threadline import AIMessage, HumanMessage, StoreConnectionError, StoreTimeoutError
from threadline.stores import Store, open_store

from .scenarios import StallingProxy, contents, poisoned_rows_scenario
from .test_streaming import streamed_poison_scenario

psycopg = pytest.importorskip("psycopg")
pymysql = pytest.importorskip("pymysql")
pytest.importorskip("aiomysql")

TIMEOUT = 1.0  # the stores' timeout option in these tests
SLACK = 1.5  # how much longer than its bound a timed-out call may take here


def ided_turn(tag: str) -> list[HumanMessage | AIMessage]:
    return [HumanMessage(f"q-{tag}", id=f"{tag}-q"), AIMessage(f"a-{tag}", id=f"{tag}-a")]


@dataclass
class Server:
    """One shared SQL server: how to open a store on it (directly or through a proxy)
    and a raw connection to look behind the store's back."""

    name: str
    port: int
    table: str

    def url(self, port: int | None = None, password: str | None = None) -> str:
        scheme = "postgresql://postgres" if self.name == "postgresql" else "mysql://root"
        secret = f":{password}" if password else ""
        return f"{scheme}{secret}@127.0.0.1:{port or self.port}/test?table={self.table}"

    def connect(self, autocommit: bool = True) -> Any:
        if self.name == "postgresql":
            return psycopg.connect("postgresql://postgres@127.0.0.1:5432/test",
                                   autocommit=autocommit)
        return pymysql.connect(host="127.0.0.1", port=3306, user="root", database="test",
                               autocommit=autocommit)

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        conn = self.connect()
        try:
            cur = conn.cursor()
            cur.execute(sql, params)
            return list(cur.fetchall()) if cur.description is not None else []
        finally:
            conn.close()

    def stored(self, text: str) -> int:
        """How many messages of this test's table contain ``text``."""
        rows = self.query(f"SELECT count(*) FROM {self.table} WHERE message LIKE %s",
                          (f"%{text}%",))
        return int(rows[0][0])

    def lock_session(self, session_id: str) -> Callable[[], None]:
        """Lock a session's row from another connection; returns the release."""
        conn = self.connect(autocommit=False)
        key = session_id if self.name == "postgresql" else session_id.encode()
        cur = conn.cursor()
        if self.name == "mysql":
            cur.execute("START TRANSACTION")
        cur.execute(f"SELECT 1 FROM {self.table}_sessions WHERE session_id = %s FOR UPDATE",
                    (key,))

        def release() -> None:
            conn.rollback()
            conn.close()

        return release

    def waiting_on_lock(self) -> bool:
        """A statement on this test's tables waits for a row lock. (InnoDB refreshes
        innodb_trx only when it was not read for 0.1 s: poll it more slowly.)"""
        if self.name == "postgresql":
            sql = ("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                   " AND query LIKE %s")
        else:
            sql = ("SELECT count(*) FROM information_schema.innodb_trx"
                   " WHERE trx_state = 'LOCK WAIT' AND trx_query LIKE %s")
        return int(self.query(sql, (f"%{self.table}%",))[0][0]) > 0


@pytest.fixture(params=["postgresql", "mysql"])
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    port = 5432 if request.param == "postgresql" else 3306
    require_server("127.0.0.1", port, request.param)
    server = Server(request.param, port, f"t_{secrets.token_hex(5)}")
    yield server
    server.query(f"DROP TABLE IF EXISTS {server.table}, {server.table}_sessions,"
                 f" {server.table}_schema")


@pytest.fixture
def stores() -> Iterator[list[Store]]:
    """Stores a test opens; closed afterwards."""
    opened: list[Store] = []
    yield opened
    for store in opened:
        store.close()


def times_out(kind: str, call: Callable[[], object], bound: float = TIMEOUT) -> str:
    """``call()`` raises StoreTimeoutError of ``kind`` within ``bound`` (+ slack); the
    error's text."""
    started = time.monotonic()
    with pytest.raises(StoreTimeoutError) as info:
        call()
    elapsed = time.monotonic() - started
    assert info.value.kind == kind, info.value
    assert bound * 0.9 <= elapsed < bound + SLACK, elapsed
    return str(info.value)


async def atimes_out(kind: str, call: Awaitable[object], bound: float = TIMEOUT) -> str:
    started = time.monotonic()
    with pytest.raises(StoreTimeoutError) as info:
        await call
    elapsed = time.monotonic() - started
    assert info.value.kind == kind, info.value
    assert bound * 0.9 <= elapsed < bound + SLACK, elapsed
    return str(info.value)


# -- which part of connecting failed --------------------------------------------------------

@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_a_connection_error_names_the_part_that_failed(server: Server, use_async: bool,
                                                       stores: list[Store]) -> None:
    """The server up and the database missing, the login refused, the server down: the
    error's ``part`` and text say which (and how to create the database), on both
    servers, without the password."""
    scheme = "postgresql://postgres" if server.name == "postgresql" else "mysql://root"
    user_scheme = scheme.split("//")[0] + "//no_such_user_tl"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    # PostgreSQL trusts 127.0.0.1 (a password is ignored); MariaDB's root has none.
    secret = ":pw-secret" if server.name == "postgresql" else ""
    cases = [
        (f"{scheme}{secret}@127.0.0.1:{server.port}/no_such_db_tl", "database",
         "database 'no_such_db_tl' does not exist"),
        (f"{user_scheme}:pw-secret@127.0.0.1:{server.port}/test", "authentication",
         "refused the login"),
        (f"{scheme}:pw-secret@127.0.0.1:{closed}/test", "server", "unreachable"),
    ]
    for url, part, text in cases:
        store = open_store(url, connect_timeout=2)
        stores.append(store)
        with pytest.raises(StoreConnectionError) as info:
            if use_async:
                asyncio.run(store.aget_messages("s"))
            else:
                store.get_messages("s")
        message = str(info.value)
        assert info.value.part == part, message
        assert text in message and "pw-secret" not in message
        if part == "database":
            assert ("createdb" if server.name == "postgresql" else "CREATE DATABASE") in message
            assert "threadline db init" in message


# -- a stalled network ----------------------------------------------------------------------

def test_a_stalled_server_times_out_reads_and_writes(server: Server,
                                                     stores: list[Store]) -> None:
    """Through a proxy that stops forwarding: a read and a write each raise a "read"
    timeout within the timeout, sync and async; once it forwards again, the store works
    and a retry of the timed-out turn (same ids) leaves one copy of it."""
    proxy = StallingProxy("127.0.0.1", server.port)
    # Two stores, so that each stalled call below finds a warm connection (a timed-out
    # connection is dropped, and a new one cannot be opened while the proxy stalls).
    reader = open_store(server.url(proxy.port), timeout=TIMEOUT)
    writer = open_store(server.url(proxy.port), timeout=TIMEOUT)
    stores += [reader, writer]

    async def main() -> None:
        for store in (reader, writer):  # warm the sync and async connections
            store.append("s", ided_turn("1"))
            await store.aget_messages("s")
        proxy.stall()
        times_out("read", lambda: reader.get_messages("s"))
        message = times_out("read", lambda: writer.append("s", ided_turn("2")))
        assert "may or may not" in message and "safe" in message
        await atimes_out("read", reader.aget_messages("s", last=1))
        await atimes_out("read", writer.aappend("s", ided_turn("3")))
        proxy.resume()
        # The timed-out writes may land now (the proxy delivers what it held back):
        # retrying them with the same ids stores each turn once.
        await writer.aappend("s", ided_turn("3"))
        writer.append("s", ided_turn("2"))
        assert sorted(contents(await reader.aget_messages("s"))) == sorted(
            f"{k}-{n}" for n in "123" for k in "qa")

    try:
        asyncio.run(main())
        assert reader.session_info("s").message_count == 6  # type: ignore[union-attr]
    finally:
        proxy.close()


def test_a_stalled_postgres_user_connection_times_out() -> None:
    """The langchain-postgres shape (the caller's own psycopg connection, in a
    transaction per call) is bounded too, its BEGIN and COMMIT included."""
    require_server("127.0.0.1", 5432, "PostgreSQL")
    from threadline.stores.sql._postgres import PostgresStore

    proxy = StallingProxy("127.0.0.1", 5432)
    conn = psycopg.connect(f"postgresql://postgres@127.0.0.1:{proxy.port}/test")
    table = f"t_{secrets.token_hex(5)}"
    store = PostgresStore(f"postgresql://postgres@127.0.0.1:{proxy.port}/test", table=table,
                          sync_connection=conn, timeout=TIMEOUT)
    try:
        store.append("s", ided_turn("1"))
        proxy.stall()
        times_out("read", lambda: store.get_messages("s"))
    finally:
        proxy.close()
        conn.close()
        cleanup = PostgresStore("postgresql://postgres@127.0.0.1:5432/test", table=table)
        cleanup.destroy()
        cleanup.close()


def test_a_server_that_never_answers_is_a_connect_timeout(server: Server,
                                                          stores: list[Store]) -> None:
    """It accepts TCP connections and says nothing: a "connect" timeout, sync and async
    (libpq waits at least 2 s)."""
    proxy = StallingProxy("127.0.0.1", server.port)
    proxy.stall()
    store = open_store(server.url(proxy.port, password="pw-secret"), timeout=TIMEOUT)
    stores.append(store)
    bound = 2.0 if server.name == "postgresql" else TIMEOUT
    try:
        message = times_out("connect", lambda: store.get_messages("s"), bound)
        assert "pw-secret" not in message and "connect" in message
        asyncio.run(atimes_out("connect", store.aappend("s", ided_turn("1")), bound))
    finally:
        proxy.close()


def test_an_exhausted_pool_is_a_pool_timeout_naming_its_size(server: Server,
                                                            stores: list[Store]) -> None:
    """pool_size=1 and its connection held by a call waiting on a row lock: the next
    call waits pool_timeout and says the pool's size, sync and async."""
    store = open_store(server.url(), pool_size=1, pool_timeout=0.5, timeout=10)
    stores.append(store)
    store.append("locked", ided_turn("1"))

    def wait_for_lock_wait() -> None:
        deadline = time.monotonic() + 10
        while not server.waiting_on_lock():
            assert time.monotonic() < deadline, "the append never waited on the lock"
            time.sleep(0.2)

    release = server.lock_session("locked")
    holder = threading.Thread(target=store.append, args=("locked", ided_turn("2")))
    holder.start()
    try:
        wait_for_lock_wait()
        message = times_out("pool", lambda: store.get_messages("other"), 0.5)
        assert "pool_size=1" in message
    finally:
        release()
        holder.join()

    async def main() -> None:
        await store.aget_messages("warm")
        release = server.lock_session("locked")
        task = asyncio.create_task(store.aappend("locked", ided_turn("3")))
        try:
            deadline = time.monotonic() + 10
            while not server.waiting_on_lock():
                assert time.monotonic() < deadline, "the append never waited on the lock"
                await asyncio.sleep(0.2)
            message = await atimes_out("pool", store.aget_messages("other"), 0.5)
            assert "pool_size=1" in message
        finally:
            release()
            await task

    asyncio.run(main())
    assert contents(store.get_messages("locked")) == ["q-1", "a-1", "q-2", "a-2", "q-3", "a-3"]


# -- an ambiguous commit --------------------------------------------------------------------

class DropAfterCommitProxy(StallingProxy):
    """Forwards everything, except after :meth:`arm`: the first request that carries
    ``marker`` goes to the server, and its reply is held back until ``committed(marker)``
    is true; then the client's connection is dropped. The client cannot know whether its
    write was applied: it was."""

    def __init__(self, host: str, port: int, committed: Callable[[str], bool]) -> None:
        self.committed = committed
        self.marker = ""  # armed for this marker
        self.dropped = threading.Event()
        self._pending = False  # waiting for the request carrying the marker
        self._doomed: socket.socket | None = None  # the server side whose reply is cut
        super().__init__(host, port)

    def arm(self, marker: str) -> None:
        self.marker, self._pending, self._doomed = marker, True, None
        self.dropped.clear()

    def _pump(self, source: object, sink: object) -> None:
        assert isinstance(source, socket.socket) and isinstance(sink, socket.socket)
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if self._pending and self.marker.encode() in data:
                    self._pending, self._doomed = False, sink  # a request to the server
                elif source is self._doomed:
                    self._drop(client=sink, server=source)
                    break
                sink.sendall(data)
        except OSError:
            pass

    def _drop(self, client: socket.socket, server: socket.socket) -> None:
        deadline = time.monotonic() + 10
        while not self.committed(self.marker) and time.monotonic() < deadline:
            time.sleep(0.01)
        self.dropped.set()
        for sock in (client, server):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def test_an_ambiguous_commit_is_retried_once_without_a_duplicate(
        server: Server, stores: list[Store]) -> None:
    """The connection drops after the server committed an append: the store runs it
    once more (same ids) and the session holds the turn once, counted once. A turn
    without ids is not run again (that could store it twice): the error says so."""
    proxy = DropAfterCommitProxy("127.0.0.1", server.port,
                                 lambda marker: server.stored(marker) > 0)
    store = open_store(server.url(proxy.port), timeout=5)
    stores.append(store)
    try:
        store.append("s", ided_turn("warm"))
        def aappend(session_id: str, turn: list[HumanMessage | AIMessage]) -> None:
            asyncio.run(store.aappend(session_id, turn))

        runs: list[Callable[[str, list[HumanMessage | AIMessage]], None]] = [
            store.append, aappend]
        for n, run in enumerate(runs):
            marker = f"ambiguous{n}{secrets.token_hex(4)}"
            proxy.arm(marker)
            run("s", ided_turn(marker))
            assert proxy.dropped.is_set()  # the fault did happen
            assert server.stored(marker) == 2  # q and a, once each
        info = store.session_info("s")
        assert info is not None and info.message_count == 6

        marker = f"noids{secrets.token_hex(4)}"
        proxy.arm(marker)
        with pytest.raises(StoreConnectionError):
            store.append("s", [HumanMessage(f"q-{marker}"), AIMessage(f"a-{marker}")])
        assert proxy.dropped.is_set() and server.stored(marker) == 2  # not run twice
        assert len(store.get_messages("s")) == 8
    finally:
        proxy.close()


# -- poisoned rows --------------------------------------------------------------------------

def _sqlite_raw(path: Path, table: str) -> Callable[[str, list[str]], None]:
    def insert_raw(session_id: str, rows: list[str]) -> None:
        conn = sqlite3.connect(path)
        with conn:
            conn.executemany(f'INSERT INTO "{table}" (session_id, message) VALUES (?, ?)',
                             [(session_id, row) for row in rows])
            now = time.time()
            conn.execute(f'INSERT INTO "{table}_sessions" (session_id, created_at, '
                         "updated_at, message_count) VALUES (?, ?, ?, ?)",
                         (session_id, now, now, len(rows)))
        conn.close()

    return insert_raw


def _server_raw(server: Server) -> Callable[[str, list[str]], None]:
    def insert_raw(session_id: str, rows: list[str]) -> None:
        key = hashlib.sha256(session_id.encode()).digest()
        conn = server.connect()
        try:
            cur = conn.cursor()
            if server.name == "postgresql":
                cur.execute(f"INSERT INTO {server.table}_sessions (session_hash, session_id,"
                            " message_count) VALUES (%s, %s, %s) RETURNING sid",
                            (key, session_id, len(rows)))
                sid = cur.fetchone()[0]
            else:
                cur.execute(f"INSERT INTO {server.table}_sessions (session_hash, session_id,"
                            " created_at, updated_at, message_count) VALUES"
                            " (%s, %s, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), %s)",
                            (key, session_id.encode(), len(rows)))
                sid = cur.lastrowid
            for row in rows:  # one by one: ids in order
                cur.execute(f"INSERT INTO {server.table} (sid, message) VALUES (%s, %s)",
                            (sid, row))
        finally:
            conn.close()

    return insert_raw


def test_poisoned_rows_on_sqlite(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'chat.db'}", table="chat")
    try:
        store.setup()
        poisoned_rows_scenario(store, _sqlite_raw(tmp_path / "chat.db", "chat"))
    finally:
        store.close()


def test_poisoned_rows_on_the_servers(server: Server, stores: list[Store]) -> None:
    store = open_store(server.url())
    stores.append(store)
    store.setup()
    poisoned_rows_scenario(store, _server_raw(server))


def test_streamed_read_names_poisoned_rows_by_session_position_on_sqlite(
        tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'chat.db'}", table="chat")
    try:
        store.setup()
        streamed_poison_scenario(store, _sqlite_raw(tmp_path / "chat.db", "chat"))
    finally:
        store.close()


def test_streamed_read_names_poisoned_rows_by_session_position_on_the_servers(
        server: Server, stores: list[Store]) -> None:
    store = open_store(server.url())
    stores.append(store)
    store.setup()
    streamed_poison_scenario(store, _server_raw(server))
