"""Sessions as objects on DynamoDB: titles and metadata, listings, stats.

The attributes and indexes are described in :mod:`~threadline.stores.dynamodb._session_items`;
this module sends the requests, for :class:`~threadline.stores.dynamodb._store.DynamoDBStore`.

``update_session`` is one ``UpdateItem`` of the session item when the store has no TTL:
the creation fields are written with ``if_not_exists`` (a missing session is created,
empty and listed; an existing one keeps its count, times and place in the recent order),
under the condition that the item is missing or live. A store with a TTL sets the
expiry of a *new* session only, which one UpdateItem cannot tell apart: it updates a live
session item (one request) and otherwise puts a new one (a second request). An expired
session item is replaced by a new one either way (the expired session's title and
metadata are forgotten with it, and its leftover messages stay below the new base).

Listings (all eventually consistent when they read an index, as every GSI read is):

- ``order="recent"``: a Query per shard of the recent index (newest first, ``Rk <
  :after`` from the cursor), merged; with ``owner``, one Query of the owner index. Each
  reads ``limit + 1`` index entries a page (more when filters drop some). Prefix and
  metadata are filters: DynamoDB bills the entries they drop.
- ``order="id"``: a Query per shard of the id index, in id order (``Ik`` ascending),
  merged; with ``owner``, one Query of the owner id index. The cursor (the last id) and
  the prefix are key conditions on ``Ik`` (``> :cursor``, ``begins_with``, or
  ``BETWEEN`` for both: :func:`~threadline.stores.dynamodb._session_items.id_range`),
  never filters, so each Query reads ``limit + 1`` entries (``limit + 2`` when the
  condition includes the cursor itself), whatever the page's depth and the table's
  size: a page of 100 is 4 Queries reading ~404 entries at 1,000 sessions as at
  100,000. Metadata and expiry stay filters (DynamoDB bills what they drop).
- While an index is missing or still backfilling (see
  :mod:`~threadline.stores.dynamodb._schema`), the same answers come from a Scan (for
  the id order with an owner: every entry of the owner's in the recent-order owner
  index, sorted here, while only the id index is missing).

``stats()`` sums ``Count`` over the recent index (one entry per session, never a
message), so it reads ~ sessions x 100 bytes, not the table.
"""

from __future__ import annotations

import heapq
import itertools
import math
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from threadline._errors import StoreError
from threadline.stores._base import SessionPage
from threadline.stores._sessions import ListQuery, SessionChanges, StoreStats, recent_cursor
from threadline.stores.dynamodb._client import DynamoError
from threadline.stores.dynamodb._items import (
    META_SEQ,
    _alive,
    _int,
    _n,
    _new_base,
    partition_key,
)
from threadline.stores.dynamodb._schema import active_indexes
from threadline.stores.dynamodb._session_items import (
    ID_INDEX,
    OWNER_ID_INDEX,
    OWNER_INDEX,
    RECENT_INDEX,
    RECENT_SHARDS,
    after_rank,
    id_key,
    id_range,
    in_id_order,
    list_filter,
    listing_keys,
    rank,
    rank_micros,
    session_attributes,
    update_clauses,
)

if TYPE_CHECKING:
    from threadline.stores.dynamodb._store import DynamoDBStore

__all__ = ["SessionIndex"]

_ATTEMPTS = 50
#: Seconds between two looks at whether a missing index has become usable.
_RECHECK = 60.0
_CONDITION_FAILED = "ConditionalCheckFailedException"
#: Index entries a Query reads when it reads them all (~100 KB at ~100 bytes each).
_FULL_PAGE = 1000


class SessionIndex:
    """The session-level operations of one store (its table, client and indexes)."""

    def __init__(self, store: DynamoDBStore) -> None:
        self.store = store
        self.indexes: frozenset[str] = frozenset()
        self._checked = 0.0

    def ready(self, indexes: frozenset[str]) -> None:
        """Setup found these listing indexes usable."""
        self.indexes, self._checked = indexes, time.monotonic()

    def _usable(self, name: str) -> bool:
        """``name`` is ACTIVE (looked up again at most every minute while it is not)."""
        if name not in self.indexes and time.monotonic() - self._checked > _RECHECK:
            table = self.store._call("describe_table", TableName=self.store.table)["Table"]
            self.ready(active_indexes(table))
        return name in self.indexes

    # -- metadata ----------------------------------------------------------------------

    def update(self, session_id: str, changes: SessionChanges) -> None:
        """Store the given fields, creating the session if it is missing or expired.

        A store with a TTL tries the new item first for a session it has not seen (the
        server names a conversation before its first message), the update first for one
        it has: usually one request either way."""
        store = self.store
        pk = partition_key(session_id)
        given = changes.given()
        store._ensure_ready()
        with store._lock:
            put_first = store.ttl is not None and pk not in store._seen
        steps = (self._put, self._update) if put_first else (self._update, self._put)
        for _ in range(_ATTEMPTS):
            for step in steps:
                if step(pk, session_id, given):
                    return
            # Created, renewed or deleted by another writer meanwhile: try again.
        raise StoreError(f"update_session gave up after {_ATTEMPTS} attempts: the session "
                         "kept being created and deleted by other writers")

    def _update(self, pk: str, session_id: str, given: dict[str, Any]) -> bool:
        """Update a live session item (create a missing one, without a TTL); False if
        the item's state did not allow it."""
        try:
            found = self.store._call("update_item", **self._update_request(
                pk, session_id, given, time.time()))
        except DynamoError as exc:
            if exc.code != _CONDITION_FAILED:
                raise
            return False
        self.store._remember(pk, found["Attributes"])
        return True

    def _put(self, pk: str, session_id: str, given: dict[str, Any]) -> bool:
        """Put a new session item where none is, or an expired one; False otherwise."""
        store, now = self.store, time.time()
        item = self._new_item(pk, session_id, given, now)
        try:
            store._call("put_item", **store._requests.expression(
                TableName=store.table, Item=item,
                ConditionExpression="attribute_not_exists(#pk) OR #e <= :now",
                values={":now": _n(now)}))
        except DynamoError as exc:
            if exc.code != _CONDITION_FAILED:
                raise
            return False
        store._remember(pk, item)
        return True

    def _update_request(self, pk: str, session_id: str, given: dict[str, Any],
                        now: float) -> dict[str, Any]:
        """The UpdateItem of a live session item; without a store TTL it also creates a
        missing one (each creation field ``if_not_exists``)."""
        store = self.store
        sets, removes, values = update_clauses(given)
        sets[:0] = ["#s = :sid", "#ik = :ik"]  # Ik as well: it never changes
        values[":sid"], values[":now"] = {"S": session_id}, _n(now)
        values[":ik"] = {"S": id_key(session_id)}
        condition = "attribute_exists(#pk) AND (attribute_not_exists(#e) OR #e > :now)"
        if store.ttl is None:
            listed = listing_keys(pk, now, session_id)
            sets += ["#b = if_not_exists(#b, :base)", "#c = if_not_exists(#c, :zero)",
                     "#ca = if_not_exists(#ca, :now)", "#ua = if_not_exists(#ua, :now)",
                     "#lst = if_not_exists(#lst, :lst)", "#rk = if_not_exists(#rk, :rk)"]
            values.update({":base": _n(_new_base()), ":zero": _n(0),
                           ":lst": listed["Lst"], ":rk": listed["Rk"]})
            condition = "attribute_not_exists(#pk) OR attribute_not_exists(#e) OR #e > :now"
        update = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        return store._requests.expression(
            TableName=store.table, Key=store._requests.key(pk, META_SEQ),
            UpdateExpression=update, ConditionExpression=condition, values=values,
            ReturnValues="ALL_NEW")

    def _new_item(self, pk: str, session_id: str, given: dict[str, Any],
                  now: float) -> dict[str, Any]:
        """A new, empty session item holding the given fields and the store's TTL."""
        store = self.store
        item = {**store._requests.key(pk, META_SEQ), "Session": {"S": session_id},
                "Base": _n(_new_base()), "Count": _n(0), "CreatedAt": _n(now),
                "UpdatedAt": _n(now), **listing_keys(pk, now, session_id),
                **session_attributes(given)}
        if store.ttl is not None:
            item["ExpiresAt"] = _n(now + store.ttl)
            item[store.ttl_attribute] = _n(math.ceil(now + store.ttl))
        return item

    # -- listings ----------------------------------------------------------------------

    def listing(self, query: ListQuery) -> SessionPage:
        self.store._ensure_ready()
        if query.order == "recent":
            return self._recent(query)
        entries: Iterator[dict[str, Any]]
        if query.owner is not None and self._usable(OWNER_ID_INDEX):
            entries = self._id_entries(OWNER_ID_INDEX, query.owner, query)
        elif query.owner is None and self._usable(ID_INDEX):
            shards = [self._id_entries(ID_INDEX, f"r{number}", query)
                      for number in range(RECENT_SHARDS)]
            entries = heapq.merge(*shards, key=lambda item: item["Session"]["S"])
        else:
            return self._sorted_ids(query)
        found = [item["Session"]["S"] for item in itertools.islice(entries, query.limit + 1)]
        page = found[:query.limit]
        return SessionPage(page, page[-1] if len(found) > query.limit else None)

    def _id_entries(self, index: str, key: str, query: ListQuery
                    ) -> Iterator[dict[str, Any]]:
        """The matching entries of one partition of an id index, in id order after the
        cursor: a Query whose key condition holds the cursor and prefix
        (:func:`~threadline.stores.dynamodb._session_items.id_range`), read ``limit + 1``
        entries a page (``limit + 2`` when the condition includes the cursor), only as
        far as the caller reads."""
        bounds = id_range(query.prefix, query.cursor)
        if bounds is None:
            return
        condition, values, inclusive = bounds
        # A condition that lets the cursor through reads it: one entry more a page.
        size = min(query.limit + 1 + inclusive, _FULL_PAGE)
        entries = in_id_order(self._index_entries(index, key, query, condition, values,
                                                  "#s, #ik", page_size=size, forward=True))
        for entry in entries:
            # The key condition may let through the cursor itself, and ids sharing its Ik.
            if query.cursor is None or entry["Session"]["S"] > query.cursor:
                yield entry

    def _sorted_ids(self, query: ListQuery) -> SessionPage:
        """The id order without its index (missing, or still backfilling): every match,
        from the owner's entries in the recent-first owner index or a Scan, sorted here."""
        if query.owner is not None and self._usable(OWNER_INDEX):
            ids = sorted(item["Session"]["S"] for item in self._index_entries(
                OWNER_INDEX, query.owner, query, "", {}, "#s", page_size=_FULL_PAGE))
        else:
            ids = sorted(item["Session"]["S"] for item in self._scan(query, "#s"))
        if query.cursor is not None:
            ids = [sid for sid in ids if sid > query.cursor]
        page = ids[:query.limit]
        return SessionPage(page, page[-1] if len(ids) > query.limit else None)

    def _recent(self, query: ListQuery) -> SessionPage:
        """Newest first: the index's shards merged (or a Scan, sorted here)."""
        after = None if query.cursor is None else after_rank(query.cursor, partition_key)
        condition, values = ("", {}) if after is None else (
            " AND #rk < :after", {":after": {"S": after}})
        if query.owner is not None and self._usable(OWNER_INDEX):
            entries: Iterator[dict[str, Any]] = self._index_entries(
                OWNER_INDEX, query.owner, query, condition, values, "#s, #rk")
        elif query.owner is None and self._usable(RECENT_INDEX):
            shards = [self._index_entries(RECENT_INDEX, f"r{number}", query, condition,
                                          values, "#s, #rk")
                      for number in range(RECENT_SHARDS)]
            entries = heapq.merge(*shards, key=lambda item: item["Rk"]["S"], reverse=True)
        else:
            entries = iter(self._scan_recent(query, after))
        found = list(itertools.islice(entries, query.limit + 1))
        page = found[:query.limit]
        ids = [item["Session"]["S"] for item in page]
        if len(found) <= query.limit:
            return SessionPage(ids, None)
        last = page[-1]
        return SessionPage(ids, recent_cursor(int(last["Rk"]["S"].split("#", 1)[0]),
                                              last["Session"]["S"]))

    def _index_entries(self, index: str, key: str, query: ListQuery, key_range: str,
                       range_values: dict[str, Any], projection: str, *,
                       page_size: int | None = None, forward: bool = False
                       ) -> Iterator[dict[str, Any]]:
        """The matching entries of one index partition whose range key meets
        ``key_range`` (``" AND ..."`` or ""), in the index's order (newest first unless
        ``forward``), read a page of ``limit + 1`` (or ``page_size``) at a time, only as
        far as the caller reads."""
        hash_name = "#own" if index in (OWNER_INDEX, OWNER_ID_INDEX) else "#lst"
        where, names, values = list_filter(query, time.time())
        values.update(range_values)
        values[":key"] = {"S": key}
        request = self.store._requests.expression(
            TableName=self.store.table, IndexName=index,
            KeyConditionExpression=f"{hash_name} = :key{key_range}",
            FilterExpression=where, ProjectionExpression=projection,
            ScanIndexForward=forward, Limit=page_size or min(query.limit + 1, _FULL_PAGE),
            values=values)
        request["ExpressionAttributeNames"] = {**request.get("ExpressionAttributeNames", {}),
                                               **names}
        for page in self.store._pages("query", request):
            yield from page

    def _scan(self, query: ListQuery, projection: str) -> Iterator[dict[str, Any]]:
        """The matching session items, from a Scan of the whole table."""
        where, names, values = list_filter(query, time.time(), scan_seq=META_SEQ)
        store = self.store
        request = store._requests.expression(
            TableName=store.table, FilterExpression=where, ProjectionExpression=projection,
            ConsistentRead=store.consistent_read, values=values)
        request["ExpressionAttributeNames"] = {**request.get("ExpressionAttributeNames", {}),
                                               **names}
        for page in store._pages("scan", request):
            yield from page

    def _scan_recent(self, query: ListQuery, after: str | None) -> list[dict[str, Any]]:
        """The recent order without its index: every match, sorted here by ``Rk``
        (computed from ``UpdatedAt``, as migration 2 and every write store it)."""
        entries = []
        for item in self._scan(query, "#pk, #s, #ua"):
            key = rank(rank_micros(float(item["UpdatedAt"]["N"])), item[self.store.pk_name]["S"])
            if after is None or key < after:
                entries.append({"Session": item["Session"], "Rk": {"S": key}})
        entries.sort(key=lambda entry: entry["Rk"]["S"], reverse=True)
        return entries

    # -- stats -------------------------------------------------------------------------

    def stats(self) -> StoreStats:
        """Sessions and messages: ``Count`` summed over the recent index's entries (a
        Scan of the session items while the index is not usable)."""
        self.store._ensure_ready()
        query = ListQuery("id", None, "", None, _FULL_PAGE, None)
        now = time.time()
        items: Iterator[dict[str, Any]]
        if self._usable(RECENT_INDEX):
            items = itertools.chain.from_iterable(
                self._index_entries(RECENT_INDEX, f"r{number}", query, "", {}, "#c, #e",
                                    page_size=_FULL_PAGE)
                for number in range(RECENT_SHARDS))
        else:
            items = self._scan(query, "#c, #e")
        sessions = messages = 0
        for item in items:
            if _alive(item, now):
                sessions += 1
                messages += _int(item, "Count")
        return StoreStats(sessions, messages)
