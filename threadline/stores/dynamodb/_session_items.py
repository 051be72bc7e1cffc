"""What a DynamoDB session item carries beside its messages, and how it is listed (pure).

A session's title, metadata, owner, parent and fork point are attributes of its *session
item* (``Seq = 10**37``, see :mod:`threadline.stores.dynamodb._store`)::

    Title      S    (absent: no title)
    Meta       M    of S (absent: no metadata); a map, so a filter can name one key
    Owner      S    (absent: no owner)
    Parent     S,   ForkPoint N     (set by fork)
    Lst        S    "r0" .. "r3": the session's shard of the recent and id indexes
    Rk         S    "<UpdatedAt in microseconds, 17 digits>#<partition key>"
    Ik         S    the session id's first :data:`ID_KEY_CHARS` characters (:func:`id_key`)

Four Global Secondary Indexes list sessions without reading messages: only session items
carry their key attributes, so all are sparse (one entry per session):

- :data:`RECENT_INDEX`: ``Lst`` (hash) / ``Rk`` (range). A listing queries every shard
  with ``ScanIndexForward=False`` and merges them; ``Rk`` is unique, so "after this
  session" is a key condition ``Rk < :after`` (keyset pagination, no offset). Sharding
  spreads the index writes of appends (every append moves its session's ``Rk``) over
  :data:`RECENT_SHARDS` partitions instead of one.
- :data:`OWNER_INDEX`: ``Owner`` (hash) / ``Rk`` (range): one owner's sessions, newest
  first, one Query a page.
- :data:`ID_INDEX`: ``Lst`` (hash) / ``Ik`` (range): every session by id, a Query per
  shard merged in id order; "after this id" and "starting with this prefix" are key
  conditions on ``Ik`` (:func:`id_range`), so a page reads ~``limit + 1`` entries per
  shard however deep it is. Sharded like the recent index: a session's ``Ik`` never
  changes, but the entry is rewritten when its expiry or metadata does.
- :data:`OWNER_ID_INDEX`: ``Owner`` (hash) / ``Ik`` (range): one owner's sessions by id.

The recent indexes project :data:`PROJECTED` (the session id, its count, its expiry and
its metadata): what a listing filters on and what ``stats()`` sums. The id indexes
project :data:`ID_PROJECTED`, without ``Count``, so an append to a session without a TTL
changes nothing they hold and costs them no write. Filters are ``FilterExpression`` s
whose every name and value is a placeholder: metadata keys are user data and never
become expression text (:func:`list_filter`).

``Rk`` holds the partition key (the session id, or its hash for huge ids) rather than the
id itself: a sort key stops at 1024 bytes. Ties of ``UpdatedAt`` are therefore ordered by
partition key, which is the session id for every id up to 1000 bytes.

``Ik`` is the id cut to :data:`ID_KEY_CHARS` (256) code points: at most 1024 UTF-8 bytes,
and cutting a *fixed number of code points* keeps the order (``a < b`` implies ``Ik(a)
<= Ik(b)``; a cut by bytes would not, as characters differ in width). DynamoDB compares
strings by their UTF-8 bytes, which is the code point order Python's ``<`` uses, so the
index is in ``sorted()`` order. Ids longer than 256 characters that share their first 256
have equal ``Ik``: the listing reads such a group whole and orders it by the full id
(:func:`in_id_order`), so the order stays exact and only such a group costs more.

Nothing here talks to DynamoDB, nor imports the rest of the package's DynamoDB modules.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Final

from threadline._errors import InputError
from threadline.stores._sessions import ListQuery, decode_recent_cursor

__all__ = ["ID_INDEX", "ID_KEY_CHARS", "ID_PROJECTED", "INDEX_KEYS", "OWNER_ID_INDEX",
           "OWNER_INDEX", "PROJECTED", "RECENT_INDEX", "RECENT_SHARDS", "after_rank",
           "id_key", "id_range", "in_id_order", "index_definition", "info_fields",
           "list_filter", "listing_keys", "rank", "rank_micros", "recent_keys",
           "session_attributes", "shard", "update_clauses"]

RECENT_INDEX: Final = "threadline_recent"
OWNER_INDEX: Final = "threadline_owner"
ID_INDEX: Final = "threadline_ids"
OWNER_ID_INDEX: Final = "threadline_owner_ids"
RECENT_SHARDS: Final = 4
#: Index name -> its (hash, range) attributes, in the order setup adds them.
INDEX_KEYS: Final = {RECENT_INDEX: ("Lst", "Rk"), OWNER_INDEX: ("Owner", "Rk"),
                     ID_INDEX: ("Lst", "Ik"), OWNER_ID_INDEX: ("Owner", "Ik")}
PROJECTED: Final = ("Session", "Count", "ExpiresAt", "Meta")
ID_PROJECTED: Final = ("Session", "ExpiresAt", "Meta")
_PROJECTIONS: Final = {RECENT_INDEX: PROJECTED, OWNER_INDEX: PROJECTED,
                       ID_INDEX: ID_PROJECTED, OWNER_ID_INDEX: ID_PROJECTED}
#: Code points of a session id kept in ``Ik``: 4 UTF-8 bytes each at most, so ``Ik``
#: fits the 1024-byte limit of a sort key.
ID_KEY_CHARS: Final = 256
#: Above every code point: ``head + _TOP * n`` bounds the ``Ik`` values starting with head.
_TOP = "\U0010ffff"
_MICROS_DIGITS = 17
_MAX_RANK_TAIL = 1000  # bytes of partition key kept whole in Rk (a sort key: 1024 at most)

#: Expression placeholder -> attribute, for the session fields.
NAMES: Final = {"#ti": "Title", "#md": "Meta", "#own": "Owner", "#par": "Parent",
                "#fp": "ForkPoint", "#lst": "Lst", "#rk": "Rk", "#ik": "Ik"}
#: SessionChanges field -> its placeholder.
_FIELDS: Final = {"title": "#ti", "metadata": "#md", "owner": "#own", "parent": "#par",
                  "fork_point": "#fp"}


def index_definition(name: str) -> dict[str, Any]:
    """The ``GlobalSecondaryIndexes`` entry of one of our indexes (on-demand billing)."""
    hash_key, range_key = INDEX_KEYS[name]
    return {"IndexName": name,
            "KeySchema": [{"AttributeName": hash_key, "KeyType": "HASH"},
                          {"AttributeName": range_key, "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "INCLUDE",
                           "NonKeyAttributes": list(_PROJECTIONS[name])}}


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


def recent_keys(pk: str, seconds: float) -> dict[str, dict[str, str]]:
    """The recent index's attributes (``Lst``, ``Rk``) of a session updated at ``seconds``."""
    return {"Lst": {"S": shard(pk)}, "Rk": {"S": rank(rank_micros(seconds), pk)}}


def listing_keys(pk: str, seconds: float, session_id: str) -> dict[str, dict[str, str]]:
    """Every index attribute (``Lst``, ``Rk``, ``Ik``) of a session updated at ``seconds``."""
    return {**recent_keys(pk, seconds), "Ik": {"S": id_key(session_id)}}


def id_key(session_id: str) -> str:
    """The ``Ik`` of a session: its id, cut to :data:`ID_KEY_CHARS` code points."""
    return session_id[:ID_KEY_CHARS]


def _valid_from(text: str) -> tuple[str, bool]:
    """``(bound, whole)``: the least valid string ``>=`` every valid string above
    ``text`` (``text`` itself unless it holds a lone surrogate, which no stored id can
    hold and DynamoDB cannot take), and whether that is ``text`` itself."""
    for index, char in enumerate(text):
        if "\ud800" <= char <= "\udfff":
            return text[:index] + "\ue000", False
    return text, True


def id_range(prefix: str, cursor: str | None
             ) -> tuple[str, dict[str, Any], bool] | None:
    """``(" AND <condition on #ik>", values, inclusive)`` selecting the ``Ik`` of every
    id that starts with ``prefix`` and sorts after ``cursor``; ``inclusive`` when the
    condition may also let through ``cursor`` itself (and ids sharing its ``Ik``: the
    caller drops ids ``<= cursor``, and reads one entry more a page). ``("", {}, False)``
    for no condition; None when no id can match.

    One sort key condition only: ``begins_with`` for a prefix, ``>`` / ``>=`` for a
    cursor, ``BETWEEN`` for both (the prefix's upper bound padded with U+10FFFF)."""
    low: str | None = None
    strict = False
    if cursor:  # "" is below every id: no bound
        bound, whole = _valid_from(cursor)
        low = id_key(bound)
        strict = whole and len(bound) < ID_KEY_CHARS  # Ik is the whole id: > is exact
    if not prefix:
        if low is None:
            return "", {}, False
        return (f" AND #ik {'>' if strict else '>='} :low", {":low": {"S": low}},
                not strict)
    head = id_key(prefix)
    if cursor is None or cursor < prefix:  # every id with the prefix sorts after it
        return " AND begins_with(#ik, :head)", {":head": {"S": head}}, False
    if not cursor.startswith(prefix):  # above every id with the prefix
        return None
    assert low is not None
    top = head + _TOP * (ID_KEY_CHARS - len(head))
    return (" AND #ik BETWEEN :low AND :top", {":low": {"S": low}, ":top": {"S": top}},
            True)


def in_id_order(entries: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Index entries in ``Ik`` order, in full session id order: a run of entries with
    the same cut ``Ik`` (ids longer than :data:`ID_KEY_CHARS`) is gathered and sorted.
    Shorter ``Ik`` values are whole ids, unique: passed on at once, so a page reads no
    entry beyond the ones it returns."""
    group: list[dict[str, Any]] = []
    for entry in entries:
        key = entry["Ik"]["S"]
        if group and group[0]["Ik"]["S"] != key:
            yield from sorted(group, key=lambda item: item["Session"]["S"])
            group = []
        if len(key) < ID_KEY_CHARS:
            yield entry
        else:
            group.append(entry)
    yield from sorted(group, key=lambda item: item["Session"]["S"])


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
