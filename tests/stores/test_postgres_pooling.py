"""PostgreSQL through PgBouncer in transaction mode (a private PgBouncer, Debian's,
in front of the shared server on 5432): concurrent appends from threads and from asyncio
tasks with ``prepare_threshold=none``, every message read back once; without the option
the error names it.

A transaction pooler runs each transaction on whichever server connection is free, so
psycopg's server-side prepared statements (named per client connection: ``_pg3_0``...)
meet other clients' statements of the same name. The fixture's pool has one or two
server connections, so clients do share them.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import Iterator

import pytest
from conftest import require_server

from threadline import AIMessage, ConfigurationError, HumanMessage, StoreError
from threadline.stores import open_store

from .servers import PgBouncer

psycopg = pytest.importorskip("psycopg")

from threadline.stores.sql._postgres import PostgresStore  # noqa: E402 - after the importorskip

THREADS = 8
TURNS = 12


def _turn(tag: str) -> list[HumanMessage | AIMessage]:
    return [HumanMessage(f"q-{tag}", id=f"{tag}-q"), AIMessage(f"a-{tag}", id=f"{tag}-a")]


@pytest.fixture(scope="module")
def bouncer() -> Iterator[PgBouncer]:
    require_server("127.0.0.1", 5432, "PostgreSQL")
    with PgBouncer(pool_size=2) as bouncer:
        yield bouncer


@pytest.fixture
def store(bouncer: PgBouncer) -> Iterator[PostgresStore]:
    store = PostgresStore(f"{bouncer.url}?prepare_threshold=none&table=t_{secrets.token_hex(5)}",
                          pool_size=THREADS, timeout=20)
    try:
        yield store
    finally:
        store.destroy()
        store.close()


def _check_all_stored(store: PostgresStore) -> None:
    """Each worker's session holds its turns in order; the shared one every turn once."""
    for worker in range(THREADS):
        texts = [m.content for m in store.get_messages(f"own-{worker}")]
        assert texts == [t for k in range(TURNS) for t in (f"q-{worker}.{k}", f"a-{worker}.{k}")]
    shared = store.get_messages("shared")
    ids = [m.id for m in shared]
    assert len(ids) == len(set(ids)) == THREADS * TURNS * 2
    info = store.session_info("shared")
    assert info is not None and info.message_count == THREADS * TURNS * 2


def test_threads_append_through_pgbouncer_in_transaction_mode(store: PostgresStore) -> None:
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for k in range(TURNS):
                tag = f"{worker}.{k}"
                store.append(f"own-{worker}", _turn(tag))
                store.append("shared", _turn(f"s{tag}"))
                assert store.get_messages(f"own-{worker}", last=2)[-1].content == f"a-{tag}"
                if k % 4 == 0:  # two statements pipelined on one connection
                    store.append_with_records(f"own-{worker}-r", _turn(f"r{tag}"),
                                              {"k": str(k).encode()})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    _check_all_stored(store)
    assert store.get_records("own-0-r", ["k"]) == {"k": str(TURNS - 4).encode()}


def test_asyncio_tasks_append_through_pgbouncer_in_transaction_mode(
        store: PostgresStore) -> None:
    async def work(worker: int) -> None:
        for k in range(TURNS):
            tag = f"{worker}.{k}"
            await store.aappend(f"own-{worker}", _turn(tag))
            await store.aappend("shared", _turn(f"s{tag}"))
            last = await store.aget_messages(f"own-{worker}", last=2)
            assert last[-1].content == f"a-{tag}"

    async def main() -> None:
        await asyncio.gather(*(work(n) for n in range(THREADS)))

    asyncio.run(main())
    _check_all_stored(store)


def test_prepared_statements_through_a_pooler_fail_naming_the_option(
        bouncer: PgBouncer) -> None:
    """psycopg's default prepare_threshold through a pooler with ONE server connection:
    the store's pool connections take turns, each prepares ``_pg3_0`` after five runs of
    a read, on that same server connection; the second finds it there. The error says
    what to add to the URL."""
    with PgBouncer(pool_size=1) as single:
        store = open_store(f"{single.url}?table=t_{secrets.token_hex(5)}")
        try:
            assert isinstance(store, PostgresStore) and store.prepare_threshold == 5
            store.append("s", _turn("x"))
            with pytest.raises(StoreError, match="prepare_threshold=none") as info:
                for _ in range(30):
                    with store._pooled():  # a second pool connection, taking turns
                        store.get_messages("s")
            assert "_pg3_" in str(info.value)
        finally:
            store.destroy()
            store.close()


@pytest.mark.parametrize("given, expected", [
    ("none", None), ("off", None), ("NONE", None), ("0", 0), ("5", 5), (None, None), (3, 3)])
def test_prepare_threshold_option(given: object, expected: int | None) -> None:
    url = "postgresql://app@db.invalid/chat"
    store = (PostgresStore(f"{url}?prepare_threshold={given}") if isinstance(given, str)
             else PostgresStore(url, prepare_threshold=given))
    assert store.prepare_threshold == expected
    assert PostgresStore(url).prepare_threshold == 5  # psycopg's default


@pytest.mark.parametrize("given", ["-1", "soon", -2, True, 1.5])
def test_a_bad_prepare_threshold_is_refused(given: object) -> None:
    url = "postgresql://app@db.invalid/chat"
    with pytest.raises(ConfigurationError, match="prepare_threshold"):
        if isinstance(given, str):
            PostgresStore(f"{url}?prepare_threshold={given}")
        else:
            PostgresStore(url, prepare_threshold=given)


@pytest.mark.parametrize("error", [
    psycopg.errors.DuplicatePreparedStatement('prepared statement "_pg3_0" already exists'),
    psycopg.errors.InvalidSqlStatementName('prepared statement "_pg3_2" does not exist'),
    psycopg.errors.ProtocolViolation(
        'bind message supplies 2 parameters, but prepared statement "_pg3_0" requires 4'),
])
def test_every_pooled_prepare_error_names_the_option(error: Exception) -> None:
    """The three ways a pooler's mixed-up statement names show up (the last one an
    OperationalError, which must not read as a connection failure)."""
    store = PostgresStore("postgresql://app@db.invalid/chat")
    wrapped = store._wrap(error, "query")
    assert type(wrapped) is StoreError and "prepare_threshold=none" in str(wrapped)
