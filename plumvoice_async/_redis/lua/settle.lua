-- SETTLE (rules 2, 4, 5), then ADMIT for the caller's queue with what it freed (rule 6: the
-- answer hands tokens over, as the local governor's settle does). ARGV: 11 the lease (admission
-- number), 12 status ('' = no answer), 13 '1' if the answer had X-RateLimit headers, 14 Limit,
-- 15 Remaining, 16 Reset, 17 Date ('' = none), 18 the extra margin (ms) when a Reset must be
-- read without any Date, 19 Retry-After seconds ('' = none), 20 MAX_RESET_WINDOWS, 21 the
-- largest plausible Limit or Remaining, 22 NO_HEADER_PROOF (bucket.py's constants).
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

local function plausible()
  -- Header values that are not finite, negative or implausible are treated as absent (rule 4
  -- of the governor spec): nothing a header says may raise, or keep the bucket from reopening.
  local values = {tonumber(ARGV[14]), tonumber(ARGV[15]), tonumber(ARGV[16])}
  if ARGV[17] ~= '' then values[4] = tonumber(ARGV[17]) end
  for i = 1, 3 do
    local v = values[i]
    if v == nil or v ~= v or v < 0 or v == math.huge then return false end
  end
  local date = values[4]
  if ARGV[17] ~= '' and (date == nil or date ~= date or date < 0 or date == math.huge) then
    return false
  end
  local most = tonumber(ARGV[21])
  if values[1] < 1 or values[1] > most or values[2] > most then return false end
  local horizon = tonumber(ARGV[20]) * window / 1000
  local reset = values[3]
  if reset < 1000000000 then return reset <= horizon end
  -- With no Date: the server's clock as an earlier Date placed it, else ours.
  return reset - (date or (now + (offset or 0)) / 1000) <= horizon
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
  speaks, silent = true, 0
  forget_reported(admitted and tonumber(member) or nil)
  local e, reset = window_of()
  local reported_limit = tonumber(ARGV[14])
  if closed then
    -- A 429 closes the gate until its own end, whatever window we believed current (later,
    -- the same, or an earlier one: servers behind one host may disagree); that window is the
    -- one we know from now on, and its end brings one probe.
    phase, sreset, send, wend, remaining, limit = 'server', reset, e, e, 0, reported_limit
    if e <= now then advance() end
    return 'closed'
  end
  local reported = tonumber(ARGV[15])
  local relation = compare(e, reset)
  if relation > 0 then
    phase, sreset, send, wend, remaining, limit = 'server', reset, e, e, reported, reported_limit
    if e <= now then advance() end
    return 'new window'
  end
  if relation < 0 or phase ~= 'server' then return 'stale' end
  send = math.min(send, e)
  wend = send
  local lowered = reported < remaining
  remaining = math.min(remaining, reported)
  limit = reported_limit
  if send <= now then advance() end
  return lowered and 'lowered' or 'unchanged'
end

local function retry_after()
  -- Seconds a 429 without X-RateLimit headers asked us to wait, if it said (nil: it did not).
  local seconds = tonumber(ARGV[19])
  if seconds == nil or seconds ~= seconds or seconds < 0 then return nil end
  if seconds > tonumber(ARGV[20]) * window / 1000 then return nil end -- implausible
  return seconds
end

local outcome
if ARGV[13] == '1' and plausible() then
  outcome = resync(status == '429')
elseif not admitted then
  outcome = 'unknown'
elseif status == '429' then
  local seconds = retry_after()
  if seconds then
    -- Closed for as long as it said, then one probe (a server without headers: a new local
    -- window instead), whose answer is adopted whatever window it names.
    if phase ~= 'local' then phase, sreset, send = 'server', nil, nil end
    wend = now + seconds * 1000 + margin
  elseif phase == 'probing' then
    open_local()
  end
  remaining = 0
  outcome = 'closed'
else
  redis.call('ZADD', unreported, now + unreported_life, member .. ':' .. (s.seq or '0'))
  if phase ~= 'probing' then
    outcome = 'counted'
  elseif status == '' then
    outcome = 'no answer'
  else
    -- A probe answered without headers (a proxy's error page) says nothing about the window:
    -- keep probing, one request at a time, until enough such answers in a row prove that the
    -- server sends no headers at all.
    silent = silent + 1
    if silent >= tonumber(ARGV[22]) then
      speaks = false
      open_local()
      outcome = 'local'
    else
      outcome = 'probing'
    end
  end
end
local granted = grant()
save()
wake()
return report(admitted and 1 or 0, outcome, granted)
