-- How many end announcers are alive now, on Redis's clock. KEYS[1] announcers sorted set.
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call("ZCOUNT", KEYS[1], "(" .. now, "+inf")
