"""Sessions at scale: recent-first listing and full-text search next to the raw queries.

A store of ``--sessions`` sessions (default 100,000) of ``--messages`` messages each
(default 10: a million messages), 1,000 owners, is filled through threadline's own
``append`` (so its indexes are the ones users get), then each query is timed both ways
in alternating rounds, in one run:

- **threadline**: ``store.list_sessions(order="recent", ...)`` and ``store.search(...)``,
  validation, cursor decoding, decoding of the candidate messages, the whole-word check,
  positions and snippets included;
- **raw**: the one statement the driver would run for the same answer, written by hand
  on the same tables and indexes (no validation, no decoding, no position; the deep page
  seeks on the time alone, ignoring ties).

Queries: the first page of 100 sessions most recent first; a page 500 pages deep (its
cursor found by walking, not timed); one owner's first page; a search for a rare word
(in 10 messages of the million), for a common one (limit 20), and the rare word scoped
to the owner of a session holding it.

    python bench/bench_sessions.py                         # SQLite, PostgreSQL, MySQL
    python bench/bench_sessions.py --backends sqlite --sessions 10000
    python bench/bench_sessions.py --keep                  # reuse the filled stores

Filling takes minutes at the default size (each append is a transaction, as a chat's
turn is); ``--keep`` keeps the SQLite file in ``bench/.cache/`` and the server tables
(``bench_sessions_<N>``) for the next run.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from _util import Target, fmt_ratio, median, print_table, report_targets

from threadline import AIMessage, HumanMessage
from threadline.stores import Store, open_store

CACHE = Path(__file__).resolve().parent / ".cache"
PG = "postgresql://postgres@127.0.0.1:5432/test"
MYSQL = "mysql://root@127.0.0.1:3306/test"
OWNERS = 1_000
RARE = "zanzibar"
ROUNDS = 15


def _vocabulary(rng: random.Random, size: int = 3_000) -> list[str]:
    syllables = ["ka", "lo", "mi", "ne", "ru", "ta", "vo", "shi", "an", "el", "or", "um",
                 "pre", "sto", "gra", "fen", "dul", "bry"]
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))))
    return sorted(words)


def _texts(count: int, seed: int = 42) -> Iterator[str]:
    """``count`` chat-length sentences; word frequencies fall off as 1/rank (Zipf), so the
    first word of the vocabulary is common and most are rare; ten carry :data:`RARE`."""
    rng = random.Random(seed)
    vocabulary = _vocabulary(rng)
    weights = [1 / (rank + 1) for rank in range(len(vocabulary))]
    planted = set(rng.sample(range(count), 10))
    for index in range(count):
        words = rng.choices(vocabulary, weights, k=rng.randint(8, 24))
        if index in planted:
            words[rng.randrange(len(words))] = RARE
        yield " ".join(words).capitalize() + "."


def common_word() -> str:
    return _vocabulary(random.Random(42))[0]


def fill(store: Store, sessions: int, per_session: int, threads: int) -> float:
    """Fill the store; seconds taken."""
    texts = _texts(sessions * per_session)
    start = time.perf_counter()

    def session(number: int, batch: list[str]) -> None:
        sid = f"s{number:07d}"
        store.append(sid, [HumanMessage(t) if i % 2 == 0 else AIMessage(t)
                           for i, t in enumerate(batch)])
        store.update_session(sid, owner=f"u{number % OWNERS:04d}",
                             title=f"Session {number}")

    def batches() -> Iterator[tuple[int, list[str]]]:
        for number in range(sessions):
            yield number, [next(texts) for _ in range(per_session)]

    with ThreadPoolExecutor(threads) as pool:
        for done, _ in enumerate(pool.map(lambda args: session(*args), batches()), 1):
            if done % 5_000 == 0:
                rate = done / (time.perf_counter() - start)
                print(f"  filled {done:,}/{sessions:,} sessions ({rate:,.0f}/s)",
                      file=sys.stderr, flush=True)
    return time.perf_counter() - start


def deep_cursor(store: Store, pages: int) -> str | None:
    cursor = None
    for _ in range(pages):
        page = store.list_sessions(order="recent", limit=100, cursor=cursor)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    return cursor


# -- the raw side: one statement each, on the same tables -----------------------------------


class Raw:
    """The hand-written statements of one backend."""

    def __init__(self, run: Callable[[str, tuple[Any, ...]], list[Any]],
                 queries: dict[str, tuple[str, Callable[[], tuple[Any, ...]]]]) -> None:
        self.run = run
        self.queries = queries

    def call(self, name: str) -> Callable[[], object]:
        sql, params = self.queries[name]
        return lambda: self.run(sql, params())


def sqlite_raw(path: Path, table: str, deep: tuple[Any, str], owner: str) -> Raw:
    conn = sqlite3.connect(path, check_same_thread=False)
    s, m, f = f'"{table}_sessions"', f'"{table}"', f'"{table}_fts"'
    recent = f"SELECT session_id FROM {s} ORDER BY updated_at DESC, session_id DESC"
    search = (f"SELECT m.session_id, m.id, m.message FROM {f} JOIN {m} AS m ON m.id = "
              f"{f}.rowid WHERE {f} MATCH ? ORDER BY {f}.rowid DESC LIMIT 20")
    scoped = (f"SELECT m.session_id, m.id, m.message FROM {f} JOIN {m} AS m ON m.id = "
              f"{f}.rowid JOIN {s} AS s ON s.session_id = m.session_id WHERE {f} MATCH ? "
              f"AND s.owner = ? ORDER BY {f}.rowid DESC LIMIT 20")
    return Raw(lambda sql, params: conn.execute(sql, params).fetchall(), {
        "recent page 1": (recent + " LIMIT 100", tuple),
        "recent page 500": (f"SELECT session_id FROM {s} WHERE (updated_at, session_id) < "
                            "(?, ?) ORDER BY updated_at DESC, session_id DESC LIMIT 100",
                            lambda: deep),
        "owner's page 1": (f"SELECT session_id FROM {s} WHERE owner = ? ORDER BY "
                           "updated_at DESC, session_id DESC LIMIT 100", lambda: (owner,)),
        "search rare word": (search, lambda: (f'"{RARE}"',)),
        "search common word": (search, lambda: (f'"{common_word()}"',)),
        "search rare, one owner": (scoped, lambda: (f'"{RARE}"', owner)),
    })


def postgres_raw(url: str, table: str, deep: tuple[Any, str], owner: str) -> Raw:
    import psycopg

    conn = psycopg.connect(url.split("?")[0], autocommit=True)
    s, m = f'"{table}_sessions"', f'"{table}"'
    key = 'left(session_id, 128) COLLATE "C"'
    order = f"ORDER BY updated_at DESC, {key} DESC LIMIT 100"
    tsv = "to_tsvector('simple'::regconfig, m.words)"
    live = "(s.expires_at IS NULL OR s.expires_at > now())"  # as threadline: live only
    search = (f"SELECT s.session_id, m.id, m.message FROM {m} AS m JOIN {s} AS s ON "
              f"s.sid = m.sid WHERE {tsv} @@ plainto_tsquery('simple', %s) AND {live} "
              "ORDER BY m.id DESC LIMIT 20")
    scoped = (f"SELECT s.session_id, m.id, m.message FROM {m} AS m JOIN {s} AS s ON "
              f"s.sid = m.sid WHERE {tsv} @@ plainto_tsquery('simple', %s) AND {live} "
              "AND s.owner = %s ORDER BY m.id DESC LIMIT 20")
    return Raw(lambda sql, params: conn.execute(sql, params).fetchall(), {
        "recent page 1": (f"SELECT session_id FROM {s} {order}", tuple),
        "recent page 500": (f"SELECT session_id FROM {s} WHERE updated_at < %s::timestamptz "
                            f"{order}", lambda: (deep[0],)),
        "owner's page 1": (f"SELECT session_id FROM {s} WHERE owner = %s ORDER BY owner, "
                           f"updated_at DESC, {key} DESC LIMIT 100", lambda: (owner,)),
        "search rare word": (search, lambda: (RARE,)),
        "search common word": (search, lambda: (common_word(),)),
        "search rare, one owner": (scoped, lambda: (RARE, owner)),
    })


def mysql_raw(url: str, table: str, deep: tuple[Any, str], owner: str) -> Raw:
    import pymysql

    conn = pymysql.connect(host="127.0.0.1", user="root", database="test", autocommit=True)
    s, m = f"`{table}_sessions`", f"`{table}`"
    order = "ORDER BY updated_at DESC, id_head DESC, sid DESC LIMIT 100"
    match = "MATCH (m.search_text) AGAINST (%s IN BOOLEAN MODE)"
    search = (f"SELECT s.session_id, m.id, m.message FROM {m} AS m JOIN {s} AS s ON "
              f"s.sid = m.sid WHERE {match} ORDER BY m.id DESC LIMIT 20")
    scoped = (f"SELECT s.session_id, m.id, m.message FROM {m} AS m JOIN {s} AS s ON "
              f"s.sid = m.sid WHERE {match} AND s.owner = %s ORDER BY m.id DESC LIMIT 20")
    stamp = str(deep[0]).split("|")[0]

    def run(sql: str, params: tuple[Any, ...]) -> list[Any]:
        with conn.cursor() as cursor:
            cursor.execute(sql, params)
            return list(cursor.fetchall())

    return Raw(run, {
        "recent page 1": (f"SELECT session_id FROM {s} FORCE INDEX (recent) {order}", tuple),
        "recent page 500": (f"SELECT session_id FROM {s} FORCE INDEX (recent) WHERE "
                            f"updated_at < %s {order}", lambda: (stamp,)),
        "owner's page 1": (f"SELECT session_id FROM {s} FORCE INDEX (owner_recent) WHERE "
                           f"owner = %s {order}", lambda: (owner.encode(),)),
        "search rare word": (search, lambda: (f'+"{RARE}"',)),
        "search common word": (search, lambda: (f'+"{common_word()}"',)),
        "search rare, one owner": (scoped, lambda: (f'+"{RARE}"', owner.encode())),
    })


RAW_BUILDERS: dict[str, Callable[..., Raw]] = {
    "sqlite": sqlite_raw, "postgresql": postgres_raw, "mysql": mysql_raw}


# -- the run ---------------------------------------------------------------------------------


def threadline_calls(store: Store, cursor: str | None, owner: str
                     ) -> dict[str, Callable[[], object]]:
    return {
        "recent page 1": lambda: store.list_sessions(order="recent", limit=100),
        "recent page 500": lambda: store.list_sessions(order="recent", limit=100,
                                                       cursor=cursor),
        "owner's page 1": lambda: store.list_sessions(order="recent", owner=owner,
                                                      limit=100),
        "search rare word": lambda: store.search(RARE),
        "search common word": lambda: store.search(common_word()),
        "search rare, one owner": lambda: store.search(RARE, owner=owner),
    }


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.3f}"


def timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def measure(ours: dict[str, Callable[[], object]], raw: Raw
            ) -> list[tuple[str, float, float]]:
    results = []
    for name, call in ours.items():
        theirs = raw.call(name)
        call(), theirs()  # warm both
        a: list[float] = []
        b: list[float] = []
        for _ in range(ROUNDS):  # alternate, so a slow moment hits both sides
            a.append(timed(call))
            b.append(timed(theirs))
        results.append((name, median(a), median(b)))
    return results


def open_bench_store(backend: str, sessions: int, keep: bool) -> tuple[Store, Any, bool]:
    """The store, what the raw side needs to reach it, and whether it must be filled."""
    table = f"bench_sessions_{sessions}"
    if backend == "sqlite":
        CACHE.mkdir(exist_ok=True)
        path = CACHE / f"{table}.db"
        if not keep:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        fresh = not path.exists()
        return open_store(f"sqlite:///{path}?table={table}"), path, fresh
    url = {"postgresql": PG, "mysql": MYSQL}[backend] + f"?table={table}"
    store = open_store(url)
    if not keep:
        destroy = getattr(store, "destroy", None)
        if destroy is not None:
            destroy()
        store.close()
        store = open_store(url)
    fresh = store.stats().sessions == 0
    return store, url, fresh


def run_backend(backend: str, args: argparse.Namespace) -> list[Target]:
    store, where, fresh = open_bench_store(backend, args.sessions, args.keep)
    table = f"bench_sessions_{args.sessions}"
    if fresh:
        threads = {"sqlite": 1, "postgresql": 8}.get(backend, 4)  # MySQL: pool_size 5
        print(f"{backend}: filling {args.sessions:,} sessions x {args.messages} messages "
              f"({threads} threads)...", file=sys.stderr, flush=True)
        seconds = fill(store, args.sessions, args.messages, threads)
        print(f"{backend}: filled in {seconds:,.0f} s "
              f"({seconds / args.sessions * 1e3:.2f} ms per session)", file=sys.stderr)
    stats = store.stats()
    pages = min(500, max(1, stats.sessions // 100 - 1))
    cursor = deep_cursor(store, pages)
    assert cursor is not None
    from threadline.stores._sessions import decode_recent_cursor

    deep = decode_recent_cursor(cursor)
    # An owner one of whose sessions holds the rare word (so the scoped search finds it).
    info = store.session_info(store.search(RARE, limit=1)[0].session_id)
    assert info is not None and info.owner is not None
    raw = RAW_BUILDERS[backend](where, table, deep, info.owner)
    results = measure(threadline_calls(store, cursor, info.owner), raw)
    print_table(f"{backend}: {stats.sessions:,} sessions, {stats.messages:,} messages "
                "(median ms per query)", ["query", "threadline", "raw", "ratio"],
                [[name, _ms(a), _ms(b), fmt_ratio(a, b)] for name, a, b in results])
    first, deepest = results[0][1], results[1][1]
    store.close()
    return [
        Target(f"{backend}: page 500 costs no more than 2x page 1", deepest <= 2 * first,
               f"{_ms(deepest)} vs {_ms(first)} ms"),
        Target(f"{backend}: every listing <= 5 ms", all(a <= 5e-3 for _, a, _ in results[:3]),
               ", ".join(_ms(a) for _, a, _ in results[:3]) + " ms"),
        Target(f"{backend}: rare-word search <= 20 ms", results[3][1] <= 20e-3,
               f"{_ms(results[3][1])} ms"),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="sqlite,postgresql,mysql")
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=10)
    parser.add_argument("--keep", action="store_true", help="reuse filled stores")
    parser.add_argument("--strict", action="store_true")
    args = parser.parse_args()
    targets: list[Target] = []
    for backend in args.backends.split(","):
        targets += run_backend(backend.strip(), args)
    return report_targets(targets, strict=args.strict)


if __name__ == "__main__":
    sys.exit(main())
