-- wrk script of the XenX benchmark. With BENCH_TOKENS_FILE (one access token a line)
-- every request carries the next user's token; with BENCH_CLIENT_IPS=N it also carries
-- the next of N client addresses in X-Forwarded-For (XenX trusts 127.0.0.1 as its
-- proxy in the run). Requests are formatted once in init() and rotated per request, each
-- wrk thread starting at its own offset. Prints one machine-readable summary line
-- (latencies in microseconds).
local threads = 0
setup = function(thread)
  thread:set("index", threads)
  threads = threads + 1
end

local requests = {}
local count = 0
local next_one = 0

init = function(args)
  local tokens = {}
  local file = os.getenv("BENCH_TOKENS_FILE")
  if file ~= nil and file ~= "" then
    for line in io.lines(file) do
      if line ~= "" then tokens[#tokens + 1] = line end
    end
  end
  local ips = tonumber(os.getenv("BENCH_CLIENT_IPS") or "0") or 0
  count = math.max(#tokens, ips)
  for i = 1, count do
    local headers = {}
    if #tokens > 0 then
      headers["Authorization"] = "Bearer " .. tokens[(i - 1) % #tokens + 1]
    end
    if ips > 0 then
      local k = (i - 1) % ips
      headers["X-Forwarded-For"] = string.format(
        "10.%d.%d.%d", math.floor(k / 65536) % 256, math.floor(k / 256) % 256, k % 256)
    end
    requests[i] = wrk.format(nil, nil, headers)
  end
  if count > 0 then
    next_one = math.floor((index or 0) * count / 2) % count
  end
end

request = function()
  if count == 0 then
    return wrk.format()
  end
  next_one = next_one % count + 1
  return requests[next_one]
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH_RESULT requests=%d duration_us=%d bytes=%d connect=%d read=%d write=%d " ..
    "timeout=%d status=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d mean_us=%.1f\n",
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
    e.timeout, e.status, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean))
end
