"""A DynamoDB store's tables: creation, TTL setting, listing indexes and layout migrations.

:func:`setup_table` is what ``DynamoDBStore.setup()`` does (and what runs once, lazily,
before a store's first request): create the table if missing (on-demand billing, with the
four listing indexes of :mod:`~threadline.stores.dynamodb._session_items`), check its
keys, switch its TTL setting on, add the listing indexes to a table made before they
existed, and run the layout migrations the ``#schema`` item says are missing.

Adding an index to an existing table is an ``UpdateTable`` per index (DynamoDB builds one
at a time) and DynamoDB backfills it from the table, which takes a while on a big table:
setup waits up to :data:`INDEX_WAIT` seconds for each, and until an index is ``ACTIVE``
the listings that would use it fall back to a Scan (correct, costly). ``manage_indexes
=false`` never adds them (for roles without ``UpdateTable``): listings then use the
indexes if someone made them, and Scans otherwise.

Migrations (``MIGRATIONS[v - 1]`` brings a table from layout ``v - 1`` to ``v``):

1. the layout of :mod:`~threadline.stores.dynamodb._store` (made by setup itself);
2. the listing attributes ``Lst`` / ``Rk`` on every session item (from its ``UpdatedAt``),
   so sessions written before the indexes existed are listed;
3. the id key ``Ik`` on every session item (from its ``Session``), for the id-order
   indexes ``threadline_ids`` / ``threadline_owner_ids``.

Writers of an older threadline do not maintain these attributes: upgrade every writer of
a table together. A migration is a Scan of the table (once per table, at the first setup
of a newer threadline), and idempotent: conditional updates of the items still lacking
the attribute, so two processes upgrading at once do the same work twice, harmlessly.
Setup returns only once the migrations are done, so a store lists through an index only
when every session item carries its keys.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from threadline._errors import ConfigurationError, MissingDependencyError, StoreError
from threadline.stores.dynamodb._client import DynamoError
from threadline.stores.dynamodb._items import META_SEQ, SCHEMA_PK, SCHEMA_VERSION, _n, _num
from threadline.stores.dynamodb._session_items import (
    INDEX_KEYS,
    id_key,
    index_definition,
    recent_keys,
)

try:
    import botocore.exceptions  # type: ignore[import-untyped]
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingDependencyError("boto3", "dynamodb") from exc

if TYPE_CHECKING:
    from threadline.stores.dynamodb._store import DynamoDBStore

__all__ = ["INDEX_WAIT", "MIGRATIONS", "active_indexes", "create_table", "enable_ttl",
           "setup_table"]

#: Seconds setup waits for a new listing index to be backfilled.
INDEX_WAIT = 60.0
_BUSY = {"ResourceInUseException", "LimitExceededException"}


def setup_table(store: DynamoDBStore) -> frozenset[str]:
    """Create, check and migrate the store's table; the listing indexes usable now."""
    try:
        table = store._call("describe_table", TableName=store.table)["Table"]
    except DynamoError as exc:
        if exc.code != "ResourceNotFoundException":
            raise
        table = create_table(store, store.table, "Seq", "N", indexes=tuple(INDEX_KEYS))
    keys = {k["KeyType"]: k["AttributeName"] for k in table["KeySchema"]}
    if keys != {"HASH": store.pk_name, "RANGE": "Seq"}:
        raise ConfigurationError(
            f"DynamoDB table {store.table!r} has keys {keys}, not threadline's "
            f"{{'HASH': {store.pk_name!r}, 'RANGE': 'Seq'}}; a LangChain table (one item "
            "per session) is read with DynamoDBStore.langchain_source(...) and copied "
            "with copy_sessions(...) into a new table")
    if store.options.get("manage_ttl", True):
        enable_ttl(store, store.table)
    if store.options.get("manage_indexes", True):
        table = _add_indexes(store, table)
    _migrate(store)
    return active_indexes(table)


def active_indexes(table: dict[str, Any]) -> frozenset[str]:
    """Our listing indexes that a table description shows ``ACTIVE`` with our keys."""
    usable = set()
    for index in table.get("GlobalSecondaryIndexes", []):
        name = index.get("IndexName")
        keys = tuple(k["AttributeName"] for k in sorted(index.get("KeySchema", []),
                                                        key=lambda k: k["KeyType"]))
        if name in INDEX_KEYS and keys == INDEX_KEYS[name] and (
                index.get("IndexStatus", "ACTIVE") == "ACTIVE"):
            usable.add(name)
    return frozenset(usable)


def _attributes(pk_name: str, sort_key: str, sort_type: str,
                indexes: tuple[str, ...]) -> list[dict[str, str]]:
    names = {pk_name: "S", sort_key: sort_type}
    for index in indexes:
        names.update(dict.fromkeys(INDEX_KEYS[index], "S"))
    return [{"AttributeName": name, "AttributeType": kind} for name, kind in names.items()]


def create_table(store: DynamoDBStore, name: str, sort_key: str, sort_type: str, *,
                 indexes: tuple[str, ...] = ()) -> dict[str, Any]:
    """Create a table keyed by the partition key and ``sort_key`` (on-demand billing),
    with those listing ``indexes``; wait for it and return its description (the records
    table is made here too, without indexes)."""
    request: dict[str, Any] = {
        "TableName": name, "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [{"AttributeName": store.pk_name, "KeyType": "HASH"},
                      {"AttributeName": sort_key, "KeyType": "RANGE"}],
        "AttributeDefinitions": _attributes(store.pk_name, sort_key, sort_type, indexes)}
    if indexes:
        request["GlobalSecondaryIndexes"] = [index_definition(index) for index in indexes]
    try:
        store._call("create_table", **request)
    except DynamoError as exc:  # another process created it meanwhile
        if exc.code != "ResourceInUseException":
            raise
    waiter = store.client().get_waiter("table_exists")
    try:
        waiter.wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    except botocore.exceptions.WaiterError as exc:
        raise StoreError(f"DynamoDB table {name!r} did not become active") from exc
    table: dict[str, Any] = store._call("describe_table", TableName=name)["Table"]
    return table


def enable_ttl(store: DynamoDBStore, name: str) -> None:
    """Switch the table's TTL setting on for the store's ``ttl_attribute``."""
    found = store._call("describe_time_to_live", TableName=name)
    description = found.get("TimeToLiveDescription", {})
    if description.get("TimeToLiveStatus", "DISABLED") in ("ENABLED", "ENABLING"):
        if description.get("AttributeName") != store.ttl_attribute:
            raise ConfigurationError(
                f"table {name!r} expires items by {description.get('AttributeName')!r}"
                f", not {store.ttl_attribute!r}: pass ttl_attribute=... or manage_ttl=false")
        return
    store._call("update_time_to_live", TableName=name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": store.ttl_attribute})


def _add_indexes(store: DynamoDBStore, table: dict[str, Any]) -> dict[str, Any]:
    """Add the listing indexes a table lacks, one ``UpdateTable`` at a time, each waited
    for up to :data:`INDEX_WAIT` seconds; the table's description afterwards."""
    for name in INDEX_KEYS:
        present = {index.get("IndexName") for index in table.get("GlobalSecondaryIndexes", [])}
        if name in present:
            continue
        try:
            store._call("update_table", TableName=store.table,
                        AttributeDefinitions=_attributes(store.pk_name, "Seq", "N",
                                                         tuple(INDEX_KEYS)),
                        GlobalSecondaryIndexUpdates=[{"Create": index_definition(name)}])
        except DynamoError as exc:
            # Another process is adding one (DynamoDB builds one index at a time): a
            # later setup adds the rest; meanwhile listings Scan.
            if exc.code in _BUSY or "already exists" in str(exc):
                return table
            raise
        table = _wait_for(store, name)
        if name not in active_indexes(table):
            return table  # still backfilling: not waited for any longer
    return table


def _wait_for(store: DynamoDBStore, index: str) -> dict[str, Any]:
    """The table's description once ``index`` is ACTIVE, or when INDEX_WAIT is up."""
    deadline = time.monotonic() + INDEX_WAIT
    while True:
        table: dict[str, Any] = store._call("describe_table", TableName=store.table)["Table"]
        if index in active_indexes(table) or time.monotonic() >= deadline:
            return table
        time.sleep(1.0)


def _migrate(store: DynamoDBStore) -> None:
    key = store._requests.key(SCHEMA_PK, 0)
    found = store._call("get_item", TableName=store.table, Key=key, ConsistentRead=True)
    version = int(found["Item"]["Version"]["N"]) if "Item" in found else 0
    if version > SCHEMA_VERSION:
        raise StoreError(f"table {store.table!r} uses layout version {version}, newer than "
                         f"this threadline understands ({SCHEMA_VERSION}); upgrade it")
    for target in range(version + 1, SCHEMA_VERSION + 1):
        MIGRATIONS[target - 1](store)
        store._call("put_item", TableName=store.table, Item={**key, "Version": _n(target)})


def _list_old_sessions(store: DynamoDBStore) -> None:
    """Migration 2: give every session item without them its ``Lst`` / ``Rk``, from its
    own ``UpdatedAt`` (so it keeps its place in the recent order). Conditional: an item
    deleted or rewritten meanwhile is left as it is."""
    for item in store._scan("#seq = :meta AND attribute_not_exists(#rk)", "#pk, #seq, #ua",
                            {":meta": _n(META_SEQ)}):
        pk = item[store.pk_name]["S"]
        listed = recent_keys(pk, _num(item, "UpdatedAt") or time.time())
        try:
            store._call("update_item", **store._requests.expression(
                TableName=store.table, Key=store._requests.key(pk, META_SEQ),
                UpdateExpression="SET #lst = :lst, #rk = :rk",
                ConditionExpression="attribute_exists(#pk) AND attribute_not_exists(#rk)",
                values={":lst": listed["Lst"], ":rk": listed["Rk"]}))
        except DynamoError as exc:
            if exc.code != "ConditionalCheckFailedException":
                raise


def _key_old_sessions(store: DynamoDBStore) -> None:
    """Migration 3: give every session item without it its ``Ik`` (the id order's key),
    from its ``Session``. Conditional, as migration 2."""
    for item in store._scan("#seq = :meta AND attribute_not_exists(#ik)", "#pk, #s",
                            {":meta": _n(META_SEQ)}):
        pk = item[store.pk_name]["S"]
        try:
            store._call("update_item", **store._requests.expression(
                TableName=store.table, Key=store._requests.key(pk, META_SEQ),
                UpdateExpression="SET #ik = :ik",
                ConditionExpression="attribute_exists(#pk) AND attribute_not_exists(#ik)",
                values={":ik": {"S": id_key(item["Session"]["S"])}}))
        except DynamoError as exc:
            if exc.code != "ConditionalCheckFailedException":
                raise


MIGRATIONS: list[Callable[[DynamoDBStore], None]] = [
    lambda store: None,  # 1: the layout of _store (the table itself is made by setup)
    _list_old_sessions,  # 2: listing attributes on the session items
    _key_old_sessions,  # 3: the id key on the session items
]
