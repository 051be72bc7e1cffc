"""``cosmos://`` — sessions in Azure Cosmos DB (NoSQL API), one document per message.

URL: ``cosmos://ACCOUNT:KEY@HOST[:PORT]/DATABASE/CONTAINER?ttl=…`` — the password is the
account key (URL-quote it: keys contain ``/``, ``+`` and ``=``; without one, the
``COSMOS_KEY`` environment variable is used), the user part is ignored (write the
account name). Defaults: port 443, database ``threadline``, container
``threadline_messages``. Options: ``verify`` (check the TLS certificate, default true),
``tls`` (false: plain HTTP), ``connect_timeout``, ``emulator`` (see below), ``ttl``,
and ``credential`` (keyword only: an ``azure.identity`` token credential instead of a key).

Layout — every document of a session shares one logical partition (``/pk`` = the
SHA-256 of the session id, because a partition key value is at most 2 KB and session ids
may be 16 KB), so a session is never capped by the 2 MB item limit:

* the *head* ``{"id": "~session", "t": "h", "sid", "e", "n", "c", "u", "x", "ttl"}`` —
  session id, incarnation epoch, message count, created / updated / expires-at (epoch
  seconds) and Cosmos' per-item ``ttl``;
* one document per message ``{"id": "<epoch:13>.<seq:010>", "t": "m", "e", "s", "m"}``
  with the LangChain message dict as compact JSON text in ``m``.

Ids of one partition sort in write order and ``"~session"`` sorts after them all, so one
query — ``SELECT TOP N+1 * … WHERE c.pk = @pk ORDER BY c.id DESC`` — returns the head and
the newest N messages: a read is one round trip.

Writes: an append is ONE transactional batch (``execute_item_batch``): the head replaced
with ``If-Match: <etag>`` (or created, for a new session) followed by the message
creates. A concurrent writer makes the etag stale, the whole batch fails with 412 (or 409)
and is retried on a fresh head with jittered backoff, so no writer's message is lost and
each batch stays whole. The head's etag is cached per store, so a turn (read, then
append) costs two round trips. A batch holds at most 100 operations: a larger append is
written as several transactions of 99 messages.

TTL: setup creates the container with ``default_ttl = -1`` (expiry on, items live forever
unless they say otherwise) and the head carries ``ttl``, refreshed by each append, so
Cosmos DB deletes an idle session's head by itself. A session is visible only through its
head, so it vanishes at once; its message documents do not carry a ttl (an item's ttl
counts from its own last write, and refreshing it on every message at every turn would
rewrite the whole session) and are removed by :meth:`CosmosStore.purge_expired` — run it
periodically. Reads also compare ``x`` with the clock, for servers that do not enforce
TTL. A session re-created after expiry gets a new epoch, so old messages never resurface.

``emulator=true`` works around the gaps of ``@vercel/cosmosdb-server`` (the test
suite's server): its batches accept only creates and run them one by one (a failed create
stops the rest, and node runs one request at a time, so a batch of creates is still all
or nothing), so the message creates are the lock — ids that collide fail with 409 — and
the head is bumped afterwards with its own etag-checked replace. Counts are read as
max(head, newest message). The production path (head replace inside the batch) is
tested as a pure function (:func:`plan_append`).

>>> store = open_store("cosmos://acct:KEY@acct.documents.azure.com/chat/messages")
>>> store.append("s1", [HumanMessage("hi")])
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import os
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Generator, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlsplit

from threadline._errors import (
    ConfigurationError,
    InputError,
    MissingDependencyError,
    StoreConnectionError,
    StoreError,
)
from threadline._messages import BaseMessage
from threadline.stores._base import (
    SessionInfo,
    SessionPage,
    Store,
    StoreHistory,
    decode_message,
    encode_message,
    session_key,
    validate_session_id,
    validate_ttl,
)
from threadline.stores._memory import check_messages, check_page_args
from threadline.stores._url import StoreURL

try:
    from azure.core import MatchConditions
    from azure.core.exceptions import AzureError, ServiceRequestError, ServiceResponseError
    from azure.cosmos import CosmosClient, PartitionKey, exceptions
    from azure.cosmos.aio import CosmosClient as AsyncCosmosClient
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingDependencyError("azure-cosmos", "cosmos") from exc

__all__ = ["CosmosDBChatMessageHistory", "CosmosStore", "parse_connection_string",
           "plan_append"]

T = TypeVar("T")

SCHEMA_VERSION = 1
HEAD_ID = "~session"
META_PK = "~meta"  # never a SHA-256 hex digest
MAX_BATCH = 100  # Cosmos DB's limit of operations per transactional batch
_CHUNK = MAX_BATCH - 1  # room for the head
_ATTEMPTS = 200
_NAME_CHARS = frozenset("/\\?#")
_CACHE_SIZE = 4096


def _connect_timeout(value: Any) -> float:
    seconds = float(value)
    if not seconds > 0:
        raise ValueError(f"connect_timeout must be a positive number of seconds, got {value!r}")
    return seconds


def _name(value: str, what: str) -> str:
    if (not isinstance(value, str) or not 0 < len(value) <= 255 or value != value.strip()
            or _NAME_CHARS & set(value)):
        raise ConfigurationError(
            f"invalid Cosmos DB {what} {value!r}: 1-255 characters, none of '/\\?#', "
            "no leading or trailing spaces"
        )
    return value


def parse_connection_string(text: str) -> tuple[str, str]:
    """``(endpoint, key)`` from ``AccountEndpoint=https://…;AccountKey=…;``."""
    fields: dict[str, str] = {}
    for part in text.split(";"):
        name, sep, value = part.strip().partition("=")
        if sep:
            fields[name.strip().lower()] = value.strip()
    endpoint, key = fields.get("accountendpoint"), fields.get("accountkey")
    if not endpoint or not key:
        raise ConfigurationError(
            "a Cosmos DB connection string looks like "
            "'AccountEndpoint=https://ACCOUNT.documents.azure.com:443/;AccountKey=…;'"
        )
    return endpoint, key


def endpoint_url(endpoint: str, key: str | None, database: str, container: str,
                 **query: str) -> StoreURL:
    """The ``cosmos://`` URL of an ``https://HOST:PORT/`` endpoint, database and container."""
    parts = urlsplit(endpoint)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigurationError(
            f"a Cosmos DB endpoint looks like 'https://ACCOUNT.documents.azure.com:443/', "
            f"got {endpoint!r}"
        )
    if parts.scheme == "http":
        query = {**query, "tls": "false"}
    return StoreURL("cosmos", "key" if key is not None else None, key, parts.hostname,
                    parts.port, f"/{_name(database, 'database')}/{_name(container, 'container')}",
                    tuple(query.items()))


# -- documents (pure) -----------------------------------------------------------------------


def partition_key(session_id: str) -> str:
    return hashlib.sha256(validate_session_id(session_id).encode("utf-8", "surrogatepass")
                          ).hexdigest()


def message_id(epoch: int, seq: int) -> str:
    return f"{epoch:013d}.{seq:010d}"


def _expired(head: dict[str, Any], now: float) -> bool:
    return head.get("x") is not None and float(head["x"]) <= now


def _clean(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if not k.startswith("_")}


@dataclass(slots=True)
class SessionState:
    """What a store knows of a session's partition: its head and newest sequence."""

    head: dict[str, Any] | None = None
    newest: int = 0  # the newest message's seq of the head's epoch
    written: float = 0.0  # and its write time

    @classmethod
    def from_docs(cls, docs: Sequence[dict[str, Any]]) -> SessionState:
        """From the answer of the head-first query (``ORDER BY c.id DESC``)."""
        head = docs[0] if docs and docs[0].get("id") == HEAD_ID else None
        if head is not None:
            for doc in docs[1:]:
                if doc.get("e") == head.get("e"):
                    return cls(head, int(doc["s"]), float(doc.get("w") or 0))
        return cls(head)

    def live(self, now: float) -> bool:
        return self.head is not None and not _expired(self.head, now)

    def count(self) -> int:
        assert self.head is not None
        return max(int(self.head.get("n") or 0), self.newest)

    def updated(self) -> float:
        assert self.head is not None
        return max(float(self.head["u"]), self.written)


@dataclass(slots=True)
class AppendPlan:
    """The operations of one append transaction."""

    head_op: tuple[Any, ...]
    message_ops: list[tuple[Any, ...]]
    head: dict[str, Any]
    epoch: int
    last_seq: int

    def batch(self) -> list[tuple[Any, ...]]:
        """Head first: its If-Match (or create) is the lock of the transaction."""
        return [self.head_op, *self.message_ops]


def _head_body(pk: str, session_id: str, epoch: int, count: int, created: float,
               updated: float, expires: float | None, now: float) -> dict[str, Any]:
    head: dict[str, Any] = {"id": HEAD_ID, "pk": pk, "t": "h", "sid": session_id, "e": epoch,
                            "n": count, "c": created, "u": updated, "x": expires}
    if expires is not None:
        # Cosmos DB's ttl counts whole seconds from this write.
        head["ttl"] = max(1, math.ceil(expires - now))
    return head


def plan_append(state: SessionState, session_id: str, texts: Sequence[str], now: float,
                ttl: float | None, *, count: int | None = None) -> AppendPlan:
    """The head and message documents of appending ``texts`` to a session (pure).

    A live head is replaced with If-Match on its etag; a missing head is created; an
    expired one is replaced by a new incarnation (new epoch, count from 0). ``count``
    overrides the head's message count (the emulator bumps the head separately).
    """
    pk = partition_key(session_id)
    head = state.head
    if head is not None and state.live(now):
        epoch, start = int(head["e"]), state.count()
        created, expires = float(head["c"]), head.get("x")
    else:
        epoch = max(int(now * 1000), int(head["e"]) + 1 if head is not None else 0)
        start, created, expires = 0, now, None
    if ttl is not None:
        expires = now + ttl
    last = start + len(texts)
    body = _head_body(pk, session_id, epoch, last if count is None else count, created,
                      now, expires, now)
    head_op: tuple[Any, ...] = (
        ("create", (body,)) if head is None
        else ("replace", (HEAD_ID, body), {"if_match_etag": head["_etag"]}))
    messages = [("create", ({"id": message_id(epoch, start + i), "pk": pk, "t": "m",
                             "e": epoch, "s": start + i, "w": now, "m": text},))
                for i, text in enumerate(texts, 1)]
    return AppendPlan(head_op, messages, body, epoch, last)


# -- requests an operation yields to a driver --------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Query:
    sql: str
    params: dict[str, Any]
    pk: str | None  # None: across partitions


@dataclass(frozen=True, slots=True)
class _Batch:
    pk: str
    ops: list[tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class _Write:
    kind: str  # create, replace, delete
    pk: str
    id: str
    body: dict[str, Any] | None = None
    etag: str | None = None


@dataclass(frozen=True, slots=True)
class _Sleep:
    seconds: float


@dataclass(frozen=True, slots=True)
class _Ensure:
    """Create the database and container if missing; answers the container's properties."""


@dataclass(frozen=True, slots=True)
class _EnableTtl:
    """Turn expiry on (default_ttl = -1) on an existing container."""


# Replies: _Query -> list of docs; _Batch / _Write -> (status, body or results).
Operation = Generator[Any, Any, T]
_OK = range(200, 300)

_TOP_SQL = "SELECT TOP @k * FROM c WHERE c.pk = @pk ORDER BY c.id DESC"
_ALL_SQL = "SELECT * FROM c WHERE c.pk = @pk ORDER BY c.id DESC"


def _backoff(attempt: int) -> _Sleep:
    return _Sleep(random.uniform(0, min(0.25, 0.01 * 2 ** min(attempt, 5))))


@dataclass
class _Context:
    emulator: bool
    ttl: float | None
    cache: OrderedDict[str, SessionState] = field(default_factory=OrderedDict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def cached(self, pk: str) -> SessionState | None:
        with self.lock:
            return self.cache.get(pk)

    def remember(self, pk: str, state: SessionState | None) -> None:
        with self.lock:
            if state is None:
                self.cache.pop(pk, None)
                return
            self.cache[pk] = state
            self.cache.move_to_end(pk)
            while len(self.cache) > _CACHE_SIZE:
                self.cache.popitem(last=False)


def _read_state(pk: str, k: int = 2) -> Operation[SessionState]:
    docs = yield _Query(_TOP_SQL, {"@k": k, "@pk": pk}, pk)
    return SessionState.from_docs(docs)


def _setup_op() -> Operation[None]:
    props = yield _Ensure()
    paths = (props.get("partitionKey") or {}).get("paths")
    if paths != ["/pk"]:
        hint = (" — LangChain's CosmosDBChatMessageHistory layout; use another container"
                if paths == ["/user_id"] else "")
        raise ConfigurationError(
            f"the container is partitioned on {paths}, threadline needs ['/pk']{hint}")
    if props.get("defaultTtl") is None:
        yield _EnableTtl()
    doc = {"id": "schema", "pk": META_PK, "t": "schema", "v": SCHEMA_VERSION}
    status, _ = yield _Write("create", META_PK, "schema", doc)
    if status == 409:
        (found,) = yield _Query("SELECT * FROM c WHERE c.pk = @pk AND c.id = 'schema'",
                                {"@pk": META_PK}, META_PK)
        if int(found.get("v", 0)) > SCHEMA_VERSION:
            raise StoreError(
                f"the container uses layout version {found['v']}, newer than this threadline "
                f"understands ({SCHEMA_VERSION}); upgrade threadline")
    elif status not in _OK:
        raise StoreError(f"could not write the schema document (HTTP {status})")


def _append_op(ctx: _Context, session_id: str, messages: Sequence[BaseMessage],
               ttl: float | None) -> Operation[None]:
    sid = validate_session_id(session_id)
    texts = [encode_message(m) for m in check_messages(messages)]
    for start in range(0, len(texts), _CHUNK):
        yield from _append_chunk(ctx, sid, texts[start:start + _CHUNK], ttl)


def _append_chunk(ctx: _Context, sid: str, texts: list[str],
                  ttl: float | None) -> Operation[None]:
    pk = partition_key(sid)
    # The emulator path writes the messages without touching the head, so nothing would
    # notice a cached head deleted meanwhile: it always reads the head first.
    state = None if ctx.emulator else ctx.cached(pk)
    for attempt in range(_ATTEMPTS):
        if state is None:
            state = yield from _read_state(pk)
        now = time.time()
        if not ctx.emulator:
            plan = plan_append(state, sid, texts, now, ttl)
            status, results = yield _Batch(pk, plan.batch())
            if status in _OK:
                ctx.remember(pk, SessionState(results[0]["resourceBody"], plan.last_seq))
                return
        else:
            done = yield from _emulator_append(ctx, state, sid, texts, ttl, now)
            if done:
                return
            status = 409
        if status not in (404, 409, 412):
            raise StoreError(f"appending to a session failed (HTTP {status})")
        state = None
        ctx.remember(pk, None)
        yield _backoff(attempt)
    raise StoreError(f"appending to a session failed: {_ATTEMPTS} conflicting writers in a row")


def _emulator_append(ctx: _Context, state: SessionState, sid: str, texts: list[str],
                     ttl: float | None, now: float) -> Operation[bool]:
    """Messages first (their ids are the lock), then the head; False: start again."""
    pk = partition_key(sid)
    if not state.live(now):  # a new incarnation: the head first, as the lock on it
        plan = plan_append(state, sid, texts, now, ttl, count=0)
        kind = "create" if state.head is None else "replace"
        status, body = yield _Write(kind, pk, HEAD_ID, plan.head,
                                    None if state.head is None else state.head["_etag"])
        if status not in _OK:
            return False
        state = SessionState(body, 0)
    plan = plan_append(state, sid, texts, now, None)
    status, _ = yield _Batch(pk, plan.message_ops)
    if status not in _OK:
        return False
    if ttl is None:
        # Count and update time are read from the newest message as well.
        ctx.remember(pk, SessionState(state.head, plan.last_seq, now))
        return True
    while True:  # bump the head: count and expiry only grow, whoever writes last
        assert state.head is not None
        if state.head.get("e") != plan.epoch:
            return False  # deleted or re-created meanwhile: our messages are orphans
        now = time.time()
        head = state.head
        expires = now + ttl if ttl is not None else head.get("x")
        if expires is not None and head.get("x") is not None:
            expires = max(float(expires), float(head["x"]))
        body = _head_body(pk, sid, plan.epoch, max(state.count(), plan.last_seq),
                          float(head["c"]), max(now, float(head["u"])), expires, now)
        status, new = yield _Write("replace", pk, HEAD_ID, body, head["_etag"])
        if status in _OK:
            ctx.remember(pk, SessionState(new, plan.last_seq, now))
            return True
        state = yield from _read_state(pk)
        if state.head is None:
            return False


def _get_op(session_id: str, last: int | None) -> Operation[list[BaseMessage]]:
    pk = partition_key(session_id)
    if last is not None and (isinstance(last, bool) or not isinstance(last, int) or last < 0):
        raise InputError(f"last must be a non-negative int or None, got {last!r}")
    if last == 0:
        return []
    if last is None:
        docs = yield _Query(_ALL_SQL, {"@pk": pk}, pk)
    else:
        docs = yield _Query(_TOP_SQL, {"@k": last + 1, "@pk": pk}, pk)
    state = SessionState.from_docs(docs)
    if state.head is None or not state.live(time.time()):
        return []
    epoch = state.head["e"]
    texts = [doc["m"] for doc in docs[1:] if doc.get("t") == "m" and doc.get("e") == epoch]
    return [decode_message(text) for text in reversed(texts)]


def _utc(value: Any) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(float(value), UTC)


def _info_op(session_id: str) -> Operation[SessionInfo | None]:
    state = yield from _read_state(partition_key(session_id))
    if state.head is None or not state.live(time.time()):
        return None
    head = state.head
    return SessionInfo(session_id, state.count(), _utc(head["c"]), _utc(state.updated()),
                       _utc(head.get("x")))


def _delete_messages(ctx: _Context, pk: str, max_epoch: int,
                     epoch: int | None = None) -> Operation[int]:
    """Delete the messages of epochs up to ``max_epoch`` (or of exactly ``epoch``)."""
    if epoch is None:
        sql = "SELECT c.id FROM c WHERE c.pk = @pk AND c.t = 'm' AND c.e <= @e"
        params = {"@pk": pk, "@e": max_epoch}
    else:
        sql = "SELECT c.id FROM c WHERE c.pk = @pk AND c.t = 'm' AND c.e = @e"
        params = {"@pk": pk, "@e": epoch}
    docs = yield _Query(sql, params, pk)
    ids = [doc["id"] for doc in docs]
    if ctx.emulator:  # its batches do not take deletes
        for doc_id in ids:
            yield _Write("delete", pk, doc_id)
    else:
        for start in range(0, len(ids), MAX_BATCH):
            yield _Batch(pk, [("delete", (doc_id,)) for doc_id in ids[start:start + MAX_BATCH]])
    return len(ids)


def _delete_op(ctx: _Context, session_id: str) -> Operation[bool]:
    pk = partition_key(session_id)
    ctx.remember(pk, None)
    state = yield from _read_state(pk, 1)
    if state.head is None:
        return False
    live = state.live(time.time())
    # The head first: the session is gone at once; left-over messages are orphans that
    # purge_expired() removes if we fail half-way.
    yield _Write("delete", pk, HEAD_ID)
    yield from _delete_messages(ctx, pk, int(state.head["e"]))
    ctx.remember(pk, None)
    return live


def _list_op(prefix: str, limit: int, cursor: str | None) -> Operation[SessionPage]:
    check_page_args(prefix, limit, cursor)
    params: dict[str, Any] = {"@k": limit + 1, "@p": prefix, "@now": time.time(),
                              "@cur": cursor if cursor is not None and cursor >= prefix else ""}
    docs = yield _Query(
        "SELECT TOP @k c.sid FROM c WHERE c.t = 'h' AND STARTSWITH(c.sid, @p) "
        "AND c.sid > @cur AND (IS_NULL(c.x) OR c.x > @now) ORDER BY c.sid", params, None)
    ids = [doc["sid"] for doc in docs]
    return SessionPage(ids[:limit], ids[limit - 1] if len(ids) > limit else None)


def _expire_op(ctx: _Context, session_id: str, ttl: float | None) -> Operation[None]:
    pk = partition_key(session_id)
    ttl = validate_ttl(ttl)
    for attempt in range(_ATTEMPTS):
        state = yield from _read_state(pk)
        now = time.time()
        if state.head is None or not state.live(now):
            return
        head = state.head
        body = _head_body(pk, session_id, int(head["e"]), state.count(), float(head["c"]),
                          state.updated(), None if ttl is None else now + ttl, now)
        status, new = yield _Write("replace", pk, HEAD_ID, body, head["_etag"])
        if status in _OK:
            ctx.remember(pk, SessionState(new, state.newest))
            return
        ctx.remember(pk, None)
        yield _backoff(attempt)
    raise StoreError("setting a session's expiry failed: too many conflicting writers")


def _purge_op(ctx: _Context) -> Operation[int]:
    now = time.time()
    purged = 0
    # Heads that are expired but still there (servers that do not enforce TTL, or
    # Cosmos DB's background deletion not done yet).
    heads = yield _Query("SELECT * FROM c WHERE c.t = 'h' AND NOT IS_NULL(c.x) AND c.x <= @now",
                         {"@now": now}, None)
    for head in heads:
        status, _ = yield _Write("delete", head["pk"], HEAD_ID, None, head["_etag"])
        if status in _OK:  # 412: appended meanwhile, alive again
            ctx.remember(head["pk"], None)
            yield from _delete_messages(ctx, head["pk"], int(head["e"]))
            purged += 1
    # Orphans: messages of an incarnation whose head is gone (Cosmos DB expired it) or is
    # another one. The first messages are read BEFORE the heads, and a head is always
    # written before its first message, so a live incarnation is never taken for one.
    firsts = yield _Query("SELECT c.pk, c.e FROM c WHERE c.t = 'm' AND c.s = 1", {}, None)
    if firsts:
        live = yield _Query("SELECT c.pk, c.e FROM c WHERE c.t = 'h'", {}, None)
        epochs = {doc["pk"]: doc["e"] for doc in live}
        for doc in firsts:
            if epochs.get(doc["pk"]) != doc["e"]:
                ctx.remember(doc["pk"], None)
                yield from _delete_messages(ctx, doc["pk"], 0, epoch=int(doc["e"]))
                purged += doc["pk"] not in epochs
    return purged


# -- the store --------------------------------------------------------------------------------


class CosmosStore(Store):
    """Sessions in an Azure Cosmos DB container.

    >>> store = open_store("cosmos://acct:KEY@acct.documents.azure.com/chat/messages",
    ...                    ttl=86400)
    >>> store.history("user-1").add_user_message("hi")

    Options: ``verify`` (TLS certificate check, default true), ``tls`` (default true),
    ``connect_timeout`` (seconds, default 5), ``emulator`` (work around
    ``@vercel/cosmosdb-server``), ``credential`` (a token credential object), ``ttl``.
    """

    OPTIONS: ClassVar[dict[str, Any]] = {
        **Store.OPTIONS,
        "verify": bool,
        "tls": bool,
        "connect_timeout": _connect_timeout,
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
        timeout = self.options.get("connect_timeout") or 5.0
        return {"connection_verify": self.options.get("verify", True),
                "connection_timeout": timeout, "read_timeout": max(30.0, timeout),
                "retry_total": 2, "retry_connect": 2, "retry_backoff_factor": 0.1,
                "retry_backoff_max": 1}

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except (ServiceRequestError, ServiceResponseError) as exc:
            raise StoreConnectionError(
                f"cannot reach Cosmos DB at {self.endpoint}: {type(exc).__name__}") from exc
        except exceptions.CosmosHttpResponseError as exc:
            if exc.status_code in (401, 403):
                raise StoreConnectionError(
                    f"Cosmos DB at {self.endpoint} refused the key (HTTP {exc.status_code})"
                ) from exc
            raise StoreError(f"Cosmos DB request failed (HTTP {exc.status_code}): "
                             f"{str(exc.message).splitlines()[0][:200]}") from exc
        except AzureError as exc:
            raise StoreError(f"Cosmos DB request failed: {type(exc).__name__}") from exc

    # -- the sync driver ----------------------------------------------------------------------

    def _sync_container(self) -> Any:
        if self._closed:
            raise StoreError("this store is closed")
        with self._lock:
            if self._container is None:
                _quiet_insecure_warning(self.options)
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
        match request:
            case _Query(sql, params, pk):
                args = [{"name": k, "value": v} for k, v in params.items()]
                if pk is None:
                    return list(container.query_items(sql, parameters=args,
                                                      enable_cross_partition_query=True))
                return list(container.query_items(sql, parameters=args, partition_key=pk))
            case _Batch(pk, ops):
                try:
                    return 200, container.execute_item_batch(ops, partition_key=pk)
                except exceptions.CosmosBatchOperationError as exc:
                    return _batch_status(exc), None
            case _Write():
                try:
                    return 200, self._write(container, request)
                except exceptions.CosmosHttpResponseError as exc:
                    if exc.status_code in (404, 409, 412):
                        return exc.status_code, None
                    raise
            case _Sleep(seconds):
                time.sleep(seconds)
                return None
            case _Ensure():
                assert self._client is not None
                database = self._client.create_database_if_not_exists(self.database)
                return database.create_container_if_not_exists(
                    self.container_name, partition_key=PartitionKey("/pk"),
                    default_ttl=-1).read()
            case _EnableTtl():
                assert self._client is not None
                self._client.get_database_client(self.database).replace_container(
                    self.container_name, partition_key=PartitionKey("/pk"), default_ttl=-1)
                return None
        raise AssertionError(request)

    @staticmethod
    def _write(container: Any, request: _Write) -> Any:
        condition = {} if request.etag is None else {
            "etag": request.etag, "match_condition": MatchConditions.IfNotModified}
        if request.kind == "create":
            return container.create_item(request.body)
        if request.kind == "replace":
            return container.replace_item(request.id, request.body, **condition)
        container.delete_item(request.id, partition_key=request.pk, **condition)
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
        match request:
            case _Query(sql, params, pk):
                args = [{"name": k, "value": v} for k, v in params.items()]
                if pk is None:
                    items = container.query_items(sql, parameters=args)
                else:
                    items = container.query_items(sql, parameters=args, partition_key=pk)
                return [item async for item in items]
            case _Batch(pk, ops):
                try:
                    return 200, await container.execute_item_batch(ops, partition_key=pk)
                except exceptions.CosmosBatchOperationError as exc:
                    return _batch_status(exc), None
            case _Write():
                try:
                    return 200, await self._awrite(container, request)
                except exceptions.CosmosHttpResponseError as exc:
                    if exc.status_code in (404, 409, 412):
                        return exc.status_code, None
                    raise
            case _Sleep(seconds):
                await asyncio.sleep(seconds)
                return None
        raise AssertionError(request)

    @staticmethod
    async def _awrite(container: Any, request: _Write) -> Any:
        condition = {} if request.etag is None else {
            "etag": request.etag, "match_condition": MatchConditions.IfNotModified}
        if request.kind == "create":
            return await container.create_item(request.body)
        if request.kind == "replace":
            return await container.replace_item(request.id, request.body, **condition)
        await container.delete_item(request.id, partition_key=request.pk, **condition)
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
        self._drive(_setup_op())
        self._ready = True

    async def asetup(self) -> None:
        # Database and container management stays on the sync client (once per store).
        from threadline._concurrency import run_sync

        await run_sync(self.setup)

    def append(self, session_id: str, messages: Sequence[BaseMessage], *,
               ttl: float | None = None) -> None:
        operation = _append_op(self._ctx, session_id, messages, validate_ttl(ttl) or self.ttl)
        # Threads of one process take turns per session: optimistic concurrency still
        # guards against other processes, but threads no longer waste round trips on
        # conflicts with each other.
        with self._stripes[hash(session_id) % len(self._stripes)]:
            self._run(operation)

    def get_messages(self, session_id: str, *, last: int | None = None) -> list[BaseMessage]:
        return self._run(_get_op(session_id, last))

    def delete_session(self, session_id: str) -> bool:
        return self._run(_delete_op(self._ctx, session_id))

    def list_sessions(self, *, prefix: str = "", limit: int = 100,
                      cursor: str | None = None) -> SessionPage:
        return self._run(_list_op(prefix, limit, cursor))

    def session_info(self, session_id: str) -> SessionInfo | None:
        return self._run(_info_op(session_id))

    def expire(self, session_id: str, ttl: float | None) -> None:
        self._run(_expire_op(self._ctx, session_id, ttl))

    def purge_expired(self) -> int:
        """Delete expired sessions still present and orphaned messages; sessions removed."""
        return self._run(_purge_op(self._ctx))

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
                                    validate_ttl(ttl) or self.ttl))

    async def aget_messages(self, session_id: str, *,
                            last: int | None = None) -> list[BaseMessage]:
        return await self._arun(_get_op(session_id, last))

    async def adelete_session(self, session_id: str) -> bool:
        return await self._arun(_delete_op(self._ctx, session_id))

    async def alist_sessions(self, *, prefix: str = "", limit: int = 100,
                             cursor: str | None = None) -> SessionPage:
        return await self._arun(_list_op(prefix, limit, cursor))

    async def asession_info(self, session_id: str) -> SessionInfo | None:
        return await self._arun(_info_op(session_id))

    async def aexpire(self, session_id: str, ttl: float | None) -> None:
        await self._arun(_expire_op(self._ctx, session_id, ttl))

    async def apurge_expired(self) -> int:
        return await self._arun(_purge_op(self._ctx))

    async def aclose(self) -> None:
        entry = self._loop_clients.get(asyncio.get_running_loop())
        if entry is not None:
            entry[2].cancel()
            with suppress(asyncio.CancelledError):
                await entry[2]
        self.close()

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


def _quiet_insecure_warning(options: dict[str, Any]) -> None:
    # verify=false is an explicit choice (a local emulator's self-signed certificate);
    # urllib3 would otherwise warn on every request.
    if options.get("verify", True) is False:
        import warnings

        with suppress(ImportError):
            from urllib3.exceptions import InsecureRequestWarning

            warnings.filterwarnings("ignore", category=InsecureRequestWarning)


def _batch_status(exc: Any) -> int:
    responses = exc.operation_responses or []
    index = exc.error_index if exc.error_index is not None else 0
    if 0 <= index < len(responses):
        return int(responses[index].get("statusCode") or exc.status_code or 500)
    return int(exc.status_code or 500)


class CosmosDBChatMessageHistory(StoreHistory):
    """LangChain's ``CosmosDBChatMessageHistory``, with no lost writes and no size cap.

    Same constructor as ``langchain_community.chat_message_histories
    .CosmosDBChatMessageHistory``; the session is ``session_key(user_id, session_id)``.
    Objects created per turn share one store (one client) per endpoint and container.

    >>> history = CosmosDBChatMessageHistory(
    ...     "https://acct.documents.azure.com:443/", "chat", "messages",
    ...     session_id="s1", user_id="u1", credential=KEY)
    >>> history.add_user_message("hi")
    """

    def __init__(self, cosmos_endpoint: str, cosmos_database: str, cosmos_container: str,
                 session_id: str, user_id: str, credential: Any = None,
                 connection_string: str | None = None, ttl: int | None = None,
                 cosmos_client_kwargs: dict[str, Any] | None = None, *,
                 store_options: dict[str, Any] | None = None) -> None:
        from threadline.stores import shared_store

        options = dict(store_options or {})
        client_kwargs = dict(cosmos_client_kwargs or {})
        if "connection_verify" in client_kwargs:
            options.setdefault("verify", bool(client_kwargs.pop("connection_verify")))
        if client_kwargs:
            raise InputError(f"cosmos_client_kwargs {sorted(client_kwargs)} are not supported "
                             "(only connection_verify); use store_options")
        key: str | None = None
        if credential is not None:
            if isinstance(credential, str):
                key = credential
            else:
                options["credential"] = credential
        elif connection_string is not None:
            cosmos_endpoint, key = parse_connection_string(connection_string)
        else:
            raise InputError("Either a connection string or a credential must be set.")
        url = endpoint_url(cosmos_endpoint, key, cosmos_database, cosmos_container)
        self.cosmos_endpoint = cosmos_endpoint
        self.cosmos_database = cosmos_database
        self.cosmos_container = cosmos_container
        self.user_id = user_id
        self.conversation_id = session_id
        # LangChain treats a falsy ttl as "no expiry".
        super().__init__(shared_store(url, **options), session_key(user_id, session_id),
                         ttl=ttl or None)

    def prepare_cosmos(self) -> None:
        """Create the database and container if needed (LangChain's name for setup)."""
        self.store.setup()

    def load_messages(self) -> None:
        """Nothing to do: messages are read from the store on each access."""

    def upsert_messages(self) -> None:
        """Nothing to do: each add is written at once."""

    def __enter__(self) -> CosmosDBChatMessageHistory:
        self.prepare_cosmos()
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def __repr__(self) -> str:
        return (f"CosmosDBChatMessageHistory({self.cosmos_endpoint!r}, "
                f"{self.cosmos_database!r}, {self.cosmos_container!r}, "
                f"session_id={self.conversation_id!r}, user_id={self.user_id!r})")
