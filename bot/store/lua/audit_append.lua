-- Append one entry to the hash-chained audit stream. Shared by every script that writes.
-- head key holds "seq hash" of the last entry; the genesis hash is 64 zeros.
-- An entry's hash = sha256(prev .. ":" .. seq .. ":" .. sha256(body)); body is canonical JSON
-- built by the client (its digest is computed here, not trusted from the client).
local GENESIS = "0000000000000000000000000000000000000000000000000000000000000000"

local function audit_append(stream_key, head_key, body)
  local head = redis.call("GET", head_key)
  local seq, prev = 0, GENESIS
  if head then
    local sp = string.find(head, " ", 1, true)
    seq = tonumber(string.sub(head, 1, sp - 1))
    prev = string.sub(head, sp + 1)
  end
  seq = seq + 1
  local hash = sha256hex(prev .. ":" .. seq .. ":" .. sha256hex(body))
  local id = redis.call("XADD", stream_key, "*", "seq", seq, "prev", prev, "body", body, "hash", hash)
  redis.call("SET", head_key, seq .. " " .. hash)
  return id
end
