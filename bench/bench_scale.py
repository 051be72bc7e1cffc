"""Flat cost at scale: session listings and a session's window, 10³ to 10⁶ sessions.

Threadline issue 16. A store of N sessions is filled in bulk, straight into the store's
own tables (or keys) in the store's own format, then every query is timed at each size,
threadline next to the hand-written statement on the same tables with the same driver,
in one run. A backend's stores of every size are open at once and each round times every
size, both sides in turn (medians of at least 15 rounds), so a slow moment of the shared
machine hurts all sizes alike instead of the one measured then.

- **listings** (pages of 100): ``list_sessions(order="id")`` and ``order="recent"``, each
  without and with ``prefix="t3-"`` (a tenant holding a tenth of the sessions), on the
  first page and on a deep page (the middle of the listing; with the prefix at 10³, whose
  listing is one page, the page after its first session). The deep cursor is computed
  for the id order (its cursor is the last id of the previous page) and found by walking
  pages of 10,000 for the recent order (untimed). The raw side is the one keyset
  statement (``... WHERE key > cursor ORDER BY key LIMIT 101``) a careful hand would
  write on the store's indexes; on Redis the ``ZRANGE`` / ``ZRANGEBYLEX`` of the store's
  sorted sets (with the prefix, filtered in Python as a hand would).
- **window**: ``store.get_messages(sid, last=20)`` on a session of 1,000 messages, in a
  messages table of about N rows; raw: ``SELECT message FROM <messages> WHERE <session>
  ORDER BY id DESC LIMIT 20`` (the session's internal key looked up once, untimed) and a
  ``json.loads`` of each row, autocommit; on Redis ``LRANGE`` of the session's list.

Targets: each listing at the largest size costs at most 2x the same listing at the
smallest size; at the largest size the window costs at most 1.2x the raw walk.

**The fill** writes what ``append`` would have written, without a million appends:
filler session ``n`` is ``t{n % 10}-{n:07d}`` holding one ``HumanMessage("Question number
{n}")`` (the JSON of :func:`~threadline.stores._base.encode_message`, its search words
too: SQLite's FTS5 rows, PostgreSQL's ``words``, MySQL's ``search_text``), created at
2026-01-01 plus ``n`` seconds and last active within the hour after (distinct times to the
microsecond, so the recent order interleaves the ids). SQLite: one ``INSERT ... SELECT``
from a recursive CTE in one transaction; PostgreSQL: ``INSERT ... SELECT`` from
``generate_series`` (then ``VACUUM ANALYZE``, as autovacuum would); MySQL: ``INSERT ...
SELECT`` from a cross join of digits, 100,000 sessions per statement (then ``ANALYZE
TABLE``); Redis: pipelines writing each session's list, metadata hash and its members of
the index and recent sorted sets. The 1,000-message session ``w-window`` is one real
``append`` (its times then set back a day, so it lists last in both orders). After the
fill the store is checked through the public API (``stats``, ``session_info``,
``get_messages``, ``search`` on the SQL stores, and every timed page against the ids
expected, computed here independently); a mismatch stops the run.

Each size is its own store (``bench_scale_<N>`` tables, key prefix or SQLite file in
``bench/.cache/``), filled by the same deterministic generator: the 10⁴ store is the 10³
store plus more sessions. Without ``--keep`` a backend's stores are dropped once it is
measured (one store per size costs about 11% more rows written than one growing store,
and lets ``--keep`` reuse every size).

    python bench/bench_scale.py                       # 10^3..10^6 on all four backends
    python bench/bench_scale.py --quick               # 10^3 and 10^4, fewer rounds
    python bench/bench_scale.py --backends sqlite,redis --sizes 1000,100000
    python bench/bench_scale.py --keep                # keep (and reuse) the filled stores

The default run (what ``make bench`` runs) takes about 8 minutes on a two-core machine:
about 2 for the fills (SQLite 10 s, PostgreSQL 25 s, MariaDB 30 s, Redis 50 s at 10⁶),
the rest timing 9 queries x 4 sizes x 4 backends; ``--quick`` takes under a minute.

DynamoDB and Cosmos DB (their emulators) are not covered here.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _util import Target, fmt_ratio, median, print_table, report_targets

from threadline import AIMessage, BaseMessage, HumanMessage
from threadline.stores import Store, open_store
from threadline.stores._base import encode_message

CACHE = Path(__file__).resolve().parent / ".cache"
PG = "postgresql://postgres@127.0.0.1:5432/test"
MYSQL = "mysql://root@127.0.0.1:3306/test"
REDIS = "redis://127.0.0.1:6379/0"
BACKENDS = ("sqlite", "postgresql", "mysql", "redis")
SIZES = (1_000, 10_000, 100_000, 1_000_000)
QUICK_SIZES = (1_000, 10_000)
PAGE = 100
WALK = 10_000  # the largest page list_sessions serves: the untimed walk to a deep page
TENANTS = 10
PREFIX = "t3-"
WINDOW_SID = "w-window"
WINDOW_MESSAGES = 1_000
LAST = 20
#: 2026-01-01T00:00:00Z in microseconds: filler n is created n seconds later.
BASE_US = 1_767_225_600_000_000
SECOND = 1_000_000
KNUTH = 2_654_435_761
#: Rows per statement (MySQL) or per pipeline (Redis) while filling.
CHUNK = 100_000
PIPELINE = 5_000


# -- the data, as pure functions (the fill and the expectations share nothing else) --------


def session_id(n: int) -> str:
    return f"t{n % TENANTS}-{n:07d}"


def created_us(n: int) -> int:
    return BASE_US + n * SECOND


def updated_us(n: int) -> int:
    """Distinct for n below 10**6 (the microseconds are n), within the hour after the
    creation: the seconds are spread by Knuth's multiplicative hash, which mixes the
    tenants evenly through the recent order (a page of 100 holds about 10 of each)."""
    return BASE_US + (n + (n * KNUTH) % 2**32 % 3600) * SECOND + n % SECOND


WINDOW_CREATED_US = BASE_US - 86_400 * SECOND
WINDOW_UPDATED_US = BASE_US - 3_600 * SECOND


def filler_text(n: int) -> str:
    return f"Question number {n}"


def filler_words(n: int) -> str:
    """The search words of a filler message (what every SQL store indexes)."""
    return f"question number {n}"


def message_template() -> tuple[str, str]:
    """The stored JSON of a filler message around its number: ``head + str(n) + tail``."""
    marker = "9876543210"
    parts = encode_message(HumanMessage(filler_text(int(marker)))).split(marker)
    if len(parts) != 2:
        raise AssertionError(f"cannot template the stored message: {parts!r}")
    return parts[0], parts[1]


def window_messages() -> list[BaseMessage]:
    return [HumanMessage(f"Window question {i}: how far is the next town?") if i % 2 == 0
            else AIMessage(f"Window answer {i}: about {i % 97} kilometres to the north.")
            for i in range(WINDOW_MESSAGES)]


def utc_us(us: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)


def utc_float(us: int) -> datetime:
    """What a store keeping float seconds (SQLite, Redis) gives back for ``us``."""
    return datetime.fromtimestamp(us / SECOND, UTC)


@dataclass(frozen=True)
class Query:
    name: str
    order: str  # "id" or "recent"
    prefix: str
    deep: bool


QUERIES = [Query(f"{order}{' +prefix' if prefix else ''} {'deep' if deep else 'first'}",
                 order, prefix, deep)
           for order in ("id", "recent") for prefix in ("", PREFIX) for deep in (False, True)]


class Expected:
    """The listings a store of ``size`` sessions must give, computed from the generator."""

    def __init__(self, size: int) -> None:
        fillers = size - 1
        stamps = {session_id(n): updated_us(n) for n in range(fillers)}
        stamps[WINDOW_SID] = WINDOW_UPDATED_US
        self.stamps = stamps
        by_id = sorted(stamps)
        recent = sorted(stamps, key=lambda sid: (stamps[sid], sid), reverse=True)
        self.lists: dict[tuple[str, str], list[str]] = {
            ("id", ""): by_id, ("recent", ""): recent,
            ("id", PREFIX): [s for s in by_id if s.startswith(PREFIX)],
            ("recent", PREFIX): [s for s in recent if s.startswith(PREFIX)]}

    def position(self, query: Query) -> int:
        """Where the query's page starts: 0, or the middle of its listing (still a full
        page where the listing has more than one: a prefix holds 100 of 1,000)."""
        if not query.deep:
            return 0
        length = len(self.lists[query.order, query.prefix])
        return min(length // 2, max(1, length - PAGE))

    def page(self, query: Query) -> list[str]:
        start = self.position(query)
        return self.lists[query.order, query.prefix][start:start + PAGE]

    def before(self, query: Query) -> str | None:
        """The id just before the query's page (its keyset position), if any."""
        start = self.position(query)
        return self.lists[query.order, query.prefix][start - 1] if start else None


# -- backends: fill, raw statements, cleanup ------------------------------------------------


RawList = Callable[[Query, str | None, int | None], list[str]]


class Backend:
    """One backend at one size: its store, its bulk fill and its hand-written reads."""

    name = ""

    def __init__(self, size: int) -> None:
        self.size = size
        self.table = f"bench_scale_{size}"
        self.store = open_store(self.url())

    def url(self) -> str:
        raise NotImplementedError

    def filled(self) -> int:
        """Sessions the store holds now (cheaply), 0 if it does not exist."""
        raise NotImplementedError

    def fill(self) -> None:
        """Write the fillers in bulk (the window session is already appended)."""
        raise NotImplementedError

    def date_window(self) -> None:
        """Set the window session's times to the generator's."""
        raise NotImplementedError

    def raw_list(self, query: Query, after: str | None, after_us: int | None) -> list[str]:
        raise NotImplementedError

    def raw_window(self) -> list[Any]:
        raise NotImplementedError

    def destroy(self) -> None:
        # Every backend here has it (not part of the Store contract).
        destroy: Callable[[], None] = getattr(self.store, "destroy")  # noqa: B009
        destroy()

    def close(self) -> None:
        self.store.close()


class SQLiteBackend(Backend):
    name = "sqlite"

    def __init__(self, size: int) -> None:
        CACHE.mkdir(exist_ok=True)
        self.path = CACHE / f"bench_scale_{size}.db"
        super().__init__(size)
        self.table = "bench_scale"
        self.conn: sqlite3.Connection | None = None

    def url(self) -> str:
        return f"sqlite:///{self.path}?table=bench_scale"

    def raw(self) -> sqlite3.Connection:
        if self.conn is None:  # autocommit, as the store's reads
            self.conn = sqlite3.connect(self.path, isolation_level=None)
        return self.conn

    def filled(self) -> int:
        if not self.path.exists():
            return 0
        conn = sqlite3.connect(self.path)
        try:
            return int(conn.execute('SELECT count(*) FROM "bench_scale_sessions"').fetchone()[0])
        except sqlite3.Error:
            return 0
        finally:
            conn.close()

    def fill(self) -> None:
        head, tail = message_template()
        conn = sqlite3.connect(self.path, isolation_level=None)
        conn.execute("PRAGMA synchronous = OFF")  # a bench file: a crash only refills it
        numbers = ("WITH RECURSIVE c(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM c "
                   "WHERE n < ?) ")
        sid = f"'t' || (n % {TENANTS}) || '-' || printf('%07d', n)"
        conn.execute("BEGIN")
        first = conn.execute('SELECT coalesce(max(id), 0) FROM "bench_scale"').fetchone()[0]
        conn.execute(f'INSERT INTO "bench_scale" (session_id, message_id, message) {numbers}'
                     f"SELECT {sid}, NULL, ? || n || ? FROM c", (self.size - 2, head, tail))
        # The FTS5 rows an append writes: the message's words, keyed by its row id.
        conn.execute('INSERT INTO "bench_scale_fts" (rowid, words) SELECT id, '
                     "'question number ' || CAST(substr(session_id, 4) AS INTEGER) "
                     'FROM "bench_scale" WHERE id > ?', (first,))
        conn.execute(
            'INSERT INTO "bench_scale_sessions" (session_id, created_at, updated_at, '
            f"expires_at, message_count) {numbers}SELECT {sid}, "
            f"({BASE_US} + n * {SECOND}) / 1e6, "
            f"({BASE_US} + (n + (n * {KNUTH}) % {2**32} % 3600) * {SECOND} "
            f"+ n % {SECOND}) / 1e6, "
            "NULL, 1 FROM c", (self.size - 2,))
        conn.execute("COMMIT")
        # A store in use keeps a short WAL: fold the fill's into the database file.
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()

    def date_window(self) -> None:
        self.raw().execute('UPDATE "bench_scale_sessions" SET created_at = ?, updated_at = ? '
                           "WHERE session_id = ?", (WINDOW_CREATED_US / SECOND,
                                                    WINDOW_UPDATED_US / SECOND, WINDOW_SID))

    def raw_list(self, query: Query, after: str | None, after_us: int | None) -> list[str]:
        where: list[str] = []
        params: list[Any] = []
        if query.order == "id":
            # One lower bound, the cursor's or the prefix's: given both, SQLite may start
            # the range at the prefix and skip rows up to the cursor.
            if after is not None:
                where.append("session_id > ?")
                params.append(after)
            elif query.prefix:
                where.append("session_id >= ?")
                params.append(query.prefix)
            if query.prefix:
                where.append("session_id < ?")
                params.append(query.prefix[:-1] + chr(ord(query.prefix[-1]) + 1))
            order = "session_id"
        else:
            if query.prefix:  # not a range of the id: walk the recent index, filtering
                where.append("substr(session_id, 1, ?) = ?")
                params += [len(query.prefix), query.prefix]
            if after_us is not None:  # times are distinct: no tie to break
                where.append("updated_at < ?")
                params.append(after_us / SECOND)
            order = "updated_at DESC, session_id DESC"
        sql = (f'SELECT session_id FROM "bench_scale_sessions"'
               f"{' WHERE ' + ' AND '.join(where) if where else ''} "
               f"ORDER BY {order} LIMIT {PAGE + 1}")
        return [row[0] for row in self.raw().execute(sql, params).fetchall()[:PAGE]]

    def raw_window(self) -> list[Any]:
        rows = self.raw().execute('SELECT message FROM "bench_scale" WHERE session_id = ? '
                                  f"ORDER BY id DESC LIMIT {LAST}", (WINDOW_SID,)).fetchall()
        return [json.loads(row[0]) for row in reversed(rows)]

    def destroy(self) -> None:
        self.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        self.store = open_store(self.url())  # a new file on first use

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        self.store.close()


class PostgresBackend(Backend):
    name = "postgresql"

    def __init__(self, size: int) -> None:
        import psycopg

        super().__init__(size)
        self.conn = psycopg.connect(PG, autocommit=True)
        self.s, self.m = f'"{self.table}_sessions"', f'"{self.table}"'
        self.window_sid: int | None = None

    def url(self) -> str:
        return f"{PG}?table={self.table}"

    def filled(self) -> int:
        row = self.conn.execute("SELECT to_regclass(%s) IS NOT NULL", (self.s,)).fetchone()
        if not row or not row[0]:
            return 0
        return int(self.one(f"SELECT count(*) FROM {self.s}"))

    def one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """The first column of the first row."""
        row = self.conn.execute(sql, params).fetchone()
        if row is None:
            raise AssertionError(f"no row from {sql}")
        return row[0]

    def fill(self) -> None:
        head, tail = message_template()
        stamp = "'epoch'::timestamptz + {} * interval '1 microsecond'"
        self.conn.execute(
            f"INSERT INTO {self.s} (session_hash, session_id, created_at, updated_at, "
            "expires_at, message_count) "
            "SELECT sha256(convert_to(g.id, 'UTF8')), g.id, "
            f"{stamp.format('g.c')}, {stamp.format('g.u')}, NULL, 1 FROM ("
            f"SELECT n, 't' || mod(n, {TENANTS}) || '-' || lpad(n::text, 7, '0') AS id, "
            f"{BASE_US}::bigint + n * {SECOND} AS c, "
            f"{BASE_US}::bigint + (n + mod(mod(n * {KNUTH}, {2**32}), 3600)) * {SECOND} "
            f"+ mod(n, {SECOND}) AS u "
            "FROM generate_series(0::bigint, %s::bigint) AS n) AS g ORDER BY g.n",
            (self.size - 2,))
        self.conn.execute(
            f"INSERT INTO {self.m} (sid, msg_key, message, words) "
            "SELECT x.sid, NULL, %s || x.n || %s, 'question number ' || x.n FROM ("
            f"SELECT sid, substr(session_id, 4)::bigint AS n FROM {self.s} "
            "WHERE starts_with(session_id, 't')) AS x ORDER BY x.sid", (head, tail))
        self.conn.execute(f"VACUUM ANALYZE {self.s}")
        self.conn.execute(f"VACUUM ANALYZE {self.m}")

    def date_window(self) -> None:
        self.conn.execute(
            f"UPDATE {self.s} SET created_at = 'epoch'::timestamptz + %s * interval "
            "'1 microsecond', updated_at = 'epoch'::timestamptz + %s * interval "
            "'1 microsecond' WHERE session_id = %s",
            (WINDOW_CREATED_US, WINDOW_UPDATED_US, WINDOW_SID))

    def raw_list(self, query: Query, after: str | None, after_us: int | None) -> list[str]:
        key = 'left(session_id, 128) COLLATE "C"'
        where: list[str] = []
        params: list[Any] = []
        if query.order == "id":
            # The prefix as a range of the index (exact: ids here are short), with one
            # lower bound: the cursor's, else the prefix's.
            if after is not None:
                where.append(f"{key} > %s")
                params.append(after)
            elif query.prefix:
                where.append(f"{key} >= %s")
                params.append(query.prefix)
            if query.prefix:
                where.append(f"{key} < %s")
                params.append(query.prefix[:-1] + chr(ord(query.prefix[-1]) + 1))
            order = key
        else:
            if query.prefix:
                where.append("starts_with(session_id, %s)")
                params.append(query.prefix)
            if after_us is not None:  # times are distinct: no tie to break
                where.append("updated_at < %s")
                params.append(utc_us(after_us))
            order = f"updated_at DESC, {key} DESC"
        sql = (f"SELECT session_id FROM {self.s}"
               f"{' WHERE ' + ' AND '.join(where) if where else ''} "
               f"ORDER BY {order} LIMIT {PAGE + 1}")
        return [row[0] for row in self.conn.execute(sql, params).fetchall()[:PAGE]]

    def raw_window(self) -> list[Any]:
        if self.window_sid is None:
            self.window_sid = int(self.one(f"SELECT sid FROM {self.s} WHERE session_id = %s",
                                           (WINDOW_SID,)))
        rows = self.conn.execute(f"SELECT message FROM {self.m} WHERE sid = %s "
                                 f"ORDER BY id DESC LIMIT {LAST}", (self.window_sid,)).fetchall()
        return [json.loads(row[0]) for row in reversed(rows)]

    def close(self) -> None:
        self.conn.close()
        self.store.close()


def _digits(count: int) -> str:
    """A derived table of the numbers 0 to ``count - 1`` (column ``i``), from a cross join
    of digit tables: no recursion limit to raise, MySQL and MariaDB alike."""
    places = max(1, len(str(count - 1)))
    digit = " UNION ALL ".join(f"SELECT {d} AS x" for d in range(10))
    terms = " + ".join(f"{10 ** p} * d{p}.x" for p in range(places))
    tables = ", ".join(f"({digit}) AS d{p}" for p in range(places))
    return f"(SELECT {terms} AS i FROM {tables}) AS nums"


class MySQLBackend(Backend):
    name = "mysql"

    def __init__(self, size: int) -> None:
        import pymysql

        super().__init__(size)
        self.conn = pymysql.connect(host="127.0.0.1", user="root", database="test",
                                    autocommit=True)
        self.s, self.m = f"`{self.table}_sessions`", f"`{self.table}`"
        self.window_sid: int | None = None
        self.id_index: bool | None = None

    def url(self) -> str:
        return f"{MYSQL}?table={self.table}"

    def run(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self.conn.cursor() as cursor:
            cursor.execute(sql, tuple(params))
            return list(cursor.fetchall())

    def filled(self) -> int:
        if not self.run("SELECT 1 FROM information_schema.tables WHERE table_schema = "
                        "DATABASE() AND table_name = %s", (f"{self.table}_sessions",)):
            return 0
        return int(self.run(f"SELECT count(*) FROM {self.s}")[0][0])

    def fill(self) -> None:
        head, tail = message_template()
        stamp = "DATE_ADD('1970-01-01 00:00:00', INTERVAL {} MICROSECOND)"
        fillers = self.size - 1
        for low in range(0, fillers, CHUNK):
            count = min(CHUNK, fillers - low)
            self.run(
                f"INSERT INTO {self.s} (session_hash, session_id, created_at, updated_at, "
                "expires_at, message_count) "
                f"SELECT UNHEX(SHA2(g.id, 256)), g.id, {stamp.format('g.c')}, "
                f"{stamp.format('g.u')}, NULL, 1 FROM ("
                f"SELECT n, CONCAT('t', n MOD {TENANTS}, '-', LPAD(n, 7, '0')) AS id, "
                f"{BASE_US} + n * {SECOND} AS c, "
                f"{BASE_US} + (n + (n * {KNUTH}) MOD {2**32} MOD 3600) * {SECOND} "
                f"+ n MOD {SECOND} AS u "
                f"FROM (SELECT {low} + i AS n FROM {_digits(count)} WHERE i < {count}) AS k"
                ") AS g ORDER BY g.n")
        low_sid, high_sid = self.run(f"SELECT min(sid), max(sid) FROM {self.s} "
                                     "WHERE session_id LIKE 't%%'")[0]
        for low in range(int(low_sid), int(high_sid) + 1, CHUNK):
            self.run(
                f"INSERT INTO {self.m} (sid, msg_key, message, search_text) "
                "SELECT x.sid, NULL, CONCAT(%s, x.n, %s), CONCAT('question number ', x.n) "
                "FROM (SELECT sid, CAST(SUBSTRING(session_id, 4) AS UNSIGNED) AS n "
                f"FROM {self.s} WHERE sid BETWEEN %s AND %s AND session_id LIKE 't%%') AS x "
                "ORDER BY x.sid", (head, tail, low, low + CHUNK - 1))
        self.run(f"ANALYZE TABLE {self.s}, {self.m}")

    def date_window(self) -> None:
        self.run(f"UPDATE {self.s} SET created_at = DATE_ADD('1970-01-01 00:00:00', INTERVAL "
                 "%s MICROSECOND), updated_at = DATE_ADD('1970-01-01 00:00:00', INTERVAL "
                 "%s MICROSECOND) WHERE session_hash = UNHEX(SHA2(%s, 256))",
                 (WINDOW_CREATED_US, WINDOW_UPDATED_US, WINDOW_SID))

    def raw_list(self, query: Query, after: str | None, after_us: int | None) -> list[str]:
        where: list[str] = []
        params: list[Any] = []
        if query.order == "id":
            # On id_head (the id's first 768 bytes: all of these ids), the prefix as a
            # range of it, one lower bound; through the id_order index where the schema
            # has it (threadline's migration 5), else MariaDB sorts.
            if after is not None:
                where.append("id_head > %s")
                params.append(after.encode())
            elif query.prefix:
                where.append("id_head >= %s")
                params.append(query.prefix.encode())
            if query.prefix:
                where.append("id_head < %s")
                params.append((query.prefix[:-1] + chr(ord(query.prefix[-1]) + 1)).encode())
            if self.id_index is None:
                self.id_index = bool(self.run(
                    f"SHOW INDEX FROM {self.s} WHERE Key_name = 'id_order'"))
            sql = (f"SELECT session_id FROM {self.s}"
                   f"{' FORCE INDEX (id_order)' if self.id_index else ''}"
                   f"{' WHERE ' + ' AND '.join(where) if where else ''} "
                   f"ORDER BY id_head, sid LIMIT {PAGE + 1}")
        else:
            if query.prefix:  # walking the recent index, filtering
                where.append("session_id LIKE %s")
                params.append(query.prefix + "%")
            if after_us is not None:  # times are distinct: no tie to break
                where.append("updated_at < %s")
                params.append(utc_us(after_us).replace(tzinfo=None))
            sql = (f"SELECT session_id FROM {self.s} FORCE INDEX (recent)"
                   f"{' WHERE ' + ' AND '.join(where) if where else ''} "
                   f"ORDER BY updated_at DESC, id_head DESC, sid DESC LIMIT {PAGE + 1}")
        return [bytes(row[0]).decode() for row in self.run(sql, params)[:PAGE]]

    def raw_window(self) -> list[Any]:
        if self.window_sid is None:
            self.window_sid = int(self.run(f"SELECT sid FROM {self.s} WHERE session_hash = "
                                           "UNHEX(SHA2(%s, 256))", (WINDOW_SID,))[0][0])
        rows = self.run(f"SELECT message FROM {self.m} WHERE sid = %s "
                        f"ORDER BY id DESC LIMIT {LAST}", (self.window_sid,))
        return [json.loads(row[0]) for row in reversed(rows)]

    def close(self) -> None:
        self.conn.close()
        self.store.close()


class RedisBackend(Backend):
    name = "redis"

    def __init__(self, size: int) -> None:
        import redis

        super().__init__(size)
        self.client: Any = redis.Redis.from_url(REDIS)  # its replies are typed loosely
        self.prefix = f"{self.table}:".encode()
        self.index = self.prefix + b"\x00sessions"
        self.recent = self.prefix + b"\x00recent"

    def url(self) -> str:
        return f"{REDIS}?key_prefix={self.table}:"

    def meta(self, sid: str) -> bytes:
        return self.prefix + b"\x00meta\x00" + sid.encode()

    def filled(self) -> int:
        return int(self.client.zcard(self.index))

    def fill(self) -> None:
        head, tail = message_template()
        fillers = self.size - 1
        for low in range(0, fillers, PIPELINE):
            numbers = range(low, min(low + PIPELINE, fillers))
            pipe = self.client.pipeline(transaction=False)
            for n in numbers:
                sid = session_id(n)
                # What APPEND leaves: the list (newest first), the hash (times as the
                # float seconds it writes, ids_cover = the list's length), the sets.
                pipe.lpush(self.prefix + sid.encode(), f"{head}{n}{tail}")
                pipe.hset(self.meta(sid), mapping={
                    "created_at": repr(created_us(n) / SECOND),
                    "updated_at": repr(updated_us(n) / SECOND), "ids_cover": 1})
            pipe.zadd(self.index, {session_id(n): 0 for n in numbers})
            pipe.zadd(self.recent, {session_id(n): updated_us(n) / SECOND for n in numbers})
            pipe.execute()

    def date_window(self) -> None:
        updated = WINDOW_UPDATED_US / SECOND
        self.client.hset(self.meta(WINDOW_SID), mapping={
            "created_at": repr(WINDOW_CREATED_US / SECOND), "updated_at": repr(updated)})
        self.client.zadd(self.recent, {WINDOW_SID: updated}, xx=True)

    def raw_list(self, query: Query, after: str | None, after_us: int | None) -> list[str]:
        if query.order == "id":
            if query.prefix:
                stop = b"(" + query.prefix.encode() + b"\xff"
                start = b"[" + query.prefix.encode()
            else:
                start, stop = b"-", b"+"
            if after is not None:
                start = b"(" + after.encode()
            found = self.client.zrangebylex(self.index, start, stop, 0, PAGE + 1)
            return [sid.decode() for sid in found[:PAGE]]
        top: str = "+inf" if after_us is None else f"({after_us / SECOND!r}"
        wanted = query.prefix.encode()
        kept: list[bytes] = []
        while len(kept) <= PAGE:  # with a prefix, filtered as a hand would
            batch = self.client.zrange(self.recent, top, "-inf", desc=True, byscore=True,
                                       offset=0, num=200 if wanted else PAGE + 1,
                                       withscores=True)
            kept += [sid for sid, _ in batch if sid.startswith(wanted)]
            if len(batch) < (200 if wanted else PAGE + 1):
                break
            top = f"({batch[-1][1]!r}"
        return [sid.decode() for sid in kept[:PAGE]]

    def raw_window(self) -> list[Any]:
        rows = self.client.lrange(self.prefix + WINDOW_SID.encode(), 0, LAST - 1)
        return [json.loads(row) for row in reversed(rows)]

    def close(self) -> None:
        self.client.close()
        self.store.close()


BACKEND_CLASSES: dict[str, type[Backend]] = {
    "sqlite": SQLiteBackend, "postgresql": PostgresBackend, "mysql": MySQLBackend,
    "redis": RedisBackend}


# -- filling and checking --------------------------------------------------------------------


class FillError(Exception):
    """A store does not hold what the generator wrote (or what threadline would have)."""


def prepare(backend: Backend, keep: bool) -> None:
    """A store of ``backend.size`` sessions, filled and checked (a kept one is reused if
    it passes the check, else filled again)."""
    size = backend.size
    have = backend.filled()
    if keep and have == size:
        try:
            verify(backend)
            print(f"{backend.name} {size:,}: reusing the kept store", file=sys.stderr,
                  flush=True)
            return
        except FillError as exc:
            print(f"{backend.name} {size:,}: the kept store fails its check ({exc}); "
                  "filling it again", file=sys.stderr, flush=True)
    if have:
        backend.destroy()
    start = time.perf_counter()
    backend.store.setup()
    backend.store.append(WINDOW_SID, window_messages())  # the store's own write
    backend.date_window()
    backend.fill()
    print(f"{backend.name} {size:,}: filled in {time.perf_counter() - start:,.1f} s",
          file=sys.stderr, flush=True)
    verify(backend)


def _check(what: str, got: object, expected: object) -> None:
    if got != expected:
        raise FillError(f"{what}: got {got!r:.300}, expected {expected!r:.300}")


def verify(backend: Backend) -> None:
    """The fill is what the store would have written, as its public API sees it."""
    store, size = backend.store, backend.size
    floats = backend.name in ("sqlite", "redis")
    stamp = utc_float if floats else utc_us
    stats = store.stats()
    _check("stats", (stats.sessions, stats.messages), (size, size - 1 + WINDOW_MESSAGES))
    info = store.session_info(WINDOW_SID)
    assert info is not None
    _check("window info", (info.message_count, info.created_at, info.updated_at),
           (WINDOW_MESSAGES, stamp(WINDOW_CREATED_US), stamp(WINDOW_UPDATED_US)))
    _check("window last 20", store.get_messages(WINDOW_SID, last=LAST),
           window_messages()[-LAST:])
    for n in sorted({0, (size - 1) // 2, size - 2}):
        sid = session_id(n)
        info = store.session_info(sid)
        assert info is not None, sid
        _check(f"info of {sid}", (info.message_count, info.created_at, info.updated_at,
                                  info.expires_at, info.title, info.owner),
               (1, stamp(created_us(n)), stamp(updated_us(n)), None, None, None))
        _check(f"messages of {sid}", store.get_messages(sid), [HumanMessage(filler_text(n))])
    if backend.name != "redis":  # the SQL stores' search index holds the fillers' words
        n = max(100, (size - 1) // 3)
        for _ in range(20):  # InnoDB may index a bulk insert's words a moment later
            hits = [(h.session_id, h.position) for h in store.search(f"number {n}")]
            if hits:
                break
            time.sleep(0.5)
        _check(f"search for {n}", hits, [(session_id(n), 0)])


def deep_cursor(store: Store, query: Query, expected: Expected) -> str | None:
    """The cursor of the query's page: the previous id (the id order's cursor, by its
    contract), or found by walking pages of :data:`WALK` (the recent order's is
    opaque); ``None`` for a first page."""
    start = expected.position(query)
    if start == 0:
        return None
    if query.order == "id":
        return expected.before(query)
    cursor: str | None = None
    walked = 0
    while walked < start:
        page = store.list_sessions(order="recent", prefix=query.prefix, cursor=cursor,
                                   limit=min(WALK, start - walked))
        walked += len(page)
        cursor = page.next_cursor
        assert cursor is not None
    return cursor


# -- timing ----------------------------------------------------------------------------------


Pair = tuple[Callable[[], object], Callable[[], object]]


def alternate(pairs: Sequence[Pair], *, budget: float, min_rounds: int,
              max_rounds: int) -> list[tuple[float, float]]:
    """Medians of each (threadline, raw) pair, one per size, all timed in the same
    rounds, each round calling every size's pair in turn: a slow moment of the shared
    machine hits every size and both sides, not the one being measured then."""
    clock = time.perf_counter
    for ours, theirs in pairs:  # warm (connections, prepared plans, caches)
        ours(), theirs()
    times: list[tuple[list[float], list[float]]] = [([], []) for _ in pairs]
    deadline = clock() + budget
    for rounds in range(1, max_rounds + 1):
        for (ours, theirs), (a, b) in zip(pairs, times, strict=True):
            start = clock()
            ours()
            a.append(clock() - start)
            start = clock()
            theirs()
            b.append(clock() - start)
        if rounds >= min_rounds and clock() > deadline:
            break
    return [(median(a), median(b)) for a, b in times]


Results = dict[tuple[str, int, str], tuple[float, float]]


def listing_pair(backend: Backend, query: Query, expected: Expected) -> Pair:
    """The query's page both ways, each checked against the expected ids."""
    store, size = backend.store, backend.size
    cursor = deep_cursor(store, query, expected)
    before = expected.before(query)
    after_us = None if before is None else expected.stamps[before]

    def ours() -> list[str]:
        return store.list_sessions(order=query.order,  # type: ignore[arg-type]
                                   prefix=query.prefix, cursor=cursor,
                                   limit=PAGE).session_ids

    def theirs() -> list[str]:
        return backend.raw_list(query, before, after_us)

    want = expected.page(query)
    _check(f"{backend.name} {size:,} {query.name}: threadline's page", ours(), want)
    _check(f"{backend.name} {size:,} {query.name}: the raw page", theirs(), want)
    return ours, theirs


def window_pair(backend: Backend) -> Pair:
    store = backend.store
    _check(f"{backend.name} {backend.size:,}: the raw window", backend.raw_window(),
           [json.loads(encode_message(m)) for m in window_messages()[-LAST:]])
    return lambda: store.get_messages(WINDOW_SID, last=LAST), backend.raw_window


def measure(backends: Sequence[Backend], args: argparse.Namespace, results: Results) -> None:
    """Every query at every size of one backend (the stores all filled)."""
    expected = {backend.size: Expected(backend.size) for backend in backends}
    budget, rounds = (0.2, 5) if args.quick else (0.8, 15)
    budget *= len(backends)
    for query in QUERIES:
        pairs = [listing_pair(backend, query, expected[backend.size]) for backend in backends]
        medians = alternate(pairs, budget=budget, min_rounds=rounds, max_rounds=300)
        for backend, found in zip(backends, medians, strict=True):
            results[backend.name, backend.size, query.name] = found
    medians = alternate([window_pair(backend) for backend in backends], budget=budget,
                        min_rounds=rounds, max_rounds=1000)
    for backend, found in zip(backends, medians, strict=True):
        results[backend.name, backend.size, "window"] = found


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:,.0f}"


def report(backends: Sequence[str], sizes: Sequence[int], results: Results) -> list[Target]:
    names = [q.name for q in QUERIES] + ["window"]
    targets: list[Target] = []
    small, large = sizes[0], sizes[-1]
    for name in backends:
        rows = [[f"{query} @ {size:,}", _us(a), _us(b), fmt_ratio(a, b)]
                for query in names for size in sizes
                if (a_b := results.get((name, size, query))) for a, b in [a_b]]
        print_table(f"{name}: median µs per call (pages of {PAGE}; window: last {LAST} of "
                    f"{WINDOW_MESSAGES:,})", ["query @ sessions", "threadline", "raw", "ratio"],
                    rows)
        if len(sizes) > 1:
            for order in ("id", "recent"):
                growth = [(q.name, results[name, large, q.name][0]
                           / results[name, small, q.name][0])
                          for q in QUERIES if q.order == order]
                targets.append(Target(
                    f"{name}: order={order} pages at {large:,} sessions <= 2x the same "
                    f"page at {small:,}", all(g <= 2 for _, g in growth),
                    ", ".join(f"{q} {g:.2f}x" for q, g in growth)))
        ours, raw = results[name, large, "window"]
        targets.append(Target(
            f"{name}: get_messages(last={LAST}) at {large:,} sessions <= 1.2x the raw walk",
            ours <= 1.2 * raw, f"{_us(ours)} vs {_us(raw)} µs, {ours / raw:.2f}x"))
    return targets


def run(name: str, sizes: Sequence[int], args: argparse.Namespace,
        results: Results) -> None:
    """Fill (or reuse) one backend's store of every size, measure, clean up."""
    # Every size's store at once, so each query is timed at all sizes in the same
    # rounds (see alternate).
    stores: list[Backend] = []
    try:
        for size in sizes:
            stores.append(BACKEND_CLASSES[name](size))
            prepare(stores[-1], args.keep)
        measure(stores, args, results)
    finally:
        for backend in stores:
            if not args.keep:
                backend.destroy()
            backend.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default=",".join(BACKENDS),
                        help=f"comma-separated, of {', '.join(BACKENDS)}")
    parser.add_argument("--sizes", default=None,
                        help="comma-separated session counts (default 10^3..10^6)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the filled stores (and reuse kept ones)")
    parser.add_argument("--quick", action="store_true",
                        help="10^3 and 10^4 sessions (unless --sizes), fewer rounds")
    parser.add_argument("--strict", action="store_true", help="exit 1 on a missed target")
    args = parser.parse_args()
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = set(backends) - set(BACKENDS)
    if unknown:
        parser.error(f"unknown backends {sorted(unknown)}; known: {', '.join(BACKENDS)}")
    sizes = (sorted(int(s) for s in args.sizes.split(",")) if args.sizes
             else list(QUICK_SIZES if args.quick else SIZES))
    if not all(2 * PAGE <= s < 10**7 for s in sizes):
        parser.error(f"sizes must be from {2 * PAGE} to 9,999,999 (ids have 7 digits)")
    results: Results = {}
    try:
        for name in backends:
            run(name, sizes, args, results)
    except FillError as exc:
        print(f"CHECK FAILED: {exc}", file=sys.stderr)
        return 2
    return report_targets(report(backends, sizes, results), strict=args.strict)


if __name__ == "__main__":
    sys.exit(main())
