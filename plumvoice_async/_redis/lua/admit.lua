-- ADMIT (rule 1): tokens for the caller's queue if grantable, as leases; else it is marked.
advance()
local granted = grant()
save()
return report(#granted, '', granted)
