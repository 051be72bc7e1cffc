"""The sessions contract: titles, metadata, owners, recent-first listing, search, fork,
stats and retention, on every backend (see threadline.stores._sessions)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from threadline import AIMessage, HumanMessage, InputError
from threadline.stores import Store

from .conftest import BackendSpec

# Long enough that every backend's clock orders two appends (the emulators' too).
TICK = 0.03


def _turn(question: str, answer: str) -> list[Any]:
    return [HumanMessage(question), AIMessage(answer)]


def _all_pages(store: Store, **query: Any) -> list[str]:
    seen: list[str] = []
    cursor = None
    while True:
        page = store.list_sessions(cursor=cursor, **query)
        seen.extend(page)
        if page.next_cursor is None:
            return seen
        assert len(page) == query.get("limit", 100)
        cursor = page.next_cursor


# -- metadata ----------------------------------------------------------------------------


def test_update_session_sets_and_keeps_fields(store: Store) -> None:
    store.append("s", _turn("hi", "hello"))
    store.update_session("s", title="Trip to Oslo", metadata={"lang": "en", "k": "v"},
                         owner="u1")
    info = store.session_info("s")
    assert info is not None
    assert (info.title, dict(info.metadata), info.owner) == (
        "Trip to Oslo", {"lang": "en", "k": "v"}, "u1")
    assert info.message_count == 2
    assert info.parent is None and info.fork_point is None
    store.update_session("s", title="Oslo")  # the others stay
    info = store.session_info("s")
    assert info is not None
    assert (info.title, dict(info.metadata), info.owner) == ("Oslo", {"lang": "en", "k": "v"},
                                                             "u1")
    store.update_session("s", metadata={"only": "this"})  # replaced whole
    info = store.session_info("s")
    assert info is not None and dict(info.metadata) == {"only": "this"}
    store.update_session("s", title=None, metadata=None)  # cleared
    info = store.session_info("s")
    assert info is not None
    assert (info.title, dict(info.metadata), info.owner) == (None, {}, "u1")
    assert [m.content for m in store.get_messages("s")] == ["hi", "hello"]
    store.append("s", _turn("again", "yes"))
    info = store.session_info("s")
    assert info is not None and info.owner == "u1" and info.message_count == 4


def test_update_session_creates_an_empty_session(store: Store) -> None:
    store.update_session("new", title="Empty so far", owner="u1")
    info = store.session_info("new")
    assert info is not None
    assert info.message_count == 0 and info.title == "Empty so far"
    assert info.created_at is not None and info.updated_at is not None
    assert "new" in store.list_sessions()
    assert "new" in store.list_sessions(order="recent", owner="u1")
    assert store.get_messages("new") == []
    store.append("new", _turn("q", "a"))
    info = store.session_info("new")
    assert info is not None and info.message_count == 2 and info.title == "Empty so far"


def test_delete_session_forgets_metadata(store: Store) -> None:
    store.append("d", _turn("q", "a"))
    store.update_session("d", title="T", metadata={"a": "b"}, owner="u1")
    assert store.delete_session("d") is True
    assert store.session_info("d") is None
    assert "d" not in store.list_sessions(owner="u1")
    store.append("d", _turn("q", "a"))
    info = store.session_info("d")
    assert info is not None
    assert (info.title, dict(info.metadata), info.owner) == (None, {}, None)


HOSTILE_TEXT = "'; DROP TABLE sessions; -- \" $where {} ${x} \\ %s %% _ * ? `rm`"


def test_hostile_but_valid_metadata_round_trips(store: Store) -> None:
    metadata = {HOSTILE_TEXT[:64]: HOSTILE_TEXT, "emoji 🦜": "ünïcødé ✓", "empty": "",
                "$set": "x", "a.b": "dots", "x" * 64: "y" * 512}
    title = "Ω " + HOSTILE_TEXT
    store.update_session("h", title=title, metadata=metadata, owner=HOSTILE_TEXT)
    info = store.session_info("h")
    assert info is not None
    assert info.title == title and dict(info.metadata) == metadata
    assert info.owner == HOSTILE_TEXT
    assert store.list_sessions(owner=HOSTILE_TEXT).session_ids == ["h"]
    assert store.list_sessions(metadata={"$set": "x"}).session_ids == ["h"]
    assert store.list_sessions(owner="'; DROP TABLE sessions; --").session_ids == []


@pytest.mark.parametrize("bad", [
    {"title": "x" * 513},
    {"title": "two\nlines"},
    {"title": 42},
    {"metadata": {f"k{i}": "v" for i in range(17)}},
    {"metadata": {"k": "v" * 513}},
    {"metadata": {"k" * 65: "v"}},
    {"metadata": {"": "v"}},
    {"metadata": {"deep": {"nested": {"more": "x"}}}},
    {"metadata": {"n": 1}},
    {"metadata": {"list": ["a"]}},
    {"metadata": {1: "v"}},
    {"metadata": {"nul": "a\x00b"}},
    {"metadata": ["not", "a", "mapping"]},
    {"metadata": "k=v"},
    {"owner": ""},
    {"owner": "o" * 257},
    {"owner": 7},
    {"owner": "nul\x00"},
])
def test_hostile_metadata_is_refused_and_nothing_stored(store: Store, bad: dict[str, Any]
                                                        ) -> None:
    with pytest.raises(InputError):
        store.update_session("fresh", **bad)
    assert store.session_info("fresh") is None
    store.update_session("kept", title="T", metadata={"a": "b"}, owner="u")
    with pytest.raises(InputError):  # a valid title beside a bad value is not stored
        store.update_session("kept", **({"title": "changed"} | bad))
    info = store.session_info("kept")
    assert info is not None
    assert (info.title, dict(info.metadata), info.owner) == ("T", {"a": "b"}, "u")


# -- listing -----------------------------------------------------------------------------


def test_recent_order_follows_appends(store: Store) -> None:
    for sid in ["a", "b", "c"]:
        store.append(sid, _turn(f"q {sid}", "a"))
        time.sleep(TICK)
    assert store.list_sessions(order="recent").session_ids == ["c", "b", "a"]
    store.append("a", _turn("later", "yes"))
    time.sleep(TICK)
    assert store.list_sessions(order="recent").session_ids == ["a", "c", "b"]
    store.update_session("b", title="renamed")  # renaming is not activity
    assert store.list_sessions(order="recent").session_ids == ["a", "c", "b"]
    assert store.list_sessions(order="id").session_ids == ["a", "b", "c"]
    info_a, info_c = store.session_info("a"), store.session_info("c")
    assert info_a is not None and info_c is not None
    assert info_a.updated_at > info_c.updated_at  # type: ignore[operator]


def test_recent_pages_walk_every_session_once(store: Store) -> None:
    ids = [f"p{i:02d}" for i in range(23)]
    for sid in ids:
        store.append(sid, [HumanMessage(sid)])
        time.sleep(0.002)
    walked = _all_pages(store, order="recent", limit=5)
    assert sorted(walked) == ids and len(walked) == len(set(walked))
    stamps = []
    for sid in walked:
        info = store.session_info(sid)
        assert info is not None
        stamps.append(info.updated_at)
    assert stamps == sorted(stamps, reverse=True)
    assert _all_pages(store, order="id", limit=4) == ids
    page = store.list_sessions(order="recent", limit=23)
    assert page.next_cursor is None and len(page) == 23


def test_owner_prefix_and_metadata_filters(store: Store) -> None:
    layout = {"u1/a": ("u1", {"kind": "chat"}), "u1/b": ("u1", {"kind": "agent"}),
              "u2/a": ("u2", {"kind": "chat"}), "x/c": (None, {"kind": "chat"})}
    for sid, (owner, metadata) in layout.items():
        store.append(sid, _turn(sid, "ok"))
        store.update_session(sid, owner=owner, metadata=metadata)
        time.sleep(TICK)
    for order in ("id", "recent"):
        assert sorted(store.list_sessions(order=order, owner="u1")) == ["u1/a", "u1/b"]
        assert list(store.list_sessions(order=order, owner="u2")) == ["u2/a"]
        assert list(store.list_sessions(order=order, owner="nobody")) == []
        assert sorted(store.list_sessions(order=order, metadata={"kind": "chat"})) == [
            "u1/a", "u2/a", "x/c"]
        assert list(store.list_sessions(order=order, owner="u1",
                                        metadata={"kind": "chat"})) == ["u1/a"]
        assert list(store.list_sessions(order=order, metadata={"kind": "chat",
                                                               "other": "x"})) == []
        assert sorted(store.list_sessions(order=order, prefix="u1/")) == ["u1/a", "u1/b"]
        assert list(store.list_sessions(order=order, prefix="u1/", owner="u2")) == []
        assert sorted(_all_pages(store, order=order, limit=1, metadata={"kind": "chat"})
                      ) == ["u1/a", "u2/a", "x/c"]
    assert store.list_sessions(order="recent", owner="u1").session_ids == ["u1/b", "u1/a"]


def test_bad_listing_arguments(store: Store) -> None:
    store.append("s", [HumanMessage("x")])
    with pytest.raises(InputError):
        store.list_sessions(order="newest")  # type: ignore[arg-type]
    with pytest.raises(InputError):
        store.list_sessions(order="recent", cursor="garbage")
    with pytest.raises(InputError):
        store.list_sessions(order="recent", cursor="r1.!!!")
    with pytest.raises(InputError):
        store.list_sessions(owner="")
    with pytest.raises(InputError):
        store.list_sessions(metadata={"k": {"nested": "x"}})  # type: ignore[dict-item]


# -- search ------------------------------------------------------------------------------


def _search_fixture(store: Store) -> None:
    store.append("trip", [HumanMessage("What is the weather in Oslo tomorrow?"),
                          AIMessage("Oslo will be cold: minus four, with snow."),
                          HumanMessage("And in Bergen?"),
                          AIMessage("Bergen will be rainy, as usual.")])
    store.append("code", [HumanMessage("How do I reverse a list in Python?"),
                          AIMessage("Use reversed(items) or items[::-1].")])
    store.update_session("trip", owner="u1")
    store.update_session("code", owner="u2")


def test_search_finds_messages_with_every_word(store: Store) -> None:
    _search_fixture(store)
    hits = store.search("oslo WEATHER")
    assert [(h.session_id, h.position) for h in hits] == [("trip", 0)]
    assert "Oslo" in hits[0].snippet and "weather" in hits[0].snippet
    hits = store.search("oslo")
    assert sorted((h.session_id, h.position) for h in hits) == [("trip", 0), ("trip", 1)]
    assert [(h.session_id, h.position) for h in store.search("bergen rainy")] == [("trip", 3)]
    assert [(h.session_id, h.position) for h in store.search("python")] == [("code", 0)]
    assert store.search("oslo python") == []
    assert store.search("nowhere") == []
    assert len(store.search("oslo", limit=1)) == 1


def test_search_is_scoped_to_an_owner(store: Store) -> None:
    _search_fixture(store)
    assert [h.session_id for h in store.search("oslo", owner="u1")] == ["trip", "trip"]
    assert store.search("oslo", owner="u2") == []
    assert [h.session_id for h in store.search("python", owner="u2")] == ["code"]
    store.delete_session("trip")
    assert store.search("oslo") == []


@pytest.mark.parametrize("query", [
    "'; DROP TABLE messages; --", 'oslo" OR "1"="1', "NEAR(oslo weather)", "oslo*",
    "-oslo +weather", "oslo AND NOT weather", "@@ to_tsquery('x')", "% _ ~ | oslo",
    "((((( oslo", "MATCH AGAINST", "$where", "oslo:* & weather",
])
def test_search_queries_are_data(store: Store, query: str) -> None:
    _search_fixture(store)
    hits = store.search(query)  # never a syntax error, never an injection
    assert all(h.session_id in ("trip", "code") for h in hits)
    assert store.session_info("trip") is not None


def test_bad_search_arguments(store: Store) -> None:
    for bad in ["", "   ", "!!! ???", "(((((", "\\ % _ ~ |", "x" * 1001, "a\x00b"]:
        with pytest.raises(InputError):
            store.search(bad)
    with pytest.raises(InputError):
        store.search(" ".join(f"w{i}" for i in range(17)))
    for limit in [0, -1, 1001, True, "5"]:
        with pytest.raises(InputError):
            store.search("oslo", limit=limit)  # type: ignore[arg-type]


# -- fork --------------------------------------------------------------------------------


def test_fork_copies_the_first_messages_and_names_its_parent(store: Store) -> None:
    messages = [*_turn("one", "1"), *_turn("two", "2"), *_turn("three", "3")]
    store.append("src", messages)
    store.update_session("src", title="Numbers", metadata={"k": "v"}, owner="u1")
    info = store.fork("src", "dst", at=4)
    assert info.session_id == "dst" and info.message_count == 4
    assert (info.title, dict(info.metadata), info.owner) == ("Numbers", {"k": "v"}, "u1")
    assert (info.parent, info.fork_point) == ("src", 4)
    assert [m.content for m in store.get_messages("dst")] == ["one", "1", "two", "2"]
    store.append("dst", _turn("other", "x"))
    assert [m.content for m in store.get_messages("src")] == [m.content for m in messages]
    assert [m.content for m in store.get_messages("dst")][-2:] == ["other", "x"]
    whole = store.fork("src", "all")
    assert whole.message_count == 6 and whole.fork_point == 6
    empty = store.fork("src", "none", at=0)
    assert empty.message_count == 0 and empty.parent == "src"
    assert store.delete_session("src") is True  # forks hold their own messages
    assert [m.content for m in store.get_messages("dst")][:2] == ["one", "1"]
    assert len(store.get_messages("all")) == 6
    assert "dst" in store.list_sessions(owner="u1")


def test_fork_keeps_message_ids_and_types(store: Store) -> None:
    store.append("src", [HumanMessage("q", id="m1"), AIMessage("a", id="m2")])
    store.fork("src", "dst")
    copied = store.get_messages("dst")
    assert [(type(m).__name__, m.id) for m in copied] == [("HumanMessage", "m1"),
                                                          ("AIMessage", "m2")]
    store.append("dst", [AIMessage("a", id="m2")])  # a retried append stores nothing
    assert len(store.get_messages("dst")) == 2


def test_bad_forks_are_refused(store: Store) -> None:
    store.append("src", _turn("q", "a"))
    store.append("taken", _turn("q", "a"))
    for args, kwargs in [(("missing", "new"), {}), (("src", "taken"), {}),
                         (("src", "src"), {}), (("src", "new"), {"at": 3}),
                         (("src", "new"), {"at": -1}), (("src", ""), {})]:
        with pytest.raises(InputError):
            store.fork(*args, **kwargs)
    assert store.session_info("new") is None
    assert len(store.get_messages("taken")) == 2


# -- stats and retention -----------------------------------------------------------------


def test_stats_count_sessions_and_messages(store: Store) -> None:
    assert store.stats()[:2] == (0, 0)
    store.append("a", _turn("q", "a"))
    store.append("b", [*_turn("q", "a"), HumanMessage("x")])
    stats = store.stats()
    assert (stats.sessions, stats.messages) == (2, 5)
    assert stats.bytes is None or stats.bytes > 0


def test_purge_sessions_applies_a_retention_policy(store: Store) -> None:
    for sid in ["old1", "old2"]:
        store.append(sid, _turn(sid, "a"))
    time.sleep(0.2)
    middle = time.time()  # the old sessions were last active before this moment
    time.sleep(0.2)
    for sid in ["new1", "new2", "new3"]:
        store.append(sid, _turn(sid, "a"))
        time.sleep(TICK)

    def since_middle() -> float:  # an age limit that falls between old and new
        return time.time() - middle

    assert sorted(store.purge_sessions(max_age=since_middle(), dry_run=True)) == [
        "old1", "old2"]
    assert len(store.list_sessions()) == 5
    assert sorted(store.purge_sessions(max_age=since_middle())) == ["old1", "old2"]
    assert sorted(store.list_sessions()) == ["new1", "new2", "new3"]
    assert store.purge_sessions(max_sessions=2) == ["new1"]
    assert sorted(store.list_sessions()) == ["new2", "new3"]
    assert store.purge_sessions() == []  # no policy: nothing


def test_retention_options_are_store_defaults(backend: BackendSpec) -> None:
    store = backend.open(max_sessions=1)
    assert store.max_sessions == 1
    store.append("a", _turn("q", "a"))
    time.sleep(TICK)
    store.append("b", _turn("q", "a"))
    assert store.purge_sessions() == ["a"]
    assert list(store.list_sessions()) == ["b"]


# -- async -------------------------------------------------------------------------------


def test_async_twins(store: Store) -> None:
    async def run() -> None:
        await store.aappend("a", _turn("hello there", "hi"))
        await store.aupdate_session("a", title="Greeting", owner="u1")
        info = await store.asession_info("a")
        assert info is not None and info.title == "Greeting"
        page = await store.alist_sessions(order="recent", owner="u1")
        assert page.session_ids == ["a"]
        hits = await store.asearch("hello", owner="u1")
        assert [(h.session_id, h.position) for h in hits] == [("a", 0)]
        fork = await store.afork("a", "b", at=1)
        assert fork.message_count == 1 and fork.parent == "a"
        stats = await store.astats()
        assert (stats.sessions, stats.messages) == (2, 3)
        assert await store.apurge_sessions(max_sessions=5) == []

    asyncio.run(run())


def test_search_sees_tool_calls_and_non_ascii_words(store: Store) -> None:
    call = {"name": "get_weather", "args": {"city": "Tromsø"}, "id": "c1",
            "type": "tool_call"}
    store.append("tools", [HumanMessage("Weather up north?"),
                           AIMessage("", tool_calls=[call]),
                           HumanMessage("Ünïcödé façade naïve")])
    assert [(h.session_id, h.position) for h in store.search("tromsø")] == [("tools", 1)]
    assert [(h.session_id, h.position) for h in store.search("get_weather")] == [("tools", 1)]
    assert [(h.session_id, h.position) for h in store.search("FAÇADE")] == [("tools", 2)]
