"""Per-turn cost of the stores: threadline vs LangChain's history classes vs raw drivers.

A turn is what a chat turn does to its history: read the last 20 messages, then append
the new question and answer (2 messages). Contenders, per backend (SQLite, PostgreSQL,
MariaDB, Redis):

* threadline — ``store.history(sid)`` made per turn on one shared store (as
  ``get_session_history=store.history`` does), ``get_messages(last=20)`` + ``add_messages``.
* LangChain — its class made per turn, as RunnableWithMessageHistory uses it:
  ``.messages`` (it has no "last N") then ``add_messages``. langchain-community's
  RedisChatMessageHistory and SQLChatMessageHistory (a SQLAlchemy URL, as its docs show),
  langchain-postgres' PostgresChatMessageHistory (one psycopg connection per thread).
* raw — the same operations written by hand on the driver (redis-py pipelines, psycopg,
  pymysql, sqlite3), JSON in and out: the floor a store could reach.

Latency is measured at 10, 100 and 1000 stored messages (the history is put back to its
size every 10 turns, outside the timed region); throughput with 1, 8 and 32 threads,
each on its own session. Backends whose server, driver or threadline module is missing
print "not available". Everything created (tables, keys, files) is removed at the end.

    python bench/bench_stores.py            # tables and targets
    python bench/bench_stores.py --quick    # shorter budgets
    python bench/bench_stores.py --strict   # exit 1 if a target is missed
    python bench/bench_stores.py --only redis
"""

from __future__ import annotations

import argparse
import json
import secrets
import sqlite3
import sys
import tempfile
import threading
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _util import (
    Target,
    finish,
    fmt_ratio,
    median,
    print_table,
    run_threads,
    time_repeated,
)

warnings.filterwarnings("ignore", category=DeprecationWarning)
warnings.filterwarnings("ignore", message=".*langchain-community.*")

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
MY_URL = "mysql://root@127.0.0.1:3306/test"
REDIS_URL = "redis://127.0.0.1:6379/0"
SIZES = (10, 100, 1000)
THREADS = (1, 8, 32)
LAST = 20
# The history is put back to its size every RESET_EVERY turns (outside the timed region),
# so it holds between n and n + 2 * RESET_EVERY messages while timed.
RESET_EVERY = 10
TAG = secrets.token_hex(3)
QUESTION = "What did we decide about the quarterly roadmap and who owns the next step?"
ANSWER = ("We agreed to ship the importer first, then the export API; Dana owns the "
          "importer, Lee the API, and we review progress on Thursday. " * 2)

Turn = Callable[[str], object]


@dataclass
class Contender:
    """One way to run a turn against one backend."""

    backend: str
    kind: str  # "threadline", "langchain" or "raw"
    name: str
    make_turn: Callable[[], Turn]  # a turn function for one thread
    load: Callable[[str, int], None]  # put a session back to n messages
    cleanup: Callable[[], None]
    slow: bool = False
    latency: dict[int, float] = field(default_factory=dict)
    throughput: dict[int, float] = field(default_factory=dict)


def _dicts(n: int) -> list[dict[str, Any]]:
    """LangChain message dicts for n messages (alternating question and answer)."""
    out = []
    for i in range(n):
        kind, text = ("human", QUESTION) if i % 2 == 0 else ("ai", ANSWER)
        out.append({"type": kind, "data": {
            "content": text, "additional_kwargs": {}, "response_metadata": {},
            "type": kind, "name": None, "id": None,
            **({"tool_calls": [], "invalid_tool_calls": [], "usage_metadata": None}
               if kind == "ai" else {})}})
    return out


TURN_JSON = [json.dumps(d) for d in _dicts(2)]


# -- threadline ----------------------------------------------------------------------------


def threadline_contender(backend: str, url: str, **options: Any) -> Contender:
    from threadline import AIMessage, HumanMessage
    from threadline.stores import open_store

    store = open_store(url, **options)
    store.setup()
    seed = [HumanMessage(QUESTION) if i % 2 == 0 else AIMessage(ANSWER) for i in range(1000)]

    def make_turn() -> Turn:
        def turn(sid: str) -> object:
            history = store.history(sid)
            history.get_messages(last=LAST)
            history.add_messages([HumanMessage(QUESTION), AIMessage(ANSWER)])
            return None
        return turn

    def load(sid: str, n: int) -> None:
        store.delete_session(sid)
        store.append(sid, seed[:n])

    def cleanup() -> None:
        destroy = getattr(store, "destroy", None)
        if destroy is not None:
            destroy()
        store.close()

    return Contender(backend, "threadline", f"threadline {backend}", make_turn, load, cleanup)


# -- LangChain -----------------------------------------------------------------------------


def _lc_messages(n: int) -> list[Any]:
    from langchain_core.messages import messages_from_dict

    return messages_from_dict(_dicts(n))


def langchain_redis() -> Contender:
    import redis
    from langchain_community.chat_message_histories import RedisChatMessageHistory

    prefix = f"bench_lc{TAG}:"
    raw = redis.Redis.from_url(REDIS_URL)
    turn_msgs = _lc_messages(2)
    seed = [json.dumps(d) for d in _dicts(1000)]

    def make_turn() -> Turn:
        def turn(sid: str) -> object:
            history = RedisChatMessageHistory(sid, url=REDIS_URL, key_prefix=prefix)
            history.messages[-LAST:]
            history.add_messages(turn_msgs)
            history.redis_client.close()
            return None
        return turn

    def load(sid: str, n: int) -> None:
        pipe = raw.pipeline()
        pipe.delete(prefix + sid)
        if n:
            pipe.lpush(prefix + sid, *seed[:n])
        pipe.execute()

    def cleanup() -> None:
        keys = list(raw.scan_iter(match=prefix + "*", count=1000))
        if keys:
            raw.delete(*keys)
        raw.close()

    return Contender("redis", "langchain", "LangChain RedisChatMessageHistory",
                     make_turn, load, cleanup, slow=True)


def langchain_sql(backend: str, sa_url: str) -> Contender:
    import sqlalchemy
    from langchain_community.chat_message_histories import SQLChatMessageHistory

    table = f"bench_lc_{TAG}"
    turn_msgs = _lc_messages(2)
    seed = _lc_messages(1000)

    def make_turn() -> Turn:
        def turn(sid: str) -> object:
            history = SQLChatMessageHistory(sid, connection=sa_url, table_name=table)
            history.messages[-LAST:]
            history.add_messages(turn_msgs)
            history.engine.dispose()
            return None
        return turn

    def load(sid: str, n: int) -> None:
        history = SQLChatMessageHistory(sid, connection=sa_url, table_name=table)
        history.clear()
        history.add_messages(seed[:n])
        history.engine.dispose()

    def cleanup() -> None:
        engine = sqlalchemy.create_engine(sa_url)
        with engine.begin() as conn:
            conn.execute(sqlalchemy.text(f"DROP TABLE IF EXISTS {table}"))
        engine.dispose()

    return Contender(backend, "langchain", f"LangChain SQLChatMessageHistory ({backend})",
                     make_turn, load, cleanup, slow=True)


def _uuid(sid: str) -> str:
    # langchain-postgres accepts only UUID session ids.
    return str(uuid.uuid5(uuid.NAMESPACE_URL, sid))


def langchain_postgres() -> Contender:
    import psycopg
    from langchain_postgres import PostgresChatMessageHistory

    table = f"bench_lcpg_{TAG}"
    admin = psycopg.connect(PG_URL, autocommit=True)
    PostgresChatMessageHistory.create_tables(admin, table)
    turn_msgs = _lc_messages(2)
    seed = _lc_messages(1000)
    connections: list[Any] = [admin]

    def make_turn() -> Turn:
        conn = psycopg.connect(PG_URL)
        connections.append(conn)

        def turn(sid: str) -> object:
            history = PostgresChatMessageHistory(table, _uuid(sid), sync_connection=conn)
            history.messages[-LAST:]
            history.add_messages(turn_msgs)
            return None
        return turn

    def load(sid: str, n: int) -> None:
        history = PostgresChatMessageHistory(table, _uuid(sid), sync_connection=admin)
        history.clear()
        if n:
            history.add_messages(seed[:n])

    def cleanup() -> None:
        admin.execute(f"DROP TABLE IF EXISTS {table}")
        for conn in connections:
            conn.close()

    return Contender("postgresql", "langchain", "LangChain PostgresChatMessageHistory",
                     make_turn, load, cleanup, slow=True)


# -- raw drivers ---------------------------------------------------------------------------


def raw_redis() -> Contender:
    import redis

    prefix = f"bench_raw{TAG}:"
    client = redis.Redis.from_url(REDIS_URL)
    seed = [json.dumps(d) for d in _dicts(1000)]

    def make_turn() -> Turn:
        def turn(sid: str) -> object:
            key = prefix + sid
            [json.loads(m) for m in reversed(client.lrange(key, 0, LAST - 1))]
            pipe = client.pipeline(transaction=True)
            pipe.lpush(key, *[json.dumps(d) for d in _TURN_DICTS])
            pipe.execute()
            return None
        return turn

    def load(sid: str, n: int) -> None:
        pipe = client.pipeline()
        pipe.delete(prefix + sid)
        if n:
            pipe.lpush(prefix + sid, *seed[:n])
        pipe.execute()

    def cleanup() -> None:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()

    return Contender("redis", "raw", "raw redis-py", make_turn, load, cleanup)


_TURN_DICTS = _dicts(2)


def _raw_sql(backend: str, name: str, connect: Callable[[], Any], ddl: list[str],
             param: str, drop: list[str]) -> Contender:
    """A raw-driver contender for a DB-API driver (``param`` is its placeholder)."""
    table = f"bench_raw_{TAG}"
    setup = connect()
    cur = setup.cursor()
    for statement in ddl:
        cur.execute(statement.format(t=table))
    setup.commit()
    seed = [json.dumps(d) for d in _dicts(1000)]
    select = (f"SELECT message FROM {table} WHERE session_id = {param} "
              f"ORDER BY id DESC LIMIT {LAST}")
    insert = f"INSERT INTO {table} (session_id, message) VALUES ({param}, {param})"
    connections = [setup]
    lock = threading.Lock()

    def make_turn() -> Turn:
        conn = connect()
        with lock:
            connections.append(conn)

        def turn(sid: str) -> object:
            c = conn.cursor()
            c.execute(select, (sid,))
            [json.loads(row[0]) for row in reversed(c.fetchall())]
            c.executemany(insert, [(sid, json.dumps(d)) for d in _TURN_DICTS])
            conn.commit()
            return None
        return turn

    def load(sid: str, n: int) -> None:
        c = setup.cursor()
        c.execute(f"DELETE FROM {table} WHERE session_id = {param}", (sid,))
        if n:
            c.executemany(insert, [(sid, m) for m in seed[:n]])
        setup.commit()

    def cleanup() -> None:
        c = setup.cursor()
        for statement in drop:
            c.execute(statement.format(t=table))
        setup.commit()
        for conn in connections:
            conn.close()

    return Contender(backend, "raw", name, make_turn, load, cleanup)


def raw_sqlite(path: Path) -> Contender:
    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(path, timeout=30, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    return _raw_sql("sqlite", "raw sqlite3", connect, [
        "CREATE TABLE {t} (id INTEGER PRIMARY KEY AUTOINCREMENT, session_id TEXT NOT NULL,"
        " message TEXT NOT NULL)",
        "CREATE INDEX {t}_sid ON {t} (session_id, id)"], "?", ["DROP TABLE {t}"])


def raw_postgres() -> Contender:
    import psycopg

    return _raw_sql("postgresql", "raw psycopg", lambda: psycopg.connect(PG_URL), [
        "CREATE TABLE {t} (id BIGSERIAL PRIMARY KEY, session_id TEXT NOT NULL,"
        " message TEXT NOT NULL)",
        "CREATE INDEX {t}_sid ON {t} (session_id, id)"], "%s", ["DROP TABLE {t}"])


def raw_mysql() -> Contender:
    import pymysql

    def connect() -> Any:
        return pymysql.connect(host="127.0.0.1", port=3306, user="root", database="test",
                               charset="utf8mb4")

    return _raw_sql("mysql", "raw pymysql", connect, [
        "CREATE TABLE {t} (id BIGINT AUTO_INCREMENT PRIMARY KEY,"
        " session_id VARCHAR(255) NOT NULL, message LONGTEXT NOT NULL,"
        " INDEX (session_id, id)) ENGINE=InnoDB"], "%s", ["DROP TABLE {t}"])


# -- measuring -----------------------------------------------------------------------------


def measure_latency(c: Contender, quick: bool) -> None:
    turn = c.make_turn()
    budget = (0.6 if c.slow else 1.0) * (0.5 if quick else 1.0)
    for n in SIZES:
        sid = f"lat-{n}"
        c.load(sid, n)
        turn(sid)  # warm up: connections, schema checks, caches
        c.load(sid, n)
        def reset(sid: str = sid, n: int = n, calls: list[int] = [0]) -> None:  # noqa: B006
            calls[0] += 1
            if calls[0] % RESET_EVERY == 0:
                c.load(sid, n)

        times = time_repeated(lambda sid=sid: turn(sid), min_runs=5, max_runs=300,
                              budget_s=budget, after=reset)
        c.latency[n] = median(times)


def measure_throughput(c: Contender, quick: bool) -> None:
    duration = (0.7 if c.slow else 1.0) * (0.5 if quick else 1.0)
    for threads in THREADS:
        c.throughput[threads] = _turns_per_second(c, threads, duration)


def _turns_per_second(c: Contender, threads: int, duration: float) -> float:
    turns = [c.make_turn() for _ in range(threads)]
    sids = [f"tp-{threads}-{i}" for i in range(threads)]
    for sid in sids:
        c.load(sid, LAST)
    done, took = run_threads([lambda turn=turn, sid=sid: turn(sid)  # type: ignore[misc]
                              for turn, sid in zip(turns, sids, strict=True)], duration)
    return done / took


def build_contenders(tmp: Path, only: str) -> tuple[list[Contender], list[str]]:
    """Every contender that can run here, and a note for each that cannot."""
    factories: list[tuple[str, Callable[[], Contender]]] = [
        ("threadline sqlite", lambda: threadline_contender(
            "sqlite", f"sqlite:///{tmp / 'threadline.db'}")),
        ("threadline postgresql", lambda: threadline_contender(
            "postgresql", PG_URL, table=f"bench_tl_{TAG}")),
        ("threadline mysql", lambda: threadline_contender(
            "mysql", MY_URL, table=f"bench_tl_{TAG}")),
        ("threadline redis", lambda: threadline_contender(
            "redis", REDIS_URL, key_prefix=f"bench_tl{TAG}:")),
        ("LangChain SQLChatMessageHistory (sqlite)", lambda: langchain_sql(
            "sqlite", f"sqlite:///{tmp / 'langchain.db'}")),
        ("LangChain PostgresChatMessageHistory", langchain_postgres),
        ("LangChain SQLChatMessageHistory (postgresql)", lambda: langchain_sql(
            "postgresql", "postgresql+psycopg://postgres@127.0.0.1:5432/test")),
        ("LangChain SQLChatMessageHistory (mysql)", lambda: langchain_sql(
            "mysql", "mysql+pymysql://root@127.0.0.1:3306/test")),
        ("LangChain RedisChatMessageHistory", langchain_redis),
        ("raw sqlite3", lambda: raw_sqlite(tmp / "raw.db")),
        ("raw psycopg", raw_postgres),
        ("raw pymysql", raw_mysql),
        ("raw redis-py", raw_redis),
    ]
    contenders, missing = [], []
    for label, factory in factories:
        if only.lower() not in label.lower():
            continue
        try:
            contenders.append(factory())
        except Exception as exc:
            missing.append(f"{label}: not available ({type(exc).__name__}: "
                           f"{str(exc).splitlines()[0][:100] if str(exc) else ''})")
    return contenders, missing


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter time budgets")
    parser.add_argument("--only", default="", help="run the contenders whose name has this")
    parser.add_argument("--strict", action="store_true", help="exit 1 on a missed target")
    args = parser.parse_args()

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmpdir:
        contenders, missing = build_contenders(Path(tmpdir), args.only)
        try:
            for c in contenders:
                try:
                    measure_latency(c, args.quick)
                    measure_throughput(c, args.quick)
                except Exception as exc:
                    missing.append(f"{c.name}: failed ({type(exc).__name__}: {exc})"[:160])
                    c.latency.clear()
                    c.throughput.clear()
                print(f"  measured {c.name}", file=sys.stderr, flush=True)
        finally:
            for c in contenders:
                try:
                    c.cleanup()
                except Exception as exc:
                    print(f"cleanup of {c.name} failed: {exc}", file=sys.stderr)
    done = [c for c in contenders if c.latency]
    return report(done, missing, time.perf_counter() - started, args.strict)


def report(done: list[Contender], missing: list[str], elapsed: float, strict: bool) -> int:
    print_table(
        f"Per-turn latency, median ms (read last {LAST} + append 2; LangChain reads all)",
        ["contender", *(f"{n} msgs" for n in SIZES)],
        [[c.name, *(f"{c.latency[n] * 1e3:.2f}" for n in SIZES)] for c in done])
    print_table(
        "Throughput, turns/s (threads, one session each)",
        ["contender", *(f"{t} thr" for t in THREADS)],
        [[c.name, *(f"{c.throughput.get(t, 0):,.0f}" for t in THREADS)] for c in done])

    targets: list[Target] = []
    rows: list[list[str]] = []
    for backend in ("sqlite", "postgresql", "mysql", "redis"):
        tl = next((c for c in done if c.backend == backend and c.kind == "threadline"), None)
        if tl is None:
            rows.append([backend, "threadline not available", ""])
            continue
        raw = next((c for c in done if c.backend == backend and c.kind == "raw"), None)
        lcs = [c for c in done if c.backend == backend and c.kind == "langchain"]
        for n in SIZES:
            vs_raw = fmt_ratio(tl.latency[n], raw.latency[n]) if raw else "n/a"
            vs_lc = ", ".join(f"{fmt_ratio(lc.latency[n], tl.latency[n])}"
                              f" ({lc.name.removeprefix('LangChain ')})" for lc in lcs)
            rows.append([f"{backend} @ {n}", vs_raw, vs_lc or "n/a"])
        if raw:
            ratio = tl.latency[100] / raw.latency[100]
            targets.append(Target(f"{backend}: threadline within 1.3x of raw at 100 msgs",
                                  ratio <= 1.3, f"{ratio:.2f}x"))
        for lc in lcs:
            ratio = lc.latency[100] / tl.latency[100]
            targets.append(Target(f"{backend}: >= 3x faster than {lc.name} at 100 msgs",
                                  ratio >= 3, f"{ratio:.1f}x"))
        flat = tl.latency[1000] / tl.latency[10]
        targets.append(Target(f"{backend}: threadline flat in history length (1000 vs 10 "
                              "msgs within 1.5x)", flat <= 1.5, f"{flat:.2f}x"))
    print_table("Ratios of medians", ["backend @ size", "threadline/raw", "LangChain/threadline"],
                [r + [""] * (3 - len(r)) for r in rows])
    return finish(targets, missing, elapsed, strict=strict)


if __name__ == "__main__":
    sys.exit(main())
