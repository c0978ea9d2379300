-- wrk script for bench/ack.py: POST pre-generated, encrypted WeCom callbacks to /wecom/callback.
--
--   wrk -t T -c C -d 20s -s bench/wrk_callbacks.lua http://127.0.0.1:PORT -- POOL_FILE T
--
-- POOL_FILE has one callback per line, "<query string>\t<body>". Thread i (0-based) sends lines
-- i, i+T, i+2T, ... in order, so no two requests in a run are the same callback unless a thread runs
-- out and wraps around (counted: distinct < issued). done() prints one line "BENCH {json}" that
-- ack.py parses: wrk's own counters and latency percentiles (microseconds) plus ours. `issued` counts
-- requests handed to wrk to send, including those still in flight when the run stops (the server
-- finishes them, so they show up in the database but not in `completed`).

local threads = {}

function setup(thread)
  thread:set("thread_index", #threads)
  table.insert(threads, thread)
end

function init(args)
  local path, nthreads = args[1], tonumber(args[2])
  local headers = { ["Content-Type"] = "text/xml" }
  reqs = {}
  local line_no = 0
  for line in io.lines(path) do
    if line_no % nthreads == thread_index then
      local tab = line:find("\t", 1, true)
      reqs[#reqs + 1] = wrk.format("POST", "/wecom/callback?" .. line:sub(1, tab - 1), headers,
                                   line:sub(tab + 1))
    end
    line_no = line_no + 1
  end
  pool, issued, non200, cursor = #reqs, 0, 0, 0
  -- wrk calls thread 0's request() once before the run to check it parses; that one is not sent.
  probe_pending = thread_index == 0
end

function request()
  if probe_pending then
    probe_pending = false
    return reqs[1]
  end
  cursor = cursor % pool + 1
  issued = issued + 1
  return reqs[cursor]
end

function response(status, headers, body)
  if status ~= 200 then
    non200 = non200 + 1
  end
end

function done(summary, latency, requests)
  local issued_all, distinct, non200_all = 0, 0, 0
  for _, thread in ipairs(threads) do
    local n = thread:get("issued")
    issued_all = issued_all + n
    distinct = distinct + math.min(n, thread:get("pool"))
    non200_all = non200_all + thread:get("non200")
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"completed": %d, "duration_us": %d, "issued": %d, "distinct": %d, "non200": %d, ' ..
    '"err_connect": %d, "err_read": %d, "err_write": %d, "err_status": %d, "err_timeout": %d, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f}\n',
    summary.requests, summary.duration, issued_all, distinct, non200_all,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
