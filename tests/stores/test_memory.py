"""memory:// specifics (the contract is in test_contract.py)."""

from __future__ import annotations

import pytest

from threadline import HumanMessage, StoreError
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
