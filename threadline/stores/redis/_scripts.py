"""The Lua scripts of the Redis store: every operation on one session, checked atomically.

Each script starts with :data:`STANDING`, which tells whether the session's list is this
store's to use. Its keys and arguments (built by :func:`threadline.stores.redis._ops.by_id`):

* KEYS[1..4]: the session's list, metadata hash, id set, and the store's index;
* then four per rival (see :meth:`~threadline.stores.redis._keys.Keys.rivals`): its
  index, its schema key, and its metadata hash and id set of the same list;
* then the operation's own keys (``own`` is the index of the first): DELETE's and
  EXPIRE's start with the session's records, hash and key index; APPEND's, UPDATE's
  and FORK's with the recent set (see each script);
* ARGV[1]: the session id; ARGV[2]: the number of rivals, then per rival its session
  id and '1' if its prefix is longer than ours; the operation's own arguments follow
  (``first`` is the index of the first).

``state`` is then one of:

* ``ours``: a list this store may read and write;
* ``none``: there is no list (no such session, or a new one);
* ``empty``: there is no list, but the session exists: ``update_session`` created it
  (its metadata hash has an ``empty`` field, dropped by the first append that pushes);
  a rival's empty session makes the list ``taken`` instead;
* ``foreign``: the key holds something else than a list: another application's, never
  read, written, expired or deleted;
* ``taken``: a list another store owns: a rival's index names it, or no index does and
  a rival with a longer prefix exists (its schema key does), which then owns it. A list
  no index names is this store's if no longer rival exists: a session LangChain wrote.

Where a script keeps an owner's sets (:meth:`~threadline.stores.redis._keys.Keys.owner_recent`)
it builds their names from the owner it reads in the metadata hash and the heads
(``Keys.owner_heads``) passed in ARGV: the owner is known only inside the script. All of a
store's keys share its prefix, so a hash-tagged prefix (``{chat}:``) keeps them in one
cluster slot.
"""

from __future__ import annotations

__all__ = ["APPEND", "APPEND_BODY", "CLEANUP", "DELETE", "EXPIRE", "FORGET", "INFO", "READ",
           "KEEP_TTL", "STANDING", "TOUCH", "UNLIST"]

STANDING = """
local others = {}
for i = 1, tonumber(ARGV[2]) do
  local k, a = 1 + 4 * i, 1 + 2 * i
  others[i] = {index = KEYS[k], schema = KEYS[k + 1], meta = KEYS[k + 2],
               ids = KEYS[k + 3], sid = ARGV[a], longer = ARGV[a + 1] == '1'}
end
local first, own = 3 + 2 * #others, 5 + 4 * #others
local function standing()
  local kind = redis.call('TYPE', KEYS[1])['ok']
  if kind == 'none' then
    for _, other in ipairs(others) do
      if redis.call('ZSCORE', other.index, other.sid)
          and redis.call('HEXISTS', other.meta, 'empty') == 1 then
        return 'taken'
      end
    end
    if redis.call('HEXISTS', KEYS[2], 'empty') == 1 then
      return 'empty'
    end
    return 'none'
  elseif kind ~= 'list' then
    return 'foreign'
  elseif #others == 0 then
    return 'ours'
  end
  for _, other in ipairs(others) do
    if redis.call('ZSCORE', other.index, other.sid) then
      return 'taken'
    end
  end
  if redis.call('ZSCORE', KEYS[4], ARGV[1]) then
    return 'ours'
  end
  for _, other in ipairs(others) do
    if other.longer and redis.call('EXISTS', other.schema) == 1 then
      return 'taken'
    end
  end
  return 'ours'
end
local state = standing()
"""

# ARGV[first], ARGV[first + 1]: LRANGE's start and stop.
READ = STANDING + """
if state ~= 'ours' then
  return {}
end
return redis.call('LRANGE', KEYS[1], ARGV[first], ARGV[first + 1])
"""

# {message count, pttl, {created_at, updated_at, title, metadata, owner, parent,
# fork_point}}, or {} if there is no such session.
INFO = STANDING + """
local fields = {}
if state == 'ours' then
  fields = {redis.call('LLEN', KEYS[1]), redis.call('PTTL', KEYS[1])}
elseif state == 'empty' then
  fields = {0, redis.call('PTTL', KEYS[2])}
else
  return {}
end
fields[3] = redis.call('HMGET', KEYS[2], 'created_at', 'updated_at', 'title', 'metadata',
                       'owner', 'parent', 'fork_point')
return fields
"""

# Take a session out of an owner's sets (ARGV[first], ARGV[first + 1]: the heads).
UNLIST = """
local function unlist(owner, sid)
  if owner then
    redis.call('ZREM', ARGV[first] .. owner, sid)
    redis.call('ZREM', ARGV[first + 1] .. owner, sid)
  end
end
"""

# Drop what a rival's session that is gone left for a list a new session takes: its index
# and recent entries, its owner's, its hash and id set. The rival's recent set and owner
# heads are its index's name with 'sessions' replaced (see Keys).
FORGET = """
local function forget(other)
  local head = string.sub(other.index, 1, -9)
  local owner = redis.call('HGET', other.meta, 'owner')
  if owner then
    redis.call('ZREM', head .. 'orecent\\0' .. owner, other.sid)
    redis.call('ZREM', head .. 'oids\\0' .. owner, other.sid)
  end
  redis.call('ZREM', other.index, other.sid)
  redis.call('ZREM', head .. 'recent', other.sid)
  redis.call('DEL', other.meta, other.ids)
end
"""

# Our own keys of the session go whatever the list is (its records too: they are
# nobody else's), and its entries in the recent set and its owner's sets; the list only
# if it is ours. Non-zero if the session (an empty one too) or its records existed.
# KEYS[own], KEYS[own + 1]: the records; KEYS[own + 2]: the recent set. ARGV[first],
# ARGV[first + 1]: the owner heads.
DELETE = STANDING + UNLIST + """
unlist(redis.call('HGET', KEYS[2], 'owner'), ARGV[1])
redis.call('DEL', KEYS[2], KEYS[3])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('ZREM', KEYS[own + 2], ARGV[1])
local deleted = redis.call('DEL', KEYS[own], KEYS[own + 1])
if state == 'ours' then
  deleted = deleted + redis.call('DEL', KEYS[1])
elseif state == 'empty' then
  deleted = deleted + 1
end
return deleted
"""

# ARGV[first]: the ttl in ms, '' to persist.
EXPIRE = STANDING + """
local keys = {KEYS[2], KEYS[3], KEYS[own], KEYS[own + 1]}
if state == 'ours' then
  keys[5] = KEYS[1]
end
for _, key in ipairs(keys) do
  if ARGV[first] == '' then
    redis.call('PERSIST', key)
  else
    redis.call('PEXPIRE', key, ARGV[first])
  end
end
return 0
"""

# The session's keys take ``ttl`` (ms; '' = keep ``expiry``, the expiry it had).
# Locals it needs: list, meta, ids, ttl, expiry.
KEEP_TTL = """
if ttl == '' then
  ttl = expiry
  if ttl < 0 then
    ttl = nil
  end
end
if ttl then
  redis.call('PEXPIRE', list, ttl)
  redis.call('PEXPIRE', meta, ttl)
  redis.call('PEXPIRE', ids, ttl)
end
"""

# The end of a write that is activity (APPEND, and each chunk of a fork): KEEP_TTL, then
# the session goes to the top of the recent set and of its owner's, and into the index
# and its owner's by-id set. Locals it needs: those of KEEP_TTL, now (and first, own from
# STANDING).
TOUCH = KEEP_TTL + """
redis.call('ZADD', KEYS[4], 'NX', 0, ARGV[1])
redis.call('ZADD', KEYS[own], now, ARGV[1])
local owner = redis.call('HGET', meta, 'owner')
if owner then
  redis.call('ZADD', ARGV[first] .. owner, now, ARGV[1])
  redis.call('ZADD', ARGV[first + 1] .. owner, 'NX', 0, ARGV[1])
end
"""

# Append a batch, atomically and in one round trip; returns how many messages it pushed,
# -1 if the key is not a list (foreign), -2 if it is another store's (taken).
# KEYS[own]: the recent set. ARGV from first: the owner heads, now, ttl in ms ('' = leave
# the expiry as it is), then a (tag, message) pair per message, oldest first: tag '' for a
# message without an id, '=' .. id otherwise.
#
# 0. A new session (no list) is this store's, first come first served: rivals' index
#    entries, hashes and id sets for the same list are leftovers of sessions that are
#    gone, dropped so that no rival claims the list this append creates.
# 1. A list that is gone is a session that starts afresh (expired, or cleared by
#    LangChain's RedisChatMessageHistory, whose clear() deletes the list only): its stale
#    hash and id set go first, so created_at is now and old ids are forgotten.
# 2. meta.ids_cover is how many of the list's oldest messages the id set accounts for.
#    Other writers (LangChain, threadline before id sets) LPUSH without updating it: the
#    newest length - ids_cover messages are read once to learn their ids. A list shorter
#    than ids_cover (trimmed by someone) is read whole.
# 3. A message whose id the set holds (stored before, or earlier in this batch) is
#    skipped; the others are pushed: LPUSH puts each at the head, so the newest is first.
# 4. The three keys share one expiry: the given ttl, else the list's own (LangChain may
#    have set one), so the hash and the set never outlive the list for long. A session
#    update_session created (state 'empty') keeps its hash, and gives the new list its
#    expiry.
# 5. The session moves to the top of the recent set, and of its owner's.
APPEND_BODY = """
if state == 'foreign' then
  return -1
elseif state == 'taken' then
  return -2
elseif state == 'none' or state == 'empty' then
  for _, other in ipairs(others) do
    forget(other)
  end
end
local list, meta, ids = KEYS[1], KEYS[2], KEYS[3]
local length = redis.call('LLEN', list)
local cover = 0
if length == 0 then
  if state ~= 'empty' then
    unlist(redis.call('HGET', meta, 'owner'), ARGV[1])
    redis.call('DEL', meta)
  end
  redis.call('DEL', ids)
else
  cover = tonumber(redis.call('HGET', meta, 'ids_cover')) or 0
end
if cover ~= length then
  local unseen = length - cover - 1
  if cover > length then
    redis.call('DEL', ids)
    unseen = -1
  end
  for _, raw in ipairs(redis.call('LRANGE', list, 0, unseen)) do
    local ok, message = pcall(cjson.decode, raw)
    if ok and type(message) == 'table' and type(message.data) == 'table'
        and type(message.data.id) == 'string' then
      redis.call('SADD', ids, message.data.id)
    end
  end
end
local now, ttl = ARGV[first + 2], ARGV[first + 3]
local pushed = 0
for i = first + 4, #ARGV - 1, 2 do
  local tag = ARGV[i]
  if tag == '' or redis.call('SADD', ids, string.sub(tag, 2)) == 1 then
    redis.call('LPUSH', list, ARGV[i + 1])
    pushed = pushed + 1
  end
end
if length + pushed == 0 then
  return 0
end
local expiry = redis.call('PTTL', length == 0 and meta or list)
redis.call('HSETNX', meta, 'created_at', now)
redis.call('HSET', meta, 'updated_at', now, 'ids_cover', length + pushed)
redis.call('HDEL', meta, 'empty')
"""
APPEND = STANDING + UNLIST + FORGET + APPEND_BODY + TOUCH + """
return pushed
"""

# Drop the index entry, the recent entry, the owner's entries, the metadata and the id
# set of sessions whose list is gone (or is not a list any more) and that are not empty
# sessions, atomically, so a session re-created meanwhile keeps them. With an owner
# (ARGV[3], whose sets are being listed), also take out of that owner's sets the
# sessions that are gone or are not that owner's any more (their hash expired with the
# owner in it). Returns how many sessions lost an index entry or a key. KEYS: index,
# recent set, then (list, meta, ids) triples; ARGV[1], ARGV[2]: the owner heads,
# ARGV[3]: the owner or '', then the session ids.
CLEANUP = """
local first, removed, listed = 1, 0, ARGV[3]
""" + UNLIST + """
for i = 4, #ARGV do
  local sid, j = ARGV[i], 3 * (i - 4)
  local list, meta, ids = KEYS[3 + j], KEYS[4 + j], KEYS[5 + j]
  local kind = redis.call('TYPE', list)['ok']
  local alive = kind == 'list'
    or (kind == 'none' and redis.call('HEXISTS', meta, 'empty') == 1)
  local owner = redis.call('HGET', meta, 'owner')
  if not alive then
    unlist(owner, sid)
    redis.call('ZREM', KEYS[2], sid)
    local dropped = redis.call('ZREM', KEYS[1], sid) + redis.call('DEL', meta, ids)
    if dropped > 0 then
      removed = removed + 1
    end
  end
  if listed ~= '' and (not alive or owner ~= listed) then
    unlist(listed, sid)
  end
end
return removed
"""
