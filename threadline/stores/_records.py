"""Records: small keyed values a store keeps beside a session's messages.

A session's *records* are a sorted map ``key -> bytes`` that lives and dies with the
session: :meth:`Store.delete_session` deletes them with the messages, ``expire`` and a
store's ``ttl`` expire them together, and ``destroy`` drops them. Integrations keep what
is not a message there (LangGraph checkpoints, channel blobs and pending writes; later
summaries), so every backend needs only these four primitives, not one schema per
integration:

- ``put_records(sid, {key: value}, delete=[keys], ttl=None)``: upsert and delete in one
  transaction where the backend has one (SQL, Redis MULTI/Lua, memory); a backend whose
  transactions are bounded (DynamoDB, Cosmos DB) writes the records *in the given
  order*, then the deletes, so a caller that puts its commit record last is crash-safe.
  With a TTL (``ttl`` or the store's), every record of the session gets the same
  deadline (refreshed by each put), so records that are still referenced never expire
  before the ones referencing them.
- ``get_records(sid, keys)``: the values of those keys that exist (a dict).
- ``scan_records(sid, prefix, after=, before=, limit=, reverse=, keys_only=)``: keys that
  start with ``prefix``, strictly between ``after`` and ``before``, in byte order
  (descending with ``reverse``), at most ``limit``; ``keys_only`` returns ``b""`` values.
- ``delete_records(sid, keys=None, prefix=None)``: those keys, or every key with that
  prefix, or (neither given) all of the session's records; the messages stay.

Keys are printable ASCII without spaces (``!`` to ``~``), 1 to
:data:`MAX_RECORD_KEY_LENGTH` characters, so byte order, code-point order and every
backend's collation agree. Callers escape what they put in a key (:func:`escape_key_part`).
Values are bytes, at most the store's ``max_message_bytes``. A session that has records
but no messages is not listed by ``list_sessions`` and has no ``session_info``.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from threadline._errors import InputError

__all__ = [
    "DELETED_PREFIX",
    "MAX_RECORD_BATCH",
    "MAX_RECORD_KEY_LENGTH",
    "check_record_batch",
    "check_record_keys",
    "check_scan_args",
    "escape_key_part",
    "scan_sorted",
    "tombstone_key",
    "validate_record_key",
]

#: The longest record key (characters, all ASCII).
MAX_RECORD_KEY_LENGTH = 512
#: The most records one ``put_records`` / ``get_records`` / ``delete_records`` takes.
MAX_RECORD_BATCH = 10_000

_KEY = re.compile(r"[!-~]{1," + str(MAX_RECORD_KEY_LENGTH) + "}")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.:|+=@-]")


def validate_record_key(key: object) -> str:
    """The key if it is acceptable, else an :class:`InputError` saying why."""
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise InputError(
            f"a record key must be 1 to {MAX_RECORD_KEY_LENGTH} printable ASCII characters "
            f"without spaces, got {key!r:.80}")
    return key


def escape_key_part(part: str) -> str:
    """``part`` made safe inside a record key: every character but ``A-Za-z0-9_.:|+=@-``
    becomes ``%XX`` (its UTF-8 bytes), so ``/`` can separate parts and order is kept
    for the ASCII ones. ``""`` stays ``""``.

    >>> escape_key_part("child:1|sub/x é")
    'child:1|sub%2Fx%20%C3%A9'
    """
    if not _UNSAFE.search(part):
        return part
    return _UNSAFE.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode(
        "utf-8", "surrogatepass")), part)


def check_record_batch(records: Mapping[str, Any], delete: Collection[str],
                       max_bytes: int) -> dict[str, bytes]:
    """The records of a ``put_records`` as a dict of bytes, validated: keys, value types
    and sizes (``max_bytes``), batch size, and no key both written and deleted."""
    if not isinstance(records, Mapping):
        raise InputError(f"records must be a mapping of key -> bytes, got "
                         f"{type(records).__name__}")
    if len(records) + len(delete) > MAX_RECORD_BATCH:
        raise InputError(f"at most {MAX_RECORD_BATCH:,} records per call, got "
                         f"{len(records) + len(delete):,}")
    batch: dict[str, bytes] = {}
    for key, value in records.items():
        validate_record_key(key)
        if isinstance(value, bytearray | memoryview):
            value = bytes(value)
        if not isinstance(value, bytes):
            raise InputError(f"record {key!r} must be bytes, got {type(value).__name__}")
        if len(value) > max_bytes:
            raise InputError(
                f"record {key!r} is {len(value):,} bytes, more than the store's "
                f"max_message_bytes ({max_bytes:,}); nothing was stored")
        batch[key] = value
    for key in check_record_keys(delete):
        if key in batch:
            raise InputError(f"record {key!r} is both written and deleted")
    return batch


def check_record_keys(keys: Collection[str]) -> list[str]:
    """``keys`` as a list, each validated (a str is refused: it is not a collection of
    keys)."""
    if isinstance(keys, str | bytes) or not isinstance(keys, Collection):
        raise InputError(f"keys must be a collection of str, got {type(keys).__name__}")
    if len(keys) > MAX_RECORD_BATCH:
        raise InputError(f"at most {MAX_RECORD_BATCH:,} keys per call, got {len(keys):,}")
    return [validate_record_key(key) for key in keys]


def check_scan_args(prefix: object, after: object, before: object, limit: object) -> None:
    """Validate ``scan_records`` arguments the same way in every backend."""
    if prefix != "":
        validate_record_key(prefix)
    for bound in (after, before):
        if bound is not None:
            validate_record_key(bound)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                              or not 1 <= limit <= MAX_RECORD_BATCH):
        raise InputError(f"limit must be None or an int from 1 to {MAX_RECORD_BATCH:,}, "
                         f"got {limit!r:.40}")


def scan_sorted(keys: Sequence[str], values: Mapping[str, bytes], prefix: str,
                after: str | None, before: str | None, limit: int | None, reverse: bool,
                keys_only: bool) -> list[tuple[str, bytes]]:
    """``scan_records`` over ``keys`` (sorted; keys are ASCII, so that is byte order) and
    their ``values``, with validated arguments: what a backend that holds one session's
    records in memory (memory, file) answers."""
    start = bisect.bisect_left(keys, prefix)
    if after is not None:
        start = max(start, bisect.bisect_right(keys, after))
    # Every key with the prefix sorts below prefix + "\x7f" (keys are "!" to "~").
    end = bisect.bisect_left(keys, prefix + "\x7f") if prefix else len(keys)
    if before is not None:
        end = min(end, bisect.bisect_left(keys, before))
    chosen = list(keys[start:end]) if start < end else []
    if reverse:
        chosen.reverse()
    if limit is not None:
        chosen = chosen[:limit]
    return [(key, b"" if keys_only else values[key]) for key in chosen]


#: Records under this prefix mark a message deleted, by its id: messages are never
#: rewritten, so deleting one (an item of the server's Conversations API, the Agents SDK's
#: ``pop_item``, LlamaIndex's ``delete_message``) writes a tombstone beside the session and
#: the readers that honour deletions leave the message out. One convention for all of them.
DELETED_PREFIX = "openai:s:deleted:"


def tombstone_key(message_id: str) -> str:
    """The record marking the message (or server item) ``message_id`` deleted, escaped:
    ids may hold any printable character, record keys only ASCII without spaces."""
    return DELETED_PREFIX + escape_key_part(message_id)
