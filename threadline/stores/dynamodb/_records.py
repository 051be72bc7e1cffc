"""The records of a DynamoDB store (see :mod:`threadline.stores._records`): its records table.

The layout (a second table; a head item per session with the deadline and generation
of its records; values above 390 KB in parts) is described in
:mod:`~threadline.stores.dynamodb._record_items`, which builds the requests;
:class:`RecordTable` sends them, with the store's client, timeouts and error wrapping.

Writes: a ``put_records`` is ONE ``TransactWriteItems`` (the head, the parts of large
values, the records in order, the deletes) when it fits DynamoDB's 100 items and 4 MB;
otherwise several, in order, each checking the head (a crash leaves a prefix of the
batch written, records before deletes, as :mod:`~threadline.stores._records` allows).
The head is put only where no live one is (a new generation) or checked to still be the
generation this store last saw; when the check fails the cancellation returns the
current head, so the retry needs no extra read. A ``ttl`` moves the head's deadline:
one write, whatever the number of records.

Reads: ``get_records`` is one ``BatchGetItem`` (the head and the keys), ``scan_records``
one ``Query`` over a range of ``RecordKey`` (``Limit`` = ``limit + 1``: the ``before``
key itself may come back) and a ``GetItem`` of the head; items of another generation
are skipped. Values in parts take one more ``BatchGetItem``.

The table is created on the first ``put_records`` (on-demand billing, TTL on the
store's TTL attribute, which only head items carry): stores that keep no records never
need it. Until then reads find nothing and deletes have nothing to do.
"""

from __future__ import annotations

import math
import random
import secrets
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Collection, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from threadline._errors import ConfigurationError, MissingDependencyError, StoreError
from threadline.stores._base import validate_ttl
from threadline.stores._records import (
    check_record_batch,
    check_record_keys,
    check_scan_args,
    validate_record_key,
)
from threadline.stores.dynamodb._client import DynamoError, wrap_error
from threadline.stores.dynamodb._items import _alive, _n, partition_key
from threadline.stores.dynamodb._record_items import (
    _TX_ITEMS,
    HEAD,
    RANGE_KEY,
    Action,
    Expected,
    RecordRequests,
    expected_of,
    key_range,
    parse_part_key,
    part_key,
    parts_of,
    plan,
    steps,
)
from threadline.stores.dynamodb._schema import create_table, enable_ttl

try:
    import botocore.exceptions  # type: ignore[import-untyped]
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingDependencyError("boto3", "dynamodb") from exc

if TYPE_CHECKING:
    from threadline.stores.dynamodb._store import DynamoDBStore

__all__ = ["RecordTable", "records_table_name"]

_CACHE_SIZE = 10_000
_MAX_ATTEMPTS = 200
_READ_ATTEMPTS = 5
#: Parts no record points to are purged once this old (seconds): a large value being
#: written right now has its parts in place before its record item.
_ORPHAN_AGE = 3600.0
_MISSING = "ResourceNotFoundException"


def records_table_name(table: str, option: str | None) -> str | None:
    """The records table of ``table``: the ``records_table`` option, else
    ``{table}_records`` (None when that is longer than DynamoDB allows)."""
    if option is not None:
        return option
    name = f"{table}_records"
    return name if len(name) <= 255 else None


def _gen(item: Mapping[str, Any] | None) -> str | None:
    return None if item is None or "Gen" not in item else str(item["Gen"]["S"])


def _sort_key(item: Mapping[str, Any]) -> str:
    return str(item[RANGE_KEY]["S"])


def _joined(item: Mapping[str, Any], parts: Mapping[str, Mapping[str, Any]]) -> bytes | None:
    """The value of a record item, its parts read into ``parts``; None if one is missing
    (the record was written over since it was read)."""
    first: bytes = item.get("Value", {}).get("B", b"")
    held = expected_of(item)
    if held is None:
        return first
    pieces = [first]
    for i in range(1, held[1]):
        part = parts.get(part_key(_sort_key(item), held[0], i))
        if part is None:
            return None
        pieces.append(part["Value"]["B"])
    return b"".join(pieces)


class _Restart(Exception):
    """The generation changed between the steps of a write."""


class RecordTable:
    """A DynamoDB store's records: ``put``, ``get``, ``scan``, ``delete`` (the Store's
    ``*_records`` methods), and what ``delete_session``, ``expire``, ``purge_expired``
    and ``destroy`` do to them."""

    def __init__(self, store: DynamoDBStore, name: str | None) -> None:
        self.store = store
        self.name = name
        self.table = name or ""  # used once _check_name() has passed
        self.requests = RecordRequests(self.table, store.pk_name, store.ttl_attribute)
        self._lock = threading.Lock()
        self._ready = False
        # pk -> the generation of its head last seen, so a put needs no read first.
        self._gens: OrderedDict[str, str] = OrderedDict()

    # -- plumbing --------------------------------------------------------------------------

    def _check_name(self) -> None:
        if self.name is None:
            raise ConfigurationError(
                f"the records table of {self.store.table!r} would be named "
                f"{self.store.table + '_records'!r}, longer than DynamoDB's 255 characters: "
                "pass records_table=...")

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response: dict[str, Any] = getattr(self.store.client(), operation)(**kwargs)
            return response
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise self._wrap(exc, operation) from exc

    def _wrap(self, exc: Exception, operation: str) -> StoreError:
        return wrap_error(exc, operation, self.store._where(), self.table,
                          self.store.options)

    def _pages(self, operation: str, kwargs: dict[str, Any]
               ) -> Iterator[list[dict[str, Any]]]:
        while True:
            page = self._call(operation, **kwargs)
            yield page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return
            kwargs = {**kwargs, "ExclusiveStartKey": page["LastEvaluatedKey"]}

    def _between(self, pk: str, low: str, high: str, **parts: Any) -> dict[str, Any]:
        """A Query of the session's items from ``low`` to ``high`` (both included)."""
        return self.requests.expression(
            TableName=self.table, KeyConditionExpression="#pk = :pk AND #rk BETWEEN :low "
                                                         "AND :high",
            values={":pk": {"S": pk}, ":low": {"S": low}, ":high": {"S": high}}, **parts)

    def _transact(self, ops: list[dict[str, Any]], token: str
                  ) -> botocore.exceptions.ClientError | None:
        """Send one transaction; its cancellation, or None if it committed."""
        try:
            self.store.client().transact_write_items(TransactItems=ops,
                                                     ClientRequestToken=token)
            return None
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "TransactionCanceledException":
                return exc
            raise self._wrap(exc, "TransactWriteItems") from exc
        except botocore.exceptions.BotoCoreError as exc:
            raise self._wrap(exc, "TransactWriteItems") from exc

    def _remember(self, pk: str, gen: str | None) -> None:
        with self._lock:
            if gen is None:
                self._gens.pop(pk, None)
                return
            self._gens[pk] = gen
            self._gens.move_to_end(pk)
            while len(self._gens) > _CACHE_SIZE:
                self._gens.popitem(last=False)

    def _ensure(self) -> None:
        """Create the table if missing (on the first put), TTL on the heads' attribute."""
        if self._ready:
            return
        with self._lock:
            if self._ready:
                return
            try:
                table = self._call("describe_table", TableName=self.table)["Table"]
            except DynamoError as exc:
                if exc.code != _MISSING:
                    raise
                table = create_table(self.store, self.table, RANGE_KEY, "S")
            keys = {k["KeyType"]: k["AttributeName"] for k in table["KeySchema"]}
            if keys != {"HASH": self.store.pk_name, "RANGE": RANGE_KEY}:
                raise ConfigurationError(
                    f"DynamoDB table {self.name!r} has keys {keys}, not threadline's records "
                    f"keys {{'HASH': {self.store.pk_name!r}, 'RANGE': {RANGE_KEY!r}}}; pass "
                    "records_table=... to use another table")
            if self.store.options.get("manage_ttl", True):
                enable_ttl(self.store, self.table)
            self._ready = True

    # -- writes ------------------------------------------------------------------------------

    def put(self, session_id: str, records: Mapping[str, bytes], delete: Collection[str],
            ttl: float | None) -> None:
        pk = partition_key(session_id)
        batch = check_record_batch(records, delete, self.store.max_message_bytes)
        deletes = list(dict.fromkeys(check_record_keys(delete)))
        ttl = validate_ttl(ttl) or self.store.ttl
        self._check_name()
        self._ensure()
        if batch:
            writes = iter(lambda: secrets.token_hex(8), None)
            self._write(pk, session_id, plan(batch, deletes, writes), ttl, create=True)
            return
        try:  # deletes only: the head is not created for them
            if deletes:
                self._write(pk, session_id, plan({}, deletes, iter(())), None, create=False)
            if ttl is not None:
                self.expire(pk, ttl)
        except DynamoError as exc:
            if exc.code != _MISSING:
                raise

    def _write(self, pk: str, session_id: str, actions: list[Action], ttl: float | None,
               create: bool) -> None:
        """Write ``actions`` in order, one transaction each step; then delete the parts
        of the values they replaced. ``create``: with the head (made if missing)."""
        expected: dict[str, Expected] = {}
        replaced: set[tuple[str, str, int]] = set()
        chunks = steps(actions, pk, _TX_ITEMS - 1 if create else _TX_ITEMS)
        for _ in range(_MAX_ATTEMPTS):
            with self._lock:
                gen = self._gens.get(pk)
            try:
                for i, step in enumerate(chunks):
                    gen = self._commit(pk, session_id, step, ttl, create,
                                       gen or secrets.token_hex(8), gen is not None,
                                       expected, replaced, fixed=i > 0)
                break
            except _Restart:
                # The session's records were deleted (or expired) between two steps: what
                # the earlier steps wrote is invisible now, so write the whole batch again.
                continue
        else:
            raise StoreError(f"put_records gave up after {_MAX_ATTEMPTS} attempts: the "
                             "session's records kept being deleted meanwhile")
        self._delete_keys(pk, [part for key, write, count in replaced
                               for part in parts_of(key, (write, count))])

    def _commit(self, pk: str, session_id: str, step: list[Action], ttl: float | None,
                create: bool, gen: str, known: bool, expected: dict[str, Expected],
                replaced: set[tuple[str, str, int]], fixed: bool = False) -> str:
        """Commit one transaction, learning from its cancellations (the live head, the
        values found in place); the generation it was written under (``fixed``: that
        of the steps before, else :class:`_Restart`). ``replaced`` collects the values
        in parts seen in place of the records it writes, but for their own: once it
        commits, none of them is in place any more."""
        token = uuid.uuid4().hex
        for attempt in range(_MAX_ATTEMPTS):
            now = time.time()
            ops = [self.requests.head_op(pk, session_id, gen, known, ttl, now)] if create else []
            ops += [self.requests.action_op(pk, gen, action, expected.get(action.key), now)
                    for action in step]
            # botocore retries a request with the same token: DynamoDB runs it once.
            cancelled = self._transact(ops, f"{token[:28]}{attempt:04d}")
            if cancelled is None:
                if create:
                    self._remember(pk, gen)
                return gen
            reasons = cancelled.response.get("CancellationReasons") or []
            learned = False
            if create and reasons:
                head = reasons[0]
                reasons = reasons[1:]
                if head.get("Code") == "ConditionalCheckFailed":
                    item = head.get("Item")
                    found = _gen(item) if _alive(item, now) else None
                    self._remember(pk, found)
                    if fixed and found != gen:
                        raise _Restart
                    known, gen = found is not None, found or secrets.token_hex(8)
                    learned = True
            for action, reason in zip(step, reasons, strict=False):
                if reason.get("Code") == "ConditionalCheckFailed" and action.kind != "part":
                    held = expected[action.key] = expected_of(reason.get("Item"))
                    if held is not None and held[0] != action.write:  # not a retry's own
                        replaced.add((action.key, *held))
                    learned = True
            if any(r.get("Code") == "TransactionConflict" for r in reasons):
                time.sleep(random.uniform(0, 0.01 * min(attempt + 1, 10)))
            elif not learned:
                raise StoreError(f"DynamoDB cancelled the records write: {reasons}") \
                    from cancelled
            elif attempt:  # several writers at once: spread the retries out
                time.sleep(random.uniform(0, min(0.002 * 2 ** min(attempt, 6), 0.1)))
        raise StoreError(f"put_records gave up after {_MAX_ATTEMPTS} attempts: too many "
                         "concurrent writers on this session")

    def _delete_keys(self, pk: str, sort_keys: list[str]) -> None:
        """Delete those items: BatchWriteItem 25 at a time (unprocessed ones again)."""
        requests = [{"DeleteRequest": {"Key": self.requests.record_key(pk, key)}}
                    for key in dict.fromkeys(sort_keys)]
        for start in range(0, len(requests), 25):
            pending: dict[str, Any] = {self.table: requests[start:start + 25]}
            for attempt in range(10):
                pending = self._call("batch_write_item",
                                     RequestItems=pending).get("UnprocessedItems") or {}
                if not pending:
                    break
                time.sleep(0.05 * 2 ** attempt)
            else:
                raise StoreError("DynamoDB kept throttling the deletion; try again")

    def delete(self, session_id: str, keys: Collection[str] | None,
               prefix: str | None) -> None:
        pk = partition_key(session_id)
        wanted = None if keys is None else list(dict.fromkeys(check_record_keys(keys)))
        if prefix is not None:
            validate_record_key(prefix)
        self._check_name()
        try:
            if wanted is None and prefix is None:
                self.drop(pk)
                return
            if wanted:
                self._write(pk, session_id, plan({}, wanted, iter(())), None, create=False)
            if prefix is not None:
                self._delete_prefix(pk, prefix)
        except DynamoError as exc:
            if exc.code != _MISSING:
                raise

    def _delete_prefix(self, pk: str, prefix: str) -> None:
        low, high = key_range(prefix, None, None) or ("!", "!")
        query = self._between(pk, low, high, ProjectionExpression="#rk, #w, #n",
                              ConsistentRead=True)
        doomed: list[str] = []
        for page in self._pages("query", query):
            for item in page:
                key = _sort_key(item)
                if key != high:
                    doomed += [key, *parts_of(key, expected_of(item))]
        self._delete_keys(pk, doomed)

    def drop(self, pk: str) -> bool:
        """Delete all of a session's records (its head first, so reads stop seeing them
        at once); True if it had live ones."""
        if self.name is None:
            return False
        try:
            old = self._call("delete_item", TableName=self.table,
                             Key=self.requests.record_key(pk, HEAD),
                             ReturnValues="ALL_OLD").get("Attributes")
        except DynamoError as exc:
            if exc.code != _MISSING:
                raise
            return False
        self._remember(pk, None)
        gen = _gen(old)
        query = self.requests.expression(
            TableName=self.table, KeyConditionExpression="#pk = :pk AND #rk > :head",
            ProjectionExpression="#rk, #g", values={":pk": {"S": pk}, ":head": {"S": HEAD}},
            ConsistentRead=True)
        items = [item for page in self._pages("query", query) for item in page]
        spared = None
        if any(_gen(item) != gen for item in items):
            # Another generation: a put since the head was deleted keeps its records.
            spared = _gen(self._head(pk, consistent=True))
        existed = _alive(old, time.time()) and any(
            _gen(item) == gen and parse_part_key(_sort_key(item)) is None for item in items)
        self._delete_keys(pk, [_sort_key(item) for item in items
                               if spared is None or _gen(item) != spared])
        return existed

    def expire(self, pk: str, ttl: float | None) -> None:
        """Set or clear the deadline of a session's live records (its head)."""
        if self.name is None:
            return
        now = time.time()
        values: dict[str, Any] = {":now": _n(now)}
        update = "REMOVE #e, #ttl"
        if ttl is not None:
            update = "SET #e = :exp, #ttl = :ttl"
            values[":exp"], values[":ttl"] = _n(now + ttl), _n(math.ceil(now + ttl))
        try:
            self._call("update_item", **self.requests.expression(
                TableName=self.table, Key=self.requests.record_key(pk, HEAD),
                UpdateExpression=update, values=values,
                ConditionExpression="attribute_exists(#pk) AND (attribute_not_exists(#e) "
                                    "OR #e > :now)"))
        except DynamoError as exc:
            if exc.code not in ("ConditionalCheckFailedException", _MISSING):
                raise

    # -- reads -------------------------------------------------------------------------------

    def _head(self, pk: str, consistent: bool | None = None) -> dict[str, Any] | None:
        found = self._call("get_item", TableName=self.table,
                           Key=self.requests.record_key(pk, HEAD),
                           ConsistentRead=self.store.consistent_read if consistent is None
                           else consistent)
        item: dict[str, Any] | None = found.get("Item")
        return item

    def _batch_get(self, pk: str, sort_keys: list[str]) -> dict[str, dict[str, Any]]:
        """The items of those sort keys that exist: BatchGetItem 100 at a time (keys left
        unprocessed, by throttling or the 16 MB answer limit, asked again)."""
        keys = [self.requests.record_key(pk, key) for key in dict.fromkeys(sort_keys)]
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(keys), 100):
            pending: dict[str, Any] = {self.table: {
                "Keys": keys[start:start + 100], "ConsistentRead": self.store.consistent_read}}
            for attempt in range(10):
                answer = self._call("batch_get_item", RequestItems=pending)
                items = answer.get("Responses", {}).get(self.table, [])
                found.update((_sort_key(item), item) for item in items)
                pending = answer.get("UnprocessedKeys") or {}
                if not pending:
                    break
                if not items:  # throttled rather than cut short by size
                    time.sleep(0.05 * 2 ** attempt)
            else:
                raise StoreError("DynamoDB kept throttling the read; try again")
        return found

    def _values(self, pk: str, gen: str, items: dict[str, dict[str, Any]]
                ) -> dict[str, bytes]:
        """The values of record items, their parts read. A record written over since it
        was read (its parts gone) is read again."""
        values: dict[str, bytes] = {}
        for _ in range(_READ_ATTEMPTS):
            needed = [part_key(key, held[0], i) for key, item in items.items()
                      if (held := expected_of(item)) is not None for i in range(1, held[1])]
            parts = self._batch_get(pk, needed) if needed else {}
            again = []
            for key, item in items.items():
                value = _joined(item, parts)
                if value is None:
                    again.append(key)
                else:
                    values[key] = value
            if not again:
                return values
            items = {key: item for key, item in self._batch_get(pk, again).items()
                     if _gen(item) == gen}
        raise StoreError(f"records {list(items)[:3]} kept changing while being read; "
                         "try again")

    def get(self, session_id: str, keys: Collection[str]) -> dict[str, bytes]:
        pk = partition_key(session_id)
        wanted = list(dict.fromkeys(check_record_keys(keys)))
        self._check_name()
        if not wanted:
            return {}
        try:
            found = self._batch_get(pk, [HEAD, *wanted])
        except DynamoError as exc:
            if exc.code != _MISSING:
                raise
            return {}
        head = found.get(HEAD)
        gen = _gen(head)
        if gen is None or not _alive(head, time.time()):
            return {}
        values = self._values(pk, gen, {key: found[key] for key in wanted
                                        if key in found and _gen(found[key]) == gen})
        return {key: values[key] for key in wanted if key in values}

    def scan(self, session_id: str, prefix: str, after: str | None, before: str | None,
             limit: int | None, reverse: bool, keys_only: bool) -> list[tuple[str, bytes]]:
        pk = partition_key(session_id)
        check_scan_args(prefix, after, before, limit)
        self._check_name()
        span = key_range(prefix, after, before)
        if span is None:
            return []
        low, high = span
        query = self._between(pk, low, high, ScanIndexForward=not reverse,
                              ConsistentRead=self.store.consistent_read,
                              **({"ProjectionExpression": "#rk, #g"} if keys_only else {}))
        if limit is not None:
            query["Limit"] = limit + 1
        try:
            chosen, gen = self._range(pk, query, high, limit)
        except DynamoError as exc:
            if exc.code != _MISSING:
                raise
            return []
        if keys_only or gen is None:
            return [(key, b"") for key in chosen]
        found = self._values(pk, gen, chosen)
        return [(key, found[key]) for key in chosen if key in found]

    def _range(self, pk: str, query: dict[str, Any], high: str, limit: int | None
               ) -> tuple[dict[str, dict[str, Any]], str | None]:
        """The items of the query in the live generation (at most ``limit``, never the
        ``high`` bound itself), and that generation."""
        chosen: dict[str, dict[str, Any]] = {}
        gen: str | None = None
        for page in self._pages("query", query):
            if page and gen is None:
                head = self._head(pk)
                gen = _gen(head)
                if gen is None or not _alive(head, time.time()):
                    return {}, None
            for item in page:
                key = _sort_key(item)
                if key != high and _gen(item) == gen:
                    chosen[key] = item
                    if limit is not None and len(chosen) >= limit:
                        return chosen, gen
        return chosen, gen

    # -- maintenance -------------------------------------------------------------------------

    def purge(self) -> None:
        """Delete expired heads, the items of generations no live head has, and parts
        that no record points to (an hour after they were written). A Scan of the whole
        records table."""
        if self.name is None:
            return
        now = time.time()
        scan = self.requests.expression(
            TableName=self.table, ProjectionExpression="#pk, #rk, #g, #w, #n, #e, #at",
            ConsistentRead=True)
        partitions: dict[str, list[dict[str, Any]]] = {}
        try:
            for page in self._pages("scan", scan):
                for item in page:
                    partitions.setdefault(item[self.store.pk_name]["S"], []).append(item)
        except DynamoError as exc:
            if exc.code != _MISSING:
                raise
            return
        for pk, items in partitions.items():
            self._purge_partition(pk, items, now)

    def _purge_partition(self, pk: str, items: list[dict[str, Any]], now: float) -> None:
        head = next((item for item in items if _sort_key(item) == HEAD), None)
        if head is not None and not _alive(head, now):
            self._delete_if(pk, HEAD, "#e <= :now AND #g = :g",
                            {":now": _n(now), ":g": head["Gen"]})
            head = None
        rest = [item for item in items if _sort_key(item) != HEAD]
        gen = _gen(head)
        if head is None and rest:  # look again: a put may have made a head since
            current = self._head(pk, consistent=True)
            gen = _gen(current) if _alive(current, now) else None
        pointed = {(_sort_key(item), held[0]) for item in rest
                   if (held := expected_of(item)) is not None}
        for item in rest:
            key = _sort_key(item)
            part = parse_part_key(key)
            if _gen(item) != gen or (
                    part is not None and part not in pointed
                    and float(item.get("At", {}).get("N", now)) < now - _ORPHAN_AGE):
                # Only if no put has written it again since the Scan.
                self._delete_if(pk, key, "#g = :g", {":g": item["Gen"]})

    def _delete_if(self, pk: str, sort_key: str, condition: str,
                   values: dict[str, Any]) -> None:
        try:
            self._call("delete_item", **self.requests.expression(
                TableName=self.table, Key=self.requests.record_key(pk, sort_key),
                ConditionExpression=condition, values=values))
        except DynamoError as exc:
            if exc.code != "ConditionalCheckFailedException":
                raise

    def destroy(self) -> None:
        """Delete the records table (every session's records)."""
        self._ready = False
        with self._lock:
            self._gens.clear()
        if self.name is None:
            return
        try:
            self._call("delete_table", TableName=self.table)
        except DynamoError as exc:
            if exc.code != _MISSING:
                raise
