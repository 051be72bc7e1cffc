"""The layout version of a store's keys, and the upgrades from older ones (pure).

``P\\0schema`` holds the version; :func:`setup_op` writes it for a new store, refuses a
newer one, and upgrades an older one once (each upgrade is idempotent, so two processes
upgrading at once do no harm). A threadline older than the layout refuses the prefix
(it checks the version too), so no older process writes without keeping the new sets;
one that checked before the upgrade keeps running until it restarts.
"""

from __future__ import annotations

from threadline._errors import StoreError
from threadline.stores.redis._keys import Keys
from threadline.stores.redis._ops import SCAN_BATCH, Batch, Operation

__all__ = ["SCHEMA_VERSION", "recent_from_index_op", "setup_op"]

#: The layout version: 2 added the recent set (``P\0recent``) and the owners' sets.
SCHEMA_VERSION = 2


def setup_op(keys: Keys) -> Operation[None]:
    (_, version) = yield Batch([("SET", keys.schema, SCHEMA_VERSION, "NX"),
                                 ("GET", keys.schema)])
    found = SCHEMA_VERSION if version is None else int(version)
    if found > SCHEMA_VERSION:
        raise StoreError(
            f"the keys under this prefix use layout version {found}, newer than this "
            f"threadline understands ({SCHEMA_VERSION}); upgrade threadline"
        )
    if found < 2:
        yield from recent_from_index_op(keys)
        yield Batch([("SET", keys.schema, SCHEMA_VERSION)])


def recent_from_index_op(keys: Keys) -> Operation[None]:
    """Layout 1 to 2: score every indexed session in the recent set by its updated_at
    (0 if unknown). ``GT`` never moves back a session an append (of a threadline that
    already keeps the set) moved up meanwhile, so running it twice, or concurrently,
    is harmless. Sessions had no owner before layout 2: the owners' sets start empty."""
    start = b"-"
    while True:
        (batch,) = yield Batch([("ZRANGEBYLEX", keys.index, start, b"+",
                                  "LIMIT", 0, SCAN_BATCH)])
        if batch:
            stamps = yield Batch([("HGET", keys.meta(sid), "updated_at") for sid in batch])
            yield Batch([("ZADD", keys.recent, "GT", *[
                part for sid, stamp in zip(batch, stamps, strict=True)
                for part in (0 if stamp is None else float(stamp), sid)])])
        if len(batch) < SCAN_BATCH:
            return
        start = b"(" + batch[-1]
