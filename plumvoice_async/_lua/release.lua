-- RELEASE: an unsent request gives its token back; nothing is charged.
-- ARGV[8]: the lease (admission number).
advance()
local removed = redis.call('ZREM', leases, ARGV[8])
if removed == 1 and ARGV[8] == probe then probe = '' end
save()
if removed == 1 then wake('release') end
return report(removed, '')
