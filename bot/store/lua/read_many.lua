-- Read many grants in one command (cheaper than a pipeline of HGETs: one request to encode
-- and parse instead of one per grant).
-- KEYS: grant hashes. Returns the grant JSON of each, nil where absent.
local out = {}
for i = 1, #KEYS do
  out[i] = redis.call("HGET", KEYS[i], "d")
end
return out
