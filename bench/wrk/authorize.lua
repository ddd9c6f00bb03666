-- wrk script: POST /v1/network/authorizations on random bench cards, one unique network
-- transaction id per request, counting approvals (response_code "00") per thread.
-- Arguments: network API key, card id head, number of cards, run tag.

local threads = {}

function setup(thread)
  thread:set("thread_no", #threads + 1)
  table.insert(threads, thread)
end

-- Globals, so that done() can read them from every thread with thread:get().
approved, declined, failed = 0, 0, 0
local sent = 0
local head, cards, tag

local alphabet = "0123456789abcdefghjkmnpqrstvwxyz"

-- The 10 lower-case Crockford base32 digits of n: a bench card's public id is its head plus
-- these (see bench/idscheme.py).
local function base32(n)
  local digits = {}
  for i = 10, 1, -1 do
    local d = n % 32
    digits[i] = alphabet:sub(d + 1, d + 1)
    n = (n - d) / 32
  end
  return table.concat(digits)
end

function init(args)
  head, cards, tag = args[2], tonumber(args[3]), args[4]
  math.randomseed(os.time() + thread_no * 7919)
  wrk.method = "POST"
  wrk.path = "/v1/network/authorizations"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["X-API-Key"] = args[1]
end

function request()
  sent = sent + 1
  local body = string.format(
    '{"card_id":"%s%s","amount":%d,"currency":"EUR","merchant":{"name":"Shop","mcc":"5411",'
      .. '"country":"PL","city":"Warszawa"},"channel":"POS","entry_mode":"CHIP",'
      .. '"network":{"network_transaction_id":"%s-%d-%d"}}',
    head, base32(math.random(1, cards)), math.random(100, 999), tag, thread_no, sent
  )
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  if status ~= 200 then
    failed = failed + 1
  elseif body:find('"response_code":%s*"00"') then
    approved = approved + 1
  else
    declined = declined + 1
  end
end

function done(summary, latency, requests)
  local a, d, f = 0, 0, 0
  for _, thread in ipairs(threads) do
    a = a + thread:get("approved")
    d = d + thread:get("declined")
    f = f + thread:get("failed")
  end
  bench_report(summary, latency, a, d, f)
end

-- One JSON line the harness parses (ping.lua writes the same).
function bench_report(summary, latency, approved_n, declined_n, failed_n)
  local e = summary.errors
  io.write(string.format(
    'BENCH-RESULT {"requests":%d,"duration_s":%.3f,"approved":%d,"declined":%d,'
      .. '"http_errors":%d,"connect_errors":%d,"read_errors":%d,"write_errors":%d,'
      .. '"timeouts":%d,"p50_ms":%.3f,"p90_ms":%.3f,"p95_ms":%.3f,"p99_ms":%.3f,'
      .. '"p999_ms":%.3f,"max_ms":%.3f,"mean_ms":%.3f}\n',
    summary.requests, summary.duration / 1e6, approved_n, declined_n,
    math.max(failed_n, e.status), e.connect, e.read, e.write, e.timeout,
    latency:percentile(50) / 1e3, latency:percentile(90) / 1e3, latency:percentile(95) / 1e3,
    latency:percentile(99) / 1e3, latency:percentile(99.9) / 1e3, latency.max / 1e3,
    latency.mean / 1e3
  ))
end
