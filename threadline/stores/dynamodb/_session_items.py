"""What a DynamoDB session item carries beside its messages, and how it is listed (pure).

A session's title, metadata, owner, parent and fork point are attributes of its *session
item* (``Seq = 10**37``, see :mod:`threadline.stores.dynamodb._store`)::

    Title      S    (absent: no title)
    Meta       M    of S (absent: no metadata); a map, so a filter can name one key
    Owner      S    (absent: no owner)
    Parent     S,   ForkPoint N     (set by fork)
    Lst        S    "r0" .. "r3": the session's shard of the recent-first index
    Rk         S    "<UpdatedAt in microseconds, 17 digits>#<partition key>"

Two Global Secondary Indexes list sessions without reading messages: only session items
carry their key attributes, so both are sparse (one entry per session):

- :data:`RECENT_INDEX`: ``Lst`` (hash) / ``Rk`` (range). A listing queries every shard
  with ``ScanIndexForward=False`` and merges them; ``Rk`` is unique, so "after this
  session" is a key condition ``Rk < :after`` (keyset pagination, no offset). Sharding
  spreads the index writes of appends (every append moves its session's ``Rk``) over
  :data:`RECENT_SHARDS` partitions instead of one.
- :data:`OWNER_INDEX`: ``Owner`` (hash) / ``Rk`` (range): one owner's sessions, newest
  first, one Query a page.

Both project :data:`PROJECTED` (the session id, its count, its expiry and its metadata):
what a listing filters on and what ``stats()`` sums. Filters are ``FilterExpression`` s
whose every name and value is a placeholder: metadata keys are user data and never become
expression text (:func:`list_filter`).

``Rk`` holds the partition key (the session id, or its hash for huge ids) rather than the
id itself: a sort key stops at 1024 bytes. Ties of ``UpdatedAt`` are therefore ordered by
partition key, which is the session id for every id up to 1000 bytes.

Nothing here talks to DynamoDB, nor imports the rest of the package's DynamoDB modules.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, Final

from threadline._errors import InputError
from threadline.stores._sessions import ListQuery, decode_recent_cursor

__all__ = ["INDEX_KEYS", "OWNER_INDEX", "PROJECTED", "RECENT_INDEX", "RECENT_SHARDS",
           "after_rank", "index_definition", "info_fields", "list_filter", "listing_keys",
           "rank", "rank_micros", "session_attributes", "shard", "update_clauses"]

RECENT_INDEX: Final = "threadline_recent"
OWNER_INDEX: Final = "threadline_owner"
RECENT_SHARDS: Final = 4
#: Index name -> its (hash, range) attributes.
INDEX_KEYS: Final = {RECENT_INDEX: ("Lst", "Rk"), OWNER_INDEX: ("Owner", "Rk")}
PROJECTED: Final = ("Session", "Count", "ExpiresAt", "Meta")
_MICROS_DIGITS = 17
_MAX_RANK_TAIL = 1000  # bytes of partition key kept whole in Rk (a sort key: 1024 at most)

#: Expression placeholder -> attribute, for the session fields.
NAMES: Final = {"#ti": "Title", "#md": "Meta", "#own": "Owner", "#par": "Parent",
                "#fp": "ForkPoint", "#lst": "Lst", "#rk": "Rk"}
#: SessionChanges field -> its placeholder.
_FIELDS: Final = {"title": "#ti", "metadata": "#md", "owner": "#own", "parent": "#par",
                  "fork_point": "#fp"}


def index_definition(name: str) -> dict[str, Any]:
    """The ``GlobalSecondaryIndexes`` entry of one of our indexes (on-demand billing)."""
    hash_key, range_key = INDEX_KEYS[name]
    return {"IndexName": name,
            "KeySchema": [{"AttributeName": hash_key, "KeyType": "HASH"},
                          {"AttributeName": range_key, "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": list(PROJECTED)}}


def shard(pk: str) -> str:
    """The recent-index shard of a partition key: stable, spread by its hash."""
    digest = hashlib.sha256(pk.encode("utf-8", "surrogatepass")).digest()
    return f"r{digest[0] % RECENT_SHARDS}"


def rank_micros(seconds: float) -> int:
    """``UpdatedAt`` as the whole microseconds ``Rk`` sorts by."""
    return round(seconds * 1_000_000)


def rank(micros: int, pk: str) -> str:
    """The ``Rk`` of a session updated at ``micros``: sorts by time, then partition key."""
    tail = pk
    if len(pk.encode("utf-8")) > _MAX_RANK_TAIL:
        tail = "#h:" + hashlib.sha256(pk.encode("utf-8")).hexdigest()
    return f"{micros:0{_MICROS_DIGITS}d}#{tail}"


def listing_keys(pk: str, seconds: float) -> dict[str, dict[str, str]]:
    """The index attributes (``Lst``, ``Rk``) of a session item updated at ``seconds``."""
    return {"Lst": {"S": shard(pk)}, "Rk": {"S": rank(rank_micros(seconds), pk)}}


def after_rank(cursor: str, partition_key: Any) -> str:
    """The ``Rk`` a recent-first page continues below, from its opaque cursor (whose
    ``updated`` is our whole microseconds: anything else is an :class:`InputError`)."""
    micros, session_id = decode_recent_cursor(cursor)
    if isinstance(micros, bool) or not isinstance(micros, int) or not (
            0 <= micros < 10**_MICROS_DIGITS):
        raise InputError(f"not a cursor of this store: {cursor!r:.80}")
    return rank(micros, partition_key(session_id))


def _metadata_value(metadata: Mapping[str, str]) -> dict[str, Any]:
    return {"M": {key: {"S": value} for key, value in metadata.items()}}


def session_attributes(given: Mapping[str, Any]) -> dict[str, Any]:
    """The attributes of the given (non-empty) fields, for a new session item."""
    attributes: dict[str, Any] = {}
    for name, value in given.items():
        if value is None or (name == "metadata" and not value):
            continue
        attribute = NAMES[_FIELDS[name]]
        attributes[attribute] = (_metadata_value(value) if name == "metadata"
                                 else {"N": str(value)} if name == "fork_point"
                                 else {"S": value})
    return attributes


def update_clauses(given: Mapping[str, Any]) -> tuple[list[str], list[str], dict[str, Any]]:
    """``(SET clauses, REMOVE clauses, values)`` storing the given fields: ``None`` (and
    empty metadata) removes the attribute, so a cleared owner leaves the owner index."""
    sets: list[str] = []
    removes: list[str] = []
    values: dict[str, Any] = {}
    attributes = session_attributes(given)
    for name in given:
        placeholder = _FIELDS[name]
        attribute = NAMES[placeholder]
        if attribute in attributes:
            value_name = ":v" + placeholder[1:]
            sets.append(f"{placeholder} = {value_name}")
            values[value_name] = attributes[attribute]
        else:
            removes.append(placeholder)
    return sets, removes, values


def info_fields(meta: Mapping[str, Any]) -> dict[str, Any]:
    """The SessionInfo fields a session item holds beside its count and times."""
    stored = meta.get("Meta", {}).get("M", {})
    fork_point = meta.get("ForkPoint")
    return {"title": meta.get("Title", {}).get("S"),
            "metadata": {key: value["S"] for key, value in stored.items()},
            "owner": meta.get("Owner", {}).get("S"),
            "parent": meta.get("Parent", {}).get("S"),
            "fork_point": None if fork_point is None else int(fork_point["N"])}


def list_filter(query: ListQuery, now: float, *, scan_seq: int | None = None
                ) -> tuple[str, dict[str, str], dict[str, Any]]:
    """``(FilterExpression, ExpressionAttributeNames, ExpressionAttributeValues)`` keeping
    the live sessions that match ``query``'s prefix and metadata (and, for a Scan of the
    table, only the session items, at ``Seq = scan_seq``, and the owner's). Every
    metadata key is a ``#m<i>`` placeholder and every value a ``:m<i>`` one."""
    parts = ["(attribute_not_exists(#e) OR #e > :now)"]
    names = {"#e": "ExpiresAt"}
    values: dict[str, Any] = {":now": {"N": repr(now)}}
    if scan_seq is not None:
        parts.insert(0, "#seq = :meta")
        names["#seq"], values[":meta"] = "Seq", {"N": str(scan_seq)}
        if query.owner is not None:
            parts.append("#own = :owner")
            names["#own"], values[":owner"] = "Owner", {"S": query.owner}
    if query.prefix:
        parts.append("begins_with(#s, :prefix)")
        names["#s"], values[":prefix"] = "Session", {"S": query.prefix}
    for index, (key, value) in enumerate((query.metadata or {}).items()):
        parts.append(f"#md.#m{index} = :m{index}")
        names["#md"], names[f"#m{index}"] = "Meta", key
        values[f":m{index}"] = {"S": value}
    return " AND ".join(parts), names, values
