-- wrk script for bench/load.py: one POST per request, checked on the way back.
-- BENCH_CASE picks the body: record_order | repeat_order | click build one a request; any other case sends
-- the file BENCH_BODY as it is. BENCH_TOKENS is a file of bearer tokens, one a line, taken
-- round-robin (one is enough).
-- A response counts as a failure unless it is a 200 without "errors" in its body.
local case = os.getenv("BENCH_CASE")
local tokens = {}
for line in io.lines(os.getenv("BENCH_TOKENS")) do
  if #line > 0 then tokens[#tokens + 1] = line end
end
local friends = tonumber(os.getenv("BENCH_FRIENDS") or "1")
local codes = tonumber(os.getenv("BENCH_CODES") or "1")
local customers = tonumber(os.getenv("BENCH_CUSTOMERS") or "1")
local currency = os.getenv("BENCH_CURRENCY") or "USD"
local run = os.getenv("BENCH_RUN") or "r"
local nthreads = tonumber(os.getenv("BENCH_THREADS") or "1")

local fixed_body = nil
if os.getenv("BENCH_BODY") then
  local file = io.open(os.getenv("BENCH_BODY"))
  fixed_body = file:read("*a")
  file:close()
end

local bodies = {
  -- Each friend's first order qualifies their pending referral; past the seeded friends the
  -- orders go round again as repeat orders (the script says how many went round).
  record_order = function(n)
    local friend = n % friends + 1
    return string.format(
      '{"query":"mutation($i: OrderInput!) { recordOrder(input: $i) { id } }","variables":{"i":' ..
      '{"externalId":"%s-%d-%d","customerExternalId":"lf%d","amount":4200,"currency":"%s"}}}',
      run, id, n, friend, currency)
  end,
  -- An ordinary repeat order of one of the seeded customers (c1 … cBENCH_CUSTOMERS), who
  -- have ordered before and whose referral, if any, is settled.
  repeat_order = function(n)
    return string.format(
      '{"query":"mutation($i: OrderInput!) { recordOrder(input: $i) { id } }","variables":{"i":' ..
      '{"externalId":"%s-%d-%d","customerExternalId":"c%d","amount":4200,"currency":"%s"}}}',
      run, id, n, (n * 7919 + id) % customers + 1, currency)
  end,
  click = function(n)
    return string.format(
      '{"query":"mutation($c: String!) { trackReferralClick(code: $c) { landingUrl } }",' ..
      '"variables":{"c":"B%010d"}}', (n * 7919 + id) % codes + 1)
  end,
}
local body_of = bodies[case] or function() return fixed_body end

local threads = {}
function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  n = 0
  failures = 0
  sample = nil
end

function request()
  -- Threads interleave their counters, so no two threads build the same order id.
  local k = n * nthreads + id
  n = n + 1
  local token = tokens[k % #tokens + 1]
  return wrk.format("POST", nil, {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. token,
  }, body_of(k))
end

function response(status, headers, body)
  if status ~= 200 or string.find(body, '"errors"', 1, true) then
    failures = failures + 1
    if sample == nil then sample = status .. " " .. string.sub(body, 1, 300) end
  end
end

function done(summary, latency, requests)
  local failed, first = 0, ""
  for _, thread in ipairs(threads) do
    failed = failed + thread:get("failures")
    first = first ~= "" and first or (thread:get("sample") or "")
  end
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests":%d,"duration_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"failures":%d,"socket_errors":%d}\nSAMPLE %s\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, failed,
    e.connect + e.read + e.write + e.timeout, first))
end
