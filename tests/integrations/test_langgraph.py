"""threadline.langgraph: ThreadlineSaver with real LangGraph graphs, and LangGraph's own
conformance suite (langgraph-checkpoint-conformance) on every backend that keeps records."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import operator
import os
import subprocess
import sys
import textwrap
import time
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any, TypedDict

import ormsgpack
import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage, RemoveMessage
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import ALL_CAPABILITIES
from langgraph.graph import START, MessagesState, StateGraph
from stores.conftest import BACKEND_IDS, make_spec

from threadline import InputError, MessageFormatError, open_store
from threadline.langgraph import ThreadlineSaver
from threadline.langgraph import _records as rec
from threadline.stores import Store

REPO = Path(__file__).resolve().parents[2]
RECORD_BACKENDS = BACKEND_IDS


def _counting_graph(saver: ThreadlineSaver) -> Any:
    """A graph whose answer says how many messages it has seen (so memory shows)."""

    def answer(state: MessagesState) -> dict[str, Any]:
        last = state["messages"][-1].content
        return {"messages": [AIMessage(f"{last}: I have seen {len(state['messages'])}")]}

    builder = StateGraph(MessagesState)
    builder.add_node("answer", answer)
    builder.add_edge(START, "answer")
    return builder.compile(checkpointer=saver)


def _cfg(thread_id: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread_id}}


# -- LangGraph's conformance suite, every backend ----------------------------------------


@pytest.mark.parametrize("backend_id", RECORD_BACKENDS)
def test_conformance_suite_passes_every_capability(backend_id: str, tmp_path: Path) -> None:
    spec = make_spec(backend_id, tmp_path)
    try:
        @checkpointer_test(name=f"ThreadlineSaver[{backend_id}]")
        async def factory() -> AsyncIterator[ThreadlineSaver]:
            yield ThreadlineSaver(spec.open())

        report = asyncio.run(validate(factory))
    finally:
        spec.cleanup()
    rows = [f"{name:16} detected={r.detected} passed={r.passed} "
            f"tests={r.tests_passed}/{r.tests_passed + r.tests_failed}"
            for name, r in report.results.items()]
    print(f"\nconformance ThreadlineSaver[{backend_id}]\n  " + "\n  ".join(rows))
    assert set(report.results) == {c.value for c in ALL_CAPABILITIES}
    for name, result in report.results.items():
        assert result.detected, f"{name} not detected"
        assert result.passed, f"{name}: {result.failures}"
        assert result.tests_failed == 0 and result.tests_passed > 0


# -- real graphs -----------------------------------------------------------------------------


def test_state_graph_remembers_and_the_thread_is_a_session() -> None:
    saver = ThreadlineSaver("memory://")
    graph = _counting_graph(saver)
    out = graph.invoke({"messages": [("user", "hi")]}, _cfg("t1"))
    assert out["messages"][-1].content == "hi: I have seen 1"
    out = graph.invoke({"messages": [("user", "again")]}, _cfg("t1"))
    assert out["messages"][-1].content == "again: I have seen 3"
    stored = saver.store.get_messages("t1")
    assert [(m.type, m.content) for m in stored] == [
        ("human", "hi"), ("ai", "hi: I have seen 1"),
        ("human", "again"), ("ai", "again: I have seen 3")]
    assert [m.id for m in stored] == [m.id for m in out["messages"]]
    assert "t1" in saver.store.list_sessions()
    # the other thread is separate
    assert graph.invoke({"messages": [("user", "x")]}, _cfg("t2"))["messages"][-1].content \
        == "x: I have seen 1"


def test_mirror_is_a_log_of_first_versions() -> None:
    saver = ThreadlineSaver("memory://")
    graph = _counting_graph(saver)
    out = graph.invoke({"messages": [("user", "hi")]}, _cfg("t"))
    first = out["messages"][0]
    # removing a message from the channel keeps it in the session's log
    graph.update_state(_cfg("t"), {"messages": [RemoveMessage(id=first.id)]})
    state = graph.get_state(_cfg("t")).values["messages"]
    assert [m.content for m in state] == ["hi: I have seen 1"]
    out = graph.invoke({"messages": [("user", "next")]}, _cfg("t"))
    assert out["messages"][-1].content == "next: I have seen 2"
    assert [m.content for m in saver.store.get_messages("t")] == [
        "hi", "hi: I have seen 1", "next", "next: I have seen 2"]


def test_a_fresh_saver_appends_nothing_twice() -> None:
    store = open_store("memory://")
    _counting_graph(ThreadlineSaver(store)).invoke({"messages": [("user", "a")]}, _cfg("t"))
    # another process (no hint): the whole channel is offered, each id stored once
    _counting_graph(ThreadlineSaver(store)).invoke({"messages": [("user", "b")]}, _cfg("t"))
    assert [m.content for m in store.get_messages("t")] == [
        "a", "a: I have seen 1", "b", "b: I have seen 3"]


def test_create_agent_remembers() -> None:
    from langchain.agents import create_agent

    model = GenericFakeChatModel(messages=iter([AIMessage("first"), AIMessage("second")]))
    saver = ThreadlineSaver("memory://")
    agent = create_agent(model, tools=[], checkpointer=saver)
    agent.invoke({"messages": [("user", "hi")]}, _cfg("a"))
    out = agent.invoke({"messages": [("user", "more")]}, _cfg("a"))
    assert [m.content for m in out["messages"]] == ["hi", "first", "more", "second"]
    assert [m.content for m in saver.store.get_messages("a")] == ["hi", "first", "more",
                                                                  "second"]


def test_async_graph() -> None:
    saver = ThreadlineSaver("memory://")
    graph = _counting_graph(saver)

    async def run() -> list[Any]:
        await graph.ainvoke({"messages": [("user", "a")]}, _cfg("t"))
        out = await graph.ainvoke({"messages": [("user", "b")]}, _cfg("t"))
        history = [s async for s in graph.aget_state_history(_cfg("t"))]
        return [out, history]

    out, history = asyncio.run(run())
    assert out["messages"][-1].content == "b: I have seen 3"
    assert len(history) >= 4


def test_deleting_the_session_deletes_its_checkpoints() -> None:
    saver = ThreadlineSaver("memory://")
    graph = _counting_graph(saver)
    graph.invoke({"messages": [("user", "hi")]}, _cfg("t"))
    assert saver.get_tuple(_cfg("t")) is not None
    assert saver.store.delete_session("t") is True
    assert saver.get_tuple(_cfg("t")) is None
    assert graph.invoke({"messages": [("user", "new")]}, _cfg("t"))["messages"][-1].content \
        == "new: I have seen 1"


def test_delete_thread_deletes_the_session_too() -> None:
    saver = ThreadlineSaver("memory://")
    _counting_graph(saver).invoke({"messages": [("user", "hi")]}, _cfg("t"))
    saver.delete_thread("t")
    assert saver.store.get_messages("t") == []
    assert saver.store.scan_records("t") == []


def test_ttl_expires_checkpoints_and_messages() -> None:
    saver = ThreadlineSaver("memory://", ttl=0.5)
    _counting_graph(saver).invoke({"messages": [("user", "hi")]}, _cfg("t"))
    info = saver.store.session_info("t")
    assert info is not None and info.expires_at is not None
    time.sleep(0.7)
    assert saver.get_tuple(_cfg("t")) is None
    assert saver.store.get_messages("t") == []


def test_keep_last_bounds_checkpoints_and_blobs() -> None:
    store = open_store("memory://")
    saver = ThreadlineSaver(store, keep_last=3)
    graph = _counting_graph(saver)
    for turn in range(25):
        out = graph.invoke({"messages": [("user", f"q{turn}")]}, _cfg("t"))
    assert out["messages"][-1].content == f"q24: I have seen {2 * 24 + 1}"
    keys = [k for k, _ in store.scan_records("t", keys_only=True)]
    checkpoints = [k for k in keys if k.startswith("c/") and not rec.classify(k)[0]]
    assert len(checkpoints) == 3
    # their writes only: the writes of the pruned checkpoints went with them
    assert {rec.classify(k)[1] for k in keys if k.startswith("c/")} == {
        rec.classify(k)[1] for k in checkpoints}
    # each channel's blobs: those the 3 kept checkpoints use, plus the newest version
    assert len([k for k in keys if k.startswith("b//messages/")]) <= 4
    assert len(list(saver.list(_cfg("t")))) == 3
    # the session keeps every message
    assert len(store.get_messages("t")) == 50
    # the unbounded saver keeps everything
    full = ThreadlineSaver(open_store("memory://"))
    for turn in range(25):
        _counting_graph(full).invoke({"messages": [("user", f"q{turn}")]}, _cfg("t"))
    assert len(list(full.list(_cfg("t")))) == 75


def test_unchanged_channels_are_not_stored_again() -> None:
    saver = ThreadlineSaver("memory://")
    config = saver.put(_cfg("t") | {"configurable": {"thread_id": "t", "checkpoint_ns": ""}},
                       _checkpoint("1", {"big": "x" * 1000, "n": 1}, {"big": "1", "n": "1"}),
                       {"source": "loop", "step": 0}, {"big": "1", "n": "1"})
    saver.put(config, _checkpoint("2", {"big": "x" * 1000, "n": 2}, {"big": "1", "n": "2"}),
              {"source": "loop", "step": 1}, {"n": "2"})
    blobs = [k for k, _ in saver.store.scan_records("t", "b/", keys_only=True)]
    assert blobs == ["b//big/1", "b//n/1", "b//n/2"]
    latest = saver.get_tuple(_cfg("t"))
    assert latest is not None and latest.checkpoint["channel_values"] == {
        "big": "x" * 1000, "n": 2}


def test_writes_belong_to_their_checkpoint_when_ids_are_prefixes_of_each_other() -> None:
    saver = ThreadlineSaver("memory://")
    base = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}
    for cid in ("1", "1-x", "10", "1.5"):
        stored = saver.put(base, _checkpoint(cid, {"n": cid}, {"n": cid}), {"step": 0},
                           {"n": cid})
        saver.put_writes(stored, [("ch", f"write of {cid}"), ("ch2", cid)], f"task-{cid}")
    for cid in ("1", "1-x", "10", "1.5"):
        got = saver.get_tuple({"configurable": {"thread_id": "t", "checkpoint_ns": "",
                                                "checkpoint_id": cid}})
        assert got is not None and got.checkpoint["channel_values"] == {"n": cid}
        assert [w[2] for w in got.pending_writes or []] == [f"write of {cid}", cid]
    listed = list(saver.list(base))
    assert [t.config["configurable"]["checkpoint_id"] for t in listed] == [
        "10", "1.5", "1-x", "1"]
    assert [[w[2] for w in t.pending_writes or []] for t in listed] == [
        ["write of 10", "10"], ["write of 1.5", "1.5"], ["write of 1-x", "1-x"],
        ["write of 1", "1"]]
    latest = saver.get_tuple(base)
    assert latest is not None and latest.config["configurable"]["checkpoint_id"] == "10"
    saver.prune(["t"])
    keys = [k for k, _ in saver.store.scan_records("t", "c/", keys_only=True)]
    assert {rec.classify(k)[1] for k in keys} == {("", "10")} and len(keys) == 3


def _checkpoint(cid: str, values: dict[str, Any], versions: dict[str, str]) -> Any:
    return {"v": 1, "id": cid, "ts": "2026-12-07T00:00:00+00:00", "channel_values": values,
            "channel_versions": versions, "versions_seen": {}, "updated_channels": None}


# -- safety ------------------------------------------------------------------------------


def _put_one(saver: ThreadlineSaver) -> None:
    _counting_graph(saver).invoke({"messages": [("user", "hi")]}, _cfg("t"))


def test_stored_pickle_is_never_loaded(tmp_path: Path) -> None:
    import pickle

    marker = tmp_path / "pwned"

    class Boom:
        def __reduce__(self) -> Any:
            return (os.system, (f"touch {marker}",))

    saver = ThreadlineSaver("memory://")
    _put_one(saver)
    latest = saver.get_tuple(_cfg("t"))
    assert latest is not None
    key = rec.blob_key("", "messages", latest.checkpoint["channel_versions"]["messages"])
    saver.store.put_records("t", {key: rec.pack_blob(("pickle", pickle.dumps(Boom())))})
    with pytest.raises(MessageFormatError, match="never unpickles"):
        ThreadlineSaver(saver.store).get_tuple(_cfg("t"))  # a process that reads it
    assert not marker.exists()


def test_stored_constructor_calls_are_not_run(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    # LangGraph's msgpack extension for "call module.name(arg)": os.system(...)
    payload = ormsgpack.packb(ormsgpack.Ext(0, ormsgpack.packb(
        ["os", "system", f"touch {marker}"])))
    saver = ThreadlineSaver("memory://")
    _put_one(saver)
    latest = saver.get_tuple(_cfg("t"))
    assert latest is not None
    key = rec.blob_key("", "messages", latest.checkpoint["channel_versions"]["messages"])
    saver.store.put_records("t", {key: rec.pack_blob(("msgpack", payload))})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = ThreadlineSaver(saver.store).get_tuple(_cfg("t"))
    assert loaded is not None
    assert loaded.checkpoint["channel_values"]["messages"] == f"touch {marker}"  # raw data
    assert not marker.exists()


@pytest.mark.parametrize("garbage", [b"", b"\xc1", ormsgpack.packb({"a": 1}),
                                     ormsgpack.packb([1, 2, 3]), ormsgpack.packb([9] * 8)])
def test_damaged_checkpoint_records_raise_message_format_error(garbage: bytes) -> None:
    saver = ThreadlineSaver("memory://")
    _put_one(saver)
    latest = saver.get_tuple(_cfg("t"))
    assert latest is not None
    key = rec.checkpoint_key("", latest.config["configurable"]["checkpoint_id"])
    saver.store.put_records("t", {key: garbage})
    with pytest.raises(MessageFormatError):
        saver.get_tuple(_cfg("t"))


def test_the_blobs_a_graph_wrote_are_read_back_without_a_round_trip() -> None:
    store = open_store("memory://")
    calls: list[int] = []
    original = store.get_records

    def counting(session_id: str, keys: Any) -> dict[str, bytes]:
        calls.append(len(keys))
        return original(session_id, keys)

    store.get_records = counting  # type: ignore[method-assign]
    graph = _counting_graph(ThreadlineSaver(store))
    graph.invoke({"messages": [("user", "a")]}, _cfg("t"))
    calls.clear()
    out = graph.invoke({"messages": [("user", "b")]}, _cfg("t"))
    assert out["messages"][-1].content == "b: I have seen 3"
    assert calls == []  # every channel value came from the saver's cache
    # without the cache (or in another process) the values are read from the store
    cold = _counting_graph(ThreadlineSaver(store, blob_cache_bytes=0))
    assert cold.invoke({"messages": [("user", "c")]}, _cfg("t"))["messages"][-1].content \
        == "c: I have seen 5"
    assert calls and all(n > 0 for n in calls)


def test_bad_arguments() -> None:
    saver = ThreadlineSaver("memory://")
    with pytest.raises(InputError, match="thread_id"):
        saver.get_tuple({"configurable": {}})
    with pytest.raises(InputError, match="needs a config"):
        list(saver.list(None))
    with pytest.raises(InputError, match="strategy"):
        saver.prune(["t"], strategy="everything")
    with pytest.raises(InputError, match="keep_last"):
        ThreadlineSaver("memory://", keep_last=0)
    with pytest.raises(InputError, match="blob_cache_bytes"):
        ThreadlineSaver("memory://", blob_cache_bytes=-1)
    with pytest.raises(InputError, match="session id"):
        saver.get_tuple(_cfg(""))


def test_a_store_without_records_is_refused(tmp_path: Path) -> None:
    from threadline import ConfigurationError
    from threadline.stores import MemoryStore

    class MessagesOnly(MemoryStore):
        supports_records = False

    with pytest.raises(ConfigurationError, match="keeps no records"):
        ThreadlineSaver(MessagesOnly())


class _LooseState(TypedDict):
    messages: Annotated[list[Any], operator.add]


def test_non_message_items_are_kept_in_checkpoints_and_reported() -> None:
    builder = StateGraph(_LooseState)
    builder.add_node("n", lambda state: {"messages": [{"note": "not a message"}]})
    builder.add_edge(START, "n")
    saver = ThreadlineSaver("memory://")
    graph = builder.compile(checkpointer=saver)
    with pytest.warns(UserWarning, match="not messages"):
        graph.invoke({"messages": [HumanMessage("hi", id="h1")]}, _cfg("t"))
    assert [m.content for m in saver.store.get_messages("t")] == ["hi"]
    state = graph.get_state(_cfg("t")).values["messages"]
    assert state[-1] == {"note": "not a message"}


@dataclasses.dataclass
class Point:
    x: int


class _PointState(TypedDict):
    points: Annotated[list[Point], operator.add]


def _points(saver: ThreadlineSaver) -> Any:
    builder = StateGraph(_PointState)
    builder.add_node("n", lambda state: {"points": [Point(len(state["points"]))]})
    builder.add_edge(START, "n")
    return builder.compile(checkpointer=saver)


def test_state_types_are_rebuilt_only_when_allowed() -> None:
    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

    store = open_store("memory://")
    _points(ThreadlineSaver(store)).invoke({"points": []}, _cfg("t"))
    # strict by default: a type outside the safe list comes back as its data
    assert _points(ThreadlineSaver(store)).get_state(_cfg("t")).values == {"points": [{"x": 0}]}
    allowed = JsonPlusSerializer(allowed_msgpack_modules=[(__name__, "Point")])
    assert _points(ThreadlineSaver(store, serde=allowed)).get_state(_cfg("t")).values == {
        "points": [Point(0)]}


# -- across processes, and the command line sees the thread ------------------------------

_TURN = textwrap.dedent("""
    import sys
    from langgraph.graph import START, MessagesState, StateGraph
    from langchain_core.messages import AIMessage
    from threadline.langgraph import ThreadlineSaver

    def answer(state):
        last = state["messages"][-1].content
        return {"messages": [AIMessage(f"{last}: I have seen {len(state['messages'])}")]}

    builder = StateGraph(MessagesState)
    builder.add_node("answer", answer)
    builder.add_edge(START, "answer")
    with ThreadlineSaver(sys.argv[1]) as saver:
        graph = builder.compile(checkpointer=saver)
        for text in sys.argv[3:]:
            out = graph.invoke({"messages": [("user", text)]},
                               {"configurable": {"thread_id": sys.argv[2]}})
            print(out["messages"][-1].content)
""")


def test_a_second_process_continues_the_thread_and_the_cli_lists_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'graph.db'}"
    script = tmp_path / "turn.py"
    script.write_text(_TURN)
    first = subprocess.run([sys.executable, str(script), url, "conv-1", "hello", "again"],
                           capture_output=True, text=True, timeout=60, check=True)
    assert first.stdout.splitlines() == ["hello: I have seen 1", "again: I have seen 3"]
    second = subprocess.run([sys.executable, str(script), url, "conv-1", "third"],
                            capture_output=True, text=True, timeout=60, check=True)
    assert second.stdout.splitlines() == ["third: I have seen 5"]
    cli = [sys.executable, "-m", "threadline", "sessions"]
    listed = subprocess.run([*cli, "list", "--store", url], capture_output=True, text=True,
                            timeout=60, check=True)
    assert "conv-1" in listed.stdout
    shown = subprocess.run([*cli, "export", "--session", "conv-1", "--store", url],
                           capture_output=True, text=True, timeout=60, check=True)
    texts = [_content(json.loads(line)) for line in shown.stdout.splitlines() if line.strip()]
    assert texts == ["hello", "hello: I have seen 1", "again", "again: I have seen 3",
                     "third", "third: I have seen 5"]


def _content(row: dict[str, Any]) -> Any:
    message = row.get("message", row)
    return message.get("data", message).get("content")


def test_saver_on_an_open_store_leaves_it_open() -> None:
    store: Store = open_store("memory://")
    with ThreadlineSaver(store) as saver:
        _put_one(saver)
    assert store.get_messages("t")  # still usable
