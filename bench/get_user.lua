-- GET /Users/{id}, id uniformly random over the loaded users.
dofile(os.getenv("BENCH_DIR") .. "/common.lua")
local ids

function init(args)
  bench.init_thread()
  ids = bench.read_lines(bench.data .. "/user_ids.txt")
end

function request()
  return wrk.format("GET", bench.base .. "/Users/" .. ids[math.random(#ids)], bench.headers)
end
