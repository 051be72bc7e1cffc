"""Compaction that keeps the history, on every backend that keeps records.

The summary of :class:`~threadline.SummaryBufferHistory` is a session record; these
cases run the core of it against each store (real servers and emulators included):
nothing is deleted, the summary is incremental and stored, a store opened again reuses
it, the async path stores the same, and a failed model leaves the history intact.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from summarizers import PROMPT, Broken, Recorder, summary_of, texts

from threadline import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    ModelError,
    SummaryBufferHistory,
    SummaryInfo,
    SystemMessage,
    get_buffer_string,
)
from threadline.memory._summary import SUMMARY_PREFIX
from threadline.stores import Store

from .conftest import BackendSpec


def needs_records(store: Store, backend: BackendSpec) -> None:
    if not store.supports_records:
        pytest.skip(f"the {backend.id} store keeps no records (store.supports_records is "
                    "False), so it cannot hold a summary")


def turn(i: int) -> list[BaseMessage]:
    return [HumanMessage(f"question {i}"), AIMessage(f"answer {i}")]


def make(store: Store, sid: str, model: Any = None, **kwargs: Any) -> SummaryBufferHistory:
    return SummaryBufferHistory(store.history(sid), model or Recorder(), max_tokens=4,
                                token_counter=len, prompt=PROMPT, **kwargs)


def test_compaction_keeps_the_history_and_survives_a_reopen(backend: BackendSpec,
                                                            store: Store) -> None:
    needs_records(store, backend)
    model = Recorder()
    history = make(store, "compact", model)
    for i in range(5):
        history.add_messages(turn(i))
    everything = [m for i in range(5) for m in turn(i)]
    assert texts(store.get_messages("compact")) == texts(everything)  # nothing deleted
    assert len(model.prompts) == 3  # one call per turn that left the window
    assert model.prompts[-1] == f"{summary_of(everything[:4])}\n{get_buffer_string(turn(2))}"
    assert history.summary_info() == SummaryInfo(summary_of(everything[:6]), 6, "recorder")
    view = history.get_messages()
    assert view[0] == SystemMessage(SUMMARY_PREFIX + summary_of(everything[:6]))
    assert texts(view[1:]) == texts(everything[6:])
    # Another store object on the same data (a restart) reuses the stored summary.
    again_store = store if backend.separate_opens else backend.open()
    again = make(again_store, "compact", Recorder())
    assert texts(again.get_messages()) == texts(view)
    again.add_messages(turn(5))
    assert again.summary() == summary_of([*everything, *turn(5)][:8])
    # The session's messages and summary go together.
    assert store.delete_session("compact")
    assert history.summary() is None and history.get_messages() == []


def test_compaction_async_stores_the_same(backend: BackendSpec, store: Store) -> None:
    needs_records(store, backend)
    sync, asynchronous = make(store, "sync"), make(store, "async")
    for i in range(4):
        sync.add_messages(turn(i))

    async def run() -> list[BaseMessage]:
        for i in range(4):
            await asynchronous.aadd_messages(turn(i))
        assert await asynchronous.asummary_info() == sync.summary_info()
        return await asynchronous.aget_messages()

    assert texts(asyncio.run(run())) == texts(sync.get_messages())
    assert texts(store.get_messages("async")) == texts(store.get_messages("sync"))


def test_a_failed_summary_keeps_the_history(backend: BackendSpec, store: Store) -> None:
    needs_records(store, backend)
    good = make(store, "fail")
    for i in range(3):
        good.add_messages(turn(i))
    before = good.summary_info()
    with pytest.raises(ModelError):
        make(store, "fail", Broken()).add_messages(turn(3))
    assert len(store.get_messages("fail")) == 8 and good.summary_info() == before
    caught_up = good.compact()
    assert caught_up is not None and caught_up.covers == 4
