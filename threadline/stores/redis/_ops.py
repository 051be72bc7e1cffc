"""Redis keys and commands (pure): each store operation as a generator of command batches.

An operation yields :class:`Batch` es of commands, receives each batch's replies and
returns its result, so :mod:`threadline.stores.redis._store` drives the same operation
with the sync client or an asyncio one. Nothing here does I/O. The key layout is
described in that module's docstring.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from threadline._errors import InputError, StoreError
from threadline.messages._values import BaseMessage
from threadline.stores._base import (
    SessionInfo,
    SessionPage,
    check_messages,
    check_page_args,
    decode_messages,
    encode_message,
    validate_session_id,
    validate_ttl,
)

T = TypeVar("T")

SCHEMA_VERSION = 1
SCAN_BATCH = 500

# Drop the index entry and the metadata of sessions whose list is gone, atomically, so
# a session re-created meanwhile keeps both. Returns how many sessions lost a key.
# KEYS: index, then (list, meta) pairs; ARGV: the session ids.
CLEANUP_SCRIPT = """
local removed = 0
for i = 1, #ARGV do
  if redis.call('EXISTS', KEYS[2 * i]) == 0 then
    local dropped = redis.call('ZREM', KEYS[1], ARGV[i]) + redis.call('DEL', KEYS[2 * i + 1])
    if dropped > 0 then
      removed = removed + 1
    end
  end
end
return removed
"""

# Stamp a session's metadata. A list that is gone means a session that starts afresh:
# expired, or cleared by LangChain's RedisChatMessageHistory, whose clear() deletes the
# list only. Its stale hash goes first, so created_at is now. Runs in the append's MULTI
# before the LPUSH, so the check and the push are one atomic step and one round trip.
# KEYS: list, meta; ARGV: now.
TOUCH_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[2])
end
redis.call('HSETNX', KEYS[2], 'created_at', ARGV[1])
return redis.call('HSET', KEYS[2], 'updated_at', ARGV[1])
"""


# -- keys and commands (pure) ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Keys:
    prefix: bytes

    @property
    def index(self) -> bytes:
        return self.prefix + b"\x00sessions"

    @property
    def schema(self) -> bytes:
        return self.prefix + b"\x00schema"

    def messages(self, sid: bytes) -> bytes:
        return self.prefix + sid

    @property
    def meta_prefix(self) -> bytes:
        return self.prefix + b"\x00meta\x00"

    def meta(self, sid: bytes) -> bytes:
        return self.meta_prefix + sid


def sid_bytes(session_id: str) -> bytes:
    # surrogatepass: any str validate_session_id accepts round-trips.
    return validate_session_id(session_id).encode("utf-8", "surrogatepass")


def text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogatepass")


def utc(raw: bytes | None) -> datetime | None:
    return None if raw is None else datetime.fromtimestamp(float(raw), UTC)


def milliseconds(ttl: float) -> int:
    return max(1, round(ttl * 1000))


Command = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Batch:
    """Commands sent in one round trip; ``transaction`` wraps them in MULTI/EXEC."""

    commands: list[Command]
    transaction: bool = False


# An operation: yields batches, receives each batch's replies, returns its result.
Operation = Generator[Batch, list[Any], T]


def cleanup_command(keys: Keys, sids: Sequence[bytes]) -> Command:
    pairs = [k for sid in sids for k in (keys.messages(sid), keys.meta(sid))]
    return ("EVAL", CLEANUP_SCRIPT, 1 + len(pairs), keys.index, *pairs, *sids)


def setup_op(keys: Keys) -> Operation[None]:
    (_, version) = yield Batch([("SET", keys.schema, SCHEMA_VERSION, "NX"),
                                 ("GET", keys.schema)])
    if version is not None and int(version) > SCHEMA_VERSION:
        raise StoreError(
            f"the keys under this prefix use layout version {int(version)}, newer than this "
            f"threadline understands ({SCHEMA_VERSION}); upgrade threadline"
        )


def append_op(keys: Keys, session_id: str, messages: Sequence[BaseMessage],
               ttl: float | None) -> Operation[None]:
    sid = sid_bytes(session_id)
    batch = check_messages(messages)
    if not batch:
        return
    encoded = [encode_message(m) for m in batch]
    now = repr(time.time())
    key, meta = keys.messages(sid), keys.meta(sid)
    # LPUSH with several values pushes them one by one: the last (newest) ends at the head.
    commands: list[Command] = [("EVAL", TOUCH_SCRIPT, 2, key, meta, now),
                               ("LPUSH", key, *encoded)]
    if ttl is not None:
        commands += [("PEXPIRE", key, milliseconds(ttl)), ("PEXPIRE", meta, milliseconds(ttl))]
    commands.append(("ZADD", keys.index, "NX", 0, sid))
    yield Batch(commands, transaction=True)


def get_op(keys: Keys, session_id: str, last: int | None) -> Operation[list[BaseMessage]]:
    sid = sid_bytes(session_id)
    if last is not None and (isinstance(last, bool) or not isinstance(last, int) or last < 0):
        raise InputError(f"last must be a non-negative int or None, got {last!r}")
    if last == 0:
        return []
    (items,) = yield Batch([("LRANGE", keys.messages(sid), 0, -1 if last is None else last - 1)])
    return decode_messages(items[::-1])


def delete_op(keys: Keys, session_id: str) -> Operation[bool]:
    sid = sid_bytes(session_id)
    deleted, _, _ = yield Batch([("DEL", keys.messages(sid)), ("DEL", keys.meta(sid)),
                                  ("ZREM", keys.index, sid)], transaction=True)
    return bool(deleted)


def info_op(keys: Keys, session_id: str) -> Operation[SessionInfo | None]:
    sid = sid_bytes(session_id)
    key = keys.messages(sid)
    count, (created, updated), pttl = yield Batch(
        [("LLEN", key), ("HMGET", keys.meta(sid), "created_at", "updated_at"),
         ("PTTL", key)], transaction=True)
    if not count:
        return None
    expires = (datetime.now(UTC).timestamp() + pttl / 1000) if pttl > 0 else None
    return SessionInfo(session_id, int(count), utc(created), utc(updated),
                       None if expires is None else datetime.fromtimestamp(expires, UTC))


def expire_op(keys: Keys, session_id: str, ttl: float | None) -> Operation[None]:
    sid = sid_bytes(session_id)
    ttl = validate_ttl(ttl)
    pair = (keys.messages(sid), keys.meta(sid))
    if ttl is None:
        yield Batch([("PERSIST", k) for k in pair], transaction=True)
    else:
        yield Batch([("PEXPIRE", k, milliseconds(ttl)) for k in pair], transaction=True)


def live_op(keys: Keys, sids: list[bytes]) -> Operation[tuple[list[bytes], int]]:
    """The ids whose list exists; the others lose their index entry and metadata."""
    if not sids:
        return [], 0
    exists = yield Batch([("EXISTS", keys.messages(sid)) for sid in sids])
    dead = [sid for sid, found in zip(sids, exists, strict=True) if not found]
    removed = 0
    if dead:
        (removed,) = yield Batch([cleanup_command(keys, dead)])
    return [sid for sid, found in zip(sids, exists, strict=True) if found], int(removed)


def list_op(keys: Keys, prefix: str, limit: int,
             cursor: str | None) -> Operation[SessionPage]:
    check_page_args(prefix, limit, cursor)
    low = prefix.encode("utf-8", "surrogatepass")
    start = b"[" + low if low else b"-"
    if cursor is not None:
        after = cursor.encode("utf-8", "surrogatepass")
        if after >= low:
            start = b"(" + after
    # No UTF-8 byte is 0xff, so every id starting with the prefix sorts below prefix+0xff.
    stop = b"(" + low + b"\xff" if low else b"+"
    found: list[bytes] = []
    while len(found) <= limit:
        want = limit + 1 - len(found)
        (batch,) = yield Batch([("ZRANGEBYLEX", keys.index, start, stop, "LIMIT", 0, want)])
        live, _ = yield from live_op(keys, list(batch))
        found += live
        if len(batch) < want:
            break
        start = b"(" + batch[-1]
    ids = [text(sid) for sid in found[:limit]]
    return SessionPage(ids, ids[-1] if len(found) > limit else None)


def purge_op(keys: Keys) -> Operation[int]:
    """Drop what is left of sessions whose list is gone; how many sessions lost a key."""
    start, removed = b"-", 0
    while True:
        (batch,) = yield Batch([("ZRANGEBYLEX", keys.index, start, b"+",
                                  "LIMIT", 0, SCAN_BATCH)])
        _, dropped = yield from live_op(keys, list(batch))
        removed += dropped
        if len(batch) < SCAN_BATCH:
            break
        start = b"(" + batch[-1]
    # A metadata hash can outlive its index entry too (LangChain cleared the list, then a
    # listing by an older threadline dropped the entry alone): only a SCAN finds those.
    pattern, cut, cursor = glob_escape(keys.meta_prefix) + b"*", len(keys.meta_prefix), 0
    while True:
        ((cursor, found),) = yield Batch([("SCAN", cursor, "MATCH", pattern,
                                           "COUNT", SCAN_BATCH, "TYPE", "hash")])
        if found:
            (dropped,) = yield Batch([cleanup_command(keys, [k[cut:] for k in found])])
            removed += int(dropped)
        if int(cursor) == 0:
            return removed


def glob_escape(raw: bytes) -> bytes:
    out = bytearray()
    for byte in raw:
        if byte in b"*?[]\\":
            out += b"\\"
        out.append(byte)
    return bytes(out)
