-- ADMIT (rule 1): tokens for the caller's queue if grantable, as leases; else it is marked.
advance()
local granted = grant()
save()
if reserved then wake() end
return report(#granted, '', granted)
