"""Reads that stay in bounds on the SQL and cloud stores: ``iter_messages`` reads a session
a page per round trip (never the whole session at once), names a bad row by its place in
the session, and numeric arguments are range-checked on the async methods too.

The stores' round trips are observed by wrapping the store's own driver method (``_run``
of the SQL stores, ``_call`` of DynamoDB, ``_execute`` of Cosmos DB) on real servers.
:func:`streamed_poison_scenario` is run by test_sql_faults.py and test_cloud_faults.py,
which know how to write a poisoned row behind each store's back.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from threadline import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    InputError,
    MessageFormatError,
    SkippedMessageWarning,
)
from threadline.stores import Store
from threadline.stores._base import encode_message

from .conftest import make_spec

BACKENDS = ["sqlite", "sqlite-memory", "postgresql", "mysql", "dynamodb", "cosmos"]


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    spec = make_spec(request.param, tmp_path)
    try:
        yield spec.open()
    finally:
        spec.cleanup()


def _texts(messages: Iterator[BaseMessage] | list[BaseMessage]) -> list[str]:
    return [m.text for m in messages]


def _spy_answers(store: Store, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Wrap the store's driver method: the returned list gets the number of rows
    (messages, items, documents) each of its read round trips answers."""
    sizes: list[int] = []
    kind = type(store).__name__
    if kind == "DynamoDBStore":
        call = store._call  # type: ignore[attr-defined]

        def spy_call(operation: str, **kwargs: Any) -> Any:
            answer = call(operation, **kwargs)
            if operation in ("query", "scan"):
                sizes.append(len(answer.get("Items", [])))
            return answer

        monkeypatch.setattr(store, "_call", spy_call)
    elif kind == "CosmosStore":
        from threadline.stores.cosmos._ops import _Query

        execute = store._execute  # type: ignore[attr-defined]

        def spy_execute(request: Any) -> Any:
            answer = execute(request)
            if isinstance(request, _Query):
                sizes.append(len(answer))
            return answer

        monkeypatch.setattr(store, "_execute", spy_execute)
    else:  # SQLite, PostgreSQL, MySQL: every statement goes through _run
        run = store._run  # type: ignore[attr-defined]

        def spy_run(work: Any, **kwargs: Any) -> Any:
            answer = run(work, **kwargs)
            if isinstance(answer, list):
                sizes.append(len(answer))
            return answer

        monkeypatch.setattr(store, "_run", spy_run)
    return sizes


def test_iter_messages_reads_one_page_per_round_trip(store: Store,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    messages: list[BaseMessage] = [HumanMessage(f"m{i}") for i in range(25)]
    store.append("long", messages[:12])
    store.append("long", messages[12:])
    store.append("other", [AIMessage("not this one")])
    sizes = _spy_answers(store, monkeypatch)

    pages = store.iter_messages("long", page_size=10)
    assert sizes == []  # nothing read before the first message is asked for
    assert next(pages).text == "m0"
    assert len(sizes) <= 2 and max(sizes) <= 10  # (the session's head,) the first page
    assert _texts(pages) == _texts(messages[1:])
    assert max(sizes) <= 10 and 3 <= len(sizes) <= 5, sizes  # three pages, not one read

    sizes.clear()
    assert _texts(store.iter_messages("long", page_size=25)) == _texts(messages)
    assert max(sizes) <= 25 and len(sizes) <= 4, sizes
    assert list(store.iter_messages("missing", page_size=3)) == []
    store.delete_session("long")
    assert list(store.iter_messages("long")) == []


def test_iter_messages_checks_its_arguments_at_once(store: Store) -> None:
    for size in (0, -1, 10_001, 2**63, 1.5, True):
        with pytest.raises(InputError, match="limit"):
            store.iter_messages("s", page_size=size)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="surrogate"):
        store.iter_messages("a\ud800b")
    with pytest.raises(InputError):
        store.iter_messages("")


def test_async_numeric_arguments_are_range_checked(store: Store) -> None:
    store.append("s", [HumanMessage("q"), AIMessage("a")])

    async def main() -> None:
        for limit in (0, 2**63, 10_001, 1.5):
            with pytest.raises(InputError, match="limit"):
                await store.alist_sessions(limit=limit)  # type: ignore[arg-type]
        for last in (-1, 2**63, 2**31, "2"):
            with pytest.raises(InputError, match="last"):
                await store.aget_messages("s", last=last)  # type: ignore[arg-type]
        assert _texts(await store.aget_messages("s", last=2**31 - 1)) == ["q", "a"]

    asyncio.run(main())


def streamed_poison_scenario(store: Store,
                             insert_raw: Callable[[str, list[str]], None]) -> None:
    """A session of 13 rows whose row 7 cannot be decoded, streamed 3 rows a page: the
    rows of the pages before the bad one are handed out first, then MessageFormatError
    names the session and position 7 (not the position in its page); with
    ``skip_invalid`` the 12 good messages come out and one warning names position 7."""
    good = [encode_message(HumanMessage(f"m{i}")) for i in range(13)]
    insert_raw("poisoned", [*good[:7], '{"type":"human","data":{"content":7}}', *good[8:]])
    got: list[str] = []
    with pytest.raises(MessageFormatError) as info:
        got.extend(m.text for m in store.iter_messages("poisoned", page_size=3))
    assert got == [f"m{i}" for i in range(6)]  # two whole pages, streamed before the bad one
    assert info.value.session_id == "poisoned" and info.value.position == 7
    assert "message 7 of session 'poisoned'" in str(info.value)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        kept = _texts(store.iter_messages("poisoned", page_size=3, skip_invalid=True))
    assert kept == [f"m{i}" for i in range(13) if i != 7]
    skipped = [w.message for w in caught if issubclass(w.category, SkippedMessageWarning)]
    assert len(skipped) == 1
    assert skipped[0].error.position == 7  # type: ignore[union-attr]
