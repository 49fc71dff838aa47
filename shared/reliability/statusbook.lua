-- The never-regress status book. LIBRARY (shared with kind-specific scripts, which are appended to it):
--   dedupe(hash, id)            -> true when the event id was seen before (and marks it seen)
--   regresses(rank, prev, new)  -> true when `new` would move the status back (by rank)
--   not_forward(rank, prev, new)-> true when `new` is not strictly ahead (equal ranks: the first one wins)
local function dedupe(hash, id)
  return redis.call('HSETNX', hash, 'e:' .. id, '1') == 0
end

local function regresses(rank, prev, new)
  if not prev then return false end
  return (rank[prev] or 0) > (rank[new] or 0)
end

local function not_forward(rank, prev, new)
  if not prev then return false end
  return (rank[prev] or 0) >= (rank[new] or 0)
end
--@@END-LIBRARY@@
-- apply: KEYS[1] = subject hash, KEYS[2] = its history (list), KEYS[3] (optional) = pending-emit index
-- ARGV: event id, status, at_ms, ttl_ms, rank (JSON object), terminal (JSON array), history entry (JSON)
-- A change is added to the pending-emit index (member "<subject key>|<event id>") in the same call, so a crash
-- before its event is emitted leaves a trace the caller's job emits from the history (nothing lost).
local id, status, at, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local rank, terminal = cjson.decode(ARGV[5]), cjson.decode(ARGV[6])
local cur = redis.call('HMGET', KEYS[1], 'status', 'at')
if dedupe(KEYS[1], id) then return {'duplicate', cur[1] or ''} end
redis.call('RPUSH', KEYS[2], ARGV[7])
redis.call('LTRIM', KEYS[2], -500, -1)
redis.call('PEXPIRE', KEYS[2], ttl)
redis.call('PEXPIRE', KEYS[1], ttl)
local prev = cur[1]
if prev then
  for _, t in ipairs(terminal) do
    if t == prev then return {'final', prev} end
  end
  if at < tonumber(cur[2] or '0') or prev == status or regresses(rank, prev, status) then
    return {'stale', prev}
  end
end
redis.call('HSET', KEYS[1], 'status', status, 'at', tostring(at), 'p:' .. id, prev or '')
if KEYS[3] then
  local t = redis.call('TIME')
  redis.call('ZADD', KEYS[3], tonumber(t[1]), KEYS[1] .. '|' .. id)
end
return {'changed', prev or ''}
