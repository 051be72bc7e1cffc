"""Cosmos DB documents (pure): partition keys, the session head, and the append plan.

A session is one logical partition (``/pk`` = SHA-256 of the session id): a *head*
document ``"~session"`` (the session's meta document: count, times, expiry, and the
fields of :mod:`threadline.stores.cosmos._session_docs`), one document per message,
ids ``"<epoch:13>.<seq:010>"`` sorting in write order below the head, and one *id
document* per message id, ids ``"-<epoch:13>.<sha256 of the message id>"`` sorting
below them all (see
:mod:`threadline.stores.cosmos._store`). :func:`plan_append` turns what a store knows of
a partition into the documents of one append transaction; :func:`chunks` splits an
append into transactions and refuses, before anything is sent, a message larger than
an item may be.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from threadline._errors import ConfigurationError
from threadline.stores._base import check_message_size, validate_session_id

__all__ = ["HEAD_ID", "MAX_BATCH", "SESSION_KEYS", "AppendPlan", "Entry", "SessionState",
           "chunks", "id_doc_id", "message_id", "partition_key", "plan_append", "recent_key"]

#: 2: heads carry the recent-order key ``r`` (setup adds it to older heads).
SCHEMA_VERSION = 2
HEAD_ID = "~session"
META_PK = "~meta"  # never a SHA-256 hex digest
MAX_BATCH = 100  # Cosmos DB's limit of operations per transactional batch
_CHUNK = MAX_BATCH - 1  # room for the head
#: Cosmos DB's largest item (2 MB), and what one transactional batch may carry.
ITEM_LIMIT = 2 * 1024 * 1024
_BATCH_BYTES = 1_900_000
_DOC_OVERHEAD = 512  # the other fields of a message document and Cosmos' own
_ATTEMPTS = 200
_NAME_CHARS = frozenset("/\\?#")
_CACHE_SIZE = 4096


def _name(value: str, what: str) -> str:
    if (not isinstance(value, str) or not 0 < len(value) <= 255 or value != value.strip()
            or _NAME_CHARS & set(value)):
        raise ConfigurationError(
            f"invalid Cosmos DB {what} {value!r}: 1-255 characters, none of '/\\?#', "
            "no leading or trailing spaces"
        )
    return value


def partition_key(session_id: str) -> str:
    return hashlib.sha256(validate_session_id(session_id).encode("utf-8", "surrogatepass")
                          ).hexdigest()


def message_id(epoch: int, seq: int) -> str:
    return f"{epoch:013d}.{seq:010d}"


def id_doc_id(epoch: int, message_id: str) -> str:
    """The document id recording a message id in one incarnation ("-" sorts below the
    digits of message documents; a hash, as ids may hold any character)."""
    digest = hashlib.sha256(message_id.encode("utf-8", "surrogatepass")).hexdigest()
    return f"-{epoch:013d}.{digest}"


#: One message to write: its encoded text and its id (None: no deduplication).
Entry = tuple[str, str | None]


def chunks(entries: Sequence[Entry]) -> Iterator[list[Entry]]:
    """The entries of each transaction: at most 99 documents (and ~1.9 MB) besides the
    head. Refuses a message larger than an item before anything is sent."""
    sized = []
    for text, message_id in entries:
        size = len(json.dumps(text, ensure_ascii=False).encode("utf-8")) + _DOC_OVERHEAD
        check_message_size(size, ITEM_LIMIT, "Cosmos DB's 2 MB item limit")
        sized.append((text, message_id, size))
    chunk: list[Entry] = []
    docs = total = 0
    for text, message_id, size in sized:
        needed = 1 if message_id is None else 2
        if chunk and (docs + needed > _CHUNK or total + size > _BATCH_BYTES):
            yield chunk
            chunk, docs, total = [], 0, 0
        chunk.append((text, message_id))
        docs += needed
        total += size + (0 if message_id is None else _DOC_OVERHEAD)
    if chunk:
        yield chunk


def _expired(head: dict[str, Any], now: float) -> bool:
    return head.get("x") is not None and float(head["x"]) <= now


def _clean(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if not k.startswith("_")}


@dataclass(slots=True)
class SessionState:
    """What a store knows of a session's partition: its head and newest sequence."""

    head: dict[str, Any] | None = None
    newest: int = 0  # the newest message's seq of the head's epoch
    written: float = 0.0  # and its write time

    @classmethod
    def from_docs(cls, docs: Sequence[dict[str, Any]]) -> SessionState:
        """From the answer of the head-first query (``ORDER BY c.id DESC``)."""
        head = docs[0] if docs and docs[0].get("id") == HEAD_ID else None
        if head is not None:
            for doc in docs[1:]:
                if doc.get("e") == head.get("e"):
                    return cls(head, int(doc["s"]), float(doc.get("w") or 0))
        return cls(head)

    def live(self, now: float) -> bool:
        return self.head is not None and not _expired(self.head, now)

    def count(self) -> int:
        assert self.head is not None
        return max(int(self.head.get("n") or 0), self.newest)

    def updated(self) -> float:
        assert self.head is not None
        return max(float(self.head["u"]), self.written)


@dataclass(slots=True)
class AppendPlan:
    """The operations of one append transaction."""

    head_op: tuple[Any, ...]
    message_ops: list[tuple[Any, ...]]
    head: dict[str, Any]
    epoch: int
    last_seq: int
    id_ops: list[tuple[Any, ...]]

    def batch(self) -> list[tuple[Any, ...]]:
        """Head first: its If-Match (or create) is the lock of the transaction; then
        the id documents (a create conflicts when the id is known), then the messages."""
        return [self.head_op, *self.id_ops, *self.message_ops]

    def is_id_op(self, index: int) -> bool:
        """Whether operation ``index`` of :meth:`batch` creates an id document."""
        return 1 <= index <= len(self.id_ops)


def recent_key(updated: float, session_id: str) -> str:
    """The head's recent-order key ``r``: ``"<updated µs, 20 digits>|<session id>"``.

    One string because Cosmos DB serves an ORDER BY on two properties only from a
    composite index (the emulator insists, as the service does), and one on a single
    property from the default range index: this string sorts as (updated, id), and a
    keyset page is one comparison, ``c.r < @cursor``."""
    return f"{round(updated * 1_000_000):020d}|{session_id}"


#: The session's own fields on its head (set by update_session and fork), by document
#: key; see :mod:`threadline.stores.cosmos._session_docs`.
SESSION_KEYS = ("ti", "md", "ow", "pa", "fp")


def _head_body(pk: str, session_id: str, epoch: int, count: int, created: float,
               updated: float, expires: float | None, now: float, *,
               carry: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A head document; ``carry`` (the head it replaces, of the same incarnation, or the
    fields to set) gives the session's title, metadata, owner, parent and fork point:
    every rewrite of the head (append, expire) keeps them."""
    head: dict[str, Any] = {"id": HEAD_ID, "pk": pk, "t": "h", "sid": session_id, "e": epoch,
                            "n": count, "c": created, "u": updated, "x": expires,
                            "r": recent_key(updated, session_id)}
    if carry:
        head.update((key, carry[key]) for key in SESSION_KEYS if carry.get(key) is not None)
    if expires is not None:
        # Cosmos DB's ttl counts whole seconds from this write.
        head["ttl"] = max(1, math.ceil(expires - now))
    return head


def plan_append(state: SessionState, session_id: str, entries: Sequence[Entry | str],
                now: float, ttl: float | None, *, count: int | None = None,
                token: str | None = None) -> AppendPlan:
    """The head, id and message documents of appending ``entries`` (texts, or texts
    and message ids) to a session (pure).

    A live head is replaced with If-Match on its etag; a missing head is created; an
    expired one is replaced by a new incarnation (new epoch, count from 0). ``count``
    overrides the head's message count (the emulator bumps the head separately).
    ``token`` marks the first message document, so a write whose answer was lost can be
    recognised.
    """
    pairs = [(e, None) if isinstance(e, str) else e for e in entries]
    texts = [text for text, _ in pairs]
    pk = partition_key(session_id)
    head = state.head
    carry: dict[str, Any] | None = None
    if head is not None and state.live(now):
        epoch, start = int(head["e"]), state.count()
        created, expires, carry = float(head["c"]), head.get("x"), head
    else:  # a new incarnation: the expired one's title, metadata and owner are gone
        epoch = max(int(now * 1000), int(head["e"]) + 1 if head is not None else 0)
        start, created, expires = 0, now, None
    if ttl is not None:
        expires = now + ttl
    last = start + len(texts)
    body = _head_body(pk, session_id, epoch, last if count is None else count, created,
                      now, expires, now, carry=carry)
    head_op: tuple[Any, ...] = (
        ("create", (body,)) if head is None
        else ("replace", (HEAD_ID, body), {"if_match_etag": head["_etag"]}))
    messages = [("create", ({"id": message_id(epoch, start + i), "pk": pk, "t": "m",
                             "e": epoch, "s": start + i, "w": now, "m": text},))
                for i, text in enumerate(texts, 1)]
    if token is not None and messages:
        messages[0][1][0]["k"] = token
    ids = [("create", ({"id": id_doc_id(epoch, mid), "pk": pk, "t": "k", "e": epoch},))
           for _, mid in pairs if mid is not None]
    return AppendPlan(head_op, messages, body, epoch, last, ids)
