"""``cosmos://`` — sessions in Azure Cosmos DB (NoSQL API), one document per message.

URL: ``cosmos://ACCOUNT:KEY@HOST[:PORT]/DATABASE/CONTAINER?ttl=…`` — the password is the
account key (URL-quote it: keys contain ``/``, ``+`` and ``=``; without one, the
``COSMOS_KEY`` environment variable is used), the user part is ignored (write the
account name). Defaults: port 443, database ``threadline``, container
``threadline_messages``. Options: ``verify`` (check the TLS certificate, default true),
``tls`` (false: plain HTTP), ``timeout``, ``connect_timeout``, ``emulator`` (see below),
``ttl``, and ``credential`` (keyword only: an ``azure.identity`` token credential instead
of a key).

Layout — every document of a session shares one logical partition (``/pk`` = the
SHA-256 of the session id, because a partition key value is at most 2 KB and session ids
may be 16 KB), so a session is never capped by the 2 MB item limit:

* the *head* ``{"id": "~session", "t": "h", "sid", "e", "n", "c", "u", "x", "ttl", "r"}``
  — session id, incarnation epoch, message count, created / updated / expires-at (epoch
  seconds), Cosmos' per-item ``ttl`` and the recent-order key; it is the session's meta
  document, with its title, metadata, owner, parent and fork point when set (see
  :mod:`threadline.stores.cosmos._session_docs`: listing and stats; search scans);
* one document per message ``{"id": "<epoch:13>.<seq:010>", "t": "m", "e", "s", "m"}``
  with the LangChain message dict as compact JSON text in ``m`` (the first of each write
  also carries its token ``k``);
* one *id document* per message id ``{"id": "-<epoch:13>.<sha256 of the id>", "t": "k",
  "e"}``.

Ids of one partition sort in write order and ``"~session"`` sorts after them all, so one
query — ``SELECT TOP N+1 * … WHERE c.pk = @pk AND c.t IN ('h', 'm') ORDER BY c.id DESC``
— returns the head and the newest N messages: a read is one round trip, and never sees
the id documents nor the records. :meth:`CosmosStore.iter_messages` streams a session:
the head, then one query per page (``TOP page_size`` of the head's incarnation, keyset
on the document id).

Writes: an append is ONE transactional batch (``execute_item_batch``): the head replaced
with ``If-Match: <etag>`` (or created, for a new session) followed by the message
creates. A concurrent writer makes the etag stale, the whole batch fails with 412 (or 409)
and is retried on a fresh head with jittered backoff, so no writer's message is lost and
each batch stays whole. The head's etag is cached per store, so a turn (read, then
append) costs two round trips. A batch holds at most 100 operations and ~2 MB: a larger
append is written as several transactions. A message larger than the 2 MB item limit
is refused before anything is sent.

Message ids: each message with an ``id`` also creates its id document in the same
batch. The epoch is part of the document's id, so a deleted or expired session (a new
epoch) forgets its ids, and delete_session / purge_expired remove the documents with
the messages. When an id is already stored the create conflicts (409), the batch
fails whole, one query finds which ids are known and the batch is sent again without
them: a retried turn stores nothing twice, racing retries store each id once.

Lost answers: when the connection drops after an append was sent, the store looks for
the write's token; if it is not there it sends the append once more (the ids make that
safe). A timeout is not retried: it raises :class:`~threadline.StoreTimeoutError`
(the write may or may not have been applied).

Timeouts: ``timeout`` (seconds, default 30) is each request's read timeout and its
deadline, the SDK's retries included; ``connect_timeout`` defaults to min(5, timeout).

TTL: setup creates the container with ``default_ttl = -1`` (expiry on, items live forever
unless they say otherwise) and the head carries ``ttl``, refreshed by each append, so
Cosmos DB deletes an idle session's head by itself. A session is visible only through its
head, so it vanishes at once; its message documents do not carry a ttl (an item's ttl
counts from its own last write, and refreshing it on every message at every turn would
rewrite the whole session) and are removed by :meth:`CosmosStore.purge_expired` — run it
periodically. Reads also compare ``x`` with the clock, for servers that do not enforce
TTL. A session re-created after expiry gets a new epoch, so old messages never resurface.

Records (``put_records`` and the others) are documents of the same partition, ``t`` =
``"r"`` (one per key, id ``"+<sha256 of the key>"``, the key in ``rk`` for ordering and
ranges) and ``"p"`` (the parts of values longer than one ~1.5 MB segment), written as
conditional transactional batches; see :mod:`threadline.stores.cosmos._record_docs` and
:mod:`threadline.stores.cosmos._record_ops`. ``delete_session``, ``expire`` and
``purge_expired`` cover them too.

``emulator=true`` works around the gaps of ``@vercel/cosmosdb-server`` (the test
suite's server): its batches accept only creates and run them one by one (a failed create
stops the rest but keeps the earlier ones, and node runs one request at a time), so the
message creates are the lock — ids that collide fail with 409 — and the head is bumped
afterwards with its own etag-checked replace. Known message ids are looked up before
the batch, and what a failed batch created is deleted again. Counts are read as
max(head, newest message). The emulator announces its own address as the account's
endpoint, so endpoint discovery is off (a proxy or port mapping in front keeps working).
The production path (head replace inside the batch) is tested as a pure function
(:func:`plan_append`).

Modules: the documents and the append plan are in :mod:`threadline.stores.cosmos._docs`,
the operations (generators of requests, shared by the sync and the async driver) in
:mod:`threadline.stores.cosmos._ops` (records: ``_record_docs``, ``_record_ops``;
sessions as objects: ``_session_docs``, ``_session_ops``; setup and layout upgrades:
``_setup``), the SDK's errors in ``_faults``, LangChain's class in
:mod:`threadline.stores.compat._cosmos`; this one is the driver.

>>> store = open_store("cosmos://acct:KEY@acct.documents.azure.com/chat/messages")
>>> store.append("s1", [HumanMessage("hi")])
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, suppress
from typing import Any, ClassVar, TypeVar

from threadline._errors import ConfigurationError, MissingDependencyError, StoreError
from threadline.messages._values import BaseMessage
from threadline.stores._base import (
    SessionInfo,
    SessionPage,
    Store,
    check_limit,
    stream_pages,
    validate_session_id,
    validate_ttl,
)
from threadline.stores._sessions import (
    UNSET,
    Order,
    SessionChanges,
    StoreStats,
    _Unset,
    check_list_args,
    check_session_update,
)
from threadline.stores._url import StoreURL
from threadline.stores.cosmos._docs import _name, partition_key
from threadline.stores.cosmos._faults import (
    batch_failure,
    lost_write,
    quiet_insecure_warning,
    translate_errors,
)
from threadline.stores.cosmos._ops import (
    Operation,
    PageCursor,
    _append_op,
    _Batch,
    _Context,
    _EnableTtl,
    _Ensure,
    _get_op,
    _page_op,
    _Query,
    _Sleep,
    _Write,
)
from threadline.stores.cosmos._record_ops import (
    delete_records_op,
    delete_session_op,
    expire_op,
    get_records_op,
    purge_op,
    put_records_op,
    scan_records_op,
)
from threadline.stores.cosmos._session_ops import (
    list_sessions_op,
    session_info_op,
    stats_op,
    update_session_op,
)
from threadline.stores.cosmos._setup import setup_op

try:
    from azure.core import MatchConditions
    from azure.core.exceptions import ServiceRequestError, ServiceResponseError
    from azure.cosmos import CosmosClient, PartitionKey, exceptions
    from azure.cosmos.aio import CosmosClient as AsyncCosmosClient
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingDependencyError("azure-cosmos", "cosmos") from exc

__all__ = ["CosmosStore"]

T = TypeVar("T")


DEFAULT_TIMEOUT = 30.0


def _seconds(value: Any) -> float:
    seconds = float(value)
    if not seconds > 0:
        raise ValueError(f"must be a positive number of seconds, got {value!r}")
    return seconds


#: Writes are never re-sent by the SDK after a connection failure (it would take some
#: sent ones for unsent): the append checks and retries once itself.
_WRITE_RETRIES: dict[str, Any] = {"retry_connect": 0}


class CosmosStore(Store):
    """Sessions in an Azure Cosmos DB container.

    >>> store = open_store("cosmos://acct:KEY@acct.documents.azure.com/chat/messages",
    ...                    ttl=86400)
    >>> store.history("user-1").add_user_message("hi")

    Options: ``verify`` (TLS certificate check, default true), ``tls`` (default true),
    ``timeout`` (seconds per request, default 30), ``connect_timeout`` (seconds, default
    min(5, timeout)), ``emulator`` (work around ``@vercel/cosmosdb-server``),
    ``credential`` (a token credential object), ``ttl``.
    """

    OPTIONS: ClassVar[dict[str, Any]] = {
        **Store.OPTIONS,
        "verify": bool,
        "tls": bool,
        "timeout": _seconds,
        "connect_timeout": _seconds,
        "emulator": bool,
        "credential": lambda value: value,
    }

    def __init__(self, url: StoreURL | str, **options: Any) -> None:
        super().__init__(url, **options)
        if not self.url.host:
            raise ConfigurationError(
                "a Cosmos DB URL names its host: cosmos://ACCOUNT:KEY@HOST:PORT/DATABASE/"
                f"CONTAINER, got {self.url.render()!r}")
        parts = [p for p in self.url.path.split("/") if p]
        if len(parts) > 2:
            raise ConfigurationError(
                f"a Cosmos DB URL path is /DATABASE/CONTAINER, got {self.url.path!r}")
        self.database = _name(parts[0] if parts else "threadline", "database")
        self.container_name = _name(parts[1] if len(parts) > 1 else "threadline_messages",
                                    "container")
        scheme = "https" if self.options.get("tls", True) else "http"
        host = f"[{self.url.host}]" if ":" in self.url.host else self.url.host
        self.endpoint = f"{scheme}://{host}:{self.url.port or 443}/"
        credential = self.options.get("credential")
        if credential is None:
            credential = self.url.password or os.environ.get("COSMOS_KEY")
        if not credential:
            raise ConfigurationError(
                "no Cosmos DB key: put it in the URL's password "
                "(cosmos://ACCOUNT:KEY@HOST/DB/CONTAINER, URL-quoted) or in COSMOS_KEY")
        self._credential = credential
        self.timeout: float = self.options.get("timeout") or DEFAULT_TIMEOUT
        self.connect_timeout: float = (self.options.get("connect_timeout")
                                       or min(5.0, self.timeout))
        self._ctx = _Context(emulator=bool(self.options.get("emulator")), ttl=self.ttl)
        self._lock = threading.Lock()
        self._stripes = [threading.Lock() for _ in range(64)]
        self._client: CosmosClient | None = None
        self._container: Any = None
        self._ready = False
        self._closed = False
        self._loop_clients: dict[asyncio.AbstractEventLoop, tuple[Any, Any, asyncio.Task[None]]]
        self._loop_clients = {}

    def _client_kwargs(self) -> dict[str, Any]:
        kwargs = {"connection_verify": self.options.get("verify", True),
                  "connection_timeout": self.connect_timeout, "read_timeout": self.timeout,
                  "retry_total": 2, "retry_connect": 2, "retry_backoff_factor": 0.1,
                  "retry_backoff_max": 1}
        if self.options.get("emulator"):
            kwargs["enable_endpoint_discovery"] = False
        return kwargs

    def _errors(self) -> AbstractContextManager[None]:
        return translate_errors(self.endpoint, self.connect_timeout, self.timeout)

    # -- the sync driver ----------------------------------------------------------------------

    def _sync_container(self) -> Any:
        if self._closed:
            raise StoreError("this store is closed")
        with self._lock:
            if self._container is None:
                quiet_insecure_warning(self.options)
                client = CosmosClient(self.endpoint, credential=self._credential,
                                      **self._client_kwargs())
                self._client = client
                self._container = client.get_database_client(self.database) \
                    .get_container_client(self.container_name)
            return self._container

    def _execute(self, request: Any) -> Any:
        for attempt in range(3):
            try:
                return self._execute_once(request)
            except RuntimeError as exc:
                # azure-cosmos refreshes its region routing table while other threads
                # iterate it ("OrderedDict mutated during iteration"); that happens while
                # choosing the endpoint, before anything is sent, so trying again is safe.
                if "during iteration" not in str(exc) or attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _execute_once(self, request: Any) -> Any:
        container = self._sync_container()
        # Each request's deadline, the SDK's retries included.
        deadline: dict[str, Any] = {"timeout": self.timeout}
        match request:
            case _Query(sql, params, pk):
                args = [{"name": k, "value": v} for k, v in params.items()]
                if pk is None:
                    return list(container.query_items(sql, parameters=args,
                                                      enable_cross_partition_query=True,
                                                      **deadline))
                return list(container.query_items(sql, parameters=args, partition_key=pk,
                                                  **deadline))
            case _Batch(pk, ops):
                try:
                    return 200, container.execute_item_batch(ops, partition_key=pk,
                                                             **deadline, **_WRITE_RETRIES)
                except exceptions.CosmosBatchOperationError as exc:
                    return batch_failure(exc)
                except (ServiceRequestError, ServiceResponseError) as exc:
                    return lost_write(self.endpoint, request, exc)
            case _Write():
                try:
                    return 200, self._write(container, request,
                                            {**deadline, **_WRITE_RETRIES})
                except exceptions.CosmosHttpResponseError as exc:
                    if exc.status_code in (404, 409, 412):
                        return exc.status_code, None
                    raise
                except (ServiceRequestError, ServiceResponseError) as exc:
                    return lost_write(self.endpoint, request, exc)
            case _Sleep(seconds):
                time.sleep(seconds)
                return None
            case _Ensure():
                assert self._client is not None
                database = self._client.create_database_if_not_exists(self.database,
                                                                        **deadline)
                return database.create_container_if_not_exists(
                    self.container_name, partition_key=PartitionKey("/pk"),
                    default_ttl=-1, **deadline).read(**deadline)
            case _EnableTtl():
                assert self._client is not None
                self._client.get_database_client(self.database).replace_container(
                    self.container_name, partition_key=PartitionKey("/pk"), default_ttl=-1,
                    **deadline)
                return None
        raise AssertionError(request)

    @staticmethod
    def _write(container: Any, request: _Write, deadline: dict[str, Any]) -> Any:
        condition = {} if request.etag is None else {
            "etag": request.etag, "match_condition": MatchConditions.IfNotModified}
        if request.kind == "create":
            return container.create_item(request.body, **deadline)
        if request.kind == "replace":
            return container.replace_item(request.id, request.body, **condition, **deadline)
        if request.kind == "patch":
            return container.patch_item(request.id, request.pk, request.patch, **condition,
                                        **deadline)
        container.delete_item(request.id, partition_key=request.pk, **condition, **deadline)
        return None

    def _drive(self, operation: Operation[T]) -> T:
        with self._errors():
            reply: Any = None
            try:
                while True:
                    request = operation.send(reply)
                    reply = self._execute(request)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]

    def _run(self, operation: Operation[T]) -> T:
        if not self._ready:
            self.setup()
        return self._drive(operation)

    # -- the async driver ---------------------------------------------------------------------

    async def _async_container(self) -> Any:
        if self._closed:
            raise StoreError("this store is closed")
        loop = asyncio.get_running_loop()
        entry = self._loop_clients.get(loop)
        if entry is None:
            client = AsyncCosmosClient(self.endpoint, credential=self._credential,
                                       **self._client_kwargs())
            container = client.get_database_client(self.database) \
                .get_container_client(self.container_name)
            # An aiohttp session belongs to its loop: a task holds the client open and
            # closes it when the loop's tasks are cancelled (asyncio.run does that on exit).
            task = loop.create_task(self._hold(loop, client))
            entry = self._loop_clients[loop] = (client, container, task)
        return entry[1]

    async def _hold(self, loop: asyncio.AbstractEventLoop, client: Any) -> None:
        try:
            await loop.create_future()
        finally:
            self._loop_clients.pop(loop, None)
            await client.close()

    async def _aexecute(self, request: Any) -> Any:
        container = await self._async_container()
        deadline: dict[str, Any] = {"timeout": self.timeout}
        match request:
            case _Query(sql, params, pk):
                args = [{"name": k, "value": v} for k, v in params.items()]
                if pk is None:
                    items = container.query_items(sql, parameters=args, **deadline)
                else:
                    items = container.query_items(sql, parameters=args, partition_key=pk,
                                                  **deadline)
                return [item async for item in items]
            case _Batch(pk, ops):
                try:
                    return 200, await container.execute_item_batch(
                        ops, partition_key=pk, **deadline, **_WRITE_RETRIES)
                except exceptions.CosmosBatchOperationError as exc:
                    return batch_failure(exc)
                except (ServiceRequestError, ServiceResponseError) as exc:
                    return lost_write(self.endpoint, request, exc)
            case _Write():
                try:
                    return 200, await self._awrite(container, request,
                                                   {**deadline, **_WRITE_RETRIES})
                except exceptions.CosmosHttpResponseError as exc:
                    if exc.status_code in (404, 409, 412):
                        return exc.status_code, None
                    raise
                except (ServiceRequestError, ServiceResponseError) as exc:
                    return lost_write(self.endpoint, request, exc)
            case _Sleep(seconds):
                await asyncio.sleep(seconds)
                return None
        raise AssertionError(request)

    @staticmethod
    async def _awrite(container: Any, request: _Write, deadline: dict[str, Any]) -> Any:
        condition = {} if request.etag is None else {
            "etag": request.etag, "match_condition": MatchConditions.IfNotModified}
        if request.kind == "create":
            return await container.create_item(request.body, **deadline)
        if request.kind == "replace":
            return await container.replace_item(request.id, request.body, **condition,
                                                **deadline)
        if request.kind == "patch":
            return await container.patch_item(request.id, request.pk, request.patch,
                                              **condition, **deadline)
        await container.delete_item(request.id, partition_key=request.pk, **condition,
                                    **deadline)
        return None

    async def _arun(self, operation: Operation[T]) -> T:
        if not self._ready:
            await self.asetup()
        with self._errors():
            reply: Any = None
            try:
                while True:
                    request = operation.send(reply)
                    reply = await self._aexecute(request)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]

    # -- the contract -------------------------------------------------------------------------

    def setup(self) -> None:
        with self._errors():
            self._sync_container()
        self._drive(setup_op())
        self._ready = True

    async def asetup(self) -> None:
        # Database and container management stays on the sync client (once per store).
        from threadline._concurrency import run_sync

        await run_sync(self.setup)

    def append(self, session_id: str, messages: Sequence[BaseMessage], *,
               ttl: float | None = None) -> None:
        operation = _append_op(self._ctx, session_id, messages, validate_ttl(ttl) or self.ttl,
                               self.check_sizes)
        # Threads of one process take turns per session: optimistic concurrency still
        # guards against other processes, but threads no longer waste round trips on
        # conflicts with each other.
        with self._stripes[hash(session_id) % len(self._stripes)]:
            self._run(operation)

    def get_messages(self, session_id: str, *, last: int | None = None,
                     skip_invalid: bool = False) -> list[BaseMessage]:
        return self._run(_get_op(session_id, last, skip_invalid))

    def iter_messages(self, session_id: str, *, page_size: int = 1000,
                      skip_invalid: bool = False) -> Iterator[BaseMessage]:
        """The session's messages, oldest first: the head, then one query per
        ``page_size`` messages."""
        pk = partition_key(session_id)
        size = check_limit(page_size)

        def fetch(cursor: PageCursor | None) -> tuple[list[Any], PageCursor | None]:
            return self._run(_page_op(pk, cursor, size))

        return stream_pages(fetch, session_id=session_id, skip_invalid=skip_invalid)

    def delete_session(self, session_id: str) -> bool:
        return self._run(delete_session_op(self._ctx, session_id))

    def list_sessions(self, *, order: Order = "id", owner: str | None = None,
                      prefix: str = "", metadata: Mapping[str, str] | None = None,
                      limit: int = 100, cursor: str | None = None) -> SessionPage:
        """One query over the heads (see :mod:`threadline.stores.cosmos._session_docs`)."""
        query = check_list_args(order, owner, prefix, metadata, limit, cursor)
        return self._run(list_sessions_op(query))

    def session_info(self, session_id: str) -> SessionInfo | None:
        return self._run(session_info_op(session_id))

    def _update_session(self, session_id: str, changes: SessionChanges) -> None:
        operation = update_session_op(self._ctx, session_id, changes)
        with self._stripes[hash(session_id) % len(self._stripes)]:
            self._run(operation)

    def stats(self) -> StoreStats:
        """Two aggregates over the heads (``COUNT(1)``, ``SUM(c.n)``); bytes unknown."""
        return self._run(stats_op())

    def expire(self, session_id: str, ttl: float | None) -> None:
        self._run(expire_op(self._ctx, session_id, validate_ttl(ttl)))

    def purge_expired(self) -> int:
        """Delete expired sessions still present and orphaned messages; sessions removed."""
        return self._run(purge_op(self._ctx))

    def close(self) -> None:
        self._closed = True
        for loop, (_, _, task) in list(self._loop_clients.items()):
            if not loop.is_closed():
                loop.call_soon_threadsafe(task.cancel)
        self._loop_clients.clear()
        client, self._client, self._container = self._client, None, None
        if client is not None:
            client.close()

    async def aappend(self, session_id: str, messages: Sequence[BaseMessage], *,
                      ttl: float | None = None) -> None:
        await self._arun(_append_op(self._ctx, session_id, list(messages),
                                    validate_ttl(ttl) or self.ttl, self.check_sizes))

    async def aget_messages(self, session_id: str, *, last: int | None = None,
                            skip_invalid: bool = False) -> list[BaseMessage]:
        return await self._arun(_get_op(session_id, last, skip_invalid))

    async def adelete_session(self, session_id: str) -> bool:
        return await self._arun(delete_session_op(self._ctx, session_id))

    async def alist_sessions(self, *, order: Order = "id", owner: str | None = None,
                             prefix: str = "", metadata: Mapping[str, str] | None = None,
                             limit: int = 100, cursor: str | None = None) -> SessionPage:
        query = check_list_args(order, owner, prefix, metadata, limit, cursor)
        return await self._arun(list_sessions_op(query))

    async def asession_info(self, session_id: str) -> SessionInfo | None:
        return await self._arun(session_info_op(session_id))

    async def aupdate_session(self, session_id: str, *,
                              title: str | _Unset | None = UNSET,
                              metadata: Mapping[str, str] | _Unset | None = UNSET,
                              owner: str | _Unset | None = UNSET) -> None:
        validate_session_id(session_id)
        changes = check_session_update(title, metadata, owner)
        await self._arun(update_session_op(self._ctx, session_id, changes))

    async def astats(self) -> StoreStats:
        return await self._arun(stats_op())

    async def aexpire(self, session_id: str, ttl: float | None) -> None:
        await self._arun(expire_op(self._ctx, session_id, validate_ttl(ttl)))

    async def apurge_expired(self) -> int:
        return await self._arun(purge_op(self._ctx))

    async def aclose(self) -> None:
        entry = self._loop_clients.get(asyncio.get_running_loop())
        if entry is not None:
            entry[2].cancel()
            with suppress(asyncio.CancelledError):
                await entry[2]
        self.close()

    # -- records (see threadline.stores.cosmos._record_ops) ---------------------------------

    supports_records = True
    native_async = True

    def put_records(self, session_id: str, records: Mapping[str, bytes], *,
                    delete: Collection[str] = (), ttl: float | None = None) -> None:
        operation = put_records_op(self._ctx, session_id, records, delete, ttl, self.ttl,
                                   self.max_message_bytes)
        with self._stripes[hash(session_id) % len(self._stripes)]:
            self._run(operation)

    def get_records(self, session_id: str, keys: Collection[str]) -> dict[str, bytes]:
        return self._run(get_records_op(session_id, keys))

    def scan_records(self, session_id: str, prefix: str = "", *, after: str | None = None,
                     before: str | None = None, limit: int | None = None,
                     reverse: bool = False, keys_only: bool = False
                     ) -> list[tuple[str, bytes]]:
        return self._run(scan_records_op(session_id, prefix, after, before, limit, reverse,
                                         keys_only))

    def delete_records(self, session_id: str, keys: Collection[str] | None = None, *,
                       prefix: str | None = None) -> None:
        self._run(delete_records_op(self._ctx, session_id, keys, prefix))

    async def aput_records(self, session_id: str, records: Mapping[str, bytes], *,
                           delete: Collection[str] = (), ttl: float | None = None) -> None:
        await self._arun(put_records_op(self._ctx, session_id, records, delete, ttl,
                                        self.ttl, self.max_message_bytes))

    async def aget_records(self, session_id: str, keys: Collection[str]) -> dict[str, bytes]:
        return await self._arun(get_records_op(session_id, keys))

    async def ascan_records(self, session_id: str, prefix: str = "", *,
                            after: str | None = None, before: str | None = None,
                            limit: int | None = None, reverse: bool = False,
                            keys_only: bool = False) -> list[tuple[str, bytes]]:
        return await self._arun(scan_records_op(session_id, prefix, after, before, limit,
                                                reverse, keys_only))

    async def adelete_records(self, session_id: str, keys: Collection[str] | None = None, *,
                              prefix: str | None = None) -> None:
        await self._arun(delete_records_op(self._ctx, session_id, keys, prefix))

    def ping(self) -> None:
        with self._errors():
            self._sync_container()

    def destroy(self) -> None:
        """Delete this store's container (every session in it)."""
        with self._errors():
            self._sync_container()
            assert self._client is not None
            with suppress(exceptions.CosmosResourceNotFoundError):
                self._client.get_database_client(self.database).delete_container(
                    self.container_name)
        self._ready = False
        self._ctx.cache.clear()
