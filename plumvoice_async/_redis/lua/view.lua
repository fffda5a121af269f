-- VIEW: the state after what time alone changes (for snapshots).
advance()
save()
return report(0, '')
