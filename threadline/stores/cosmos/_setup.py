"""Cosmos DB setup (pure): the container's checks, the schema document and upgrades.

``setup`` creates the database and container (partitioned on ``/pk``, expiry on), then
the schema document ``{"id": "schema", "pk": "~meta", "v": SCHEMA_VERSION}``. A container
written by an older layout is upgraded once, then its schema document says so; a newer
one is refused (upgrade threadline). Once the document says version 2, an older
threadline refuses the container at its next setup, so processes are upgraded together.

Upgrades:

* 1 -> 2: heads get the recent-order key ``r`` (and their true count and update time,
  which the emulator path used to leave on the newest message), so the recent-first
  listing, which reads heads alone, sees every session. One query finds the heads
  without ``r``; each is rewritten with If-Match (a head written meanwhile by an
  append already has one).
"""

from __future__ import annotations

import time

from threadline._errors import ConfigurationError, StoreError
from threadline.stores.cosmos._docs import (
    _ATTEMPTS,
    HEAD_ID,
    META_PK,
    SCHEMA_VERSION,
    _head_body,
)
from threadline.stores.cosmos._ops import (
    _OK,
    Operation,
    _backoff,
    _EnableTtl,
    _Ensure,
    _Query,
    _read_state,
    _Write,
)

__all__ = ["setup_op"]

_SCHEMA_SQL = "SELECT * FROM c WHERE c.pk = @pk AND c.id = 'schema'"
_NO_KEY_SQL = "SELECT c.pk FROM c WHERE c.t = 'h' AND NOT IS_DEFINED(c.r)"


def setup_op() -> Operation[None]:
    props = yield _Ensure()
    paths = (props.get("partitionKey") or {}).get("paths")
    if paths != ["/pk"]:
        hint = (" — LangChain's CosmosDBChatMessageHistory layout; use another container"
                if paths == ["/user_id"] else "")
        raise ConfigurationError(
            f"the container is partitioned on {paths}, threadline needs ['/pk']{hint}")
    if props.get("defaultTtl") is None:
        yield _EnableTtl()
    doc = {"id": "schema", "pk": META_PK, "t": "schema", "v": SCHEMA_VERSION}
    status, _ = yield _Write("create", META_PK, "schema", doc)
    if status == 409:
        (found,) = yield _Query(_SCHEMA_SQL, {"@pk": META_PK}, META_PK)
        version = int(found.get("v", 0))
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"the container uses layout version {version}, newer than this threadline "
                f"understands ({SCHEMA_VERSION}); upgrade threadline")
        if version < 2:
            yield from _add_recent_keys()
        if version < SCHEMA_VERSION:
            # 412: another process upgraded it meanwhile.
            yield _Write("replace", META_PK, "schema", doc, found["_etag"])
    elif status not in _OK:
        raise StoreError(f"could not write the schema document (HTTP {status})")


def _add_recent_keys() -> Operation[None]:
    """Layout 1 -> 2: rewrite every head that has no recent-order key."""
    docs = yield _Query(_NO_KEY_SQL, {}, None)
    for pk in dict.fromkeys(str(doc["pk"]) for doc in docs):
        for attempt in range(_ATTEMPTS):
            state = yield from _read_state(pk)
            head = state.head
            if head is None or "r" in head:
                break
            body = _head_body(pk, str(head["sid"]), int(head["e"]), state.count(),
                              float(head["c"]), state.updated(), head.get("x"), time.time(),
                              carry=head)
            status, _ = yield _Write("replace", pk, HEAD_ID, body, head["_etag"])
            if status in _OK or status == 404:
                break
            yield _backoff(attempt)
