"""PostgreSQL failover: a private primary and a streaming standby (``pg_basebackup -R``),
one store on a multi-host URL with ``target_session_attrs=read-write``.

The primary commits synchronously (``synchronous_standby_names = '*'``, set after the
standby was copied from it, so the promoted standby does not wait for a standby of its
own): an append returns only once the standby has it, so a primary that stops like a
crash loses no acknowledged message.

A writer appends turns with ids while the primary is crashed and the standby promoted.
The append in flight at the crash is an ambiguous one: the primary was made to wait for
a standby that does not exist (``synchronous_standby_names = 'nobody'``), so the turn is
committed and streamed to the standby but never acknowledged. The store runs it again on
the promoted standby with the same ids: the conversation holds every turn once, in order.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from threadline import AIMessage, HumanMessage, StoreError
from threadline.stores import open_store

from .servers import PrivatePostgres

psycopg = pytest.importorskip("psycopg")

TURNS = 30
DEADLINE = 20.0  # seconds the writer may take, failover included


def _turn(k: int) -> list[HumanMessage | AIMessage]:
    return [HumanMessage(f"q{k}", id=f"t{k}-q"), AIMessage(f"a{k}", id=f"t{k}-a")]


def _query(port: int, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres",
                         autocommit=True) as conn:
        cur = conn.execute(query)
        return cur.fetchall() if cur.description is not None else []


def _wait_for(check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not happen within {timeout} s")
        time.sleep(0.02)


def _sync_standby(primary: PrivatePostgres, name: str) -> None:
    _query(primary.port, f"ALTER SYSTEM SET synchronous_standby_names = '{name}'")
    _query(primary.port, "SELECT pg_reload_conf()")


@pytest.fixture
def pair() -> Iterator[tuple[PrivatePostgres, PrivatePostgres]]:
    with PrivatePostgres() as primary:
        standby = primary.standby()
        try:
            _sync_standby(primary, "*")
            _wait_for(lambda: _query(primary.port, "SELECT sync_state FROM pg_stat_replication")
                      == [("sync",)], "the standby becoming synchronous")
            yield primary, standby
        finally:
            standby.cleanup()


def test_failover_to_a_promoted_standby_continues_the_conversation(
        pair: tuple[PrivatePostgres, PrivatePostgres]) -> None:
    primary, standby = pair
    url = (f"postgresql://postgres@127.0.0.1:{primary.port},127.0.0.1:{standby.port}/postgres"
           "?target_session_attrs=read-write&table=ha")
    store = open_store(url, timeout=10, connect_timeout=2, pool_timeout=8)
    acknowledged: list[int] = []
    failures: list[str] = []
    halfway = threading.Event()

    def writer() -> None:
        deadline = time.monotonic() + DEADLINE
        for k in range(TURNS):
            while True:
                try:
                    store.append("conv", _turn(k))
                    break
                except StoreError as exc:  # as an application would: the same turn again
                    failures.append(str(exc))
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
            acknowledged.append(k)
            if k == TURNS // 2:
                halfway.set()
                while halfway.is_set():  # the primary is set to hang the next commit
                    time.sleep(0.01)

    def rows_on_standby() -> int:
        return int(_query(standby.port, "SELECT count(*) FROM ha")[0][0])

    try:
        store.append("conv", _turn(-1))
        thread = threading.Thread(target=writer)
        thread.start()
        assert halfway.wait(DEADLINE)
        _sync_standby(primary, "nobody")  # commits wait for a standby that never comes
        # ... once the walsender itself has reloaded the setting (it alone releases the
        # waiting commits): its priority, shown by pg_stat_replication, drops to 0.
        _wait_for(lambda: _query(primary.port, "SELECT sync_priority FROM pg_stat_replication")
                  == [(0,)], "the standby becoming asynchronous")
        done = len(acknowledged)
        halfway.clear()
        # The next turn is committed on the primary and streamed to the standby, and not
        # acknowledged: the writer is still waiting.
        _wait_for(lambda: rows_on_standby() >= 2 * (done + 2), "the unacknowledged turn")
        assert rows_on_standby() == 2 * (done + 2) and len(acknowledged) == done, failures
        primary.stop("immediate")  # as a crash: no goodbye to the clients
        standby.promote()
        thread.join(DEADLINE + 5)
        assert not thread.is_alive()
        assert acknowledged == list(range(TURNS))
        assert done < TURNS  # the rest went to the promoted standby
        texts = [m.content for m in store.get_messages("conv")]
        assert texts == [t for k in range(-1, TURNS) for t in (f"q{k}", f"a{k}")]
        info = store.session_info("conv")
        assert info is not None and info.message_count == 2 * (TURNS + 1)
        assert rows_on_standby() == 2 * (TURNS + 1)
        print(f"failover after {done} turns; failures the writer saw: {failures}")
    finally:
        store.close()
