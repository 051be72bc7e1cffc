"""The cost of one chat turn's append: threadline next to the raw driver doing the same work.

``store.append(sid, [human, ai])``, both messages with ids (as threadline's histories send
them), is timed against a hand-written raw equivalent per backend that gives the SAME
guarantees, on its own tables or keys, as lean as the driver allows:

* idempotent by message id: a unique key on (session, message id) / an id set, so a
  retried append stores nothing twice;
* the session's row (hash) written in the same transaction: ``updated_at``,
  ``message_count`` (Redis: the list's length), the recent-order index;
* expiry refreshed when a TTL is given (none here, as the default store has none);
* all-or-nothing: one statement (psycopg), one multi-statement transaction in one round
  trip (pymysql), one Lua script by EVALSHA (redis-py);
* the same durability: the same servers, their commits as configured;
* the words of each message in a full-text index (PostgreSQL: a GIN-indexed tsvector;
  MariaDB: FULLTEXT), as threadline keeps them for ``search``: that index is a large
  part of an append's server time. A row "no search index" shows the raw without it,
  for information.

What the raw side leaves out, and threadline does: validation, threadline's word rule
(the raw one lowercases and splits), the restart of an expired session, the session
id's hash key (ids of any length), contiguous batches under concurrent writers (Redis:
the namespace checks against other stores' prefixes).

A third row, "raw plain INSERT" (the raw of ``bench_stores.py``: no ids, no session row),
is the floor, for information only.

Latency: the median of ``--rounds`` appends per contender (default 1000), in alternating
rounds in one run, each on one of ten sessions of ~100 messages (put back to 100 every
50 appends, outside the timed region). Throughput: turns per second with 1, 8 and 32
threads, each on its own session, a turn being "read the last 20, append 2"; threadline
shares one store (``pool_size=32``), the raw side has a connection per thread.

    python bench/bench_append.py              # tables and targets
    python bench/bench_append.py --quick      # 300 rounds, shorter throughput runs
    python bench/bench_append.py --only redis --strict
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from _util import Target, finish, fmt_ratio, median, print_table, run_threads

warnings.filterwarnings("ignore", category=DeprecationWarning)

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
MY_URL = "mysql://root@127.0.0.1:3306/test"
REDIS_URL = "redis://127.0.0.1:6379/0"
BACKENDS = ("postgresql", "mysql", "redis")
THREADS = (1, 8, 32)
SIZE = 100  # messages in a session when timed (it grows by 2 per append until reset)
SESSIONS = 10  # latency sessions per contender
RESET_EVERY = 50  # appends to a session before it is put back to SIZE
LAST = 20
TAG = secrets.token_hex(3)
QUESTION = "What did we decide about the quarterly roadmap and who owns the next step?"
ANSWER = ("We agreed to ship the importer first, then the export API; Dana owns the "
          "importer, Lee the API, and we review progress on Thursday. " * 2)

Append = Callable[[str, Any], object]
Read = Callable[[str], object]


class Worker(NamedTuple):
    """One thread's way in: its append and read, and how to close its connection."""

    append: Append
    read: Read
    close: Callable[[], object] = lambda: None


@dataclass
class Contender:
    """One way of appending a turn on one backend."""

    backend: str
    kind: str  # "threadline", "raw" (same work), "info" (no search index), "floor"
    name: str
    #: A worker for one thread (the raw ones on a connection of their own).
    make_worker: Callable[[], Worker]
    #: A turn's two messages, with fresh ids, in the contender's own form.
    make_pair: Callable[[], Any]
    #: Put a session back to n messages.
    load: Callable[[str, int], None]
    cleanup: Callable[[], None]
    latency: float = 0.0
    throughput: dict[int, float] = field(default_factory=dict)


def _dict(kind: str, text: str, message_id: str | None) -> dict[str, Any]:
    """A LangChain message dict, as threadline and LangChain store it."""
    data: dict[str, Any] = {"content": text, "additional_kwargs": {}, "response_metadata": {},
                            "type": kind, "name": None, "id": message_id}
    if kind == "ai":
        data.update(tool_calls=[], invalid_tool_calls=[], usage_metadata=None)
    return {"type": kind, "data": data}


def _dict_pair() -> list[dict[str, Any]]:
    return [_dict("human", QUESTION, str(uuid.uuid4())), _dict("ai", ANSWER, str(uuid.uuid4()))]


def _dict_seed(n: int) -> list[dict[str, Any]]:
    return [d for _ in range(n // 2) for d in _dict_pair()]


# -- threadline ----------------------------------------------------------------------------


def threadline_contender(backend: str, url: str, **options: Any) -> Contender:
    from threadline import AIMessage, HumanMessage
    from threadline.stores import open_store

    store = open_store(url, **options)
    store.setup()

    def make_pair() -> list[Any]:
        return [HumanMessage(QUESTION, id=str(uuid.uuid4())),
                AIMessage(ANSWER, id=str(uuid.uuid4()))]

    def make_worker() -> Worker:
        return Worker(store.append, lambda sid: store.get_messages(sid, last=LAST))

    def load(sid: str, n: int) -> None:
        store.delete_session(sid)
        store.append(sid, [m for _ in range(n // 2) for m in make_pair()])

    def cleanup() -> None:
        getattr(store, "destroy")()  # noqa: B009 - not part of the Store contract
        store.close()

    return Contender(backend, "threadline", f"threadline {backend}", make_worker, make_pair,
                     load, cleanup)


# -- raw PostgreSQL (psycopg) --------------------------------------------------------------


def _words(d: dict[str, Any]) -> str:
    """The searchable words of a message, the simplest way (threadline's rule is richer)."""
    return " ".join(sorted(set(str(d["data"]["content"]).lower().split())))


def raw_postgres(search: bool = True, url: str = PG_URL, **connect: Any) -> Contender:
    """One statement: insert the batch skipping held ids, then upsert the sessions row
    with the number inserted (autocommit: the statement is its transaction). With
    ``search``, each message's words go into a GIN-indexed tsvector, as threadline's do
    (its search is part of the work); without, for information. ``url`` and ``connect``
    (psycopg.connect's keywords, e.g. ``prepare_threshold=None`` behind PgBouncer) say
    how each worker connects."""
    import psycopg

    tag = "" if search else "n"
    s, m = f"bench_raw_{TAG}{tag}_s", f"bench_raw_{TAG}{tag}_m"
    admin = psycopg.connect(PG_URL, autocommit=True)
    admin.execute(f"CREATE TABLE {s} (session_id text PRIMARY KEY,"
                  " created_at timestamptz NOT NULL DEFAULT now(),"
                  " updated_at timestamptz NOT NULL DEFAULT now(), expires_at timestamptz,"
                  " message_count bigint NOT NULL DEFAULT 0)")
    admin.execute(f"CREATE INDEX {s}_recent ON {s} (updated_at)")
    admin.execute(f"CREATE TABLE {m} (id bigserial PRIMARY KEY, session_id text NOT NULL,"
                  " msg_key text, message text NOT NULL, words text)")
    admin.execute(f"CREATE UNIQUE INDEX {m}_key ON {m} (session_id, msg_key)")
    admin.execute(f"CREATE INDEX {m}_sid ON {m} (session_id, id)")
    if search:
        admin.execute(f"CREATE INDEX {m}_words ON {m}"
                      " USING gin (to_tsvector('simple'::regconfig, words))")
    append_sql = (
        f"WITH ins AS (INSERT INTO {m} (session_id, msg_key, message, words)"
        " SELECT %(sid)s, b.k, b.t, b.w"
        " FROM unnest(%(keys)s::text[], %(texts)s::text[], %(words)s::text[])"
        " WITH ORDINALITY AS b (k, t, w, o) ORDER BY b.o"
        " ON CONFLICT (session_id, msg_key) DO NOTHING RETURNING 1)"
        f" INSERT INTO {s} AS s (session_id, expires_at, message_count)"
        " SELECT %(sid)s, now() + %(ttl)s::float8 * interval '1 second', count(*) FROM ins"
        " ON CONFLICT (session_id) DO UPDATE SET updated_at = now(),"
        " message_count = s.message_count + excluded.message_count,"
        " expires_at = COALESCE(excluded.expires_at, s.expires_at)")
    # The session's liveness as a one-time filter, not a join: with a join the planner may
    # read the whole session and sort it; this walks (session_id, id) backwards.
    read_sql = (f"SELECT m.message FROM {m} AS m WHERE m.session_id = %(sid)s"
                f" AND EXISTS (SELECT 1 FROM {s} AS s WHERE s.session_id = %(sid)s"
                " AND (s.expires_at IS NULL OR s.expires_at > now()))"
                f" ORDER BY m.id DESC LIMIT {LAST}")
    def make_worker() -> Worker:
        conn = psycopg.connect(url, autocommit=True, **connect)

        def append(sid: str, pair: list[dict[str, Any]]) -> object:
            conn.execute(append_sql, {"sid": sid, "ttl": None,
                                      "keys": [d["data"]["id"] for d in pair],
                                      "texts": [json.dumps(d) for d in pair],
                                      "words": [_words(d) if search else None
                                                for d in pair]})
            return None

        def read(sid: str) -> object:
            rows = conn.execute(read_sql, {"sid": sid}).fetchall()
            return [json.loads(r[0]) for r in reversed(rows)]

        return Worker(append, read, conn.close)

    seeder = make_worker()

    def load(sid: str, n: int) -> None:
        admin.execute(f"DELETE FROM {m} WHERE session_id = %s", (sid,))
        admin.execute(f"DELETE FROM {s} WHERE session_id = %s", (sid,))
        seeder.append(sid, _dict_seed(n))

    def cleanup() -> None:
        admin.execute(f"DROP TABLE IF EXISTS {m}, {s}")
        seeder.close()
        admin.close()

    return Contender("postgresql", "raw" if search else "info",
                     "raw psycopg, same work" if search else "raw psycopg, no search index",
                     make_worker, _dict_pair, load, cleanup)


# -- raw MySQL / MariaDB (pymysql) ---------------------------------------------------------


def _pymysql(multi: bool = False, autocommit: bool = True) -> Any:
    import pymysql
    from pymysql.constants import CLIENT

    return pymysql.connect(host="127.0.0.1", port=3306, user="root", database="test",
                           charset="utf8mb4", autocommit=autocommit,
                           client_flag=CLIENT.MULTI_STATEMENTS if multi else 0)


def raw_mysql(search: bool = True) -> Contender:
    """One round trip: a multi-statement transaction (upsert of the sessions row, the
    batch inserted skipping held ids, the count added), as threadline's. With ``search``
    each message's words go into a FULLTEXT-indexed column, as threadline's do."""
    tag = "" if search else "n"
    s, m = f"bench_raw_{TAG}{tag}_s", f"bench_raw_{TAG}{tag}_m"
    admin = _pymysql(multi=True)
    with admin.cursor() as cur:
        cur.execute(f"CREATE TABLE {s} (session_id VARBINARY(255) PRIMARY KEY,"
                    " created_at DATETIME(6) NOT NULL, updated_at DATETIME(6) NOT NULL,"
                    " expires_at DATETIME(6) NULL, message_count BIGINT NOT NULL DEFAULT 0,"
                    " KEY recent (updated_at)) ENGINE=InnoDB")
        cur.execute(f"CREATE TABLE {m} (id BIGINT AUTO_INCREMENT PRIMARY KEY,"
                    " session_id VARBINARY(255) NOT NULL, msg_key VARBINARY(255) NULL,"
                    " message LONGTEXT NOT NULL, words MEDIUMTEXT NULL,"
                    " UNIQUE KEY sid_key (session_id, msg_key),"
                    " KEY sid_id (session_id, id)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4")
        if search:
            cur.execute(f"ALTER TABLE {m} ADD FULLTEXT KEY words (words)")
    head = ("START TRANSACTION;"
            f" INSERT INTO {s} (session_id, created_at, updated_at, expires_at)"
            " VALUES (%s, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6),"
            " DATE_ADD(UTC_TIMESTAMP(6), INTERVAL %s MICROSECOND))"
            " ON DUPLICATE KEY UPDATE updated_at = VALUES(updated_at),"
            " expires_at = COALESCE(VALUES(expires_at), expires_at);"
            f" INSERT INTO {m} (session_id, msg_key, message, words) VALUES ")
    # ROW_COUNT() in the UPDATE is the INSERT's (rows inserted, not the held ids).
    tail = (" ON DUPLICATE KEY UPDATE id = id;"
            f" UPDATE {s} SET message_count = message_count + ROW_COUNT()"
            " WHERE session_id = %s; COMMIT")
    statements: dict[int, str] = {}  # by batch size
    read_sql = (f"SELECT m.message FROM {s} AS s JOIN {m} AS m ON m.session_id = s.session_id"
                " WHERE s.session_id = %s"
                " AND (s.expires_at IS NULL OR s.expires_at > UTC_TIMESTAMP(6))"
                f" ORDER BY m.id DESC LIMIT {LAST}")
    def make_worker() -> Worker:
        conn = _pymysql(multi=True)

        def append(sid: str, pair: list[dict[str, Any]]) -> object:
            query = statements.get(len(pair))
            if query is None:
                query = statements[len(pair)] = head + ", ".join(
                    ["(%s, %s, %s, %s)"] * len(pair)) + tail
            key = sid.encode()
            params: list[Any] = [key, None]
            for d in pair:
                params += (key, d["data"]["id"].encode(), json.dumps(d),
                           _words(d) if search else None)
            params.append(key)
            with conn.cursor() as cur:
                cur.execute(query, params)
                while cur.nextset():
                    pass
            return None

        def read(sid: str) -> object:
            with conn.cursor() as cur:
                cur.execute(read_sql, (sid.encode(),))
                return [json.loads(r[0]) for r in reversed(cur.fetchall())]

        return Worker(append, read, conn.close)

    seeder = make_worker()

    def load(sid: str, n: int) -> None:
        with admin.cursor() as cur:
            cur.execute(f"DELETE FROM {m} WHERE session_id = %s", (sid.encode(),))
            cur.execute(f"DELETE FROM {s} WHERE session_id = %s", (sid.encode(),))
        seeder.append(sid, _dict_seed(n))

    def cleanup() -> None:
        with admin.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {m}, {s}")
        seeder.close()
        admin.close()

    return Contender("mysql", "raw" if search else "info",
                     "raw pymysql, same work" if search else "raw pymysql, no search index",
                     make_worker, _dict_pair, load, cleanup)


# -- raw Redis (redis-py) ------------------------------------------------------------------

# KEYS: list, meta hash, id set, recent zset, index zset. ARGV: session id, now, ttl in ms
# ('' for none), then (id, message) pairs, oldest first.
def push_lua(first: int) -> str:
    """Lua that LPUSHes the (id, message) pairs of ARGV from ``first`` whose id the set
    KEYS[3] does not hold yet onto the list KEYS[1] (``pushed`` counts them), then stamps
    the hash KEYS[2] with ARGV[2] (now)."""
    return f"""
local pushed = 0
for i = {first}, #ARGV - 1, 2 do
  if redis.call('SADD', KEYS[3], ARGV[i]) == 1 then
    redis.call('LPUSH', KEYS[1], ARGV[i + 1])
    pushed = pushed + 1
  end
end
redis.call('HSETNX', KEYS[2], 'created_at', ARGV[2])
redis.call('HSET', KEYS[2], 'updated_at', ARGV[2])
"""


_REDIS_APPEND = push_lua(4) + """
redis.call('ZADD', KEYS[4], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[5], 'NX', 0, ARGV[1])
if ARGV[3] ~= '' then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
  redis.call('PEXPIRE', KEYS[3], ARGV[3])
end
return pushed
"""


def raw_redis() -> Contender:
    """One EVALSHA of a script: skip held ids (SADD), LPUSH the rest, stamp the hash,
    the recent and by-id indexes, the expiry."""
    import redis

    prefix = f"bench_raw{TAG}:"
    client = redis.Redis.from_url(REDIS_URL, max_connections=64)
    script = client.register_script(_REDIS_APPEND)
    recent, index = f"{prefix}\0recent", f"{prefix}\0sessions"

    def keys(sid: str) -> list[str]:
        return [prefix + sid, f"{prefix}\0meta\0{sid}", f"{prefix}\0ids\0{sid}", recent, index]

    def append(sid: str, pair: list[dict[str, Any]]) -> object:
        args: list[Any] = [sid, repr(time.time()), ""]
        for d in pair:
            args += (d["data"]["id"], json.dumps(d))
        return script(keys=keys(sid), args=args)

    def read(sid: str) -> object:
        return [json.loads(m) for m in reversed(client.lrange(prefix + sid, 0, LAST - 1))]

    def load(sid: str, n: int) -> None:
        client.delete(*keys(sid)[:3])
        append(sid, _dict_seed(n))

    def cleanup() -> None:
        _drop_keys(client, prefix)

    return Contender("redis", "raw", "raw redis-py, same work", lambda: Worker(append, read),
                     _dict_pair, load, cleanup)


def _drop_keys(client: Any, prefix: str) -> None:
    """Delete every key under ``prefix``, then close the client."""
    found = list(client.scan_iter(match=prefix + "*", count=1000))
    if found:
        client.delete(*found)
    client.close()


# -- the floor: plain INSERT / LPUSH (bench_stores.py's raw) -------------------------------


def floor_sql(backend: str) -> Contender:
    """``bench_stores.py``'s raw turn: executemany INSERT and commit, no ids, no session."""
    t = f"bench_floor_{TAG}"
    if backend == "postgresql":
        import psycopg

        def connect() -> Any:
            return psycopg.connect(PG_URL)

        ddl = [f"CREATE TABLE {t} (id BIGSERIAL PRIMARY KEY, session_id TEXT NOT NULL,"
               " message TEXT NOT NULL)", f"CREATE INDEX {t}_sid ON {t} (session_id, id)"]
    else:
        def connect() -> Any:
            return _pymysql(autocommit=False)

        ddl = [f"CREATE TABLE {t} (id BIGINT AUTO_INCREMENT PRIMARY KEY,"
               " session_id VARCHAR(255) NOT NULL, message LONGTEXT NOT NULL,"
               " INDEX (session_id, id)) ENGINE=InnoDB"]
    admin = connect()
    with admin.cursor() as cur:
        for statement in ddl:
            cur.execute(statement)
    admin.commit()
    insert = f"INSERT INTO {t} (session_id, message) VALUES (%s, %s)"
    select = f"SELECT message FROM {t} WHERE session_id = %s ORDER BY id DESC LIMIT {LAST}"
    def make_worker() -> Worker:
        conn = connect()

        def append(sid: str, pair: list[dict[str, Any]]) -> object:
            with conn.cursor() as cur:
                cur.executemany(insert, [(sid, json.dumps(d)) for d in pair])
            conn.commit()
            return None

        def read(sid: str) -> object:
            with conn.cursor() as cur:
                cur.execute(select, (sid,))
                rows = cur.fetchall()
            conn.commit()
            return [json.loads(r[0]) for r in reversed(rows)]

        return Worker(append, read, conn.close)

    def load(sid: str, n: int) -> None:
        with admin.cursor() as cur:
            cur.execute(f"DELETE FROM {t} WHERE session_id = %s", (sid,))
            cur.executemany(insert, [(sid, json.dumps(d)) for d in _dict_seed(n)])
        admin.commit()

    def cleanup() -> None:
        with admin.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {t}")
        admin.commit()
        admin.close()

    driver = "psycopg" if backend == "postgresql" else "pymysql"
    return Contender(backend, "floor", f"raw {driver}, plain INSERT", make_worker, _dict_pair,
                     load, cleanup)


def floor_redis() -> Contender:
    import redis

    prefix = f"bench_floor{TAG}:"
    client = redis.Redis.from_url(REDIS_URL, max_connections=64)

    def append(sid: str, pair: list[dict[str, Any]]) -> object:
        pipe = client.pipeline(transaction=True)
        pipe.lpush(prefix + sid, *[json.dumps(d) for d in pair])
        return pipe.execute()

    def read(sid: str) -> object:
        return [json.loads(m) for m in reversed(client.lrange(prefix + sid, 0, LAST - 1))]

    def load(sid: str, n: int) -> None:
        client.delete(prefix + sid)
        client.lpush(prefix + sid, *[json.dumps(d) for d in _dict_seed(n)])

    def cleanup() -> None:
        _drop_keys(client, prefix)

    return Contender("redis", "floor", "raw redis-py, plain LPUSH", lambda: Worker(append, read),
                     _dict_pair, load, cleanup)


# -- measuring -----------------------------------------------------------------------------


def measure_latency(group: list[Contender], rounds: int) -> None:
    """Median append time of each contender, in alternating rounds (the order rotates
    each round, so none is always first after a reset)."""
    made = [c.make_worker() for c in group]
    workers = [w.append for w in made]
    sids = [[f"lat-{c.kind}-{i}" for i in range(SESSIONS)] for c in group]
    for c, names in zip(group, sids, strict=True):
        for sid in names:
            c.load(sid, SIZE)
    for c, append, names in zip(group, workers, sids, strict=True):
        for sid in names:  # warm up: connections, schema checks, prepared statements
            append(sid, c.make_pair())
    counts = [[1] * SESSIONS for _ in group]
    times: list[list[float]] = [[] for _ in group]
    clock = time.perf_counter
    for r in range(rounds):
        k = r % len(group)
        for j in [*range(k, len(group)), *range(k)]:
            c, slot = group[j], r % SESSIONS
            sid = sids[j][slot]
            if counts[j][slot] % RESET_EVERY == 0:
                c.load(sid, SIZE)
            counts[j][slot] += 1
            pair = c.make_pair()
            start = clock()
            workers[j](sid, pair)
            times[j].append(clock() - start)
    for c, t in zip(group, times, strict=True):
        c.latency = median(t)
    for w in made:
        w.close()


def _turns(c: Contender, threads: int, duration: float, part: int) -> tuple[int, float]:
    """Turns done by ``threads`` threads in ``duration`` seconds, and the time taken."""
    made = [c.make_worker() for _ in range(threads)]
    sids = [f"tp-{c.kind}-{threads}-{part}-{i}" for i in range(threads)]
    for sid in sids:
        c.load(sid, SIZE)
    make_pair = c.make_pair

    def turn(worker: Worker, sid: str) -> None:
        worker.read(sid)
        worker.append(sid, make_pair())

    done, took = run_threads([lambda w=w, sid=sid: turn(w, sid)  # type: ignore[misc]
                              for w, sid in zip(made, sids, strict=True)], duration)
    for w in made:
        w.close()
    return done, took


def measure_throughput(group: list[Contender], duration: float, parts: int = 3) -> None:
    """Turns per second per thread count: each contender runs ``parts`` slices of
    ``duration / parts``, alternating with the others (the machine's load drifts)."""
    for threads in THREADS:
        done = [0] * len(group)
        spent = [0.0] * len(group)
        for part in range(parts):
            order = range(len(group)) if part % 2 == 0 else reversed(range(len(group)))
            for j in order:
                n, seconds = _turns(group[j], threads, duration / parts, part)
                done[j] += n
                spent[j] += seconds
        for c, n, seconds in zip(group, done, spent, strict=True):
            c.throughput[threads] = n / seconds


def build(backend: str, group: list[Contender]) -> None:
    """Add the backend's contenders to ``group`` one by one (what was made before a
    failure is still there to clean up)."""
    factories: list[Callable[[], Contender]]
    if backend == "postgresql":
        factories = [lambda: threadline_contender(backend, PG_URL, table=f"bench_tla_{TAG}",
                                                  pool_size=32),
                     raw_postgres, lambda: raw_postgres(search=False),
                     lambda: floor_sql(backend)]
    elif backend == "mysql":
        factories = [lambda: threadline_contender(backend, MY_URL, table=f"bench_tla_{TAG}",
                                                  pool_size=32),
                     raw_mysql, lambda: raw_mysql(search=False), lambda: floor_sql(backend)]
    else:
        factories = [lambda: threadline_contender(backend, REDIS_URL,
                                                  key_prefix=f"bench_tla{TAG}:"),
                     raw_redis, floor_redis]
    for make in factories:
        group.append(make())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="300 rounds, shorter runs")
    parser.add_argument("--rounds", type=int, default=0, help="latency rounds (default 1000)")
    parser.add_argument("--duration", type=float, default=0.0,
                        help="seconds of throughput per contender and thread count")
    parser.add_argument("--only", default="", help="run the backends whose name has this")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--strict", action="store_true", help="exit 1 on a missed target")
    args = parser.parse_args()
    rounds = args.rounds or (300 if args.quick else 1000)
    duration = args.duration or (1.5 if args.quick else 3.0)

    started = time.perf_counter()
    done: list[Contender] = []
    missing: list[str] = []
    for backend in BACKENDS:
        if args.only.lower() not in backend:
            continue
        group: list[Contender] = []
        try:
            build(backend, group)
            measure_latency(group, rounds)
            if not args.skip_throughput:
                measure_throughput(group, duration)
            done += group
        except Exception as exc:
            first = str(exc).splitlines()[0][:120] if str(exc) else ""
            missing.append(f"{backend}: not available ({type(exc).__name__}: {first})")
        finally:
            for c in group:
                try:
                    c.cleanup()
                except Exception as exc:
                    print(f"cleanup of {c.name} failed: {exc}", file=sys.stderr)
        print(f"  measured {backend}", file=sys.stderr, flush=True)
    return report(done, missing, rounds, time.perf_counter() - started, args.strict)


def report(done: list[Contender], missing: list[str], rounds: int, elapsed: float,
           strict: bool) -> int:
    def versus(c: Contender) -> Contender | None:
        return next((r for r in done if r.backend == c.backend and r.kind == "raw"), None)

    rows = []
    for c in done:
        raw = versus(c)
        rows.append([c.name, f"{c.latency * 1e3:.3f}",
                     fmt_ratio(c.latency, raw.latency) if raw else "n/a",
                     *(f"{c.throughput[t]:,.0f}" if t in c.throughput else "-" for t in THREADS),
                     (f"{c.throughput[32] / raw.throughput[32]:.2f}x"
                      if raw and 32 in c.throughput else "n/a")])
    print_table(
        f"Append of one turn (2 messages with ids): median of {rounds} ms; throughput in "
        f"turns/s (read last {LAST} + append 2, a session per thread)",
        ["contender", "append ms", "vs raw", *(f"{t} thr" for t in THREADS), "32 thr vs raw"],
        rows)
    targets: list[Target] = []
    for c in done:
        raw = versus(c)
        if c.kind != "threadline" or raw is None:
            continue
        ratio = c.latency / raw.latency
        targets.append(Target(f"{c.backend}: append within 1.2x of the raw same work",
                              ratio <= 1.2, f"{ratio:.2f}x"))
        if 32 in c.throughput:
            share = c.throughput[32] / raw.throughput[32]
            targets.append(Target(f"{c.backend}: 32-thread throughput >= 0.85x the raw",
                                  share >= 0.85, f"{share:.2f}x"))
    return finish(targets, missing, elapsed, strict=strict)


if __name__ == "__main__":
    sys.exit(main())
