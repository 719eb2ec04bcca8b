-- Apply a grant's index updates: a JSON list of [op, key_index, args...] with op one of
-- sadd, srem, zadd, zrem, hincrby (key_index counts from 1 over KEYS). Shared by the commit
-- scripts. Returns nil, or the name of an op it does not know (nothing after it is applied).
local function apply_index_ops(ops_json)
  for _, op in ipairs(cjson.decode(ops_json)) do
    local name, key = op[1], KEYS[op[2]]
    if name == "sadd" then redis.call("SADD", key, op[3])
    elseif name == "srem" then redis.call("SREM", key, op[3])
    elseif name == "zadd" then redis.call("ZADD", key, op[3], op[4])
    elseif name == "zrem" then redis.call("ZREM", key, op[3])
    elseif name == "hincrby" then redis.call("HINCRBY", key, op[3], op[4])
    else return tostring(name) end
  end
  return nil
end
