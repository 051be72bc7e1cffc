"""The Lua scripts of sessions as objects (see :mod:`threadline.stores.redis._sessions`).

``UPDATE`` and ``FORK`` work on one session, so they start with
:data:`~threadline.stores.redis._scripts.STANDING` (keys and arguments as there, built by
:func:`~threadline.stores.redis._ops.by_id`); ``FILTER`` and ``STATS`` read many
sessions that have no rival (a session with one is settled in Python, by ``probe_op``).
"""

from __future__ import annotations

from threadline.stores.redis._scripts import FORGET, STANDING, TOUCH, UNLIST

__all__ = ["FILTER", "FORK", "SET_FIELDS", "STATS", "UPDATE"]

# Set a session's fields, creating it (empty) if it does not exist: 1, or -1 / -2 as
# APPEND. KEYS[own]: the recent set. ARGV from first: the owner heads, now, the ttl in ms
# of a new session ('' = none), then (field, value) pairs: value '=' .. text sets the
# field, '' deletes it. updated_at does not change: this is no activity.
#
# A new session drops what a gone one left (as APPEND does), so it starts bare. Its
# entries in the index, the recent set and its owner's sets are (re)written from its
# hash, so a session LangChain wrote is listed once it has a title (scored by its
# updated_at, 0 if unknown: never active through this store).
# set_fields(meta, from): the (name, '=value' or '' to delete) pairs of ARGV from ``from``
# on, written to (or deleted from) the metadata hash ``meta``.
SET_FIELDS = """
local function set_fields(meta, from)
  for i = from, #ARGV - 1, 2 do
    if ARGV[i + 1] == '' then
      redis.call('HDEL', meta, ARGV[i])
    else
      redis.call('HSET', meta, ARGV[i], string.sub(ARGV[i + 1], 2))
    end
  end
end
"""

UPDATE = STANDING + UNLIST + FORGET + SET_FIELDS + """
if state == 'foreign' then
  return -1
elseif state == 'taken' then
  return -2
end
local list, meta, sid = KEYS[1], KEYS[2], ARGV[1]
local now, ttl = ARGV[first + 2], ARGV[first + 3]
if state == 'none' then
  for _, other in ipairs(others) do
    forget(other)
  end
  unlist(redis.call('HGET', meta, 'owner'), sid)
  redis.call('DEL', meta, KEYS[3])
  redis.call('HSET', meta, 'created_at', now, 'updated_at', now, 'empty', '1')
  if ttl ~= '' then
    redis.call('PEXPIRE', meta, ttl)
  end
end
local old = redis.call('HGET', meta, 'owner')
set_fields(meta, first + 4)
local score = redis.call('HGET', meta, 'updated_at') or '0'
redis.call('ZADD', KEYS[4], 'NX', 0, sid)
redis.call('ZADD', KEYS[own], score, sid)
local new = redis.call('HGET', meta, 'owner')
if old ~= new then
  unlist(old, sid)
end
if new then
  redis.call('ZADD', ARGV[first] .. new, score, sid)
  redis.call('ZADD', ARGV[first + 1] .. new, 0, sid)
end
if state == 'ours' then
  local pttl = redis.call('PTTL', list)
  if pttl > 0 then
    redis.call('PEXPIRE', meta, pttl)
  end
end
return 1
"""

# Copy messages start to stop - 1 (0 = the oldest) of the list KEYS[own + 1] (a fork's
# source) to the head of the session's list: one chunk of a fork, server-side. How many
# were copied, -1 if the session is not ours or empty any more. KEYS[own]: the recent
# set. ARGV from first: the owner heads, now, ttl in ms ('' = the session's own), start,
# stop. Counted from the source's oldest end, so appends to it meanwhile move nothing;
# pushed oldest first, so the list stays newest first. The id set is not written:
# ids_cover stays 0, so the next append learns the copied ids (as LangChain's).
FORK = STANDING + """
if state ~= 'empty' and state ~= 'ours' then
  return -1
end
local list, meta, ids = KEYS[1], KEYS[2], KEYS[3]
local now, ttl = ARGV[first + 2], ARGV[first + 3]
local start, stop = tonumber(ARGV[first + 4]), tonumber(ARGV[first + 5])
local items = redis.call('LRANGE', KEYS[own + 1], -stop, -(start + 1))
if #items == 0 then
  return 0
end
for i = #items, 1, -1 do
  redis.call('LPUSH', list, items[i])
end
local expiry = redis.call('PTTL', meta)
redis.call('HSET', meta, 'updated_at', now)
redis.call('HDEL', meta, 'empty')
""" + TOUCH + """
return #items
"""

# The size of sessions that have no rival (their list is ours if it is a list): {sessions,
# messages, bytes, 1 if every MEMORY USAGE answered}. KEYS: (list, meta) pairs. Read-only:
# sessions that are gone are not counted, nor dropped.
STATS = """
local sessions, messages, bytes, sized = 0, 0, 0, 1
local function usage(key)
  local n = redis.pcall('MEMORY', 'USAGE', key)
  if type(n) == 'number' then
    bytes = bytes + n
  elseif type(n) == 'table' then
    sized = 0
  end
end
for i = 1, #KEYS, 2 do
  local kind = redis.call('TYPE', KEYS[i])['ok']
  if kind == 'list' then
    sessions = sessions + 1
    messages = messages + redis.call('LLEN', KEYS[i])
    usage(KEYS[i])
    usage(KEYS[i + 1])
  elseif kind == 'none' and redis.call('HEXISTS', KEYS[i + 1], 'empty') == 1 then
    sessions = sessions + 1
    usage(KEYS[i + 1])
  end
end
return {sessions, messages, bytes, sized}
"""

# Judge a listing's candidates that have no rival (their list is ours if it is a list),
# read-only: per candidate 1 (keep), 0 (fails the metadata filter), -1 (gone: no list and
# not an empty session) or -2 (not ARGV[1]'s, when an owner's set is listed). KEYS: (list,
# meta) pairs; ARGV[1]: the owner or ''; ARGV[2]: '' or the wanted metadata, a JSON
# object of strings: every pair must be in the session's (values compared as strings).
FILTER = """
local owner, wanted = ARGV[1], nil
if ARGV[2] ~= '' then
  wanted = cjson.decode(ARGV[2])
end
local codes = {}
for i = 1, #KEYS, 2 do
  local kind = redis.call('TYPE', KEYS[i])['ok']
  local fields = redis.call('HMGET', KEYS[i + 1], 'empty', 'owner', 'metadata')
  local code = 1
  if not (kind == 'list' or (kind == 'none' and fields[1])) then
    code = -1
  elseif owner ~= '' and fields[2] ~= owner then
    code = -2
  elseif wanted then
    local ok, stored = pcall(cjson.decode, fields[3] or '{}')
    if not ok or type(stored) ~= 'table' then
      code = 0
    else
      for key, value in pairs(wanted) do
        if stored[key] ~= value then
          code = 0
          break
        end
      end
    end
  end
  codes[#codes + 1] = code
end
return codes
"""
