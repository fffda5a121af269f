-- SETTLE (rules 2, 4, 5), then ADMIT for the caller's queue with what it freed (rule 6: the
-- answer hands tokens over, as the local governor's settle does). ARGV: 11 the lease (admission
-- number), 12 status ('' = no answer), 13 '1' if the answer had X-RateLimit headers, 14 Limit,
-- 15 Remaining, 16 Reset, 17 Date ('' = none), 18 the extra margin (ms) when a Reset must be
-- read without any Date.
advance()
local member, status = ARGV[11], ARGV[12]
local admitted = redis.call('ZREM', leases, member) == 1
if admitted and member == probe then probe = '' end

local function forget_reported(number)
  -- Its own report includes it; a request admitted after a spend joined counts it too.
  for _, entry in ipairs(redis.call('ZRANGE', unreported, 0, -1)) do
    local own, joined = string.match(entry, '^(%d+):(%d+)$')
    if own == member or (number and number > tonumber(joined)) then
      redis.call('ZREM', unreported, entry)
    end
  end
end

local function window_of()
  -- The answer's window end on the Redis clock, and its absolute Reset (nil: a delta).
  local reset = tonumber(ARGV[16])
  if reset < 1000000000 then return now + reset * 1000 + margin, nil end
  if ARGV[17] ~= '' then
    local date = tonumber(ARGV[17])
    offset = date * 1000 - now -- Reset - Date: the server's clock only
    return now + math.max(0, reset - date) * 1000 + margin, reset
  end
  if offset then return math.max(now, reset * 1000 - offset) + margin, reset end
  return now + math.max(0, reset * 1000 - now) + margin + tonumber(ARGV[18]), reset
end

local function compare(e, reset)
  if send == nil then return 1 end
  local difference, tolerance
  if reset and sreset then
    difference, tolerance = reset - sreset, 0.5
  else
    difference, tolerance = e - send, window / 2
  end
  if difference > tolerance then return 1 end
  if difference < -tolerance then return -1 end
  return 0
end

local function resync(closed)
  speaks = true
  forget_reported(admitted and tonumber(member) or nil)
  local e, reset = window_of()
  local reported = closed and 0 or tonumber(ARGV[15])
  local reported_limit = tonumber(ARGV[14])
  local relation = compare(e, reset)
  if relation > 0 then
    phase, sreset, send, wend, remaining = 'server', reset, e, e, reported
    if reported_limit > 0 then limit = reported_limit end
    if e <= now then advance() end
    return closed and 'closed' or 'new window'
  end
  if relation < 0 or phase ~= 'server' then return 'stale' end
  send = math.min(send, e)
  wend = send
  local lowered = reported < remaining
  remaining = math.min(remaining, reported)
  if reported_limit > 0 then limit = reported_limit end
  if send <= now then advance() end
  if closed then return 'closed' end
  return lowered and 'lowered' or 'unchanged'
end

local outcome
if ARGV[13] == '1' then
  outcome = resync(status == '429')
elseif not admitted then
  outcome = 'unknown'
elseif status == '429' then
  if phase == 'probing' then open_local() end
  remaining = 0
  outcome = 'closed'
else
  redis.call('ZADD', unreported, now + unreported_life, member .. ':' .. (s.seq or '0'))
  if phase ~= 'probing' then
    outcome = 'counted'
  elseif status == '' then
    outcome = 'no answer'
  else
    speaks = false
    open_local()
    outcome = 'local'
  end
end
local granted = grant()
save()
wake()
return report(admitted and 1 or 0, outcome, granted)
