-- RELEASE: an unsent request gives its token back (nothing is charged), to the caller's queue
-- first unless other processes waited longer. ARGV[13]: the lease (admission number; '' just
-- updates the caller's mark, as a process whose last waiter left does).
advance()
local removed = redis.call('ZREM', leases, ARGV[13])
if removed == 1 and ARGV[13] == probe then probe = '' end
local granted = grant()
save()
if removed == 1 or reserved then wake() end
return report(removed, '', granted)
