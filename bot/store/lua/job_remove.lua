-- Remove revocation jobs. KEYS[1] records, KEYS[2] run times. ARGV: pairs (id, score); an
-- empty score removes unconditionally, otherwise only while the job's run time is still that
-- score (a job that was re-scheduled after it was fetched is left alone). Returns how many
-- records were deleted.
local n = 0
for i = 1, #ARGV, 2 do
  local id, score = ARGV[i], ARGV[i + 1]
  if score == "" or tonumber(redis.call("ZSCORE", KEYS[2], id)) == tonumber(score) then
    n = n + redis.call("HDEL", KEYS[1], id)
    redis.call("ZREM", KEYS[2], id)
  end
end
return n
