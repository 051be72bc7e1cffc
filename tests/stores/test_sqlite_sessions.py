"""SQLite's native sessions: the schema upgrade, the plans of the listing and search
queries, the FTS5 index kept in step with the messages, and the fallback without FTS5.
The behaviour every backend shares is in test_sessions.py."""

from __future__ import annotations

import base64
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from threadline import AIMessage, HumanMessage, InputError, StoreError, ToolMessage
from threadline.stores import Store, open_store
from threadline.stores._base import encode_message
from threadline.stores._sessions import check_list_args, recent_cursor
from threadline.stores.sql import _sqlite_sessions
from threadline.stores.sql._common import table_names
from threadline.stores.sql._sqlite import MIGRATIONS, SQLiteStore
from threadline.stores.sql._sqlite_sessions import (
    index_rows,
    index_words,
    match_expression,
    match_inserted,
)

from .scenarios import setup_concurrently


def _store(url: str, **options: object) -> SQLiteStore:
    store = open_store(url, **options)
    assert isinstance(store, SQLiteStore)
    return store


def _indexed(store: SQLiteStore) -> list[int]:
    """The message row ids the FTS table holds."""
    sql = f'SELECT rowid FROM "{store.names.search_index}" ORDER BY rowid'
    return [row[0] for row in store._run(lambda conn: conn.execute(sql).fetchall())]


def _message_ids(store: SQLiteStore) -> list[int]:
    sql = f'SELECT id FROM "{store.names.messages}" ORDER BY id'
    return [row[0] for row in store._run(lambda conn: conn.execute(sql).fetchall())]


# -- the schema upgrade ------------------------------------------------------------------


def _version_3_database(path: Path) -> None:
    """A database as threadline left it before sessions had fields: the first three
    migrations, and rows written the way that version's append wrote them."""
    raw = sqlite3.connect(path)
    raw.execute('CREATE TABLE "chat_schema" (id INTEGER PRIMARY KEY CHECK (id = 1), '
                "version INTEGER NOT NULL)")
    for migration in MIGRATIONS[:3]:
        migration.apply(raw, table_names("chat"))
    raw.execute('INSERT INTO "chat_schema" VALUES (1, 3)')
    rows = [("trip", "q1", HumanMessage("Weather in Oslo?", id="q1")),
            ("trip", "a1", AIMessage("Cold in Oslo.", id="a1")),
            ("code", None, HumanMessage("Reverse a list in Python")),
            ("trip", None, HumanMessage("And Bergen?"))]
    for sid, mid, message in rows:
        raw.execute('INSERT INTO "chat" (session_id, message_id, message) VALUES (?, ?, ?)',
                    (sid, mid, encode_message(message)))
    raw.execute('INSERT INTO "chat" (session_id, message) VALUES (?, ?)',
                ("code", "not json"))  # an unreadable row is skipped by the backfill
    raw.execute('INSERT INTO "chat_sessions" VALUES (?, 10.0, 20.0, NULL, 3)', ("trip",))
    raw.execute('INSERT INTO "chat_sessions" VALUES (?, 10.0, 30.0, NULL, 2)', ("code",))
    raw.commit()
    raw.close()


def test_a_version_3_database_is_upgraded_once(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    _version_3_database(path)
    stores: list[Store] = [_store(f"sqlite:///{path}", table="chat") for _ in range(4)]
    setup_concurrently(stores)
    raw = sqlite3.connect(path)
    assert raw.execute("SELECT version FROM chat_schema").fetchone()[0] == len(MIGRATIONS) == 4
    columns = [row[1] for row in raw.execute("PRAGMA table_info(chat_sessions)")]
    assert {"title", "metadata", "owner", "parent", "fork_point"} <= set(columns)
    indexes = {row[1] for row in raw.execute("PRAGMA index_list(chat_sessions)")}
    assert {"chat_recent_idx", "chat_owner_idx", "chat_owner_id_idx"} <= indexes
    assert raw.execute("SELECT count(*) FROM chat_fts").fetchone()[0] == 4  # backfilled
    raw.close()

    store = stores[0]
    assert [m.text for m in store.get_messages("trip")] == [
        "Weather in Oslo?", "Cold in Oslo.", "And Bergen?"]
    assert store.list_sessions(order="recent").session_ids == ["code", "trip"]
    assert store.list_sessions().session_ids == ["code", "trip"]
    assert [(h.session_id, h.position) for h in store.search("oslo")] == [
        ("trip", 1), ("trip", 0)]
    assert [(h.session_id, h.position) for h in store.search("bergen")] == [("trip", 2)]
    assert [(h.session_id, h.position) for h in store.search("python")] == [("code", 0)]
    info = store.session_info("trip")
    assert info is not None and info.message_count == 3
    assert (info.title, dict(info.metadata), info.owner) == (None, {}, None)

    store.update_session("trip", title="Norway", owner="u1")
    store.append("trip", [HumanMessage("Oslo again", id="q1"),  # held: skipped
                          HumanMessage("Trondheim?", id="q2")])
    assert [(h.session_id, h.position) for h in store.search("trondheim")] == [("trip", 3)]
    assert store.list_sessions(order="recent", owner="u1").session_ids == ["trip"]
    for each in stores:
        each.close()
    again = _store(f"sqlite:///{path}", table="chat")
    again.setup()  # nothing left to migrate
    info = again.session_info("trip")
    assert info is not None and info.title == "Norway" and info.message_count == 4
    again.close()


# -- query plans -------------------------------------------------------------------------


def _plan(store: SQLiteStore, sql: str, params: Sequence[Any]) -> str:
    rows = store._run(lambda conn: conn.execute("EXPLAIN QUERY PLAN " + sql,
                                                params).fetchall())
    return "\n".join(row[3] for row in rows)


@pytest.mark.parametrize(("query", "index"), [
    ({"order": "recent"}, "chat_recent_idx"),
    ({"order": "recent", "cursor": recent_cursor(1.5, "x")}, "chat_recent_idx"),
    ({"order": "recent", "owner": "u1"}, "chat_owner_idx"),
    ({"order": "recent", "owner": "u1", "cursor": recent_cursor(1.5, "x")},
     "chat_owner_idx"),
    ({"order": "id", "owner": "u1", "cursor": "a"}, "chat_owner_id_idx"),
    ({"order": "id", "owner": "u1", "prefix": "u1/"}, "chat_owner_id_idx"),
])
def test_listings_read_an_index_in_order(tmp_path: Path, query: dict[str, object],
                                         index: str) -> None:
    store = _store(f"sqlite:///{tmp_path}/chat.db", table="chat")
    for i in range(50):  # enough rows that a scan and a sort would be costed
        store.update_session(f"s{i}", owner=f"u{i % 5}")
    store._run(lambda conn: conn.execute("ANALYZE"))
    sql, params = store._sessions_sql.listing(check_list_args(**query), time.time())
    plan = _plan(store, sql, params)
    assert f"USING INDEX {index}" in plan, plan
    assert "TEMP B-TREE" not in plan, plan
    store.close()


@pytest.mark.parametrize("owner", [None, "u1"])
def test_search_reads_the_fts_table(owner: str | None) -> None:
    store = _store("sqlite://", table="chat")
    store.append("s", [HumanMessage("hello oslo")])
    sql = store._sessions_sql.search[owner is not None]
    params = (match_expression(["oslo"]), 2**62, time.time(), *([owner] if owner else []), 10)
    plan = _plan(store, sql, params)
    assert "SCAN chat_fts VIRTUAL TABLE" in plan, plan
    assert "TEMP B-TREE" not in plan, plan  # newest first is the index's own order
    assert "SCAN m" not in plan and "SCAN s" not in plan, plan


# -- the index follows the messages ------------------------------------------------------


def test_the_index_follows_appends_deletes_expiry_and_forks(tmp_path: Path) -> None:
    store = _store(f"sqlite:///{tmp_path}/chat.db")
    store.append("a", [HumanMessage("alpha one", id="1"), AIMessage("alpha two"),
                       AIMessage("")])  # no words: nothing to index
    store.append("a", [HumanMessage("alpha one", id="1"), HumanMessage("alpha three")])
    assert len(_indexed(store)) == 3 and set(_indexed(store)) <= set(_message_ids(store))
    assert [h.position for h in store.search("alpha")] == [3, 1, 0]

    store.fork("a", "f", at=2)
    assert [(h.session_id, h.position) for h in store.search("alpha")][:2] == [
        ("f", 1), ("f", 0)]
    assert len(_indexed(store)) == 5
    assert store.delete_session("a") is True
    assert [(h.session_id, h.position) for h in store.search("alpha")] == [("f", 1), ("f", 0)]
    assert len(_indexed(store)) == 2

    store.append("e", [HumanMessage("expiring words")], ttl=0.2)
    time.sleep(0.3)
    assert store.search("expiring") == []  # expired: invisible before it is purged
    assert store.purge_expired() == 1
    assert len(_indexed(store)) == 2

    store.append("r", [HumanMessage("first life")], ttl=0.2)
    time.sleep(0.3)
    store.append("r", [HumanMessage("second life")])  # written again: starts afresh
    assert [(h.session_id, h.position) for h in store.search("life")] == [("r", 0)]
    assert set(_indexed(store)) <= set(_message_ids(store))

    store.destroy()
    raw = sqlite3.connect(tmp_path / "chat.db")
    assert raw.execute("SELECT count(*) FROM sqlite_master WHERE name LIKE "
                       "'threadline_messages%'").fetchone()[0] == 0
    raw.close()


def test_search_words_are_folded_as_python_folds_them() -> None:
    store = _store("sqlite://")
    store.append("s", [HumanMessage("Die STRAßE ist lang; snake_case café"),
                       AIMessage("", tool_calls=[{"name": "get_weather",
                                                  "args": {"city": "Tromsø"}, "id": "c1"}]),
                       ToolMessage("done", tool_call_id="c1")])
    assert [h.position for h in store.search("strasse")] == [0]
    assert [h.position for h in store.search("snake case")] == [0]
    assert [h.position for h in store.search("snake_case")] == [0]
    assert [h.position for h in store.search("CAFÉ")] == [0]
    assert store.search("cafe") == []  # accents are kept, as message_matches keeps them
    assert [h.position for h in store.search("get weather city")] == [1]  # a tool call


def test_search_pages_through_candidates_newest_first() -> None:
    store = _store("sqlite://")
    store.append("big", [HumanMessage(f"needle {i}") for i in range(450)])
    store.append("other", [HumanMessage("needle elsewhere")])
    hits = store.search("needle", limit=1000)
    assert len(hits) == 451 and hits[0] == ("other", 0, "needle elsewhere")
    assert [h.position for h in hits[1:]] == list(range(449, -1, -1))
    assert [h.position for h in store.search("needle", limit=300)][-1] == 151
    assert store.search("needle 7") == [("big", 7, "needle 7")]


def test_search_scoped_to_an_owner_skips_others_and_expired_sessions() -> None:
    store = _store("sqlite://")
    store.append("mine", [HumanMessage("shared word")])
    store.append("theirs", [HumanMessage("shared word")])
    store.append("gone", [HumanMessage("shared word")])
    store.update_session("mine", owner="me")
    store.update_session("gone", owner="me")
    store.expire("gone", 0.05)
    time.sleep(0.1)
    assert [h.session_id for h in store.search("shared", owner="me")] == ["mine"]
    assert sorted(h.session_id for h in store.search("shared")) == ["mine", "theirs"]


def test_stats_is_one_query_with_the_file_size(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    store = _store(f"sqlite:///{path}")
    store.append("a", [HumanMessage("x"), AIMessage("y")])
    store.update_session("b")
    stats = store.stats()
    assert (stats.sessions, stats.messages) == (2, 2)
    raw = sqlite3.connect(path)
    size = raw.execute("PRAGMA page_count").fetchone()[0] * raw.execute(
        "PRAGMA page_size").fetchone()[0]
    raw.close()
    assert stats.bytes == size
    assert _store("sqlite://").stats() == (0, 0, None)


# -- session fields ----------------------------------------------------------------------


def test_update_session_counts_rows_a_langchain_writer_left(tmp_path: Path) -> None:
    """Rows without a sessions row (another program's INSERTs) are counted when
    update_session makes the row."""
    path = tmp_path / "chat.db"
    store = _store(f"sqlite:///{path}")
    store.setup()
    raw = sqlite3.connect(path)
    for text in ("one", "two"):
        raw.execute("INSERT INTO threadline_messages (session_id, message) VALUES (?, ?)",
                    ("lc", encode_message(HumanMessage(text))))
    raw.commit()
    raw.close()
    store.update_session("lc", title="From LangChain")
    info = store.session_info("lc")
    assert info is not None and info.message_count == 2 and info.title == "From LangChain"
    store.close()


def test_update_session_keeps_updated_at_and_gives_a_new_session_the_ttl() -> None:
    store = _store("sqlite://", ttl=100)
    store.append("s", [HumanMessage("x")])
    before = store.session_info("s")
    time.sleep(0.02)
    store.update_session("s", title="renamed", metadata={"k": "v"})
    after = store.session_info("s")
    assert before is not None and after is not None
    assert (after.created_at, after.updated_at) == (before.created_at, before.updated_at)
    store.update_session("new")
    info = store.session_info("new")
    assert info is not None and info.expires_at is not None
    assert info.created_at == info.updated_at


def test_an_expired_session_updated_again_starts_afresh() -> None:
    store = _store("sqlite://")
    store.append("s", [HumanMessage("old words")], ttl=0.05)
    store.update_session("s", title="old", owner="u1")
    time.sleep(0.1)
    store.update_session("s", metadata={"k": "v"})
    info = store.session_info("s")
    assert info is not None
    assert (info.message_count, info.title, info.owner, dict(info.metadata)) == (
        0, None, None, {"k": "v"})
    assert store.search("old") == []


def test_a_recent_cursor_of_another_store_is_refused() -> None:
    store = _store("sqlite://")
    store.append("s", [HumanMessage("x")])
    lone_surrogate = "r1." + base64.urlsafe_b64encode(b'[1.5,"\\ud800"]').decode()
    for cursor in [recent_cursor("2024-01-01", "s"), recent_cursor(10**400, "s"),
                   lone_surrogate]:
        with pytest.raises(InputError):
            store.list_sessions(order="recent", cursor=cursor)


# -- without FTS5 ------------------------------------------------------------------------


def test_without_fts5_search_scans_and_a_later_setup_builds_the_index(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path}/chat.db"
    monkeypatch.setattr(_sqlite_sessions, "SEARCH_INDEX", False)
    plain = _store(url)
    plain.append("s", [HumanMessage("find me"), AIMessage("found")])
    assert [(h.session_id, h.position) for h in plain.search("find")] == [("s", 0)]
    raw = sqlite3.connect(tmp_path / "chat.db")
    assert raw.execute("SELECT count(*) FROM sqlite_master WHERE name = "
                       "'threadline_messages_fts'").fetchone()[0] == 0
    raw.close()
    plain.close()

    monkeypatch.setattr(_sqlite_sessions, "SEARCH_INDEX", True)
    indexed = _store(url)
    assert [(h.session_id, h.position) for h in indexed.search("found")] == [("s", 1)]
    assert len(_indexed(indexed)) == 2
    indexed.close()

    monkeypatch.setattr(_sqlite_sessions, "SEARCH_INDEX", False)
    with pytest.raises(StoreError, match="FTS5"):  # it could not keep the index in step
        _store(url).append("s", [HumanMessage("unindexed")])


# -- pure helpers ------------------------------------------------------------------------


def test_match_expression_quotes_every_term() -> None:
    assert match_expression(["oslo", "near"]) == '"oslo" "near"'
    assert match_expression(['a"b']) == '"a""b"'


def test_index_words_are_the_folded_words_once() -> None:
    assert index_words(HumanMessage("Oslo, OSLO and Straße_x!")) == "oslo and strasse x"
    assert index_words(AIMessage("")) == ""


def test_match_inserted_finds_each_row() -> None:
    keys: list[object] = ["a", None, "b", None]
    # "b" was held already (not returned); rows come back in any order.
    assert match_inserted(keys, [(12, None), (10, "a"), (11, None)]) == [10, 11, None, 12]
    assert match_inserted(keys, [(13, None), (10, "a"), (11, None), (12, "b")]) == [
        10, 11, 12, 13]
    assert match_inserted(["a", "b"], []) == [None, None]
    assert match_inserted([7, 8], [(3, "8")]) == [None, 3]  # ids stored as text
    batch = [HumanMessage("x y", id="a"), HumanMessage("z"), HumanMessage("held", id="h")]
    assert index_rows(batch, [(5, None), (4, "a")]) == [(4, "x y"), (5, "z")]
