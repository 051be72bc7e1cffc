"""Sessions as objects on Redis (pure): fields, recent-first listing, filters, stats, fork.

Like :mod:`threadline.stores.redis._ops`, every operation is a generator of command
batches that the store drives with its sync or asyncio client; nothing here does I/O.

Layout (``P`` is the key prefix; every key is the store's own, NUL after ``P``):

* ``P\\0meta\\0{id}`` — the session's hash also holds ``title``, ``metadata`` (compact
  JSON), ``owner``, ``parent``, ``fork_point``, and ``empty`` while a session that
  ``update_session`` created has no message (Redis keeps no empty list: the hash is the
  session then). One script (``UPDATE``) writes them; ``session_info`` reads them in the
  same script call as the counts.
* ``P\\0recent`` — a sorted set: every session id scored by its ``updated_at`` (epoch
  seconds, the float the hash holds, so the order and ``session_info`` agree to the
  bit). ``APPEND`` moves a session up in the script that appends; renaming does not.
* ``P\\0orecent\\0{owner}`` / ``P\\0oids\\0{owner}`` — an owner's sessions, scored as in
  ``P\\0recent`` and all scored 0 (by id, as ``P\\0sessions``). The scripts that change
  an owner, append and delete keep them.

Redis expires keys by itself and sorted set members never expire: the sets can name
sessions that are gone (expired, or cleared by LangChain). Listing therefore judges
every batch of candidates in one script call (``FILTER``, read-only: does the session
exist, is it the owner's, does its metadata match), skips those that are gone and drops
them with the atomic ``CLEANUP`` script; an owner's set also loses the sessions that
are no longer that owner's. ``purge_expired`` sweeps the index, the recent set and every
owner's sets the same way. A session whose list a rival prefix could claim (see
``_keys``) is judged in Python instead, by ``probe_op``, by the same rule.

Recent-first pages are keyset pages on ``(score, id)``, newest first (ties by id,
descending, which is ``ZRANGE ... REV``'s own order): the cursor holds the last
session's score and id, and the next page is the ids strictly below it: those tied on
the score and smaller (one ``ZRANGE`` of the tie, almost always empty), then a
``ZRANGE (score -inf BYSCORE REV LIMIT``. ``prefix`` and ``metadata`` are filters on that
walk, not indexes: a selective filter reads more of the set (in batches of
:data:`FILTER_BATCH`), as ``owner`` does not (it has its own sets).

``stats`` counts inside Redis too (``STATS``: ``LLEN`` and ``MEMORY USAGE``), a batch of
the index per round trip. A fork copies its messages inside Redis (``FORK``). Search is
in :mod:`threadline.stores.redis._search`.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from threadline._errors import InputError
from threadline.stores._base import SessionInfo, SessionPage
from threadline.stores._sessions import (
    ListQuery,
    SessionChanges,
    StoreStats,
    decode_recent_cursor,
    metadata_matches,
    recent_cursor,
)
from threadline.stores.redis import _scripts as lua
from threadline.stores.redis import _session_scripts as session_lua
from threadline.stores.redis._keys import Keys, sid_bytes, text
from threadline.stores.redis._ops import (
    LIVE,
    SCAN_BATCH,
    Batch,
    Operation,
    by_id,
    cleanup_command,
    glob_escape,
    milliseconds,
    probe_op,
    purge_op,
    scan_op,
)

__all__ = ["FILTER_BATCH", "FORK_CHUNK", "field_args", "fork_copy_op", "info_op",
           "list_sessions_op", "purge_all_op", "stats_op", "update_op"]

#: How many candidates a filtered listing reads per round trip (at least).
FILTER_BATCH = 200
#: How many messages one script call of a fork copies (a script blocks the server).
FORK_CHUNK = 1_000
_MAX_BATCH = 10_001

# A candidate of a listing: its id and its score in the set it came from.
Candidate = tuple[bytes, float]


def utc(raw: bytes | str | None) -> datetime | None:
    return None if raw is None else datetime.fromtimestamp(float(raw), UTC)


def info_op(keys: Keys, session_id: str) -> Operation[SessionInfo | None]:
    """Counts, times and fields of a session, in one script call (the messages are not
    read); ``None`` if it does not exist."""
    (reply,) = yield Batch([by_id(keys, lua.INFO, sid_bytes(session_id))])
    if not reply:
        return None
    count, pttl, (created, updated, title, metadata, owner, parent, fork_point) = reply
    expires = (datetime.now(UTC).timestamp() + pttl / 1000) if pttl > 0 else None
    return SessionInfo(session_id, int(count), utc(created), utc(updated),
                       None if expires is None else datetime.fromtimestamp(expires, UTC),
                       optional_text(title), stored_metadata(metadata),
                       optional_text(owner), optional_text(parent),
                       _count(fork_point))


def _count(raw: bytes | str | None) -> int | None:
    return int(raw) if raw is not None and raw.isdigit() else None


def optional_text(raw: bytes | str | None) -> str | None:
    return raw if raw is None or isinstance(raw, str) else text(raw)


def stored_metadata(raw: bytes | str | None) -> dict[str, str]:
    """The metadata a hash holds (JSON written by ``update_session``); ``{}`` if none, or
    if it is not a JSON object of strings (someone else wrote it)."""
    if raw is None:
        return {}
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return {}
    if not isinstance(value, dict):
        return {}
    return {k: v for k, v in value.items() if isinstance(v, str)}


def _refused(session_id: str, keys: Keys, sid: bytes, reply: int) -> InputError:
    what = ("holds something else than a list of messages, another application's data"
            if reply == -1 else
            "holds a session of another store (whose key prefix starts like this one's)")
    return InputError(f"session {session_id!r:.200} cannot be updated: its key "
                      f"{keys.messages(sid)!r:.250} {what}; nothing was stored")


def field_args(changes: SessionChanges) -> list[str]:
    """The UPDATE scripts' arguments for ``changes``: name, then ``=value`` or '' (delete)."""
    args: list[str] = []
    for name, value in changes.given().items():
        if name == "metadata":
            value = json.dumps(value, ensure_ascii=False, separators=(",", ":")) if value \
                else None
        args += (name, "" if value is None else f"={value}")
    return args


def update_op(keys: Keys, session_id: str, changes: SessionChanges,
              ttl: float | None) -> Operation[None]:
    """One EVAL of :data:`~threadline.stores.redis._session_scripts.UPDATE`: set the
    given fields (validated by the caller), creating the session, empty, with ``ttl`` if
    it does not exist."""
    sid = sid_bytes(session_id)
    (reply,) = yield Batch([by_id(keys, session_lua.UPDATE, sid, *keys.owner_heads,
                                  repr(time.time()),
                                  "" if ttl is None else milliseconds(ttl),
                                  *field_args(changes),
                                  own=[keys.recent])])
    if int(reply) < 0:
        raise _refused(session_id, keys, sid, int(reply))


def fork_copy_op(keys: Keys, session_id: str, new_session_id: str, count: int,
                 ttl: float | None) -> Operation[None]:
    """Copy the first ``count`` messages of ``session_id`` into the fork
    ``new_session_id`` (just created by ``update_session``), server-side:
    :data:`FORK_CHUNK` messages per script call, none through the client."""
    sid, source = sid_bytes(new_session_id), keys.messages(sid_bytes(session_id))
    for start in range(0, count, FORK_CHUNK):
        stop = min(start + FORK_CHUNK, count)
        (copied,) = yield Batch([by_id(keys, session_lua.FORK, sid, *keys.owner_heads,
                                       repr(time.time()),
                                       "" if ttl is None else milliseconds(ttl), start, stop,
                                       own=[keys.recent, source])])
        if int(copied) < 0:
            raise InputError(f"cannot fork into {new_session_id!r:.80}: the session changed "
                             "hands while its messages were copied")
        if int(copied) < stop - start:  # the source lost messages meanwhile
            return


def _member(raw: bytes | str) -> bytes:
    # A client made with decode_responses (from_client) answers str.
    return raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw


def _pairs(reply: Sequence[Any]) -> list[Candidate]:
    """``(member, score)`` of a ``ZRANGE ... WITHSCORES`` reply (RESP2 flat or RESP3)."""
    if reply and isinstance(reply[0], list | tuple):
        return [(_member(m), float(s)) for m, s in reply]
    return [(_member(m), float(s)) for m, s in zip(reply[::2], reply[1::2], strict=True)]


def _recent_batch(zset: bytes, after: Candidate | None, count: int
                  ) -> Operation[list[Candidate]]:
    """At most ``count`` members of ``zset`` strictly after ``after`` in descending
    ``(score, member)`` order, in one round trip."""
    if after is None:
        (flat,) = yield Batch([("ZRANGE", zset, "+inf", "-inf", "BYSCORE", "REV",
                                "LIMIT", 0, count, "WITHSCORES")])
        return _pairs(flat)
    member, score = after
    bound = repr(score)
    ties, below = yield Batch([
        ("ZRANGE", zset, bound, bound, "BYSCORE", "REV", "WITHSCORES"),
        ("ZRANGE", zset, "(" + bound, "-inf", "BYSCORE", "REV", "LIMIT", 0, count,
         "WITHSCORES")])
    return ([pair for pair in _pairs(ties) if pair[0] < member] + _pairs(below))[:count]


def _lex_batch(zset: bytes, start: bytes, stop: bytes, count: int
               ) -> Operation[list[Candidate]]:
    (found,) = yield Batch([("ZRANGEBYLEX", zset, start, stop, "LIMIT", 0, count)])
    return [(_member(m), 0.0) for m in found]


# What a listing does with a candidate (the replies of session_lua.FILTER too).
KEEP, SKIP, GONE, NOT_THE_OWNERS = 1, 0, -1, -2


def _probed_code(state: str, values: list[Any], query: ListQuery) -> int:
    """:data:`~threadline.stores.redis._session_scripts.FILTER`'s rule, for a candidate
    whose list a rival prefix could claim, from :func:`probe_op`'s answer."""
    if state not in LIVE:
        return GONE if state in ("none", "foreign") else SKIP  # "taken": a rival's
    if query.owner is not None and optional_text(values[0]) != query.owner:
        return NOT_THE_OWNERS
    return KEEP if metadata_matches(stored_metadata(values[1]), query.metadata) else SKIP


def _keep(keys: Keys, batch: list[Candidate], query: ListQuery,
          prefix: bytes) -> Operation[tuple[list[Candidate], int]]:
    """The candidates that exist and pass the filters, judged inside Redis by one
    script call (:data:`~threadline.stores.redis._session_scripts.FILTER`); those that
    are gone (and, when an owner's set is listed, those that are not the owner's any
    more) are cleaned up: how many sessions lost a key, too."""
    wanted = [pair for pair in batch if pair[0].startswith(prefix)]
    nested = [sid for sid, _ in wanted if keys.rivals(sid)]
    skip = set(nested)
    plain = [sid for sid, _ in wanted if sid not in skip]
    codes: dict[bytes, int] = {}
    if plain:
        metadata = "" if query.metadata is None else json.dumps(
            query.metadata, ensure_ascii=False, separators=(",", ":"))
        (reply,) = yield Batch([("EVAL", session_lua.FILTER, 2 * len(plain), *[
            key for sid in plain for key in (keys.messages(sid), keys.meta(sid))],
            query.owner or "", metadata)])
        codes.update(zip(plain, map(int, reply), strict=True))
    if nested:
        probed = yield from probe_op(keys, nested, ("owner", "metadata"))
        codes.update((sid, _probed_code(state, values, query))
                     for sid, (state, values) in zip(nested, probed, strict=True))
    drop = [sid for sid, _ in wanted if codes[sid] < 0]  # CLEANUP checks again, atomically
    removed = 0
    if drop:
        (removed,) = yield Batch([cleanup_command(keys, drop, query.owner)])
    return [pair for pair in wanted if codes[pair[0]] == KEEP], int(removed)


def _recent_after(cursor: str) -> Candidate:
    updated, session_id = decode_recent_cursor(cursor)
    if not isinstance(updated, int | float) or not math.isfinite(updated):
        raise InputError(f"not a cursor of this store: {cursor!r:.80}")
    return session_id.encode("utf-8", "surrogatepass"), float(updated)


def list_sessions_op(keys: Keys, query: ListQuery) -> Operation[SessionPage]:
    """A page of ``list_sessions`` (arguments checked by ``check_list_args``)."""
    limit = query.limit
    low = query.prefix.encode("utf-8", "surrogatepass")
    found: list[Candidate] = []
    if query.order == "recent":
        zset = keys.recent if query.owner is None else keys.owner_recent(query.owner)
        after = None if query.cursor is None else _recent_after(query.cursor)
        filtered = bool(low or query.metadata)
    else:
        zset = keys.index if query.owner is None else keys.owner_ids(query.owner)
        start = b"[" + low if low else b"-"
        if query.cursor is not None and (last := query.cursor.encode(
                "utf-8", "surrogatepass")) >= low:
            start = b"(" + last
        # No UTF-8 byte is 0xff: every id starting with the prefix sorts below it.
        stop = b"(" + low + b"\xff" if low else b"+"
        filtered = query.metadata is not None
    while len(found) <= limit:
        want = min(max(limit + 1 - len(found), FILTER_BATCH if filtered else 0), _MAX_BATCH)
        if query.order == "recent":
            batch = yield from _recent_batch(zset, after, want)
        else:
            batch = yield from _lex_batch(zset, start, stop, want)
        kept, _ = yield from _keep(keys, batch, query, low)
        found += kept
        if len(batch) < want:
            break
        if query.order == "recent":
            after = batch[-1]
        else:
            start = b"(" + batch[-1][0]
    page = found[:limit]
    ids = [text(sid) for sid, _ in page]
    if len(found) <= limit:
        return SessionPage(ids, None)
    score = page[-1][1]
    return SessionPage(ids, recent_cursor(score, ids[-1]) if query.order == "recent"
                       else ids[-1])


def stats_op(keys: Keys) -> Operation[StoreStats]:
    """Sessions, messages (``LLEN``) and bytes (``MEMORY USAGE`` of each session's list and
    hash: Redis's estimate; ``None`` where the server refuses it), walking the index
    :data:`~threadline.stores.redis._ops.SCAN_BATCH` sessions per round trip, counted
    inside Redis (:data:`~threadline.stores.redis._session_scripts.STATS`). Sessions
    whose list a rival prefix could claim (rare: see ``_keys``) are settled by
    :func:`probe_op`, as listings do. Read-only: entries of sessions that are gone are
    skipped, not dropped."""
    start = b"-"
    sessions = messages = size = 0
    sized = True
    while True:
        (batch,) = yield Batch([("ZRANGEBYLEX", keys.index, start, b"+",
                                 "LIMIT", 0, SCAN_BATCH)])
        sids = [_member(m) for m in batch]
        nested = [sid for sid in sids if keys.rivals(sid)]
        probed = yield from probe_op(keys, nested)
        skip = set(nested)
        counted = [sid for sid in sids if sid not in skip] + [
            sid for sid, (state, _) in zip(nested, probed, strict=True) if state in LIVE]
        pairs = [key for sid in counted for key in (keys.messages(sid), keys.meta(sid))]
        if pairs:
            # The nested ones are ours (or empty) by the probe: STATS counts them alike.
            ((count, total, used, complete),) = yield Batch([
                ("EVAL", session_lua.STATS, len(pairs), *pairs)])
            sessions, messages, size = sessions + count, messages + total, size + used
            sized &= bool(complete)
        if len(batch) < SCAN_BATCH:
            return StoreStats(sessions, messages, size if sized and size else None)
        start = b"(" + sids[-1]


def purge_all_op(keys: Keys) -> Operation[int]:
    """``purge_expired``: what sessions that are gone left in the index and as hashes
    (:func:`~threadline.stores.redis._ops.purge_op`), then in the recent set and in
    every owner's sets (found by a SCAN: an owner nobody lists any more keeps the
    members of its expired sessions until then); how many sessions lost a key."""
    removed = yield from purge_op(keys)
    sets: list[tuple[bytes, str | None]] = [(keys.recent, None)]
    for head in keys.owner_heads:
        cursor = 0
        while True:
            cursor, found = yield from scan_op(glob_escape(head) + b"*", "zset", cursor)
            sets += [(key, text(key[len(head):])) for key in map(_member, found)]
            if not cursor:
                break
    for zset, owner in sets:
        query = ListQuery("recent", owner, "", None, SCAN_BATCH, None)
        cursor = 0
        while True:
            ((cursor, found),) = yield Batch([("ZSCAN", zset, cursor, "COUNT", SCAN_BATCH)])
            _, dropped = yield from _keep(keys, _pairs(found), query, b"")
            removed += dropped
            if not int(cursor):
                break
    return removed
