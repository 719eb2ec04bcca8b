-- The due revocation jobs, soonest first. KEYS[1] run times, KEYS[2] records. ARGV[1] now,
-- ARGV[2] limit. Returns {id, score, record, ...} (record nil when missing).
local due = redis.call("ZRANGEBYSCORE", KEYS[1], "-inf", ARGV[1], "WITHSCORES", "LIMIT", 0,
  tonumber(ARGV[2]))
local out = {}
for i = 1, #due, 2 do
  out[#out + 1] = due[i]
  out[#out + 1] = due[i + 1]
  out[#out + 1] = redis.call("HGET", KEYS[2], due[i])
end
return out
