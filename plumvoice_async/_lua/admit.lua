-- ADMIT (rule 1): one token if grantable, as a lease; otherwise mark that somebody waits.
advance()
local number = -1
if grantable() > 0 then
  number = redis.call('HINCRBY', state, 'seq', 1)
  s.seq = tostring(number)
  redis.call('ZADD', leases, now + lease, number)
  if phase == 'probing' then probe = tostring(number) end
else
  redis.call('SET', waiting, '1', 'PX', tonumber(ARGV[7]))
end
save()
return report(number, '')
