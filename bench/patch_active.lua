-- PATCH /Users/{id}: replace "active", alternating false/true, random user.
dofile(os.getenv("BENCH_DIR") .. "/common.lua")
local ids
local flip = false
local body_false = '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],' ..
  '"Operations":[{"op":"replace","path":"active","value":false}]}'
local body_true = '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],' ..
  '"Operations":[{"op":"replace","path":"active","value":true}]}'

function init(args)
  bench.init_thread()
  ids = bench.read_lines(bench.data .. "/user_ids.txt")
end

function request()
  flip = not flip
  return wrk.format("PATCH", bench.base .. "/Users/" .. ids[math.random(#ids)], bench.json_headers,
    flip and body_false or body_true)
end
