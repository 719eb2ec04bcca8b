-- Compare-and-set one grant, update its indexes and append its audit entry: one atomic step.
-- KEYS[1] grant hash, KEYS[2] audit stream, KEYS[3] audit head, KEYS[4..] index keys.
-- ARGV[1] expected version ("0" = must not exist yet), ARGV[2] grant JSON, ARGV[3] status,
-- ARGV[4] audit body (canonical JSON), ARGV[5] ops: JSON list of [op, key_index, args...]
-- with op one of sadd, srem, zadd, zrem, hincrby (key_index counts from 1 over KEYS),
-- ARGV[6] the audit head the client hashed from, ARGV[7] the entry's hash.
-- Returns {"ok", new_version, audit_id} | {"conflict", current_version} |
-- {"head", current_head} (nothing written in the last two).
local current = redis.call("HGET", KEYS[1], "v")
local expected = tonumber(ARGV[1])
if (current == false and expected ~= 0) or (current ~= false and tonumber(current) ~= expected) then
  return {"conflict", current or "0"}
end
local moved = audit_moved(KEYS[3], ARGV[6])
if moved then return {"head", moved} end
local version = expected + 1
redis.call("HSET", KEYS[1], "v", version, "s", ARGV[3], "d", ARGV[2])
local bad_op = apply_index_ops(ARGV[5])
if bad_op then return redis.error_reply("unknown index op " .. bad_op) end
local id = audit_append(KEYS[2], KEYS[3], ARGV[6], {{ARGV[4], ARGV[7]}})
return {"ok", tostring(version), id}
