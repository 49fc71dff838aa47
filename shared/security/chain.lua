-- The audit chain's compare-and-append (shared/security/audit.py): append records computed for the head
-- the caller read, only if the head is still that one; optionally advance an absorb cursor in the same step.
-- KEYS[1] = chain stream, KEYS[2] = head hash {seq, hash}, KEYS[3] = cursor hash (source stream -> last id)
-- ARGV[1] = expected head seq, ARGV[2] = expected head hash,
-- ARGV[3] = JSON {records: [[seq, canonical json, hash], ...], cursor: {f: source, id: last entry id}?}
local spec = cjson.decode(ARGV[3])
local head = redis.call('HMGET', KEYS[2], 'seq', 'hash')
local seq, hash = head[1], head[2]
if not seq then
  seq, hash = ARGV[1], ARGV[2]  -- no head yet: the caller's view (genesis or the sealed state) stands
end
if seq ~= ARGV[1] or hash ~= ARGV[2] then return {'moved', seq, hash} end

local function newer(a, b)  -- stream ids 'ms-n': is a > b ?
  local am, an = string.match(a, '^(%d+)-(%d+)$')
  local bm, bn = string.match(b, '^(%d+)-(%d+)$')
  am, an, bm, bn = tonumber(am), tonumber(an), tonumber(bm), tonumber(bn)
  return am > bm or (am == bm and an > bn)
end

if spec.cursor then
  local cur = redis.call('HGET', KEYS[3], spec.cursor.f)
  if cur and not newer(spec.cursor.id, cur) then return {'stale_cursor', seq, hash} end
end
local expect = tonumber(seq)
local last = hash
for _, r in ipairs(spec.records) do
  expect = expect + 1
  if tonumber(r[1]) ~= expect then return redis.error_reply('audit: record seq ' .. tostring(r[1]) ..
                                                            ' where ' .. expect .. ' was due') end
  redis.call('XADD', KEYS[1], string.format('%d-1', expect), 'r', r[2])
  last = r[3]
end
redis.call('HSET', KEYS[2], 'seq', tostring(expect), 'hash', last)
if spec.cursor then redis.call('HSET', KEYS[3], spec.cursor.f, spec.cursor.id) end
return {'ok', tostring(expect), last}
