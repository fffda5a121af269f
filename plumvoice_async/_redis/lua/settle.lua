-- SETTLE (rules 2, 4, 5), then ADMIT for the caller's queues with what it freed (rule 6: the
-- answer hands tokens over, as the local governor's settle does). ARGV: 13 the lease (admission
-- number), 14 status ('' = no answer), 15 '1' if the answer had X-RateLimit headers, 16 Limit,
-- 17 Remaining, 18 Reset, 19 Date ('' = none), 20 the extra margin (ms) when a Reset must be
-- read without any Date, 21 Retry-After seconds ('' = none), 22 MAX_RESET_WINDOWS, 23 the
-- largest plausible Limit or Remaining, 24 NO_HEADER_PROOF (bucket.py's constants).
advance()
local member, status = ARGV[13], ARGV[14]
local admitted = redis.call('ZREM', leases, member) == 1
local was_probe = admitted and member == probe
if was_probe then probe = '' end

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
  local values = {tonumber(ARGV[16]), tonumber(ARGV[17]), tonumber(ARGV[18])}
  if ARGV[19] ~= '' then values[4] = tonumber(ARGV[19]) end
  for i = 1, 3 do
    local v = values[i]
    if v == nil or v ~= v or v < 0 or v == math.huge then return false end
  end
  local date = values[4]
  if ARGV[19] ~= '' and (date == nil or date ~= date or math.abs(date) == math.huge) then
    return false
  end
  local most = tonumber(ARGV[23])
  if values[1] < 1 or values[1] > most or values[2] > most then return false end
  local horizon = tonumber(ARGV[22]) * window / 1000
  local reset = values[3]
  if reset < 1000000000 then return reset <= horizon end
  -- With no Date: the server's clock as an earlier Date placed it, else ours.
  return reset - (date or (now + (offset or 0)) / 1000) <= horizon
end

local function window_of()
  -- The answer's window end on the Redis clock, and its absolute Reset (nil: a delta).
  local reset = tonumber(ARGV[18])
  if reset < 1000000000 then return now + reset * 1000 + margin, nil end
  if ARGV[19] ~= '' then
    local date = tonumber(ARGV[19])
    offset = date * 1000 - now -- Reset - Date: the server's clock only
    return now + math.max(0, reset - date) * 1000 + margin, reset
  end
  if offset then return math.max(now, reset * 1000 - offset) + margin, reset end
  return now + math.max(0, reset * 1000 - now) + margin + tonumber(ARGV[20]), reset
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

local function close(e)
  -- LIMITED: closed until `e`, or a later end already in force.
  if phase == 'closed' then e = math.max(e, wend) end
  phase, wend, known = 'closed', e, false
end

local function resync(closed)
  silent = 0
  forget_reported(admitted and tonumber(member) or nil)
  local e, reset = window_of()
  local relation = compare(e, reset)
  local reported, reported_limit = tonumber(ARGV[17]), tonumber(ARGV[16])
  if closed then
    -- Closed until the 429's own end, whatever window we believed current (rule 1): a
    -- same-window 429 keeps the earliest end any answer implied; a later or an earlier
    -- ("stale") one becomes the window we know, so the probe's answer after it is adopted.
    if relation == 0 and send ~= nil then
      send = math.min(send, e)
    else
      sreset, send = reset, e
    end
    close(e)
    remaining, limit = 0, reported_limit
    return 'closed'
  end
  if relation > 0 then -- LATER: the server's count is the authority
    if phase == 'closed' then
      known = true -- the reopening needs no probe
    else
      phase, wend = 'server', e
    end
    sreset, send, remaining, limit = reset, e, reported, reported_limit
    return 'new window'
  end
  if relation < 0 or phase == 'probing' or phase == 'local' then
    -- EARLIER, or SAME for a window that is over for us: its count says nothing about now.
    if phase == 'local' then phase = 'probing' end
    if phase == 'probing' then wend = nil end
    return 'stale'
  end
  send = math.min(send, e) -- SAME, in 'server' or 'closed'
  if phase == 'server' then wend = send end
  local lowered = reported < remaining
  remaining, limit = math.min(remaining, reported), reported_limit
  return lowered and 'lowered' or 'unchanged'
end

local function close_blind()
  -- A 429 without plausible headers: closed for its Retry-After (ARGV[21]) plus margin, else
  -- until the window we know ends (the next aligned boundary when probing).
  local seconds = tonumber(ARGV[21])
  if seconds ~= nil and not (seconds >= 0 and seconds <= tonumber(ARGV[22]) * window / 1000) then
    seconds = nil -- implausible (nan fails both comparisons)
  end
  if seconds ~= nil then
    -- It ends inside a server window: forget the window, so the probe's answer for that same
    -- window is adopted, not read as stale (bucket.py, _close_blind).
    sreset, send = nil, nil
    close(now + seconds * 1000 + margin)
  elseif phase == 'probing' then
    phase, wend, known = 'closed', next_boundary(), false
  end
  remaining = 0
end

local function count()
  -- A spend no header reports (rule 5); maybe proof that the server sends none.
  redis.call('ZADD', unreported, now + unreported_life, member .. ':' .. (s.seq or '0'))
  if status == '' then return phase == 'probing' and 'no answer' or 'counted' end
  if not (was_probe and phase == 'probing') then return 'counted' end
  -- The probe answered without headers: a proxy's error page proves nothing about the
  -- window, unless it keeps happening.
  silent = silent + 1
  if silent < tonumber(ARGV[24]) then return 'counted' end
  phase = 'local'
  open_local()
  return 'local'
end

local outcome
if ARGV[15] == '1' and plausible() then
  outcome = resync(status == '429')
  advance()
elseif status == '429' then
  close_blind()
  outcome = admitted and 'closed' or 'unknown'
elseif not admitted then
  outcome = 'unknown'
else
  outcome = count()
end
local granted = grant()
save()
wake()
return report(admitted and 1 or 0, outcome, granted)
