"""The Lua scripts of the Redis Cluster layout (see :mod:`threadline.stores.redis._cluster_keys`).

A session's scripts touch its own slot only: they are the single-node ones
(:mod:`threadline.stores.redis._scripts`, keys and arguments built by
:func:`~threadline.stores.redis._ops.by_id`; no session has rivals here) without the
writes to the store-wide sets, which live in other slots. Those writes are separate
commands on the shards and owners' sets (``SHARD_ADD``, ``UNINDEX``), run by
:mod:`threadline.stores.redis._cluster_ops` before or after the session's script, in an
order that leaves nothing unlistable (see there).
"""

from __future__ import annotations

from threadline.stores.redis._scripts import APPEND_BODY, FORGET, KEEP_TTL, STANDING
from threadline.stores.redis._session_scripts import SET_FIELDS

__all__ = ["APPEND", "DELETE", "SHARD_ADD", "UNINDEX", "UPDATE"]

# The owner sets are in other slots: a stale owner entry is skipped by listings instead.
_NO_UNLIST = """
local function unlist(owner, sid)
end
"""

# APPEND of one node (same keys and arguments; the owner heads in ARGV are ignored),
# whose end keeps the expiry of the three keys and returns {pushed, owner or ''} for the
# owner's sets; -1 / -2 / 0 as there when nothing changed.
APPEND = STANDING + _NO_UNLIST + FORGET + APPEND_BODY + KEEP_TTL + """
return {pushed, redis.call('HGET', meta, 'owner') or ''}
"""

# Delete the session's keys and records (KEYS[own], KEYS[own + 1]); {deleted, owner,
# updated_at} as they were, so the caller can take it out of the shard and owner's sets.
DELETE = STANDING + """
local owner = redis.call('HGET', KEYS[2], 'owner') or ''
local updated = redis.call('HGET', KEYS[2], 'updated_at') or ''
redis.call('DEL', KEYS[2], KEYS[3])
local deleted = redis.call('DEL', KEYS[own], KEYS[own + 1])
if state == 'ours' then
  deleted = deleted + redis.call('DEL', KEYS[1])
elseif state == 'empty' then
  deleted = deleted + 1
end
return {deleted, owner, updated}
"""

# update_session: ARGV from first: now, the ttl in ms of a new session ('' = none), then
# (field, value) pairs ('=' .. text sets, '' deletes). {1, old owner, new owner,
# updated_at}, or {-1} / {-2} as APPEND.
UPDATE = STANDING + SET_FIELDS + """
if state == 'foreign' then
  return {-1}
elseif state == 'taken' then
  return {-2}
end
local list, meta = KEYS[1], KEYS[2]
local now, ttl = ARGV[first], ARGV[first + 1]
if state == 'none' then
  redis.call('DEL', meta, KEYS[3])
  redis.call('HSET', meta, 'created_at', now, 'updated_at', now, 'empty', '1')
  if ttl ~= '' then
    redis.call('PEXPIRE', meta, ttl)
  end
end
local old = redis.call('HGET', meta, 'owner') or ''
set_fields(meta, first + 2)
if state == 'ours' then
  local pttl = redis.call('PTTL', list)
  if pttl > 0 then
    redis.call('PEXPIRE', meta, pttl)
  end
end
return {1, old, redis.call('HGET', meta, 'owner') or '',
        redis.call('HGET', meta, 'updated_at') or '0'}
"""

# Put sessions in a shard: KEYS: its by-id and recent sets; ARGV[1]: ZADD's flag for the
# recent set ('GT': activity moves a session up, never down; 'NX': keep a score), then
# (score, id) pairs. Idempotent.
SHARD_ADD = """
for i = 2, #ARGV - 1, 2 do
  redis.call('ZADD', KEYS[1], 'NX', 0, ARGV[i + 1])
  redis.call('ZADD', KEYS[2], ARGV[1], ARGV[i], ARGV[i + 1])
end
return 0
"""

# Take sessions out of a shard, each only if its recent score is at most ARGV[1]: an
# append that (re)creates the session meanwhile has moved it above (it adds before it
# writes). KEYS: the shard's sets; ARGV from 2: the ids. How many were removed.
UNINDEX = """
local removed = 0
for i = 2, #ARGV do
  local score = redis.call('ZSCORE', KEYS[2], ARGV[i])
  if not score or tonumber(score) <= tonumber(ARGV[1]) then
    redis.call('ZREM', KEYS[2], ARGV[i])
    removed = removed + redis.call('ZREM', KEYS[1], ARGV[i])
  end
end
return removed
"""
