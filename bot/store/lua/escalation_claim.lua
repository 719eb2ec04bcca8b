-- Claim an escalation tier of a pending request, when it is unclaimed or its "asking" lease
-- has lapsed. KEYS[1] the request's escalation hash; ARGV: tier, now, lease seconds, ttl
-- seconds. Returns 1 when claimed, 0 otherwise.
local current = redis.call("HGET", KEYS[1], ARGV[1])
if current then
  if string.sub(current, 1, 7) ~= "asking:" then return 0 end
  if tonumber(string.sub(current, 8)) + tonumber(ARGV[3]) > tonumber(ARGV[2]) then return 0 end
end
redis.call("HSET", KEYS[1], ARGV[1], "asking:" .. ARGV[2])
redis.call("EXPIRE", KEYS[1], ARGV[4])
return 1
