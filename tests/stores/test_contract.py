"""The one contract every store backend passes (parametrized in conftest.py).

Run one backend: ``.venv/bin/pytest tests/stores/test_contract.py -k sqlite -q``.
"""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from threadline import (
    AIMessage,
    BaseMessage,
    ChatPromptTemplate,
    ConfigurableFieldSpec,
    ConfigurationError,
    EchoChatModel,
    HumanMessage,
    InputError,
    RunnableWithMessageHistory,
    StoreConnectionError,
    StoreError,
    SystemMessage,
    ThreadlineError,
    ToolMessage,
)
from threadline.stores import SessionPage, Store, StoreHistory, open_store, session_key

from .conftest import BackendSpec


def _turn(i: int, who: str = "") -> list[BaseMessage]:
    return [HumanMessage(f"{who}q{i}"), AIMessage(f"{who}a{i}")]


def _texts(messages: Sequence[BaseMessage]) -> list[str]:
    return [m.text for m in messages]


def rich_messages() -> list[BaseMessage]:
    """Messages using every field a store must keep."""
    return [
        SystemMessage([{"type": "text", "text": "be brief"}, "plain block"], id="sys-1"),
        HumanMessage("héllo wörld 👋 — 你好", name="alice", id="h-1",
                     additional_kwargs={"k": [1, 2.5, None, True]}),
        AIMessage(
            "",
            id="ai-1",
            tool_calls=[{"name": "search", "args": {"q": "x\x00y", "n": 3}, "id": "call_1",
                         "type": "tool_call"}],
            usage_metadata={"input_tokens": 3, "output_tokens": 5, "total_tokens": 8},
            response_metadata={"model_name": "fake", "finish_reason": "tool_calls"},
        ),
        ToolMessage("result with NUL \x00 inside", tool_call_id="call_1", name="search",
                    artifact={"raw": [1, 2]}, status="error"),
        AIMessage("line1\nline2\t\"quoted\" 'single' \\ backslash", name="bot"),
        HumanMessage("x" * 20_000),
    ]


HOSTILE_IDS = [
    "it's \"quoted\"",
    "../../etc/passwd",
    "/abs/path",
    "100%",
    "a_b",
    "'; DROP TABLE x; --",
    "ünïcødé 🚀 会话",
    "CON",
    "Case",
    "case",
    "back\\slash",
    "line\nbreak",
    "   ",
    "*",
    "x" * 10_000 + "-tail",
]


# -- basics ------------------------------------------------------------------------------


def test_append_and_read_in_order(store: Store) -> None:
    assert store.get_messages("none-yet") == []
    store.append("s1", _turn(0))
    store.append("s1", _turn(1))
    store.append("s1", [])  # an empty batch is a no-op
    store.append("s2", _turn(9))
    assert _texts(store.get_messages("s1")) == ["q0", "a0", "q1", "a1"]
    assert _texts(store.get_messages("s2")) == ["q9", "a9"]


def test_get_messages_last(store: Store) -> None:
    for i in range(3):
        store.append("s", _turn(i))
    assert store.get_messages("s", last=0) == []
    assert _texts(store.get_messages("s", last=1)) == ["a2"]
    assert _texts(store.get_messages("s", last=3)) == ["a1", "q2", "a2"]
    assert _texts(store.get_messages("s", last=100)) == _texts(store.get_messages("s"))
    assert store.get_messages("missing", last=2) == []
    history = store.history("s")
    assert _texts(history.get_messages(last=2)) == ["q2", "a2"]


def test_full_fidelity_round_trip(store: Store) -> None:
    messages = rich_messages()
    store.append("rich", messages)
    got = store.get_messages("rich")
    assert got == messages
    assert [type(m) for m in got] == [type(m) for m in messages]
    assert got[2].tool_calls == messages[2].tool_calls  # type: ignore[attr-defined]
    assert got[3].artifact == {"raw": [1, 2]}  # type: ignore[attr-defined]


def test_store_history_is_a_chat_history(store: Store) -> None:
    history = store.history("h")
    assert isinstance(history, StoreHistory)
    history.add_user_message("hi")
    history.add_ai_message("hello")
    history.add_messages(_turn(1))
    assert _texts(history.messages) == ["hi", "hello", "q1", "a1"]
    history.clear()
    assert history.messages == []
    assert store.session_info("h") is None


def test_runnable_with_message_history_one_batch_per_turn(store: Store) -> None:
    calls: list[int] = []

    class CountingHistory(StoreHistory):
        def add_messages(self, messages: Sequence[BaseMessage]) -> None:
            calls.append(len(messages))
            super().add_messages(messages)

    def factory(session_id: str) -> StoreHistory:
        return CountingHistory(store, session_id)

    prompt = ChatPromptTemplate.from_messages([("placeholder", "{history}"), ("human", "{q}")])
    chain = RunnableWithMessageHistory(prompt | EchoChatModel(), factory,
                                       input_messages_key="q", history_messages_key="history")
    chain.invoke({"q": "one"}, session_id="conv")
    chain.invoke({"q": "two"}, config={"configurable": {"session_id": "conv"}})
    assert calls == [2, 2]
    assert _texts(store.get_messages("conv")) == ["one", "one", "two", "two"]

    # store.history itself is the factory
    plain = RunnableWithMessageHistory(prompt | EchoChatModel(), store.history,
                                       input_messages_key="q", history_messages_key="history")
    plain.invoke({"q": "x"}, session_id="plain")
    assert asyncio.run(plain.ainvoke({"q": "y"}, session_id="plain")).content == "y"
    assert _texts(store.get_messages("plain")) == ["x", "x", "y", "y"]


def test_multi_key_history_factory(store: Store) -> None:
    prompt = ChatPromptTemplate.from_messages([("placeholder", "{history}"), ("human", "{q}")])
    chain = RunnableWithMessageHistory(
        prompt | EchoChatModel(),
        store.history,
        input_messages_key="q",
        history_messages_key="history",
        history_factory_config=[
            ConfigurableFieldSpec(id="user_id", annotation=str),
            ConfigurableFieldSpec(id="conversation_id", annotation=str),
        ],
    )
    config: Any = {"configurable": {"user_id": "u/1%", "conversation_id": "c1"}}
    chain.invoke({"q": "hello"}, config=config)
    chain.invoke({"q": "again"}, config=config)
    other: Any = {"configurable": {"user_id": "u/1%", "conversation_id": "c2"}}
    chain.invoke({"q": "other"}, config=other)
    key = session_key("u/1%", "c1")
    assert _texts(store.get_messages(key)) == ["hello", "hello", "again", "again"]
    assert _texts(store.history(user_id="u/1%", conversation_id="c1").messages)[0] == "hello"
    page = store.list_sessions(prefix=session_key("u/1%") + "/")
    assert page.session_ids == [session_key("u/1%", "c1"), session_key("u/1%", "c2")]


# -- listing, info, deletion -------------------------------------------------------------


def test_list_sessions_prefix_with_like_wildcards(store: Store) -> None:
    ids = ["a%b", "a%c", "a_b", "ab", "axb", "a\\b", "b", "a"]
    for sid in ids:
        store.append(sid, [HumanMessage(sid)])
    assert store.list_sessions(prefix="a%").session_ids == ["a%b", "a%c"]
    assert store.list_sessions(prefix="a_").session_ids == ["a_b"]
    assert store.list_sessions(prefix="a\\").session_ids == ["a\\b"]
    assert store.list_sessions(prefix="zzz").session_ids == []
    everything = store.list_sessions()
    assert everything.session_ids == sorted(ids)
    assert everything.next_cursor is None


def test_list_sessions_pagination(store: Store) -> None:
    ids = [f"p/{i:02d}" for i in range(7)]
    for sid in reversed(ids):
        store.append(sid, [HumanMessage("x")])
    store.append("q/other", [HumanMessage("x")])
    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        page = store.list_sessions(prefix="p/", limit=3, cursor=cursor)
        assert isinstance(page, SessionPage)
        pages.append(page.session_ids)
        if page.next_cursor is None:
            break
        assert len(pages) < 10
        cursor = page.next_cursor
    assert [p for p in pages if p] == [ids[0:3], ids[3:6], ids[6:7]]
    assert list(store.iter_sessions("p/", page_size=2)) == ids
    assert sorted(store.iter_sessions()) == [*ids, "q/other"]


def test_list_sessions_rejects_bad_limit(store: Store) -> None:
    with pytest.raises(InputError):
        store.list_sessions(limit=0)


def test_delete_session(store: Store) -> None:
    store.append("d1", _turn(0))
    store.append("d2", _turn(0))
    assert store.delete_session("d1") is True
    assert store.delete_session("d1") is False
    assert store.delete_session("never") is False
    assert store.get_messages("d1") == []
    assert store.session_info("d1") is None
    assert store.list_sessions().session_ids == ["d2"]
    store.append("d1", _turn(5))  # a deleted session starts afresh
    assert _texts(store.get_messages("d1")) == ["q5", "a5"]


def test_session_info(store: Store) -> None:
    assert store.session_info("nope") is None
    before = datetime.now(UTC) - timedelta(seconds=2)
    store.append("i", _turn(0))
    first = store.session_info("i")
    assert first is not None
    time.sleep(0.02)
    store.append("i", [*_turn(1), HumanMessage("extra")])
    info = store.session_info("i")
    after = datetime.now(UTC) + timedelta(seconds=2)
    assert info is not None
    assert info.session_id == "i"
    assert info.message_count == 5
    assert info.created_at is not None and info.updated_at is not None
    assert info.created_at.tzinfo is not None and info.updated_at.tzinfo is not None
    assert before <= info.created_at <= info.updated_at <= after
    assert info.created_at == first.created_at
    assert info.updated_at >= first.updated_at  # type: ignore[operator]
    assert info.expires_at is None


# -- TTL ---------------------------------------------------------------------------------


def test_ttl_per_store_and_per_session(backend: BackendSpec) -> None:
    store = backend.open()
    ttl = backend.short_ttl
    # Memory stores opened twice do not share data: the default-TTL store is checked alone.
    short = backend.open(ttl=ttl)
    short.append("store-ttl", _turn(0))
    info = short.session_info("store-ttl")
    assert info is not None and info.expires_at is not None
    assert timedelta(0) < info.expires_at - datetime.now(UTC) <= timedelta(seconds=ttl + 1)
    short.history("longer", ttl=60).add_messages(_turn(0))  # a session's ttl wins

    store.history("session-ttl", ttl=ttl).add_messages(_turn(0))
    ided = [HumanMessage("q", id="id-q"), AIMessage("a", id="id-a")]
    store.append("ided", ided, ttl=ttl)
    store.append("expire-call", _turn(0))
    store.expire("expire-call", ttl)
    store.append("cleared", _turn(0))
    store.expire("cleared", ttl)
    store.expire("cleared", None)
    store.append("forever", _turn(0))
    store.append("unread", _turn(0))
    store.expire("unread", ttl)
    assert _texts(store.get_messages("session-ttl")) == ["q0", "a0"]
    info = store.session_info("expire-call")
    assert info is not None and info.expires_at is not None

    time.sleep(ttl + 0.3)
    for sid in ("session-ttl", "expire-call"):
        assert store.get_messages(sid) == [], sid
        assert store.get_messages(sid, last=1) == [], sid
        assert store.session_info(sid) is None, sid
    assert short.get_messages("store-ttl") == []
    assert short.session_info("store-ttl") is None
    assert "store-ttl" not in short.list_sessions().session_ids
    assert _texts(short.get_messages("longer")) == ["q0", "a0"]
    assert "session-ttl" not in store.list_sessions().session_ids
    assert "expire-call" not in store.list_sessions().session_ids
    purged = store.purge_expired() + (short.purge_expired() if backend.separate_opens else 0)
    # Reads may delete what they find expired, but "unread" is left for the purge.
    assert 1 <= purged <= 5 or (backend.server_expires and purged >= 0)
    assert store.purge_expired() == 0
    assert store.session_info("unread") is None
    assert sorted(store.iter_sessions()) == ["cleared", "forever"] + (
        [] if backend.separate_opens else ["longer"])
    assert _texts(store.get_messages("cleared")) == ["q0", "a0"]
    info = store.session_info("forever")
    assert info is not None and info.expires_at is None

    # an expired session written again starts afresh, its message ids forgotten
    short.append("store-ttl", _turn(1))
    assert _texts(short.get_messages("store-ttl")) == ["q1", "a1"]
    store.append("ided", ided)
    store.append("ided", [*ided, HumanMessage("q2", id="id-q2")])
    assert _texts(store.get_messages("ided")) == ["q", "a", "q2"]
    info = store.session_info("ided")
    assert info is not None and info.message_count == 3


def test_ttl_is_refreshed_by_append(store_factory: Any) -> None:
    store = store_factory(ttl=1.5)
    store.append("r", _turn(0))
    time.sleep(0.8)
    store.append("r", _turn(1))
    time.sleep(0.8)
    assert _texts(store.get_messages("r")) == ["q0", "a0", "q1", "a1"]


def test_invalid_ttl_rejected(backend: BackendSpec, store: Store) -> None:
    for bad in (0, -1, "soon", True):
        with pytest.raises((InputError, ConfigurationError)):
            backend.open(ttl=bad)
    with pytest.raises(InputError):
        store.history("x", ttl=-5)


# -- session ids, names, URLs -------------------------------------------------------------


def test_hostile_session_ids_round_trip(store: Store) -> None:
    for i, sid in enumerate(HOSTILE_IDS):
        store.append(sid, [HumanMessage(f"m{i}"), AIMessage(sid)])
    for i, sid in enumerate(HOSTILE_IDS):
        got = store.get_messages(sid)
        assert _texts(got) == [f"m{i}", sid], sid[:40]
        info = store.session_info(sid)
        assert info is not None and info.session_id == sid and info.message_count == 2
    assert sorted(store.iter_sessions()) == sorted(HOSTILE_IDS)
    assert store.list_sessions(prefix="x" * 5000).session_ids == [HOSTILE_IDS[-1]]
    assert store.list_sessions(prefix="Ca").session_ids == ["Case"]
    assert store.delete_session("../../etc/passwd") is True
    assert store.get_messages("/abs/path") != []
    assert store.get_messages("case") != [] and store.get_messages("Case") != []


@pytest.mark.parametrize("bad", ["", "nul\x00inside", 123, None, b"bytes"])
def test_bad_session_ids_rejected(store: Store, bad: Any) -> None:
    with pytest.raises(InputError):
        store.append(bad, _turn(0))
    with pytest.raises(InputError):
        store.get_messages(bad)
    with pytest.raises(InputError):
        store.history(bad)


def test_too_long_session_id_rejected(store: Store) -> None:
    with pytest.raises(InputError):
        store.append("y" * 20_000, _turn(0))


def test_non_messages_rejected(store: Store) -> None:
    with pytest.raises(InputError):
        store.append("s", ["just a string"])  # type: ignore[list-item]
    assert store.get_messages("s") == []


@pytest.mark.parametrize("bad_id", [b"bytes", ["list"], {"a": 1}])
def test_a_message_id_that_could_not_be_read_back_is_refused(store: Store,
                                                             bad_id: object) -> None:
    with pytest.raises(InputError, match="message id must be a str"):
        store.append("s", [HumanMessage("fine", id="a"),
                           HumanMessage("bad", id=bad_id)])  # type: ignore[arg-type]
    assert store.get_messages("s") == []  # nothing of the batch was stored
    with pytest.raises(InputError):
        store.history("s").add_messages([AIMessage("bad", id=bad_id)])  # type: ignore[arg-type]
    assert store.session_info("s") is None


def test_a_numeric_message_id_is_its_string(store: Store) -> None:
    # As LangChain's messages do (pydantic's coerce_numbers_to_str), so it reads back.
    store.append("s", [HumanMessage("five", id=5), AIMessage("half", id=1.5)])  # type: ignore[arg-type]
    assert [m.id for m in store.get_messages("s")] == ["5", "1.5"]


BAD_TABLES = ["bad-name", "1abc", "a" * 64, "x; DROP TABLE y", "", "sp ace", "quo\"te"]
BAD_PREFIXES = ["bad prefix", "x" * 200, "a*b", "quo\"te", "new\nline"]


def test_invalid_names_rejected(backend: BackendSpec) -> None:
    if backend.name_option is None:
        pytest.skip(f"{backend.id} has no table / key prefix option")
    bad_values = BAD_TABLES if backend.name_option == "table" else BAD_PREFIXES
    for bad in bad_values:
        with pytest.raises((InputError, ConfigurationError)):
            backend.open(**{backend.name_option: bad})


def test_unknown_option_lists_valid_ones(backend: BackendSpec) -> None:
    with pytest.raises(ConfigurationError) as info:
        open_store(backend.url, bogus_option="1")
    message = str(info.value)
    assert "bogus_option" in message and "ttl" in message
    joiner = "&" if "?" in backend.url else "?"
    with pytest.raises(ConfigurationError, match="valid options"):
        open_store(backend.url + joiner + "another_bogus=2")


def test_password_never_shown(backend: BackendSpec) -> None:
    if backend.password_url is None:
        pytest.skip(f"{backend.id} URLs carry no password")
    store = open_store(backend.password_url)  # connects lazily: never used here
    try:
        for text in (repr(store), str(store), repr(store.url), str(store.url),
                     repr(store.history("s"))):
            assert "s3cr3t-pw" not in text, text
    finally:
        store.close()


def test_unreachable_server_fails_fast(backend: BackendSpec) -> None:
    if backend.unreachable_url is None:
        pytest.skip(f"{backend.id} has no server")
    store = open_store(backend.unreachable_url, connect_timeout=2)
    started = time.monotonic()
    try:
        with pytest.raises(StoreConnectionError) as info:
            store.get_messages("s")
    finally:
        store.close()
    assert time.monotonic() - started < 15
    assert "s3cr3t-pw" not in str(info.value)
    assert "s3cr3t-pw" not in repr(info.value)


def test_errors_are_threadline_errors() -> None:
    assert issubclass(StoreConnectionError, StoreError)
    assert issubclass(ConfigurationError, ThreadlineError)


# -- concurrency -------------------------------------------------------------------------

WRITERS = 8
BATCHES = 25


def _check_interleaving(messages: Sequence[BaseMessage], writers: int, batches: int) -> None:
    texts = _texts(messages)
    assert len(texts) == writers * batches * 2, len(texts)
    seen: dict[str, int] = {}
    for k in range(0, len(texts), 2):
        question, answer = texts[k], texts[k + 1]
        writer, _, index = question.partition(":")
        assert question.endswith(":q") and answer == question[:-1] + "a", (question, answer)
        number = int(index.split(":")[0])
        assert number == seen.get(writer, -1) + 1, f"writer {writer} out of order"
        seen[writer] = number
    assert len(seen) == writers and all(v == batches - 1 for v in seen.values())


def _batch(writer: int, i: int) -> list[BaseMessage]:
    return [HumanMessage(f"w{writer}:{i}:q"), AIMessage(f"w{writer}:{i}:a")]


def _batches(scheme: str) -> int:
    """Batches per writer: fewer on the cloud emulators, which answer one request at a
    time while eight writers on one session retry each other's conflicts (the same
    interleaving to check, in a fraction of the time; Cosmos DB's emulator is the
    slowest, about 0.3 s per contended batch)."""
    return {"cosmos": 4, "dynamodb": 10}.get(scheme, BATCHES)


def test_concurrent_writer_threads(store: Store) -> None:
    store.append("warmup", _turn(0))  # schema is created once, before the race
    batches = _batches(store.url.scheme)
    barrier = threading.Barrier(WRITERS)
    errors: list[BaseException] = []

    def write(writer: int) -> None:
        try:
            barrier.wait()
            for i in range(batches):
                store.append("race", _batch(writer, i))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    _check_interleaving(store.get_messages("race"), WRITERS, batches)
    info = store.session_info("race")
    assert info is not None and info.message_count == WRITERS * batches * 2


_WORKER = """
import sys
from threadline import AIMessage, HumanMessage
from threadline.stores import open_store
url, writer, batches = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
store = open_store(url)
for i in range(batches):
    store.append("race", [HumanMessage(f"w{writer}:{i}:q"), AIMessage(f"w{writer}:{i}:a")])
store.close()
"""


def test_concurrent_writer_processes(backend: BackendSpec) -> None:
    if not backend.shared_across_processes:
        pytest.skip(f"{backend.id} stores cannot be shared between processes")
    store = backend.open()
    store.append("warmup", _turn(0))
    batches = _batches(backend.id)
    procs = [
        subprocess.Popen([sys.executable, "-c", _WORKER, backend.url, str(w), str(batches)],
                         stderr=subprocess.PIPE)
        for w in range(WRITERS)
    ]
    failures = []
    deadline = time.monotonic() + 240  # for them all: a slow machine is not a failure
    for proc in procs:
        _, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
        if proc.returncode != 0:
            failures.append(err.decode(errors="replace")[-2000:])
    assert failures == []
    _check_interleaving(store.get_messages("race"), WRITERS, batches)


# -- async parity --------------------------------------------------------------------------


def _sync_case(store: Store, sid: str) -> list[Any]:
    history = store.history(sid)
    history.add_messages(_turn(0))
    store.append(sid, _turn(1))
    info = store.session_info(sid)
    return [
        _texts(history.get_messages()),
        _texts(store.get_messages(sid, last=3)),
        store.list_sessions(prefix=sid).session_ids,
        info.message_count if info else None,
        store.delete_session(sid),
        store.get_messages(sid),
        store.session_info(sid),
    ]


async def _async_case(store: Store, sid: str) -> list[Any]:
    history = store.history(sid)
    await history.aadd_messages(_turn(0))
    await store.aappend(sid, _turn(1))
    info = await store.asession_info(sid)
    return [
        _texts(await history.aget_messages()),
        _texts(await store.aget_messages(sid, last=3)),
        (await store.alist_sessions(prefix=sid)).session_ids,
        info.message_count if info else None,
        await store.adelete_session(sid),
        await store.aget_messages(sid),
        await store.asession_info(sid),
    ]


def test_async_parity(store: Store) -> None:
    expected = _sync_case(store, "parity")
    assert expected[0] == ["q0", "a0", "q1", "a1"]

    async def main() -> list[Any]:
        await store.asetup()
        result = await _async_case(store, "parity")
        # concurrent async writers keep their batches whole too
        await asyncio.gather(*(store.aappend("agather", _batch(w, i))
                               for w in range(4) for i in range(5)))
        await store.aexpire("agather", None)
        assert await store.apurge_expired() >= 0
        return result

    assert asyncio.run(main()) == expected
    texts = _texts(store.get_messages("agather"))
    assert len(texts) == 40
    assert all(texts[k][:-1] == texts[k + 1][:-1] for k in range(0, 40, 2))


# -- export / import / copy ------------------------------------------------------------------


def test_export_import_copy_round_trip(store: Store) -> None:
    from threadline.stores._transfer import copy_sessions, export_sessions, import_sessions

    store.append("e1", rich_messages())
    store.append("e2/../x", _turn(0))
    store.append("e3", _turn(7))

    buffer = io.StringIO()
    assert export_sessions(store, buffer) == len(rich_messages()) + 4
    buffer.seek(0)
    target = open_store("memory://")
    assert import_sessions(target, buffer) == len(rich_messages()) + 4
    assert sorted(target.iter_sessions()) == ["e1", "e2/../x", "e3"]
    assert target.get_messages("e1") == rich_messages()

    # copy into a fresh store, then back again: idempotent, conflicts reported
    copy_target = open_store("memory://")
    report = copy_sessions(store, copy_target, session_ids=["e1", "e3"])
    assert report.messages == len(rich_messages()) + 2
    assert copy_target.get_messages("e1") == rich_messages()
    again = copy_sessions(store, copy_target, session_ids=["e1", "e3"])
    assert again.messages == 0 and again.conflicts == []

    store.append("e3", _turn(8))  # the source grew: only the new turn is copied
    grown = copy_sessions(store, copy_target)
    assert grown.messages == 2 + 2  # e3's new turn and the whole of e2/../x
    assert _texts(copy_target.get_messages("e3")) == ["q7", "a7", "q8", "a8"]

    copy_target.append("e3", [HumanMessage("diverged")])
    store.append("e3", _turn(9))
    conflicted = copy_sessions(store, copy_target)
    assert conflicted.conflicts == ["e3"]
    assert _texts(copy_target.get_messages("e3"))[-1] == "diverged"

    # and from memory back into this backend
    store.delete_session("e1")
    back = copy_sessions(target, store, session_ids=["e1"])
    assert back.messages == len(rich_messages())
    assert store.get_messages("e1") == rich_messages()


def test_append_is_idempotent_for_message_ids(store: Store) -> None:
    """A retried append (same ids) stores nothing twice; messages without ids always land."""
    turn1 = [HumanMessage("q1", id="m1"), AIMessage("a1", id="m2")]
    store.append("s", turn1)
    store.append("s", turn1)  # the retry of a write whose answer was lost
    assert _texts(store.get_messages("s")) == ["q1", "a1"]
    info = store.session_info("s")
    assert info is not None and info.message_count == 2

    # A batch holding some known ids and some new ones stores only the new ones, in order.
    store.append("s", [AIMessage("a1", id="m2"), HumanMessage("q2", id="m3"),
                       AIMessage("a2", id="m4")])
    assert _texts(store.get_messages("s")) == ["q1", "a1", "q2", "a2"]
    # An id repeated inside one batch is stored once.
    store.append("s", [HumanMessage("q3", id="m5"), HumanMessage("q3 again", id="m5")])
    assert _texts(store.get_messages("s", last=1)) == ["q3"]
    # No id: no deduplication.
    store.append("s", [HumanMessage("same")])
    store.append("s", [HumanMessage("same")])
    assert _texts(store.get_messages("s", last=2)) == ["same", "same"]
    info = store.session_info("s")
    assert info is not None and info.message_count == 7

    # Ids are per session, and a deleted session forgets its ids.
    store.append("other", turn1)
    assert _texts(store.get_messages("other")) == ["q1", "a1"]
    store.delete_session("s")
    store.append("s", turn1)
    assert _texts(store.get_messages("s")) == ["q1", "a1"]

    async def again() -> list[str]:
        await store.aappend("s", turn1)
        await store.aappend("s", [*turn1, HumanMessage("q9", id="m9")])
        return _texts(await store.aget_messages("s"))

    assert asyncio.run(again()) == ["q1", "a1", "q9"]


def test_concurrent_retries_store_each_id_once(store: Store) -> None:
    """Eight threads appending the same ids at once (retries racing each other): each
    message is stored exactly once."""
    batch = [HumanMessage(f"q{i}", id=f"r{i}") for i in range(4)]
    errors: list[BaseException] = []

    def retry() -> None:
        try:
            store.append("race", batch)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=retry) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert _texts(store.get_messages("race")) == ["q0", "q1", "q2", "q3"]


def test_session_page_iterates_over_ids(store: Store) -> None:
    for sid in ("b", "a", "c"):
        store.append(sid, _turn(1))
    page = store.list_sessions(limit=2)
    assert list(page) == page.session_ids == ["a", "b"]
    assert page.next_cursor is not None and len(page) == 2 and "a" in page
    assert [sid for sid in store.list_sessions()] == ["a", "b", "c"]
    assert list(asyncio.run(store.alist_sessions())) == ["a", "b", "c"]


def test_numeric_arguments_are_range_checked(store: Store) -> None:
    store.append("s", _turn(1))
    for limit in (0, -1, 2**63, 10_001, 1.5, True):
        with pytest.raises(InputError):
            store.list_sessions(limit=limit)  # type: ignore[arg-type]
    for last in (-1, 2**63, 1.5):
        with pytest.raises(InputError):
            store.get_messages("s", last=last)  # type: ignore[arg-type]
    assert _texts(store.get_messages("s", last=2**31 - 1)) == ["q1", "a1"]
    assert list(store.list_sessions(limit=10_000)) == ["s"]


def test_session_id_with_a_lone_surrogate_is_refused(store: Store) -> None:
    bad = "abc\ud800def"
    with pytest.raises(InputError, match="surrogate"):
        store.append(bad, _turn(1))
    with pytest.raises(InputError, match="surrogate"):
        store.get_messages(bad)
    with pytest.raises(InputError, match="surrogate"):
        store.delete_session(bad)
    for order in ("id", "recent"):
        with pytest.raises(InputError, match="surrogate"):
            store.list_sessions(order=order, prefix="abc\ud800")
    assert store.list_sessions().session_ids == []


def test_max_message_bytes_refuses_before_sending(backend: BackendSpec) -> None:
    store = backend.open(max_message_bytes=2_000)
    assert store.max_message_bytes == 2_000
    store.append("s", [HumanMessage("é" * 300)])  # 600 bytes of text, well under
    with pytest.raises(InputError, match="max_message_bytes"):
        store.append("s", [HumanMessage("ok"), HumanMessage("é" * 1_000)])  # 2,000+ bytes
    with pytest.raises(InputError, match="max_message_bytes"):
        asyncio.run(store.aappend("s", [HumanMessage("x" * 5_000)]))
    assert _texts(store.get_messages("s")) == ["é" * 300]  # nothing of the refused batches
    store.append("s", [HumanMessage("after")])
    assert _texts(store.get_messages("s", last=1)) == ["after"]
    assert backend.open().max_message_bytes == 16 * 1024 * 1024
    with pytest.raises(ConfigurationError):
        backend.open(max_message_bytes=0)


def test_iter_messages_reads_in_pages_oldest_first(store: Store) -> None:
    messages: list[BaseMessage] = [HumanMessage(f"m{i}") for i in range(30)]
    store.append("long", messages[:17])
    store.append("long", messages[17:])
    for page_size in (1, 7, 30, 1000):
        assert _texts(store.iter_messages("long", page_size=page_size)) == _texts(messages)
    assert list(store.iter_messages("missing", page_size=5)) == []
    pages = store.iter_messages("long", page_size=7)
    assert next(pages).text == "m0"  # lazy: a page at a time
    with pytest.raises(InputError):
        list(store.iter_messages("long", page_size=0))
