-- Append an audit entry that changes no grant (policy reload, reconciler report, ...).
-- KEYS[1] audit stream, KEYS[2] audit head; ARGV[1] body. Returns the entry id.
return audit_append(KEYS[1], KEYS[2], ARGV[1])
