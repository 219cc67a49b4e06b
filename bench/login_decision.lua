-- POST /api/v1/tenants/{tenant}/login-decision by email (what the host app asks on every
-- sign-in), the user uniformly random over the loaded users (emails userN@bench.example).
--   BENCH_ADMIN_KEY   an operator API key (rsak_...), from `roster admin-key create`
--   BENCH_TENANT      the tenant id (default bench)
dofile(os.getenv("BENCH_DIR") .. "/common.lua")
local users = tonumber(bench.env("BENCH_USERS"))
local path, headers

function init(args)
  bench.init_thread()
  path = "/api/v1/tenants/" .. bench.env("BENCH_TENANT", "bench") .. "/login-decision"
  headers = {
    ["Authorization"] = "Bearer " .. bench.env("BENCH_ADMIN_KEY"),
    ["Accept"] = "application/json",
    ["Content-Type"] = "application/json",
  }
end

function request()
  local n = math.random(0, users - 1)
  return wrk.format("POST", path, headers, '{"email":"user' .. n .. '@bench.example"}')
end
