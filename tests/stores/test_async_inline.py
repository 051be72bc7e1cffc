"""The async path of the local stores runs short calls on the event loop's thread.

SQLite (file and in-memory) and memory:// run a turn's calls (read the last N, append,
records, session info) inline when they cannot wait, and in a worker thread when they
would (another connection or thread holds the lock). These tests show that: the results
equal the sync ones, a turn uses no worker thread, and under contention the loop keeps
turning while the call waits in a worker thread, then completes.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from threadline import AIMessage, HumanMessage
from threadline._errors import InputError, StoreError
from threadline.stores import Store, open_store
from threadline.stores.sql._sqlite_connect import CHECKPOINT_EVERY

KINDS = ["sqlite", "sqlite-memory", "memory"]


@pytest.fixture(params=KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    url = {"sqlite": f"sqlite:///{tmp_path / 'inline.db'}", "sqlite-memory": "sqlite://",
           "memory": "memory://"}[request.param]
    opened = open_store(url)
    yield opened
    opened.close()


def _turn(n: int, tag: str = "") -> list[Any]:
    return [HumanMessage(f"q{n}", id=f"{tag}q{n}"), AIMessage(f"a{n}", id=f"{tag}a{n}")]


class _CountingExecutor(ThreadPoolExecutor):
    """The loop's default executor, counting the calls sent to a worker thread."""

    def __init__(self) -> None:
        super().__init__(max_workers=4)
        self.calls = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return super().submit(fn, *args, **kwargs)


def _same_both_ways(store: Store, sid: str, also_sid: str) -> None:
    """Run the same calls sync on ``sid`` and async on ``also_sid``; compare results."""

    def sync_side() -> list[Any]:
        out: list[Any] = []
        store.append(sid, _turn(1) + _turn(2), ttl=600)
        store.append(sid, _turn(2) + _turn(3))  # q2/a2 again: stored once
        out.append(store.get_messages(sid, last=3))
        out.append(store.get_messages(sid, last=0))
        store.put_records(sid, {"k1": b"v1", "k2": b"v2", "x": b"3"})
        store.append_with_records(sid, _turn(4), {"k3": b"v3"})
        store.put_records(sid, {}, delete=["k2"])
        out.append(store.get_records(sid, ["k1", "k2", "k3", "nope"]))
        out.append(store.scan_records(sid, "k"))
        out.append(store.scan_records(sid, "k", keys_only=True, reverse=True))
        out.append(store.scan_records(sid, "", limit=2))
        out.append(store.get_messages(sid))
        info = store.session_info(sid)
        assert info is not None and info.expires_at is not None  # the ttl was kept
        out.append((info.message_count, store.session_info("no such session")))
        return out

    async def async_side() -> list[Any]:
        out: list[Any] = []
        await store.aappend(also_sid, _turn(1) + _turn(2), ttl=600)
        await store.aappend(also_sid, _turn(2) + _turn(3))
        out.append(await store.aget_messages(also_sid, last=3))
        out.append(await store.aget_messages(also_sid, last=0))
        await store.aput_records(also_sid, {"k1": b"v1", "k2": b"v2", "x": b"3"})
        await store.aappend_with_records(also_sid, _turn(4), {"k3": b"v3"})
        await store.aput_records(also_sid, {}, delete=["k2"])
        out.append(await store.aget_records(also_sid, ["k1", "k2", "k3", "nope"]))
        out.append(await store.ascan_records(also_sid, "k"))
        out.append(await store.ascan_records(also_sid, "k", keys_only=True, reverse=True))
        out.append(await store.ascan_records(also_sid, "", limit=2))
        out.append(await store.aget_messages(also_sid))
        info = await store.asession_info(also_sid)
        assert info is not None and info.expires_at is not None
        out.append((info.message_count, await store.asession_info("no such session")))
        return out

    expected = sync_side()
    assert asyncio.run(async_side()) == expected
    assert [m.content for m in expected[-2]] == ["q1", "a1", "q2", "a2", "q3", "a3",
                                                 "q4", "a4"]


def test_async_results_equal_sync_ones(store: Store) -> None:
    _same_both_ways(store, "sync", "async")


def test_async_errors_equal_sync_ones(store: Store) -> None:
    async def calls() -> None:
        with pytest.raises(InputError):
            await store.aappend("", _turn(1))
        with pytest.raises(InputError):
            await store.aget_messages("s", last=-1)
        with pytest.raises(InputError):
            await store.aappend("s", ["not a message"])
        with pytest.raises(InputError):
            await store.aput_records("s", {"k": "not bytes"})  # type: ignore[dict-item]
        assert await store.aget_messages("s") == []  # nothing of a refused batch stored
        await store.aappend("s", _turn(1))
        store.close()
        with pytest.raises(StoreError):
            await store.aappend("s", _turn(2))
        with pytest.raises(StoreError):
            await store.aget_messages("s", last=5)

    asyncio.run(calls())


def test_a_turn_uses_no_worker_thread(store: Store) -> None:
    async def turns() -> int:
        executor = _CountingExecutor()
        asyncio.get_running_loop().set_default_executor(executor)
        await store.aappend("s", _turn(0))  # the first call may set up (a SQLite file)
        executor.calls = 0
        for n in range(1, 50):
            await store.aget_messages("s", last=20)
            await store.aappend("s", _turn(n))
            await store.ascan_records("s", "deleted:", keys_only=True)
        assert len(await store.aget_messages("s", last=500)) == 100
        return executor.calls

    assert asyncio.run(turns()) == 0


def test_sqlite_checkpoints_in_a_worker_thread(tmp_path: Path) -> None:
    """The loop's connection never checkpoints (disk syncs); a worker thread does, every
    CHECKPOINT_EVERY inline writes, so the WAL stays small."""
    store = open_store(f"sqlite:///{tmp_path / 'wal.db'}")

    async def writes() -> int:
        executor = _CountingExecutor()
        asyncio.get_running_loop().set_default_executor(executor)
        await store.aappend("s", _turn(0))
        executor.calls = 0
        for n in range(1, CHECKPOINT_EVERY * 2 + 1):
            await store.aappend("s", _turn(n))
        return executor.calls

    try:
        assert asyncio.run(writes()) == 2
        assert len(store.get_messages("s")) == 2 * (CHECKPOINT_EVERY * 2 + 1)
    finally:
        store.close()


async def _ticking(call: Callable[[], Any]) -> tuple[Any, float, float]:
    """Run ``call()`` while a coroutine ticks every 10 ms: its result, how long it took,
    and the longest the loop went without a tick."""
    gaps: list[float] = []
    done = asyncio.Event()

    async def tick() -> None:
        last = time.monotonic()
        while not done.is_set():
            await asyncio.sleep(0.01)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0.05)
    started = time.monotonic()
    try:
        result = await call()
    finally:
        took = time.monotonic() - started
        done.set()
        await ticker
    return result, took, max(gaps)


def test_sqlite_write_contention_does_not_block_the_loop(tmp_path: Path) -> None:
    path = tmp_path / "busy.db"
    store = open_store(f"sqlite:///{path}")
    store.append("s", _turn(0))
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    locked, release_at = threading.Event(), [0.0]

    def hold_the_write_lock() -> None:
        other.execute("BEGIN IMMEDIATE")
        other.execute("INSERT INTO threadline_messages (session_id, message) "
                      "VALUES ('other', '{}')")
        locked.set()
        time.sleep(0.5)
        release_at[0] = time.monotonic()
        other.execute("COMMIT")

    async def main() -> None:
        await store.aget_messages("s", last=1)  # opens the loop thread's connection
        holder = threading.Thread(target=hold_the_write_lock)
        holder.start()
        assert await asyncio.to_thread(locked.wait, 5)
        # Reads in WAL mode never wait for the writer: inline, at once.
        read, took, _ = await _ticking(lambda: store.aget_messages("s", last=10))
        assert len(read) == 2 and took < 0.25
        # The append cannot take the lock: it waits in a worker thread, the loop turns.
        _, took, longest_gap = await _ticking(lambda: store.aappend("s", _turn(1)))
        finished = time.monotonic()
        holder.join()
        assert finished >= release_at[0] > 0  # it completed after the lock was released
        assert took >= 0.2
        assert longest_gap < 0.2  # the loop was never blocked for the wait
        assert [m.content for m in await store.aget_messages("s", last=10)] == [
            "q0", "a0", "q1", "a1"]

    try:
        asyncio.run(main())
    finally:
        other.close()
        store.close()


def test_memory_lock_contention_does_not_block_the_loop() -> None:
    store = open_store("memory://")
    lock = store._lock  # type: ignore[attr-defined]
    locked = threading.Event()

    def hold_the_lock() -> None:
        with lock:
            locked.set()
            time.sleep(0.4)

    async def main() -> None:
        holder = threading.Thread(target=hold_the_lock)
        holder.start()
        assert await asyncio.to_thread(locked.wait, 5)
        _, took, longest_gap = await _ticking(lambda: store.aappend("s", _turn(1)))
        holder.join()
        assert took >= 0.15 and longest_gap < 0.2
        assert len(await store.aget_messages("s")) == 2

    asyncio.run(main())


def test_loops_in_several_threads_and_a_sync_writer(tmp_path: Path) -> None:
    """Each loop thread has its own connection; contended writes fall back to a worker
    thread and nothing is lost or stored twice."""
    store = open_store(f"sqlite:///{tmp_path / 'many.db'}")
    errors: list[BaseException] = []

    def loop_thread(tag: str) -> None:
        async def turns() -> None:
            for n in range(60):
                await store.aget_messages(tag, last=20)
                await store.aappend(tag, _turn(n, tag))
                await store.aappend(tag, _turn(n, tag))  # a retry: stored once
        try:
            asyncio.run(turns())
        except BaseException as exc:  # reported below
            errors.append(exc)

    def sync_thread() -> None:
        for n in range(60):
            store.append("sync", _turn(n, "sync"))

    threads = [threading.Thread(target=loop_thread, args=(f"t{i}",)) for i in range(3)]
    threads.append(threading.Thread(target=sync_thread))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == []
        for sid in ("t0", "t1", "t2", "sync"):
            assert len(store.get_messages(sid)) == 120
            info = store.session_info(sid)
            assert info is not None and info.message_count == 120
    finally:
        store.close()
