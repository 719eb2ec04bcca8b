-- Append a signed checkpoint, but only onto the checkpoint the writer chained it to: two
-- replicas that both believe they lead (a lease changing hands) cannot fork the sequence.
-- KEYS[1] checkpoint stream; ARGV[1] id of the newest checkpoint the writer read ("" when
-- none), ARGV[2] payload, ARGV[3] signature. Returns the new id, or false when another
-- checkpoint was appended meanwhile.
local last = redis.call("XREVRANGE", KEYS[1], "+", "-", "COUNT", 1)
local last_id = ""
if #last > 0 then
  last_id = last[1][1]
end
if last_id ~= ARGV[1] then
  return false
end
return redis.call("XADD", KEYS[1], "*", "payload", ARGV[2], "sig", ARGV[3])
