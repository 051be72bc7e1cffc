"""Sessions as objects on Redis: what the contract suite (test_sessions.py) cannot see.

The sets behind recent-first and per-owner listings live beside keys the server expires
by itself, so these tests look at the raw keys: members of expired sessions are dropped
by the listings, an owner change moves a session between owners' sets, hostile session
ids and owners never name one of the store's own keys, ties in the recent order page
correctly, and a store of layout 1 gets its recent set. Shared server, unique prefixes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any, cast

import pytest
import redis

from threadline import AIMessage, HumanMessage, InputError
from threadline.stores.redis._store import RedisStore

SHARED = "redis://127.0.0.1:6379/0"


@pytest.fixture
def stores(base: str) -> Iterator[list[RedisStore]]:
    """Stores opened by a test, closed afterwards (``base`` deletes the keys)."""
    opened: list[RedisStore] = []
    yield opened
    for store in opened:
        store.close()


def _open(stores: list[RedisStore], prefix: str, **options: Any) -> RedisStore:
    store = RedisStore(SHARED, key_prefix=prefix, **options)
    stores.append(store)
    return store


def _members(raw: redis.Redis, key: str) -> list[bytes]:
    return sorted(cast(list[bytes], raw.zrange(key, 0, -1)))


def _keys(raw: redis.Redis, prefix: str) -> set[bytes]:
    return set(raw.scan_iter(match=prefix + "*", count=1000))


def test_members_of_expired_sessions_are_dropped_by_listings(
        base: str, raw: redis.Redis, stores: list[RedisStore]) -> None:
    store = _open(stores, base)
    short = _open(stores, base, ttl=0.3)
    store.append("gone", [HumanMessage("a")], ttl=0.3)
    store.update_session("gone", owner="u1", title="T")
    store.append("kept", [HumanMessage("b")])
    store.update_session("kept", owner="u1")
    store.update_session("empty", owner="u1")  # created, no messages, no expiry
    short.update_session("empty-short", owner="u1")  # created with the store's ttl
    info = short.session_info("empty-short")
    assert info is not None and info.message_count == 0 and info.expires_at is not None
    assert len(store.list_sessions(order="recent", owner="u1")) == 4
    time.sleep(0.5)  # the server expires the hashes and the list, not the set members
    recent, owned = base + "\x00recent", base + "\x00orecent\x00u1"
    assert _members(raw, recent) == sorted([b"gone", b"kept", b"empty", b"empty-short"])
    assert store.session_info("gone") is None and store.session_info("empty-short") is None
    assert store.list_sessions(order="recent").session_ids == ["empty", "kept"]
    assert _members(raw, recent) == [b"empty", b"kept"]
    assert _members(raw, base + "\x00sessions") == [b"empty", b"kept"]
    # The expired hashes took their owner with them: the owner's listing cleans its sets.
    assert len(_members(raw, owned)) == 4
    assert store.list_sessions(order="recent", owner="u1").session_ids == ["empty", "kept"]
    assert _members(raw, owned) == [b"empty", b"kept"]
    assert store.list_sessions(owner="u1").session_ids == ["empty", "kept"]
    assert _members(raw, base + "\x00oids\x00u1") == [b"empty", b"kept"]


def test_purge_expired_and_stats_drop_what_expired(
        base: str, raw: redis.Redis, stores: list[RedisStore]) -> None:
    store = _open(stores, base)
    store.append("gone", [HumanMessage("a"), AIMessage("b")], ttl=0.3)
    store.append("kept", [HumanMessage("c")])
    time.sleep(0.5)
    stats = store.stats()
    assert (stats.sessions, stats.messages) == (1, 1)
    assert stats.bytes is not None and stats.bytes > 0  # MEMORY USAGE
    assert _members(raw, base + "\x00recent") == [b"gone", b"kept"]  # stats only reads
    assert store.list_sessions(order="recent").session_ids == ["kept"]
    assert _members(raw, base + "\x00recent") == [b"kept"]
    store.append("gone2", [HumanMessage("a")], ttl=0.3)
    store.update_session("gone2", owner="nobody-lists-me")
    time.sleep(0.5)
    assert store.purge_expired() == 1
    assert _members(raw, base + "\x00recent") == [b"kept"]
    # No listing of that owner will come: the purge finds its sets by a SCAN.
    assert not raw.exists(base + "\x00orecent\x00nobody-lists-me",
                          base + "\x00oids\x00nobody-lists-me")
    assert store.purge_expired() == 0


def test_owner_change_moves_the_session_between_owner_sets(
        base: str, raw: redis.Redis, stores: list[RedisStore]) -> None:
    store = _open(stores, base)
    store.append("s", [HumanMessage("q")])
    store.update_session("s", owner="alice")
    sets = {who: (base + "\x00orecent\x00" + who, base + "\x00oids\x00" + who)
            for who in ("alice", "bob")}
    score = raw.zscore(base + "\x00recent", "s")
    assert raw.zscore(sets["alice"][0], "s") == score
    assert _members(raw, sets["alice"][1]) == [b"s"]
    store.update_session("s", owner="bob", title="renamed")
    assert not raw.exists(*sets["alice"])
    assert raw.zscore(sets["bob"][0], "s") == score  # renaming is no activity
    assert store.list_sessions(order="recent", owner="alice").session_ids == []
    assert store.list_sessions(order="recent", owner="bob").session_ids == ["s"]
    store.update_session("s", owner=None)
    assert not raw.exists(*sets["alice"], *sets["bob"])
    assert store.list_sessions(owner="bob").session_ids == []
    store.update_session("s", owner="bob")
    time.sleep(0.01)
    store.append("s", [AIMessage("a")])  # the owner's recent set follows the append
    moved = raw.zscore(base + "\x00recent", "s")
    assert moved is not None and score is not None and moved > score
    assert raw.zscore(sets["bob"][0], "s") == moved
    assert store.delete_session("s") is True
    assert _keys(raw, base) == {(base + "\x00schema").encode()}


def test_update_after_a_langchain_clear_forgets_the_old_owner(
        base: str, raw: redis.Redis, stores: list[RedisStore]) -> None:
    store = _open(stores, base)
    store.append("s", [HumanMessage("q")])
    store.update_session("s", owner="alice", title="old")
    raw.delete(base + "s")  # what LangChain's clear() does: the list only
    store.update_session("s", title="new")  # a new, empty session: nothing of the old
    info = store.session_info("s")
    assert info is not None and (info.title, info.owner, info.message_count) == ("new", None, 0)
    assert not raw.exists(base + "\x00orecent\x00alice", base + "\x00oids\x00alice")
    raw.delete(base + "s")
    store.update_session("t", owner="bob")
    store.append("t", [HumanMessage("x")])
    raw.delete(base + "t")
    store.append("t", [HumanMessage("y")])  # an append starts it afresh, too
    info = store.session_info("t")
    assert info is not None and info.owner is None
    assert not raw.exists(base + "\x00orecent\x00bob")


HOSTILE = ["recent", "orecent", "oids", "sessions", "meta", "schema", "*", "[a-z]?",
           "\\", ":", "a:b", "x\x01y", "\x7f", "ünï ✓", "'; DROP", "{tag}"]


def test_hostile_ids_and_owners_cannot_name_the_stores_keys(
        base: str, raw: redis.Redis, stores: list[RedisStore]) -> None:
    store = _open(stores, base)
    for index, sid in enumerate(HOSTILE):
        owner = HOSTILE[-1 - index]
        store.append(sid, [HumanMessage(sid)])
        store.update_session(sid, owner=owner, title=sid.replace("\x01", " ").replace("\x7f", "?"),
                             metadata={"k": sid})
    for bad_sid, bad_owner in [("\x00recent", "u"), ("s", "u\x00"), ("s", "\x00orecent")]:
        with pytest.raises(InputError):
            store.update_session(bad_sid, owner=bad_owner)
    head = base.encode()
    found = _keys(raw, base)
    lists = {key for key in found if not key.startswith(head + b"\x00")}
    assert lists == {head + sid.encode() for sid in HOSTILE}
    assert all(raw.type(key) == b"list" for key in lists)
    owners = {key for key in found - lists
              if key.startswith((head + b"\x00orecent\x00", head + b"\x00oids\x00"))}
    assert len(owners) == 2 * len(HOSTILE)  # one pair of sets per owner, none shared
    for index, sid in enumerate(HOSTILE):
        owner = HOSTILE[-1 - index]
        assert store.list_sessions(order="recent", owner=owner).session_ids == [sid]
        assert store.list_sessions(owner=owner, metadata={"k": sid}).session_ids == [sid]
        info = store.session_info(sid)
        assert info is not None and info.owner == owner
        assert [m.content for m in store.get_messages(sid)] == [sid]
    assert sorted(store.list_sessions(order="recent")) == sorted(HOSTILE)
    store.destroy()  # glob characters in owners do not hide their sets from it
    assert _keys(raw, base) == set()


def test_ties_in_the_recent_order_page_by_id_descending(
        base: str, raw: redis.Redis, stores: list[RedisStore]) -> None:
    store = _open(stores, base)
    ids = ["a", "b", "c", "d", "e", "f", "g"]
    for sid in ids:
        store.append(sid, [HumanMessage(sid)])
    # Same activity time for most (a bulk import would do that); "a" newer, "g" older.
    raw.zadd(base + "\x00recent", {sid: 1_700_000_000.25 for sid in ids[1:-1]})
    raw.zadd(base + "\x00recent", {"a": 1_800_000_000.5, "g": 1.0})
    expected = ["a", "f", "e", "d", "c", "b", "g"]
    for limit in (1, 2, 3, 7):
        walked: list[str] = []
        cursor = None
        while True:
            page = store.list_sessions(order="recent", limit=limit, cursor=cursor)
            walked += page.session_ids
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert walked == expected, limit
    # A cursor whose session moved on (appended since) still pages from where it was.
    first = store.list_sessions(order="recent", limit=3)
    store.append("e", [AIMessage("moved")])
    rest = store.list_sessions(order="recent", limit=10, cursor=first.next_cursor)
    assert first.session_ids == ["a", "f", "e"] and rest.session_ids == ["d", "c", "b", "g"]


def test_a_store_of_layout_1_gets_its_recent_set(
        base: str, raw: redis.Redis, stores: list[RedisStore]) -> None:
    store = _open(stores, base)
    for sid in ["a", "b", "c"]:
        store.append(sid, [HumanMessage(sid)])
        time.sleep(0.01)
    raw.delete(base + "\x00recent")
    raw.set(base + "\x00schema", 1)  # what threadline before sessions left
    again = _open(stores, base)  # its own pool: it checks the layout first
    assert again.list_sessions(order="recent").session_ids == ["c", "b", "a"]
    assert raw.get(base + "\x00schema") == b"2"
    assert raw.zscore(base + "\x00recent", "c") == float(
        raw.hget(base + "\x00meta\x00c", "updated_at") or 0)


def test_sessions_langchain_wrote_are_listed_once_known(
        base: str, raw: redis.Redis, stores: list[RedisStore]) -> None:
    raw.lpush(base + "lc", '{"type": "human", "data": {"content": "hi"}}')
    raw.lpush(base + "lc2", '{"type": "human", "data": {"content": "hi"}}')
    store = _open(stores, base)
    store.append("ours", [HumanMessage("y")])
    store.update_session("lc", title="From LangChain")  # update lists it
    assert store.list_sessions(order="recent").session_ids == ["ours", "lc"]
    info = store.session_info("lc")
    assert info is not None and info.title == "From LangChain" and info.message_count == 1
    assert info.updated_at is None  # never active through this store: listed last
    assert store.reindex() == 1  # reindex too
    assert store.list_sessions(order="recent").session_ids == ["ours", "lc2", "lc"]


def test_keys_of_other_applications_are_refused(
        base: str, raw: redis.Redis, stores: list[RedisStore]) -> None:
    store = _open(stores, base)
    raw.set(base + "str", "theirs")
    with pytest.raises(InputError):
        store.update_session("str", title="mine")
    assert raw.get(base + "str") == b"theirs" and store.session_info("str") is None
    assert not raw.exists(base + "\x00meta\x00str")


def test_an_empty_session_holds_its_list_against_a_nested_store(
        base: str, raw: redis.Redis, stores: list[RedisStore]) -> None:
    outer, inner = _open(stores, base), _open(stores, base + "admin:")
    inner.setup()
    outer.update_session("admin:x", title="mine")
    with pytest.raises(InputError):
        inner.append("x", [HumanMessage("theirs")])
    with pytest.raises(InputError):
        inner.update_session("x", title="theirs")
    assert inner.session_info("x") is None and inner.list_sessions().session_ids == []
    outer.append("admin:x", [HumanMessage("q")])
    info = outer.session_info("admin:x")
    assert info is not None and info.title == "mine" and info.message_count == 1
    assert outer.delete_session("admin:x") is True
    inner.append("x", [HumanMessage("now free")])
    assert outer.session_info("admin:x") is None
    # A session of the outer store that is gone (LangChain cleared its list) leaves
    # its entries behind; the inner store's new session on the list drops them all.
    outer.append("admin:y", [HumanMessage("q")])
    outer.update_session("admin:y", owner="alice")
    raw.delete(base + "admin:y")
    inner.append("y", [HumanMessage("new")])
    assert raw.zscore(base + "\x00recent", "admin:y") is None
    assert raw.zscore(base + "\x00sessions", "admin:y") is None
    assert not raw.exists(base + "\x00orecent\x00alice", base + "\x00oids\x00alice",
                          base + "\x00meta\x00admin:y")
    assert outer.list_sessions(order="recent").session_ids == []
    assert inner.list_sessions(order="recent").session_ids == ["y", "x"]


def test_async_listing_and_updates_match_sync(
        base: str, stores: list[RedisStore]) -> None:
    store = _open(stores, base)

    async def run() -> tuple[list[str], list[str], Any]:
        for sid in ["a", "b", "c"]:
            await store.aappend(sid, [HumanMessage(sid)])
            await store.aupdate_session(sid, owner="u", metadata={"n": sid})
            await asyncio.sleep(0.005)
        recent = await store.alist_sessions(order="recent", owner="u", limit=2)
        rest = await store.alist_sessions(order="recent", owner="u", cursor=recent.next_cursor)
        return recent.session_ids, rest.session_ids, await store.astats()

    first, rest, stats = asyncio.run(run())
    assert first + rest == ["c", "b", "a"]
    assert store.list_sessions(order="recent", owner="u").session_ids == ["c", "b", "a"]
    assert (stats.sessions, stats.messages) == (3, 3)


def test_fork_copies_inside_redis_in_chunks(
        base: str, raw: redis.Redis, stores: list[RedisStore]) -> None:
    from threadline.stores.redis._sessions import FORK_CHUNK

    store = _open(stores, base, ttl=600)
    total = 2 * FORK_CHUNK + 500
    store.append("src", [HumanMessage(f"m{i}", id=f"id{i}") for i in range(total)])
    store.update_session("src", owner="u", title="Long")
    at = 2 * FORK_CHUNK + 100  # three chunks, the last one partial
    info = store.fork("src", "dst", at=at)
    assert (info.message_count, info.parent, info.fork_point, info.owner) == (
        at, "src", at, "u")
    # The stored bytes themselves were copied, oldest first, newest at the list's head.
    assert raw.lrange(base + "dst", 0, -1) == raw.lrange(base + "src", total - at, -1)
    assert 590_000 < raw.pttl(base + "dst") <= 600_000  # the store's ttl
    assert store.list_sessions(order="recent", owner="u").session_ids == ["dst", "src"]
    # The copied ids are learnt by the next append: a retried message is not stored twice.
    store.append("dst", [HumanMessage("m5", id="id5"), AIMessage("new", id="fresh")])
    copied = store.get_messages("dst")
    assert len(copied) == at + 1 and copied[-1].content == "new"
    assert [m.content for m in copied[:3]] == ["m0", "m1", "m2"]
    assert len(store.get_messages("src")) == total
    empty = store.fork("src", "none", at=0)
    assert empty.message_count == 0 and not raw.exists(base + "none")


def test_search_answers_as_the_portable_scan_in_few_round_trips(
        base: str, raw: redis.Redis, stores: list[RedisStore],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from threadline.stores._sessions import check_search_args, scan_search
    from threadline.stores.redis._search import MESSAGES_PER_PAGE, SESSIONS_PER_TRIP

    store = _open(stores, base)
    count = 2 * SESSIONS_PER_TRIP + 20
    for i in range(count):
        store.append(f"s{i:03d}", [HumanMessage(f"alpha {i}"),
                                   AIMessage("beta gamma" if i % 3 == 0 else "delta")])
        if i % 2 == 0:
            store.update_session(f"s{i:03d}", owner="u1")
    long_count = 2 * MESSAGES_PER_PAGE + 200
    store.append("long", [HumanMessage("alpha gamma" if i % 100 == 7 else f"filler {i}")
                          for i in range(long_count)])
    raw.lpush(base + "s005", "not json")  # skipped by both, positions alike
    raw.lpush(base + "s005", '{"type": "human", "data": {"content": "alpha late"}}')
    store.update_session("empty", owner="u1")  # no messages: nothing to find
    trips: list[object] = []
    execute = store._execute

    def counting(*args: Any, **kwargs: Any) -> Any:
        trips.append(args[0])
        return execute(*args, **kwargs)

    with pytest.warns(Warning):
        for query in ["alpha", "gamma", "alpha gamma", "beta", "late", "nothing"]:
            for owner in (None, "u1"):
                for limit in (1, 7, 1000):
                    terms = check_search_args(query, owner, limit)
                    expected = scan_search(store, terms, owner, limit)
                    assert store.search(query, owner=owner, limit=limit) == expected, (
                        query, owner, limit)
        hits = store.search("alpha gamma", limit=1000)
        assert [h.position for h in hits if h.session_id == "long"] == list(
            range(long_count - 93, 0, -100))
        monkeypatch.setattr(store, "_execute", counting)
        assert len(store.search("alpha", limit=1000)) == count + 1 + long_count // 100
    # Pages of the recent listing (2 each) and of messages: not one trip per session.
    assert len(trips) <= 3 * 2 + 3 + 2, len(trips)


def test_stats_count_each_stores_own_sessions(
        base: str, stores: list[RedisStore]) -> None:
    outer, inner = _open(stores, base), _open(stores, base + "admin:")
    outer.append("admin:x", [HumanMessage("a"), AIMessage("b")])  # a nested prefix's key
    outer.append("plain", [HumanMessage("c")])
    outer.update_session("admin:e", title="empty")
    inner.append("y", [HumanMessage("d"), AIMessage("e"), HumanMessage("f")])
    assert outer.stats()[:2] == (3, 3)
    assert inner.stats()[:2] == (1, 3)
    assert outer.delete_session("admin:x") and outer.stats()[:2] == (2, 1)


def test_filters_judged_in_redis_agree_with_the_rival_path(
        base: str, raw: redis.Redis, stores: list[RedisStore]) -> None:
    store = _open(stores, base)
    _open(stores, base + "admin:").setup()  # "admin:..." ids now have a rival prefix
    wanted = {"emoji 🦜": "ünï \\u00e9 \"q\"", "empty": ""}
    for sid in ["plain", "admin:nested"]:  # judged by the FILTER script / by probe_op
        store.append(sid, [HumanMessage(sid)])
        store.update_session(sid, owner="o", metadata={**wanted, "other": sid})
        store.append(sid + "-no", [HumanMessage(sid)])
        store.update_session(sid + "-no", owner="o", metadata={**wanted, "empty": " "})
    store.append("garbage", [HumanMessage("x")])
    raw.hset(base + "\x00meta\x00garbage", mapping={"metadata": "not json", "owner": "o"})
    for order in ("id", "recent"):
        found = store.list_sessions(order=order, metadata=wanted)
        assert sorted(found) == ["admin:nested", "plain"]
        assert sorted(store.list_sessions(order=order, owner="o", metadata={
            "other": "admin:nested"})) == ["admin:nested"]
        # The raw owner is in no owner's set: only update_session files it there.
        assert len(store.list_sessions(order=order, owner="o")) == 4
        assert "garbage" in store.list_sessions(order=order)
        assert "garbage" not in store.list_sessions(order=order, metadata={"empty": ""})
    info = store.session_info("garbage")
    assert info is not None and dict(info.metadata) == {}
