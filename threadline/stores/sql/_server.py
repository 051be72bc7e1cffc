"""The Store-method layer shared by the client/server SQL stores (PostgreSQL, MySQL).

Design: a backend's pure module builds every operation as an :class:`Op` value (the
driver's statement, its parameters, how to turn the rows into a result, whether a retry
is safe) and lists its builders in a :class:`Statements` table. :class:`SQLServerStore`
turns each contract method into "validate, build the op, run it"; a backend supplies only
its driver: the pools and ``_run`` / ``_arun`` (plus setup, close and error wrapping).
Schema setup is a generator of ops that :func:`drive` and :func:`adrive` feed with
results, so neither the SQL nor the sync/async pair is written twice.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Awaitable, Callable, Generator, Sequence
from typing import Any, ClassVar, Generic, NamedTuple, TypeVar

from threadline._errors import ConfigurationError, InputError
from threadline.messages._values import BaseMessage
from threadline.stores._base import (
    SessionInfo,
    SessionPage,
    Store,
    validate_session_id,
    validate_ttl,
)

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


def no_result(rows: Rows) -> None:
    return None


def check_limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InputError(f"limit must be a positive int, got {limit!r}")
    return limit


class Statements(NamedTuple):
    """A backend's op builders; each takes its table names first."""

    append: Callable[..., Op[None]]  # (names, session_id, messages, ttl)
    get: Callable[..., Op[list[BaseMessage]]]  # (names, session_id, last)
    delete: Callable[..., Op[bool]]  # (names, session_id)
    page: Callable[..., Op[SessionPage]]  # (names, prefix, limit, cursor)
    info: Callable[..., Op[SessionInfo | None]]  # (names, session_id)
    expire: Callable[..., Op[None]]  # (names, session_id, ttl)
    purge: Callable[..., Op[int]]  # (names)
    destroy: Callable[..., Op[None]]  # (names)
    ping: Op[None]


def drive(steps: Generator[Op[Any], Any, None], execute: Callable[[Op[Any]], Any]) -> None:
    """Run a setup generator: each op it yields is executed and its result sent back."""
    try:
        op = next(steps)
        while True:
            op = steps.send(execute(op))
    except StopIteration:
        pass


async def adrive(steps: Generator[Op[Any], Any, None],
                 execute: Callable[[Op[Any]], Awaitable[Any]]) -> None:
    """:func:`drive` with an async ``execute``."""
    try:
        op = next(steps)
        while True:
            op = steps.send(await execute(op))
    except StopIteration:
        pass


class SQLServerStore(Store):
    """A store whose every call is one op run by a driver shell (``_run`` / ``_arun``).

    Subclasses set ``STATEMENTS``, call :meth:`_configure` from ``__init__`` and
    implement ``_run``, ``_arun``, ``setup``, ``asetup`` and ``close``.
    """

    OPTIONS: ClassVar[dict[str, Any]] = {
        **Store.OPTIONS, "table": str, "connect_timeout": float, "pool_size": int,
        "pool_timeout": float}
    STATEMENTS: ClassVar[Statements]

    _names: Any  # the backend's table names, passed to every builder

    def _configure(self, names: Callable[[str], Any]) -> None:
        """Table names and pool settings from the options (after the URL checks)."""
        table = self.options.get("table")
        self._names = names(DEFAULT_TABLE if table is None else table)
        given = {k: v for k, v in self.options.items() if v is not None}
        self.connect_timeout = float(given.get("connect_timeout", 5.0))
        self.pool_size = int(given.get("pool_size", 5))
        self.pool_timeout = float(given.get("pool_timeout", 10.0))
        if self.connect_timeout <= 0 or self.pool_size < 1 or self.pool_timeout <= 0:
            raise ConfigurationError(
                "connect_timeout and pool_timeout must be positive and pool_size at least 1")
        self._ready = False  # schema set up by this process
        self._closed = False

    @property
    def table(self) -> str:
        name: str = self._names.table
        return name

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
        messages = list(messages)
        return self.STATEMENTS.append(self._names, session_id, messages, ttl) \
            if messages else None

    def _get(self, session_id: str, last: int | None) -> Op[list[BaseMessage]] | None:
        validate_session_id(session_id)
        if last is not None and last <= 0:
            return None
        return self.STATEMENTS.get(self._names, session_id, last)

    def _delete(self, session_id: str) -> Op[bool]:
        return self.STATEMENTS.delete(self._names, validate_session_id(session_id))

    def _list(self, prefix: str, limit: int, cursor: str | None) -> Op[SessionPage]:
        return self.STATEMENTS.page(self._names, prefix, check_limit(limit), cursor)

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

    def get_messages(self, session_id: str, *, last: int | None = None) -> list[BaseMessage]:
        op = self._get(session_id, last)
        return [] if op is None else self._run(op)

    def delete_session(self, session_id: str) -> bool:
        return self._run(self._delete(session_id))

    def list_sessions(self, *, prefix: str = "", limit: int = 100,
                      cursor: str | None = None) -> SessionPage:
        return self._run(self._list(prefix, limit, cursor))

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

    async def aget_messages(self, session_id: str, *,
                            last: int | None = None) -> list[BaseMessage]:
        op = self._get(session_id, last)
        return [] if op is None else await self._arun(op)

    async def adelete_session(self, session_id: str) -> bool:
        return await self._arun(self._delete(session_id))

    async def alist_sessions(self, *, prefix: str = "", limit: int = 100,
                             cursor: str | None = None) -> SessionPage:
        return await self._arun(self._list(prefix, limit, cursor))

    async def asession_info(self, session_id: str) -> SessionInfo | None:
        return await self._arun(self._info(session_id))

    async def aexpire(self, session_id: str, ttl: float | None) -> None:
        await self._arun(self._expire(session_id, ttl))

    async def apurge_expired(self) -> int:
        return await self._arun(self.STATEMENTS.purge(self._names))
