"""Cosmos DB record operations (pure): generators of requests, as in ``_ops``.

Writes: ``put_records`` writes the parts of its long values first (a fresh version each,
invisible until a record points at it), then the record documents in the given order and
then the deletes, each conditional on the etag a query just read (a create when there
was none), so a write knows exactly which version it displaced and deletes that
version's parts after. In production the record writes go as transactional batches (at
most 100 operations and ~2 MB each: a put that fits in one is atomic); on the emulator,
whose batches take creates only, one by one. A batch or write that meets a concurrent
writer (404, 409, 412) is retried from there on a fresh query, with backoff.

TTL: with a deadline, every live record and part of the session is patched to it
*before* the writes (which carry the same deadline), so a record a new one refers to
never expires first, even when the put fails half-way. Reads filter on ``x``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from threadline._errors import StoreError
from threadline.stores._base import validate_session_id, validate_ttl
from threadline.stores._records import (
    check_record_batch,
    check_record_keys,
    check_scan_args,
    validate_record_key,
)
from threadline.stores.cosmos._docs import _ATTEMPTS, _BATCH_BYTES, MAX_BATCH, partition_key
from threadline.stores.cosmos._ops import (
    _OK,
    Operation,
    _backoff,
    _Batch,
    _Context,
    _delete_op,
    _expire_op,
    _purge_op,
    _Query,
    _Write,
)
from threadline.stores.cosmos._record_docs import (
    ALL_SQL,
    EXISTING_SQL,
    GET_SQL,
    ORPHAN_AGE,
    PARTS_SQL,
    Existing,
    id_chunks,
    join_value,
    part_bodies,
    part_ids,
    record_body,
    record_id,
    scan_query,
    segments,
    ttl_patch,
)

__all__ = ["delete_records_op", "delete_session_op", "expire_op", "get_records_op",
           "purge_op", "put_records_op", "scan_records_op"]

#: Reads that find a part gone (a concurrent write replaced the value) start again.
_READ_ATTEMPTS = 20
_CONFLICTS = (404, 409, 412)


def _live(doc: Mapping[str, Any], now: float) -> bool:
    return doc.get("x") is None or float(doc["x"]) > now


# -- sending writes -----------------------------------------------------------------------------


def _as_batch_op(write: _Write) -> tuple[Any, ...]:
    condition = {} if write.etag is None else {"if_match_etag": write.etag}
    if write.kind == "create":
        return ("create", (write.body,))
    if write.kind == "replace":
        return ("replace", (write.id, write.body), condition)
    if write.kind == "patch":
        return ("patch", (write.id, write.patch), condition)
    return ("delete", (write.id,), condition)


def _weight(write: _Write) -> int:
    """About the bytes a write adds to a batch (values are ASCII: base64)."""
    body = write.body or {}
    return 256 + len(write.id) + sum(len(v) for v in body.values() if isinstance(v, str))


def _batches(writes: Sequence[_Write]) -> Iterator[list[_Write]]:
    batch: list[_Write] = []
    size = 0
    for write in writes:
        weight = _weight(write)
        if batch and (len(batch) == MAX_BATCH or size + weight > _BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(write)
        size += weight
    if batch:
        yield batch


def _send(ctx: _Context, pk: str, writes: Sequence[_Write]) -> Operation[tuple[int, int]]:
    """Send ``writes`` in order: (how many were applied, and 200 or the status of the one
    that failed; in production the batch holding it failed whole)."""
    done = 0
    if ctx.emulator:  # its batches take creates only
        for write in writes:
            status, _ = yield write
            if status not in _OK:
                return done, status
            done += 1
        return done, 200
    for batch in _batches(writes):
        status, _ = yield _Batch(pk, [_as_batch_op(write) for write in batch])
        if status not in _OK:
            return done, status
        done += len(batch)
    return done, 200


def _best_effort(ctx: _Context, pk: str, writes: Sequence[_Write]) -> Operation[None]:
    """Send unconditional deletes or patches whose documents may be gone already (404:
    skip that one; a failed batch is sent again one by one)."""
    while writes:
        done, status = yield from _send(ctx, pk, writes)
        if status in _OK:
            return
        if status != 404:
            raise StoreError(f"updating records failed (HTTP {status})")
        failed = 1 if ctx.emulator else len(next(_batches(writes[done:])))
        if not ctx.emulator:
            for write in writes[done:done + failed]:
                status, _ = yield write
                if status not in _OK and status != 404:
                    raise StoreError(f"updating records failed (HTTP {status})")
        writes = writes[done + failed:]


def _query_ids(sql: str, pk: str, ids: Collection[str],
               params: dict[str, Any] | None = None) -> Operation[list[dict[str, Any]]]:
    docs: list[dict[str, Any]] = []
    for chunk in id_chunks(ids):
        docs += yield _Query(sql, {"@pk": pk, "@ids": chunk, **(params or {})}, pk)
    return docs


@dataclass(frozen=True, slots=True)
class _Step:
    """One record to write (``body``) or delete (``body`` None)."""

    rid: str
    body: dict[str, Any] | None


def _commit(ctx: _Context, pk: str, steps: list[_Step]) -> Operation[None]:
    """Write and delete record documents in order, each conditional on the etag read
    just before; then delete the parts of the versions displaced."""
    garbage: list[str] = []
    for attempt in range(_ATTEMPTS):
        docs = yield from _query_ids(EXISTING_SQL, pk, [step.rid for step in steps])
        found = {doc["id"]: Existing.from_doc(doc) for doc in docs}
        writes: list[_Write] = []
        owners: list[tuple[int, Existing | None]] = []  # (step index, what it replaces)
        for index, step in enumerate(steps):
            old = found.get(step.rid)
            if step.body is None:
                if old is None:
                    continue
                writes.append(_Write("delete", pk, step.rid, None, old.etag))
            elif old is None:
                writes.append(_Write("create", pk, step.rid, step.body))
            else:
                writes.append(_Write("replace", pk, step.rid, step.body, old.etag))
            owners.append((index, old))
        done, status = yield from _send(ctx, pk, writes)
        garbage += [pid for _, old in owners[:done] if old is not None for pid in old.parts]
        if status in _OK:
            break
        if status not in _CONFLICTS:
            raise StoreError(f"writing records failed (HTTP {status})")
        steps = steps[owners[done][0]:]  # a concurrent writer: again from the failed one
        yield _backoff(attempt)
    else:
        raise StoreError(f"writing records failed: {_ATTEMPTS} conflicting writers in a row")
    yield from _best_effort(ctx, pk, [_Write("delete", pk, pid) for pid in garbage])


def _set_deadlines(ctx: _Context, pk: str, deadline: float | None,
                   skip: Collection[str] = ()) -> Operation[None]:
    """Patch the deadline of every live record and part of the session, but those of the
    records ``skip`` (about to be replaced). Expired ones stay so: never resurrected."""
    docs = yield _Query(ALL_SQL, {"@pk": pk}, pk)
    now = time.time()
    patch = ttl_patch(deadline, now)
    writes = [_Write("patch", pk, doc["id"], patch=patch) for doc in docs
              if _live(doc, now) and not (deadline is None and doc.get("x") is None)
              and (doc["id"] if doc["t"] == "r" else doc.get("r")) not in skip]
    yield from _best_effort(ctx, pk, writes)


# -- the operations (arguments checked before the generator starts) ---------------------------


def put_records_op(ctx: _Context, session_id: str, records: Mapping[str, bytes],
                   delete: Collection[str], ttl: float | None, store_ttl: float | None,
                   max_bytes: int) -> Operation[None]:
    validate_session_id(session_id)
    batch = check_record_batch(records, delete, max_bytes)
    return _put(ctx, partition_key(session_id), batch, list(dict.fromkeys(delete)),
                validate_ttl(ttl) or store_ttl)


def _put(ctx: _Context, pk: str, records: dict[str, bytes], delete: list[str],
         ttl: float | None) -> Operation[None]:
    now = time.time()
    deadline = None if ttl is None else now + ttl
    steps: list[_Step] = []
    parts: list[dict[str, Any]] = []
    for key, value in records.items():
        first, *rest = segments(value)
        version = uuid.uuid4().hex if rest else None
        steps.append(_Step(record_id(key), record_body(pk, key, first, version, len(rest),
                                                       deadline, now)))
        if version is not None:
            parts += part_bodies(pk, key, rest, version, deadline, now)
    steps += [_Step(record_id(key), None) for key in delete]
    if deadline is not None:
        yield from _set_deadlines(ctx, pk, deadline, {step.rid for step in steps})
    if not steps:
        return
    for body in parts:
        status, _ = yield _Write("create", pk, body["id"], body)
        if status not in _OK:
            raise StoreError(f"writing a record's part failed (HTTP {status})")
    yield from _commit(ctx, pk, steps)


def get_records_op(session_id: str, keys: Collection[str]) -> Operation[dict[str, bytes]]:
    validate_session_id(session_id)
    return _get(partition_key(session_id), check_record_keys(keys))


def _get(pk: str, keys: list[str]) -> Operation[dict[str, bytes]]:
    wanted = {record_id(key): key for key in keys}
    if not wanted:
        return {}
    for attempt in range(_READ_ATTEMPTS):
        docs = yield from _query_ids(GET_SQL, pk, list(wanted), {"@now": time.time()})
        docs = [doc for doc in docs if wanted.get(doc["id"]) == doc.get("rk")]
        values = yield from _values(pk, docs)
        if values is not None:
            got = {str(doc["rk"]): value for doc, value in zip(docs, values, strict=True)}
            return {key: got[key] for key in keys if key in got}
        yield _backoff(attempt)
    raise StoreError("reading records failed: they kept changing meanwhile")


def scan_records_op(session_id: str, prefix: str, after: str | None, before: str | None,
                    limit: int | None, reverse: bool,
                    keys_only: bool) -> Operation[list[tuple[str, bytes]]]:
    validate_session_id(session_id)
    check_scan_args(prefix, after, before, limit)
    return _scan(partition_key(session_id), prefix, after, before, limit, reverse, keys_only)


def _scan(pk: str, prefix: str, after: str | None, before: str | None, limit: int | None,
          reverse: bool, keys_only: bool) -> Operation[list[tuple[str, bytes]]]:
    for attempt in range(_READ_ATTEMPTS):
        sql, params = scan_query(pk, prefix, after, before, limit, reverse, keys_only,
                                 time.time())
        docs = yield _Query(sql, params, pk)
        if keys_only:
            return [(str(doc["rk"]), b"") for doc in docs]
        values = yield from _values(pk, docs)
        if values is not None:
            return [(str(doc["rk"]), value) for doc, value in zip(docs, values, strict=True)]
        yield _backoff(attempt)
    raise StoreError("scanning records failed: they kept changing meanwhile")


def _values(pk: str, docs: list[dict[str, Any]]) -> Operation[list[bytes] | None]:
    """The values of record documents, their parts read in one query (None: a part is
    gone, the record was replaced meanwhile)."""
    wanted = [pid for doc in docs for pid in part_ids(doc)]
    parts: dict[str, str] = {}
    if wanted:
        found = yield from _query_ids(PARTS_SQL, pk, wanted)
        parts = {str(doc["id"]): str(doc["d"]) for doc in found}
    values = []
    for doc in docs:
        value = join_value(doc, parts)
        if value is None:
            return None
        values.append(value)
    return values


def delete_records_op(ctx: _Context, session_id: str, keys: Collection[str] | None,
                      prefix: str | None) -> Operation[None]:
    validate_session_id(session_id)
    wanted = None if keys is None else check_record_keys(keys)
    if prefix is not None:
        validate_record_key(prefix)
    return _delete_records(ctx, partition_key(session_id), wanted, prefix)


def _delete_records(ctx: _Context, pk: str, keys: list[str] | None,
                    prefix: str | None) -> Operation[None]:
    rids = [record_id(key) for key in keys or ()]
    if keys is None or prefix is not None:
        sql = "SELECT c.id FROM c WHERE c.pk = @pk AND c.t = 'r'"
        params: dict[str, Any] = {"@pk": pk}
        if prefix is not None:
            sql += " AND c.rk >= @lo AND c.rk < @hi"
            params.update({"@lo": prefix, "@hi": prefix + "\x7f"})
        docs = yield _Query(sql, params, pk)
        rids += [str(doc["id"]) for doc in docs]
    if rids:
        yield from _commit(ctx, pk, [_Step(rid, None) for rid in dict.fromkeys(rids)])


# -- the session operations, extended to its records --------------------------------------------


def delete_session_op(ctx: _Context, session_id: str) -> Operation[bool]:
    """Delete the session's messages, then its records: True if either was there."""
    pk = partition_key(session_id)
    had_messages = yield from _delete_op(ctx, session_id)
    docs = yield _Query(ALL_SQL, {"@pk": pk}, pk)
    now = time.time()
    had_records = any(doc["t"] == "r" and _live(doc, now) for doc in docs)
    # Records before parts: a reader never finds a record whose parts are gone for good.
    docs.sort(key=lambda doc: doc["t"] != "r")
    yield from _best_effort(ctx, pk, [_Write("delete", pk, doc["id"]) for doc in docs])
    return had_messages or had_records


def expire_op(ctx: _Context, session_id: str, ttl: float | None) -> Operation[None]:
    """Set (or clear) the expiry of the session's live records, then of its messages."""
    pk = partition_key(session_id)
    ttl = validate_ttl(ttl)
    yield from _set_deadlines(ctx, pk, None if ttl is None else time.time() + ttl)
    yield from _expire_op(ctx, session_id, ttl)


def purge_op(ctx: _Context) -> Operation[int]:
    """Purge expired sessions (counted), then expired records and orphaned parts."""
    purged = yield from _purge_op(ctx)
    now = time.time()
    expired = yield _Query(
        "SELECT c.pk, c.id, c.t, c._etag FROM c WHERE c.t IN ('r', 'p') "
        "AND NOT IS_NULL(c.x) AND c.x <= @now", {"@now": now}, None)
    expired.sort(key=lambda doc: doc["t"] != "r")
    for doc in expired:  # 412: refreshed meanwhile, alive again
        yield _Write("delete", doc["pk"], doc["id"], None, doc["_etag"])
    # Parts no record points at: a write that failed before its record, or after it but
    # before deleting the version it displaced. Parts are read before the records, and
    # only old ones, so the parts of a write under way are never taken for orphans.
    parts = yield _Query("SELECT c.pk, c.id, c.r, c.pv FROM c WHERE c.t = 'p' AND c.w < @old",
                         {"@old": now - ORPHAN_AGE}, None)
    if parts:
        records = yield _Query(
            "SELECT c.pk, c.id, c.pv FROM c WHERE c.t = 'r' AND NOT IS_NULL(c.pv)", {}, None)
        used = {(doc["pk"], doc["id"], doc["pv"]) for doc in records}
        for doc in parts:
            if (doc["pk"], doc.get("r"), doc.get("pv")) not in used:
                yield _Write("delete", doc["pk"], doc["id"])
    return purged
