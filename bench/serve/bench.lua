-- wrk script for bench/serve/run.sh: one request shape per mode, and a RESULT line at the end.
--   wrk -s bench.lua URL -- hit    TOKEN NUMBER   GET /v1/cid, the same number every request
--   wrk -s bench.lua URL -- fresh  TOKEN          GET /v1/cid, a new number every request
--   wrk -s bench.lua URL -- direct API_KEY NUMBER POST /api/v1/inbound/lookup to the service
--   wrk -s bench.lua URL -- get    PATH           GET PATH (/healthz: the HTTP ceiling)
-- Every mode goes through request(), so each pays the same small Lua cost per request.

local threads = 0

function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end

function init(args)
  mode, secret, number = args[1], args[2], args[3]
  n = 0
  if mode == "hit" then
    fixed = wrk.format("GET", "/v1/cid?number=" .. number:gsub("%+", "%%2B") .. "&key=" .. secret)
  elseif mode == "direct" then
    fixed = wrk.format("POST", "/api/v1/inbound/lookup", {
      ["Authorization"] = "Bearer " .. secret,
      ["Content-Type"] = "application/json",
    }, '{"number":"' .. number .. '"}')
  elseif mode == "get" then
    fixed = wrk.format("GET", secret)
  elseif mode ~= "fresh" then
    error("mode: hit, fresh, direct or get")
  end
end

function request()
  if fixed then
    return fixed
  end
  -- +1 415 NXX XXXX, N in 2-9: valid US numbers, never in the sandbox's directory, none
  -- repeated within a run (each thread has its own block of 1,000,000).
  n = (n + 1) % 1000000
  return wrk.format("GET", string.format("/v1/cid?number=%%2B1415%07d&key=%s",
    2000000 + (tid % 8) * 1000000 + n, secret))
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT requests=%d seconds=%.3f rps=%.1f p50_ms=%.3f p99_ms=%.3f " ..
    "max_ms=%.3f errors=%d non2xx=%d\n",
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    e.connect + e.read + e.write + e.timeout, e.status))
end
