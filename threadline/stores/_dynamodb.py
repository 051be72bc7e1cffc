"""``dynamodb://TABLE?region=...`` — sessions in an Amazon DynamoDB table, one item per message.

Layout (``SessionId`` is the ``primary_key_name`` option, ``Seq`` the sort key)::

    SessionId  Seq          attributes
    s1         B+1          Message (LangChain dict as JSON), Tok (first item of a write)
    s1         B+2          Message
    s1         10**37       Session, Base=B, Count, CreatedAt, UpdatedAt, ExpiresAt, expireAt
    #schema    0            Version

A session is a partition: its messages are items ``B+1 .. B+Count`` and its *session
item* sorts above all of them (``Seq = 10**37``), so a session is never bounded by the
400 KB item limit. ``B`` (the base) is chosen from the clock when a session is created
(microseconds * 10**6): a session deleted or expired and written again gets a larger
base, and items left over from an earlier incarnation (``Seq <= B``) are ignored by
reads and removed by :meth:`DynamoDBStore.purge_expired`.

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
item). Appends of more than 99 messages, or above ~3.5 MB, are written as several
transactions in order. Each write carries a token on its first item: when a request
whose answer was lost is retried and finds that item in place, the write is known to
have landed and is not repeated.

Reads: the last N are one ``Query`` (``ScanIndexForward=False``, ``Limit=N+1``): the
session item comes first, then the newest messages; longer reads page with
``LastEvaluatedKey``. Reads are strongly consistent (``consistent_read=false`` halves
their cost). Listing sessions and purging are a ``Scan`` of the whole table (filtered to
session items, but DynamoDB bills every item read): fine for maintenance, too costly to
call per request on big tables.

Expiry: ``ExpiresAt`` (float seconds) is what reads check; ``expireAt`` (whole seconds)
is the table's TTL attribute, enabled by :meth:`~DynamoDBStore.setup` with
UpdateTimeToLive, so DynamoDB deletes expired session items by itself (within a day or
two). Message items carry no TTL (an append would have to refresh every one of them):
they become invisible with their session item and are removed by ``purge_expired()``.

boto3 has no async API; the ``a*`` methods run the calls in worker threads (the Store
defaults), so the event loop never blocks.

>>> store = open_store("dynamodb://chat?region=eu-west-1", ttl=86400)
>>> store.append("s1", [HumanMessage("hi")])
"""

from __future__ import annotations

import decimal
import hashlib
import math
import random
import re
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

from threadline._errors import (
    ConfigurationError,
    InputError,
    MissingDependencyError,
    StoreConnectionError,
    StoreError,
)
from threadline._messages import BaseMessage
from threadline._serialization import message_from_dict
from threadline.stores._base import (
    SessionInfo,
    SessionPage,
    Store,
    StoreHistory,
    decode_message,
    encode_message,
    session_key,
    validate_session_id,
    validate_ttl,
)
from threadline.stores._memory import check_messages, check_page_args
from threadline.stores._url import StoreURL

try:
    import boto3  # type: ignore[import-untyped]
    import botocore.config  # type: ignore[import-untyped]
    import botocore.exceptions  # type: ignore[import-untyped]
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingDependencyError("boto3", "dynamodb") from exc

__all__ = ["DynamoDBChatMessageHistory", "DynamoDBStore", "LangChainDynamoDBSource"]

SCHEMA_VERSION = 1
#: Sort key of the session item: above every message sequence number.
META_SEQ = 10**37
SCHEMA_PK = "#schema"
_MAX_RAW_KEY_BYTES = 1024
_ITEM_LIMIT = 400 * 1024
_TX_ITEMS = 100
_TX_BYTES = 3_500_000
_CACHE_SIZE = 10_000
_MAX_ATTEMPTS = 200

_CONNECTION_ERRORS = (
    botocore.exceptions.EndpointConnectionError,
    botocore.exceptions.ConnectTimeoutError,
    botocore.exceptions.ReadTimeoutError,
    botocore.exceptions.ConnectionClosedError,
)
_AUTH_CODES = {"UnrecognizedClientException", "InvalidSignatureException",
               "AccessDeniedException", "ExpiredTokenException"}


class _DynamoError(StoreError):
    """A DynamoDB error answer; ``code`` is its error code (for the cases we handle)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _positive(value: Any) -> float:
    seconds = float(value)
    if not seconds > 0:
        raise ValueError(f"must be a positive number of seconds, got {value!r}")
    return seconds


def _attribute_name(value: Any) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= 255 or value.startswith("#"):
        raise ValueError(f"{value!r} is not an attribute name (1-255 characters, not '#...')")
    return value


def _table_name(value: Any) -> str:
    text = str(value)
    if not 3 <= len(text) <= 255 or not all(c.isascii() and (c.isalnum() or c in "_.-")
                                             for c in text):
        raise InputError(f"invalid DynamoDB table name {text!r}: use 3-255 letters, digits "
                         "and '_.-'")
    return text


# -- keys and items (pure) -----------------------------------------------------------------


def partition_key(session_id: str) -> str:
    """The partition key of a session: the id itself, or ``#h:`` + SHA-256 when it is
    too long for a key or starts with ``#`` (reserved for our own items)."""
    raw = validate_session_id(session_id).encode("utf-8", "surrogatepass")
    try:
        session_id.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError("a DynamoDB session id must be valid Unicode (no lone "
                         "surrogates)") from exc
    if len(raw) <= _MAX_RAW_KEY_BYTES and not session_id.startswith("#"):
        return session_id
    return "#h:" + hashlib.sha256(raw).hexdigest()


def _n(value: int | float) -> dict[str, str]:
    return {"N": str(value) if isinstance(value, int) else repr(value)}


def _num(item: dict[str, Any], name: str) -> float | None:
    value = item.get(name)
    return None if value is None else float(value["N"])


def _int(item: dict[str, Any], name: str) -> int:
    return int(item[name]["N"])


def _utc(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def _new_base() -> int:
    return time.time_ns() // 1000 * 10**6


def _alive(meta: dict[str, Any] | None, now: float) -> bool:
    if meta is None:
        return False
    expires = _num(meta, "ExpiresAt")
    return expires is None or expires > now


def _chunks(encoded: list[str], pk: str) -> Iterator[list[str]]:
    """Messages per transaction: at most 99 (plus the session item) and ~3.5 MB."""
    chunk: list[str] = []
    size = 0
    for text in encoded:
        item_size = len(text.encode("utf-8")) + len(pk.encode("utf-8")) + 64
        if item_size > _ITEM_LIMIT:
            raise InputError(f"a message of {item_size} bytes does not fit in one DynamoDB "
                             "item (400 KB); store large payloads elsewhere and keep a link")
        if chunk and (len(chunk) == _TX_ITEMS - 1 or size + item_size > _TX_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(text)
        size += item_size
    if chunk:
        yield chunk


def _plain(value: Any) -> Any:
    """boto3's deserialized values (Decimal, sets) as JSON-like Python values."""
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    return value


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
        "connect_timeout": _positive,
        "read_timeout": _positive,
        "max_attempts": int,
        "pool_size": int,
        "consistent_read": bool,
        "primary_key_name": _attribute_name,
        "ttl_attribute": _attribute_name,
        "manage_ttl": bool,
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
        self._attribute_names = {
            "#pk": self.pk_name, "#seq": "Seq", "#s": "Session", "#b": "Base", "#c": "Count",
            "#e": "ExpiresAt", "#ttl": self.ttl_attribute, "#ua": "UpdatedAt"}
        self._lock = threading.Lock()  # the client and the cache: held briefly
        self._setup_lock = threading.Lock()  # held while setup talks to DynamoDB
        self._client: Any = None
        self._ready = False
        self._closed = False
        # pk -> (base, count) last seen, so an append needs no read before its write.
        self._seen: OrderedDict[str, tuple[int, int]] = OrderedDict()

    # -- connection ----------------------------------------------------------------------

    def _where(self) -> str:
        return self.options.get("endpoint_url") or f"region {self.options.get('region')}"

    def _make_client(self) -> Any:
        opts = self.options
        config = botocore.config.Config(
            connect_timeout=opts.get("connect_timeout", 5.0),
            read_timeout=opts.get("read_timeout", 10.0),
            retries={"max_attempts": opts.get("max_attempts", 3), "mode": "standard"},
            max_pool_connections=opts.get("pool_size", 16),
        )
        session = opts.get("boto3_session") or boto3.session.Session(
            aws_access_key_id=self.url.username, aws_secret_access_key=self.url.password)
        try:
            return session.client("dynamodb", region_name=opts.get("region"),
                                  endpoint_url=opts.get("endpoint_url"), config=config)
        except botocore.exceptions.NoRegionError as exc:
            raise ConfigurationError("no AWS region: add ?region=... to the DynamoDB URL "
                                     "or set AWS_DEFAULT_REGION") from exc
        except ValueError as exc:
            raise ConfigurationError(f"invalid DynamoDB endpoint_url: {exc}") from exc

    def client(self) -> Any:
        """The boto3 DynamoDB client (created on first use, shared by all threads)."""
        if self._closed:
            raise StoreError(f"{self!r} is closed")
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._make_client()
        return self._client

    def _names(self, *expressions: str) -> dict[str, str]:
        """The ``#placeholders`` the expressions use (DynamoDB rejects unused ones, and
        attribute names such as Session and Count are reserved words)."""
        used = set(re.findall(r"#\w+", " ".join(expressions)))
        return {k: v for k, v in self._attribute_names.items() if k in used}

    def _expression(self, **parts: Any) -> dict[str, Any]:
        """Request arguments with the names (and values, if any) the expressions use."""
        values = parts.pop("values", None)
        texts = [v for k, v in parts.items() if k.endswith("Expression")]
        out = {**parts, "ExpressionAttributeNames": self._names(*texts)}
        if not out["ExpressionAttributeNames"]:
            del out["ExpressionAttributeNames"]
        if values:
            out["ExpressionAttributeValues"] = values
        return out

    def _wrap(self, exc: Exception, operation: str) -> StoreError:
        if isinstance(exc, _CONNECTION_ERRORS):
            return StoreConnectionError(
                f"cannot reach DynamoDB at {self._where()}: {type(exc).__name__}")
        if isinstance(exc, botocore.exceptions.NoCredentialsError):
            return StoreConnectionError("no AWS credentials: pass dynamodb://KEY_ID:SECRET@"
                                        "TABLE, a boto3_session, or configure boto3")
        if isinstance(exc, botocore.exceptions.ClientError):
            error = exc.response.get("Error", {})
            code, message = error.get("Code", "?"), error.get("Message", "")
            if code in _AUTH_CODES:
                return StoreConnectionError(
                    f"DynamoDB at {self._where()} rejected the credentials ({code})")
            if code == "ResourceNotFoundException":
                return _DynamoError(code, f"DynamoDB table {self.table!r} does not exist "
                                          f"({operation}): {message}")
            return _DynamoError(code, f"DynamoDB {operation} failed: {code}: {message}")
        return StoreError(f"DynamoDB {operation} failed: {exc}")

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
        """Create the table (on-demand billing) if missing, enable TTL on ``expireAt``
        and record the layout version; idempotent."""
        with self._setup_lock:
            self._setup()
            self._ready = True

    def _setup(self) -> None:
        try:
            table = self._call("describe_table", TableName=self.table)["Table"]
        except _DynamoError as exc:
            if exc.code != "ResourceNotFoundException":
                raise
            table = self._create_table()
        keys = {k["KeyType"]: k["AttributeName"] for k in table["KeySchema"]}
        if keys != {"HASH": self.pk_name, "RANGE": "Seq"}:
            raise ConfigurationError(
                f"DynamoDB table {self.table!r} has keys {keys}, not threadline's "
                f"{{'HASH': {self.pk_name!r}, 'RANGE': 'Seq'}}; a LangChain table (one item "
                "per session) is read with DynamoDBStore.langchain_source(...) and copied "
                "with copy_sessions(...) into a new table")
        if self.options.get("manage_ttl", True):
            self._enable_ttl()
        self._migrate()

    def _create_table(self) -> dict[str, Any]:
        try:
            self._call(
                "create_table", TableName=self.table, BillingMode="PAY_PER_REQUEST",
                KeySchema=[{"AttributeName": self.pk_name, "KeyType": "HASH"},
                           {"AttributeName": "Seq", "KeyType": "RANGE"}],
                AttributeDefinitions=[{"AttributeName": self.pk_name, "AttributeType": "S"},
                                      {"AttributeName": "Seq", "AttributeType": "N"}])
        except _DynamoError as exc:  # another process created it meanwhile
            if exc.code != "ResourceInUseException":
                raise
        waiter = self.client().get_waiter("table_exists")
        try:
            waiter.wait(TableName=self.table, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
        except botocore.exceptions.WaiterError as exc:
            raise StoreError(f"DynamoDB table {self.table!r} did not become active") from exc
        table: dict[str, Any] = self._call("describe_table", TableName=self.table)["Table"]
        return table

    def _enable_ttl(self) -> None:
        found = self._call("describe_time_to_live", TableName=self.table)
        description = found.get("TimeToLiveDescription", {})
        if description.get("TimeToLiveStatus", "DISABLED") in ("ENABLED", "ENABLING"):
            if description.get("AttributeName") != self.ttl_attribute:
                raise ConfigurationError(
                    f"table {self.table!r} expires items by {description.get('AttributeName')!r}"
                    f", not {self.ttl_attribute!r}: pass ttl_attribute=... or manage_ttl=false")
            return
        self._call("update_time_to_live", TableName=self.table,
                   TimeToLiveSpecification={"Enabled": True,
                                            "AttributeName": self.ttl_attribute})

    def _migrate(self) -> None:
        key = self._key(SCHEMA_PK, 0)
        found = self._call("get_item", TableName=self.table, Key=key, ConsistentRead=True)
        version = int(found["Item"]["Version"]["N"]) if "Item" in found else 0
        if version > SCHEMA_VERSION:
            raise StoreError(f"table {self.table!r} uses layout version {version}, newer than "
                             f"this threadline understands ({SCHEMA_VERSION}); upgrade it")
        for target in range(version + 1, SCHEMA_VERSION + 1):
            MIGRATIONS[target - 1](self)
            self._call("put_item", TableName=self.table, Item={**key, "Version": _n(target)})

    def destroy(self) -> None:
        """Delete the whole table (every session in it)."""
        try:
            self._call("delete_table", TableName=self.table)
        except _DynamoError as exc:
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

    def _key(self, pk: str, seq: int) -> dict[str, Any]:
        return {self.pk_name: {"S": pk}, "Seq": _n(seq)}

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

    def _transaction(self, pk: str, session_id: str, state: tuple[int, int] | None,
                     chunk: list[str], token: str, ttl: float | None
                     ) -> tuple[list[dict[str, Any]], tuple[int, int]]:
        """The TransactItems writing ``chunk`` after ``state`` (None: a new session),
        and the state after it."""
        now = time.time()
        values: dict[str, Any] = {":now": _n(now)}
        if ttl is not None:
            values[":exp"], values[":ttl"] = _n(now + ttl), _n(math.ceil(now + ttl))
        if state is None:
            base, count = _new_base(), 0
            item = {**self._key(pk, META_SEQ), "Session": {"S": session_id},
                    "Base": _n(base), "Count": _n(len(chunk)), "CreatedAt": _n(now),
                    "UpdatedAt": _n(now)}
            if ttl is not None:
                item["ExpiresAt"], item[self.ttl_attribute] = values[":exp"], values[":ttl"]
            meta_op: dict[str, Any] = {"Put": self._expression(
                TableName=self.table, Item=item,
                # An expired session is replaced: it starts afresh with a new base.
                ConditionExpression="attribute_not_exists(#pk) OR #e <= :now",
                values={":now": values[":now"]},
                ReturnValuesOnConditionCheckFailure="ALL_OLD")}
        else:
            base, count = state
            sets = "SET #c = :new, #ua = :now" + (", #e = :exp, #ttl = :ttl" if ttl else "")
            values.update({":b": _n(base), ":c": _n(count), ":new": _n(count + len(chunk))})
            meta_op = {"Update": self._expression(
                TableName=self.table, Key=self._key(pk, META_SEQ), UpdateExpression=sets,
                ConditionExpression="#b = :b AND #c = :c AND (attribute_not_exists(#e) "
                                    "OR #e > :now)",
                values=values, ReturnValuesOnConditionCheckFailure="ALL_OLD")}
        ops = [meta_op]
        for i, text in enumerate(chunk):
            message = {**self._key(pk, base + count + 1 + i), "Message": {"S": text}}
            if i == 0:
                message["Tok"] = {"S": token}
                ops.append({"Put": self._expression(
                    TableName=self.table, Item=message,
                    ConditionExpression="attribute_not_exists(#pk)",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD")})
            else:
                ops.append({"Put": {"TableName": self.table, "Item": message}})
        return ops, (base, count + len(chunk))

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

    def _write_chunk(self, pk: str, session_id: str, chunk: list[str],
                     ttl: float | None) -> None:
        token = uuid.uuid4().hex
        with self._lock:
            state = self._seen.get(pk)
        for attempt in range(_MAX_ATTEMPTS):
            ops, after = self._transaction(pk, session_id, state, chunk, token, ttl)
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
            if meta_reason.get("Code") == "ConditionalCheckFailed":
                meta = meta_reason.get("Item")
                state = self._remember(pk, meta if _alive(meta, time.time()) else None)
                if attempt:  # several writers at once: spread the retries out
                    time.sleep(random.uniform(0, min(0.002 * 2 ** min(attempt, 6), 0.1)))
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
        if not batch:
            return
        chunks = list(_chunks([encode_message(m) for m in batch], pk))
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

    def get_messages(self, session_id: str, *, last: int | None = None) -> list[BaseMessage]:
        pk = partition_key(session_id)
        if last is not None and (isinstance(last, bool) or not isinstance(last, int)
                                 or last < 0):
            raise InputError(f"last must be a non-negative int or None, got {last!r}")
        if last == 0:
            return []
        self._ensure_ready()
        query = self._expression(
            TableName=self.table, KeyConditionExpression="#pk = :pk",
            values={":pk": {"S": pk}}, ScanIndexForward=False,
            ConsistentRead=self.consistent_read)
        if last is not None:
            query["Limit"] = last + 1  # the session item, then the newest messages
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
                    return [decode_message(t) for t in reversed(found)]
                elif seq <= high:  # a write committing right now is not shown half-done
                    found.append(item["Message"]["S"])
                    if last is not None and len(found) >= last:
                        return [decode_message(t) for t in reversed(found)]
        return [decode_message(t) for t in reversed(found)]

    def _meta(self, pk: str) -> dict[str, Any] | None:
        found = self._call("get_item", TableName=self.table, Key=self._key(pk, META_SEQ),
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
                           _utc(_num(meta, "UpdatedAt")), _utc(_num(meta, "ExpiresAt")))

    def _scan(self, filter_expression: str, projection: str,
              values: dict[str, Any]) -> Iterator[dict[str, Any]]:
        scan = self._expression(TableName=self.table, FilterExpression=filter_expression,
                                ProjectionExpression=projection, values=values,
                                ConsistentRead=self.consistent_read)
        for page in self._pages("scan", scan):
            yield from page

    def list_sessions(self, *, prefix: str = "", limit: int = 100,
                      cursor: str | None = None) -> SessionPage:
        """Session ids by prefix, sorted. A filtered Scan of the whole table: its cost
        grows with the table, not the page (see the module docstring)."""
        check_page_args(prefix, limit, cursor)
        self._ensure_ready()
        condition = "#seq = :meta AND (attribute_not_exists(#e) OR #e > :now)"
        values: dict[str, Any] = {":meta": _n(META_SEQ), ":now": _n(time.time())}
        if prefix:
            condition += " AND begins_with(#s, :prefix)"
            values[":prefix"] = {"S": prefix}
        ids = sorted(item["Session"]["S"] for item in self._scan(condition, "#s", values))
        if cursor is not None:
            ids = [sid for sid in ids if sid > cursor]
        page = ids[:limit]
        return SessionPage(page, page[-1] if len(ids) > limit else None)

    # -- deletion and expiry ---------------------------------------------------------------

    def _delete_items(self, pk: str, below: int) -> None:
        """Delete the items of a partition with ``Seq < below``: a keys-only Query, then
        BatchWriteItem 25 at a time (unprocessed items are sent again)."""
        query = self._expression(
            TableName=self.table, KeyConditionExpression="#pk = :pk AND #seq < :below",
            ProjectionExpression="#pk, #seq",
            values={":pk": {"S": pk}, ":below": _n(below)}, ConsistentRead=True)
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
            old = self._call("delete_item", **self._expression(
                TableName=self.table, Key=self._key(pk, META_SEQ),
                ConditionExpression=condition, values=values, ReturnValues="ALL_OLD"))
        except _DynamoError as exc:
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
        meta = self._drop(pk, "attribute_exists(#pk)", {})
        if meta is None:
            self._delete_items(pk, META_SEQ)  # leftovers of an expired session, if any
            return False
        return _alive(meta, time.time())

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
            self._call("update_item", **self._expression(
                TableName=self.table, Key=self._key(pk, META_SEQ), UpdateExpression=update,
                ConditionExpression="attribute_exists(#pk) AND (attribute_not_exists(#e) "
                                    "OR #e > :now)",
                values=values))
        except _DynamoError as exc:
            if exc.code != "ConditionalCheckFailedException":
                raise

    def purge_expired(self) -> int:
        """Delete expired sessions, and messages left without a live session item
        (DynamoDB's TTL deletes only session items). A Scan of the whole table."""
        self._ensure_ready()
        now = time.time()
        metas: dict[str, dict[str, Any]] = {}
        lowest: dict[str, int] = {}  # pk -> its lowest message seq
        for item in self._scan("#pk <> :schema", "#pk, #seq, #b, #c, #e",
                               {":schema": {"S": SCHEMA_PK}}):
            pk, seq = item[self.pk_name]["S"], _int(item, "Seq")
            if seq == META_SEQ:
                metas[pk] = item
            else:
                lowest[pk] = min(seq, lowest.get(pk, seq))
        purged = 0
        for pk, meta in metas.items():
            if not _alive(meta, now):
                purged += self._drop(pk, "#e <= :now", {":now": _n(now)}) is not None
        for pk, seq in lowest.items():
            found = metas.get(pk)
            if found is not None and _alive(found, now) and seq > _int(found, "Base"):
                continue
            # Leftovers, probably: look again, a session may have been written since.
            current = self._meta(pk)
            if current is None:
                self._delete_items(pk, META_SEQ)
            elif seq <= _int(current, "Base"):
                self._delete_items(pk, _int(current, "Base") + 1)
        return purged

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
        return LangChainDynamoDBSource(store, primary_key_name, history_messages_key)


MIGRATIONS: list[Any] = [
    lambda store: None,  # 1: the layout above (the table itself is made by setup)
]


class LangChainDynamoDBSource:
    """Sessions of a langchain-community ``DynamoDBChatMessageHistory`` table, read-only.

    Scans for session ids, reads each session with one GetItem. Only tables keyed by the
    session id alone are read (not LangChain's custom composite ``key=``).
    """

    def __init__(self, store: DynamoDBStore, primary_key_name: str = "SessionId",
                 history_messages_key: str = "History") -> None:
        self.store = store
        self.pk_name = _attribute_name(primary_key_name)
        self.history_key = _attribute_name(history_messages_key)

    def iter_sessions(self, prefix: str = "", *, page_size: int = 500) -> Iterator[str]:
        del page_size  # one Scan, sorted here
        check_page_args(prefix, 1, None)
        kwargs: dict[str, Any] = {"TableName": self.store.table, "ProjectionExpression": "#pk",
                                  "ExpressionAttributeNames": {"#pk": self.pk_name}}
        ids: list[str] = []
        while True:
            page = self.store._call("scan", **kwargs)
            ids.extend(item[self.pk_name]["S"] for item in page.get("Items", [])
                       if "S" in item.get(self.pk_name, {}))
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        yield from sorted(sid for sid in ids if sid.startswith(prefix))

    def get_messages(self, session_id: str, *, last: int | None = None) -> list[BaseMessage]:
        from boto3.dynamodb.types import TypeDeserializer  # type: ignore[import-untyped]

        found = self.store._call("get_item", TableName=self.store.table,
                                 Key={self.pk_name: {"S": validate_session_id(session_id)}},
                                 ConsistentRead=True)
        raw = found.get("Item", {}).get(self.history_key)
        if raw is None:
            return []
        history = _plain(TypeDeserializer().deserialize(raw))
        if not isinstance(history, list):
            raise StoreError(f"session {session_id!r}: {self.history_key!r} is not a list")
        messages = [message_from_dict(entry) for entry in history]
        if last is not None:
            return messages[-last:] if last > 0 else []
        return messages

    def close(self) -> None:
        self.store.close()

    def __repr__(self) -> str:
        return f"LangChainDynamoDBSource(table={self.store.table!r})"


class DynamoDBChatMessageHistory(StoreHistory):
    """A chat history in DynamoDB, constructed like langchain-community's.

    >>> history = DynamoDBChatMessageHistory("SessionTable", "s1", ttl=3600)
    >>> history.add_user_message("hi")

    The objects are views on ``shared_store(...)``, so the per-turn objects of
    RunnableWithMessageHistory share one boto3 client. The table has threadline's layout
    (one item per message: no 400 KB ceiling, no lost concurrent writes); migrate a
    LangChain table with ``copy_sessions(DynamoDBStore.langchain_source(old), store)``.
    ``key`` (LangChain's composite key) names the session by its values:
    ``{"UserId": "u1", "SessionId": "c1"}`` is session ``session_key("u1", "c1")``.
    ``history_size`` limits what is read to the newest messages (all are kept).
    """

    def __init__(
        self,
        table_name: str,
        session_id: str,
        endpoint_url: str | None = None,
        primary_key_name: str = "SessionId",
        key: dict[str, str] | None = None,
        boto3_session: Any = None,
        kms_key_id: str | None = None,
        ttl: int | None = None,
        ttl_key_name: str = "expireAt",
        history_size: int | None = None,
        history_messages_key: str | None = "History",
        *,
        coerce_float_to_decimal: bool = False,
        region: str | None = None,
        store_options: dict[str, Any] | None = None,
    ) -> None:
        from threadline.stores import shared_store

        if kms_key_id is not None:
            raise InputError("kms_key_id (client-side encryption) is not supported; use the "
                             "table's server-side encryption with a KMS key instead")
        if history_messages_key not in (None, "History"):
            raise InputError("history_messages_key only names LangChain's layout; threadline "
                             "stores one item per message")
        if history_size is not None and (isinstance(history_size, bool)
                                         or not isinstance(history_size, int)
                                         or history_size < 1):
            raise InputError(f"history_size must be a positive int, got {history_size!r}")
        del coerce_float_to_decimal  # messages are stored as JSON text: floats stay exact
        if key:
            session_id = session_key(*(str(v) for v in key.values()))
        options = {"table": table_name, "primary_key_name": primary_key_name,
                   "ttl_attribute": ttl_key_name, **(store_options or {})}
        for name, value in (("endpoint_url", endpoint_url), ("region", region),
                            ("boto3_session", boto3_session)):
            if value is not None:
                options[name] = value
        store = shared_store("dynamodb://", **options)
        self.history_size = history_size
        super().__init__(store, session_id, ttl=ttl)

    def _last(self, last: int | None) -> int | None:
        if self.history_size is None:
            return last
        return self.history_size if last is None else min(last, self.history_size)

    def get_messages(self, last: int | None = None) -> list[BaseMessage]:
        return super().get_messages(self._last(last))

    async def aget_messages(self, last: int | None = None) -> list[BaseMessage]:
        return await super().aget_messages(self._last(last))

    def __repr__(self) -> str:
        store = self.store
        table = store.table if isinstance(store, DynamoDBStore) else "?"
        return f"DynamoDBChatMessageHistory({table!r}, {self.session_id!r})"
