-- Write a revocation job's record and run time.
-- KEYS[1] records hash, KEYS[2] run times. ARGV[1] id, ARGV[2] record, ARGV[3] score or "",
-- ARGV[4] mode: "add" fails (0) if the id exists, "update" fails if it does not, "put" never.
local exists = redis.call("HEXISTS", KEYS[1], ARGV[1]) == 1
if (ARGV[4] == "add" and exists) or (ARGV[4] == "update" and not exists) then return 0 end
redis.call("HSET", KEYS[1], ARGV[1], ARGV[2])
if ARGV[3] == "" then redis.call("ZREM", KEYS[2], ARGV[1])
else redis.call("ZADD", KEYS[2], ARGV[3], ARGV[1]) end
return 1
