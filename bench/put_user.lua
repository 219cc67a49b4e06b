-- PUT /Users/{id}: replace a random loaded user with its own attributes and a title that
-- alternates between two values, so that every request changes the stored user. userName,
-- emails and active stay as loaded (the other scenarios keep finding the same users).
dofile(os.getenv("BENCH_DIR") .. "/common.lua")
local ids
local flip = false

function init(args)
  bench.init_thread()
  ids = bench.read_lines(bench.data .. "/user_ids.txt")
end

function request()
  flip = not flip
  local k = math.random(#ids)
  local i = k - 1 -- line k of user_ids.txt is user{k-1}
  local name = "user" .. i
  local body = '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"' .. name ..
    '","name":{"givenName":"Bench","familyName":"User' .. i .. '"},"displayName":"Bench User ' .. i ..
    '","title":"' .. (flip and "Engineer" or "Manager") .. '","emails":[{"value":"' .. name ..
    '@bench.example","type":"work","primary":true}],"active":true}'
  return wrk.format("PUT", bench.base .. "/Users/" .. ids[k], bench.json_headers, body)
end
