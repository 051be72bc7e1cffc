"""DynamoDB keys, items and requests (pure): what :mod:`threadline.stores.dynamodb._store` sends.

Nothing here talks to DynamoDB. The layout is described in the store's module
docstring: a session is a partition of message items ``Base+1 .. Base+Count`` under a
session item at ``Seq = META_SEQ``, and an id item per message id at a negative
``Seq`` (:func:`id_seq`). :class:`Requests` builds the arguments of one table's
requests, among them the ``TransactWriteItems`` of an append
(:meth:`Requests.transaction`), and :func:`known_ids` reads its cancellation.
"""

from __future__ import annotations

import decimal
import hashlib
import math
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from threadline._errors import InputError
from threadline.stores._base import check_message_size, validate_session_id
from threadline.stores.dynamodb._session_items import NAMES, listing_keys

__all__ = ["META_SEQ", "SCHEMA_PK", "SCHEMA_VERSION", "Entry", "Requests", "id_seq",
           "known_ids", "partition_key"]

SCHEMA_VERSION = 3
#: Sort key of the session item: above every message sequence number.
META_SEQ = 10**37
SCHEMA_PK = "#schema"
_MAX_RAW_KEY_BYTES = 1024
_ITEM_LIMIT = 400 * 1024
_TX_ITEMS = 100
_TX_BYTES = 3_500_000
#: Id items sort below every message: ``Seq`` in ``-2**120 .. -1``.
_ID_BITS = 120

#: One message to write: its encoded text and its id (None: no deduplication).
Entry = tuple[str, str | None]


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


def id_seq(message_id: str) -> int:
    """The sort key of a message id's item: a negative number from its SHA-256 (120
    bits: collisions are out of reach; 37 digits fit DynamoDB's 38-digit numbers)."""
    digest = hashlib.sha256(message_id.encode("utf-8", "surrogatepass")).digest()
    return -1 - int.from_bytes(digest[:_ID_BITS // 8], "big")


def _chunks(entries: list[Entry], pk: str) -> Iterator[list[Entry]]:
    """Messages per transaction: at most 100 items (the session item, the messages and
    their id items) and ~3.5 MB. Refuses a message above the 400 KB item limit before
    anything is sent."""
    key_size = len(pk.encode("utf-8")) + 64
    sized = []
    for text, message_id in entries:
        size = len(text.encode("utf-8")) + key_size
        check_message_size(size, _ITEM_LIMIT, "DynamoDB's 400 KB item limit")
        sized.append((text, message_id, size + (0 if message_id is None else key_size)))
    chunk: list[Entry] = []
    items, total = 1, 0
    for text, message_id, size in sized:
        needed = 1 if message_id is None else 2
        if chunk and (items + needed > _TX_ITEMS or total + size > _TX_BYTES):
            yield chunk
            chunk, items, total = [], 1, 0
        chunk.append((text, message_id))
        items += needed
        total += size
    if chunk:
        yield chunk


def known_ids(reasons: list[dict[str, Any]], chunk: list[Entry], base: int) -> set[str]:
    """The ids of ``chunk`` the session already holds, from the cancellation reasons of
    its transaction (written with ``base``): the id items whose condition failed because
    an item of this incarnation is in place. Reasons follow the request's items: the
    session item, the messages, then the id items in message order."""
    ids = [message_id for _, message_id in chunk if message_id is not None]
    known = set()
    for message_id, reason in zip(ids, reasons[1 + len(chunk):], strict=False):
        held = reason.get("Item", {}).get("Base", {}).get("N")
        if reason.get("Code") == "ConditionalCheckFailed" and held == str(base):
            known.add(message_id)
    return known


def _plain(value: Any) -> Any:
    """boto3's deserialized values (Decimal, sets) as JSON-like Python values."""
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    return value

class Requests:
    """Builds the request arguments of one table's operations (pure: sends nothing)."""

    def __init__(self, table: str, pk_name: str, ttl_attribute: str) -> None:
        self.table = table
        self.pk_name = pk_name
        self.ttl_attribute = ttl_attribute
        self.attribute_names = {
            "#pk": pk_name, "#seq": "Seq", "#s": "Session", "#b": "Base", "#c": "Count",
            "#e": "ExpiresAt", "#ttl": ttl_attribute, "#ua": "UpdatedAt", "#ca": "CreatedAt",
            **NAMES}

    def names(self, *expressions: str) -> dict[str, str]:
        """The ``#placeholders`` the expressions use (DynamoDB rejects unused ones, and
        attribute names such as Session and Count are reserved words)."""
        used = set(re.findall(r"#\w+", " ".join(expressions)))
        return {k: v for k, v in self.attribute_names.items() if k in used}

    def expression(self, **parts: Any) -> dict[str, Any]:
        """Request arguments with the names (and values, if any) the expressions use."""
        values = parts.pop("values", None)
        texts = [v for k, v in parts.items() if k.endswith("Expression")]
        out = {**parts, "ExpressionAttributeNames": self.names(*texts)}
        if not out["ExpressionAttributeNames"]:
            del out["ExpressionAttributeNames"]
        if values:
            out["ExpressionAttributeValues"] = values
        return out

    def key(self, pk: str, seq: int) -> dict[str, Any]:
        return {self.pk_name: {"S": pk}, "Seq": _n(seq)}

    def transaction(self, pk: str, session_id: str, state: tuple[int, int] | None,
                     chunk: list[Entry], token: str, ttl: float | None
                     ) -> tuple[list[dict[str, Any]], tuple[int, int]]:
        """The TransactItems writing ``chunk`` after ``state`` (None: a new session),
        and the state after it: the session item, the messages, then an id item per
        message id, put only if no item of this incarnation (``Base``) holds it."""
        now = time.time()
        values: dict[str, Any] = {":now": _n(now)}
        listed = listing_keys(pk, now, session_id)  # every write moves it in the recent order
        if ttl is not None:
            values[":exp"], values[":ttl"] = _n(now + ttl), _n(math.ceil(now + ttl))
        if state is None:
            base, count = _new_base(), 0
            item = {**self.key(pk, META_SEQ), "Session": {"S": session_id},
                    "Base": _n(base), "Count": _n(len(chunk)), "CreatedAt": _n(now),
                    "UpdatedAt": _n(now), **listed}
            if ttl is not None:
                item["ExpiresAt"], item[self.ttl_attribute] = values[":exp"], values[":ttl"]
            meta_op: dict[str, Any] = {"Put": self.expression(
                TableName=self.table, Item=item,
                # An expired session is replaced: it starts afresh with a new base.
                ConditionExpression="attribute_not_exists(#pk) OR #e <= :now",
                values={":now": values[":now"]},
                ReturnValuesOnConditionCheckFailure="ALL_OLD")}
        else:
            base, count = state
            # Ik never changes (setting it again costs the id indexes no write); set on
            # every append all the same, so any session item written to carries it.
            sets = ("SET #c = :new, #ua = :now, #lst = :lst, #rk = :rk, #ik = :ik"
                    + (", #e = :exp, #ttl = :ttl" if ttl else ""))
            values.update({":b": _n(base), ":c": _n(count), ":new": _n(count + len(chunk)),
                           ":lst": listed["Lst"], ":rk": listed["Rk"], ":ik": listed["Ik"]})
            meta_op = {"Update": self.expression(
                TableName=self.table, Key=self.key(pk, META_SEQ), UpdateExpression=sets,
                ConditionExpression="#b = :b AND #c = :c AND (attribute_not_exists(#e) "
                                    "OR #e > :now)",
                values=values, ReturnValuesOnConditionCheckFailure="ALL_OLD")}
        ops = [meta_op]
        for i, (text, _) in enumerate(chunk):
            message = {**self.key(pk, base + count + 1 + i), "Message": {"S": text}}
            if i == 0:
                message["Tok"] = {"S": token}
                ops.append({"Put": self.expression(
                    TableName=self.table, Item=message,
                    ConditionExpression="attribute_not_exists(#pk)",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD")})
            else:
                ops.append({"Put": {"TableName": self.table, "Item": message}})
        for _, message_id in chunk:
            if message_id is not None:
                ops.append({"Put": self.expression(
                    TableName=self.table,
                    Item={**self.key(pk, id_seq(message_id)), "Base": _n(base)},
                    ConditionExpression="attribute_not_exists(#pk) OR #b <> :b",
                    values={":b": _n(base)}, ReturnValuesOnConditionCheckFailure="ALL_OLD")})
        return ops, (base, count + len(chunk))
