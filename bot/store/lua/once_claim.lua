-- Claim a token the first time it is seen. KEYS[1] the token's key; ARGV[1] this claim's id,
-- ARGV[2] ttl seconds. 1 when the claim is ours (new, or our own claim sent again after a
-- broken connection: redis-py's retry during a failover), 0 when someone else claimed it.
local holder = redis.call("GET", KEYS[1])
if holder == false then
  redis.call("SET", KEYS[1], ARGV[1], "EX", ARGV[2])
  return 1
end
if holder == ARGV[1] then
  return 1
end
return 0
