-- POST /Users with a unique userName per request (run id, scenario, thread, counter: the
-- scenario keeps create and create_2nodes, whose thread numbers overlap, apart).
dofile(os.getenv("BENCH_DIR") .. "/common.lua")
local run = bench.env("BENCH_RUN_ID") .. "-" .. (os.getenv("BENCH_SCENARIO") or "create")
local k = 0

function init(args)
  bench.init_thread()
end

function request()
  k = k + 1
  local name = "new-" .. run .. "-" .. tid .. "-" .. k
  local body = '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"' .. name ..
    '","name":{"givenName":"New","familyName":"User"},"emails":[{"value":"' .. name ..
    '@bench.example","type":"work","primary":true}],"active":true}'
  return wrk.format("POST", bench.base .. "/Users", bench.json_headers, body)
end
