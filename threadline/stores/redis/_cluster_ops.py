"""Redis Cluster operations (pure): what differs from one node, as command batches.

Reads, ``session_info``, ``expire`` and records are the single-node operations on
:class:`~threadline.stores.redis._cluster_keys.ClusterKeys` (they name one session's
keys, all in its slot). What touches the store-wide sets is here: those sets are in
other slots than the session, so the session's script and the set updates are separate
commands, ordered so that a crash between them loses no message and leaves no session
unlistable:

* an **append** first adds the session to its shard (``SHARD_ADD``, idempotent, the
  recent score raised to now), then runs its script (sent once, as on one node), then
  raises the owner's sets (the owner is only known to the script). A crash after the
  first step leaves an entry whose session does not exist: listings skip it and
  :func:`purge_op` drops it;
* **update_session** adds a new session to its shard before its script too (``NX``:
  an existing session keeps its score), and moves it between owners' sets after;
* a **delete** runs its script first, then takes the session out of its shard only if
  its recent score is not newer than the deleted session's ``updated_at`` (an append
  re-creating it meanwhile raised it) and out of its owner's sets, then re-adds it if
  it exists again (:func:`repair_op`);
* **listings** read one bounded range per shard (pipelined: one round trip to each
  master), merge them, and judge the candidates with one single-slot ``FILTER`` call
  each (pipelined too): entries of sessions that are gone are skipped, not dropped
  (dropping one is a write on another slot than the check; :func:`purge_op` does it
  with care). An owner's listing reads that owner's sets, which are in one slot.

Nothing here SCANs the keyspace except :func:`destroy`'s sweep, run by the store.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

from threadline._errors import StoreError
from threadline.messages._values import BaseMessage
from threadline.stores._base import SessionPage
from threadline.stores._sessions import ListQuery, SessionChanges, recent_cursor
from threadline.stores.redis import _cluster_scripts as clua
from threadline.stores.redis import _scripts as lua
from threadline.stores.redis import _session_scripts as session_lua
from threadline.stores.redis._cluster_keys import SHARDS, ClusterKeys
from threadline.stores.redis._keys import sid_bytes, text
from threadline.stores.redis._ops import (
    SCAN_BATCH,
    Batch,
    Command,
    Operation,
    by_id,
    check_bulk_op,
    message_args,
    milliseconds,
    refused,
)
from threadline.stores.redis._sessions import (
    _MAX_BATCH,
    FILTER_BATCH,
    KEEP,
    Candidate,
    _member,
    _pairs,
    _recent_after,
    field_args,
)

__all__ = ["LAYOUT", "append_op", "delete_op", "list_sessions_op", "purge_op", "repair_op",
           "setup_op", "update_op"]

#: The value of ``P{x}schema`` in cluster mode.
LAYOUT = "c1"

_GONE = -1


def setup_op(keys: ClusterKeys) -> Operation[None]:
    (_, found) = yield Batch([("SET", keys.schema, LAYOUT, "NX"), ("GET", keys.schema)])
    value = found.decode() if isinstance(found, bytes) else str(found)
    if value != LAYOUT:
        raise StoreError(
            f"the keys under this prefix use cluster layout {value!r}, not one this "
            f"threadline understands ({LAYOUT!r}); upgrade threadline or use another prefix")


def _shard_add(keys: ClusterKeys, sid: bytes, flag: str, score: str) -> Command:
    return ("EVAL", clua.SHARD_ADD, 2, *keys.shard_for(sid), flag, score, sid)


def _owner_add(keys: ClusterKeys, owner: str, sid: bytes, score: str) -> list[Command]:
    by_recent, by_id_set = keys.owner_sets(owner)
    return [("ZADD", by_recent, "GT", score, sid), ("ZADD", by_id_set, "NX", 0, sid)]


def _owner_remove(keys: ClusterKeys, owner: str, sid: bytes) -> list[Command]:
    return [("ZREM", key, sid) for key in keys.owner_sets(owner)]


def _ttl(ttl: float | None) -> str | int:
    return "" if ttl is None else milliseconds(ttl)


def append_op(keys: ClusterKeys, session_id: str, messages: Sequence[BaseMessage],
              encoded: Sequence[str], ttl: float | None) -> Operation[int]:
    """Add to the shard, then the session's one script (``writes``: sent once), then the
    owner's sets; how many messages were stored."""
    sid = sid_bytes(session_id)
    if not messages:
        return 0
    args = message_args(messages, encoded)
    yield from check_bulk_op(args)
    now = repr(time.time())
    yield Batch([_shard_add(keys, sid, "GT", now)])
    (reply,) = yield Batch([by_id(keys, clua.APPEND, sid, "", "", now, _ttl(ttl), *args)],
                           writes=True)
    if not isinstance(reply, list):
        if int(reply) < 0:
            raise refused(session_id, keys, sid, int(reply))
        return int(reply)
    pushed, owner = int(reply[0]), text(_member(reply[1]))
    if owner:
        yield Batch(_owner_add(keys, owner, sid, now))
    return pushed


def repair_op(keys: ClusterKeys, sids: Sequence[bytes]) -> Operation[int]:
    """Put back in their shard and owner's sets those of ``sids`` that exist (after a
    removal that raced with their re-creation); how many exist."""
    if not sids:
        return 0
    replies = yield Batch([by_id(keys, lua.INFO, sid) for sid in sids])
    commands: list[Command] = []
    for sid, reply in zip(sids, replies, strict=True):
        if reply:
            fields = reply[2]
            updated = text(_member(fields[1] or b"0"))
            commands.append(_shard_add(keys, sid, "GT", updated))
            if fields[4]:
                commands += _owner_add(keys, text(_member(fields[4])), sid, updated)
    if commands:
        yield Batch(commands)
    return sum(1 for reply in replies if reply)


def delete_op(keys: ClusterKeys, session_id: str) -> Operation[bool]:
    sid = sid_bytes(session_id)
    (reply,) = yield Batch([by_id(keys, clua.DELETE, sid, own=keys.records(sid))])
    deleted, owner, updated = int(reply[0]), text(_member(reply[1])), _member(reply[2])
    commands: list[Command] = []
    if updated:
        commands.append(("EVAL", clua.UNINDEX, 2, *keys.shard_for(sid), updated, sid))
    if owner:
        commands += _owner_remove(keys, owner, sid)
    if commands:
        yield Batch(commands)
        yield from repair_op(keys, [sid])
    return bool(deleted)


def update_op(keys: ClusterKeys, session_id: str, changes: SessionChanges,
              ttl: float | None) -> Operation[None]:
    """Add a new session to its shard, set the fields (one script), then move it between
    owners' sets."""
    sid = sid_bytes(session_id)
    now = repr(time.time())
    yield Batch([_shard_add(keys, sid, "NX", now)])
    (reply,) = yield Batch([by_id(keys, clua.UPDATE, sid, now, _ttl(ttl),
                                  *field_args(changes))])
    if int(reply[0]) < 0:
        raise refused(session_id, keys, sid, int(reply[0]))
    old, new, score = (text(_member(value)) for value in reply[1:4])
    commands: list[Command] = []
    if old and old != new:
        commands += _owner_remove(keys, old, sid)
    if new:
        by_recent, by_id_set = keys.owner_sets(new)
        commands += [("ZADD", by_recent, score, sid), ("ZADD", by_id_set, "NX", 0, sid)]
    if commands:
        yield Batch(commands)


# -- listings ------------------------------------------------------------------------------


def _recent_batch(zsets: Sequence[bytes], after: Candidate | None, count: int
                  ) -> Operation[list[Candidate]]:
    """The first ``count`` members of the union of ``zsets`` strictly after ``after`` in
    descending ``(score, member)`` order: ``count`` from each, in one round trip."""
    commands: list[Command] = []
    for zset in zsets:
        if after is None:
            commands.append(("ZRANGE", zset, "+inf", "-inf", "BYSCORE", "REV",
                             "LIMIT", 0, count, "WITHSCORES"))
        else:
            bound = repr(after[1])
            commands += [("ZRANGE", zset, bound, bound, "BYSCORE", "REV", "WITHSCORES"),
                         ("ZRANGE", zset, "(" + bound, "-inf", "BYSCORE", "REV",
                          "LIMIT", 0, count, "WITHSCORES")]
    replies = yield Batch(commands)
    found: list[Candidate] = []
    if after is None:
        for reply in replies:
            found += _pairs(reply)
    else:
        for ties, below in zip(replies[::2], replies[1::2], strict=True):
            found += [pair for pair in _pairs(ties) if pair[0] < after[0]] + _pairs(below)
    found.sort(key=lambda pair: (pair[1], pair[0]), reverse=True)
    return found[:count]


def _lex_batch(zsets: Sequence[bytes], start: bytes, stop: bytes, count: int
               ) -> Operation[list[Candidate]]:
    replies = yield Batch([("ZRANGEBYLEX", zset, start, stop, "LIMIT", 0, count)
                           for zset in zsets])
    found = sorted(_member(m) for reply in replies for m in reply)
    return [(sid, 0.0) for sid in found[:count]]


def _codes(keys: ClusterKeys, sids: Sequence[bytes], owner: str | None,
           metadata: str) -> Operation[list[int]]:
    """:data:`~threadline.stores.redis._session_scripts.FILTER`'s verdict on each
    session, one single-slot call each, in one round trip."""
    if not sids:
        return []
    replies = yield Batch([("EVAL", session_lua.FILTER, 2, keys.messages(sid), keys.meta(sid),
                            owner or "", metadata) for sid in sids])
    return [int(reply[0]) for reply in replies]


def _keep(keys: ClusterKeys, batch: list[Candidate], query: ListQuery,
          prefix: bytes) -> Operation[list[Candidate]]:
    wanted = [pair for pair in batch if pair[0].startswith(prefix)]
    metadata = "" if query.metadata is None else json.dumps(
        query.metadata, ensure_ascii=False, separators=(",", ":"))
    codes = yield from _codes(keys, [sid for sid, _ in wanted], query.owner, metadata)
    return [pair for pair, code in zip(wanted, codes, strict=True) if code == KEEP]


def list_sessions_op(keys: ClusterKeys, query: ListQuery) -> Operation[SessionPage]:
    """A page of ``list_sessions``: keyset pages over the merged shards (or the owner's
    sets), with the cursors of one node."""
    limit = query.limit
    low = query.prefix.encode("utf-8", "surrogatepass")
    found: list[Candidate] = []
    recent = query.order == "recent"
    if query.owner is not None:
        zsets = [keys.owner_sets(query.owner)[0 if recent else 1]]
    else:
        zsets = [keys.shard(number)[1 if recent else 0] for number in range(SHARDS)]
    after = None if query.cursor is None or not recent else _recent_after(query.cursor)
    start = b"[" + low if low else b"-"
    if not recent and query.cursor is not None and (last := query.cursor.encode(
            "utf-8", "surrogatepass")) >= low:
        start = b"(" + last
    # No UTF-8 byte is 0xff: every id starting with the prefix sorts below it.
    stop = b"(" + low + b"\xff" if low else b"+"
    filtered = bool(query.metadata is not None or (recent and low))
    while len(found) <= limit:
        want = min(max(limit + 1 - len(found), FILTER_BATCH if filtered else 0), _MAX_BATCH)
        if recent:
            batch = yield from _recent_batch(zsets, after, want)
        else:
            batch = yield from _lex_batch(zsets, start, stop, want)
        found += yield from _keep(keys, batch, query, low)
        if len(batch) < want:
            break
        if recent:
            after = batch[-1]
        else:
            start = b"(" + batch[-1][0]
    page = found[:limit]
    ids = [text(sid) for sid, _ in page]
    if len(found) <= limit:
        return SessionPage(ids, None)
    return SessionPage(ids, recent_cursor(page[-1][1], ids[-1]) if recent else ids[-1])


def purge_op(keys: ClusterKeys, grace: float) -> Operation[int]:
    """Drop the shard entries of sessions that are gone, each only if its recent score
    is more than ``grace`` seconds old (an append adds its session to the shard before
    it creates it: such an entry is left alone), then put back any that exists again;
    how many entries were dropped. Owners' sets are not swept: their entries of gone
    sessions are skipped by listings."""
    removed = 0
    limit = repr(time.time() - grace)
    for number in range(SHARDS):
        by_id_set, by_recent = keys.shard(number)
        start = b"-"
        while True:
            (found,) = yield Batch([("ZRANGEBYLEX", by_id_set, start, b"+",
                                     "LIMIT", 0, SCAN_BATCH)])
            sids = [_member(m) for m in found]
            codes = yield from _codes(keys, sids, None, "")
            gone = [sid for sid, code in zip(sids, codes, strict=True) if code == _GONE]
            if gone:
                (dropped,) = yield Batch([("EVAL", clua.UNINDEX, 2, by_id_set, by_recent,
                                           limit, *gone)])
                back = yield from repair_op(keys, gone)
                removed += max(0, int(dropped) - back)
            if len(sids) < SCAN_BATCH:
                break
            start = b"(" + sids[-1]
    return removed

