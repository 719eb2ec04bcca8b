-- Register a user's SSH public key and audit it: one atomic step.
-- KEYS[1] the user's key string, KEYS[2] audit stream, KEYS[3] audit head.
-- ARGV[1] the public key, ARGV[2] expected audit head, ARGV[3] audit body, ARGV[4] its hash.
-- Returns {"ok", entry id} | {"head", current head} (nothing written).
local moved = audit_moved(KEYS[3], ARGV[2])
if moved then return {"head", moved} end
redis.call("SET", KEYS[1], ARGV[1])
local id = audit_append(KEYS[2], KEYS[3], ARGV[2], {{ARGV[3], ARGV[4]}})
return {"ok", id}
