"""The sessions API of the Redis store: thin sync and async shells on
:mod:`threadline.stores.redis._sessions`'s operations.

A mixin, so that ``_store`` (the connection handling and the message contract) does not
grow: :class:`~threadline.stores.redis._store.RedisStore` provides ``_run``, ``_arun``
and ``_keys``. ``search`` is the base's documented scan, pipelined (see ``_search``);
``fork`` keeps the base's checks and steps but copies the messages server-side.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, TypeVar

from threadline.stores._base import SessionInfo, SessionPage, _fork_changes, validate_session_id
from threadline.stores._sessions import (
    UNSET,
    Order,
    SearchHit,
    SessionChanges,
    StoreStats,
    _Unset,
    check_list_args,
    check_search_args,
    check_session_update,
)
from threadline.stores.redis._search import search_op
from threadline.stores.redis._sessions import (
    fork_copy_op,
    list_sessions_op,
    stats_op,
    update_op,
)

if TYPE_CHECKING:
    from threadline.stores.redis._keys import Keys
    from threadline.stores.redis._ops import Operation

__all__ = ["SessionMethods"]

T = TypeVar("T")


class SessionMethods:
    """``list_sessions``, ``update_session`` and ``stats``, sync and native async."""

    if TYPE_CHECKING:
        _keys: Keys
        ttl: float | None

        def _run(self, op: Operation[T]) -> T: ...

        async def _arun(self, op: Operation[T], sync: Callable[[], T]) -> T: ...

        def _fork_source(self, session_id: str, new_session_id: str,
                         at: int | None) -> SessionInfo: ...

        def session_info(self, session_id: str) -> SessionInfo | None: ...

    def list_sessions(self, *, order: Order = "id", owner: str | None = None,
                      prefix: str = "", metadata: Mapping[str, str] | None = None,
                      limit: int = 100, cursor: str | None = None) -> SessionPage:
        """Session ids by id (the index) or newest first (the recent set, or the owner's),
        with the filters; see :mod:`threadline.stores.redis._sessions`."""
        query = check_list_args(order, owner, prefix, metadata, limit, cursor)
        return self._run(list_sessions_op(self._keys, query))

    async def alist_sessions(self, *, order: Order = "id", owner: str | None = None,
                             prefix: str = "", metadata: Mapping[str, str] | None = None,
                             limit: int = 100, cursor: str | None = None) -> SessionPage:
        query = check_list_args(order, owner, prefix, metadata, limit, cursor)
        return await self._arun(
            list_sessions_op(self._keys, query),
            lambda: self.list_sessions(order=order, owner=owner, prefix=prefix,
                                       metadata=metadata, limit=limit, cursor=cursor))

    def _update_session(self, session_id: str, changes: SessionChanges) -> None:
        """One script call: the fields, the owner's sets, and a new session's index,
        recent entry and expiry (the store's ``ttl``)."""
        self._run(update_op(self._keys, session_id, changes, self.ttl))

    async def aupdate_session(self, session_id: str, *,
                              title: str | _Unset | None = UNSET,
                              metadata: Mapping[str, str] | _Unset | None = UNSET,
                              owner: str | _Unset | None = UNSET) -> None:
        validate_session_id(session_id)
        changes = check_session_update(title, metadata, owner)
        await self._arun(update_op(self._keys, session_id, changes, self.ttl),
                         lambda: self._update_session(session_id, changes))

    def search(self, query: str, *, owner: str | None = None,
               limit: int = 20) -> list[SearchHit]:
        """The base's scan of the most recently active sessions, in few round trips
        (:mod:`threadline.stores.redis._search`): Redis has no full-text index here."""
        terms = check_search_args(query, owner, limit)
        return self._run(search_op(self._keys, terms, owner, limit))

    async def asearch(self, query: str, *, owner: str | None = None,
                      limit: int = 20) -> list[SearchHit]:
        terms = check_search_args(query, owner, limit)
        return await self._arun(search_op(self._keys, terms, owner, limit),
                                lambda: self.search(query, owner=owner, limit=limit))

    def stats(self) -> StoreStats:
        """Sessions, messages (``LLEN``) and ``MEMORY USAGE`` bytes, pipelined over the
        index (dead entries are dropped on the way)."""
        return self._run(stats_op(self._keys))

    async def astats(self) -> StoreStats:
        return await self._arun(stats_op(self._keys), self.stats)

    def fork(self, session_id: str, new_session_id: str, *,
             at: int | None = None) -> SessionInfo:
        """The base's fork (same checks, errors and order: the fork is created, owned,
        before it holds anything), with the messages copied inside Redis
        (:func:`~threadline.stores.redis._sessions.fork_copy_op`), not read and written
        back by the client."""
        validate_session_id(new_session_id)
        source = self._fork_source(session_id, new_session_id, at)
        count = source.message_count if at is None else at
        self._update_session(new_session_id, _fork_changes(source, count))
        self._run(fork_copy_op(self._keys, session_id, new_session_id, count, self.ttl))
        info = self.session_info(new_session_id)
        assert info is not None
        return info
