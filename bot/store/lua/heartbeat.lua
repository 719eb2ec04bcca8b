-- An end announcer says it is alive, on Redis's clock (so hosts' clocks never disagree).
-- KEYS[1] announcers sorted set; ARGV[1] consumer name, ARGV[2] ttl ms.
-- Also forgets announcers whose heartbeat lapsed. Returns how many are alive.
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call("ZREMRANGEBYSCORE", KEYS[1], "-inf", now)
redis.call("ZADD", KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call("PEXPIRE", KEYS[1], tonumber(ARGV[2]) * 2)
return redis.call("ZCARD", KEYS[1])
