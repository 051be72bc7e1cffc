"""Flat cost at scale on the SQL stores: what a window and a listing page read does not
grow with the table.

Each backend gets a table of 10,000 sessions (written in bulk in the store's own format,
then ANALYZEd, so the planner has real statistics) and one session of 1,000 messages
among 11,000 message rows. Then:

- **windows**: ``get_messages(sid, last=20)`` walks the ``(session, id)`` index
  backwards and reads 20 rows: no scan of the table, no sort of the session's rows
  (PostgreSQL: ``EXPLAIN (ANALYZE)``; MariaDB: ``ANALYZE FORMAT=JSON``; SQLite: the
  plan of the statement the store ran, captured with a trace callback, and the virtual
  machine steps it took next to a 40-message session's);
- **listings**: walking every page (100 a page) of both orders returns every session,
  in order; a page 45 or 95 pages deep reads about what the first page reads (rows read by the
  plan, handler reads on MariaDB, VM steps on SQLite), by id and most recent first, with
  an owner and with a prefix.

The benchmark (bench/bench_scale.py) times the same at up to a million sessions; these
tests check the mechanism at a size the suite can afford.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import require_server

from threadline import HumanMessage
from threadline.stores._base import Store, encode_message
from threadline.stores._sessions import ListQuery, check_list_args

SESSIONS = 10_000
BIG = 1_000  # messages of the session whose window is read
PAGE = 100

_NOISE = encode_message(HumanMessage("filler"))


def _sid(i: int) -> str:
    return f"s{i:05d}"


def _owner(i: int) -> str:
    return f"u{i % 2}"


def _updated(i: int, now: float) -> float:
    """Session ``i`` was last active ``i`` seconds ago; 1 in 7 ties with its neighbour."""
    return now - i + (1 if i % 7 == 0 else 0)


def _expected(order: str, owner: str | None, prefix: str, now: float) -> list[str]:
    """The listing, computed from the fill's definition alone."""
    rows = [(i, _sid(i)) for i in range(SESSIONS)
            if (owner is None or _owner(i) == owner) and _sid(i).startswith(prefix)]
    rows += [(-1, "big")] if owner is None and "big".startswith(prefix) else []
    if order == "id":
        return sorted(sid for _, sid in rows)
    return [sid for _, sid in sorted(rows, key=lambda r: (_updated(r[0], now) if r[0] >= 0
                                                          else now + 10, r[1]), reverse=True)]


LISTINGS = [("id", None, ""), ("recent", None, ""), ("id", "u1", ""), ("recent", "u1", ""),
            ("id", None, "s0"), ("recent", None, "s0")]


# -- the backends: a filled store, the cost of a statement ------------------------------


class Backend:
    """A filled store and how to measure what its statements read."""

    store: Store
    now: float
    #: The most a page may read (rows, handler reads or VM steps): about a page's worth,
    #: far below the 10,000 sessions (a scan of the table reads 100 times more).
    page_budget: int

    def window_reads(self) -> tuple[int, str]:
        """Rows the window's plan read from the messages table, and the plan."""
        raise NotImplementedError

    def listing_reads(self, query: ListQuery) -> int:
        """What the page's statement read (rows, handler reads or VM steps)."""
        raise NotImplementedError


class SQLiteBackend(Backend):
    page_budget = 30  # hundreds of VM steps: a page takes 10 to 20
    def __init__(self, path: Path) -> None:
        from threadline.stores.sql._sqlite import SQLiteStore

        self.store = store = SQLiteStore(f"sqlite:///{path}?table=chat")
        store.append("big", [HumanMessage(f"m{i}") for i in range(BIG)])
        self.now = now = time.time()
        rows = [(_sid(i), now - 10**5, _updated(i, now), _owner(i)) for i in range(SESSIONS)]

        def fill(conn: sqlite3.Connection) -> None:
            conn.executemany("INSERT INTO chat_sessions (session_id, created_at, updated_at,"
                             " message_count, owner) VALUES (?, ?, ?, 1, ?)", rows)
            conn.executemany("INSERT INTO chat (session_id, message) VALUES (?, ?)",
                             [(row[0], _NOISE) for row in rows])
            conn.execute("UPDATE chat_sessions SET updated_at = ? WHERE session_id = 'big'",
                         (now + 10,))
            conn.execute("ANALYZE")

        store._run(fill, write=True)

    def _steps(self, call: Callable[[], object]) -> tuple[int, list[str]]:
        """VM instructions run (in hundreds) and the statements sent by ``call``."""
        steps, sent = [0], list[str]()

        def count() -> int:
            steps[0] += 1
            return 0

        def hook(conn: sqlite3.Connection) -> None:
            conn.set_progress_handler(count, 100)
            conn.set_trace_callback(sent.append)

        def unhook(conn: sqlite3.Connection) -> None:
            conn.set_progress_handler(None, 0)
            conn.set_trace_callback(None)

        self.store._run(hook)  # type: ignore[attr-defined]
        try:
            call()
        finally:
            self.store._run(unhook)  # type: ignore[attr-defined]
        return steps[0], sent

    def window_reads(self) -> tuple[int, str]:
        big, sent = self._steps(lambda: self.store.get_messages("big", last=20))
        (statement,) = [s for s in sent if "LIMIT" in s]
        plan = "\n".join(row[3] for row in self.store._run(  # type: ignore[attr-defined]
            lambda conn: conn.execute("EXPLAIN QUERY PLAN " + statement).fetchall()))
        self.store.append("small", [HumanMessage(f"m{i}") for i in range(40)])
        small, _ = self._steps(lambda: self.store.get_messages("small", last=20))
        self.store.delete_session("small")
        assert "USING INDEX chat_session_idx" in plan and "TEMP B-TREE" not in plan, plan
        assert big <= 2 * max(small, 1), (big, small)  # 25 times the rows: no more work
        return 20, plan

    def listing_reads(self, query: ListQuery) -> int:
        steps, _ = self._steps(lambda: self.store.list_sessions(
            order=query.order, owner=query.owner, prefix=query.prefix, limit=query.limit,
            cursor=query.cursor))
        return steps


class PostgresBackend(Backend):
    page_budget = 2 * (PAGE + 1)  # rows: a page reads PAGE + 1 or 2
    URL = "postgresql://postgres@127.0.0.1:5432/test"

    def __init__(self) -> None:
        import psycopg

        from threadline.stores.sql._postgres import PostgresStore
        from threadline.stores.sql._postgres_statements import _session_hash

        require_server("127.0.0.1", 5432, "PostgreSQL")
        self.psycopg = psycopg
        self.store = store = PostgresStore(self.URL, table=f"t_{secrets.token_hex(5)}")
        store.append("big", [HumanMessage(f"m{i}") for i in range(BIG)])
        names = store._names
        self.now = now = time.time()
        sql = psycopg.sql
        with psycopg.connect(self.URL, autocommit=True) as conn, conn.cursor() as cur:
            cur.executemany(sql.SQL(
                "INSERT INTO {s} (session_hash, session_id, created_at, updated_at, owner,"
                " message_count) VALUES (%s, %s, to_timestamp(%s), to_timestamp(%s), %s, 1)"
            ).format(s=names.sessions), [
                (_session_hash(_sid(i)), _sid(i), now - 10**5, _updated(i, now), _owner(i))
                for i in range(SESSIONS)])
            conn.execute(sql.SQL(
                "INSERT INTO {m} (sid, message) SELECT sid, %s FROM {s}"
                " WHERE session_id <> 'big'").format(m=names.messages, s=names.sessions),
                (_NOISE,))
            conn.execute(sql.SQL("UPDATE {s} SET updated_at = to_timestamp(%s)"
                                 " WHERE session_id = 'big'").format(s=names.sessions),
                         (now + 10,))
            conn.execute(sql.SQL("ANALYZE {s}").format(s=names.sessions))
            conn.execute(sql.SQL("ANALYZE {m}").format(m=names.messages))

    def _analyze(self, query: Any, params: Any) -> dict[str, Any]:
        with self.psycopg.connect(self.URL, autocommit=True) as conn:
            if isinstance(query, str):  # a statement composed once, as text
                query = self.psycopg.sql.SQL(query)
            ((plan,),) = conn.execute(self.psycopg.sql.SQL("EXPLAIN (ANALYZE, FORMAT JSON) ")
                                      + query, params).fetchall()
        return dict(plan[0]["Plan"])

    def _nodes(self, node: dict[str, Any]) -> Iterator[dict[str, Any]]:
        yield node
        for child in node.get("Plans", []):
            yield from self._nodes(child)

    def _read(self, plan: dict[str, Any], table: str) -> int:
        return sum(int(n["Actual Rows"]) * int(n["Actual Loops"]) for n in self._nodes(plan)
                   if n.get("Relation Name") == table)

    def window_reads(self) -> tuple[int, str]:
        from threadline.stores.sql._postgres_sessions import STATEMENTS

        op = STATEMENTS.get(self.store._names, "big", 20, False)  # type: ignore[attr-defined]
        plan = self._analyze(op.query, op.params)
        table = self.store.table  # type: ignore[attr-defined]
        scans = [n for n in self._nodes(plan) if n.get("Relation Name") == table]
        assert [(n["Node Type"], n.get("Scan Direction"), n.get("Index Name")) for n in scans
                ] == [("Index Scan", "Backward", f"{table}_sid_id")], json.dumps(plan)
        assert not [n for n in self._nodes(plan) if "Sort" in n["Node Type"]], plan
        return self._read(plan, table), json.dumps(plan)

    def listing_reads(self, query: ListQuery) -> int:
        from threadline.stores.sql._postgres_sessions import STATEMENTS

        op = STATEMENTS.page(self.store._names, query)  # type: ignore[attr-defined]
        plan = self._analyze(op.query, op.params)
        sessions = f"{self.store.table}_sessions"  # type: ignore[attr-defined]
        assert not [n for n in self._nodes(plan) if n["Node Type"] == "Sort"], plan
        return self._read(plan, sessions)


class MariaDBBackend(Backend):
    page_budget = 4 * PAGE  # handler reads: a page by id takes 3 per session
    def __init__(self) -> None:
        import pymysql

        from threadline.stores.sql._mysql import MySQLStore
        from threadline.stores.sql._mysql_statements import _hash

        require_server("127.0.0.1", 3306, "MariaDB")
        self.pymysql = pymysql
        self.store = store = MySQLStore("mysql://root@127.0.0.1:3306/test",
                                        table=f"t_{secrets.token_hex(5)}")
        store.append("big", [HumanMessage(f"m{i}") for i in range(BIG)])
        names = self.names = store._names
        self.now = now = time.time()
        with self._connect() as conn, conn.cursor() as cur:
            cur.execute("SELECT VERSION()")
            if "mariadb" not in str(cur.fetchone()[0]).lower():
                pytest.skip("ANALYZE FORMAT=JSON is MariaDB's")
            cur.execute("SET time_zone = '+00:00'")
            cur.executemany(
                f"INSERT INTO {names.s} (session_hash, session_id, created_at, updated_at,"
                " owner, message_count) VALUES (%s, %s, FROM_UNIXTIME(%s), FROM_UNIXTIME(%s),"
                " %s, 1)",
                [(_hash(_sid(i)), _sid(i).encode(), round(now - 10**5, 6),
                  round(_updated(i, now), 6), _owner(i).encode()) for i in range(SESSIONS)])
            cur.execute(f"INSERT INTO {names.m} (sid, message) SELECT sid, %s FROM {names.s}"
                        " WHERE session_id <> 'big'", (_NOISE,))
            cur.execute(f"UPDATE {names.s} SET updated_at = FROM_UNIXTIME(%s)"
                        " WHERE session_id = 'big'", (round(now + 10, 6),))
            cur.execute(f"ANALYZE TABLE {names.s}, {names.m}")

    def _connect(self) -> Any:
        return self.pymysql.connect(host="127.0.0.1", port=3306, user="root", database="test",
                                    autocommit=True, charset="utf8mb4",
                                    client_flag=self.pymysql.constants.CLIENT.MULTI_STATEMENTS)

    def window_reads(self) -> tuple[int, str]:
        from threadline.stores.sql._mysql import _render
        from threadline.stores.sql._mysql_sessions import STATEMENTS

        op = STATEMENTS.get(self.names, "big", 20, False)
        with self._connect() as conn, conn.cursor() as cur:
            cur.execute("ANALYZE FORMAT=JSON " + _render(conn, op))
            text = str(cur.fetchone()[0])
        plan = json.loads(text)
        tables = {t["table_name"]: t for t in _tables(plan)}
        messages = tables["m"]
        assert messages["key"] == "sid_id", text
        assert "filesort" not in text and messages["access_type"] in ("ref", "range"), text
        return int(messages["r_rows"]), text

    def listing_reads(self, query: ListQuery) -> int:
        from threadline.stores.sql._mysql import _render
        from threadline.stores.sql._mysql_sessions import STATEMENTS

        op = STATEMENTS.page(self.names, query)
        with self._connect() as conn, conn.cursor() as cur:
            cur.execute("FLUSH STATUS")
            cur.execute(_render(conn, op))
            while cur.nextset():
                pass
            cur.execute("SHOW SESSION STATUS LIKE 'Handler_read%'")
            return sum(int(value) for _, value in cur.fetchall())


def _tables(node: Any) -> Iterator[dict[str, Any]]:
    """Every ``table`` object of a MariaDB JSON plan."""
    if isinstance(node, dict):
        if isinstance(node.get("table"), dict):
            yield node["table"]
        for value in node.values():
            yield from _tables(value)
    elif isinstance(node, list):
        for value in node:
            yield from _tables(value)


@pytest.fixture(scope="module", params=["sqlite", "postgresql", "mysql"])
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[Backend]:
    made: Backend
    if request.param == "sqlite":
        made = SQLiteBackend(tmp_path_factory.mktemp("scale") / "chat.db")
    elif request.param == "postgresql":
        pytest.importorskip("psycopg")
        made = PostgresBackend()
    else:
        pytest.importorskip("pymysql")
        made = MariaDBBackend()
    try:
        yield made
    finally:
        made.store.destroy()  # type: ignore[attr-defined]
        made.store.close()


# -- the tests --------------------------------------------------------------------------


def test_a_window_walks_the_index_backwards(backend: Backend) -> None:
    rows, plan = backend.window_reads()
    assert rows <= 21, plan  # the 20 rows of the window (MariaDB counts the one past it)
    got = backend.store.get_messages("big", last=20)
    assert [m.content for m in got] == [f"m{i}" for i in range(BIG - 20, BIG)]


@pytest.mark.parametrize(("order", "owner", "prefix"), LISTINGS)
def test_every_page_in_order_and_a_deep_page_reads_what_the_first_reads(
        backend: Backend, order: str, owner: str | None, prefix: str) -> None:
    store = backend.store
    walked: list[str] = []
    cursors: list[str | None] = [None]
    while True:
        page = store.list_sessions(order=order, owner=owner, prefix=prefix,  # type: ignore[arg-type]
                                   limit=PAGE, cursor=cursors[-1])
        walked += page.session_ids
        if page.next_cursor is None:
            break
        cursors.append(page.next_cursor)
    assert walked == _expected(order, owner, prefix, backend.now)
    assert len(cursors) >= 50
    first, deep = (backend.listing_reads(check_list_args(order, owner, prefix, None,
                                                         PAGE, cursor))
                   for cursor in (None, cursors[-5]))
    assert deep <= 2 * first + 10, (first, deep)
    assert max(first, deep) <= backend.page_budget, (first, deep)  # not the whole table
