"""Records on the SQL stores, beyond the contract (tests/stores/test_records.py): the
tables come with the schema (and with an upgrade of an older one) and go with destroy,
values of max_message_bytes (MySQL: larger than max_allowed_packet, so chunked and sent
in several round trips of one transaction), concurrent writers with a TTL, escaping,
and the index being used.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from threadline import HumanMessage, StoreError
from threadline.stores import Store
from threadline.stores._base import DEFAULT_MAX_MESSAGE_BYTES
from threadline.stores.sql._records_sql import scan_range

from .conftest import BackendSpec, make_spec

SQL_IDS = ["sqlite", "sqlite-memory", "postgresql", "mysql"]


@pytest.fixture(params=SQL_IDS)
def sql_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BackendSpec]:
    spec = make_spec(request.param, tmp_path)
    try:
        yield spec
    finally:
        spec.cleanup()


def _table_names(store: Store) -> set[str]:
    """The tables of the store's database whose names start with its table's."""
    table: str = store.table  # type: ignore[attr-defined]
    if store.url.scheme == "sqlite":
        conn = store._shared if store.memory else sqlite3.connect(store.path)  # type: ignore[attr-defined]
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    elif store.url.scheme == "postgresql":
        import psycopg

        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/test") as conn:
            rows = conn.execute("SELECT tablename FROM pg_tables").fetchall()
    else:
        import pymysql

        conn = pymysql.connect(host="127.0.0.1", user="root", database="test")
        with conn.cursor() as cur:
            cur.execute("SELECT table_name FROM information_schema.tables"
                        " WHERE table_schema = DATABASE()")
            rows = list(cur.fetchall())
        conn.close()
    names = {row[0].decode() if isinstance(row[0], bytes) else row[0] for row in rows}
    return {name for name in names if name == table or name.startswith(table + "_")}


def test_records_tables_come_with_the_schema_and_go_with_destroy(
        sql_backend: BackendSpec) -> None:
    store = sql_backend.open()
    store.put_records("s", {"k": b"v"})
    table = store.table  # type: ignore[attr-defined]
    assert {f"{table}_records", f"{table}_recsets"} <= _table_names(store)
    store.destroy()
    assert _table_names(store) == set()
    store.put_records("s", {"k": b"again"})  # set up afresh
    assert store.get_records("s", ["k"]) == {"k": b"again"}


def _migrations_module(backend_id: str) -> ModuleType:
    if backend_id.startswith("sqlite"):
        from threadline.stores.sql import _sqlite
        return _sqlite
    if backend_id == "postgresql":
        from threadline.stores.sql import _postgres_statements
        return _postgres_statements
    from threadline.stores.sql import _mysql_statements
    return _mysql_statements


def _write_version_2_row(store: Store, table: str) -> None:
    import hashlib
    import uuid

    import psycopg
    from psycopg import sql

    from threadline.stores._base import encode_message
    from threadline.stores.sql._postgres_statements import Names

    store.setup()
    names = Names(table)
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/test",
                         autocommit=True) as conn:
        (sid,) = conn.execute(sql.SQL(
            "INSERT INTO {} (session_hash, session_id, message_count) VALUES (%s, %s, 1)"
            " RETURNING sid").format(names.sessions),
            (hashlib.sha256(b"old").digest(), "old")).fetchone()  # type: ignore[misc]
        conn.execute(sql.SQL("INSERT INTO {} (sid, message, msg_key) VALUES (%s, %s, %s)"
                             ).format(names.messages),
                     (sid, encode_message(HumanMessage("before", id="b")), uuid.uuid4()))


def test_a_schema_from_before_records_gets_them_on_setup(
        sql_backend: BackendSpec, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tables written by the previous threadline (schema version 2, no records tables)
    are upgraded by the first store that sets them up; their sessions stay."""
    if sql_backend.separate_opens:
        pytest.skip("an in-memory database does not outlive its store")
    module = _migrations_module(sql_backend.id)
    current = list(module.MIGRATIONS)
    monkeypatch.setattr(module, "MIGRATIONS", current[:2])
    old = sql_backend.open()
    table = old.table  # type: ignore[attr-defined]
    if sql_backend.id == "postgresql":
        # Today's append writes columns of later migrations: the row is written as the
        # version-2 threadline wrote it.
        _write_version_2_row(old, table)
    else:
        old.append("old", [HumanMessage("before", id="b")])
    assert f"{table}_records" not in _table_names(old)
    monkeypatch.setattr(module, "MIGRATIONS", current)
    store = sql_backend.open()
    store.put_records("old", {"k": b"v"})
    assert {f"{table}_records", f"{table}_recsets"} <= _table_names(store)
    assert [m.text for m in store.get_messages("old")] == ["before"]
    assert store.get_records("old", ["k"]) == {"k": b"v"}
    assert store.delete_session("old") is True
    assert store.scan_records("old") == []


def test_values_of_max_message_bytes_round_trip(sql_backend: BackendSpec) -> None:
    """16 MiB values (MySQL: twice max_allowed_packet once hex-escaped) in one put, read
    back by get, scan and keys-only scans, sync and async; a rewrite with a smaller
    value leaves nothing of the old one."""
    store = sql_backend.open()
    big = os.urandom(DEFAULT_MAX_MESSAGE_BYTES)
    mid = os.urandom(5 << 20)
    store.put_records("s", {"big": big, "mid": mid, "small": b"x"})
    assert store.get_records("s", ["big", "mid", "small"]) == {
        "big": big, "mid": mid, "small": b"x"}
    assert store.scan_records("s", reverse=True) == [("small", b"x"), ("mid", mid),
                                                     ("big", big)]
    assert store.scan_records("s", limit=1) == [("big", big)]
    assert store.scan_records("s", keys_only=True) == [("big", b""), ("mid", b""),
                                                       ("small", b"")]
    asyncio.run(store.aput_records("s", {"big": b"small now", "mid2": mid}))
    assert asyncio.run(store.aget_records("s", ["big", "mid2"])) == {
        "big": b"small now", "mid2": mid}
    assert store.scan_records("s", after="big", before="small") == [("mid", mid),
                                                                   ("mid2", mid)]


def test_concurrent_puts_with_a_ttl_do_not_deadlock(sql_backend: BackendSpec) -> None:
    """Each put refreshes the expiry of the session's records: writers of one session
    queue on its recsets row instead of deadlocking on each other's records."""
    store = sql_backend.open(ttl=600)
    errors: list[BaseException] = []

    def writer(w: int) -> None:
        try:
            for i in range(20):
                store.put_records("s", {f"w{w}/{i:03d}": b"x", "shared": str(w).encode(),
                                        f"z/{i % 3}": b"y"}, delete=[f"w{w}/{i - 1:03d}"])
                if i % 5 == 0:
                    store.delete_records("s", prefix=f"w{(w + 1) % 4}/")
                    store.expire("s", 600)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    keys = [key for key, _ in store.scan_records("s", keys_only=True)]
    assert {"shared", "z/0", "z/1", "z/2"} <= set(keys)
    assert all(not k.startswith("w") or k.endswith("/019") for k in keys)


def test_keys_that_need_escaping(sql_backend: BackendSpec) -> None:
    store = sql_backend.open()
    keys = ["a'b", "a\\b", 'a"b', "a%b", "a_b", "a;--", "a\\'", "'"]
    store.put_records("s", {k: k.encode() for k in keys})
    assert store.get_records("s", keys) == {k: k.encode() for k in keys}
    assert [k for k, _ in store.scan_records("s", "a")] == sorted(k for k in keys if k[0] == "a")
    assert [k for k, _ in store.scan_records("s", "a%")] == ["a%b"]
    store.delete_records("s", ["a'b"], prefix="a\\")
    assert sorted(k for k, _ in store.scan_records("s")) == sorted(
        {"a\"b", "a%b", "a_b", "a;--", "'"})


def test_a_put_of_deletes_alone_creates_nothing(sql_backend: BackendSpec) -> None:
    store = sql_backend.open(ttl=60)
    store.put_records("s", {}, delete=["k"])
    assert store.delete_session("s") is False
    store.put_records("s", {"k": b"v", "l": b"w"})
    store.put_records("s", {}, delete=["k"])
    assert store.scan_records("s") == [("l", b"w")]
    store.delete_records("s", ["l"])
    assert store.delete_session("s") is False  # a record space left empty


def test_scan_range() -> None:
    assert scan_range("", None, None) == ("", "\x7f")
    assert scan_range("c/", "c/0003", "c/0006") == ("c/0003!", "c/0006")
    assert scan_range("c/", "b", "d") == ("c/", "c/\x7f")
    assert scan_range("c/", "c/\x7e", None) == ("c/~!", "c/\x7f")
    assert scan_range("c/", "d", None) is None
    assert scan_range("", "a", "a!") is None  # nothing lies strictly between


# -- backend specifics ------------------------------------------------------------------

def test_sqlite_scans_search_the_index(tmp_path: Path) -> None:
    from threadline.stores.sql._sqlite import SQLiteStore

    store = SQLiteStore(f"sqlite:///{tmp_path / 'r.db'}")
    store.put_records("s", {"k": b"v"})
    conn = sqlite3.connect(tmp_path / "r.db")
    for query in store._records_sql.scan.values():
        plan = " ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + query,
                                                       ("s", 0.0, "a", "b", 3)))
        assert "USING INDEX" in plan and "TEMP B-TREE" not in plan, plan
    conn.close()
    store.close()


def test_postgres_scans_are_index_range_scans(sql_backend: BackendSpec) -> None:
    """A scan reads the index range in the wanted order and stops at the LIMIT: no sort,
    whatever the plan (generic plans included, as prepared statements get)."""
    if sql_backend.id != "postgresql":
        pytest.skip("PostgreSQL only")
    import psycopg

    from threadline.stores.sql._postgres_records import _statements

    store = sql_backend.open()
    store.put_records("s", {f"k{i:05d}": b"v" for i in range(5000)})
    table = store.table  # type: ignore[attr-defined]
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", autocommit=True) as conn:
        conn.execute(f'ANALYZE "{table}_records"')
        conn.execute("SET plan_cache_mode = force_generic_plan")
        for (reverse, _), query in _statements(table).scan.items():
            rows = conn.execute("EXPLAIN (ANALYZE, FORMAT TEXT) " + query,
                                (b"x" * 32, "s", "k0", "k1", 3)).fetchall()
            plan = "\n".join(row[0] for row in rows)
            assert "Sort" not in plan and "Index" in plan, plan
            assert ("Backward" in plan) == reverse, plan


def test_mysql_big_put_is_one_transaction(sql_backend: BackendSpec,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A put sent in several round trips is all or nothing: when a later op fails, the
    connection is closed (the server rolls back) and the earlier ops leave no trace."""
    if sql_backend.id != "mysql":
        pytest.skip("MySQL only")
    import pymysql

    store: Any = sql_backend.open()
    store.put_records("s", {"kept": b"1"})
    big = os.urandom(12 << 20)
    real = store._execute
    seen: list[str] = []

    def failing(conn: Any, op: Any) -> Any:
        seen.append(op.query[:20])
        if len(seen) == 2:
            raise pymysql.err.OperationalError(1205, "Lock wait timeout exceeded")
        return real(conn, op)

    monkeypatch.setattr(store, "_execute", failing)
    with pytest.raises(StoreError, match="Lock wait timeout"):
        store.put_records("s", {"big": big, "other": b"2"}, delete=["kept"])
    monkeypatch.setattr(store, "_execute", real)
    assert seen[0].startswith("START TRANSACTION")
    assert store.scan_records("s") == [("kept", b"1")]
    store.put_records("s", {"big": big, "other": b"2"}, delete=["kept"])
    assert store.scan_records("s") == [("big", big), ("other", b"2")]
