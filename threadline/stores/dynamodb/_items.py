"""DynamoDB keys, items and requests (pure): what :mod:`threadline.stores.dynamodb._store` sends.

Nothing here talks to DynamoDB. The layout is described in the store's module
docstring: a session is a partition of message items ``Base+1 .. Base+Count`` under a
session item at ``Seq = META_SEQ``. :class:`Requests` builds the arguments of one
table's requests, among them the ``TransactWriteItems`` of an append
(:meth:`Requests.transaction`).
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
from threadline.stores._base import validate_session_id

__all__ = ["META_SEQ", "SCHEMA_PK", "SCHEMA_VERSION", "Requests", "partition_key"]

SCHEMA_VERSION = 1
#: Sort key of the session item: above every message sequence number.
META_SEQ = 10**37
SCHEMA_PK = "#schema"
_MAX_RAW_KEY_BYTES = 1024
_ITEM_LIMIT = 400 * 1024
_TX_ITEMS = 100
_TX_BYTES = 3_500_000


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

class Requests:
    """Builds the request arguments of one table's operations (pure: sends nothing)."""

    def __init__(self, table: str, pk_name: str, ttl_attribute: str) -> None:
        self.table = table
        self.pk_name = pk_name
        self.ttl_attribute = ttl_attribute
        self.attribute_names = {
            "#pk": pk_name, "#seq": "Seq", "#s": "Session", "#b": "Base", "#c": "Count",
            "#e": "ExpiresAt", "#ttl": ttl_attribute, "#ua": "UpdatedAt"}

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
            item = {**self.key(pk, META_SEQ), "Session": {"S": session_id},
                    "Base": _n(base), "Count": _n(len(chunk)), "CreatedAt": _n(now),
                    "UpdatedAt": _n(now)}
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
            sets = "SET #c = :new, #ua = :now" + (", #e = :exp, #ttl = :ttl" if ttl else "")
            values.update({":b": _n(base), ":c": _n(count), ":new": _n(count + len(chunk))})
            meta_op = {"Update": self.expression(
                TableName=self.table, Key=self.key(pk, META_SEQ), UpdateExpression=sets,
                ConditionExpression="#b = :b AND #c = :c AND (attribute_not_exists(#e) "
                                    "OR #e > :now)",
                values=values, ReturnValuesOnConditionCheckFailure="ALL_OLD")}
        ops = [meta_op]
        for i, text in enumerate(chunk):
            message = {**self.key(pk, base + count + 1 + i), "Message": {"S": text}}
            if i == 0:
                message["Tok"] = {"S": token}
                ops.append({"Put": self.expression(
                    TableName=self.table, Item=message,
                    ConditionExpression="attribute_not_exists(#pk)",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD")})
            else:
                ops.append({"Put": {"TableName": self.table, "Item": message}})
        return ops, (base, count + len(chunk))
