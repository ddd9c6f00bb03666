-- wrk script: the mixed run. Authorizations as in authorize.lua, and after each approved one a
-- follow-up message on the same authorization: 8 in 10 a clearing of the held amount, 1 in 10 a
-- full reversal, 1 in 10 an incremental authorization of 1.00-9.99 EUR. Counts approvals
-- (response_code "00"), declines and HTTP errors per kind of message.
-- Arguments: network API key, card id head, number of cards, run tag.
--
-- wrk hands request() and response() no connection: each thread keeps a queue of approved
-- authorizations awaiting their follow-up. response() runs before its connection asks
-- request() for the next message, so a follow-up is never sent before its authorization's
-- answer arrived; it goes out on whichever of the thread's connections asks first. Which kind
-- an answer is for is read back from X-Request-Id, which cardcore echoes: its first letter.

local threads = {}

function setup(thread)
  thread:set("thread_no", #threads + 1)
  table.insert(threads, thread)
end

local kinds = { "authorization", "clearing", "reversal", "increment" }
local paths = {
  authorization = "/v1/network/authorizations",
  clearing = "/v1/network/clearings",
  reversal = "/v1/network/reversals",
  increment = "/v1/network/incremental-authorizations",
}
local kind_of = { a = "authorization", c = "clearing", r = "reversal", i = "increment" }
local outcomes = { "approved", "declined", "failed" }

-- Globals "<kind>_<outcome>", so that done() can read them from every thread with thread:get();
-- "unknown_failed" counts answers without the request id they were sent with.
for _, kind in ipairs(kinds) do
  for _, outcome in ipairs(outcomes) do
    _G[kind .. "_" .. outcome] = 0
  end
end
unknown_failed = 0

local sent, followed = 0, 0
local waiting, first, last = {}, 1, 0 -- approved authorization ids, oldest first
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
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["X-API-Key"] = args[1]
end

-- 8 clearings, 1 reversal and 1 increment in every 10 follow-ups.
local function follow_up_kind(n)
  if n % 10 == 0 then
    return "reversal"
  elseif n % 10 == 5 then
    return "increment"
  end
  return "clearing"
end

function request()
  sent = sent + 1
  -- Unique per run, thread and message; dots, not dashes, so that the request id's digits are
  -- never read as a card number (cardcore would replace such an id with its own).
  local ntx = string.format("%s.%d.%d", tag, thread_no, sent)
  local kind, body
  if first <= last then
    local authorization = waiting[first]
    waiting[first] = nil
    first = first + 1
    followed = followed + 1
    kind = follow_up_kind(followed)
    local amount = ""
    if kind == "increment" then
      amount = string.format(',"amount":%d', math.random(100, 999))
    end
    body = string.format(
      '{"authorization_id":"%s"%s,"network":{"network_transaction_id":"%s"}}',
      authorization, amount, ntx
    )
  else
    kind = "authorization"
    body = string.format(
      '{"card_id":"%s%s","amount":%d,"currency":"EUR","merchant":{"name":"Shop","mcc":"5411",'
        .. '"country":"PL","city":"Warszawa"},"channel":"POS","entry_mode":"CHIP",'
        .. '"network":{"network_transaction_id":"%s"}}',
      head, base32(math.random(1, cards)), math.random(100, 999), ntx
    )
  end
  wrk.headers["X-Request-Id"] = kind:sub(1, 1) .. "." .. ntx
  return wrk.format(nil, paths[kind], nil, body)
end

function response(status, headers, body)
  local id = headers["x-request-id"] or headers["X-Request-Id"] or ""
  local kind = kind_of[id:sub(1, 1)]
  if kind == nil then
    unknown_failed = unknown_failed + 1
    return
  end
  local outcome
  if status ~= 200 then
    outcome = "failed"
  elseif body:find('"response_code":%s*"00"') then
    outcome = "approved"
    if kind == "authorization" then
      local authorization = body:match('"authorization_id":%s*"([^"]+)"')
      if authorization then
        last = last + 1
        waiting[last] = authorization
      end
    end
  else
    outcome = "declined"
  end
  local name = kind .. "_" .. outcome
  _G[name] = _G[name] + 1
end

function done(summary, latency, requests)
  local total = { approved = 0, declined = 0, failed = 0 }
  local parts = {}
  for _, kind in ipairs(kinds) do
    local counts = {}
    for _, outcome in ipairs(outcomes) do
      local n = 0
      for _, thread in ipairs(threads) do
        n = n + thread:get(kind .. "_" .. outcome)
      end
      counts[#counts + 1] = string.format('"%s":%d', outcome, n)
      total[outcome] = total[outcome] + n
    end
    parts[#parts + 1] = string.format('"%s":{%s}', kind, table.concat(counts, ","))
  end
  for _, thread in ipairs(threads) do
    total.failed = total.failed + thread:get("unknown_failed")
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH-RESULT {"requests":%d,"duration_s":%.3f,"approved":%d,"declined":%d,'
      .. '"http_errors":%d,"connect_errors":%d,"read_errors":%d,"write_errors":%d,'
      .. '"timeouts":%d,"p50_ms":%.3f,"p90_ms":%.3f,"p95_ms":%.3f,"p99_ms":%.3f,'
      .. '"p999_ms":%.3f,"max_ms":%.3f,"mean_ms":%.3f,"kinds":{%s}}\n',
    summary.requests, summary.duration / 1e6, total.approved, total.declined,
    math.max(total.failed, e.status), e.connect, e.read, e.write, e.timeout,
    latency:percentile(50) / 1e3, latency:percentile(90) / 1e3, latency:percentile(95) / 1e3,
    latency:percentile(99) / 1e3, latency:percentile(99.9) / 1e3, latency.max / 1e3,
    latency.mean / 1e3, table.concat(parts, ",")
  ))
end
