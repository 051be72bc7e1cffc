"""MySQL / MariaDB sessions as objects: the plans (EXPLAIN) of the recent listing and the
search, and the corners of this backend the contract suite (test_sessions.py) does not
reach: FULLTEXT word lengths, tokenizer differences, ties in the recent order, keys
compared exactly, expired sessions, the server-side fork."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import require_server

from threadline import AIMessage, HumanMessage, InputError
from threadline.stores._sessions import ListQuery, recent_cursor

pymysql = pytest.importorskip("pymysql")
pytest.importorskip("aiomysql")
from threadline.stores.sql._mysql import MySQLStore, _render  # noqa: E402
from threadline.stores.sql._mysql_sessions import (  # noqa: E402
    STATEMENTS,
    indexed_terms,
    search_steps,
)
from threadline.stores.sql._mysql_statements import (  # noqa: E402
    MAX_INDEXED_WORD,
    ServerLimits,
    search_text,
)

SHARED = "mysql://root@127.0.0.1:3306/test"


@pytest.fixture
def store() -> Iterator[MySQLStore]:
    require_server("127.0.0.1", 3306, "MariaDB")
    store = MySQLStore(SHARED, table=f"t_{secrets.token_hex(5)}")
    try:
        yield store
    finally:
        store.destroy()
        store.close()


def _raw() -> Any:
    return pymysql.connect(host="127.0.0.1", port=3306, user="root", database="test",
                           autocommit=True, charset="utf8mb4")


def _explain(op: Any) -> list[dict[str, Any]]:
    conn = _raw()
    try:
        with conn.cursor(pymysql.cursors.DictCursor) as cur:
            cur.execute("EXPLAIN " + _render(conn, op))
            return list(cur.fetchall())
    finally:
        conn.close()


def _ids(hits: list[Any]) -> list[tuple[str, int]]:
    return [(h.session_id, h.position) for h in hits]


# -- plans ---------------------------------------------------------------------------------


def _populate(store: MySQLStore) -> None:
    for number in range(60):
        sid = f"s{number:03d}"
        store.append(sid, [HumanMessage(f"question {number} about fjords"),
                           AIMessage(f"answer {number}")])
        store.update_session(sid, owner=f"u{number % 3}", metadata={"n": str(number % 5)})


@pytest.mark.parametrize("owner", [None, "u1"])
@pytest.mark.parametrize("paged", [False, True])
def test_the_recent_listing_reads_an_index_without_filesort(store: MySQLStore,
                                                           owner: str | None,
                                                           paged: bool) -> None:
    _populate(store)
    cursor = None
    if paged:
        cursor = store.list_sessions(order="recent", owner=owner, limit=7).next_cursor
        assert cursor is not None
    for metadata in (None, {"n": "2"}):
        query = ListQuery("recent", owner, "", metadata, 10, cursor)
        (plan,) = _explain(STATEMENTS.page(store._names, query))
        assert plan["key"] == ("owner_recent" if owner else "recent"), plan
        assert "filesort" not in (plan["Extra"] or ""), plan
        assert plan["type"] in ("range", "ref", "index"), plan


def test_search_uses_the_fulltext_index(store: MySQLStore) -> None:
    _populate(store)
    from threadline.stores.sql._mysql_sessions import _candidates_op

    for owner in (None, "u2"):
        # The older messages' candidates (past the newest RECENT_WINDOW, read in order).
        plan = _explain(_candidates_op(store._names, '+"fjords" +"question"', owner, 20,
                                       None))
        fulltext = [row for row in plan if row["type"] == "fulltext"]
        assert [row["key"] for row in fulltext] == ["search"], plan
    assert len(store.search("fjords question", limit=100)) == 60
    assert len(store.search("fjords", owner="u2", limit=100)) == 20


# -- search --------------------------------------------------------------------------------


def test_search_text_is_the_words_the_index_should_see() -> None:
    message = AIMessage("Oslo's fjord_tour: OSLO, oslo! Straße " + "x" * 85,
                        tool_calls=[{"name": "get_weather", "args": {"city": "Tromsø"},
                                     "id": "c1"}])
    # message_text writes tool arguments as JSON text (not escaped): ø stays in its word.
    assert search_text(message) == "oslo s fjord tour strasse get weather city tromsø"
    assert len("y" * MAX_INDEXED_WORD) == MAX_INDEXED_WORD
    assert search_text(HumanMessage("y" * MAX_INDEXED_WORD)) == "y" * MAX_INDEXED_WORD


def test_terms_the_index_cannot_hold_are_checked_in_python(store: MySQLStore) -> None:
    limits = ServerLimits(1 << 20, 3, MAX_INDEXED_WORD)
    assert indexed_terms(["ox", "the", "i\u0307stanbul", "z" * 85, "cat"], limits) == [
        "the", "cat"]
    older = [HumanMessage("an ox and a cat")]
    store.append("old", older)
    # Many newer candidates for "cat" without "ox": the search reads past them in batches.
    store.append("new", [HumanMessage(f"cat number {i}") for i in range(150)])
    assert _ids(store.search("ox cat", limit=1)) == [("old", 0)]
    assert _ids(store.search("the cat", limit=3)) == []  # stopwords are indexed words
    store.append("stop", [HumanMessage("The cat is on the mat")])
    assert _ids(store.search("the cat on", limit=3)) == [("stop", 0)]


def test_a_query_of_short_words_falls_back_on_the_scan(store: MySQLStore) -> None:
    store.append("a", [HumanMessage("go to it"), AIMessage("ok, go")])
    store.append("b", [HumanMessage("to be")])
    assert steps_result(store, ["go"]) is None  # no term the index holds
    assert _ids(store.search("go")) == [("a", 1), ("a", 0)]
    assert _ids(asyncio.run(store.asearch("to", owner=None))) == [("b", 0), ("a", 0)]


def steps_result(store: MySQLStore, terms: list[str]) -> Any:
    steps = search_steps(store._names, terms, None, 20, store._limits)
    try:
        next(steps)
    except StopIteration as done:
        return done.value
    return "ran a query"


def test_tokenizer_differences_do_not_hide_words(store: MySQLStore) -> None:
    store.append("s", [HumanMessage("call snake_case_name please"),
                       AIMessage("Oslo's weather, ÉTÉ and Straße"),
                       AIMessage("", tool_calls=[{"name": "lookup_city",
                                                  "args": {"city": "Trondheim"}, "id": "c"}])])
    assert _ids(store.search("case name")) == [("s", 0)]
    assert _ids(store.search("OSLO été strasse")) == [("s", 1)]
    assert _ids(store.search("trondheim lookup")) == [("s", 2)]
    assert _ids(asyncio.run(store.asearch("snake"))) == [("s", 0)]


def test_positions_and_expired_sessions(store: MySQLStore) -> None:
    store.append("s", [HumanMessage("alpha one"), AIMessage("beta two")])
    store.expire("s", 0.05)
    time.sleep(0.1)
    assert store.search("alpha") == []
    store.append("s", [HumanMessage("gamma"), AIMessage("alpha again")])  # restarts
    assert _ids(store.search("alpha")) == [("s", 1)]
    store.append("t", [HumanMessage("alpha elsewhere")])
    assert _ids(store.search("alpha")) == [("t", 0), ("s", 1)]  # newest first


# -- listing and metadata ------------------------------------------------------------------


def _set_updated_at(store: MySQLStore, stamp: str) -> None:
    conn = _raw()
    with conn.cursor() as cur:
        cur.execute(f"UPDATE {store._names.s} SET updated_at = %s", (stamp,))
    conn.close()


def test_ties_in_updated_at_go_by_descending_id_and_pages_lose_none(store: MySQLStore
                                                                    ) -> None:
    long = "é" * 400  # 800 bytes: ids sharing their 768-byte head
    ids = ["b", "a", "c", long + "1", long + "2", long + "0", "é"]
    for sid in ids:
        store.append(sid, [HumanMessage(sid[-3:])])
    _set_updated_at(store, "2026-01-02 03:04:05.123456")
    walked: list[str] = []
    cursor = None
    while True:
        page = store.list_sessions(order="recent", limit=1, cursor=cursor)
        walked += page.session_ids
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert sorted(walked) == sorted(ids) and len(walked) == len(ids)
    assert walked[3:] == ["é", "c", "b", "a"]
    # Past their 768-byte head, tied ids go by creation, newest first (documented).
    assert walked[:3] == [long + "0", long + "2", long + "1"]


def test_bad_recent_cursors_are_input_errors(store: MySQLStore) -> None:
    store.append("s", [HumanMessage("x")])
    bad: list[float | int | str] = [1.5, 7, "2026-01-02 03:04:05.123456", "x|1",
                                    "2026-13-02 03:04:05.123456|1",
                                    "2026-01-02 03:04:05.123456|-1"]
    for updated in bad:
        with pytest.raises(InputError):
            store.list_sessions(order="recent", cursor=recent_cursor(updated, "s"))


def test_owners_and_metadata_compare_exactly(store: MySQLStore) -> None:
    store.update_session("a", owner="u1", metadata={"k": "V", "q\"\\": "x\\y\"z"})
    store.update_session("b", owner="u1 ", metadata={"k": "v"})
    store.update_session("c", owner="U1", metadata={"k": "v "})
    assert store.list_sessions(owner="u1").session_ids == ["a"]
    assert store.list_sessions(order="recent", owner="u1 ").session_ids == ["b"]
    assert store.list_sessions(metadata={"k": "v"}).session_ids == ["b"]
    assert store.list_sessions(metadata={"q\"\\": "x\\y\"z"}).session_ids == ["a"]
    assert store.list_sessions(metadata={"K": "V"}).session_ids == []


def test_update_keeps_activity_and_restarts_an_expired_session(store: MySQLStore) -> None:
    store.append("s", [HumanMessage("hi")])
    before = store.session_info("s")
    time.sleep(0.01)
    store.update_session("s", title="T", metadata={"a": "b"}, owner="u")
    after = store.session_info("s")
    assert before is not None and after is not None
    assert (after.updated_at, after.created_at) == (before.updated_at, before.created_at)
    store.expire("s", 0.05)
    time.sleep(0.1)
    store.update_session("s", title="new life")
    info = store.session_info("s")
    assert info is not None
    assert (info.title, dict(info.metadata), info.owner, info.message_count) == (
        "new life", {}, None, 0)
    assert info.created_at is not None and info.created_at > after.created_at  # type: ignore[operator]
    assert store.get_messages("s") == []
    store.append("s", [HumanMessage("again")])
    assert [m.content for m in store.get_messages("s")] == ["again"]
    store.expire("s", 0.05)
    time.sleep(0.1)
    store.append("s", [HumanMessage("third")])  # an append forgets the metadata too
    info = store.session_info("s")
    assert info is not None and (info.title, info.message_count) == (None, 1)


def test_a_new_session_from_update_gets_the_store_ttl() -> None:
    require_server("127.0.0.1", 3306, "MariaDB")
    store = MySQLStore(SHARED, table=f"t_{secrets.token_hex(5)}", ttl=600)
    try:
        store.update_session("s", title="T")
        info = store.session_info("s")
        assert info is not None and info.expires_at is not None
        assert info.created_at == info.updated_at
    finally:
        store.destroy()
        store.close()


def test_stats_count_live_sessions_and_report_bytes(store: MySQLStore) -> None:
    store.append("a", [HumanMessage("x"), AIMessage("y")])
    store.append("b", [HumanMessage("z")])
    store.expire("b", 0.05)
    time.sleep(0.1)
    stats = store.stats()
    assert (stats.sessions, stats.messages) == (1, 2)
    assert stats.bytes is not None and stats.bytes > 0
    assert asyncio.run(store.astats())[:2] == (1, 2)


# -- fork ----------------------------------------------------------------------------------


def test_the_server_side_fork_copies_rows_and_their_search_text(store: MySQLStore) -> None:
    store.append("src", [HumanMessage("kayak rental", id="m1"), AIMessage("at the pier"),
                         HumanMessage("price?")])
    store.update_session("src", title="Boats", owner="u1")
    store.append("dst", [HumanMessage("stale")])
    store.expire("dst", 0.05)
    time.sleep(0.1)
    info = store.fork("src", "dst", at=2)  # an expired, unpurged id is free
    assert (info.message_count, info.parent, info.fork_point, info.title, info.owner) == (
        2, "src", 2, "Boats", "u1")
    assert [m.content for m in store.get_messages("dst")] == ["kayak rental", "at the pier"]
    assert sorted(_ids(store.search("kayak", owner="u1"))) == [("dst", 0), ("src", 0)]
    info = asyncio.run(store.afork("dst", "third"))
    assert (info.message_count, info.parent, info.fork_point) == (2, "dst", 2)
    store.append("third", [HumanMessage("kayak rental", id="m1")])  # the id came along
    assert len(store.get_messages("third")) == 2
    with pytest.raises(InputError):
        store.fork("src", "third")


def test_search_reads_the_newest_messages_then_the_index(
        store: MySQLStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the newest messages (a window of 3 here) a search goes on through the
    FULLTEXT index, and still answers newest first with the right positions."""
    from threadline.stores.sql import _mysql_sessions

    monkeypatch.setattr(_mysql_sessions, "RECENT_WINDOW", 3)
    for number in range(6):
        store.append(f"s{number}", [HumanMessage(f"teapot number {number}"),
                                    AIMessage("other words"), AIMessage("more words")])
    store.update_session("s1", owner="u1")
    hits = store.search("teapot", limit=5)
    assert [(h.session_id, h.position) for h in hits] == [
        ("s5", 0), ("s4", 0), ("s3", 0), ("s2", 0), ("s1", 0)]
    assert [h.session_id for h in store.search("teapot", limit=20)] == [
        f"s{n}" for n in range(5, -1, -1)]
    assert [h.session_id for h in store.search("teapot", owner="u1")] == ["s1"]
    assert [h.session_id for h in store.search("other words", limit=2)] == ["s5", "s4"]
    assert [h.position for h in store.search("more", limit=1)] == [2]
