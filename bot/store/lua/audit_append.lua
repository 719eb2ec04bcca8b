-- The audit chain, shared by every script that appends an entry (each carries this prelude).
-- The head key holds "seq hash" of the newest entry ("" when the chain is empty). An entry's
-- hash = sha256(prev .. ":" .. seq .. ":" .. sha256(body)); the client computes it with
-- hashlib from the head it read (SHA-256 in Lua costs ~0.5 ms of Redis's one thread per
-- entry). So a script first checks that the head is still the one the client hashed from
-- (`audit_moved`) and writes nothing when it is not; the entry's seq and prev are then taken
-- from that head here, and `audit verify` recomputes every hash, so a wrong one is detected
-- like any tampering.
local AUDIT_GENESIS = string.rep("0", 64)

-- The current head when it is not `expected` (the script must then write nothing and answer
-- {"head", current}); nil when it is.
local function audit_moved(head_key, expected)
  local head = redis.call("GET", head_key) or ""
  if head ~= expected then
    return head
  end
  return nil
end

-- seq and hash of the entry a head names (0 and the genesis hash for "").
local function audit_position(head)
  if head == "" then
    return 0, AUDIT_GENESIS
  end
  local sp = string.find(head, " ", 1, true)
  return tonumber(string.sub(head, 1, sp - 1)), string.sub(head, sp + 1)
end

-- Append the entries {body, hash} after `head` (checked by audit_moved), then move the head.
-- Returns the last entry's stream id and the new head.
local function audit_append(stream_key, head_key, head, entries)
  local seq, prev = audit_position(head)
  local id = ""
  for _, entry in ipairs(entries) do
    seq = seq + 1
    id = redis.call("XADD", stream_key, "*", "seq", seq, "prev", prev, "body", entry[1],
      "hash", entry[2])
    prev = entry[2]
  end
  local new_head = seq .. " " .. prev
  redis.call("SET", head_key, new_head)
  return id, new_head
end
