-- Read the audit head and many grants in one command (cheaper than a pipeline of HGETs:
-- one request to encode and parse instead of one per grant).
-- KEYS[1] audit head, KEYS[2..] grant hashes. Returns {head, grant JSON...}; nil where absent.
local out = {redis.call("GET", KEYS[1])}
for i = 2, #KEYS do
  out[i] = redis.call("HGET", KEYS[i], "d")
end
return out
