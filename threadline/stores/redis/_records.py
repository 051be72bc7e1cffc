"""A session's records in Redis (pure): their Lua scripts and operations.

A session's records are two keys of the store's own (see
:meth:`~threadline.stores.redis._keys.Keys.records`), which no session id can name and
no other store shares, so unlike the list they need no ownership check:

* ``P\\0rec\\0{session_id}`` — a hash: record key -> value (bytes);
* ``P\\0reckeys\\0{session_id}`` — a sorted set of the record keys, all scored 0, so a
  scan is a ``ZRANGEBYLEX`` / ``ZREVRANGEBYLEX`` with ``LIMIT`` (byte order, O(log n)
  to find the start whatever the session holds).

Every write is one script, so the hash and the set never disagree: a put HSETs and
ZADDs its records, HDELs and ZREMs its deletes, and with a TTL gives both keys the same
expiry (every record of the session then has the put's deadline, as the contract asks);
without one it leaves their expiry as it is. A scan is one script too (the range, then
HMGET of the keys found), so it is one round trip and sees one state. Redis expires the
two keys itself, together (same deadline): nothing is left for ``purge_expired``. The
session's DELETE and EXPIRE scripts (:mod:`threadline.stores.redis._scripts`) delete
and expire them with its other keys, atomically.

Each operation is built by a plain function that validates everything first (so bad
input raises before any I/O, even the store's setup), then returns the generator of
command batches that :mod:`threadline.stores.redis._store` drives with the sync or the
asyncio client. Their batches are ``raw``: values stay bytes on a client that decodes
responses.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from threadline._errors import InputError
from threadline.stores._records import (
    check_record_batch,
    check_record_keys,
    check_scan_args,
    validate_record_key,
)
from threadline.stores.redis._keys import Keys, sid_bytes
from threadline.stores.redis._ops import (
    MIN_MAX_BULK,
    Batch,
    Operation,
    max_bulk,
    milliseconds,
)

__all__ = ["delete_records_op", "get_records_op", "put_records_op", "scan_records_op"]

# KEYS[1], KEYS[2]: the session's values hash and key index. Lua's unpack() is bounded
# (by LUAI_MAXCSTACK, 8000): keys are handed to HDEL / ZREM / HMGET 1000 at a time.
_DROP = """
local function drop(keys, from, to)
  for i = from, to, 1000 do
    local last = math.min(i + 999, to)
    redis.call('HDEL', KEYS[1], unpack(keys, i, last))
    redis.call('ZREM', KEYS[2], unpack(keys, i, last))
  end
end
"""

# ARGV[1]: the ttl in ms ('' = leave the expiry as it is); ARGV[2]: the number n of
# records written; then n (key, value) pairs; then the keys to delete.
PUT = _DROP + """
local n = tonumber(ARGV[2])
for i = 3, 2 * n + 1, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  redis.call('ZADD', KEYS[2], 0, ARGV[i])
end
drop(ARGV, 2 * n + 3, #ARGV)
if ARGV[1] ~= '' then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  redis.call('PEXPIRE', KEYS[2], ARGV[1])
end
return 0
"""

# ARGV[1]: ZRANGEBYLEX or ZREVRANGEBYLEX; ARGV[2], ARGV[3]: its bounds; ARGV[4]: the
# most keys (-1: all). Returns the keys found and their values.
SCAN = """
local keys = redis.call(ARGV[1], KEYS[2], ARGV[2], ARGV[3], 'LIMIT', 0, ARGV[4])
local values = {}
for i = 1, #keys, 1000 do
  local part = redis.call('HMGET', KEYS[1], unpack(keys, i, math.min(i + 999, #keys)))
  for j = 1, #part do
    values[#values + 1] = part[j]
  end
end
return {keys, values}
"""

# ARGV[1], ARGV[2]: the ZRANGEBYLEX bounds of a prefix ('' = no prefix); then keys.
DELETE = _DROP + """
local doomed = {}
for i = 3, #ARGV do
  doomed[#doomed + 1] = ARGV[i]
end
if ARGV[1] ~= '' then
  for _, key in ipairs(redis.call('ZRANGEBYLEX', KEYS[2], ARGV[1], ARGV[2])) do
    doomed[#doomed + 1] = key
  end
end
drop(doomed, 1, #doomed)
return #doomed
"""

# Every record key is below 0x7f, so the keys starting with p are those in [p, p + 0x7f).
_ABOVE_KEYS = "\x7f"


def _ascii(key: str) -> bytes:
    return key.encode("ascii")


def put_records_op(keys: Keys, session_id: str, records: Mapping[str, bytes],
                   delete: Collection[str], ttl: float | None,
                   max_bytes: int) -> Operation[None]:
    """One EVAL of :data:`PUT`; ``ttl`` is the effective one (the call's or the store's).
    A value larger than the server's ``proto-max-bulk-len`` is refused before anything is
    written (the limit is read with CONFIG GET only for values over 1 MB, Redis's
    smallest possible limit)."""
    sid = sid_bytes(session_id)
    batch = check_record_batch(records, delete, max_bytes)
    doomed = [_ascii(key) for key in check_record_keys(delete)]
    return _put(keys.records(sid), batch, doomed, ttl)


def _put(own: tuple[bytes, bytes], batch: dict[str, bytes], doomed: list[bytes],
         ttl: float | None) -> Operation[None]:
    if not batch and not doomed and ttl is None:
        return
    largest = max(map(len, batch.values()), default=0)
    if largest > MIN_MAX_BULK:
        (reply,) = yield Batch([("CONFIG", "GET", "proto-max-bulk-len")],
                               errors_as_replies=True)
        limit = max_bulk(reply)
        for key, value in batch.items():
            if len(value) > limit:
                raise InputError(
                    f"record {key!r} is {len(value):,} bytes, more than Redis's "
                    f"proto-max-bulk-len ({limit:,} bytes); nothing was stored")
    pairs = [part for key, value in batch.items() for part in (_ascii(key), value)]
    yield Batch([("EVAL", PUT, 2, *own, "" if ttl is None else milliseconds(ttl),
                  len(batch), *pairs, *doomed)], raw=True)


def get_records_op(keys: Keys, session_id: str,
                   wanted: Collection[str]) -> Operation[dict[str, bytes]]:
    """One HMGET of the session's values hash."""
    sid = sid_bytes(session_id)
    return _get(keys.records(sid)[0], check_record_keys(wanted))


def _get(values: bytes, wanted: list[str]) -> Operation[dict[str, bytes]]:
    if not wanted:
        return {}
    (found,) = yield Batch([("HMGET", values, *map(_ascii, wanted))], raw=True)
    return {key: bytes(value) for key, value in zip(wanted, found, strict=True)
            if value is not None}


def scan_bounds(prefix: str, after: str | None, before: str | None) -> tuple[bytes, bytes]:
    """The ZRANGEBYLEX ``min`` and ``max`` of the keys that start with ``prefix`` and lie
    strictly between ``after`` and ``before`` (record keys are ASCII: byte order is
    Python's str order)."""
    low = b"[" + _ascii(prefix) if prefix else b"-"
    if after is not None and after >= prefix:
        low = b"(" + _ascii(after)
    ceilings = [bound for bound in (prefix + _ABOVE_KEYS if prefix else None, before)
                if bound is not None]
    high = b"(" + min(ceilings).encode("ascii") if ceilings else b"+"
    return low, high


def scan_records_op(keys: Keys, session_id: str, prefix: str, after: str | None,
                    before: str | None, limit: int | None, reverse: bool,
                    keys_only: bool) -> Operation[list[tuple[str, bytes]]]:
    """One EVAL of :data:`SCAN`, or with ``keys_only`` one range of the key index."""
    sid = sid_bytes(session_id)
    check_scan_args(prefix, after, before, limit)
    low, high = scan_bounds(prefix, after, before)
    bounds = (high, low) if reverse else (low, high)
    return _scan(keys.records(sid), "ZREVRANGEBYLEX" if reverse else "ZRANGEBYLEX",
                 bounds, -1 if limit is None else limit, keys_only)


def _scan(own: tuple[bytes, bytes], command: str, bounds: tuple[bytes, bytes], count: int,
          keys_only: bool) -> Operation[list[tuple[str, bytes]]]:
    if keys_only:
        (found,) = yield Batch([(command, own[1], *bounds, "LIMIT", 0, count)], raw=True)
        return [(key.decode("ascii"), b"") for key in found]
    ((found, values),) = yield Batch([("EVAL", SCAN, 2, *own, command, *bounds, count)],
                                     raw=True)
    # A value is missing only if the hash and the set disagreed, which no script allows.
    return [(key.decode("ascii"), bytes(value)) for key, value in zip(found, values, strict=True)
            if value is not None]


def delete_records_op(keys: Keys, session_id: str, wanted: Collection[str] | None,
                      prefix: str | None) -> Operation[None]:
    """Those keys and the keys with that prefix (one EVAL of :data:`DELETE`), or, neither
    given, both keys of the session's records (one DEL)."""
    sid = sid_bytes(session_id)
    doomed = None if wanted is None else [_ascii(key) for key in check_record_keys(wanted)]
    if prefix is not None:
        validate_record_key(prefix)
    return _delete(keys.records(sid), doomed, prefix)


def _delete(own: tuple[bytes, bytes], doomed: list[bytes] | None,
            prefix: str | None) -> Operation[None]:
    if doomed is None and prefix is None:
        yield Batch([("DEL", *own)])
        return
    if not doomed and prefix is None:
        return
    low, high = scan_bounds(prefix, None, None) if prefix is not None else (b"", b"")
    yield Batch([("EVAL", DELETE, 2, *own, low, high, *(doomed or ()))], raw=True)
