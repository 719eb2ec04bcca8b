-- Take the lease unless another token holds it. KEYS[1] lease; ARGV[1] our token, ARGV[2] ttl ms.
-- Holding it already counts as taking it (and extends it): a take sent again after a broken
-- connection (redis-py's retry during a failover) must not read its own first take as a rival.
local holder = redis.call("GET", KEYS[1])
if holder == false then
  redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[2])
  return 1
end
if holder == ARGV[1] then
  redis.call("PEXPIRE", KEYS[1], ARGV[2])
  return 1
end
return 0
