"""Beyond one process: turns per second as client processes are added, threadline next to
the raw driver doing the same work, on PostgreSQL direct, PostgreSQL through PgBouncer,
one Redis node and a 3-master Redis Cluster.

A turn is what a chat service does per request: read the session's last 20 messages,
then append the turn's two (a question and its answer, with ids). Each of 1, 2, 4 and 8
client processes (forked; each with its own store or connection, as separate service
processes would have) loops on a session of its own for ``--duration`` seconds, all
released together after a warm-up turn. The figure is the sum of their turns per second,
the median of ``--parts`` runs (threadline and raw alternate).

The raw sides are ``bench_append.py``'s, as lean as each driver allows with the same
guarantees (ids that make a retried append store nothing twice, the session's row and
its recent-order index in the same transaction, the words' full-text index on SQL), and
for the cluster a hand-written script on the same hash-tagged keys as threadline's.

Scaling efficiency is throughput at 8 processes / (8 x throughput at 1). On a machine
with few cores, where the servers share the cores with the clients, it is bounded by the
CPU, for threadline and raw alike: the ratio between them is the figure to read.
PgBouncer runs in transaction mode (Debian's ``pgbouncer``); both sides turn psycopg's
server-side prepared statements off behind it (threadline: ``prepare_threshold=none``).

    python bench/bench_scaling.py                 # every target there is a server for
    python bench/bench_scaling.py --quick         # 1.5 s per point, one part
    python bench/bench_scaling.py --only cluster
    python bench/bench_scaling.py --sizes         # bytes stored per message, per store

``--sizes`` stores 20,000 messages (200 sessions of 50 turns) in each store, twice: with
chat-sized answers (~290 characters) and long ones (~1,700), and prints the bytes each
store takes per message (indexes, full-text index and session rows included): a fixed
part and a part per character, for a capacity model (docs/scaling.md).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _util import Target, finish, fmt_ratio, median, print_table
from bench_append import (
    ANSWER,
    LAST,
    PG_URL,
    QUESTION,
    REDIS_URL,
    TAG,
    Contender,
    Worker,
    push_lua,
    raw_postgres,
    raw_redis,
)

warnings.filterwarnings("ignore", category=DeprecationWarning)

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # the tests' private servers (and their conftest)

PROCESSES = (1, 2, 4, 8)
CTX = mp.get_context("fork")


@dataclass
class Side:
    """One contender of a target: how a child process makes its worker, and its results."""

    name: str
    kind: str  # "threadline" or "raw"
    contender: Contender
    rates: dict[int, list[float]] = field(default_factory=dict)

    def rate(self, n: int) -> float:
        return median(self.rates[n])


@dataclass
class Setup:
    """One deployment: its sides, and what to run when done."""

    name: str
    sides: list[Side]
    cleanup: Callable[[], None]


# -- the child processes --------------------------------------------------------------------


def _child(contender: Contender, index: int, gates: Any, stop_at: Any, out: Any) -> None:
    try:
        worker = contender.make_worker()
        sid = f"scale-{TAG}-{uuid.uuid4().hex[:8]}-{index}"
        worker.append(sid, contender.make_pair())  # warm-up: connection, caches
        worker.read(sid)
        gates[0].wait()  # all ready: the parent sets the deadline
        gates[1].wait()
        deadline, turns = stop_at.value, 0
        while time.monotonic() < deadline:
            worker.read(sid)
            worker.append(sid, contender.make_pair())
            turns += 1
        worker.close()
        out.put(turns)
    except BaseException as exc:  # the parent says which side failed and why
        out.put(f"{type(exc).__name__}: {exc}")
        raise


def run_processes(contender: Contender, n: int, duration: float) -> float:
    """Turns per second of ``n`` forked processes each looping on a session of its own."""
    gates = (CTX.Barrier(n + 1), CTX.Barrier(n + 1))
    stop_at, out = CTX.Value("d", 0.0), CTX.Queue()
    children = [CTX.Process(target=_child, args=(contender, i, gates, stop_at, out))
                for i in range(n)]
    for child in children:
        child.start()
    try:
        gates[0].wait(timeout=60)
        stop_at.value = time.monotonic() + duration
        gates[1].wait(timeout=60)
        results = [out.get(timeout=duration + 60) for _ in children]
    finally:
        for child in children:
            child.join(timeout=10)
            if child.is_alive():
                child.kill()
    failed = [r for r in results if isinstance(r, str)]
    if failed:
        raise RuntimeError(failed[0])
    return sum(results) / duration


# -- contenders -----------------------------------------------------------------------------


def threadline_side(name: str, url: str, **options: Any) -> Contender:
    """threadline's store, opened afresh in each child (``open_store`` there), set up
    once here."""
    from threadline import AIMessage, HumanMessage
    from threadline.stores import open_store

    store = open_store(url, **options)
    store.setup()

    def make_worker() -> Worker:
        own = open_store(url, **options)
        return Worker(own.append, lambda sid: own.get_messages(sid, last=LAST), own.close)

    def make_pair() -> list[Any]:
        return [HumanMessage(QUESTION, id=str(uuid.uuid4())),
                AIMessage(ANSWER, id=str(uuid.uuid4()))]

    def cleanup() -> None:
        getattr(store, "destroy")()  # noqa: B009 - not part of the Store contract
        store.close()

    return Contender(name, "threadline", name, make_worker, make_pair,
                     lambda sid, n: None, cleanup)


@contextmanager
def postgres_direct() -> Iterator[Setup]:
    table = f"bench_scl_{TAG}"
    yield Setup("PostgreSQL direct", [
        Side("threadline", "threadline", threadline_side("pg", PG_URL, table=table)),
        Side("raw psycopg", "raw", raw_postgres()),
    ], lambda: None)


@contextmanager
def postgres_pgbouncer() -> Iterator[Setup]:
    from tests.stores.servers import PgBouncer

    with PgBouncer(pool_size=16) as bouncer:  # server connections: enough for 8 clients
        url = bouncer.url
        table = f"bench_sclb_{TAG}"
        yield Setup("PostgreSQL via PgBouncer", [
            Side("threadline", "threadline",
                 threadline_side("pgb", url, table=table, prepare_threshold="none")),
            Side("raw psycopg", "raw", raw_postgres(url=url, prepare_threshold=None)),
        ], lambda: None)


@contextmanager
def redis_node() -> Iterator[Setup]:
    yield Setup("Redis, one node", [
        Side("threadline", "threadline",
             threadline_side("redis", REDIS_URL, key_prefix=f"bench_scl{TAG}:")),
        Side("raw redis-py", "raw", raw_redis()),
    ], lambda: None)


# A session's keys in its slot (tag: a digest of the id), the sessions index in 16 shards
# each in its own slot: the index first (idempotent), then the session's script.
_SHARD_ADD = """
redis.call('ZADD', KEYS[2], 'GT', ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[1], 'NX', 0, ARGV[2])
"""
_SESSION_APPEND = push_lua(3) + "return pushed\n"


def raw_cluster(nodes: list[tuple[str, int]]) -> Contender:
    """redis-py's RedisCluster doing a turn on threadline's cluster layout: one script on
    the shard's slot (recent score, id index), one on the session's slot (skip held ids,
    LPUSH the rest, stamp the hash); a read is one LRANGE."""
    import hashlib

    from bench_append import _dict_pair
    from redis.cluster import ClusterNode, RedisCluster

    prefix = f"bench_rawc{TAG}:"
    startup = [ClusterNode(host, port) for host, port in nodes]
    client = RedisCluster(startup_nodes=startup)
    shard_add, append_script = (client.register_script(_SHARD_ADD),
                                client.register_script(_SESSION_APPEND))

    def keys(sid: str) -> tuple[list[str], list[str]]:
        tag = hashlib.blake2b(sid.encode(), digest_size=8).hexdigest()
        shard = f"{prefix}{{s{int(tag, 16) % 16:02d}}}"
        return ([shard + "ids", shard + "recent"],
                [f"{prefix}{{{tag}}}m:{sid}", f"{prefix}{{{tag}}}h:{sid}",
                 f"{prefix}{{{tag}}}i:{sid}"])

    def make_worker() -> Worker:
        own = RedisCluster(startup_nodes=startup)

        def append(sid: str, pair: list[dict[str, Any]]) -> object:
            index, session = keys(sid)
            now = repr(time.time())
            shard_add(keys=index, args=[now, sid], client=own)
            args: list[Any] = [sid, now]
            for d in pair:
                args += (d["data"]["id"], json.dumps(d))
            return append_script(keys=session, args=args, client=own)

        def read(sid: str) -> object:
            return [json.loads(m)
                    for m in reversed(own.lrange(keys(sid)[1][0], 0, LAST - 1))]

        return Worker(append, read, own.close)

    def cleanup() -> None:
        for node in client.get_primaries():
            conn = client.get_redis_connection(node)
            found = list(conn.scan_iter(match=prefix + "*", count=1000))
            for key in found:
                conn.delete(key)
        client.close()

    return Contender("cluster", "raw", "raw redis-py cluster, same work", make_worker,
                     _dict_pair, lambda sid, n: None, cleanup)


@contextmanager
def redis_cluster() -> Iterator[Setup]:
    from tests.stores.redis_cluster import RedisCluster

    cluster = RedisCluster()
    cluster.start()
    try:
        yield Setup("Redis Cluster, 3 masters", [
            Side("threadline", "threadline",
                 threadline_side("cluster", cluster.url(), key_prefix=f"bench_scl{TAG}:")),
            Side("raw redis-py", "raw",
                 raw_cluster([("127.0.0.1", port) for port in cluster.ports[:3]])),
        ], lambda: None)
    finally:
        cluster.stop()


SETUPS: dict[str, Callable[[], Any]] = {
    "postgresql": postgres_direct,
    "pgbouncer": postgres_pgbouncer,
    "redis": redis_node,
    "cluster": redis_cluster,
}


# -- bytes per message ------------------------------------------------------------------------

SIZE_SESSIONS, SIZE_TURNS = 200, 50


def _stored_bytes(kind: str, prefix: str) -> int:
    """What the server holds for the store named ``prefix`` (tables or keys)."""
    if kind == "postgresql":
        import psycopg

        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
            row = conn.execute("SELECT sum(pg_total_relation_size(oid)) FROM pg_class"
                               " WHERE relname LIKE %s AND relkind = 'r'",
                               (prefix + "%",)).fetchone()
            return int(row[0]) if row else 0
    if kind == "mysql":
        from bench_append import _pymysql

        conn = _pymysql()
        with conn.cursor() as cur:
            cur.execute("SELECT table_name FROM information_schema.tables"
                        " WHERE table_schema = 'test' AND table_name LIKE %s", (prefix + "%",))
            for (name,) in cur.fetchall():
                cur.execute(f"ANALYZE TABLE `{name}`")
                cur.fetchall()
            cur.execute("SELECT sum(data_length + index_length) FROM information_schema.tables"
                        " WHERE table_schema = 'test' AND table_name LIKE %s", (prefix + "%",))
            row = cur.fetchone()
        conn.close()
        return int(row[0]) if row and row[0] else 0
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    total = sum(client.memory_usage(key, samples=0) or 0
                for key in client.scan_iter(match=prefix + "*", count=1000))
    client.close()
    return total


def measure_sizes() -> None:
    from threadline import AIMessage, HumanMessage
    from threadline.stores import open_store

    stores = {
        "postgresql": lambda p: open_store(PG_URL, table=p),
        "mysql": lambda p: open_store("mysql://root@127.0.0.1:3306/test", table=p),
        "redis": lambda p: open_store(REDIS_URL, key_prefix=p + ":"),
    }
    n = SIZE_SESSIONS * SIZE_TURNS * 2
    rows = []
    for kind, make in stores.items():
        per: dict[int, float] = {}
        for repeat in (1, 6):
            prefix = f"bench_sz{repeat}_{TAG}"
            store = make(prefix)
            store.setup()
            answer = ANSWER * repeat
            try:
                for s in range(SIZE_SESSIONS):
                    for _ in range(SIZE_TURNS):
                        store.append(f"size-{s}", [HumanMessage(QUESTION, id=str(uuid.uuid4())),
                                                   AIMessage(answer, id=str(uuid.uuid4()))])
                chars = (len(QUESTION) + len(answer)) / 2
                per[round(chars)] = _stored_bytes(kind, prefix) / n
            finally:
                getattr(store, "destroy")()  # noqa: B009 - not part of the Store contract
                store.close()
        (c1, b1), (c2, b2) = sorted(per.items())
        slope = (b2 - b1) / (c2 - c1)
        rows.append([kind, f"{b1:,.0f}", f"{b2:,.0f}", f"{b1 - slope * c1:,.0f}",
                     f"{slope:.2f}"])
    (c1, _), (c2, _) = sorted(per.items())
    print_table(f"Bytes stored per message ({n:,} messages; content averaging {c1} and {c2}"
                " characters)",
                ["store", f"{c1} chars", f"{c2} chars", "fixed bytes", "bytes per char"], rows)


# -- the run --------------------------------------------------------------------------------


def measure(setup: Setup, duration: float, parts: int) -> None:
    for n in PROCESSES:
        for _ in range(parts):
            for side in setup.sides:  # alternate, so drift hits both alike
                side.rates.setdefault(n, []).append(
                    run_processes(side.contender, n, duration))


def report(setup: Setup) -> list[Target]:
    ours = next(s for s in setup.sides if s.kind == "threadline")
    raw = next(s for s in setup.sides if s.kind == "raw")
    rows = []
    for n in PROCESSES:
        rows.append([str(n), f"{ours.rate(n):,.0f}", f"{raw.rate(n):,.0f}",
                     fmt_ratio(ours.rate(n), raw.rate(n))])
    eff = {s.name: s.rate(8) / (8 * s.rate(1)) for s in (ours, raw)}
    rows.append(["efficiency 8 / (8 x 1)", f"{eff[ours.name]:.2f}", f"{eff[raw.name]:.2f}",
                 fmt_ratio(eff[ours.name], eff[raw.name])])
    print_table(f"{setup.name}: turns per second (read last {LAST} + append 2)",
                ["processes", ours.name, raw.name, "threadline ÷ raw"], rows)
    worst = min(ours.rate(n) / raw.rate(n) for n in PROCESSES)
    return [Target(f"{setup.name}: threadline >= 0.85x raw at 1-8 processes", worst >= 0.85,
                   f"worst {worst:.2f}x")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1.5 s per point, one part")
    parser.add_argument("--duration", type=float, default=0.0, help="seconds per point")
    parser.add_argument("--parts", type=int, default=0, help="runs per point (median)")
    parser.add_argument("--only", default="", help="the targets whose name has this")
    parser.add_argument("--strict", action="store_true", help="exit 1 on a missed target")
    parser.add_argument("--sizes", action="store_true", help="bytes stored per message")
    args = parser.parse_args()
    if args.sizes:
        measure_sizes()
        return 0
    duration = args.duration or (1.5 if args.quick else 3.0)
    parts = args.parts or (1 if args.quick else 3)
    started = time.monotonic()
    print(f"{os.cpu_count()} CPUs; {duration:g} s per point, median of {parts} part(s)")
    targets: list[Target] = []
    notes: list[str] = []
    rates: dict[str, dict[tuple[str, int], float]] = {}
    for key, make in SETUPS.items():
        if args.only and args.only not in key:
            continue
        with ExitStack() as stack:
            try:
                setup = stack.enter_context(make())
            except Exception as exc:  # a server this machine lacks: say so, go on
                notes.append(f"{key}: not run ({type(exc).__name__}: {exc})")
                continue
            try:
                measure(setup, duration, parts)
            finally:
                for side in setup.sides:
                    side.contender.cleanup()
                setup.cleanup()
            targets += report(setup)
            rates[key] = {(side.kind, n): side.rate(n) for side in setup.sides
                          for n in PROCESSES}
    if "postgresql" in rates and "pgbouncer" in rates:
        direct, pooled = rates["postgresql"], rates["pgbouncer"]

        def cost(kind: str, n: int) -> float:
            return 1 - pooled[kind, n] / direct[kind, n]

        print_table("PgBouncer's cost: throughput lost against PostgreSQL direct",
                    ["processes", "threadline", "raw psycopg"],
                    [[str(n), f"{cost('threadline', n):.0%}", f"{cost('raw', n):.0%}"]
                     for n in PROCESSES])
        worst = max(cost("threadline", n) for n in PROCESSES)
        targets.append(Target("PgBouncer costs threadline <= 15% against direct",
                              worst <= 0.15, f"worst {worst:.0%}"))
    return finish(targets, notes, time.monotonic() - started, strict=args.strict)


if __name__ == "__main__":
    sys.exit(main())
