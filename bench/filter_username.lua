-- GET /Users?filter=userName eq "userN", N uniformly random over the loaded users.
dofile(os.getenv("BENCH_DIR") .. "/common.lua")
local users = tonumber(bench.env("BENCH_USERS"))

function init(args)
  bench.init_thread()
end

function request()
  local n = math.random(0, users - 1)
  return wrk.format("GET", bench.base .. "/Users?filter=userName%20eq%20%22user" .. n .. "%22", bench.headers)
end
