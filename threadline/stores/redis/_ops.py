"""Redis commands (pure): each store operation as a generator of command batches.

An operation yields :class:`Batch` es of commands, receives each batch's replies and
returns its result, so :mod:`threadline.stores.redis._store` drives the same operation
with the sync client or an asyncio one. Nothing here does I/O. The key layout is
described in that module's docstring; every operation on one session is one script of
:mod:`threadline.stores.redis._scripts`, which first checks that the session's list is
this store's (:func:`by_id` builds its keys and arguments).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from threadline._errors import InputError, StoreError
from threadline.messages._values import BaseMessage
from threadline.stores._base import (
    SessionInfo,
    SessionPage,
    check_last,
    check_message_size,
    check_messages,
    check_page_args,
    decode_messages,
    encode_message,
    validate_session_id,
    validate_ttl,
)
from threadline.stores.redis import _scripts as lua
from threadline.stores.redis._keys import Keys, sid_bytes, text

T = TypeVar("T")

SCHEMA_VERSION = 1
SCAN_BATCH = 500

#: Redis refuses a bulk string (one command argument) longer than its
#: ``proto-max-bulk-len``: 512 MB unless configured otherwise, and never below 1 MB.
DEFAULT_MAX_BULK = 512 * 1024 * 1024
MIN_MAX_BULK = 1024 * 1024


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
    its error (an exception object) as its reply instead of failing the operation.
    ``raw`` replies are bytes even on a client made with ``decode_responses=True``
    (records' values are bytes, not text); not with ``transaction`` (redis-py decodes
    EXEC's reply)."""

    commands: list[Command]
    transaction: bool = False
    writes: bool = False
    errors_as_replies: bool = False
    raw: bool = False


# An operation: yields batches, receives each batch's replies, returns its result.
Operation = Generator[Batch, list[Any], T]


def by_id(keys: Keys, script: str, sid: bytes, *args: Any,
          own: Sequence[bytes] = ()) -> Command:
    """An EVAL of ``script`` (one of :mod:`~threadline.stores.redis._scripts`) on one
    session, with the keys and arguments its ownership check reads, then the script's
    ``own`` keys and ``args``."""
    rivals = keys.rivals(sid)
    rival_keys = [key for r in rivals
                  for key in (r.keys.index, r.keys.schema, r.keys.meta(r.sid), r.keys.ids(r.sid))]
    rival_args = [arg for r in rivals for arg in (r.sid, "1" if r.longer else "0")]
    return ("EVAL", script, 4 + len(rival_keys) + len(own), *keys.session(sid), keys.index,
            *rival_keys, *own, sid, len(rivals), *rival_args, *args)


def _str(reply: Any) -> str:
    return reply.decode() if isinstance(reply, bytes) else str(reply)


def standing_op(keys: Keys, sids: Sequence[bytes]) -> Operation[list[str]]:
    """Where each session's list stands ('ours', 'none', 'foreign' or 'taken'), for many
    sessions in one round trip of plain reads: the rule of
    :data:`~threadline.stores.redis._scripts.STANDING` for bulk work (listing, reindex,
    destroy), not atomic: a list changing hands during the call may be judged as it was."""
    if not sids:
        return []
    commands: list[Command] = []
    rivals = [keys.rivals(sid) for sid in sids]
    for sid, others in zip(sids, rivals, strict=True):
        commands.append(("TYPE", keys.messages(sid)))
        if others:
            commands.append(("ZSCORE", keys.index, sid))
            for rival in others:
                commands.append(("ZSCORE", rival.keys.index, rival.sid))
                if rival.longer:
                    commands.append(("EXISTS", rival.keys.schema))
    replies = iter((yield Batch(commands)))
    states: list[str] = []
    for others in rivals:
        kind = _str(next(replies))
        if not others:
            states.append({"list": "ours", "none": "none"}.get(kind, "foreign"))
            continue
        mine = next(replies) is not None
        claimed = longer = False
        for rival in others:
            claimed |= next(replies) is not None
            if rival.longer:
                longer |= bool(next(replies))
        states.append("none" if kind == "none" else "foreign" if kind != "list" else
                      "taken" if claimed or (longer and not mine) else "ours")
    return states


def cleanup_command(keys: Keys, sids: Sequence[bytes]) -> Command:
    triples = [k for sid in sids for k in keys.session(sid)]
    return ("EVAL", lua.CLEANUP, 1 + len(triples), keys.index, *triples, *sids)


def setup_op(keys: Keys) -> Operation[None]:
    (_, version) = yield Batch([("SET", keys.schema, SCHEMA_VERSION, "NX"),
                                 ("GET", keys.schema)])
    if version is not None and int(version) > SCHEMA_VERSION:
        raise StoreError(
            f"the keys under this prefix use layout version {int(version)}, newer than this "
            f"threadline understands ({SCHEMA_VERSION}); upgrade threadline"
        )


def encode_batch(session_id: str, messages: Sequence[BaseMessage],
                 check_sizes: Callable[[Sequence[str]], None]) -> list[str]:
    """The messages of an append as JSON texts, after every check that needs no server:
    the session id, the messages, and ``check_sizes`` (the store's ``max_message_bytes``)."""
    sid_bytes(session_id)
    encoded = [encode_message(message) for message in check_messages(messages)]
    check_sizes(encoded)
    return encoded


def append_op(keys: Keys, session_id: str, messages: Sequence[BaseMessage],
               encoded: Sequence[str], ttl: float | None) -> Operation[int]:
    """One EVAL of :data:`~threadline.stores.redis._scripts.APPEND`; how many messages
    were stored (those whose id the session held are not). ``encoded``: the messages'
    texts from :func:`encode_batch`. A message larger than the server's
    ``proto-max-bulk-len`` is refused too, before anything is sent."""
    sid = sid_bytes(session_id)
    if not messages:
        return 0
    args: list[str] = []
    for message, json_text in zip(messages, encoded, strict=True):
        args += ("" if message.id is None else f"={message.id}", json_text)
    # A str of n characters is at most 4n bytes of UTF-8: only long ones need measuring,
    # and only a message over Redis's smallest possible limit needs the server's.
    sizes = [len(a.encode("utf-8", "surrogatepass")) for a in args
             if 4 * len(a) > MIN_MAX_BULK]
    if max(sizes, default=0) > MIN_MAX_BULK:
        (reply,) = yield Batch([("CONFIG", "GET", "proto-max-bulk-len")],
                               errors_as_replies=True)
        check_message_size(max(sizes), max_bulk(reply),
                           "Redis's proto-max-bulk-len, its largest value")
    (pushed,) = yield Batch([by_id(keys, lua.APPEND, sid, repr(time.time()),
                                   "" if ttl is None else milliseconds(ttl), *args)],
                            writes=True)
    if pushed == -1:
        raise InputError(
            f"session {session_id!r:.200} cannot be stored: its key "
            f"{keys.messages(sid)!r:.250} holds something else than a list of messages, "
            "another application's data; nothing was stored")
    if pushed == -2:
        raise InputError(
            f"session {session_id!r:.200} cannot be stored: its key "
            f"{keys.messages(sid)!r:.250} holds a session of another store (whose key "
            "prefix starts like this one's); nothing was stored: use another session id")
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
    last = check_last(last)
    if last == 0:
        return []
    (items,) = yield Batch([by_id(keys, lua.READ, sid, 0, -1 if last is None else last - 1)])
    return decode_messages(items[::-1], session_id=session_id, skip_invalid=skip_invalid,
                           from_end=last is not None)


def page_op(keys: Keys, sid: bytes, start: int, size: int) -> Operation[list[bytes]]:
    """Messages ``start`` to ``start + size - 1`` of the session (0 = oldest), oldest
    first. The list is newest first, so they are counted from its tail: an append
    meanwhile (an LPUSH at the head) moves none of them."""
    (items,) = yield Batch([by_id(keys, lua.READ, sid, -(start + size), -(start + 1))])
    return list(items[::-1])


def delete_op(keys: Keys, session_id: str) -> Operation[bool]:
    """Delete the session's list (if it is ours), its keys and its records; whether the
    list or records existed."""
    sid = sid_bytes(session_id)
    (deleted,) = yield Batch([by_id(keys, lua.DELETE, sid, own=keys.records(sid))])
    return bool(deleted)


def info_op(keys: Keys, session_id: str) -> Operation[SessionInfo | None]:
    (reply,) = yield Batch([by_id(keys, lua.INFO, sid_bytes(session_id))])
    if not reply or not reply[0]:
        return None
    count, created, updated, pttl = reply
    expires = (datetime.now(UTC).timestamp() + pttl / 1000) if pttl > 0 else None
    return SessionInfo(session_id, int(count), utc(created), utc(updated),
                       None if expires is None else datetime.fromtimestamp(expires, UTC))


def expire_op(keys: Keys, session_id: str, ttl: float | None) -> Operation[None]:
    sid = sid_bytes(session_id)
    ttl = validate_ttl(ttl)
    yield Batch([by_id(keys, lua.EXPIRE, sid, "" if ttl is None else milliseconds(ttl),
                       own=keys.records(sid))])


def live_op(keys: Keys, sids: list[bytes]) -> Operation[tuple[list[bytes], int]]:
    """The indexed sessions whose list is this store's; those whose list is gone (or is
    not a list any more) lose their index entry and metadata. A list another store owns
    is skipped, its entry kept (both indexes name it: neither store shows it)."""
    states = yield from standing_op(keys, sids)
    dead = [sid for sid, state in zip(sids, states, strict=True)
            if state in ("none", "foreign")]
    removed = 0
    if dead:
        (removed,) = yield Batch([cleanup_command(keys, dead)])
    return [sid for sid, state in zip(sids, states, strict=True) if state == "ours"], int(removed)


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


def scan_op(pattern: bytes, kind: str | None, cursor: int) -> Operation[tuple[int, list[bytes]]]:
    """One SCAN for keys matching the glob ``pattern`` (of type ``kind``): the next
    cursor (0 when done) and the keys found."""
    command: Command = ("SCAN", cursor, "MATCH", pattern, "COUNT", SCAN_BATCH)
    ((after, found),) = yield Batch([command + (("TYPE", kind) if kind else ())])
    return int(after), list(found)


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
        cursor = 0
        while True:
            cursor, found = yield from scan_op(glob_escape(head) + b"*", kind, cursor)
            if found:
                (dropped,) = yield Batch([cleanup_command(keys, [k[len(head):] for k in found])])
                removed += int(dropped)
            if not cursor:
                break
    return removed


def _lists(keys: Keys, found: list[bytes]) -> list[bytes]:
    """The session ids of lists a SCAN of the prefix found (not our own keys)."""
    cut = len(keys.prefix)
    return [key[cut:] for key in found if b"\x00" not in key[cut:]]


def reindex_op(keys: Keys) -> Operation[int]:
    """Add to the index the lists under the prefix that are this store's and not in it
    (sessions LangChain wrote); how many were added. A list another store owns, or
    whose name is not a session id, is left out."""
    added, cursor = 0, 0
    while True:
        cursor, found = yield from scan_op(glob_escape(keys.prefix) + b"*", "list", cursor)
        sids = [sid for sid in _lists(keys, found) if _is_session_id(sid)]
        states = yield from standing_op(keys, sids)
        ours = [sid for sid, state in zip(sids, states, strict=True) if state == "ours"]
        if ours:
            (count,) = yield Batch([("ZADD", keys.index, "NX",
                                     *[part for sid in ours for part in (0, sid)])])
            added += int(count)
        if not cursor:
            return added


def _is_session_id(sid: bytes) -> bool:
    try:
        validate_session_id(sid.decode("utf-8"))
    except (UnicodeDecodeError, InputError):
        return False
    return True


def destroy_op(keys: Keys) -> Operation[None]:
    """Delete every session list that is this store's (its sessions and LangChain's
    under its prefix), then every key of its own; nothing another store or
    application owns, even under a prefix that starts like this one."""
    cursor = 0
    while True:
        cursor, found = yield from scan_op(glob_escape(keys.prefix) + b"*", "list", cursor)
        sids = _lists(keys, found)
        states = yield from standing_op(keys, sids)
        doomed = [keys.messages(sid) for sid, state in zip(sids, states, strict=True)
                  if state == "ours"]
        if doomed:
            yield Batch([("UNLINK", *doomed)])
        if not cursor:
            break
    while True:  # after the lists: which lists are ours depends on our index
        cursor, found = yield from scan_op(glob_escape(keys.prefix + b"\x00") + b"*", None,
                                           cursor)
        if found:
            yield Batch([("UNLINK", *found)])
        if not cursor:
            return


def glob_escape(raw: bytes) -> bytes:
    out = bytearray()
    for byte in raw:
        if byte in b"*?[]\\":
            out += b"\\"
        out.append(byte)
    return bytes(out)
