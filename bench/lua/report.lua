-- wrk script of the bench: optional random paths and extra headers, JSON summary at the end.
--
-- Configured through the environment, because wrk decides whether requests are static by
-- looking for a global `request` when the script is first loaded, before any `init(args)`:
--   BENCH_PATHS    file of request paths, one a line; each request picks one at random
--   BENCH_HEADERS  extra request headers, "Name: value" lines
-- `done` prints one line "BENCH_JSON {...}" with the counts and latency percentiles (µs).

local headers = os.getenv("BENCH_HEADERS")
if headers then
  for line in headers:gmatch("[^\n]+") do
    local name, value = line:match("^([^:]+):%s*(.*)$")
    if name then wrk.headers[name] = value end
  end
end

local paths_file = os.getenv("BENCH_PATHS")
if paths_file then
  local paths = {}
  for line in io.lines(paths_file) do
    if #line > 0 then paths[#paths + 1] = line end
  end

  function init(args)
    math.randomseed(os.time())
  end

  function request()
    return wrk.format(nil, paths[math.random(#paths)])
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"mean":%.1f,"stdev":%.1f,"max":%d,"p50":%d,"p90":%d,"p99":%d,"p999":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.stdev, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9)))
end
