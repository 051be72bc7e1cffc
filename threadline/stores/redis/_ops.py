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
from typing import Any, TypeVar

from threadline._errors import InputError
from threadline.messages._values import BaseMessage
from threadline.stores._base import (
    check_last,
    check_message_size,
    check_messages,
    decode_messages,
    encode_message,
    validate_session_id,
    validate_ttl,
)
from threadline.stores.redis import _scripts as lua
from threadline.stores.redis._keys import Keys, sid_bytes

T = TypeVar("T")

SCAN_BATCH = 500

#: Redis refuses a bulk string (one command argument) longer than its
#: ``proto-max-bulk-len``: 512 MB unless configured otherwise, and never below 1 MB.
DEFAULT_MAX_BULK = 512 * 1024 * 1024
MIN_MAX_BULK = 1024 * 1024


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
    return ("EVAL", script, 4 + len(rival_keys) + len(own), *keys.session(sid),
            keys.anchor(sid), *rival_keys, *own, sid, len(rivals), *rival_args, *args)


def _str(reply: Any) -> str:
    return reply.decode() if isinstance(reply, bytes) else str(reply)


#: The states of a session that exists: its list is ours, or update_session created it.
LIVE = ("ours", "empty")


def probe_op(keys: Keys, sids: Sequence[bytes], fields: Sequence[str] = ()
             ) -> Operation[list[tuple[str, list[Any]]]]:
    """Where each session's list stands ('ours', 'empty', 'none', 'foreign' or 'taken')
    and the ``fields`` of its metadata hash, for many sessions in one round trip of plain
    reads: the rule of :data:`~threadline.stores.redis._scripts.STANDING` for bulk work
    (listing, reindex, destroy), not atomic: a list changing hands during the call may be
    judged as it was."""
    if not sids:
        return []
    commands: list[Command] = []
    rivals = [keys.rivals(sid) for sid in sids]
    for sid, others in zip(sids, rivals, strict=True):
        commands += [("TYPE", keys.messages(sid)), ("HMGET", keys.meta(sid), "empty", *fields)]
        if others:
            commands.append(("ZSCORE", keys.index, sid))
            for rival in others:
                commands += [("ZSCORE", rival.keys.index, rival.sid),
                             ("HEXISTS", rival.keys.meta(rival.sid), "empty")]
                if rival.longer:
                    commands.append(("EXISTS", rival.keys.schema))
    replies = iter((yield Batch(commands)))
    found: list[tuple[str, list[Any]]] = []
    for others in rivals:
        kind, (empty, *values) = _str(next(replies)), next(replies)
        none = "empty" if empty else "none"
        if not others:
            found.append(({"list": "ours", "none": none}.get(kind, "foreign"), values))
            continue
        mine = next(replies) is not None
        claimed = longer = rival_empty = False
        for rival in others:
            claims, its_empty = next(replies) is not None, bool(next(replies))
            claimed |= claims
            rival_empty |= claims and its_empty
            if rival.longer:
                longer |= bool(next(replies))
        state = (("taken" if rival_empty else none) if kind == "none" else
                 "foreign" if kind != "list" else
                 "taken" if claimed or (longer and not mine) else "ours")
        found.append((state, values))
    return found


def standing_op(keys: Keys, sids: Sequence[bytes]) -> Operation[list[str]]:
    """The states of :func:`probe_op` alone."""
    return [state for state, _ in (yield from probe_op(keys, sids))]


def cleanup_command(keys: Keys, sids: Sequence[bytes], owner: str | None = None) -> Command:
    """An EVAL of :data:`~threadline.stores.redis._scripts.CLEANUP`: what is left of
    those sessions if they are gone; with ``owner``, also their entries in its sets if
    they are gone or not its any more."""
    triples = [k for sid in sids for k in keys.session(sid)]
    return ("EVAL", lua.CLEANUP, 2 + len(triples), keys.index, keys.recent, *triples,
            *keys.owner_heads, "" if owner is None else owner, *sids)


def encode_batch(session_id: str, messages: Sequence[BaseMessage],
                 check_sizes: Callable[[Sequence[str]], None]) -> list[str]:
    """The messages of an append as JSON texts, after every check that needs no server:
    the session id, the messages, and ``check_sizes`` (the store's ``max_message_bytes``)."""
    sid_bytes(session_id)
    encoded = [encode_message(message) for message in check_messages(messages)]
    check_sizes(encoded)
    return encoded


def message_args(messages: Sequence[BaseMessage], encoded: Sequence[str]) -> list[str]:
    """APPEND's per-message arguments: a (tag, JSON text) pair per message, oldest first
    (tag '' for a message without an id, '=' + id otherwise)."""
    args: list[str] = []
    for message, json_text in zip(messages, encoded, strict=True):
        args += ("" if message.id is None else f"={message.id}", json_text)
    return args


def check_bulk_op(args: Sequence[str]) -> Operation[None]:
    """Refuse an argument larger than the server's ``proto-max-bulk-len``, before
    anything is sent. A str of n characters is at most 4n bytes of UTF-8: only long ones
    need measuring, and only one over Redis's smallest possible limit needs the
    server's."""
    sizes = [len(a.encode("utf-8", "surrogatepass")) for a in args
             if 4 * len(a) > MIN_MAX_BULK]
    if max(sizes, default=0) > MIN_MAX_BULK:
        (reply,) = yield Batch([("CONFIG", "GET", "proto-max-bulk-len")],
                               errors_as_replies=True)
        check_message_size(max(sizes), max_bulk(reply),
                           "Redis's proto-max-bulk-len, its largest value")


def refused(session_id: str, keys: Keys, sid: bytes, code: int) -> InputError:
    """APPEND's answer -1 (the key is not a list) or -2 (another store's) as an error."""
    if code == -1:
        return InputError(
            f"session {session_id!r:.200} cannot be stored: its key "
            f"{keys.messages(sid)!r:.250} holds something else than a list of messages, "
            "another application's data; nothing was stored")
    return InputError(
        f"session {session_id!r:.200} cannot be stored: its key "
        f"{keys.messages(sid)!r:.250} holds a session of another store (whose key "
        "prefix starts like this one's); nothing was stored: use another session id")


def append_op(keys: Keys, session_id: str, messages: Sequence[BaseMessage],
               encoded: Sequence[str], ttl: float | None) -> Operation[int]:
    """One EVAL of :data:`~threadline.stores.redis._scripts.APPEND`; how many messages
    were stored (those whose id the session held are not). ``encoded``: the messages'
    texts from :func:`encode_batch`. A message larger than the server's
    ``proto-max-bulk-len`` is refused too, before anything is sent."""
    sid = sid_bytes(session_id)
    if not messages:
        return 0
    args = message_args(messages, encoded)
    yield from check_bulk_op(args)
    (pushed,) = yield Batch([by_id(keys, lua.APPEND, sid, *keys.owner_heads, repr(time.time()),
                                   "" if ttl is None else milliseconds(ttl), *args,
                                   own=[keys.recent])],
                            writes=True)
    if pushed in (-1, -2):
        raise refused(session_id, keys, sid, int(pushed))
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
    (deleted,) = yield Batch([by_id(keys, lua.DELETE, sid, *keys.owner_heads,
                                    own=[*keys.records(sid), keys.recent])])
    return bool(deleted)


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
    return [sid for sid, state in zip(sids, states, strict=True) if state in LIVE], int(removed)


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
            parts = [part for sid in ours for part in (0, sid)]
            # Never active through this store: oldest in the recent order.
            count, _ = yield Batch([("ZADD", keys.index, "NX", *parts),
                                    ("ZADD", keys.recent, "NX", *parts)])
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
