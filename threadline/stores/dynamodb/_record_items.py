"""DynamoDB record items and requests (pure): what :mod:`._records` sends.

Records live in a second table, ``{table}_records`` (the ``records_table`` option): the
message table's sort key is a Number, and records are scanned by string key in byte
order. Its sort key is ``RecordKey`` (a String); one partition per session, under the
same partition key as the session's messages (:func:`~._items.partition_key`)::

    SessionId  RecordKey            attributes
    s1         " "                  Gen, Session, ExpiresAt, expireAt    (the head)
    s1         "ckpt/0001"          Gen, Value                           (a record)
    s1         "ckpt/0002"          Gen, Value (its first part), Parts, Write
    s1         "\\x7fckpt/0002 W 1"  Gen, Value, At                       (its other parts)

Record keys are ``!`` to ``~``, so the head (a space) sorts below every record and the
parts (``DEL`` first) above every one: a scan is one ``Query`` over a range of
``RecordKey`` (:func:`key_range`) that never meets either.

The *head* holds what the session's records share: their deadline (``ExpiresAt``, and
the table's TTL attribute so DynamoDB deletes an expired head by itself) and their
generation ``Gen``. Every item carries the ``Gen`` it was written under; reads keep the
items of the live head's generation only, so records of an expired or deleted session
that were not removed yet stay invisible, and a session written again starts empty
(``purge_expired`` removes the leftovers). A TTL therefore costs one write of the head,
not one per record: every record of the session gets the same deadline.

A value larger than :data:`PART_BYTES` (DynamoDB items are at most 400 KB) is split:
the record item holds the first part, ``Parts`` and a random ``Write`` id; the other
parts are items keyed by the record key, that id and their index, written *before* the
record item, so they are invisible until it commits and a new value never mixes with
an old one. Writing over (or deleting) a record stored in parts is conditioned on the
``Write`` id it holds (:meth:`RecordRequests.action_op`), so the writer learns which
parts it orphaned and deletes them once it has committed. A Write id is never reused, so
parts of a value that was once in place and is no longer are garbage for good.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from threadline.stores.dynamodb._items import Requests, _n

__all__ = ["HEAD", "PART_BYTES", "RANGE_KEY", "Action", "Expected", "RecordRequests",
           "expected_of", "key_range", "parse_part_key", "part_key", "parts_of", "plan",
           "steps"]

#: The sort key attribute of the records table.
RANGE_KEY = "RecordKey"
#: Sort key of a session's head item: below ``!``, the least record key character.
HEAD = " "
#: Part items start with DEL: above ``~``, the greatest record key character.
_PART = "\x7f"
#: The bytes of a value one item holds (400 KB items, less the keys and attributes).
PART_BYTES = 390_000
_TX_ITEMS = 100
_TX_BYTES = 3_500_000

#: What a write expects in place of a record: the (Write id, Parts) of a value stored
#: in parts, or None (no record, or one in a single item).
Expected = tuple[str, int] | None


def part_key(key: str, write: str, index: int) -> str:
    """The sort key of part ``index`` (1 and up) of the value ``write`` of ``key``."""
    return f"{_PART}{key} {write} {index}"


def parse_part_key(sort_key: str) -> tuple[str, str] | None:
    """``(record key, write id)`` of a part item's sort key, or None for other items."""
    if not sort_key.startswith(_PART):
        return None
    key, write, _ = sort_key[1:].rsplit(" ", 2)
    return key, write


def key_range(prefix: str, after: str | None, before: str | None) -> tuple[str, str] | None:
    """The record keys a scan covers as ``(low, high)``, ``low`` inclusive and ``high``
    exclusive, or None when no key can match. The range never holds the head or a part.

    ``after + "!"`` is the least key above ``after`` (``!`` is the least character), and
    every key starting with ``prefix`` is below ``prefix + DEL``.
    """
    low = prefix or "!"
    if after is not None:
        low = max(low, after + "!")
    high = prefix + _PART
    if before is not None:
        high = min(high, before)
    return (low, high) if low < high else None


@dataclass(frozen=True, slots=True)
class Action:
    """One item a ``put_records`` writes or deletes, in the order they happen."""

    kind: Literal["record", "part", "delete"]
    #: The record key (a part: its sort key).
    key: str
    value: bytes = b""
    #: A record: how many parts its value has, and their Write id if more than one.
    parts: int = 1
    write: str | None = None

    def size(self, pk_bytes: int) -> int:
        """Roughly its bytes in a transaction (DynamoDB allows 4 MB in all)."""
        return len(self.value) + len(self.key) + pk_bytes + 128


def plan(batch: Mapping[str, bytes], deletes: list[str], new_write: Iterator[str]
         ) -> list[Action]:
    """The actions of a ``put_records``: each record (the parts of a large value, then
    its record item), in the given order, then the deletes. ``new_write`` yields the
    Write ids of values stored in parts."""
    actions: list[Action] = []
    for key, value in batch.items():
        if len(value) <= PART_BYTES:
            actions.append(Action("record", key, value))
            continue
        write = next(new_write)
        count = math.ceil(len(value) / PART_BYTES)
        actions += [Action("part", part_key(key, write, i),
                           value[i * PART_BYTES:(i + 1) * PART_BYTES]) for i in range(1, count)]
        actions.append(Action("record", key, value[:PART_BYTES], count, write))
    actions += [Action("delete", key) for key in deletes]
    return actions


def steps(actions: list[Action], pk: str, room: int) -> list[list[Action]]:
    """``actions`` cut into transactions of at most ``room`` items and ~3.5 MB, in
    order: one when they fit (the usual case), several for large batches or values."""
    pk_bytes = len(pk.encode("utf-8"))
    out: list[list[Action]] = []
    chunk: list[Action] = []
    total = 0
    for action in actions:
        size = action.size(pk_bytes)
        if chunk and (len(chunk) >= room or total + size > _TX_BYTES):
            out.append(chunk)
            chunk, total = [], 0
        chunk.append(action)
        total += size
    if chunk:
        out.append(chunk)
    return out


def expected_of(item: Mapping[str, Any] | None) -> Expected:
    """What a record item holds, as an :data:`Expected`."""
    if not item or "Write" not in item:
        return None
    return item["Write"]["S"], int(item["Parts"]["N"])


def parts_of(key: str, held: Expected) -> list[str]:
    """The sort keys of the part items of the value ``held`` of ``key``."""
    return [] if held is None else [part_key(key, held[0], i) for i in range(1, held[1])]


class RecordRequests(Requests):
    """Builds the requests of a records table (pure: sends nothing)."""

    def __init__(self, table: str, pk_name: str, ttl_attribute: str) -> None:
        super().__init__(table, pk_name, ttl_attribute)
        self.attribute_names.update({"#rk": RANGE_KEY, "#g": "Gen", "#w": "Write",
                                     "#n": "Parts", "#v": "Value", "#at": "At"})

    def record_key(self, pk: str, sort_key: str) -> dict[str, Any]:
        return {self.pk_name: {"S": pk}, RANGE_KEY: {"S": sort_key}}

    def head_op(self, pk: str, session_id: str, gen: str, known: bool, ttl: float | None,
                now: float) -> dict[str, Any]:
        """The transaction item of the head: a new head (``known`` False) put only where
        none is alive; else a check that generation ``gen`` is still alive, which also
        moves its deadline when there is a ``ttl``. Its old item comes back when the
        condition fails."""
        deadline: dict[str, Any] = {}
        if ttl is not None:
            deadline = {":exp": _n(now + ttl), ":ttl": _n(math.ceil(now + ttl))}
        if not known:
            item = {**self.record_key(pk, HEAD), "Gen": {"S": gen},
                    "Session": {"S": session_id}}
            if deadline:
                item["ExpiresAt"], item[self.ttl_attribute] = deadline[":exp"], deadline[":ttl"]
            return {"Put": self.expression(
                TableName=self.table, Item=item,
                ConditionExpression="attribute_not_exists(#pk) OR #e <= :now",
                values={":now": _n(now)}, ReturnValuesOnConditionCheckFailure="ALL_OLD")}
        check = {"TableName": self.table, "Key": self.record_key(pk, HEAD),
                 "ConditionExpression": "#g = :g AND (attribute_not_exists(#e) OR #e > :now)",
                 "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}
        values = {":g": {"S": gen}, ":now": _n(now), **deadline}
        if deadline:
            return {"Update": self.expression(
                **check, UpdateExpression="SET #e = :exp, #ttl = :ttl", values=values)}
        return {"ConditionCheck": self.expression(**check, values=values)}

    def action_op(self, pk: str, gen: str, action: Action, expected: Expected,
                  now: float) -> dict[str, Any]:
        """The transaction item of one action. A record's put or delete is conditioned
        on the value it replaces being the ``expected`` one, so that a value stored in
        parts is never replaced unseen (its parts would be left behind)."""
        if action.kind == "part":
            item = {**self.record_key(pk, action.key), "Gen": {"S": gen},
                    "Value": {"B": action.value}, "At": _n(now)}
            return {"Put": {"TableName": self.table, "Item": item}}
        condition: dict[str, Any] = {
            "ConditionExpression": "attribute_not_exists(#w)", "values": None,
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}
        if expected is not None:
            condition.update(ConditionExpression="#w = :w", values={":w": {"S": expected[0]}})
        if action.kind == "delete":
            return {"Delete": self.expression(
                TableName=self.table, Key=self.record_key(pk, action.key), **condition)}
        item = {**self.record_key(pk, action.key), "Gen": {"S": gen}}
        if action.value:  # an empty value is stored as no Value attribute
            item["Value"] = {"B": action.value}
        if action.write is not None:
            item["Write"], item["Parts"] = {"S": action.write}, _n(action.parts)
        return {"Put": self.expression(TableName=self.table, Item=item, **condition)}
