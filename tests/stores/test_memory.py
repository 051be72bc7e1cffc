"""memory:// specifics (the contract is in test_contract.py)."""

from __future__ import annotations

import tracemalloc

import pytest

from threadline import AIMessage, HumanMessage, InputError, StoreError
from threadline.stores import open_store
from threadline.stores._memory import MemoryStore


def test_each_memory_store_is_separate() -> None:
    first, second = open_store("memory://"), open_store("memory://")
    assert isinstance(first, MemoryStore)
    first.append("s", [HumanMessage("hi")])
    assert second.get_messages("s") == []


def test_reads_return_new_lists() -> None:
    store = open_store("memory://")
    store.append("s", [HumanMessage("hi")])
    got = store.get_messages("s")
    got.append(HumanMessage("not stored"))
    assert len(store.get_messages("s")) == 1


def test_closed_store_refuses_work() -> None:
    store = open_store("memory://")
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.append("s", [HumanMessage("hi")])


def test_destroy_forgets_everything() -> None:
    store = MemoryStore()
    store.append("s", [HumanMessage("hi")])
    store.destroy()
    assert store.list_sessions().session_ids == []


def test_skip_invalid_is_accepted_and_appends_are_idempotent() -> None:
    store = open_store("memory://")
    turn = [HumanMessage("q", id="m1"), HumanMessage("again", id="m1"), HumanMessage("no id")]
    store.append("s", turn)
    store.append("s", turn)
    assert [m.text for m in store.get_messages("s", skip_invalid=True)] == [
        "q", "no id", "no id"]
    info = store.session_info("s")
    assert info is not None and info.message_count == 3


def test_memory_store_streams_slices_of_a_snapshot() -> None:
    store = MemoryStore()
    messages = [HumanMessage(f"m{i}") for i in range(100_000)]
    store.append("s", messages)
    stream = store.iter_messages("s", page_size=100)
    store.append("s", [HumanMessage("after")])
    store.delete_session("s")
    tracemalloc.start()
    try:
        count = sum(1 for _ in stream)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count == 100_000  # what it held when the iteration began
    assert peak < 100_000, f"peak {peak:,} bytes"  # a full copy of the list is 800 KB
    with pytest.raises(InputError):
        store.iter_messages("s", page_size=10_001)


def test_memory_store_measures_messages_it_cannot_bound_cheaply() -> None:
    store = MemoryStore(max_message_bytes=2_000)
    store.append("s", [AIMessage("x" * 150, additional_kwargs={"when": object()})])
    with pytest.raises(InputError, match="max_message_bytes"):
        store.append("s", [AIMessage("hi", additional_kwargs={"blob": "é" * 1_000})])
    with pytest.raises(InputError, match="max_message_bytes"):
        store.append("s", [HumanMessage("\x01" * 400)])  # 2,400 bytes as \u0001 escapes
    assert len(store.get_messages("s")) == 1
