-- Compare-and-set a batch of grants and append their audit entries: one atomic step.
-- Used for bulk expiry. The client computed each entry's chain hash: SHA-256 in Redis Lua
-- costs ~60 us per 64-byte block (~0.5 ms per entry), which would cap a burst of expiries at
-- ~2,000 a second on Redis's one thread. This script keeps the chain gapless by checking that
-- the head is the one the client hashed from; seq and prev are taken from that head here, and
-- AuditLog.verify() recomputes every hash, so a wrong hash is detected like any tampering.
-- Nothing is written unless the head and every grant's version are as the client read them.
--
-- KEYS[1] audit stream, KEYS[2] audit head, KEYS[3..] grant hashes and index keys.
-- ARGV[1] expected head ("" when the chain is empty), ARGV[2..] one item per grant, packed
-- into one argument (per-argument encoding dominates the client's cost of a big call):
--   "<grant key index> <expected version> <status> <entry hash> <body bytes> <ops bytes>\n"
--   followed by the audit body, the index ops JSON and the grant JSON, back to back.
-- Index ops are [op, key_index, args...] as in commit.lua; key indexes count over KEYS.
-- Returns {"ok", last_entry_id, new_head} | {"head", current_head} | {"conflict", item, ...}
-- (items numbered from 1).
local GENESIS = string.rep("0", 64)
local HEADER = "^(%d+) (%d+) (%u[%u_]*) (%x+) (%d+) (%d+)$"

local head = redis.call("GET", KEYS[2]) or ""
if head ~= ARGV[1] then
  return {"head", head}
end

local items = {}
local conflicts = {"conflict"}
for i = 2, #ARGV do
  local raw = ARGV[i]
  local nl = string.find(raw, "\n", 1, true)
  local key_i, version, status, hash, body_n, ops_n = string.match(string.sub(raw, 1, nl - 1), HEADER)
  if not key_i then
    return redis.error_reply("malformed item " .. (i - 1))
  end
  local key = KEYS[tonumber(key_i)]
  local item = {key = key, version = tonumber(version), status = status, hash = hash,
    raw = raw, at = nl + 1, body_n = tonumber(body_n), ops_n = tonumber(ops_n)}
  items[#items + 1] = item
  local current = redis.call("HGET", key, "v")
  if current == false or tonumber(current) ~= item.version then
    conflicts[#conflicts + 1] = i - 1
  end
end
if #conflicts > 1 then
  return conflicts
end

local seq, prev = 0, GENESIS
if head ~= "" then
  local sp = string.find(head, " ", 1, true)
  seq = tonumber(string.sub(head, 1, sp - 1))
  prev = string.sub(head, sp + 1)
end

local id = ""
for _, item in ipairs(items) do
  local body_end = item.at + item.body_n - 1
  local ops_end = body_end + item.ops_n
  local body = string.sub(item.raw, item.at, body_end)
  local ops = string.sub(item.raw, body_end + 1, ops_end)
  redis.call("HSET", item.key, "v", item.version + 1, "s", item.status,
    "d", string.sub(item.raw, ops_end + 1))
  local bad_op = apply_index_ops(ops)
  if bad_op then return redis.error_reply("unknown index op " .. bad_op) end
  seq = seq + 1
  id = redis.call("XADD", KEYS[1], "*", "seq", seq, "prev", prev, "body", body,
    "hash", item.hash)
  prev = item.hash
end
local new_head = seq .. " " .. prev
redis.call("SET", KEYS[2], new_head)
return {"ok", id, new_head}
