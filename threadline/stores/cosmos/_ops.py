"""Cosmos DB operations (pure): generators that yield requests to a driver.

Each Store operation is a generator (:data:`Operation`) that yields request values
(:class:`_Query`, :class:`_Batch`, :class:`_Write`, :class:`_Sleep`, ...) and receives
the driver's replies; :class:`~threadline.stores.cosmos._store.CosmosStore` runs the same
generator on the sync or the async client, so the logic — optimistic concurrency on the
head's etag, retries with backoff, message ids, the single retry after a lost answer,
the emulator's workarounds — is written once.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from threadline._errors import StoreError
from threadline.messages._values import BaseMessage
from threadline.stores._base import (
    MAX_LAST,
    check_last,
    check_messages,
    decode_messages,
    encode_message,
    validate_session_id,
    validate_ttl,
)
from threadline.stores.cosmos._docs import (
    _ATTEMPTS,
    _CACHE_SIZE,
    HEAD_ID,
    MAX_BATCH,
    Entry,
    SessionState,
    _head_body,
    chunks,
    id_doc_id,
    partition_key,
    plan_append,
)

T = TypeVar("T")

@dataclass(frozen=True, slots=True)
class _Query:
    sql: str
    params: dict[str, Any]
    pk: str | None  # None: across partitions


@dataclass(frozen=True, slots=True)
class _Batch:
    pk: str
    ops: list[tuple[Any, ...]]
    #: Answer a lost reply (connection dropped after sending) with status 0 instead of
    #: raising: the append then checks whether it landed and tries once more.
    lost_ok: bool = False


@dataclass(frozen=True, slots=True)
class _Write:
    kind: str  # create, replace, delete, patch
    pk: str
    id: str
    body: dict[str, Any] | None = None
    etag: str | None = None
    lost_ok: bool = False
    patch: list[dict[str, Any]] | None = None  # the operations of a patch


@dataclass(frozen=True, slots=True)
class BatchFailure:
    """Why a batch failed: the index of the failing operation, and the ids of the
    documents created anyway (only the emulator, whose batches are not atomic)."""

    index: int
    created: list[str]


@dataclass(frozen=True, slots=True)
class _Sleep:
    seconds: float


@dataclass(frozen=True, slots=True)
class _Ensure:
    """Create the database and container if missing; answers the container's properties."""


@dataclass(frozen=True, slots=True)
class _EnableTtl:
    """Turn expiry on (default_ttl = -1) on an existing container."""


# Replies: _Query -> list of docs; _Batch / _Write -> (status, body or results), a failed
# _Batch -> (status, BatchFailure), a lost answer -> (0, the exception).
Operation = Generator[Any, Any, T]
_OK = range(200, 300)
_LOST = 0

# The head and the messages, newest first; never the id documents (t = "k") nor the
# records (t = "r", "p": see _record_docs).
_TOP_SQL = ("SELECT TOP @k * FROM c WHERE c.pk = @pk AND c.t IN ('h', 'm') "
            "ORDER BY c.id DESC")
_ALL_SQL = "SELECT * FROM c WHERE c.pk = @pk AND c.t IN ('h', 'm') ORDER BY c.id DESC"
_IDS_SQL = "SELECT c.id FROM c WHERE c.pk = @pk AND ARRAY_CONTAINS(@ids, c.id)"
_TOKEN_SQL = "SELECT TOP 1 c.id FROM c WHERE c.pk = @pk AND c.k = @k"
# One page of a streamed read: the messages of an incarnation after a document id.
_PAGE_SQL = ("SELECT TOP @k c.id, c.m FROM c WHERE c.pk = @pk AND c.t = 'm' AND c.e = @e "
             "AND c.id > @after ORDER BY c.id")


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


def _append_op(ctx: _Context, session_id: str, messages: Sequence[BaseMessage],
               ttl: float | None, check_sizes: Callable[[Sequence[str]], None]
               ) -> Operation[None]:
    """The append operation; the messages are checked at once (``check_sizes``: the
    store's limit, then the item limit: an oversized one is refused before anything is
    sent, even before the store connects)."""
    sid = validate_session_id(session_id)
    entries: list[Entry] = []
    seen: set[str] = set()
    for message in check_messages(messages):
        if message.id is not None:
            if message.id in seen:
                continue  # an id repeated in one batch is stored once
            seen.add(message.id)
        entries.append((encode_message(message), message.id))
    check_sizes([text for text, _ in entries])
    return _append_chunks(ctx, sid, list(chunks(entries)), ttl)


def _append_chunks(ctx: _Context, sid: str, parts: list[list[Entry]],
                   ttl: float | None) -> Operation[None]:
    for chunk in parts:
        yield from _append_chunk(ctx, sid, chunk, ttl)


def _known_ids(pk: str, epoch: int, chunk: list[Entry]) -> Operation[set[str]]:
    """The message ids of ``chunk`` this incarnation already holds (one query)."""
    wanted = {id_doc_id(epoch, mid): mid for _, mid in chunk if mid is not None}
    if not wanted:
        return set()
    docs = yield _Query(_IDS_SQL, {"@pk": pk, "@ids": list(wanted)}, pk)
    return {wanted[doc["id"]] for doc in docs if doc.get("id") in wanted}


def _append_chunk(ctx: _Context, sid: str, chunk: list[Entry],
                  ttl: float | None) -> Operation[None]:
    pk = partition_key(sid)
    token = uuid.uuid4().hex
    lost = False  # an answer was lost: no second retry
    # The emulator path writes the messages without touching the head, so nothing would
    # notice a cached head deleted meanwhile: it always reads the head first.
    state = None if ctx.emulator else ctx.cached(pk)
    for attempt in range(_ATTEMPTS):
        if state is None:
            state = yield from _read_state(pk)
        now = time.time()
        if ctx.emulator:
            status, detail = yield from _emulator_append(ctx, state, sid, chunk, ttl, now,
                                                         token, not lost)
            if status in _OK:
                return
        else:
            plan = plan_append(state, sid, chunk, now, ttl, token=token)
            status, detail = yield _Batch(pk, plan.batch(), lost_ok=not lost)
            if status in _OK:
                ctx.remember(pk, SessionState(detail[0]["resourceBody"], plan.last_seq))
                return
            if (status == 409 and isinstance(detail, BatchFailure)
                    and plan.is_id_op(detail.index)):
                # Ids already stored (a retry): write the others on the same head.
                known = yield from _known_ids(pk, plan.epoch, chunk)
                chunk = [entry for entry in chunk if entry[1] not in known]
                if not chunk:
                    return
                if known:
                    continue
        if status == _LOST:
            # Sent, but the connection dropped before the answer: the write may have
            # landed. The token on its first message says; otherwise try once more (the
            # message ids keep that retry from storing anything twice).
            found = yield _Query(_TOKEN_SQL, {"@pk": pk, "@k": token}, pk)
            ctx.remember(pk, None)
            if found:
                return
            lost, state = True, None
            continue
        if status not in (404, 409, 412):
            raise StoreError(f"appending to a session failed (HTTP {status})")
        state = None
        ctx.remember(pk, None)
        yield _backoff(attempt)
    raise StoreError(f"appending to a session failed: {_ATTEMPTS} conflicting writers in a row")


def _emulator_append(ctx: _Context, state: SessionState, sid: str, chunk: list[Entry],
                     ttl: float | None, now: float, token: str,
                     lost_ok: bool) -> Operation[tuple[int, Any]]:
    """Id documents and messages first (their ids are the lock), then the head.

    Answers (2xx, None) when done, (0, error) when an answer was lost, another status
    to start again. The emulator's batches are not atomic (a failed create leaves the
    earlier ones), so the ids already stored are looked up first, and what a failed
    batch created is deleted again.
    """
    pk = partition_key(sid)
    if not state.live(now):  # a new incarnation: the head first, as the lock on it
        plan = plan_append(state, sid, chunk, now, ttl, count=0)
        kind = "create" if state.head is None else "replace"
        status, body = yield _Write(kind, pk, HEAD_ID, plan.head,
                                    None if state.head is None else state.head["_etag"],
                                    lost_ok=lost_ok)
        if status not in _OK:
            return status, body
        state = SessionState(body, 0)
    else:
        assert state.head is not None
        known = yield from _known_ids(pk, int(state.head["e"]), chunk)
        chunk = [entry for entry in chunk if entry[1] not in known]
        if not chunk:
            return 200, None
    plan = plan_append(state, sid, chunk, now, None, token=token)
    status, detail = yield _Batch(pk, [*plan.id_ops, *plan.message_ops], lost_ok=lost_ok)
    if status == _LOST:
        return status, detail
    if status not in _OK:
        for doc_id in detail.created if isinstance(detail, BatchFailure) else []:
            yield _Write("delete", pk, doc_id)
        return status, None
    # Bump the head, with or without a ttl: the recent-first listing and stats() read the
    # heads alone (their order key and count). Count, update time and expiry only grow,
    # whoever writes last.
    while True:
        assert state.head is not None
        if state.head.get("e") != plan.epoch:
            return 409, None  # deleted or re-created meanwhile: our messages are orphans
        now = time.time()
        head = state.head
        expires = now + ttl if ttl is not None else head.get("x")
        if expires is not None and head.get("x") is not None:
            expires = max(float(expires), float(head["x"]))
        body = _head_body(pk, sid, plan.epoch, max(state.count(), plan.last_seq),
                          float(head["c"]), max(now, float(head["u"])), expires, now,
                          carry=head)
        status, new = yield _Write("replace", pk, HEAD_ID, body, head["_etag"])
        if status in _OK:
            ctx.remember(pk, SessionState(new, plan.last_seq, now))
            return 200, None
        state = yield from _read_state(pk)
        if state.head is None:
            return 404, None


def _get_op(session_id: str, last: int | None,
            skip_invalid: bool = False) -> Operation[list[BaseMessage]]:
    pk = partition_key(session_id)
    last = check_last(last)
    if last == 0:
        return []
    if last is None:
        docs = yield _Query(_ALL_SQL, {"@pk": pk}, pk)
    else:
        docs = yield _Query(_TOP_SQL, {"@k": min(last + 1, MAX_LAST), "@pk": pk}, pk)
    state = SessionState.from_docs(docs)
    if state.head is None or not state.live(time.time()):
        return []
    epoch = state.head["e"]
    texts = [doc.get("m") for doc in docs[1:] if doc.get("t") == "m" and doc.get("e") == epoch]
    return decode_messages(texts[::-1], session_id=session_id, skip_invalid=skip_invalid,
                           from_end=last is not None)


#: Where a streamed read is: the incarnation (epoch) it reads and the id of the last
#: message document it got.
PageCursor = tuple[int, str]


def _page_op(pk: str, cursor: PageCursor | None,
             size: int) -> Operation[tuple[list[Any], PageCursor | None]]:
    """One page of a streamed read: the stored texts of the next ``size`` messages and
    the cursor of the page after (None: this was the last). The first page (``cursor``
    None) reads the head first: the read follows the incarnation live then."""
    if cursor is None:
        state = yield from _read_state(pk, 1)
        if state.head is None or not state.live(time.time()):
            return [], None
        cursor = (int(state.head["e"]), "")
    epoch, after = cursor
    docs = yield _Query(_PAGE_SQL, {"@k": size, "@pk": pk, "@e": epoch, "@after": after}, pk)
    texts = [doc.get("m") for doc in docs]
    return texts, (epoch, str(docs[-1]["id"])) if len(docs) == size else None


def _delete_messages(ctx: _Context, pk: str, max_epoch: int,
                     epoch: int | None = None) -> Operation[int]:
    """Delete the messages and id documents of epochs up to ``max_epoch`` (or of
    exactly ``epoch``)."""
    if epoch is None:
        sql = "SELECT c.id FROM c WHERE c.pk = @pk AND c.t IN ('m', 'k') AND c.e <= @e"
        params = {"@pk": pk, "@e": max_epoch}
    else:
        sql = "SELECT c.id FROM c WHERE c.pk = @pk AND c.t IN ('m', 'k') AND c.e = @e"
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
                          state.updated(), None if ttl is None else now + ttl, now,
                          carry=head)
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
