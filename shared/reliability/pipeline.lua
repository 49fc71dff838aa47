-- DVC Integrations: the reliability pipeline in one script, so each step is one Redis round trip.
-- ARGV[1] = op, ARGV[2] = JSON spec. Times are Redis server milliseconds (one clock for the fleet).
--   admit    : idempotency claim + breaker check (half-open probe grant) + rate-limit take (GCRA)
--   next     : report a provider's definitive failure, pick the next provider (failover)
--   complete : store the reply, report the provider's result to its breaker, append the audit record
--   release  : give the claim back after an error (keep `prov` when the outcome is ambiguous)
--   take     : a provider's breaker + rate slot for a call outside any event (jobs, drains, lookups)
--   report   : that call's result, to the provider's breaker
-- Redis Cluster splits each step by slot (per-event state on the event's slot, breakers, rate limits,
-- audit and correlation on the kind's slot; pipeline.py orders and combines them):
--   choose   : (kind slot) hint + recipient limit + breaker + rate-limit take, nothing per event
--   claim    : (event slot) idempotency claim naming the chosen provider, refused on a takeover for another;
--              spec.peek: only replay / conflict / busy (a duplicate's answer wins over a refused choice)
--   refund   : (kind slot) give back what `choose` took when the claim was refused
--   assign   : (event slot) record the provider `next` chose (next with spec.noclaim)
--   complete / release with spec.noclaim: only their kind-slot part; with KEYS all the idempotency
--   record and no result/audit/correlation: only their event-slot part
--   admit / complete with spec.idem: the record named in the spec, not in KEYS (a cluster node that serves
--   both slots runs this script with the allow-cross-slot-keys flag: one script as on one node)
-- Replies are flat arrays; shared/reliability/pipeline.py names their fields (one table per op).
local op = ARGV[1]
local spec = cjson.decode(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local function transition(stream, name, from, to, why)
  redis.call('XADD', stream, 'MAXLEN', '~', '10000', '*', 'breaker', name, 'from', from, 'to', to,
             'at', tostring(now), 'why', why)
  return name .. ':' .. from .. '>' .. to
end

-- Breaker admission, read-only. Returns allowed(bool), probe(bool), retry_in_ms.
local function breaker_peek(bkey, p)
  local b = redis.call('HMGET', bkey, 'state', 'opened', 'probe_until', 'forced')
  if b[4] == 'open' then return false, false, 60000 end
  if b[4] == 'closed' then return true, false, 0 end
  local state = b[1] or 'closed'
  if state == 'closed' then return true, false, 0 end
  if state == 'open' then
    local ready = tonumber(b[2] or '0') + p.cool
    if now >= ready then return true, true, 0 end
    return false, false, ready - now
  end
  -- half_open: exactly one probe at a time across the fleet
  local until_ = tonumber(b[3] or '0')
  if until_ > now then return false, false, until_ - now end
  return true, true, 0
end

-- GCRA peek: wait in ms before this call conforms (0 = now). interval 0 = unlimited.
local function gcra_peek(rkey, interval, tolerance)
  if interval <= 0 then return 0, 0 end
  local tat = tonumber(redis.call('GET', rkey) or '0')
  if tat < now then tat = now end
  local wait = tat - tolerance - now
  if wait < 0 then wait = 0 end
  return wait, tat
end

local function gcra_take(rkey, interval, tat)
  if interval <= 0 then return end
  local new_tat = tat + interval
  redis.call('SET', rkey, tostring(new_tat), 'PX', string.format('%d', math.ceil(new_tat - now + 1000)))
end

-- Choose the first provider (in the given order) whose breaker allows and whose rate limit can be met
-- within max_wait. KEYS[p.k] = its breaker key, KEYS[p.k + 1] = its rate key.
local function choose(providers, max_wait, stream)
  local min_wait, min_retry, limited = nil, nil, false
  for _, p in ipairs(providers) do
    local bkey, rkey = KEYS[p.k], KEYS[p.k + 1]
    local allowed, probe, retry_in = breaker_peek(bkey, p)
    if allowed then
      local wait, tat = gcra_peek(rkey, p.ri, p.rt)
      if wait <= max_wait then
        gcra_take(rkey, p.ri, tat)
        if probe then
          local prev = redis.call('HGET', bkey, 'state') or 'closed'
          redis.call('HSET', bkey, 'state', 'half_open', 'probe_until', tostring(now + p.probe))
          if prev ~= 'half_open' then transition(stream, p.name, prev, 'half_open', 'cool-down over') end
        end
        return {p.name, wait, probe and 1 or 0}
      end
      limited = true
      if min_wait == nil or wait < min_wait then min_wait = wait end
    else
      if min_retry == nil or retry_in < min_retry then min_retry = retry_in end
    end
  end
  if limited then return {false, 'limited', min_wait} end
  return {false, 'unavailable', min_retry or 1000}
end

-- Report one call's result to a breaker. outcome: 'ok' | 'fail'. Returns a transition string or ''.
local function report(bkey, stream, r)
  local b = redis.call('HMGET', bkey, 'state', 'fails', 'wstart', 'wcalls', 'wfails', 'forced')
  local state = b[1] or 'closed'
  local pol = r.policy
  if r.outcome == 'ok' then
    if state == 'half_open' or state == 'open' then
      redis.call('HSET', bkey, 'state', 'closed', 'fails', '0', 'wstart', tostring(now), 'wcalls', '0',
                 'wfails', '0', 'probe_until', '0')
      return transition(stream, r.name, state, 'closed', 'probe succeeded')
    end
  end
  if state == 'half_open' and r.outcome == 'fail' then
    redis.call('HSET', bkey, 'state', 'open', 'opened', tostring(now), 'probe_until', '0')
    return transition(stream, r.name, 'half_open', 'open', 'probe failed')
  end
  if state == 'open' then return '' end
  -- closed
  local fails = tonumber(b[2] or '0')
  local wstart, wcalls, wfails = tonumber(b[3] or '0'), tonumber(b[4] or '0'), tonumber(b[5] or '0')
  if now - wstart > pol.win then wstart, wcalls, wfails = now, 0, 0 end
  wcalls = wcalls + 1
  if r.outcome == 'fail' then
    fails = fails + 1
    wfails = wfails + 1
  else
    fails = 0
  end
  local trip = false
  if pol.mode == 'rate' then
    trip = wcalls >= pol.min and (wfails * 100) >= (pol.pct * wcalls)
  else
    trip = fails >= pol.th
  end
  if trip and b[6] ~= 'closed' then
    redis.call('HSET', bkey, 'state', 'open', 'opened', tostring(now), 'fails', '0', 'wstart', tostring(now),
               'wcalls', '0', 'wfails', '0')
    return transition(stream, r.name, 'closed', 'open',
                      pol.mode == 'rate' and 'failure rate over threshold' or 'consecutive failures')
  end
  redis.call('HSET', bkey, 'fails', tostring(fails), 'wstart', tostring(wstart), 'wcalls', tostring(wcalls),
             'wfails', tostring(wfails))
  return ''
end

-- The idempotency record's state: (fields, nil) when the caller may claim it (fresh, or a takeover of an
-- expired lease), else (fields, the answer: conflict | replay | busy).
local function record_state(idem, fp)
  local rec = redis.call('HMGET', idem, 'st', 'fp', 'lease', 'tries', 'prov')
  if rec[1] then
    if rec[2] ~= fp then return rec, {'conflict'} end
    if rec[1] == 'c' then return rec, {'replay', redis.call('HGET', idem, 'resp')} end
    local lease = tonumber(rec[3] or '0')
    if lease > now then return rec, {'busy', lease - now} end
  end
  return rec, nil
end

if op == 'admit' then
  local idem = spec.idem or KEYS[1]  -- spec.idem: a cluster node serving both slots (pipeline.py, _XSLOT)
  if spec.hint then
    -- a reroute hint: the caller routed for value `v` of field `f`; a different stored value (learnt
    -- later, e.g. from receipts) means the candidates must be ranked again for it
    local stored = redis.call('HGET', KEYS[#KEYS], spec.hint.f)
    if stored and stored ~= spec.hint.v then return {'reroute', stored} end
  end
  local rec, answer = record_state(idem, spec.fp)
  if answer then return answer end
  local takeover = rec[1] and 1 or 0
  local tries = tonumber(rec[4] or '0') + 1
  local providers = spec.providers
  if takeover == 1 and rec[5] and rec[5] ~= '' then
    -- the previous attempt may have reached `prov`: only that provider may be asked again
    local only = {}
    for _, p in ipairs(providers) do
      if p.name == rec[5] then only[1] = p end
    end
    providers = only
    if #providers == 0 then return {'unavailable', 1000, rec[5]} end
  end
  local rcpt_limited = 0
  if spec.rcpt and takeover == 0 then
    local wait, tat = gcra_peek(KEYS[2], spec.rcpt.i, spec.rcpt.t)
    if wait > 0 then
      rcpt_limited = 1
    end
  end
  local claim = function(prov)
    redis.call('HSET', idem, 'st', 'p', 'fp', spec.fp, 'lease', tostring(now + spec.lease), 'tries',
               tostring(tries), 'prov', prov or '')
    redis.call('PEXPIRE', idem, string.format('%d', spec.ttl))
  end
  if rcpt_limited == 1 then
    claim(nil)
    return {'recipient_limited', 0, '', takeover, tries}
  end
  local chosen = choose(providers, spec.max_wait, KEYS[3])
  if not chosen[1] then return {chosen[2], chosen[3], rec[5] or ''} end
  if spec.rcpt and takeover == 0 then
    local _, tat = gcra_peek(KEYS[2], spec.rcpt.i, spec.rcpt.t)
    gcra_take(KEYS[2], spec.rcpt.i, tat)
  end
  claim(chosen[1])
  return {'ok', chosen[1], chosen[2], chosen[3], takeover, tries}
elseif op == 'next' then
  local tr = ''
  if spec.failed.count == 1 then tr = report(KEYS[4], KEYS[3], spec.failed) end
  local chosen = choose(spec.providers, spec.max_wait, KEYS[3])
  if not chosen[1] then
    return {chosen[2], chosen[3], tr}
  end
  if not spec.noclaim then redis.call('HSET', KEYS[1], 'prov', chosen[1], 'lease', tostring(now + spec.lease)) end
  return {'ok', chosen[1], chosen[2], chosen[3], tr}
elseif op == 'complete' then
  local tr = ''
  if spec.resp then  -- first: an undeclared record not on this node fails before anything is written
    local idem = spec.idem or KEYS[1]
    redis.call('HSET', idem, 'st', 'c', 'resp', spec.resp)
    redis.call('HDEL', idem, 'lease')
    redis.call('PEXPIRE', idem, string.format('%d', spec.ttl))
  end
  if spec.result then tr = report(KEYS[3], KEYS[2], spec.result) end
  if spec.corr then
    -- correlation: the provider's id for this call -> what later reports (receipts, callbacks) need
    local f = {}
    for k, v in pairs(spec.corr.fields) do f[#f + 1] = k; f[#f + 1] = tostring(v) end
    redis.call('HSET', KEYS[5], unpack(f))
    redis.call('PEXPIRE', KEYS[5], string.format('%d', spec.corr.ttl))
    if spec.corr.lookup then
      redis.call('SET', KEYS[6], spec.corr.id, 'PX', string.format('%d', spec.corr.ttl))
      redis.call('ZADD', KEYS[7], tostring(now), spec.corr.id)
    end
  end
  if spec.audit then
    local fields = {}
    for k, v in pairs(spec.audit) do fields[#fields + 1] = k; fields[#fields + 1] = tostring(v) end
    fields[#fields + 1] = 'at'; fields[#fields + 1] = tostring(now)
    redis.call('XADD', KEYS[4], 'MAXLEN', '~', '1000000', '*', unpack(fields))
  end
  return {'ok', tr}
elseif op == 'take' then
  -- KEYS[1] = breaker stream, KEYS[2] = breaker, KEYS[3] = rate; spec.providers = {the one provider, k = 2}
  local p = spec.providers[1]
  if spec.slot_only == 1 then  -- a further call of one unit of work: the rate slot only
    local wait, tat = gcra_peek(KEYS[3], p.ri, p.rt)
    if wait > spec.max_wait then return {'limited', wait, 0} end
    gcra_take(KEYS[3], p.ri, tat)
    return {'ok', wait, 0}
  end
  local chosen = choose(spec.providers, spec.max_wait, KEYS[1])
  if not chosen[1] then return {chosen[2], chosen[3], 0} end
  return {'ok', chosen[2], chosen[3]}
elseif op == 'report' then
  -- KEYS[1] = breaker stream, KEYS[2] = breaker
  return {'ok', report(KEYS[2], KEYS[1], spec.result)}
elseif op == 'release' then
  local tr = ''
  if spec.result then tr = report(KEYS[3], KEYS[2], spec.result) end
  if spec.noclaim then
  elseif spec.keep then
    redis.call('HSET', KEYS[1], 'lease', '0', 'prov', spec.keep)
  else
    redis.call('DEL', KEYS[1])
  end
  return {'ok', tr}
elseif op == 'choose' then
  -- KEYS as for admit, KEYS[1] any key of the kind's slot. spec.tko: a known takeover (no recipient limit)
  if spec.hint then
    local stored = redis.call('HGET', KEYS[#KEYS], spec.hint.f)
    if stored and stored ~= spec.hint.v then return {'reroute', stored} end
  end
  if spec.rcpt and not spec.tko then
    local wait = gcra_peek(KEYS[2], spec.rcpt.i, spec.rcpt.t)
    if wait > 0 then return {'recipient_limited', 0, '', 0, 0} end
  end
  local chosen = choose(spec.providers, spec.max_wait, KEYS[3])
  if not chosen[1] then return {chosen[2], chosen[3], ''} end
  if spec.rcpt and not spec.tko then
    local _, tat = gcra_peek(KEYS[2], spec.rcpt.i, spec.rcpt.t)
    gcra_take(KEYS[2], spec.rcpt.i, tat)
  end
  return {'ok', chosen[1], chosen[2], chosen[3], 0, 0}
elseif op == 'claim' then
  -- KEYS[1] = the idempotency record. spec.prov: the provider `choose` took ('' = recipient limited)
  local idem = KEYS[1]
  local rec, answer = record_state(idem, spec.fp)
  if answer then return answer end
  local takeover = rec[1] and 1 or 0
  if takeover == 1 then
    if spec.peek then return {'none'} end
    -- the previous attempt may have reached `prov`: only that provider may be asked again
    -- (and a takeover is never recipient-limited: choose again for it, as admit does)
    if spec.prov == '' or (rec[5] and rec[5] ~= '' and rec[5] ~= spec.prov) then
      return {'takeover', rec[5] or ''}
    end
  end
  if spec.peek then return {'none'} end  -- peek: only the answers a duplicate gets before any refusal
  local tries = tonumber(rec[4] or '0') + 1
  redis.call('HSET', idem, 'st', 'p', 'fp', spec.fp, 'lease', tostring(now + spec.lease), 'tries',
             tostring(tries), 'prov', spec.prov)
  redis.call('PEXPIRE', idem, string.format('%d', spec.ttl))
  return {'ok', takeover, tries}
elseif op == 'refund' then
  -- KEYS[1] = the recipient's rate key (or any kind-slot key), KEYS[2] = breaker, KEYS[3] = provider rate
  local function give_back(rkey, interval)
    if interval <= 0 then return end
    local tat = tonumber(redis.call('GET', rkey) or '0') - interval
    if tat <= now then redis.call('DEL', rkey) else
      redis.call('SET', rkey, tostring(tat), 'PX', string.format('%d', math.ceil(tat - now + 1000)))
    end
  end
  if spec.rcpt then give_back(KEYS[1], spec.rcpt) end
  if spec.ri then give_back(KEYS[3], spec.ri) end
  if spec.probe and redis.call('HGET', KEYS[2], 'state') == 'half_open' then
    redis.call('HSET', KEYS[2], 'probe_until', '0')
  end
  return {'ok'}
elseif op == 'assign' then
  redis.call('HSET', KEYS[1], 'prov', spec.prov, 'lease', tostring(now + spec.lease))
  return {'ok'}
end
return redis.error_reply('unknown op ' .. tostring(op))
