-- GET a console page as a signed-in operator (BENCH_CONSOLE_SESSION is the session cookie's
-- value). BENCH_CONSOLE_PAGE picks the page of the bench tenant:
--   scim   the SCIM settings page
--   users  the first page of the users list
--   user   a user's page, the user uniformly random over the loaded users
--   group  the page of the group holding every loaded user (its first 25 members)
--   log    the first page of the provisioning log
dofile(os.getenv("BENCH_DIR") .. "/common.lua")
local ids, path, headers
local page = bench.env("BENCH_CONSOLE_PAGE")

function init(args)
  bench.init_thread()
  local tenant = "/console/t/" .. bench.env("BENCH_TENANT", "bench")
  headers = {
    ["Cookie"] = "roster_console=" .. bench.env("BENCH_CONSOLE_SESSION"),
    ["Accept"] = "text/html",
  }
  if page == "scim" then
    path = tenant
  elseif page == "users" then
    path = tenant .. "/users"
  elseif page == "user" then
    ids = bench.read_lines(bench.data .. "/user_ids.txt")
    path = tenant .. "/users/"
  elseif page == "group" then
    path = tenant .. "/groups/" .. bench.read_one(bench.data .. "/big_group_id.txt")
  elseif page == "log" then
    path = tenant .. "/log"
  else
    error("bench: unknown BENCH_CONSOLE_PAGE " .. page)
  end
end

function request()
  if ids then
    return wrk.format("GET", path .. ids[math.random(#ids)], headers)
  end
  return wrk.format("GET", path, headers)
end
