-- Remove the jobs whose grant is (still) not live. KEYS[1] records, KEYS[2] run times,
-- KEYS[3] expiries (the live grants). ARGV: job ids. Returns how many were removed.
local n = 0
for _, id in ipairs(ARGV) do
  if redis.call("ZSCORE", KEYS[3], id) == false then
    n = n + redis.call("ZREM", KEYS[2], id)
    redis.call("HDEL", KEYS[1], id)
  end
end
return n
