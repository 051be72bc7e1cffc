"""``dynamodb://TABLE?region=...`` — sessions in an Amazon DynamoDB table, one item per message.

Layout (``SessionId`` is the ``primary_key_name`` option, ``Seq`` the sort key)::

    SessionId  Seq          attributes
    s1         -H(id)       Base=B (one item per message id: H is 120 bits of its SHA-256)
    s1         B+1          Message (LangChain dict as JSON), Tok (first item of a write)
    s1         B+2          Message
    s1         10**37       Session, Base=B, Count, CreatedAt, UpdatedAt, ExpiresAt, expireAt,
                            Lst, Rk, Ik (listing keys), Title, Meta, Owner, Parent, ForkPoint
    #schema    0            Version

A session is a partition: its messages are items ``B+1 .. B+Count`` and its *session
item* sorts above all of them (``Seq = 10**37``), so a session is never bounded by the
400 KB item limit. ``B`` (the base) is chosen from the clock when a session is created
(microseconds * 10**6): a session deleted or expired and written again gets a larger
base, and items left over from an earlier incarnation (``Seq <= B``) are ignored by
reads and removed by :meth:`DynamoDBStore.purge_expired`. Id items sort below every
message (negative ``Seq``); reads ask for ``Seq > 0`` and never see them.

The partition key is the session id itself when it is at most 1024 UTF-8 bytes and does
not start with ``#``; otherwise ``#h:`` + its SHA-256 (partition keys are limited to
2048 bytes). The session item keeps the full id in ``Session``.

Writes: an append is ONE ``TransactWriteItems`` request: an Update of the session item
conditioned on the (Base, Count) this store last saw — so two writers cannot take the
same sequence numbers — plus a Put per message. TransactWriteItems rather than
BatchWriteItem because the batch is all-or-nothing (BatchWriteItem may write half a turn
and report the rest as unprocessed) and because the count check and the messages must
commit together. When the check fails, DynamoDB returns the current session item
(``ReturnValuesOnConditionCheckFailure``), so the retry needs no extra read; a session
this store has not seen yet is first tried as new (a conditional Put of the session
item). Appends of more than 100 items (the session item, the messages and their id
items), or above ~3.5 MB, are written as several transactions in order. Each write
carries a token on its first item: when a request whose answer was lost is retried and
finds that item in place, the write is known to have landed and is not repeated. A
message larger than the 400 KB item limit is refused before anything is sent.

Message ids: each message with an ``id`` also puts its id item, on the condition that
no item of this incarnation (same ``Base``) holds it. When the id is already there the
transaction is cancelled, the cancellation names the failing id items
(:func:`~threadline.stores.dynamodb._items.known_ids`) and the append is sent again
without them: a retried turn stores nothing twice, racing retries store each id once.
An id item of an earlier incarnation does not count (a deleted or expired session
forgets its ids); delete_session and purge_expired remove them.

Timeouts: ``timeout`` (seconds, default 30) bounds every call, botocore's retries
included (see :mod:`threadline.stores.dynamodb._client`); running out raises
:class:`~threadline.StoreTimeoutError`.

Reads: the last N are one ``Query`` (``ScanIndexForward=False``, ``Limit=N+1``): the
session item comes first, then the newest messages; longer reads page with
``LastEvaluatedKey``. :meth:`~DynamoDBStore.iter_messages` streams a session: a GetItem
of the session item, then ``Query`` pages of ``page_size`` messages (``Limit`` and
``ExclusiveStartKey``) over the sequence numbers it held then. Reads are strongly
consistent (``consistent_read=false`` halves their cost). Purging is a ``Scan`` of the
whole table (DynamoDB bills every item read): fine for maintenance, too costly per
request on big tables; listings never Scan once their indexes exist.

Sessions as objects: the title, metadata, owner, parent and fork point are attributes of
the session item, and four sparse Global Secondary Indexes (recent activity and id
order, each for every session and per owner) list sessions, a page for the price of a
page, without reading a message: see
:mod:`~threadline.stores.dynamodb._session_items` for the attributes and indexes,
:mod:`~threadline.stores.dynamodb._sessions` for update_session, the listings and
stats, and :mod:`~threadline.stores.dynamodb._schema` for creating and migrating the
table. Search has no index to use on DynamoDB: it is the base class's bounded scan.

Expiry: ``ExpiresAt`` (float seconds) is what reads check; ``expireAt`` (whole seconds)
is the table's TTL attribute, enabled by :meth:`~DynamoDBStore.setup` with
UpdateTimeToLive, so DynamoDB deletes expired session items by itself (within a day or
two). Message items carry no TTL (an append would have to refresh every one of them):
they become invisible with their session item and are removed by ``purge_expired()``.

Records (``put_records`` and the others, for LangGraph checkpoints) live in a second
table, ``{table}_records`` (the ``records_table`` option), created on the first
``put_records``: see :mod:`~threadline.stores.dynamodb._record_items` for its layout and
:mod:`~threadline.stores.dynamodb._records` for how it is written and read.

boto3 has no async API; the ``a*`` methods run the calls in worker threads (the Store
defaults), so the event loop never blocks.

>>> store = open_store("dynamodb://chat?region=eu-west-1", ttl=86400)
>>> store.append("s1", [HumanMessage("hi")])
"""

from __future__ import annotations

import math
import random
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from threadline._errors import ConfigurationError, MissingDependencyError, StoreError
from threadline.messages._values import BaseMessage
from threadline.stores._base import (
    MAX_LAST,
    SessionInfo,
    SessionPage,
    Store,
    check_last,
    check_limit,
    check_messages,
    decode_messages,
    encode_message,
    stream_pages,
    validate_ttl,
)
from threadline.stores._sessions import (
    Order,
    SessionChanges,
    StoreStats,
    check_list_args,
)
from threadline.stores._url import StoreURL
from threadline.stores.dynamodb._client import DynamoError, make_client, wrap_error
from threadline.stores.dynamodb._items import (
    META_SEQ,
    SCHEMA_PK,
    Entry,
    Requests,
    _alive,
    _attribute_name,
    _chunks,
    _int,
    _n,
    _num,
    _positive,
    _table_name,
    _utc,
    known_ids,
    partition_key,
)
from threadline.stores.dynamodb._records import RecordTable, records_table_name
from threadline.stores.dynamodb._schema import setup_table
from threadline.stores.dynamodb._session_items import info_fields
from threadline.stores.dynamodb._sessions import SessionIndex

try:
    import botocore.exceptions  # type: ignore[import-untyped]
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingDependencyError("boto3", "dynamodb") from exc

if TYPE_CHECKING:
    from threadline.stores.dynamodb._source import LangChainDynamoDBSource

__all__ = ["DynamoDBStore"]

_CACHE_SIZE = 10_000
#: Where a streamed read is: the (first, last) sequence numbers it reads, and the
#: ExclusiveStartKey of its next page.
_Cursor = tuple[int, int, dict[str, Any] | None]
_MAX_ATTEMPTS = 200


class DynamoDBStore(Store):
    """Chat sessions in a DynamoDB table, created on first use (on-demand billing).

    ``dynamodb://TABLE?region=eu-west-1`` — or ``dynamodb:///TABLE`` / ``table=`` for
    mixed-case names (URL hosts are case-insensitive). ``dynamodb://KEY_ID:SECRET@TABLE``
    passes credentials (never printed); otherwise boto3's usual chain applies.

    >>> store = open_store("dynamodb://chat?region=us-east-1&endpoint_url=http://localhost:5000")
    >>> store.history("s1").add_user_message("hi")
    """

    OPTIONS: ClassVar[dict[str, Any]] = {
        **Store.OPTIONS,
        "table": _table_name,
        "region": str,
        "endpoint_url": str,
        "timeout": _positive,
        "connect_timeout": _positive,
        "read_timeout": _positive,
        "max_attempts": int,
        "pool_size": int,
        "consistent_read": bool,
        "primary_key_name": _attribute_name,
        "ttl_attribute": _attribute_name,
        "manage_ttl": bool,
        "manage_indexes": bool,
        "records_table": _table_name,
        "boto3_session": lambda value: value,
    }

    def __init__(self, url: StoreURL | str, **options: Any) -> None:
        super().__init__(url, **options)
        opts = self.options
        table = opts["table"] if opts.get("table") is not None else (
            self.url.host or self.url.database)
        if not table:
            raise ConfigurationError("a DynamoDB URL names its table: dynamodb://TABLE?"
                                     "region=... (or table=...)")
        self.table = _table_name(table)
        self.pk_name: str = opts.get("primary_key_name") or "SessionId"
        self.ttl_attribute: str = opts.get("ttl_attribute") or "expireAt"
        self.consistent_read: bool = opts.get("consistent_read", True)
        self._requests = Requests(self.table, self.pk_name, self.ttl_attribute)
        self._lock = threading.Lock()  # the client and the cache: held briefly
        self._setup_lock = threading.Lock()  # held while setup talks to DynamoDB
        self._client: Any = None
        self._ready = False
        self._closed = False
        # pk -> (base, count) last seen, so an append needs no read before its write.
        self._seen: OrderedDict[str, tuple[int, int]] = OrderedDict()
        self._sessions = SessionIndex(self)
        self._record_table = RecordTable(
            self, records_table_name(self.table, opts.get("records_table")))

    # -- connection ----------------------------------------------------------------------

    def _where(self) -> str:
        return self.options.get("endpoint_url") or f"region {self.options.get('region')}"

    def client(self) -> Any:
        """The boto3 DynamoDB client (created on first use, shared by all threads)."""
        if self._closed:
            raise StoreError(f"{self!r} is closed")
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = make_client(
                        self.options, self.url.username, self.url.password)
        return self._client

    def _wrap(self, exc: Exception, operation: str) -> StoreError:
        return wrap_error(exc, operation, self._where(), self.table, self.options)

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response: dict[str, Any] = getattr(self.client(), operation)(**kwargs)
            return response
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise self._wrap(exc, operation) from exc

    def _ensure_ready(self) -> None:
        if not self._ready:
            with self._setup_lock:
                if not self._ready:
                    self._setup()
                    self._ready = True

    # -- schema --------------------------------------------------------------------------

    def setup(self) -> None:
        """Create the table (on-demand billing) and its listing indexes if missing,
        enable TTL on ``expireAt`` and migrate the layout; idempotent (see
        :mod:`~threadline.stores.dynamodb._schema`)."""
        with self._setup_lock:
            self._setup()
            self._ready = True

    def _setup(self) -> None:
        self._sessions.ready(setup_table(self))

    def destroy(self) -> None:
        """Delete the whole table (every session in it) and the records table."""
        self._record_table.destroy()
        try:
            self._call("delete_table", TableName=self.table)
        except DynamoError as exc:
            if exc.code != "ResourceNotFoundException":
                raise
        self._ready = False
        with self._lock:
            self._seen.clear()

    def close(self) -> None:
        client, self._client = self._client, None
        self._closed = True
        if client is not None:
            client.close()

    # -- writes ----------------------------------------------------------------------------

    def _remember(self, pk: str, meta: dict[str, Any] | None) -> tuple[int, int] | None:
        state = None if meta is None else (_int(meta, "Base"), _int(meta, "Count"))
        with self._lock:
            if state is None:
                self._seen.pop(pk, None)
            else:
                self._seen[pk] = state
                self._seen.move_to_end(pk)
                while len(self._seen) > _CACHE_SIZE:
                    self._seen.popitem(last=False)
        return state

    def _transact(self, ops: list[dict[str, Any]], request_token: str
                  ) -> botocore.exceptions.ClientError | None:
        """Send one transaction; the cancellation (to inspect) or None if it committed."""
        try:
            self.client().transact_write_items(TransactItems=ops,
                                               ClientRequestToken=request_token)
            return None
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "TransactionCanceledException":
                return exc
            raise self._wrap(exc, "TransactWriteItems") from exc
        except botocore.exceptions.BotoCoreError as exc:
            raise self._wrap(exc, "TransactWriteItems") from exc

    def _write_chunk(self, pk: str, session_id: str, chunk: list[Entry],
                     ttl: float | None) -> None:
        token = uuid.uuid4().hex
        with self._lock:
            state = self._seen.get(pk)
        for attempt in range(_MAX_ATTEMPTS):
            ops, after = self._requests.transaction(pk, session_id, state, chunk, token, ttl)
            # botocore retries a request with the same token: DynamoDB runs it once.
            cancelled = self._transact(ops, f"{token[:28]}{attempt:04d}")
            if cancelled is None:
                with self._lock:
                    self._seen[pk] = after
                    self._seen.move_to_end(pk)
                return
            reasons = cancelled.response.get("CancellationReasons") or [{}]
            meta_reason, first = reasons[0], (reasons[1:] or [{}])[0]
            if first.get("Item", {}).get("Tok", {}).get("S") == token:
                # A retried request whose first answer was lost: it had landed.
                self._remember(pk, meta_reason.get("Item"))
                return
            # Ids this incarnation already holds are left out (a retry, or racing ones).
            known = known_ids(reasons, chunk, after[0])
            if meta_reason.get("Code") == "ConditionalCheckFailed":
                meta = meta_reason.get("Item")
                state = self._remember(pk, meta if _alive(meta, time.time()) else None)
                if state is None or state[0] != after[0]:
                    known = set()  # another incarnation now: its ids are not ours
                chunk = [entry for entry in chunk if entry[1] not in known]
                if not chunk:
                    return
                if attempt:  # several writers at once: spread the retries out
                    time.sleep(random.uniform(0, min(0.002 * 2 ** min(attempt, 6), 0.1)))
                continue
            if known:  # the session item's check passed: the known ids are this session's
                chunk = [entry for entry in chunk if entry[1] not in known]
                if not chunk:
                    return
                continue
            if any(r.get("Code") == "TransactionConflict" for r in reasons):
                time.sleep(random.uniform(0, 0.01 * min(attempt + 1, 10)))
                continue
            if first.get("Code") == "ConditionalCheckFailed":
                raise StoreError(
                    "an item left by an earlier incarnation of this session blocks the "
                    "append; run purge_expired() to remove leftovers") from cancelled
            raise StoreError(f"DynamoDB cancelled the append: {reasons}") from cancelled
        raise StoreError(f"append gave up after {_MAX_ATTEMPTS} attempts: too many "
                         "concurrent writers on this session")

    def append(self, session_id: str, messages: Sequence[BaseMessage], *,
               ttl: float | None = None) -> None:
        pk = partition_key(session_id)
        batch = check_messages(messages)
        ttl = validate_ttl(ttl) if ttl is not None else self.ttl
        entries: list[Entry] = []
        ids: set[str] = set()
        for message in batch:
            if message.id is not None:
                if message.id in ids:
                    continue  # an id repeated in one batch is stored once
                ids.add(message.id)
            entries.append((encode_message(message), message.id))
        if not entries:
            return
        self.check_sizes([text for text, _ in entries])
        chunks = list(_chunks(entries, pk))  # refuses an oversized message before sending
        self._ensure_ready()
        for chunk in chunks:
            self._write_chunk(pk, session_id, chunk, ttl)

    # -- reads -----------------------------------------------------------------------------

    def _pages(self, operation: str, kwargs: dict[str, Any]
               ) -> Iterator[list[dict[str, Any]]]:
        while True:
            page = self._call(operation, **kwargs)
            yield page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return
            kwargs = {**kwargs, "ExclusiveStartKey": page["LastEvaluatedKey"]}

    def get_messages(self, session_id: str, *, last: int | None = None,
                     skip_invalid: bool = False) -> list[BaseMessage]:
        pk = partition_key(session_id)
        last = check_last(last)
        if last == 0:
            return []
        self._ensure_ready()
        # Seq > 0: the session item and the messages, never the id items below them.
        query = self._requests.expression(
            TableName=self.table, KeyConditionExpression="#pk = :pk AND #seq > :zero",
            values={":pk": {"S": pk}, ":zero": _n(0)}, ScanIndexForward=False,
            ConsistentRead=self.consistent_read)
        if last is not None:
            # The session item, then the newest messages (Limit is a 32-bit int).
            query["Limit"] = min(last + 1, MAX_LAST)
        found = self._newest(pk, query, last)
        return decode_messages(found[::-1], session_id=session_id, skip_invalid=skip_invalid,
                               from_end=last is not None)

    def _newest(self, pk: str, query: dict[str, Any], last: int | None) -> list[str]:
        """The stored texts of the session's messages, newest first."""
        found: list[str] = []
        low = high = -1
        for page in self._pages("query", query):
            for item in page:
                seq = _int(item, "Seq")
                if low < 0:
                    if seq != META_SEQ or not _alive(item, time.time()):
                        return []  # no live session item: no session (maybe leftovers)
                    low, high = _int(item, "Base"), _int(item, "Base") + _int(item, "Count")
                    self._remember(pk, item)
                elif seq <= low:  # an older incarnation's leftovers, and all below
                    return found
                elif seq <= high:  # a write committing right now is not shown half-done
                    found.append(item.get("Message", {}).get("S"))
                    if last is not None and len(found) >= last:
                        return found
        return found

    def iter_messages(self, session_id: str, *, page_size: int = 1000,
                      skip_invalid: bool = False) -> Iterator[BaseMessage]:
        """The session's messages, oldest first: the session item, then one Query per
        ``page_size`` messages (the ones it held when the read began)."""
        pk = partition_key(session_id)
        size = check_limit(page_size)

        def fetch(cursor: _Cursor | None) -> tuple[list[str], _Cursor | None]:
            if cursor is None:
                self._ensure_ready()
                meta = self._meta(pk)
                if not _alive(meta, time.time()):
                    return [], None
                assert meta is not None
                self._remember(pk, meta)
                base = _int(meta, "Base")
                cursor = (base + 1, base + _int(meta, "Count"), None)
            low, high, start = cursor
            if high < low:
                return [], None
            query = self._requests.expression(
                TableName=self.table,
                KeyConditionExpression="#pk = :pk AND #seq BETWEEN :low AND :high",
                values={":pk": {"S": pk}, ":low": _n(low), ":high": _n(high)},
                ScanIndexForward=True, Limit=size, ConsistentRead=self.consistent_read)
            if start is not None:
                query["ExclusiveStartKey"] = start
            page = self._call("query", **query)
            texts = [item.get("Message", {}).get("S") for item in page.get("Items", [])]
            after = page.get("LastEvaluatedKey")
            return texts, None if after is None else (low, high, after)

        return stream_pages(fetch, session_id=session_id, skip_invalid=skip_invalid)

    def _meta(self, pk: str) -> dict[str, Any] | None:
        found = self._call("get_item", TableName=self.table, Key=self._requests.key(pk, META_SEQ),
                           ConsistentRead=self.consistent_read)
        item: dict[str, Any] | None = found.get("Item")
        return item

    def session_info(self, session_id: str) -> SessionInfo | None:
        pk = partition_key(session_id)
        self._ensure_ready()
        meta = self._meta(pk)
        if meta is None or not _alive(meta, time.time()) or meta["Session"]["S"] != session_id:
            return None
        return SessionInfo(session_id, _int(meta, "Count"), _utc(_num(meta, "CreatedAt")),
                           _utc(_num(meta, "UpdatedAt")), _utc(_num(meta, "ExpiresAt")),
                           **info_fields(meta))

    def _scan(self, filter_expression: str, projection: str,
              values: dict[str, Any]) -> Iterator[dict[str, Any]]:
        scan = self._requests.expression(TableName=self.table, FilterExpression=filter_expression,
                                ProjectionExpression=projection, values=values,
                                ConsistentRead=self.consistent_read)
        for page in self._pages("scan", scan):
            yield from page

    def list_sessions(self, *, order: Order = "id", owner: str | None = None,
                      prefix: str = "", metadata: Mapping[str, str] | None = None,
                      limit: int = 100, cursor: str | None = None) -> SessionPage:
        """Session ids, from the listing indexes (Queries, never a Scan once they
        exist): a page reads ~``limit + 1`` entries per shard in either order, first page
        or deep; see :mod:`~threadline.stores.dynamodb._sessions` for what each costs."""
        return self._sessions.listing(check_list_args(order, owner, prefix, metadata, limit,
                                                   cursor))

    def _update_session(self, session_id: str, changes: SessionChanges) -> None:
        self._sessions.update(session_id, changes)

    def stats(self) -> StoreStats:
        """Sessions and messages, summed over the recent index (never a message read)."""
        return self._sessions.stats()

    # -- deletion and expiry ---------------------------------------------------------------

    def _delete_items(self, pk: str, below: int, low: int | None = None) -> None:
        """Delete the items of a partition with ``low <= Seq < below`` (id items have
        negative ``Seq``): a keys-only Query, then BatchWriteItem 25 at a time
        (unprocessed items are sent again)."""
        condition, values = "#pk = :pk AND #seq < :below", {":pk": {"S": pk},
                                                             ":below": _n(below)}
        if low is not None:
            condition = "#pk = :pk AND #seq BETWEEN :low AND :high"
            values = {":pk": {"S": pk}, ":low": _n(low), ":high": _n(below - 1)}
        query = self._requests.expression(
            TableName=self.table, KeyConditionExpression=condition,
            ProjectionExpression="#pk, #seq", values=values, ConsistentRead=True)
        requests = [{"DeleteRequest": {"Key": key}}
                    for page in self._pages("query", query) for key in page]
        for start in range(0, len(requests), 25):
            pending = {self.table: requests[start:start + 25]}
            for attempt in range(10):
                pending = self._call("batch_write_item",
                                     RequestItems=pending).get("UnprocessedItems") or {}
                if not pending:
                    break
                time.sleep(0.05 * 2 ** attempt)
            else:
                raise StoreError("DynamoDB kept throttling the deletion; try again")

    def _drop(self, pk: str, condition: str, values: dict[str, Any]) -> dict[str, Any] | None:
        """Delete the session item if ``condition`` holds, then its messages; the old
        session item, or None."""
        try:
            old = self._call("delete_item", **self._requests.expression(
                TableName=self.table, Key=self._requests.key(pk, META_SEQ),
                ConditionExpression=condition, values=values, ReturnValues="ALL_OLD"))
        except DynamoError as exc:
            if exc.code != "ConditionalCheckFailedException":
                raise
            return None
        self._remember(pk, None)
        meta: dict[str, Any] = old["Attributes"]
        self._delete_items(pk, _int(meta, "Base") + _int(meta, "Count") + 1)
        return meta

    def delete_session(self, session_id: str) -> bool:
        pk = partition_key(session_id)
        self._ensure_ready()
        had_records = self._record_table.drop(pk)
        meta = self._drop(pk, "attribute_exists(#pk)", {})
        if meta is None:
            self._delete_items(pk, META_SEQ)  # leftovers of an expired session, if any
            return had_records
        return _alive(meta, time.time()) or had_records

    def expire(self, session_id: str, ttl: float | None) -> None:
        pk = partition_key(session_id)
        ttl = validate_ttl(ttl)
        self._ensure_ready()
        now = time.time()
        values: dict[str, Any] = {":now": _n(now)}
        update = "REMOVE #e, #ttl"
        if ttl is not None:
            update = "SET #e = :exp, #ttl = :ttl"
            values[":exp"], values[":ttl"] = _n(now + ttl), _n(math.ceil(now + ttl))
        try:
            self._call("update_item", **self._requests.expression(
                TableName=self.table, Key=self._requests.key(pk, META_SEQ), UpdateExpression=update,
                ConditionExpression="attribute_exists(#pk) AND (attribute_not_exists(#e) "
                                    "OR #e > :now)",
                values=values))
        except DynamoError as exc:
            if exc.code != "ConditionalCheckFailedException":
                raise
        self._record_table.expire(pk, ttl)

    def purge_expired(self) -> int:
        """Delete expired sessions, and messages and id items left without a live
        session item (DynamoDB's TTL deletes only session items), then the same for
        records. A Scan of the whole table (and of the records table)."""
        self._ensure_ready()
        self._record_table.purge()
        now = time.time()
        metas: dict[str, dict[str, Any]] = {}
        lowest: dict[str, int] = {}  # pk -> its lowest message seq
        id_items: dict[str, list[dict[str, Any]]] = {}  # pk -> its id items
        for item in self._scan("#pk <> :schema", "#pk, #seq, #b, #c, #e",
                               {":schema": {"S": SCHEMA_PK}}):
            pk, seq = item[self.pk_name]["S"], _int(item, "Seq")
            if seq == META_SEQ:
                metas[pk] = item
            elif seq > 0:
                lowest[pk] = min(seq, lowest.get(pk, seq))
            else:
                id_items.setdefault(pk, []).append(item)
        purged = 0
        dropped = set()
        for pk, meta in metas.items():
            if not _alive(meta, now) and self._drop(pk, "#e <= :now", {":now": _n(now)}):
                purged += 1
                dropped.add(pk)
        for pk, seq in lowest.items():
            found = metas.get(pk)
            if pk in dropped or (found is not None and _alive(found, now)
                                 and seq > _int(found, "Base")):
                continue
            # Leftovers, probably: look again, a session may have been written since.
            current = self._meta(pk)
            if current is None:
                self._delete_items(pk, META_SEQ)
                dropped.add(pk)
            elif seq <= _int(current, "Base"):
                self._delete_items(pk, _int(current, "Base") + 1, low=1)
        for pk, items in id_items.items():
            found = metas.get(pk)
            if pk not in dropped and not (found is not None and _alive(found, now) and all(
                    _int(i, "Base") == _int(found, "Base") for i in items)):
                self._purge_ids(pk, items)
        return purged

    def _purge_ids(self, pk: str, items: list[dict[str, Any]]) -> None:
        """Delete the id items of earlier incarnations, each only if no append has
        rewritten it since the Scan (its ``Base`` unchanged)."""
        current = self._meta(pk)
        base = None if current is None else _int(current, "Base")
        for item in items:
            if _int(item, "Base") == base:
                continue
            try:
                self._call("delete_item", **self._requests.expression(
                    TableName=self.table, Key=self._requests.key(pk, _int(item, "Seq")),
                    ConditionExpression="#b = :b", values={":b": item["Base"]}))
            except DynamoError as exc:
                if exc.code != "ConditionalCheckFailedException":
                    raise

    # -- records (threadline.stores.dynamodb._records) -------------------------------------

    supports_records = True

    def put_records(self, session_id: str, records: Mapping[str, bytes], *,
                    delete: Collection[str] = (), ttl: float | None = None) -> None:
        self._record_table.put(session_id, records, delete, ttl)

    def get_records(self, session_id: str, keys: Collection[str]) -> dict[str, bytes]:
        return self._record_table.get(session_id, keys)

    def scan_records(self, session_id: str, prefix: str = "", *, after: str | None = None,
                     before: str | None = None, limit: int | None = None,
                     reverse: bool = False, keys_only: bool = False
                     ) -> list[tuple[str, bytes]]:
        return self._record_table.scan(session_id, prefix, after, before, limit, reverse,
                                       keys_only)

    def delete_records(self, session_id: str, keys: Collection[str] | None = None, *,
                       prefix: str | None = None) -> None:
        self._record_table.delete(session_id, keys, prefix)

    # -- LangChain's layout ----------------------------------------------------------------

    @classmethod
    def langchain_source(cls, table_name: str, *, region: str | None = None,
                         endpoint_url: str | None = None, primary_key_name: str = "SessionId",
                         history_messages_key: str = "History",
                         boto3_session: Any = None, **options: Any) -> LangChainDynamoDBSource:
        """A read-only source over a langchain-community DynamoDB table (one item per
        session, the messages in its ``History`` list), for :func:`copy_sessions`.

        >>> old = DynamoDBStore.langchain_source("SessionTable", region="eu-west-1")
        >>> copy_sessions(old, open_store("dynamodb://chat?region=eu-west-1"))
        """
        store = cls(StoreURL("dynamodb"), table=table_name, region=region,
                    endpoint_url=endpoint_url, boto3_session=boto3_session, **options)
        from threadline.stores.dynamodb._source import LangChainDynamoDBSource

        return LangChainDynamoDBSource(store, primary_key_name, history_messages_key)


