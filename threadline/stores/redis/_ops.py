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
    check_message_size,
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

#: Redis refuses a bulk string (one command argument) longer than its
#: ``proto-max-bulk-len``: 512 MB unless configured otherwise, and never below 1 MB.
DEFAULT_MAX_BULK = 512 * 1024 * 1024
MIN_MAX_BULK = 1024 * 1024

# Drop the index entry, the metadata and the id set of sessions whose list is gone,
# atomically, so a session re-created meanwhile keeps them. Returns how many sessions
# lost a key. KEYS: index, then (list, meta, ids) triples; ARGV: the session ids.
CLEANUP_SCRIPT = """
local removed = 0
for i = 1, #ARGV do
  if redis.call('EXISTS', KEYS[3 * i - 1]) == 0 then
    local dropped = redis.call('ZREM', KEYS[1], ARGV[i])
      + redis.call('DEL', KEYS[3 * i], KEYS[3 * i + 1])
    if dropped > 0 then
      removed = removed + 1
    end
  end
end
return removed
"""

# Append a batch, atomically and in one round trip; returns how many messages it pushed.
# KEYS: list, meta, ids, index. ARGV: now, ttl in ms ('' = leave the expiry as it is),
# session id, then a (tag, message) pair per message, oldest first: tag '' for a message
# without an id, '=' .. id otherwise.
#
# 1. A list that is gone is a session that starts afresh (expired, or cleared by
#    LangChain's RedisChatMessageHistory, whose clear() deletes the list only): its stale
#    hash and id set go first, so created_at is now and old ids are forgotten.
# 2. meta.ids_cover is how many of the list's oldest messages the id set accounts for.
#    Other writers (LangChain, threadline before id sets) LPUSH without updating it: the
#    newest length - ids_cover messages are read once to learn their ids. A list shorter
#    than ids_cover (trimmed by someone) is read whole.
# 3. A message whose id the set holds (stored before, or earlier in this batch) is
#    skipped; the others are pushed: LPUSH puts each at the head, so the newest is first.
# 4. The three keys share one expiry: the given ttl, else the list's own (LangChain may
#    have set one), so the hash and the set never outlive the list for long.
APPEND_SCRIPT = """
local list, meta, ids = KEYS[1], KEYS[2], KEYS[3]
local length = redis.call('LLEN', list)
local cover = 0
if length == 0 then
  redis.call('DEL', meta, ids)
else
  cover = tonumber(redis.call('HGET', meta, 'ids_cover')) or 0
end
if cover ~= length then
  local unseen = length - cover - 1
  if cover > length then
    redis.call('DEL', ids)
    unseen = -1
  end
  for _, raw in ipairs(redis.call('LRANGE', list, 0, unseen)) do
    local ok, message = pcall(cjson.decode, raw)
    if ok and type(message) == 'table' and type(message.data) == 'table'
        and type(message.data.id) == 'string' then
      redis.call('SADD', ids, message.data.id)
    end
  end
end
local pushed = 0
for i = 4, #ARGV - 1, 2 do
  local tag = ARGV[i]
  if tag == '' or redis.call('SADD', ids, string.sub(tag, 2)) == 1 then
    redis.call('LPUSH', list, ARGV[i + 1])
    pushed = pushed + 1
  end
end
if length + pushed == 0 then
  return 0
end
redis.call('HSETNX', meta, 'created_at', ARGV[1])
redis.call('HSET', meta, 'updated_at', ARGV[1], 'ids_cover', length + pushed)
local ttl = ARGV[2]
if ttl == '' then
  ttl = redis.call('PTTL', list)
  if ttl < 0 then
    ttl = nil
  end
else
  redis.call('PEXPIRE', list, ttl)
end
if ttl then
  redis.call('PEXPIRE', meta, ttl)
  redis.call('PEXPIRE', ids, ttl)
end
redis.call('ZADD', KEYS[4], 'NX', 0, ARGV[3])
return pushed
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

    @property
    def ids_prefix(self) -> bytes:
        return self.prefix + b"\x00ids\x00"

    def ids(self, sid: bytes) -> bytes:
        return self.ids_prefix + sid

    def session(self, sid: bytes) -> tuple[bytes, bytes, bytes]:
        """Every key of one session: list, metadata, id set."""
        return self.messages(sid), self.meta(sid), self.ids(sid)


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
    """Commands sent in one round trip; ``transaction`` wraps them in MULTI/EXEC.

    ``writes`` marks an append's write: if the connection fails after it was sent, it
    may or may not have run. With ``errors_as_replies``, a command Redis refuses gets
    its error (an exception object) as its reply instead of failing the operation."""

    commands: list[Command]
    transaction: bool = False
    writes: bool = False
    errors_as_replies: bool = False


# An operation: yields batches, receives each batch's replies, returns its result.
Operation = Generator[Batch, list[Any], T]


def cleanup_command(keys: Keys, sids: Sequence[bytes]) -> Command:
    triples = [k for sid in sids for k in keys.session(sid)]
    return ("EVAL", CLEANUP_SCRIPT, 1 + len(triples), keys.index, *triples, *sids)


def setup_op(keys: Keys) -> Operation[None]:
    (_, version) = yield Batch([("SET", keys.schema, SCHEMA_VERSION, "NX"),
                                 ("GET", keys.schema)])
    if version is not None and int(version) > SCHEMA_VERSION:
        raise StoreError(
            f"the keys under this prefix use layout version {int(version)}, newer than this "
            f"threadline understands ({SCHEMA_VERSION}); upgrade threadline"
        )


def append_op(keys: Keys, session_id: str, messages: Sequence[BaseMessage],
               ttl: float | None) -> Operation[int]:
    """One EVAL of :data:`APPEND_SCRIPT`; how many messages were stored (those whose id
    the session held are not). A message larger than the server's
    ``proto-max-bulk-len`` is refused before anything is sent."""
    sid = sid_bytes(session_id)
    batch = check_messages(messages)
    if not batch:
        return 0
    args: list[str] = []
    for message in batch:
        args += ("" if message.id is None else f"={message.id}", encode_message(message))
    # A str of n characters is at most 4n bytes of UTF-8: only long ones need measuring,
    # and only a message over Redis's smallest possible limit needs the server's.
    sizes = [len(a.encode("utf-8", "surrogatepass")) for a in args
             if 4 * len(a) > MIN_MAX_BULK]
    if max(sizes, default=0) > MIN_MAX_BULK:
        (reply,) = yield Batch([("CONFIG", "GET", "proto-max-bulk-len")],
                               errors_as_replies=True)
        check_message_size(max(sizes), max_bulk(reply),
                           "Redis's proto-max-bulk-len, its largest value")
    key, meta, ids = keys.session(sid)
    (pushed,) = yield Batch([("EVAL", APPEND_SCRIPT, 4, key, meta, ids, keys.index,
                              repr(time.time()), "" if ttl is None else milliseconds(ttl),
                              sid, *args)], writes=True)
    return int(pushed)


def max_bulk(reply: Any) -> int:
    """The server's ``proto-max-bulk-len`` from a CONFIG GET reply; Redis's default when
    CONFIG is not allowed (an ACL, a renamed command, a managed service)."""
    if isinstance(reply, list | dict):
        values = list(reply.values()) if isinstance(reply, dict) else reply[1::2]
        value = values[0] if values else b""
        if isinstance(value, bytes | str) and value.isdigit():
            return int(value)
    return DEFAULT_MAX_BULK


def get_op(keys: Keys, session_id: str, last: int | None,
           skip_invalid: bool = False) -> Operation[list[BaseMessage]]:
    sid = sid_bytes(session_id)
    if last is not None and (isinstance(last, bool) or not isinstance(last, int) or last < 0):
        raise InputError(f"last must be a non-negative int or None, got {last!r}")
    if last == 0:
        return []
    (items,) = yield Batch([("LRANGE", keys.messages(sid), 0, -1 if last is None else last - 1)])
    return decode_messages(items[::-1], session_id=session_id, skip_invalid=skip_invalid,
                           from_end=last is not None)


def delete_op(keys: Keys, session_id: str) -> Operation[bool]:
    sid = sid_bytes(session_id)
    deleted, _, _ = yield Batch([("DEL", keys.messages(sid)),
                                  ("DEL", keys.meta(sid), keys.ids(sid)),
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
    if ttl is None:
        yield Batch([("PERSIST", k) for k in keys.session(sid)], transaction=True)
    else:
        yield Batch([("PEXPIRE", k, milliseconds(ttl)) for k in keys.session(sid)],
                    transaction=True)


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
    # A metadata hash or an id set can outlive its index entry too (LangChain cleared the
    # list, then a listing by an older threadline dropped the entry alone): only a SCAN
    # finds those. Hashes first: their cleanup takes the id set along.
    for head, kind in ((keys.meta_prefix, "hash"), (keys.ids_prefix, "set")):
        pattern, cut, cursor = glob_escape(head) + b"*", len(head), 0
        while True:
            ((cursor, found),) = yield Batch([("SCAN", cursor, "MATCH", pattern,
                                               "COUNT", SCAN_BATCH, "TYPE", kind)])
            if found:
                (dropped,) = yield Batch([cleanup_command(keys, [k[cut:] for k in found])])
                removed += int(dropped)
            if int(cursor) == 0:
                break
    return removed


def glob_escape(raw: bytes) -> bytes:
    out = bytearray()
    for byte in raw:
        if byte in b"*?[]\\":
            out += b"\\"
        out.append(byte)
    return bytes(out)
