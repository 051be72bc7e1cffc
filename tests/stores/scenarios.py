"""Failure scenarios the SQL-server backends share: each test module runs them against
its own private server or closed port."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from threadline import AIMessage, HumanMessage, StoreConnectionError
from threadline.stores import Store, open_store


def turn(n: int) -> list[HumanMessage | AIMessage]:
    return [HumanMessage(f"q{n}"), AIMessage(f"a{n}")]


def contents(messages: list[object]) -> list[str]:
    return [m.content for m in messages]  # type: ignore[attr-defined]


def server_down_at_start(url: str) -> str:
    """A store on a closed port fails within its connect timeout, sync and async, and the
    error never shows the password; returns the sync error's text."""
    store = open_store(url)  # lazy: opening never blocks
    started = time.monotonic()
    with pytest.raises(StoreConnectionError) as info:
        store.append("s", turn(1))
    assert time.monotonic() - started < 4
    assert "pw-secret" not in str(info.value)

    async def main() -> None:
        with pytest.raises(StoreConnectionError):
            await store.aget_messages("s")

    started = time.monotonic()
    asyncio.run(main())
    assert time.monotonic() - started < 4
    store.close()
    return str(info.value)


def restart_mid_conversation(store: Store, restart: Callable[[], None]) -> None:
    """Restarts between sync writes, before a read and inside one event loop: every call
    reconnects, nothing is lost or duplicated."""
    store.append("conv", turn(1))
    assert contents(store.get_messages("conv")) == ["q1", "a1"]
    asyncio.run(store.aappend("conv", turn(2)))

    restart()
    store.append("conv", turn(3))  # the dead pooled connection is replaced
    assert contents(store.get_messages("conv")) == ["q1", "a1", "q2", "a2", "q3", "a3"]

    restart()
    assert contents(store.get_messages("conv", last=2)) == ["q3", "a3"]  # read first

    async def async_turns() -> list[str]:
        await store.aappend("conv", turn(4))
        restart()  # blocking on purpose: nothing else runs here
        await store.aappend("conv", turn(5))
        return contents(await store.aget_messages("conv"))

    assert asyncio.run(async_turns()) == [f"{k}{i}" for i in range(1, 6) for k in "qa"]
    info = store.session_info("conv")
    assert info is not None and info.message_count == 10
