"""The Store-method layer shared by the client/server SQL stores (PostgreSQL, MySQL).

Design: a backend's pure module builds every operation as an :class:`Op` value (the
driver's statement, its parameters, how to turn the rows into a result, whether a retry
is safe) and lists its builders in a :class:`Statements` table. :class:`SQLServerStore`
turns each contract method into "validate, build the op, run it"; a backend supplies only
its driver: the pools and ``_run`` / ``_arun`` (plus setup, close and error wrapping).
Schema setup is a generator of ops that :func:`drive` and :func:`adrive` feed with
results, so neither the SQL nor the sync/async pair is written twice.

Appends are idempotent by message id (a repeated id in a batch is dropped here, one the
session holds is skipped by the statement), so an append whose every message has an id
is marked safe to run again: the shells retry it once when the connection drops after
it was sent (an ambiguous commit). ``timeout`` (seconds, default 30) bounds connecting,
each statement and each pool wait; ``connect_timeout`` / ``pool_timeout`` refine it.

Streamed reads (``iter_messages``) are one op per page: the rows after a message id
(keyset paging on the ``(sid, id)`` index), so a session is never read whole.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Awaitable, Callable, Generator, Iterator, Mapping, Sequence
from typing import Any, ClassVar, Generic, NamedTuple, TypeVar

from threadline._errors import ConfigurationError, StoreTimeoutError
from threadline.messages._values import BaseMessage
from threadline.stores._base import (
    SessionInfo,
    SessionPage,
    Store,
    check_last,
    check_limit,
    check_messages,
    encode_message,
    stream_pages,
    validate_session_id,
    validate_ttl,
)
from threadline.stores._sessions import (
    UNSET,
    ListQuery,
    Order,
    SearchHit,
    SessionChanges,
    StoreStats,
    _Unset,
    check_list_args,
    check_search_args,
    check_session_update,
)
from threadline.stores.sql._common import check_text_sizes, first_of_each_id

__all__ = ["DEFAULT_TABLE", "Op", "Rows", "SQLServerStore", "Statements", "adrive",
           "check_limit", "drive", "no_result"]

T = TypeVar("T")
Rows = list[tuple[Any, ...]]

DEFAULT_TABLE = "threadline_messages"


class Op(NamedTuple, Generic[T]):
    """One round trip: a statement (text, or a composed psycopg statement) and its
    parameters, and how to turn the rows of its first result into a value."""

    query: Any
    params: tuple[Any, ...] | dict[str, Any]
    result: Callable[[Rows], T]
    retry: bool = True  # safe to run twice (reads, idempotent writes)
    write: bool = False  # changes data: after a timeout, whether it did is unknown
    texts: Sequence[str] = ()  # the encoded messages it stores (for size limits)


def no_result(rows: Rows) -> None:
    return None


class Statements(NamedTuple):
    """A backend's op builders; each takes its table names first."""

    #: (names, session_id, messages, texts: the messages encoded, ttl)
    append: Callable[..., Op[None]]
    get: Callable[..., Op[list[BaseMessage]]]  # (names, session_id, last, skip_invalid)
    delete: Callable[..., Op[bool]]  # (names, session_id)
    page: Callable[..., Op[SessionPage]]  # (names, query: ListQuery)
    info: Callable[..., Op[SessionInfo | None]]  # (names, session_id)
    expire: Callable[..., Op[None]]  # (names, session_id, ttl)
    purge: Callable[..., Op[int]]  # (names)
    destroy: Callable[..., Op[None]]  # (names)
    ping: Op[None]
    #: (names, session_id, after, limit): rows ``(id, message)`` of the next page.
    after: Callable[..., Op[Rows]]
    #: (names, session_id, changes: SessionChanges, ttl): set title/metadata/owner/parent,
    #: creating the session if needed.
    update: Callable[..., Op[None]] | None = None
    #: (names, terms, owner, limit): the full-text search (else the portable scan).
    search: Callable[..., Op[list[SearchHit]]] | None = None
    #: (names): counts of sessions, messages and bytes (else the portable count).
    stats: Callable[..., Op[StoreStats]] | None = None


def drive(steps: Generator[Op[Any], Any, T], execute: Callable[[Op[Any]], Any]) -> T:
    """Run a setup generator: each op it yields is executed and its result sent back;
    returns what the generator returns."""
    try:
        op = next(steps)
        while True:
            op = steps.send(execute(op))
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


async def adrive(steps: Generator[Op[Any], Any, T],
                 execute: Callable[[Op[Any]], Awaitable[Any]]) -> T:
    """:func:`drive` with an async ``execute``."""
    try:
        op = next(steps)
        while True:
            op = steps.send(await execute(op))
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


class SQLServerStore(Store):
    """A store whose every call is one op run by a driver shell (``_run`` / ``_arun``).

    Subclasses set ``STATEMENTS``, call :meth:`_configure` from ``__init__`` and
    implement ``_run``, ``_arun``, ``setup``, ``asetup`` and ``close``.
    """

    OPTIONS: ClassVar[dict[str, Any]] = {
        **Store.OPTIONS, "table": str, "timeout": float, "connect_timeout": float,
        "pool_size": int, "pool_timeout": float}
    STATEMENTS: ClassVar[Statements]
    native_async = True
    #: The largest encoded message (UTF-8 bytes) the backend stores, and its name.
    MAX_MESSAGE_BYTES: ClassVar[int]
    LIMIT_NAME: ClassVar[str]
    #: The backend's name in error messages.
    SERVER: ClassVar[str]

    _names: Any  # the backend's table names, passed to every builder

    def _configure(self, names: Callable[[str], Any]) -> None:
        """Table names and pool settings from the options (after the URL checks)."""
        table = self.options.get("table")
        self._names = names(DEFAULT_TABLE if table is None else table)
        given = {k: v for k, v in self.options.items() if v is not None}
        self.timeout = float(given.get("timeout", 30.0))
        self.connect_timeout = float(given.get("connect_timeout", min(5.0, self.timeout)))
        self.pool_size = int(given.get("pool_size", 5))
        self.pool_timeout = float(given.get("pool_timeout", min(10.0, self.timeout)))
        if min(self.timeout, self.connect_timeout, self.pool_timeout) <= 0 or (
                self.pool_size < 1):
            raise ConfigurationError("timeout, connect_timeout and pool_timeout must be "
                                     "positive numbers of seconds and pool_size at least 1")
        self._ready = False  # schema set up by this process
        self._closed = False

    @property
    def table(self) -> str:
        name: str = self._names.table
        return name

    def _message_limit(self) -> int:
        """The largest message this store accepts now (a backend may learn it at setup)."""
        return self.MAX_MESSAGE_BYTES

    # -- timeouts (the texts every driver shell raises) ------------------------------------

    def _where(self) -> str:
        return f"{self.SERVER} at {self.url.render(with_query=False)}"

    def _read_timeout(self, op: Op[Any]) -> StoreTimeoutError:
        """The server took ``op`` and did not answer within ``timeout`` seconds."""
        if not op.write:
            outcome = "the connection was dropped"
        elif op.texts and op.retry:
            outcome = ("the append may or may not have been applied; retrying it is safe "
                       "(its messages have ids: each is stored once)")
        else:
            outcome = "the write may or may not have been applied"
        return StoreTimeoutError(
            f"{self._where()} did not answer within timeout={self.timeout:g} s: {outcome}",
            kind="read", timeout=self.timeout)

    def _connect_timeout(self, seconds: float | None = None,
                         option: str = "connect_timeout") -> StoreTimeoutError:
        seconds = self.connect_timeout if seconds is None else seconds
        return StoreTimeoutError(
            f"cannot connect to {self._where()}: no connection within {option}="
            f"{seconds:g} s (is the server up and reachable?)",
            kind="connect", timeout=seconds)

    def _pool_timeout(self) -> StoreTimeoutError:
        return StoreTimeoutError(
            f"no free connection to {self._where()} within pool_timeout="
            f"{self.pool_timeout:g} s: all {self.pool_size} connections of the pool "
            f"(pool_size={self.pool_size}) stayed busy; raise pool_size or lower the load",
            kind="pool", timeout=self.pool_timeout)

    @abstractmethod
    def _run(self, op: Op[T], *, setup: bool = True) -> T:
        """Run ``op`` (after setting up the schema once, unless ``setup`` is false)."""

    @abstractmethod
    async def _arun(self, op: Op[T], *, setup: bool = True) -> T:
        """:meth:`_run` on the async driver."""

    # -- ops (pure: validate, then build) ------------------------------------------------

    def _append(self, session_id: str, messages: Sequence[BaseMessage],
                ttl: float | None) -> Op[None] | None:
        validate_session_id(session_id)
        ttl = validate_ttl(ttl) or self.ttl
        batch = first_of_each_id(check_messages(messages))
        if not batch:
            return None
        texts = [encode_message(m) for m in batch]
        self.check_sizes(texts)
        check_text_sizes(texts, self._message_limit(), self.LIMIT_NAME)
        return self.STATEMENTS.append(self._names, session_id, batch, texts, ttl)

    def _get(self, session_id: str, last: int | None,
             skip_invalid: bool) -> Op[list[BaseMessage]] | None:
        validate_session_id(session_id)
        last = check_last(last)
        if last == 0:
            return None
        return self.STATEMENTS.get(self._names, session_id, last, skip_invalid)

    def _delete(self, session_id: str) -> Op[bool]:
        return self.STATEMENTS.delete(self._names, validate_session_id(session_id))

    def _list(self, query: ListQuery) -> Op[SessionPage]:
        return self.STATEMENTS.page(self._names, query)

    def _update_op(self, session_id: str, changes: SessionChanges) -> Op[None]:
        if self.STATEMENTS.update is None:
            raise self._no_metadata()
        return self.STATEMENTS.update(self._names, validate_session_id(session_id), changes,
                                      self.ttl)

    def _no_metadata(self) -> ConfigurationError:
        return ConfigurationError(f"the {self.SERVER} store keeps no session metadata")

    def _info(self, session_id: str) -> Op[SessionInfo | None]:
        return self.STATEMENTS.info(self._names, validate_session_id(session_id))

    def _expire(self, session_id: str, ttl: float | None) -> Op[None]:
        validate_session_id(session_id)
        return self.STATEMENTS.expire(self._names, session_id, validate_ttl(ttl))

    # -- sync ----------------------------------------------------------------------------

    def append(self, session_id: str, messages: Sequence[BaseMessage], *,
               ttl: float | None = None) -> None:
        op = self._append(session_id, messages, ttl)
        if op is not None:
            self._run(op)

    def get_messages(self, session_id: str, *, last: int | None = None,
                     skip_invalid: bool = False) -> list[BaseMessage]:
        op = self._get(session_id, last, skip_invalid)
        return [] if op is None else self._run(op)

    def iter_messages(self, session_id: str, *, page_size: int = 1000,
                      skip_invalid: bool = False) -> Iterator[BaseMessage]:
        """The session's messages, oldest first: one statement per ``page_size`` rows."""
        validate_session_id(session_id)
        size = check_limit(page_size)

        def fetch(after: int | None) -> tuple[list[str], int | None]:
            rows = self._run(self.STATEMENTS.after(self._names, session_id, after or 0, size))
            return [row[1] for row in rows], rows[-1][0] if len(rows) == size else None

        return stream_pages(fetch, session_id=session_id, skip_invalid=skip_invalid)

    def delete_session(self, session_id: str) -> bool:
        return self._run(self._delete(session_id))

    def list_sessions(self, *, order: Order = "id", owner: str | None = None,
                      prefix: str = "", metadata: Mapping[str, str] | None = None,
                      limit: int = 100, cursor: str | None = None) -> SessionPage:
        return self._run(self._list(check_list_args(order, owner, prefix, metadata, limit,
                                                    cursor)))

    def _update_session(self, session_id: str, changes: SessionChanges) -> None:
        self._run(self._update_op(session_id, changes))

    def search(self, query: str, *, owner: str | None = None,
               limit: int = 20) -> list[SearchHit]:
        if self.STATEMENTS.search is None:
            return super().search(query, owner=owner, limit=limit)
        terms = check_search_args(query, owner, limit)
        return self._run(self.STATEMENTS.search(self._names, terms, owner, limit))

    def stats(self) -> StoreStats:
        if self.STATEMENTS.stats is None:
            return super().stats()
        return self._run(self.STATEMENTS.stats(self._names))

    def session_info(self, session_id: str) -> SessionInfo | None:
        return self._run(self._info(session_id))

    def expire(self, session_id: str, ttl: float | None) -> None:
        self._run(self._expire(session_id, ttl))

    def purge_expired(self) -> int:
        return self._run(self.STATEMENTS.purge(self._names))

    def ping(self) -> None:
        self._run(self.STATEMENTS.ping, setup=False)

    def destroy(self) -> None:
        """Drop this store's tables (all sessions of this table are lost)."""
        self._run(self.STATEMENTS.destroy(self._names), setup=False)
        self._ready = False

    # -- async ---------------------------------------------------------------------------

    async def aappend(self, session_id: str, messages: Sequence[BaseMessage], *,
                      ttl: float | None = None) -> None:
        op = self._append(session_id, messages, ttl)
        if op is not None:
            await self._arun(op)

    async def aget_messages(self, session_id: str, *, last: int | None = None,
                            skip_invalid: bool = False) -> list[BaseMessage]:
        op = self._get(session_id, last, skip_invalid)
        return [] if op is None else await self._arun(op)

    async def adelete_session(self, session_id: str) -> bool:
        return await self._arun(self._delete(session_id))

    async def alist_sessions(self, *, order: Order = "id", owner: str | None = None,
                             prefix: str = "", metadata: Mapping[str, str] | None = None,
                             limit: int = 100, cursor: str | None = None) -> SessionPage:
        return await self._arun(self._list(check_list_args(order, owner, prefix, metadata,
                                                           limit, cursor)))

    async def aupdate_session(self, session_id: str, *,
                              title: str | _Unset | None = UNSET,
                              metadata: Mapping[str, str] | _Unset | None = UNSET,
                              owner: str | _Unset | None = UNSET) -> None:
        validate_session_id(session_id)
        changes = check_session_update(title, metadata, owner)
        await self._arun(self._update_op(session_id, changes))

    async def asearch(self, query: str, *, owner: str | None = None,
                      limit: int = 20) -> list[SearchHit]:
        if self.STATEMENTS.search is None:
            return await super().asearch(query, owner=owner, limit=limit)
        terms = check_search_args(query, owner, limit)
        return await self._arun(self.STATEMENTS.search(self._names, terms, owner, limit))

    async def astats(self) -> StoreStats:
        if self.STATEMENTS.stats is None:
            return await super().astats()
        return await self._arun(self.STATEMENTS.stats(self._names))

    async def asession_info(self, session_id: str) -> SessionInfo | None:
        return await self._arun(self._info(session_id))

    async def aexpire(self, session_id: str, ttl: float | None) -> None:
        await self._arun(self._expire(session_id, ttl))

    async def apurge_expired(self) -> int:
        return await self._arun(self.STATEMENTS.purge(self._names))
