-- Append an audit entry that changes no grant (policy reload, reconciler report, ...).
-- KEYS[1] audit stream, KEYS[2] audit head; ARGV[1] expected head, ARGV[2] body, ARGV[3] its
-- entry hash. Returns {"ok", entry id} | {"head", current head}.
local moved = audit_moved(KEYS[2], ARGV[1])
if moved then return {"head", moved} end
local id = audit_append(KEYS[1], KEYS[2], ARGV[1], {{ARGV[2], ARGV[3]}})
return {"ok", id}
