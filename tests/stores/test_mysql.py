"""MySQL / MariaDB-specific store tests: failures, restarts, the event loop, big ids.

The contract suite (test_contract.py) covers the behaviour every backend shares; these
tests use the shared server on 3306 and, for restarts, a private MariaDB of their own.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import secrets
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import require_server

from threadline import (
    AIMessage,
    ConfigurationError,
    HumanMessage,
    InputError,
    StoreConnectionError,
)
from threadline.stores import open_store
from threadline.stores._base import encode_message

from .scenarios import (
    contents,
    restart_mid_conversation,
    server_down_at_start,
    setup_concurrently,
    turn,
)
from .servers import PrivateMariaDB, closed_port

pymysql = pytest.importorskip("pymysql")
pytest.importorskip("aiomysql")
from threadline.stores.sql._mysql import MySQLStore  # noqa: E402 - after the importorskip
from threadline.stores.sql._mysql_statements import MIGRATIONS, Names  # noqa: E402

SHARED = "mysql://root@127.0.0.1:3306/test"


def _table() -> str:
    return f"t_{secrets.token_hex(5)}"


@pytest.fixture
def store() -> Iterator[MySQLStore]:
    require_server("127.0.0.1", 3306, "MariaDB")
    store = MySQLStore(SHARED, table=_table())
    try:
        yield store
    finally:
        store.destroy()
        store.close()


@pytest.fixture(scope="module")
def private_server() -> Iterator[PrivateMariaDB]:
    with PrivateMariaDB() as server:
        yield server


# -- failures -------------------------------------------------------------------------------

def test_server_down_at_start_fails_within_connect_timeout() -> None:
    server_down_at_start(f"mysql://root:pw-secret@127.0.0.1:{closed_port()}/test"
                         "?connect_timeout=2")


def test_wrong_credentials_are_a_clear_error_without_the_password() -> None:
    require_server("127.0.0.1", 3306, "MariaDB")
    store = open_store("mysql://no_such_user:pw-secret@127.0.0.1:3306/test")
    with pytest.raises(StoreConnectionError, match="no_such_user") as info:
        store.get_messages("s")
    assert "pw-secret" not in str(info.value) and "denied" in str(info.value)

    async def main() -> None:
        with pytest.raises(StoreConnectionError, match="denied"):
            await store.aappend("s", turn(1))

    asyncio.run(main())
    store.close()
    missing_db = open_store("mysql://root@127.0.0.1:3306/no_such_db_here")
    with pytest.raises(StoreConnectionError, match="no_such_db_here"):
        missing_db.ping()
    missing_db.close()


@pytest.mark.parametrize("url, options", [
    ("mysql://host:notaport/db", {}),
    ("mysql+mysqlconnector://localhost/db", {}),
    ("mysql://localhost", {}),  # no database
    ("mysql://localhost/db?pool_size=0", {}),
    ("mariadb://localhost/db?connect_timeout=soon", {}),
    ("mysql://localhost/db?timeout=0", {}),
    ("mysql://localhost/db", {"table": "x" * 60}),
    ("mysql://localhost/db", {"charset": "latin1"}),
])
def test_malformed_urls_and_options(url: str, options: dict[str, object]) -> None:
    with pytest.raises((ConfigurationError, InputError)):
        open_store(url, **options)


# -- restart ----------------------------------------------------------------------------------

def test_server_restart_mid_conversation(private_server: PrivateMariaDB) -> None:
    store = MySQLStore(private_server.url, table=_table(), connect_timeout=2)
    try:
        restart_mid_conversation(store, private_server.restart)
    finally:
        store.destroy()
        store.close()


# -- the event loop ---------------------------------------------------------------------------

def test_async_methods_do_not_block_the_event_loop(store: MySQLStore) -> None:
    store.append("locked", turn(1))
    locker = pymysql.connect(host="127.0.0.1", port=3306, user="root", database="test")
    with locker.cursor() as cur:
        cur.execute("START TRANSACTION")
        cur.execute(f"SELECT 1 FROM `{store.table}_sessions` WHERE session_id = %s FOR UPDATE",
                    (b"locked",))
    release = threading.Timer(0.3, locker.commit)

    async def main() -> tuple[float, int, float]:
        ticks: list[float] = []

        async def ticker() -> None:
            while True:
                ticks.append(time.monotonic())
                await asyncio.sleep(0.01)

        await store.aget_messages("warm-up")  # opens the async pool before timing
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


# -- ids and data -------------------------------------------------------------------------------

def test_big_and_hostile_ids(store: MySQLStore) -> None:
    big = "é" * 5000 + "x" * 5240  # over 10 KB of UTF-8
    ids = [big, big + "y", "'; DROP TABLE x; --", "50%_off", "../up", "a\\b", "日本語 🎉",
           "trailing ", "trailing", "Case", "case"]
    for number, sid in enumerate(ids):
        store.append(sid, turn(number))
    for number, sid in enumerate(ids):
        assert contents(store.get_messages(sid)) == [f"q{number}", f"a{number}"], sid
    assert store.list_sessions(prefix="50%").session_ids == ["50%_off"]
    assert store.list_sessions(prefix=big).session_ids == [big, big + "y"]
    assert store.list_sessions(prefix="trailing").session_ids == ["trailing", "trailing "]
    assert store.list_sessions().session_ids == sorted(ids)


def test_four_byte_utf8_content_round_trips(store: MySQLStore) -> None:
    message = HumanMessage("emoji 🎉🐍 and 𠜎𠜱, NUL \x00 too")
    store.append("s", [message])
    assert store.get_messages("s") == [message]
    assert asyncio.run(store.aget_messages("s")) == [message]


def test_expired_session_restarts_on_append(store: MySQLStore) -> None:
    store.append("s", turn(1), ttl=0.05)
    time.sleep(0.1)
    assert store.get_messages("s") == []
    store.append("s", turn(2))
    assert contents(store.get_messages("s")) == ["q2", "a2"]
    info = store.session_info("s")
    assert info is not None and info.message_count == 2


# -- message ids, migrations, limits ------------------------------------------------------------

def _ided(tag: str) -> list[HumanMessage | AIMessage]:
    return [HumanMessage(f"q{tag}", id=f"q{tag}"), AIMessage(f"a{tag}", id=f"a{tag}")]


def _raw() -> Any:
    return pymysql.connect(host="127.0.0.1", port=3306, user="root", database="test",
                           autocommit=True)


@pytest.mark.parametrize("ddl_done", [False, True], ids=["v1", "v1-killed-after-ddl"])
def test_a_version_1_table_is_migrated_once_by_concurrent_setups(ddl_done: bool) -> None:
    """Tables left by threadline's first schema (or by a setup killed after its DDL,
    which MySQL commits at once) get the message-id column and index from whichever of
    several stores' setups comes first; their sessions stay."""
    require_server("127.0.0.1", 3306, "MariaDB")
    table = _table()
    names = Names(table)
    conn = _raw()
    with conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {names.schema} (version INT NOT NULL)")
        cur.execute(f"INSERT INTO {names.schema} VALUES (1)")
        for statement in MIGRATIONS[0](names, set()):
            cur.execute(statement)
        if ddl_done:
            for statement in MIGRATIONS[1](names, set()):
                cur.execute(statement)
        cur.execute(f"INSERT INTO {names.s} (session_hash, session_id, created_at, updated_at,"
                    " message_count) VALUES (%s, %s, UTC_TIMESTAMP(), UTC_TIMESTAMP(), 1)",
                    (hashlib.sha256(b"old").digest(), b"old"))
        cur.execute(f"INSERT INTO {names.m} (sid, message) VALUES (%s, %s)",
                    (cur.lastrowid, encode_message(HumanMessage("before"))))
    conn.close()
    stores = [MySQLStore(SHARED, table=table) for _ in range(4)]
    try:
        setup_concurrently(stores)
        conn = _raw()
        with conn.cursor() as cur:
            cur.execute(f"SELECT version FROM {names.schema}")
            assert cur.fetchall() == ((len(MIGRATIONS),),) == ((5,),)
        conn.close()
        store = stores[0]
        store.append("old", _ided("1"))
        asyncio.run(store.aappend("old", _ided("1")))
        assert contents(store.get_messages("old")) == ["before", "q1", "a1"]
        info = store.session_info("old")
        assert info is not None and info.message_count == 3
        assert [(h.session_id, h.position) for h in store.search("before")] == [("old", 0)]
    finally:
        stores[0].destroy()
        for store in stores:
            store.close()


@pytest.mark.parametrize("killed", [None, "after-columns", "before-version"])
def test_a_version_3_table_is_upgraded_once_to_sessions_and_search(
        killed: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tables of the previous schema (3: no session fields, no searchable text) get
    them from whichever of several setups comes first: the old messages' text is
    backfilled and searchable, the old sessions listed by recency. A setup killed after
    some of migration 4 (DDL commits at once) is finished by the next one."""
    require_server("127.0.0.1", 3306, "MariaDB")
    from threadline.stores.sql import _mysql_statements

    table = _table()
    names = Names(table)
    current = list(MIGRATIONS)
    monkeypatch.setattr(_mysql_statements, "MIGRATIONS", current[:3])
    old = MySQLStore(SHARED, table=table)
    old.append("old-a", [HumanMessage("The Fjord_Tour starts in Ålesund"),
                         AIMessage("Bring a raincoat.")])
    time.sleep(0.01)
    old.append("old-b", [HumanMessage("What's in Ålesund?")])
    old.close()
    monkeypatch.setattr(_mysql_statements, "MIGRATIONS", current)
    conn = _raw()
    with conn.cursor() as cur:
        if killed == "after-columns":
            for step in MIGRATIONS[3](names, set())[:2]:
                assert isinstance(step, str)
                cur.execute(step)
        elif killed == "before-version":  # everything done but the version bump
            done = MySQLStore(SHARED, table=table)
            done.setup()
            done.close()
            cur.execute(f"UPDATE {names.schema} SET version = 3")
    conn.close()
    stores = [MySQLStore(SHARED, table=table) for _ in range(3)]
    try:
        setup_concurrently(stores)
        conn = _raw()
        with conn.cursor() as cur:
            cur.execute(f"SELECT version FROM {names.schema}")
            assert cur.fetchall() == ((5,),)
            cur.execute("SELECT COUNT(*) FROM information_schema.statistics WHERE"
                        " table_schema = DATABASE() AND table_name = %s AND index_name ="
                        " 'search'", (table,))
            assert cur.fetchall() == ((1,),)
        conn.close()
        store = stores[1]
        hits = store.search("ålesund")
        assert [(h.session_id, h.position) for h in hits] == [("old-b", 0), ("old-a", 0)]
        assert [h.position for h in store.search("tour")] == [0]  # "_" splits words
        assert [h.position for h in store.search("raincoat")] == [1]
        assert store.list_sessions(order="recent").session_ids == ["old-b", "old-a"]
        store.update_session("old-a", title="Trip", owner="u1")
        info = store.session_info("old-a")
        assert info is not None and (info.title, info.owner, info.message_count) == (
            "Trip", "u1", 2)
    finally:
        stores[0].destroy()
        for store in stores:
            store.close()


def test_max_allowed_packet_is_read_from_the_server_and_enforced(store: MySQLStore) -> None:
    """A message larger than the server's max_allowed_packet, or a statement that grows
    past it once escaped, is refused before sending (MySQL would drop the connection:
    "server has gone away"); the store stays usable, sync and async."""
    store.max_message_bytes = 64 << 20  # above the server's: its limit is the one hit
    store.append("s", turn(1))  # the setup reads max_allowed_packet
    conn = _raw()
    with conn.cursor() as cur:
        cur.execute("SELECT @@max_allowed_packet")
        (limit,) = cur.fetchone()
    conn.close()
    assert 1 << 20 <= limit <= 64 << 20, "this test builds messages of about this size"
    big = HumanMessage("x" * limit)
    with pytest.raises(InputError, match=f"max_allowed_packet \\({limit:,} bytes\\)") as info:
        store.append("s", [big])
    assert f"a message of {len(encode_message(big)):,} bytes" in str(info.value)
    # Fits as a message, not as a statement: each backslash is 4 bytes once escaped.
    with pytest.raises(InputError, match=r"statement of .* bytes .*max_allowed_packet"):
        asyncio.run(store.aappend("s", [HumanMessage("\\" * (limit * 3 // 8))]))
    store.append("s", turn(2))
    assert contents(asyncio.run(store.aget_messages("s"))) == ["q1", "a1", "q2", "a2"]
