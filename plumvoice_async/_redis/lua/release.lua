-- RELEASE: an unsent request gives its token back (nothing is charged), to the caller's queue
-- first. ARGV[11]: the lease (admission number).
advance()
local removed = redis.call('ZREM', leases, ARGV[11])
if removed == 1 and ARGV[11] == probe then probe = '' end
local granted = grant()
save()
if removed == 1 then wake() end
return report(removed, '', granted)
