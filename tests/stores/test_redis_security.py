"""Redis key namespaces under attack, and streamed reads (issue 21, points 5 and 9).

A session id chosen by an attacker must never reach a key outside its store: another
application's key under the same prefix, or a session of a store whose prefix nests
with this one's (``t1:`` and ``t1:admin:``). Runs on the shared server, every key under a
unique base that is deleted afterwards.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
import warnings
from collections.abc import Sequence

import pytest
import redis

from threadline import AIMessage, HumanMessage, InputError, MessageFormatError
from threadline._errors import ConfigurationError
from threadline.stores import open_store
from threadline.stores._base import encode_message, validate_key_prefix
from threadline.stores.compat._redis import RedisChatMessageHistory
from threadline.stores.redis._keys import RIVAL_REACH, Keys
from threadline.stores.redis._ops import page_op
from threadline.stores.redis._store import RedisStore

SHARED = "redis://127.0.0.1:6379/0"


def texts(messages: Sequence[object]) -> list[str]:
    return [m.content for m in messages]  # type: ignore[attr-defined]


def store(prefix: str, **options: object) -> RedisStore:
    opened = open_store(SHARED, key_prefix=prefix, **options)
    assert isinstance(opened, RedisStore)
    return opened


# -- prefixes ---------------------------------------------------------------------------------


def test_empty_or_undelimited_prefix_is_refused() -> None:
    for url, options in ((SHARED, {"key_prefix": ""}), (SHARED + "?key_prefix=", {})):
        with pytest.raises(ConfigurationError, match=r"must not be empty.*another application"):
            open_store(url, **options)
    with pytest.raises(ConfigurationError, match=r"must end with ':'.*use 'chat:'"):
        open_store(SHARED, key_prefix="chat")
    with pytest.raises(ConfigurationError, match="must not be empty"):
        RedisChatMessageHistory("s", url=SHARED, key_prefix="")
    assert RedisStore(SHARED).key_prefix == "message_store:"
    assert store("a:b:").key_prefix == "a:b:"


def test_rivals_are_the_prefixes_a_key_could_belong_to() -> None:
    assert Keys(b"message_store:").rivals(b"user-1") == []
    (rival,) = Keys(b"message_store:").rivals(b"user:1")
    assert (rival.keys.prefix, rival.sid, rival.longer) == (b"message_store:user:", b"1", True)
    (rival,) = Keys(b"t1:admin:").rivals(b"x")
    assert (rival.keys.prefix, rival.sid, rival.longer) == (b"t1:", b"admin:x", False)
    # No store can have a prefix with a space, nor an empty session id: no rival.
    assert Keys(b"p:").rivals(b"a b:c") == Keys(b"p:").rivals(b"end:") == []
    assert [r.keys.prefix for r in Keys(b"p:").rivals(b"a:b:c")] == [b"p:a:", b"p:a:b:"]
    # Rivals are looked for as far as any accepted prefix can reach.
    with pytest.raises(InputError):
        validate_key_prefix("a" * (RIVAL_REACH - 1) + ":")


# -- another application's keys under the prefix ------------------------------------------------


def test_another_applications_string_key_is_untouchable(base: str, raw: redis.Redis) -> None:
    """Store prefix ``app:``: the session ``session:admin`` names the key
    ``app:session:admin``, another application's string; ``admin`` names ``app:admin``."""
    victims = {base + "session:admin": "secret-token", base + "admin": "other"}
    for key, value in victims.items():
        raw.set(key, value)
    attacker = store(base)
    attacker.append("mine", [HumanMessage("ours")])
    for sid in ("session:admin", "admin"):
        assert attacker.delete_session(sid) is False
        assert asyncio.run(attacker.adelete_session(sid)) is False
        assert attacker.get_messages(sid) == [] and attacker.session_info(sid) is None
        assert list(attacker.iter_messages(sid, page_size=2)) == []
        with pytest.raises(InputError, match="another application's data; nothing was stored"):
            attacker.append(sid, [HumanMessage("pushed")])
        with pytest.raises(InputError, match="nothing was stored"):
            asyncio.run(attacker.aappend(sid, [HumanMessage("pushed", id="i1")]))
        attacker.expire(sid, 1)
    assert attacker.reindex() == 0
    assert attacker.list_sessions().session_ids == ["mine"]
    assert attacker.purge_expired() == 0
    attacker.destroy()
    for key, value in victims.items():
        assert raw.get(key) == value.encode() and raw.ttl(key) == -1
    assert not raw.exists(base + "mine")
    attacker.close()


# -- nested prefixes ------------------------------------------------------------------------------


def test_nested_prefixes_never_see_each_others_sessions(base: str, raw: redis.Redis) -> None:
    outer, inner = store(base), store(base + "admin:")
    inner.append("x", [HumanMessage("inner's x", id="x1")])
    outer.append("admin:y", [HumanMessage("outer's admin:y", id="y1")])
    outer.append("plain", [HumanMessage("outer's plain")])
    assert raw.type(base + "admin:x") == raw.type(base + "admin:y") == b"list"

    cases = ((outer, "admin:x", inner, "x"), (inner, "y", outer, "admin:y"))
    for attacker, sid, owner, owners_sid in cases:
        before = texts(owner.get_messages(owners_sid))
        assert attacker.get_messages(sid) == [] and attacker.session_info(sid) is None
        assert asyncio.run(attacker.aget_messages(sid)) == []
        assert list(attacker.iter_messages(sid)) == []
        assert attacker.delete_session(sid) is False
        assert asyncio.run(attacker.adelete_session(sid)) is False
        with pytest.raises(InputError, match="a session of another store"):
            attacker.append(sid, [HumanMessage("forged")])
        with pytest.raises(InputError, match="a session of another store"):
            asyncio.run(attacker.aappend(sid, [HumanMessage("forged", id="f1")]))
        attacker.expire(sid, 1)
        assert attacker.reindex() == 0
        assert sid not in attacker.list_sessions(prefix=sid[:1]).session_ids
        assert attacker.purge_expired() == 0
        assert texts(owner.get_messages(owners_sid)) == before  # untouched
        assert raw.ttl(owner.key_prefix + owners_sid) == -1
        info = owner.session_info(owners_sid)
        assert info is not None and info.message_count == 1

    assert outer.list_sessions().session_ids == ["admin:y", "plain"]
    assert inner.list_sessions().session_ids == ["x"]
    inner.destroy()
    assert texts(outer.get_messages("admin:y")) == ["outer's admin:y"]
    assert not raw.exists(base + "admin:x")
    inner.append("z", [HumanMessage("inner again")])
    outer.destroy()
    assert texts(inner.get_messages("z")) == ["inner again"]
    assert inner.list_sessions().session_ids == ["z"]
    outer.close()
    inner.close()


def test_destroy_leaves_a_nested_stores_keys(base: str, raw: redis.Redis) -> None:
    outer, inner = store(base), store(base + "admin:")
    inner.append("x", [HumanMessage("a", id="a1")], ttl=60)
    inner_keys = sorted(raw.scan_iter(match=base + "admin:*"))
    outer.append("s", [HumanMessage("b")])
    outer.destroy()
    assert sorted(raw.scan_iter(match=base + "*")) == inner_keys
    assert texts(inner.get_messages("x")) == ["a"]
    outer.close()
    inner.close()


def test_unindexed_lists_belong_to_the_longest_registered_prefix(base: str,
                                                                 raw: redis.Redis) -> None:
    """Lists no index names (LangChain wrote them): a store reads them by id, unless a
    store whose prefix is longer and also covers the key exists: then they are its."""
    from langchain_community.chat_message_histories import (
        RedisChatMessageHistory as LangChainHistory,
    )

    # The default prefix keeps LangChain's layout, ids with ':' included, both ways.
    sid = f"user:{secrets.token_hex(5)}"
    default = RedisStore(SHARED)
    try:
        default.append(sid, [HumanMessage("hi", id="h1")])
        assert raw.type("message_store:" + sid) == b"list"
        theirs = LangChainHistory(sid, url=SHARED)
        assert [m.content for m in theirs.messages] == ["hi"]
        theirs.add_user_message("from langchain")
        assert texts(default.get_messages(sid)) == ["hi", "from langchain"]
    finally:
        default.delete_session(sid)
        default.close()
    assert not raw.exists("message_store:" + sid)

    row = encode_message(HumanMessage("from langchain"))
    raw.lpush(base + "lc:z", row)  # LangChain's session "lc:z" of prefix base
    outer = store(base)
    assert texts(outer.get_messages("lc:z")) == ["from langchain"]  # no rival store
    raw.lpush(base + "admin:z", row)  # LangChain's session "z" of prefix base + "admin:"
    inner = store(base + "admin:")
    inner.setup()
    assert outer.get_messages("admin:z") == []
    with pytest.raises(InputError):
        outer.append("admin:z", [HumanMessage("forged")])
    assert outer.reindex() == 1  # "lc:z" only
    assert outer.list_sessions().session_ids == ["lc:z"]
    assert texts(inner.get_messages("z")) == ["from langchain"]
    assert inner.reindex() == 1
    inner.append("z", [AIMessage("reply")])
    assert texts(inner.get_messages("z")) == ["from langchain", "reply"]
    outer.close()
    inner.close()


def test_a_gone_session_leaves_no_claim(base: str, raw: redis.Redis) -> None:
    """A session whose list expired leaves its index entry until the next listing; a
    nested store creating the same key takes it whole, stale entry and all."""
    outer, inner = store(base), store(base + "admin:")
    outer.append("admin:w", [HumanMessage("old", id="o1")])
    raw.delete(base + "admin:w")  # as if it expired
    inner.append("w", [HumanMessage("new", id="o1")])
    assert texts(inner.get_messages("w")) == ["new"]
    assert outer.get_messages("admin:w") == []
    assert outer.list_sessions().session_ids == []
    assert raw.zscore(base + "\x00sessions", "admin:w") is None
    assert not raw.exists(base + "\x00meta\x00admin:w")
    outer.close()
    inner.close()


# -- streamed reads -----------------------------------------------------------------------------


def test_iter_messages_reads_page_by_page(base: str, raw: redis.Redis) -> None:
    rows = [encode_message(HumanMessage(f"m{i}")) for i in range(30)]
    rows[25] = '{"type": "human", "data": 7}'
    raw.lpush(base + "s", *rows)  # oldest first: LPUSH leaves the newest at the head
    reader = store(base)
    # Lazy and paged: the first 20 come without reading the bad row at 25.
    assert texts(itertools.islice(reader.iter_messages("s", page_size=10), 20)) == [
        f"m{i}" for i in range(20)]
    with pytest.raises(MessageFormatError) as info:
        list(reader.iter_messages("s", page_size=10))
    assert info.value.position == 25 and info.value.session_id == "s"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        kept = texts(reader.iter_messages("s", page_size=7, skip_invalid=True))
    assert kept == [f"m{i}" for i in range(30) if i != 25]
    assert [w.message.error.position for w in caught] == [25]  # type: ignore[union-attr]

    # An append while reading moves nothing: pages are counted from the oldest end.
    pages = reader.iter_messages("s", page_size=4, skip_invalid=True)
    first = [next(pages).content for _ in range(4)]
    reader.append("s", [AIMessage("late")])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rest = texts(pages)
    assert first + rest == [f"m{i}" for i in range(30) if i != 25] + ["late"]
    with pytest.raises(InputError):
        reader.iter_messages("s", page_size=0)
    with pytest.raises(InputError):
        reader.iter_messages("", page_size=10)
    reader.close()


def test_a_page_is_one_bounded_range() -> None:
    op = page_op(Keys(b"p:"), b"s", 7, 7)
    (command,) = next(op).commands
    assert command[-2:] == (-14, -8)  # messages 7..13, counted from the oldest end
    with pytest.raises(StopIteration) as done:
        op.send([[b"13", b"12", b"11"]])
    assert done.value.value == [b"11", b"12", b"13"]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_too_big_a_message_is_refused_before_connecting(mode: str) -> None:
    """The size check runs before anything is sent: against a server that is not there,
    the error is about the message, not the connection."""
    unreachable = open_store("redis://127.0.0.1:1/0?key_prefix=p:", max_message_bytes=1000,
                             connect_timeout=1)
    big = [HumanMessage("ok"), AIMessage("é" * 600, id="a1")]  # 1,200+ bytes of JSON
    with pytest.raises(InputError, match="max_message_bytes"):
        if mode == "sync":
            unreachable.append("s", big)
        else:
            asyncio.run(unreachable.aappend("s", big))
    unreachable.close()


def test_size_check_counts_bytes_of_the_stored_json(base: str, raw: redis.Redis) -> None:
    limited = store(base, max_message_bytes=200)
    message = HumanMessage("x" * 50)
    size = len(encode_message(message).encode())
    assert size < 200
    limited.append("s", [message])
    with pytest.raises(InputError, match="max_message_bytes"):
        limited.append("s", [HumanMessage("€" * 60)])  # 60 characters, 180 bytes + JSON
    assert [json.loads(r)["data"]["content"] for r in raw.lrange(base + "s", 0, -1)] == [
        "x" * 50]
    limited.close()
