"""The Lua scripts of the L2 cache (:mod:`perf.cache.redis_cache`): each runs atomically in Redis.

Together they implement the lease and version tokens of "Scaling Memcache at Facebook"
(NSDI 2013) for tagged entries: a load records the invalidation sequence when it begins
(:data:`READ`), and its store succeeds only if neither its lease was deleted nor any of its
tags was invalidated since (:data:`STORE`), checked in the same script that writes. What a
lease is (take, release) comes from :mod:`perf.cache.lease`.
"""

from __future__ import annotations

from perf.cache.lease import RELEASE_LUA, TAKE_LUA

# Every script below may touch keys it was not handed in KEYS (a tag key named inside an
# entry): fine on a standalone Redis/Valkey, which is what this cache targets (not Cluster).

# The namespace's invalidation sequence (KEYS[n] named ``seq``): read it, or create it at the
# server's clock in microseconds. Starting from the clock, not 0, keeps it increasing even if
# the key is lost (a restart, or an eviction under an allkeys-* policy): a version stamped
# before the loss is never mistaken for one after it.
_SEQ = """
local function current_seq(seq)
  local v = redis.call('GET', seq)
  if not v then
    local t = redis.call('TIME')
    v = string.format('%.0f', tonumber(t[1]) * 1000000 + tonumber(t[2]))
    redis.call('SET', seq, v)
  end
  return v
end
"""

# An entry is valid if every tag it names still exists at a version <= the sequence its load
# began at (its first word). A tag key that is gone (expired or evicted) fails the check: a
# lost version costs a miss, never a stale read.
_VALID = """
local function valid(entry, prefix)
  local nl = string.find(entry, '\\n', 1, true)
  if not nl then return false end
  local s = nil
  for word in string.gmatch(string.sub(entry, 1, nl - 1), '%S+') do
    if not s then
      s = tonumber(word)
      if not s then return false end
    else
      local v = redis.call('GET', prefix .. word)
      if not v or tonumber(v) > s then return false end
    end
  end
  return s ~= nil
end
"""

# Read KEYS[1]: {1, entry} if valid; else (an invalid entry is unlinked) {0, leased, seq}: with
# a token ARGV[2] the miss also tries to take the load lease KEYS[2] for ARGV[3] ms; seq
# (KEYS[3]) is where the caller's load begins. ARGV[1]: the tag key prefix.
READ = _SEQ + _VALID + TAKE_LUA + """
local entry = redis.call('GET', KEYS[1])
if entry then
  if valid(entry, ARGV[1]) then return {1, entry} end
  redis.call('UNLINK', KEYS[1])
end
local s = current_seq(KEYS[3])
if ARGV[2] ~= '' and take_lease(KEYS[2], ARGV[2], ARGV[3]) then return {0, 1, s} end
return {0, 0, s}
"""

# Store an entry only if nothing invalidated it since its load began (the lease and version
# check of "Scaling Memcache at Facebook", atomically with the store):
# KEYS: entry, seq, [lease]. ARGV: ' tags\n' + bytes, ttl ms, load-start sequence ('' = now:
# an unconditional set), tag key prefix, lease token ('' = none), tag, tag, ...
# Refused (returns 0) if the lease is no longer this token's (a delete took it), or a tag's
# version is newer than the load. A tag with no key yet is created at the current sequence,
# so it passes only if nothing at all was invalidated since the load began (its old version
# may have been evicted). Tag keys live at least as long as the entry.
STORE = _SEQ + RELEASE_LUA + """
local cur = current_seq(KEYS[2])
local s = tonumber(cur)
if ARGV[3] ~= '' then s = tonumber(ARGV[3]) end
local ttl = tonumber(ARGV[2])
local ok = true
if ARGV[5] ~= '' and release_lease(KEYS[3], ARGV[5]) == 0 then ok = false end
for i = 6, #ARGV do
  local key = ARGV[4] .. ARGV[i]
  local v = redis.call('GET', key)
  if not v then
    redis.call('SET', key, cur, 'PX', ttl)
    v = cur
  elseif redis.call('PTTL', key) < ttl then
    redis.call('PEXPIRE', key, ttl)
  end
  if tonumber(v) > s then ok = false end
end
if not ok then return 0 end
redis.call('SET', KEYS[1], string.format('%.0f', s) .. ARGV[1], 'PX', ttl)
return 1
"""

# Invalidate tags: the next sequence number becomes the version of every tag key that exists
# (one that does not exist has no valid entry, and a store recreates it at a newer sequence).
# KEYS: seq, tag, tag, ... Returns the new sequence. O(tags), whatever the entries.
INVALIDATE = _SEQ + """
current_seq(KEYS[1])
local n = redis.call('INCR', KEYS[1])
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then redis.call('SET', KEYS[i], n, 'KEEPTTL') end
end
return n
"""

# Delete entries (the first ARGV[1] keys) and their load leases (the rest): a load that began
# before the delete then fails its store. Returns how many entries existed.
DELETE = """
local n = tonumber(ARGV[1])
local existed = redis.call('UNLINK', unpack(KEYS, 1, n))
redis.call('UNLINK', unpack(KEYS, n + 1, #KEYS))
return existed
"""
