-- Shared by the wrk scenario scripts in bench/ (loaded with dofile()).
-- Configuration comes from the environment, set by bench/run.sh:
--   BENCH_TOKEN      bearer token of the bench tenant
--   BENCH_BASE_PATH  path of the tenant's SCIM base URL, e.g. /scim/v2/bench
--   BENCH_USERS      number of users user0..user{N-1}
--   BENCH_DATA       directory holding user_ids.txt, spare_ids.txt, *_group_id.txt
--   BENCH_RUN_ID     unique string for this run (unique userNames on POST)
--   BENCH_SCENARIO   name printed on the RESULT line
--
-- done() prints one machine-readable line per scenario:
--   RESULT scenario=... requests=... rps=... p50_ms=... p99_ms=... non2xx=... ...

bench = {}

local function env(name, default)
  local v = os.getenv(name)
  if v == nil or v == "" then
    if default == nil then error("bench: environment variable " .. name .. " is not set") end
    return default
  end
  return v
end
bench.env = env

bench.base = env("BENCH_BASE_PATH")
bench.data = env("BENCH_DATA", ".")
bench.headers = {
  ["Authorization"] = "Bearer " .. env("BENCH_TOKEN"),
  ["Accept"] = "application/scim+json",
}
bench.json_headers = {
  ["Authorization"] = "Bearer " .. env("BENCH_TOKEN"),
  ["Accept"] = "application/scim+json",
  ["Content-Type"] = "application/scim+json",
}

function bench.read_lines(path)
  local lines = {}
  local f = assert(io.open(path, "r"), "bench: cannot open " .. path)
  for line in f:lines() do
    if line ~= "" then lines[#lines + 1] = line end
  end
  f:close()
  assert(#lines > 0, "bench: " .. path .. " is empty")
  return lines
end

function bench.read_one(path)
  return bench.read_lines(path)[1]
end

-- Thread numbering: setup() runs in the main Lua state, once per thread,
-- before the threads start; the value becomes the global `tid` in the thread.
-- BENCH_TID_OFFSET shifts the numbers, so that two wrk processes driving two nodes at once
-- (bench/run.sh --nodes 2) give their threads different spare users.
local thread_count = tonumber(os.getenv("BENCH_TID_OFFSET") or "0") or 0
function setup(thread)
  thread_count = thread_count + 1
  thread:set("tid", thread_count)
end

-- Called at the top of each scenario's init(): seeds the PRNG per thread.
function bench.init_thread()
  math.randomseed(os.time() * 1000 + (tid or 0) * 7919)
  for _ = 1, 10 do math.random() end
end

function done(summary, latency, requests)
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    "RESULT scenario=%s requests=%d seconds=%.2f rps=%.1f p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f " ..
    "non2xx=%d connect_errors=%d read_errors=%d write_errors=%d timeouts=%d\n",
    env("BENCH_SCENARIO", "?"), summary.requests, secs, summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000,
    e.status, e.connect, e.read, e.write, e.timeout))
end
