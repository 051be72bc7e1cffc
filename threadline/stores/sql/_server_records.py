"""Records on the client/server SQL stores: validate, build the ops, run them.

As for messages (:mod:`threadline.stores.sql._server`), a backend's pure module builds
each call as ops (:class:`RecordStatements`) and this layer runs them, sync or async,
with the driver shell of the store. A put is a list of ops that the shell runs in
order, in ONE transaction, on one connection (:meth:`SQLRecordsStore._run_all`):
PostgreSQL sends any put as one statement; MySQL needs several round trips only when
the put is larger than the server's ``max_allowed_packet``. Everything is validated
before any I/O.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, ClassVar, NamedTuple

from threadline.messages._values import BaseMessage
from threadline.stores._base import validate_session_id, validate_ttl
from threadline.stores._records import (
    check_record_batch,
    check_record_keys,
    check_scan_args,
    validate_record_key,
)
from threadline.stores.sql._records_sql import prefix_range, scan_range
from threadline.stores.sql._server import Op, SQLServerStore

__all__ = ["RecordStatements", "SQLRecordsStore"]


class RecordStatements(NamedTuple):
    """A backend's record op builders; each takes its table names first."""

    #: (names, session_id, batch, delete, ttl, packet): the ops of one transaction;
    #: ``packet`` is the largest statement the server takes (MySQL).
    put: Callable[..., list[Op[None]]]
    get: Callable[..., Op[dict[str, bytes]]]  # (names, session_id, keys)
    #: (names, session_id, low, high, limit, reverse, keys_only): ``low <= key < high``.
    scan: Callable[..., Op[list[tuple[str, bytes]]]]
    #: (names, session_id, keys or None, (low, high) or None); both None: all.
    delete: Callable[..., Op[None]]


class SQLRecordsStore(SQLServerStore):
    """A :class:`SQLServerStore` that keeps records; backends set ``RECORDS``."""

    RECORDS: ClassVar[RecordStatements]
    supports_records = True

    @abstractmethod
    def _run_all(self, ops: Sequence[Op[Any]]) -> None:
        """Run ``ops`` in order, in one transaction on one connection."""

    @abstractmethod
    async def _arun_all(self, ops: Sequence[Op[Any]]) -> None:
        """:meth:`_run_all` on the async driver."""

    # -- pure: validate, then build ------------------------------------------------------

    def _put_args(self, session_id: str, records: Mapping[str, bytes],
                  delete: Collection[str], ttl: float | None
                  ) -> tuple[dict[str, bytes], list[str], float | None] | None:
        validate_session_id(session_id)
        batch = check_record_batch(records, delete, self.max_message_bytes)
        doomed = list(delete)  # validated by check_record_batch
        ttl = validate_ttl(ttl) or self.ttl
        if not batch and not doomed and ttl is None:
            return None
        return batch, doomed, ttl

    def _put(self, session_id: str, args: tuple[dict[str, bytes], list[str], float | None]
             ) -> list[Op[None]]:
        """The ops of a put (after setup: MySQL sizes them by its max_allowed_packet)."""
        return self.RECORDS.put(self._names, session_id, *args, self._message_limit())

    def _get_records(self, session_id: str, keys: Collection[str]
                     ) -> Op[dict[str, bytes]] | None:
        validate_session_id(session_id)
        wanted = check_record_keys(keys)
        return self.RECORDS.get(self._names, session_id, wanted) if wanted else None

    def _scan(self, session_id: str, prefix: str, after: str | None, before: str | None,
              limit: int | None, reverse: bool, keys_only: bool
              ) -> Op[list[tuple[str, bytes]]] | None:
        validate_session_id(session_id)
        check_scan_args(prefix, after, before, limit)
        bounds = scan_range(prefix, after, before)
        if bounds is None:
            return None
        return self.RECORDS.scan(self._names, session_id, *bounds, limit, reverse, keys_only)

    def _delete_records(self, session_id: str, keys: Collection[str] | None,
                        prefix: str | None) -> Op[None] | None:
        validate_session_id(session_id)
        wanted = None if keys is None else check_record_keys(keys)
        if prefix is not None:
            validate_record_key(prefix)
        if wanted == [] and prefix is None:
            return None
        bounds = None if prefix is None else prefix_range(prefix)
        return self.RECORDS.delete(self._names, session_id, wanted or None, bounds)

    # -- sync ----------------------------------------------------------------------------

    def put_records(self, session_id: str, records: Mapping[str, bytes], *,
                    delete: Collection[str] = (), ttl: float | None = None) -> None:
        args = self._put_args(session_id, records, delete, ttl)
        if args is not None:
            if not self._ready:
                self.setup()
            self._run_all(self._put(session_id, args))

    def append_with_records(self, session_id: str, messages: Sequence[BaseMessage],
                            records: Mapping[str, bytes], *, ttl: float | None = None
                            ) -> None:
        """The put, then the append, on one connection (pipelined in one round trip on
        PostgreSQL; the append is not run if the put failed)."""
        args = self._put_args(session_id, records, (), ttl)
        append = self._append(session_id, messages, ttl)
        if not self._ready:
            self.setup()
        ops = [*(self._put(session_id, args) if args is not None else []),
               *([append] if append is not None else [])]
        if ops:
            self._run_all(ops)

    async def aappend_with_records(self, session_id: str, messages: Sequence[BaseMessage],
                                   records: Mapping[str, bytes], *,
                                   ttl: float | None = None) -> None:
        args = self._put_args(session_id, records, (), ttl)
        append = self._append(session_id, messages, ttl)
        if not self._ready:
            await self.asetup()
        ops = [*(self._put(session_id, args) if args is not None else []),
               *([append] if append is not None else [])]
        if ops:
            await self._arun_all(ops)

    def get_records(self, session_id: str, keys: Collection[str]) -> dict[str, bytes]:
        op = self._get_records(session_id, keys)
        return {} if op is None else self._run(op)

    def scan_records(self, session_id: str, prefix: str = "", *, after: str | None = None,
                     before: str | None = None, limit: int | None = None,
                     reverse: bool = False, keys_only: bool = False
                     ) -> list[tuple[str, bytes]]:
        op = self._scan(session_id, prefix, after, before, limit, reverse, keys_only)
        return [] if op is None else self._run(op)

    def delete_records(self, session_id: str, keys: Collection[str] | None = None, *,
                       prefix: str | None = None) -> None:
        op = self._delete_records(session_id, keys, prefix)
        if op is not None:
            self._run(op)

    # -- async ---------------------------------------------------------------------------

    async def aput_records(self, session_id: str, records: Mapping[str, bytes], *,
                           delete: Collection[str] = (), ttl: float | None = None) -> None:
        args = self._put_args(session_id, records, delete, ttl)
        if args is not None:
            if not self._ready:
                await self.asetup()
            await self._arun_all(self._put(session_id, args))

    async def aget_records(self, session_id: str, keys: Collection[str]) -> dict[str, bytes]:
        op = self._get_records(session_id, keys)
        return {} if op is None else await self._arun(op)

    async def ascan_records(self, session_id: str, prefix: str = "", *,
                            after: str | None = None, before: str | None = None,
                            limit: int | None = None, reverse: bool = False,
                            keys_only: bool = False) -> list[tuple[str, bytes]]:
        op = self._scan(session_id, prefix, after, before, limit, reverse, keys_only)
        return [] if op is None else await self._arun(op)

    async def adelete_records(self, session_id: str, keys: Collection[str] | None = None, *,
                              prefix: str | None = None) -> None:
        op = self._delete_records(session_id, keys, prefix)
        if op is not None:
            await self._arun(op)
