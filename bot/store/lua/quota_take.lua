-- Take one of today's auto-approval slots: INCR, then give the slot back when it went over
-- the limit; EXPIRE on every take. One script, so concurrent takers never see a count that
-- lets more than the limit through.
-- KEYS[1] the counter; ARGV[1] limit, ARGV[2] ttl seconds. Returns the count, or 0 when full.
local n = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
if n > tonumber(ARGV[1]) then
  redis.call('DECR', KEYS[1])
  return 0
end
return n
