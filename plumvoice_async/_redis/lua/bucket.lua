-- The quota bucket of plumvoice_async/_core/bucket.py, re-stated for Redis (shared part).
-- Every verb script is this file followed by its own body, run atomically by EVALSHA.
-- Time is Redis TIME in milliseconds, the one clock every host shares (Redis >= 5 replicates
-- script effects, so TIME is allowed before writes). Read _core/bucket.py for the rules.
--
-- KEYS: 1 state hash, 2 leases (zset: admission number scored by lease expiry),
--       3 unreported spends (zset: "number:admissions-when-joined" scored by expiry),
--       4 waiting processes (zset: process id scored by when its mark lapses),
--       5 their interactive turns (zset: process id scored by when it began waiting at that
--         priority, or was last served at it), 6 their interactive wants (hash: process id ->
--         interactive tokens its queue still wants), 7 and 8 the same for bulk.
-- ARGV: 1 limit, 2 window ms, 3 margin ms, 4 lease ms, 5 key ttl ms, 6 wake channel,
--       7 waiting mark life ms, 8 the calling process's id, 9 the reserve (the last tokens of
--       a window, interactive only), 10 now in ms ('' = Redis TIME; anything else is the test
--       seam of _redis/governor.py), 11 and 12 how many tokens the calling process's
--       interactive and bulk queues want handed over; the verb's own arguments from 13 on.
local state, leases, unreported, waiting = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local turns = {interactive = KEYS[5], bulk = KEYS[7]}
local wants = {interactive = KEYS[6], bulk = KEYS[8]}
local window, margin = tonumber(ARGV[2]), tonumber(ARGV[3])
local lease, ttl, channel = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
local mark_life, origin, reserve = tonumber(ARGV[7]), ARGV[8], tonumber(ARGV[9])
local want = {interactive = tonumber(ARGV[11]), bulk = tonumber(ARGV[12])}
local unreported_life = window + margin

local now = tonumber(ARGV[10])
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
local silent = tonumber(s.silent) or 0  -- probes answered without headers in a row
local known = s.known == '1'            -- a later window's count came while closed

-- Phases as bucket.py's TRANSITIONS table: 'probing', 'server', 'local', 'closed'. Every phase
-- change below is one of its rows; 'probing' always goes with wend = nil.

local function next_boundary()
  -- The next window boundary: those the last known window implies, else the epoch's.
  local anchor = send or wend
  if anchor == nil then return now + (window - now % window) end
  return anchor + math.max(math.floor((now - anchor) / window) + 1, 1) * window
end

local function open_local()
  -- A local window of `limit` tokens, ending at the next aligned boundary.
  wend, remaining = next_boundary(), limit
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
  if phase == 'local' then -- END: the next local window
    redis.call('DEL', unreported) -- nothing reports in local windows
    open_local()
    return
  end
  if phase == 'closed' and known then
    known = false
    if now < send then -- END_KNOWN: the later window's count is the probe's answer already
      phase, wend = 'server', send
      return
    end
  end
  phase, wend = 'probing', nil -- END: one probe
end

local function outstanding()
  return redis.call('ZCARD', leases) + redis.call('ZCARD', unreported)
end

local function grantable()
  if phase == 'closed' then return 0 end
  if phase == 'probing' then
    if probe == '' and limit - outstanding() > 0 then return 1 end
    return 0
  end
  return math.max(0, remaining - outstanding())
end

local reserved = false -- tokens left for processes that waited longer: they must hear of it

local function forget_lapsed_marks()
  for _, other in ipairs(redis.call('ZRANGEBYSCORE', waiting, '-inf', now)) do
    redis.call('ZREM', waiting, other)
    for _, priority in ipairs({'interactive', 'bulk'}) do
      redis.call('ZREM', turns[priority], other)
      redis.call('HDEL', wants[priority], other)
    end
  end
end

local function owed_ahead(priority, everyone)
  -- Tokens the other processes waiting at `priority` still want: those that waited longer
  -- than the caller (or all of them, `everyone`). They are served first, so no process's
  -- answers keep another's waiters out for more than one window (fairness per priority).
  local mine = tonumber(redis.call('ZSCORE', turns[priority], origin))
  local owed = 0
  local queue = redis.call('ZRANGE', turns[priority], 0, -1, 'WITHSCORES')
  for i = 1, #queue, 2 do
    local other, since = queue[i], tonumber(queue[i + 1])
    if other ~= origin and (everyone or mine == nil or since < mine
        or (since == mine and other < origin)) then
      owed = owed + (tonumber(redis.call('HGET', wants[priority], other)) or 0)
    end
  end
  return owed
end

local function keep_turn(priority, got)
  -- A queue left wanting keeps (or takes) its turn at its priority; one served in part goes
  -- to the back (round robin across processes); one served in full gives its turn up.
  if got < want[priority] then
    if got > 0 then
      redis.call('ZADD', turns[priority], now, origin)
    else
      redis.call('ZADD', turns[priority], 'NX', now, origin)
    end
    redis.call('HSET', wants[priority], origin, want[priority] - got)
  else
    redis.call('ZREM', turns[priority], origin)
    redis.call('HDEL', wants[priority], origin)
  end
end

local function grant()
  -- ADMIT (rule 1) for the caller's queues, interactive first: up to what each wants, as
  -- leases, in one round trip, after what the processes that waited longer at that priority
  -- want (they are woken to take it). Bulk comes after every interactive waiter anywhere and
  -- never takes the last `reserve` tokens of a window (the probe excepted: it is one token,
  -- and either priority may take it). A caller left waiting marks itself, so that others'
  -- answers wake it (see wake) and leave it its turn.
  local granted = {interactive = {}, bulk = {}}
  forget_lapsed_marks()
  local owed = {interactive = 0, bulk = 0}
  if want.interactive > 0 then owed.interactive = owed_ahead('interactive', false) end
  if want.bulk > 0 then
    owed.bulk = owed_ahead('interactive', true) + owed_ahead('bulk', false)
  end
  for _, priority in ipairs({'interactive', 'bulk'}) do
    local floor = owed[priority]
    if priority == 'bulk' and phase ~= 'probing' then
      -- The reserve in force stays below the limit the server last stated (bulk never starves).
      floor = floor + math.min(reserve, limit - 1)
    end
    local mine = granted[priority]
    while #mine < want[priority] and grantable() > floor do
      local number = redis.call('HINCRBY', state, 'seq', 1)
      s.seq = tostring(number)
      redis.call('ZADD', leases, now + lease, number)
      if phase == 'probing' then probe = tostring(number) end
      mine[#mine + 1] = number
    end
    if owed[priority] > 0 and grantable() > 0 then reserved = true end
  end
  local got_i, got_b = #granted.interactive, #granted.bulk
  keep_turn('interactive', got_i)
  keep_turn('bulk', got_b)
  if got_i < want.interactive or got_b < want.bulk then
    redis.call('ZADD', waiting, now + mark_life, origin)
    for _, key in ipairs({waiting, turns.interactive, wants.interactive, turns.bulk,
        wants.bulk}) do
      redis.call('PEXPIRE', key, mark_life)
    end
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
    'probe', probe, 'silent', silent, 'known', known and '1' or '0')
  -- Idle keys vanish: they outlive a closed window's end, then two windows and a lease.
  local life = ttl + math.max(0, (wend or now) - now)
  for _, key in ipairs({state, leases, unreported}) do redis.call('PEXPIRE', key, life) end
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
  --  grantable, next deadline - now, {interactive lease numbers granted}, {bulk ones}}:
  --  -1 for "none".
  local deadline = next_deadline()
  granted = granted or {interactive = {}, bulk = {}}
  return {head, outcome, phase, limit, remaining, wend and (wend - now) or -1,
    redis.call('ZCARD', leases), redis.call('ZCARD', unreported), grantable(),
    deadline and (deadline - now) or -1, granted.interactive, granted.bulk}
end
