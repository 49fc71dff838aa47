-- One delivery receipt, appended to the status book library (shared/reliability/statusbook.lua): correlate
-- to the accepted message, de-duplicate, never regress, aggregate parts, learn number porting.
-- KEYS[1] = correlation hash, KEYS[2] = porting hash.
-- ARGV: status, part, parts (0 = from the correlation), carrier ('' = unknown), ttl ms, rank (JSON)
local status, part, parts, carrier, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]
local rank = cjson.decode(ARGV[6])
if redis.call('EXISTS', KEYS[1]) == 0 then return {'uncorrelated'} end
if dedupe(KEYS[1], part .. ':' .. status) then return {'duplicate'} end
local previous = redis.call('HGET', KEYS[1], 'p:' .. part)
if previous and not_forward(rank, previous, status) then return {'stale', previous} end
redis.call('HSET', KEYS[1], 'p:' .. part, status)
local c = redis.call('HMGET', KEYS[1], 'segments', 'carrier', 'emitted', 'to', 'nf')
if parts == 0 then parts = tonumber(c[1] or '1') end
if carrier ~= '' and c[2] and carrier ~= c[2] and c[5] then
  -- the number was ported: remember its carrier (field `nf`: the keyed digest admission looks up)
  redis.call('HSET', KEYS[2], c[5], carrier)
  redis.call('HSET', KEYS[1], 'carrier', carrier)
end
local agg, delivered = nil, 0
for i = 1, parts do
  local s = redis.call('HGET', KEYS[1], 'p:' .. i)
  if s == 'failed' or s == 'expired' then agg = s end
  if s == 'delivered' then delivered = delivered + 1 end
end
if not agg then
  if delivered == parts then agg = 'delivered'
  elseif parts == 1 then agg = status
  else return {'partial', tostring(delivered), tostring(parts)} end
end
local emitted = c[3]
if emitted and not_forward(rank, emitted, agg) then return {'stale', emitted} end
redis.call('HSET', KEYS[1], 'emitted', agg)
redis.call('PEXPIRE', KEYS[1], ttl)
local e = redis.call('HMGET', KEYS[1], 'source', 'id', 'dossierid', 'accepted_at')
-- the last two: what `undo` (receipts.py) restores when the emit of this status fails
return {'emit', agg, c[4] or '', carrier ~= '' and carrier or (c[2] or ''), e[1] or '', e[2] or '', e[3] or '',
        e[4] or '0', previous or '', emitted or ''}
