-- Compare-and-set a batch of grants and append their audit entries: one atomic step.
-- Used for bulk expiry. Like every appending script, it writes only onto the audit head the
-- client hashed the entries from (see audit_append.lua). Nothing is written unless the head
-- and every grant's version are as the client read them.
--
-- KEYS[1] audit stream, KEYS[2] audit head, KEYS[3..] grant hashes and index keys.
-- ARGV[1] expected head ("" when the chain is empty), ARGV[2..] one item per grant, packed
-- into one argument (per-argument encoding dominates the client's cost of a big call):
--   "<grant key index> <expected version> <status> <entry hash> <body bytes> <ops bytes>\n"
--   followed by the audit body, the index ops JSON and the grant JSON, back to back.
-- Index ops are [op, key_index, args...] as in commit.lua; key indexes count over KEYS.
-- Returns {"ok", last_entry_id, new_head} | {"head", current_head} | {"conflict", item, ...}
-- (items numbered from 1).
local HEADER = "^(%d+) (%d+) (%u[%u_]*) (%x+) (%d+) (%d+)$"

local moved = audit_moved(KEYS[2], ARGV[1])
if moved then
  return {"head", moved}
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

local entries = {}
for n, item in ipairs(items) do
  local body_end = item.at + item.body_n - 1
  local ops_end = body_end + item.ops_n
  redis.call("HSET", item.key, "v", item.version + 1, "s", item.status,
    "d", string.sub(item.raw, ops_end + 1))
  local bad_op = apply_index_ops(string.sub(item.raw, body_end + 1, ops_end))
  if bad_op then return redis.error_reply("unknown index op " .. bad_op) end
  entries[n] = {string.sub(item.raw, item.at, body_end), item.hash}
end
local id, new_head = audit_append(KEYS[1], KEYS[2], ARGV[1], entries)
return {"ok", id, new_head}
