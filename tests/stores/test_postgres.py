"""PostgreSQL-specific store tests: failures, restarts, the event loop, LangChain shapes.

The contract suite (test_contract.py) covers the behaviour every backend shares; these
tests use the shared server on 5432 and, for restarts, a private server of their own.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import secrets
import threading
import time
from collections.abc import Iterator

import pytest
from conftest import require_server

from threadline import (
    AIMessage,
    ConfigurationError,
    HumanMessage,
    InputError,
    StoreConnectionError,
)
from threadline.stores import open_store, shared_store
from threadline.stores._base import encode_message

from .scenarios import (
    contents,
    restart_mid_conversation,
    server_down_at_start,
    setup_concurrently,
    turn,
)
from .servers import PrivatePostgres, closed_port

psycopg = pytest.importorskip("psycopg")

from threadline.stores.compat._postgres import (  # noqa: E402 - after the importorskip
    PostgresChatMessageHistory,
)
from threadline.stores.sql._postgres import PostgresStore  # noqa: E402 - after the importorskip
from threadline.stores.sql._postgres_statements import MIGRATIONS, Names  # noqa: E402

sql = psycopg.sql

SHARED = "postgresql://postgres@127.0.0.1:5432/test"


def _table() -> str:
    return f"t_{secrets.token_hex(5)}"


@pytest.fixture
def store() -> Iterator[PostgresStore]:
    require_server("127.0.0.1", 5432, "PostgreSQL")
    store = PostgresStore(SHARED, table=_table(), application_name="threadline-test")
    try:
        yield store
    finally:
        store.destroy()
        store.close()


@pytest.fixture(scope="module")
def private_server() -> Iterator[PrivatePostgres]:
    with PrivatePostgres() as server:
        yield server


# -- failures -------------------------------------------------------------------------------

def test_server_down_at_start_fails_within_connect_timeout() -> None:
    message = server_down_at_start(
        f"postgresql://postgres:pw-secret@127.0.0.1:{closed_port()}/test?connect_timeout=2")
    assert "refused" in message.lower()


def test_unknown_role_is_a_clear_error_without_the_password() -> None:
    require_server("127.0.0.1", 5432, "PostgreSQL")
    store = open_store("postgresql://no_such_role:pw-secret@127.0.0.1:5432/test")
    with pytest.raises(StoreConnectionError) as info:
        store.get_messages("s")
    message = str(info.value)
    assert "no_such_role" in message and "pw-secret" not in message
    store.close()
    missing_db = open_store("postgresql://postgres@127.0.0.1:5432/no_such_db_here")
    with pytest.raises(StoreConnectionError, match="no_such_db_here"):
        missing_db.ping()
    missing_db.close()


def _connect_error(url: str, use_async: bool) -> StoreConnectionError:
    store = open_store(url)
    try:
        with pytest.raises(StoreConnectionError) as info:
            if use_async:
                asyncio.run(store.aget_messages("s"))
            else:
                store.get_messages("s")
        return info.value
    finally:
        store.close()


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_a_connection_error_says_which_part_failed(use_async: bool) -> None:
    """Issue 18 item 9: server up but database missing, login refused, server down:
    each error says which, and what to do; never the password."""
    require_server("127.0.0.1", 5432, "PostgreSQL")
    missing = _connect_error("postgresql://postgres:pw-secret@127.0.0.1:5432/nodb_tl",
                             use_async)
    text = str(missing)
    assert missing.part == "database" and "pw-secret" not in text
    assert "database 'nodb_tl' does not exist" in text and "server is up" in text
    assert "createdb -h 127.0.0.1 -p 5432 -U postgres nodb_tl" in text
    assert "threadline db init" in text and "start the server" not in text

    login = _connect_error("postgresql://no_such_role:pw-secret@127.0.0.1:5432/test",
                           use_async)
    assert login.part == "authentication" and "pw-secret" not in str(login)
    assert "refused the login" in str(login) and "no_such_role" in str(login)

    port = closed_port()
    down = _connect_error(f"postgresql://postgres:pw-secret@127.0.0.1:{port}/test",
                          use_async)
    assert down.part == "server" and "pw-secret" not in str(down)
    assert f"unreachable (is it running and listening on 127.0.0.1:{port}?)" in str(down)
    # With several hosts, a server that answered says more than one that did not.
    both = _connect_error(f"postgresql://postgres@127.0.0.1:{port},127.0.0.1:5432/nodb_tl",
                          use_async)
    assert both.part == "database"


def test_several_hosts_and_libpq_options_reach_the_driver() -> None:
    """A multi-host URL goes to libpq as host=h1,h2 port=p1,p2 with its parameters; the
    first host down, the store connects to the second (read-write, as asked)."""
    require_server("127.0.0.1", 5432, "PostgreSQL")
    port = closed_port()
    app = f"tl-{secrets.token_hex(3)}"
    url = (f"postgresql://postgres:pw-secret@127.0.0.1:{port},127.0.0.1:5432/test"
           f"?target_session_attrs=read-write&load_balance_hosts=disable"
           f"&application_name={app}&keepalives_idle=30&table={_table()}")
    store = open_store(url)
    assert isinstance(store, PostgresStore)
    conninfo = psycopg.conninfo.conninfo_to_dict(store._conninfo)
    assert conninfo["host"] == "127.0.0.1,127.0.0.1" and conninfo["port"] == f"{port},5432"
    assert conninfo["target_session_attrs"] == "read-write"
    assert conninfo["keepalives_idle"] == "30" and conninfo["application_name"] == app
    assert "pw-secret" not in repr(store.url) and "pw-secret" not in str(store.url)
    try:
        store.append("s", turn(1))
        assert contents(asyncio.run(store.aget_messages("s"))) == ["q1", "a1"]
        with psycopg.connect(SHARED) as conn:
            rows = conn.execute("SELECT count(*) FROM pg_stat_activity "
                                "WHERE application_name = %s", (app,)).fetchone()
        assert rows is not None and rows[0] >= 1
    finally:
        store.destroy()
        store.close()
    # The one server is a primary: asking for a standby finds none.
    standby_only = open_store("postgresql://postgres@127.0.0.1:5432/test"
                              "?target_session_attrs=standby")
    with pytest.raises(StoreConnectionError, match="standby"):
        standby_only.ping()
    standby_only.close()
    with pytest.raises(ConfigurationError, match=r"valid options: .*target_session_attrs"):
        open_store("postgresql://postgres@127.0.0.1:5432/test?target_session_attr=any")
    secret = open_store("postgresql://u@h/db?sslmode=require&sslpassword=pw-secret")
    assert "pw-secret" not in repr(secret.url)


def test_the_langchain_class_takes_several_hosts_and_libpq_options() -> None:
    require_server("127.0.0.1", 5432, "PostgreSQL")
    port, table = closed_port(), _table()
    url = (f"postgresql://postgres@127.0.0.1:{port},127.0.0.1:5432/test"
           "?target_session_attrs=read-write&connect_timeout=3")
    dsn = (f"host=127.0.0.1,127.0.0.1 port={port},5432 user=postgres dbname=test "
           "target_session_attrs=read-write connect_timeout=3")
    try:
        history = PostgresChatMessageHistory("conv", url, table)
        history.add_messages(turn(1))
        from_dsn = PostgresChatMessageHistory("conv", connection_string=dsn, table_name=table)
        assert from_dsn.store.url.hosts == (("127.0.0.1", port), ("127.0.0.1", 5432))
        assert from_dsn.store.options["target_session_attrs"] == "read-write"
        assert contents(from_dsn.messages) == ["q1", "a1"]
    finally:
        shared_store(url, table=table).destroy()  # type: ignore[attr-defined]
    with pytest.raises(ConfigurationError, match="unknown option"):
        PostgresChatMessageHistory("conv", "host=127.0.0.1 dbname=test options=-cx=1")
    with pytest.raises(ConfigurationError, match="2 hosts and 3 ports"):
        PostgresChatMessageHistory("conv", "host=a,b port=1,2,3 dbname=test")


@pytest.mark.parametrize("url, options", [
    ("postgresql://host:notaport/db", {}),
    ("postgresql+asyncpg://localhost/db", {}),
    ("postgresql://localhost/db?pool_size=0", {}),
    ("postgresql://localhost/db?connect_timeout=soon", {}),
    ("postgresql://localhost/db?timeout=0", {}),
    ("postgresql://localhost/db", {"timeout": -1}),
    ("postgresql://localhost/db", {"table": "x" * 60}),
    ("postgresql://localhost/db", {"sslmod": "require"}),
])
def test_malformed_urls_and_options(url: str, options: dict[str, object]) -> None:
    with pytest.raises((ConfigurationError, InputError)):
        open_store(url, **options)


def test_a_foreign_table_is_refused_not_altered(store: PostgresStore) -> None:
    with psycopg.connect(SHARED, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {store.table} (id serial, session_id text, message jsonb)")
    with pytest.raises(ConfigurationError, match="not created by threadline"):
        store.append("s", turn(1))


# -- restart ----------------------------------------------------------------------------------

def test_server_restart_mid_conversation(private_server: PrivatePostgres) -> None:
    store = PostgresStore(private_server.url, table=_table(), connect_timeout=2)
    try:
        restart_mid_conversation(store, private_server.restart)
    finally:
        store.destroy()
        store.close()


def test_server_down_mid_conversation_is_a_connection_error(
        private_server: PrivatePostgres) -> None:
    store = PostgresStore(private_server.url, table=_table(), connect_timeout=2,
                          pool_timeout=3)
    try:
        store.append("conv", turn(1))
        private_server.stop()
        try:
            started = time.monotonic()
            with pytest.raises(StoreConnectionError):
                store.append("conv", turn(2))
            assert time.monotonic() - started < 6
        finally:
            private_server.start()
        store.append("conv", turn(3))
        assert contents(store.get_messages("conv")) == ["q1", "a1", "q3", "a3"]
    finally:
        store.destroy()
        store.close()


# -- the event loop ---------------------------------------------------------------------------

def test_async_methods_do_not_block_the_event_loop(store: PostgresStore) -> None:
    store.append("locked", turn(1))
    locker = psycopg.connect(SHARED)
    locker.execute(f"SELECT 1 FROM {store.table}_sessions WHERE session_id = %s FOR UPDATE",
                   ("locked",))
    release = threading.Timer(0.3, locker.commit)

    async def main() -> tuple[float, int, float]:
        ticks: list[float] = []

        async def ticker() -> None:
            while True:
                ticks.append(time.monotonic())
                await asyncio.sleep(0.01)

        task = asyncio.create_task(ticker())
        await asyncio.sleep(0.02)
        started = time.monotonic()
        release.start()
        await store.aappend("locked", turn(2))  # waits for the row lock
        elapsed = time.monotonic() - started
        task.cancel()
        during = [t for t in ticks if t >= started]
        gaps = [b - a for a, b in itertools.pairwise(during)]
        return elapsed, len(during), max(gaps, default=1.0)

    try:
        elapsed, ticks, worst_gap = asyncio.run(main())
    finally:
        release.join()
        locker.close()
    assert elapsed >= 0.25, elapsed
    assert ticks >= 10 and worst_gap < 0.15, (ticks, worst_gap)
    assert contents(store.get_messages("locked")) == ["q1", "a1", "q2", "a2"]


def test_no_connection_left_idle_in_transaction(store: PostgresStore) -> None:
    store.append("s", turn(1))
    store.get_messages("s", last=1)
    store.list_sessions()
    asyncio.run(store.aappend("s", turn(2)))
    with psycopg.connect(SHARED, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT state FROM pg_stat_activity WHERE application_name = 'threadline-test'"
        ).fetchall()
    assert rows and all(state == "idle" for (state,) in rows), rows


# -- ids ----------------------------------------------------------------------------------------

def test_big_and_hostile_ids(store: PostgresStore) -> None:
    big = "é" * 5000 + "x" * 5240  # over 10 KB of UTF-8, past the btree row limit
    ids = [big, big + "y", "'; DROP TABLE x; --", "50%_off", "../up", "a\\b", "日本語 🎉"]
    for number, sid in enumerate(ids):
        store.append(sid, turn(number))
    for number, sid in enumerate(ids):
        assert contents(store.get_messages(sid)) == [f"q{number}", f"a{number}"]
    assert store.list_sessions(prefix="50%").session_ids == ["50%_off"]
    assert store.list_sessions(prefix=big).session_ids == [big, big + "y"]
    assert sorted(store.list_sessions().session_ids) == store.list_sessions().session_ids


# -- the LangChain-shaped class -----------------------------------------------------------------

def test_langchain_community_shape_shares_one_store_per_url() -> None:
    require_server("127.0.0.1", 5432, "PostgreSQL")
    table = _table()
    first = PostgresChatMessageHistory("user/1", connection_string=SHARED, table_name=table)
    try:
        first.add_messages(turn(1))
        second = PostgresChatMessageHistory("user/1", SHARED, table)  # positional
        assert second.store is first.store  # one pool across per-turn objects
        assert contents(second.messages) == ["q1", "a1"]
        dsn = PostgresChatMessageHistory(
            session_id="user/1", table_name=table,
            connection_string="host=127.0.0.1 port=5432 user=postgres dbname=test")
        assert contents(dsn.get_messages(last=1)) == ["a1"]
        assert contents(asyncio.run(dsn.aget_messages())) == ["q1", "a1"]
        first.clear()
        assert second.messages == []
    finally:
        shared_store(SHARED, table=table).destroy()  # type: ignore[attr-defined]
    with pytest.raises(ConfigurationError, match="connection_string"):
        PostgresChatMessageHistory("s")


def test_langchain_postgres_shape_with_user_connections() -> None:
    require_server("127.0.0.1", 5432, "PostgreSQL")
    table = _table()
    conn = psycopg.connect(SHARED)  # not autocommit, as langchain-postgres' docs do it
    try:
        PostgresChatMessageHistory.create_tables(conn, table)
        history = PostgresChatMessageHistory(table, "not-a-uuid", sync_connection=conn)
        history.add_messages(turn(1))
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        assert contents(history.get_messages()) == ["q1", "a1"]

        async def main() -> list[str]:
            aconn = await psycopg.AsyncConnection.connect(SHARED)
            try:
                ahistory = PostgresChatMessageHistory(table, "not-a-uuid",
                                                      async_connection=aconn)
                await ahistory.aadd_messages(turn(2))
                with pytest.raises(InputError, match="async"):
                    ahistory.get_messages()
                return contents(await ahistory.aget_messages())
            finally:
                await aconn.close()

        assert asyncio.run(main()) == ["q1", "a1", "q2", "a2"]
        with pytest.raises(InputError):
            PostgresChatMessageHistory("only-one-arg", sync_connection=conn)
    finally:
        PostgresChatMessageHistory.drop_table(conn, table)
        conn.close()


# -- message ids, migrations, limits and timeouts ---------------------------------------------

def _ided(tag: str) -> list[HumanMessage | AIMessage]:
    return [HumanMessage(f"q{tag}", id=f"q{tag}"), AIMessage(f"a{tag}", id=f"a{tag}")]


def test_a_version_1_table_is_migrated_once_by_concurrent_setups() -> None:
    """Tables left by threadline's first schema get the message-id column and index
    from whichever of several stores' setups comes first; their sessions stay."""
    require_server("127.0.0.1", 5432, "PostgreSQL")
    table = _table()
    names = Names(table)
    with psycopg.connect(SHARED, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE TABLE {} (version integer NOT NULL)").format(names.schema))
        conn.execute(sql.SQL("INSERT INTO {} VALUES (1)").format(names.schema))
        for statement in MIGRATIONS[0](names):
            conn.execute(statement)
        (sid,) = conn.execute(sql.SQL(
            "INSERT INTO {} (session_hash, session_id, message_count) VALUES (%s, %s, 1)"
            " RETURNING sid").format(names.sessions),
            (hashlib.sha256(b"old").digest(), "old")).fetchone()
        conn.execute(sql.SQL("INSERT INTO {} (sid, message) VALUES (%s, %s)").format(
            names.messages), (sid, encode_message(HumanMessage("before"))))
    stores = [PostgresStore(SHARED, table=table) for _ in range(4)]
    try:
        setup_concurrently(stores)
        with psycopg.connect(SHARED, autocommit=True) as conn:
            assert conn.execute(sql.SQL("SELECT version FROM {}").format(names.schema)
                                ).fetchall() == [(len(MIGRATIONS),)] == [(4,)]
        store = stores[0]
        store.append("old", _ided("1"))
        asyncio.run(store.aappend("old", _ided("1")))
        assert contents(store.get_messages("old")) == ["before", "q1", "a1"]
        info = store.session_info("old")
        assert info is not None and info.message_count == 3
        # the upgrade indexed the words of the message stored before it
        assert [(h.session_id, h.position) for h in store.search("BEFORE")] == [("old", 0)]
    finally:
        stores[0].destroy()
        for store in stores:
            store.close()



def test_an_oversized_message_is_refused_before_sending(
        store: PostgresStore, monkeypatch: pytest.MonkeyPatch) -> None:
    assert store.MAX_MESSAGE_BYTES > 1_000_000_000  # a text field holds up to 1 GB
    monkeypatch.setattr(store, "MAX_MESSAGE_BYTES", 1000)
    with pytest.raises(InputError, match=r"PostgreSQL's 1 GB field limit \(1,000 bytes\)"):
        store.append("s", [HumanMessage("small"), HumanMessage("x" * 2000)])
    with pytest.raises(InputError, match="nothing was stored"):
        asyncio.run(store.aappend("s", [HumanMessage("x" * 2000)]))
    assert store.session_info("s") is None
    store.append("s", [HumanMessage("small")])
    assert contents(store.get_messages("s")) == ["small"]


def test_timeout_bounds_connect_and_pool_waits_by_default() -> None:
    store = PostgresStore(SHARED, timeout=3)
    assert (store.timeout, store.connect_timeout, store.pool_timeout) == (3, 3, 3)
    store = PostgresStore(SHARED)
    assert (store.timeout, store.connect_timeout, store.pool_timeout) == (30, 5, 10)
    store = PostgresStore(SHARED + "?timeout=2&connect_timeout=1&pool_timeout=4")
    assert (store.timeout, store.connect_timeout, store.pool_timeout) == (2, 1, 4)
