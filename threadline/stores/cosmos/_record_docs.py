"""Cosmos DB record documents (pure): ids, bodies, value segments and queries.

A session's records live in its partition (``/pk`` = SHA-256 of the session id) beside
its messages:

* one *record* document per key ``{"id": "+<sha256 of the key>", "t": "r", "rk": key,
  "v": base64, "pv", "pn", "x", "ttl"}``: ids may not hold ``/ \\ ? #`` and are at most
  255 characters, keys may, so the id is a digest and ``rk`` (the key itself) is what
  scans order and bound on;
* *part* documents ``{"id": "+<sha256>.<pv>.<i>", "t": "p", "r": record id, "pv", "d",
  "w", "x", "ttl"}`` for a value whose base64 is longer than one segment (an item is at
  most 2 MB, a value up to 16 MiB or more): the record holds the first segment and the
  version ``pv`` of its parts, parts 1 to ``pn`` the rest. A version is written whole
  before the record points at it, and a fresh version per write means readers never
  mix two; the parts of the version a write displaced are deleted after it.

``x`` is the deadline (epoch seconds, null: none) that reads compare with the clock (the
emulator does not expire items); ``ttl`` lets Cosmos DB delete the item itself a second
after that deadline. ``"+"`` sorts below ``"-"`` (id documents) and the digits
(messages), and ``t`` is neither ``"h"`` nor ``"m"``, so message reads, listing and
session info never see records.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from threadline._errors import StoreError

__all__ = ["SEGMENT", "Existing", "join_value", "part_bodies", "part_id", "record_body",
           "record_id", "scan_query", "segments", "ttl_patch", "ttl_seconds"]

#: Base64 characters per document (an item is at most 2 MB, key and fields included).
SEGMENT = 1_500_000
#: The most ids one ARRAY_CONTAINS parameter carries (a query is at most 512 KB).
IDS_PER_QUERY = 1000
#: Parts older than this that no record points at are a failed write's: purge deletes them.
ORPHAN_AGE = 3600.0

_LIVE = "(IS_NULL(c.x) OR c.x > @now)"
RECORD_COLUMNS = "c.id, c.rk, c.v, c.pv, c.pn"
#: The record documents of some ids (what a write replaces or deletes: etag and parts).
EXISTING_SQL = ("SELECT c.id, c._etag, c.pv, c.pn FROM c WHERE c.pk = @pk AND c.t = 'r' "
                "AND ARRAY_CONTAINS(@ids, c.id)")
GET_SQL = (f"SELECT {RECORD_COLUMNS} FROM c WHERE c.pk = @pk AND c.t = 'r' "
           f"AND ARRAY_CONTAINS(@ids, c.id) AND {_LIVE}")
PARTS_SQL = "SELECT c.id, c.d FROM c WHERE c.pk = @pk AND ARRAY_CONTAINS(@ids, c.id)"
#: Every record and part document of a session, without values.
ALL_SQL = "SELECT c.id, c.t, c.r, c.x FROM c WHERE c.pk = @pk AND c.t IN ('r', 'p')"


def record_id(key: str) -> str:
    return "+" + hashlib.sha256(key.encode("ascii")).hexdigest()


def part_id(rid: str, version: str, index: int) -> str:
    return f"{rid}.{version}.{index}"


def ttl_seconds(deadline: float | None, now: float) -> int:
    """Cosmos DB's per-item ttl for a deadline: whole seconds from this write, one more
    than needed (an item's age counts from its whole-second ``_ts``), so the item is
    never gone while ``x`` still says it lives; -1: never."""
    if deadline is None:
        return -1
    return max(1, math.ceil(deadline - now)) + 1


def ttl_patch(deadline: float | None, now: float) -> list[dict[str, Any]]:
    """The patch operations that give a document a new deadline (or none)."""
    return [{"op": "set", "path": "/x", "value": deadline},
            {"op": "set", "path": "/ttl", "value": ttl_seconds(deadline, now)}]


def segments(value: bytes) -> list[str]:
    """The value as base64, cut into segments (at least one, maybe empty)."""
    text = base64.b64encode(value).decode("ascii")
    return [text[i:i + SEGMENT] for i in range(0, len(text), SEGMENT)] or [""]


def record_body(pk: str, key: str, first: str, version: str | None, parts: int,
                deadline: float | None, now: float) -> dict[str, Any]:
    return {"id": record_id(key), "pk": pk, "t": "r", "rk": key, "v": first, "pv": version,
            "pn": parts, "x": deadline, "ttl": ttl_seconds(deadline, now)}


def part_bodies(pk: str, key: str, rest: list[str], version: str,
                deadline: float | None, now: float) -> list[dict[str, Any]]:
    rid = record_id(key)
    return [{"id": part_id(rid, version, i), "pk": pk, "t": "p", "r": rid, "pv": version,
             "d": text, "w": now, "x": deadline, "ttl": ttl_seconds(deadline, now)}
            for i, text in enumerate(rest, 1)]


def part_ids(doc: Mapping[str, Any]) -> list[str]:
    """The ids of the parts a record document points at."""
    version = doc.get("pv")
    if version is None:
        return []
    return [part_id(str(doc["id"]), str(version), i)
            for i in range(1, int(doc.get("pn") or 0) + 1)]


def join_value(doc: Mapping[str, Any], parts: Mapping[str, str]) -> bytes | None:
    """A record's value from its document and the parts read (None: a part is missing,
    a concurrent write replaced the version)."""
    texts = [str(doc.get("v") or "")]
    for pid in part_ids(doc):
        if pid not in parts:
            return None
        texts.append(parts[pid])
    try:
        return base64.b64decode("".join(texts), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise StoreError(f"record {doc.get('rk')!r} holds invalid base64") from exc


@dataclass(frozen=True, slots=True)
class Existing:
    """A record document as a write found it: what to make its write conditional on and
    the parts that become garbage once it is replaced or deleted."""

    id: str
    etag: str
    parts: tuple[str, ...]

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Existing:
        return cls(str(doc["id"]), str(doc["_etag"]), tuple(part_ids(doc)))


def id_chunks(ids: Iterable[str]) -> list[list[str]]:
    unique = list(dict.fromkeys(ids))
    return [unique[i:i + IDS_PER_QUERY] for i in range(0, len(unique), IDS_PER_QUERY)]


def scan_query(pk: str, prefix: str, after: str | None, before: str | None,
               limit: int | None, reverse: bool, keys_only: bool,
               now: float) -> tuple[str, dict[str, Any]]:
    """The query of a scan: a range on ``rk`` (indexed), ordered by it, ``TOP limit``.
    Keys are ``!`` to ``~``, so ``prefix + DEL`` bounds the keys with that prefix."""
    params: dict[str, Any] = {"@pk": pk, "@now": now}
    where = ["c.pk = @pk", "c.t = 'r'", _LIVE]
    if prefix:
        where += ["c.rk >= @lo", "c.rk < @hi"]
        params.update({"@lo": prefix, "@hi": prefix + "\x7f"})
    if after is not None:
        where.append("c.rk > @after")
        params["@after"] = after
    if before is not None:
        where.append("c.rk < @before")
        params["@before"] = before
    top = ""
    if limit is not None:
        top = "TOP @k "
        params["@k"] = limit
    columns = "c.rk" if keys_only else RECORD_COLUMNS
    order = " DESC" if reverse else ""
    return (f"SELECT {top}{columns} FROM c WHERE {' AND '.join(where)} "
            f"ORDER BY c.rk{order}", params)
