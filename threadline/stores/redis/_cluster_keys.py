"""Redis Cluster key names (pure): every key of a session in one hash slot.

In cluster mode (``redis+cluster://``) a session's keys carry a hash tag derived from its
id, so the script of a turn's append touches one slot, as on one node:

* ``P{t}m:{id}``, ``P{t}h:{id}``, ``P{t}i:{id}`` — the list, the metadata hash and the
  id set (as in :mod:`~threadline.stores.redis._store`), where ``t`` is
  :func:`session_tag`: 16 hex digits of a BLAKE2b digest of the id, so an id holding
  ``{`` or ``}`` cannot change its slot;
* ``P{t}r:{id}``, ``P{t}k:{id}`` — its records (values and key index);
* ``P{sNN}ids``, ``P{sNN}recent`` — shard ``NN`` of :data:`SHARDS` of the sessions index:
  a session is in shard ``int(t, 16) % SHARDS``, by id (all scored 0, for ZRANGEBYLEX)
  and by ``updated_at``; a shard's two sets share a slot;
* ``P{oT}orecent:{owner}``, ``P{oT}oids:{owner}`` — an owner's sets, in one slot (``T``:
  the owner's digest);
* ``P{x}schema`` — the layout of the prefix (``c1``).

The tags differ by shape (16 hex digits, ``s`` + 2 digits, ``o`` + 16 hex digits, ``x``),
so no key of one family can be named by another. The prefix may not hold ``{`` or ``}``
and ends with ``:``, and every key has ``{`` right after it: a key of the store ``a:``
starts with ``a:{``, one of ``a:b:`` with ``a:b:``, so no two stores' namespaces meet and
there are no rivals (:meth:`ClusterKeys.rivals` is empty). These names are not
LangChain's: LangChain's ``RedisChatMessageHistory`` does not read cluster sessions.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from threadline._errors import ConfigurationError
from threadline.stores.redis._keys import Keys, Rival, check_prefix

__all__ = ["SHARDS", "ClusterKeys", "check_cluster_prefix", "session_tag"]

#: How many sorted sets (each in its own slot) the sessions index is split into. Part of
#: the layout: changing it would hide sessions from listings.
SHARDS = 16


def check_cluster_prefix(prefix: object) -> str:
    """:func:`check_prefix`, and no ``{`` / ``}`` (they would choose the hash slot)."""
    value = check_prefix(prefix)
    if "{" in value or "}" in value:
        raise ConfigurationError(
            f"a Redis Cluster key_prefix may not hold '{{' or '}}', got {value!r}: the "
            "store puts the hash tag of each session right after the prefix")
    return value


def _digest(raw: bytes) -> bytes:
    return hashlib.blake2b(raw, digest_size=8).hexdigest().encode()


def session_tag(sid: bytes) -> bytes:
    return _digest(sid)


@dataclass(frozen=True, slots=True)
class ClusterKeys(Keys):
    """The cluster layout; the single-node operations that only name a session's keys
    (reads, info, expire, records) use it as they use :class:`Keys`."""

    def _own(self, kind: bytes, sid: bytes) -> bytes:
        return self.prefix + b"{" + session_tag(sid) + b"}" + kind + b":" + sid

    def messages(self, sid: bytes) -> bytes:
        return self._own(b"m", sid)

    def meta(self, sid: bytes) -> bytes:
        return self._own(b"h", sid)

    def ids(self, sid: bytes) -> bytes:
        return self._own(b"i", sid)

    def records(self, sid: bytes) -> tuple[bytes, bytes]:
        return self._own(b"r", sid), self._own(b"k", sid)

    def anchor(self, sid: bytes) -> bytes:
        # The scripts' KEYS[4] (the index on one node) is only read when a session has
        # rivals, which never happens here: the list's own name keeps the call in its slot.
        return self.messages(sid)

    def rivals(self, sid: bytes) -> list[Rival]:
        return []

    @property
    def schema(self) -> bytes:
        return self.prefix + b"{x}schema"

    @staticmethod
    def shard_of(sid: bytes) -> int:
        return int(session_tag(sid), 16) % SHARDS

    def shard(self, number: int) -> tuple[bytes, bytes]:
        """Shard ``number``'s sets: by id (score 0) and by ``updated_at``."""
        head = self.prefix + b"{s%02d}" % number
        return head + b"ids", head + b"recent"

    def shard_for(self, sid: bytes) -> tuple[bytes, bytes]:
        return self.shard(self.shard_of(sid))

    def owner_sets(self, owner: str) -> tuple[bytes, bytes]:
        """An owner's sets: by ``updated_at``, and by id (score 0)."""
        raw = owner.encode("utf-8")
        head = self.prefix + b"{o" + _digest(raw) + b"}"
        return head + b"orecent:" + raw, head + b"oids:" + raw

    def owner_recent(self, owner: str) -> bytes:
        return self.owner_sets(owner)[0]

    def owner_ids(self, owner: str) -> bytes:
        return self.owner_sets(owner)[1]

    @property
    def owner_heads(self) -> tuple[bytes, bytes]:
        raise NotImplementedError("cluster owner sets are named per owner: owner_sets()")

    @property
    def index(self) -> bytes:
        raise NotImplementedError("the cluster index is sharded: shard()")

    @property
    def recent(self) -> bytes:
        raise NotImplementedError("the cluster index is sharded: shard()")
