"""PostgreSQL's native side of the sessions contract: the schema upgrade, the plans of
listings and search (EXPLAIN on tables big enough for the planner to choose), what the
full-text index covers, expiry, cursors, the server-side fork and stats.

The contract itself (tests/stores/test_sessions.py) runs on PostgreSQL too; these tests
check what it cannot see: that the indexes are used and that native shortcuts keep the
contract's answers.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conftest import require_server

from threadline import AIMessage, HumanMessage, InputError
from threadline.stores._base import encode_message
from threadline.stores._sessions import ListQuery, recent_cursor

from .scenarios import contents, setup_concurrently

psycopg = pytest.importorskip("psycopg")

from threadline.stores.sql._postgres import PostgresStore  # noqa: E402 - after the importorskip
from threadline.stores.sql._postgres_sessions import (  # noqa: E402
    STATEMENTS,
    _candidates_op,
    fill_steps,
)
from threadline.stores.sql._postgres_statements import (  # noqa: E402
    MAX_INDEXED_BYTES,
    MIGRATIONS,
    Names,
)
from threadline.stores.sql._server import drive  # noqa: E402

sql = psycopg.sql
SHARED = "postgresql://postgres@127.0.0.1:5432/test"


def _table() -> str:
    return f"t_{secrets.token_hex(5)}"


def _hash(session_id: str) -> bytes:
    return hashlib.sha256(session_id.encode()).digest()


@pytest.fixture(autouse=True, params=["postgresql"])
def server(request: pytest.FixtureRequest) -> str:
    """The shared server (and the backend id in every test's name, for ``-k``)."""
    require_server("127.0.0.1", 5432, "PostgreSQL")
    return str(request.param)


@pytest.fixture
def store() -> Iterator[PostgresStore]:
    store = PostgresStore(SHARED, table=_table())
    try:
        yield store
    finally:
        store.destroy()
        store.close()


def _execute(query: Any, params: Any = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(SHARED, autocommit=True) as conn:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description is not None else []


def _plan(query: Any, params: Any) -> str:
    rows = _execute(sql.SQL("EXPLAIN ") + query, params)
    return "\n".join(row[0] for row in rows)


def _full_sorts(plan: str) -> list[str]:
    """Sort nodes that sort everything they are given (an Incremental Sort only sorts
    the rows that share the index's order, here ids sharing their first characters)."""
    return [line for line in plan.splitlines() if re.match(r"\s*(->\s+)?Sort\s+\(", line)]


# -- upgrade ----------------------------------------------------------------------------


def test_a_version_3_database_upgrades_once_and_keeps_working() -> None:
    """Tables of the previous schema (version 3: no session fields, no words) get them
    from the first of several concurrent setups; the messages stored before are indexed
    after the migration (once, resuming where a cut-short fill stopped), and the old
    session takes titles and appends."""
    table = _table()
    names = Names(table)
    with psycopg.connect(SHARED, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE TABLE {} (version integer NOT NULL)").format(names.schema))
        conn.execute(sql.SQL("INSERT INTO {} VALUES (3)").format(names.schema))
        for migration in MIGRATIONS[:3]:
            for statement in migration(names):
                conn.execute(statement)
        (sid,) = conn.execute(sql.SQL(
            "INSERT INTO {} (session_hash, session_id, message_count) VALUES (%s, %s, 3)"
            " RETURNING sid").format(names.sessions), (_hash("old"), "old")).fetchone()
        old = [HumanMessage("Snow in Oslo?\nOr rain"),
               AIMessage("", tool_calls=[{"name": "get_weather", "args": {"city": "Bergen"},
                                          "id": "c1"}])]
        for text in [encode_message(m) for m in old] + ["not json at all"]:
            conn.execute(sql.SQL("INSERT INTO {} (sid, message) VALUES (%s, %s)").format(
                names.messages), (sid, text))
    stores = [PostgresStore(SHARED, table=table) for _ in range(3)]
    try:
        setup_concurrently(stores)
        assert _execute(sql.SQL("SELECT version FROM {}").format(names.schema)) == [(4,)]
        store = stores[0]
        assert [(h.session_id, h.position) for h in store.search("rain")] == [("old", 0)]
        assert [(h.session_id, h.position) for h in store.search("bergen")] == [("old", 1)]
        assert store.list_sessions(order="recent").session_ids == ["old"]
        store.update_session("old", title="Weather", owner="u1")
        info = store.session_info("old")
        assert info is not None
        assert (info.title, info.owner, info.message_count) == ("Weather", "u1", 3)
        store.append("old", [HumanMessage("and tomorrow")])
        assert [h.position for h in store.search("tomorrow", owner="u1")] == [3]
        assert _execute(sql.SQL("SELECT words_below FROM {}").format(names.schema)) == [
            (None,)]
        # A later setup finds the fill done and fills nothing again.
        _execute(sql.SQL("UPDATE {} SET words = NULL").format(names.messages))
        later = PostgresStore(SHARED, table=table)
        later.setup()
        assert _indexed(names) == 0
        # A fill cut short resumes from words_below, a page per statement pair.
        (top,) = _execute(sql.SQL("SELECT max(id) FROM {}").format(names.messages))[0]
        _execute(sql.SQL("UPDATE {} SET words_below = %s").format(names.schema), (top,))
        ops: list[Any] = []

        def run(op: Any) -> Any:
            ops.append(op)
            return later._run(op, setup=False)

        drive(fill_steps(names, top, batch=2), run)
        assert len(ops) == 4  # two pages (of at most two rows) below the newest message
        assert _indexed(names) == 2  # the old question and the tool call; not the bad row
        assert _execute(sql.SQL("SELECT words_below FROM {}").format(names.schema)) == [
            (None,)]
        later.close()
        # A new process's first (async) call resumes a fill cut short.
        _execute(sql.SQL("UPDATE {} SET words = NULL").format(names.messages))
        _execute(sql.SQL("UPDATE {} SET words_below = %s").format(names.schema), (top,))
        resumed = PostgresStore(SHARED, table=table)
        hits = asyncio.run(resumed.asearch("snow"))
        assert [(h.session_id, h.position) for h in hits] == [("old", 0)]
        assert _indexed(names) == 2
        resumed.close()
    finally:
        stores[0].destroy()
        for store in stores:
            store.close()


def _indexed(names: Names) -> int:
    rows = _execute(sql.SQL("SELECT count(*) FROM {} WHERE words IS NOT NULL").format(
        names.messages))
    return int(rows[0][0])


# -- plans ------------------------------------------------------------------------------


def _many_sessions(store: PostgresStore, count: int = 6000) -> None:
    """``count`` sessions, one a second back from now, owners u0 and u1, then ANALYZE."""
    store.setup()
    names = store._names
    _execute(sql.SQL(
        "INSERT INTO {s} (session_hash, session_id, updated_at, owner, message_count)"
        " SELECT sha256(('s' || i)::bytea), 's' || lpad(i::text, 5, '0'),"
        " now() - i * interval '1 second', 'u' || (i %% 2), 0"
        " FROM generate_series(1, %s) AS i").format(s=names.sessions), (count,))
    _execute(sql.SQL("ANALYZE {s}").format(s=names.sessions))


@pytest.mark.parametrize("order, owner, prefix, indexes", [
    ("recent", None, "", ["recent"]),
    ("recent", "u1", "", ["own_rec", "recent"]),
    ("id", None, "", ["id_ord"]),
    ("id", "u1", "", ["own_id", "id_ord"]),
    ("id", None, "s012", ["id_ord"]),
])
def test_listings_read_an_index_in_their_order(store: PostgresStore, order: str,
                                               owner: str | None, prefix: str,
                                               indexes: list[str]) -> None:
    """No listing sorts all sessions: the first page and a later one (keyset cursor)
    each read an index in the listing's order, and return what a sort would. (Half the
    sessions are u1's: the planner may read the owner's index or filter the general
    one; either way it stops after a page.)"""
    _many_sessions(store)
    names = store._names
    first = store.list_sessions(order=order, owner=owner, prefix=prefix,  # type: ignore[arg-type]
                                limit=50)
    cursor = first.next_cursor
    assert cursor is not None
    for page_cursor in (None, cursor):
        op = STATEMENTS.page(names, ListQuery(order, owner, prefix, None, 50,  # type: ignore[arg-type]
                                              page_cursor))
        plan = _plan(op.query, op.params)
        assert any(f"Index Scan using {store.table}_{index} " in plan
                   or f"Index Scan Backward using {store.table}_{index} " in plan
                   for index in indexes), plan
        assert _full_sorts(plan) == [], plan
    rows = _execute(sql.SQL("SELECT session_id, updated_at, owner FROM {s}").format(
        s=names.sessions))
    wanted = [r for r in rows if (owner is None or r[2] == owner) and r[0].startswith(prefix)]
    if order == "recent":
        wanted.sort(key=lambda r: (r[1], r[0]), reverse=True)
    else:
        wanted.sort(key=lambda r: r[0])
    second = store.list_sessions(order=order, owner=owner, prefix=prefix,  # type: ignore[arg-type]
                                 limit=50, cursor=cursor)
    assert first.session_ids + second.session_ids == [r[0] for r in wanted[:100]]


def test_search_reads_the_gin_index(store: PostgresStore) -> None:
    """On a table big enough, candidates come from a Bitmap Index Scan of the GIN index,
    not from reading every message's words."""
    store.append("hay", [HumanMessage("nothing here")])
    store.append("needle", [HumanMessage("a rare needle"), AIMessage("indeed, a needle")])
    names = store._names
    filler = encode_message(HumanMessage("plain filler words"))
    _execute(sql.SQL(
        "INSERT INTO {m} (sid, message, words) SELECT s.sid, %s, 'plain filler words'"
        " FROM {s} AS s, generate_series(1, 20000) WHERE s.session_id = 'hay'").format(
        m=names.messages, s=names.sessions), (filler,))
    _execute(sql.SQL("ANALYZE {m}").format(m=names.messages))
    op = _candidates_op(names, ["needle"], None, 30, None)
    plan = _plan(op.query, op.params)
    assert f"Bitmap Index Scan on {store.table}_fts" in plan, plan
    hits = store.search("needle")
    assert [(h.session_id, h.position) for h in hits] == [("needle", 1), ("needle", 0)]
    assert store.stats().messages == 3  # the counts of the sessions rows


# -- what search covers -----------------------------------------------------------------


@pytest.mark.parametrize("text, query", [
    ("first line\nsecond line", "second"),  # after a JSON escape
    ("Die Straße ist nass", "STRASSE"),  # Python's case folding
    ("“Oslo”… and «Bergen»", "oslo bergen"),  # punctuation outside ASCII
    ("mail me at user@example.com", "example"),  # no e-mail or host tokens
    ("pi is 3.14, version 1.2.3", "14 3"),
    ("a snake_case_name", "case"),
    ("tab\there", "here"),
    ("日本語のテキスト", "日本語のテキスト"),
    ("a NUL \x00 inside, then zebra", "zebra"),
])
def test_search_finds_what_message_matches_finds(store: PostgresStore, text: str,
                                                 query: str) -> None:
    store.append("s", [HumanMessage("unrelated"), HumanMessage(text)])
    assert [(h.session_id, h.position) for h in store.search(query)] == [("s", 1)]


def test_search_covers_tool_calls_and_content_blocks(store: PostgresStore) -> None:
    store.append("s", [
        HumanMessage([{"type": "text", "text": "blocks of text"}]),
        AIMessage("", tool_calls=[{"name": "get_weather", "args": {"city": "Bergen"},
                                   "id": "c1"}]),
    ])
    assert [h.position for h in store.search("blocks")] == [0]
    assert [h.position for h in store.search("weather bergen")] == [1]
    assert [h.position for h in store.search("city")] == [1]
    assert store.search("human") == []  # the JSON around the text is not indexed


def test_huge_messages_are_stored_and_their_first_words_indexed(store: PostgresStore) -> None:
    """More distinct words than a tsvector holds, and one word longer than a lexeme:
    the append succeeds (the index takes what it can) and the message is found."""
    words = [f"w{i}" for i in range(MAX_INDEXED_BYTES // 4)]
    store.append("big", [HumanMessage(" ".join(words)), HumanMessage("x" * 5000 + " tail")])
    assert [h.position for h in store.search("w1 w2")] == [0]
    assert [h.position for h in store.search("tail")] == [1]
    assert len(store.get_messages("big")) == 2


def test_search_reads_more_candidates_until_limit_hits(store: PostgresStore) -> None:
    """Candidates the Python check rejects (here rows another program indexed wrongly)
    do not hide the real hits behind them: search asks for the next page."""
    store.append("real", [HumanMessage(f"needle number {i}") for i in range(5)])
    store.append("noise", [HumanMessage("hay")])
    names = store._names
    hay = encode_message(HumanMessage("hay only"))
    _execute(sql.SQL(
        "INSERT INTO {m} (sid, message, words) SELECT s.sid, %s, 'needle'"
        " FROM {s} AS s, generate_series(1, 40) WHERE s.session_id = 'noise'").format(
        m=names.messages, s=names.sessions), (hay,))
    hits = store.search("needle", limit=3)
    assert [(h.session_id, h.position) for h in hits] == [("real", 4), ("real", 3),
                                                          ("real", 2)]
    assert len(store.search("needle", limit=100)) == 5
    hits = asyncio.run(store.asearch("needle", limit=2))
    assert [h.position for h in hits] == [4, 3]


# -- fields, expiry, cursors ----------------------------------------------------------------


def _expire_now(store: PostgresStore, session_id: str) -> None:
    _execute(sql.SQL("UPDATE {s} SET expires_at = now() - interval '1 second'"
                     " WHERE session_id = %s").format(s=store._names.sessions), (session_id,))


def test_an_expired_session_starts_again_without_its_fields(store: PostgresStore) -> None:
    store.append("s", [HumanMessage("old words")])
    store.update_session("s", title="T", metadata={"k": "v"}, owner="u1")
    _expire_now(store, "s")
    assert store.session_info("s") is None
    store.update_session("s", title="new")  # created again: nothing of the old one
    info = store.session_info("s")
    assert info is not None
    assert (info.title, dict(info.metadata), info.owner, info.message_count) == (
        "new", {}, None, 0)
    assert store.get_messages("s") == [] and store.search("old") == []
    store.update_session("s", owner="u2")
    _expire_now(store, "s")
    store.append("s", [HumanMessage("fresh")])  # an append starts it again too
    info = store.session_info("s")
    assert info is not None
    assert (info.title, info.owner, info.message_count) == (None, None, 1)
    assert store.list_sessions(owner="u2").session_ids == []


def test_update_session_applies_the_store_ttl_to_a_new_session() -> None:
    store = PostgresStore(SHARED, table=_table(), ttl=600)
    try:
        store.update_session("new", title="T")
        info = store.session_info("new")
        assert info is not None and info.expires_at is not None
        assert info.created_at == info.updated_at
        left = info.expires_at - datetime.now(UTC)
        assert timedelta(seconds=590) < left <= timedelta(seconds=600)
        store.expire("new", None)
        store.update_session("new", owner="u")  # an existing session keeps its expiry
        info = store.session_info("new")
        assert info is not None and info.expires_at is None
    finally:
        store.destroy()
        store.close()


def test_recent_cursor_keeps_microseconds_and_breaks_ties_by_id(store: PostgresStore) -> None:
    head = "h" * 130  # longer than the indexed head of an id
    ids = ["a", "b", f"{head}1", f"{head}2", "c", "d"]
    for sid in ids:
        store.update_session(sid, owner="u")
    stamp = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    for sid, offset in zip(ids, [0, 0, 0, 0, 1, 2], strict=True):
        _execute(sql.SQL("UPDATE {s} SET updated_at = %s WHERE session_id = %s").format(
            s=store._names.sessions), (stamp + timedelta(microseconds=offset), sid))
    wanted = ["d", "c", f"{head}2", f"{head}1", "b", "a"]
    for owner in (None, "u"):
        walked, cursor = [], None
        while True:
            page = store.list_sessions(order="recent", owner=owner, limit=1, cursor=cursor)
            walked.extend(page)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert walked == wanted
    walked, cursor = [], None
    while True:
        page = store.list_sessions(order="id", limit=1, cursor=cursor)
        walked.extend(page)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert walked == sorted(ids)


@pytest.mark.parametrize("cursor", [
    recent_cursor(1.5, "x"), recent_cursor(17, "x"), recent_cursor("yesterday", "x"),
    recent_cursor("2026-01-02T03:04:05", "x"),  # no time zone
])
def test_foreign_recent_cursors_are_refused(store: PostgresStore, cursor: str) -> None:
    store.update_session("s", title="T")
    with pytest.raises(InputError):
        store.list_sessions(order="recent", cursor=cursor)


# -- fork and stats -----------------------------------------------------------------------


def test_fork_copies_on_the_server(store: PostgresStore) -> None:
    messages = [HumanMessage(f"question {i}", id=f"q{i}") for i in range(300)]
    store.append("src", messages)
    store.update_session("src", title="Many", metadata={"k": "v"}, owner="u1")
    store.append("dst", [HumanMessage("soon gone")])
    _expire_now(store, "dst")  # an expired, unpurged row of the new id is replaced
    info = store.fork("src", "dst", at=250)
    assert (info.message_count, info.parent, info.fork_point, info.title, info.owner) == (
        250, "src", 250, "Many", "u1")
    assert dict(info.metadata) == {"k": "v"} and info.created_at == info.updated_at
    copied = store.get_messages("dst")
    assert [m.id for m in copied] == [f"q{i}" for i in range(250)]
    assert contents(copied)[-1] == "question 249"
    hits = store.search("question 249")
    assert sorted((h.session_id, h.position) for h in hits) == [("dst", 249), ("src", 249)]
    store.append("dst", [HumanMessage("again", id="q0")])  # its ids came along
    assert len(store.get_messages("dst")) == 250
    assert store.search("soon") == []
    with pytest.raises(InputError):
        store.fork("src", "dst")
    assert asyncio.run(store.afork("src", "all")).message_count == 300


def test_stats_count_live_sessions_natively(store: PostgresStore) -> None:
    store.append("a", [HumanMessage("1"), HumanMessage("2")])
    store.append("b", [HumanMessage("3")])
    store.update_session("empty", title="T")
    stats = store.stats()
    assert (stats.sessions, stats.messages) == (3, 3)
    assert stats.bytes is not None and stats.bytes > 0
    _expire_now(store, "a")
    assert store.stats()[:2] == (2, 1)
    assert asyncio.run(store.astats())[:2] == (2, 1)


def test_search_reads_the_newest_messages_then_the_index(
        store: PostgresStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the newest messages (a window of 3 here) a search goes on through the GIN
    index, page by page, and still answers newest first with the right positions."""
    from threadline.stores.sql import _postgres_sessions

    monkeypatch.setattr(_postgres_sessions, "_RECENT_WINDOW", 3)
    monkeypatch.setattr(_postgres_sessions, "_SEARCH_SLACK", 0)
    for number in range(6):
        store.append(f"s{number}", [HumanMessage(f"teapot number {number}"),
                                    AIMessage("other words"), AIMessage("more words")])
    hits = store.search("teapot", limit=5)
    assert [(h.session_id, h.position) for h in hits] == [
        ("s5", 0), ("s4", 0), ("s3", 0), ("s2", 0), ("s1", 0)]
    assert [h.session_id for h in store.search("teapot", limit=20)] == [
        f"s{n}" for n in range(5, -1, -1)]
    assert [h.session_id for h in store.search("teapot", owner="nobody")] == []
    assert [h.session_id for h in asyncio.run(store.asearch("number 0"))] == ["s0"]
