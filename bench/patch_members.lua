-- Membership churn on one group: PATCH /Groups/{id} adding or removing ONE member.
--   BENCH_GROUP_FILE   file holding the group id (big_group_id.txt or small_group_id.txt)
--   BENCH_CHURN        spare users per wrk thread (default 100)
-- Thread t owns spare users [(t-1)*C+1 .. t*C] (none of them in the group at the
-- start). Its requests cycle: add spare 1..C one by one, then remove them one by
-- one (path members[value eq "ID"]), and so on: half adds, half removes, and
-- the group size stays within [initial, initial + threads*C]. C is well above
-- the connections per thread, so a member is never removed before it is added.
dofile(os.getenv("BENCH_DIR") .. "/common.lua")
local churn = tonumber(bench.env("BENCH_CHURN", "100"))
local group, mine
local k = 0

function init(args)
  bench.init_thread()
  group = bench.read_one(bench.env("BENCH_GROUP_FILE"))
  local spare = bench.read_lines(bench.data .. "/spare_ids.txt")
  mine = {}
  for i = 1, churn do
    local s = spare[(tid - 1) * churn + i]
    assert(s, "bench: not enough spare users for " .. tid .. " threads x BENCH_CHURN=" .. churn)
    mine[i] = s
  end
end

function request()
  local i = k % (2 * churn)
  k = k + 1
  local body
  if i < churn then
    body = '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],' ..
      '"Operations":[{"op":"add","path":"members","value":[{"value":"' .. mine[i + 1] .. '"}]}]}'
  else
    body = '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],' ..
      '"Operations":[{"op":"remove","path":"members[value eq \\"' .. mine[i - churn + 1] .. '\\"]"}]}'
  end
  -- excludedAttributes=members: the 200 answer would otherwise carry the whole member list
  -- (RFC 7644 §3.5.2 returns the entire resource), which measures JSON size, not the write.
  return wrk.format("PATCH", bench.base .. "/Groups/" .. group .. "?excludedAttributes=members",
    bench.json_headers, body)
end
