-- wrk script of tests/bench.sh: checks every answer (status 200, body
-- exactly "Hello World") and prints "bad_responses: N" at the end, summed
-- over wrk's threads.
local expected_body = "Hello World"
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  bad = 0
end

function response(status, headers, body)
  if status ~= 200 or body ~= expected_body then
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local total = 0
  for _, t in ipairs(threads) do
    total = total + (t:get("bad") or 0)
  end
  io.write(string.format("bad_responses: %d\n", total))
end
