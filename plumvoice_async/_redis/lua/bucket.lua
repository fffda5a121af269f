-- The quota bucket of plumvoice_async/_core/bucket.py, re-stated for Redis (shared part).
-- Every verb script is this file followed by its own body, run atomically by EVALSHA.
-- Time is Redis TIME in milliseconds, the one clock every host shares (Redis >= 5 replicates
-- script effects, so TIME is allowed before writes). Read _core/bucket.py for the rules.
--
-- KEYS: 1 state hash, 2 leases (zset: admission number scored by lease expiry),
--       3 unreported spends (zset: "number:admissions-when-joined" scored by expiry),
--       4 waiting processes (zset: process id scored by when its mark lapses).
-- ARGV: 1 limit, 2 window ms, 3 margin ms, 4 lease ms, 5 key ttl ms, 6 wake channel,
--       7 waiting mark life ms, 8 the calling process's id, 9 now in ms ('' = Redis TIME;
--       anything else is the test seam of _redis_governor.py), 10 how many tokens the calling
--       process's queue wants handed over; the verb's own arguments from 11 on.
local state, leases, unreported, waiting = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local window, margin = tonumber(ARGV[2]), tonumber(ARGV[3])
local lease, ttl, channel = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
local mark_life, origin, want = tonumber(ARGV[7]), ARGV[8], tonumber(ARGV[10])
local unreported_life = window + margin

local now = tonumber(ARGV[9])
if now == nil then
  local clock = redis.call('TIME')
  now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
end

local s = {}
local raw = redis.call('HGETALL', state)
for i = 1, #raw, 2 do s[raw[i]] = raw[i + 1] end
local limit = tonumber(s.limit) or tonumber(ARGV[1])
local phase = s.phase or 'probing'
local remaining = tonumber(s.remaining) or 0
local wend = tonumber(s.wend or '')     -- the current window's end (Redis clock, ms)
local send = tonumber(s.send or '')     -- the last server window's end
local sreset = tonumber(s.sreset or '') -- the last server window's Reset (server epoch s)
local offset = tonumber(s.offset or '') -- server clock - Redis clock (ms), from the last Date
local probe = s.probe or ''             -- admission number of the probe in flight
local speaks = s.speaks ~= '0'          -- whether the server sends X-RateLimit headers

local function open_local()
  -- A window of `limit` tokens ending at the next boundary the last known window implies.
  local anchor = send or wend
  local e
  if anchor == nil then
    e = now + (window - now % window)
  else
    e = anchor + math.max(math.floor((now - anchor) / window) + 1, 1) * window
  end
  phase, wend, remaining = 'local', e, limit
end

local function advance()
  -- What time alone changes: expired leases count as spent, old spends lapse, windows end.
  local seq = tonumber(s.seq) or 0
  for _, member in ipairs(redis.call('ZRANGEBYSCORE', leases, '-inf', now)) do
    redis.call('ZREM', leases, member)
    redis.call('ZADD', unreported, now + unreported_life, member .. ':' .. seq)
    if member == probe then probe = '' end
  end
  redis.call('ZREMRANGEBYSCORE', unreported, '-inf', now)
  if phase == 'probing' or now < wend then return end
  if speaks then
    phase, wend = 'probing', nil
  else
    redis.call('DEL', unreported) -- nothing reports in local windows
    open_local()
  end
end

local function outstanding()
  return redis.call('ZCARD', leases) + redis.call('ZCARD', unreported)
end

local function grantable()
  if phase == 'probing' then
    if probe == '' and limit - outstanding() > 0 then return 1 end
    return 0
  end
  return math.max(0, remaining - outstanding())
end

local function grant()
  -- ADMIT (rule 1) for the caller's queue: up to `want` tokens, as leases, in one round trip.
  -- A caller left waiting marks itself, so that others' answers wake it (see wake).
  local granted = {}
  while #granted < want and grantable() > 0 do
    local number = redis.call('HINCRBY', state, 'seq', 1)
    s.seq = tostring(number)
    redis.call('ZADD', leases, now + lease, number)
    if phase == 'probing' then probe = tostring(number) end
    granted[#granted + 1] = number
  end
  if #granted < want then
    redis.call('ZREMRANGEBYSCORE', waiting, '-inf', now)
    redis.call('ZADD', waiting, now + mark_life, origin)
    redis.call('PEXPIRE', waiting, mark_life)
  else
    redis.call('ZREM', waiting, origin)
  end
  return granted
end

local function next_deadline()
  local d = nil
  if phase ~= 'probing' then d = wend end
  for _, zset in ipairs({leases, unreported}) do
    local first = redis.call('ZRANGE', zset, 0, 0, 'WITHSCORES')
    if first[2] then d = math.min(d or math.huge, tonumber(first[2])) end
  end
  return d
end

local function save()
  redis.call('HSET', state, 'limit', limit, 'phase', phase, 'remaining', remaining,
    'wend', wend or '', 'send', send or '', 'sreset', sreset or '', 'offset', offset or '',
    'probe', probe, 'speaks', speaks and '1' or '0')
  for _, key in ipairs({state, leases, unreported}) do redis.call('PEXPIRE', key, ttl) end
end

local function wake()
  -- Tell the other processes still waiting that the bucket changed; the caller has the reply.
  for _, other in ipairs(redis.call('ZRANGEBYSCORE', waiting, now, '+inf')) do
    if other ~= origin then
      redis.call('PUBLISH', channel, origin)
      return
    end
  end
end

local function report(head, outcome, granted)
  -- {head, outcome, phase, limit, remaining, window end - now, in flight, unreported,
  --  grantable, next deadline - now, {lease numbers granted}}: -1 for "none".
  local deadline = next_deadline()
  return {head, outcome, phase, limit, remaining, wend and (wend - now) or -1,
    redis.call('ZCARD', leases), redis.call('ZCARD', unreported), grantable(),
    deadline and (deadline - now) or -1, granted or {}}
end
