-- wrk script (bench/wrk_load.py): each thread POSTs the request bodies of its own file once, in order, then
-- stops, so every event id is sent exactly once. A file holds one body a line: "<events>\t<json>".
-- BENCH_WRK_DIR: the directory of the files (bodies-1.txt, bodies-2.txt, ...); BENCH_WRK_AUTH: the
-- Authorization header, or empty. done() writes one JSON line of counts to stdout.

local ffi = require("ffi")
ffi.cdef [[
int kill(int pid, int sig);
int getpid(void);
]]

local threads = {}
local next_slice = 1

function setup(thread)
   thread:set("slice", next_slice)
   next_slice = next_slice + 1
   table.insert(threads, thread)
end

local bodies, events = {}, {}
-- Globals, not locals: done() reads them through thread:get().
sent, answered, accepted, failures, ok_posts = 0, 0, 0, 0, 0
first_failure = ""
local post_headers = { ["Content-Type"] = "application/json" }
local filler

function init(args)
   local dir = os.getenv("BENCH_WRK_DIR")
   local auth = os.getenv("BENCH_WRK_AUTH") or ""
   if auth ~= "" then post_headers["Authorization"] = auth end
   local file = assert(io.open(dir .. "/bodies-" .. slice .. ".txt", "r"))
   for line in file:lines() do
      local tab = line:find("\t", 1, true)
      table.insert(events, tonumber(line:sub(1, tab - 1)))
      table.insert(bodies, wrk.format("POST", "/v1/events", post_headers, line:sub(tab + 1)))
   end
   file:close()
   -- Asked for once every body is out and answers are still due: cheap, never counted as a POST.
   filler = wrk.format("GET", "/healthz")
   -- wrk 4.1 calls request() once on the first thread's state before the run, to check the request parses
   -- (script_verify_request); that call must not use up a body, or one would never be sent.
   verifying = slice == 1
end

function request()
   if verifying then
      verifying = false
      return filler
   end
   if sent < #bodies then
      sent = sent + 1
      return bodies[sent]
   end
   return filler
end

function response(status, headers, body)
   local n = body:match('"accepted"%s*:%s*(%d+)')
   if n then
      answered = answered + 1
      accepted = accepted + tonumber(n)
      if status == 200 then ok_posts = ok_posts + 1 end
   elseif status ~= 200 then
      answered = answered + 1
      failures = failures + 1
      if first_failure == "" then first_failure = status .. " " .. body:sub(1, 300) end
   end
   if answered >= #bodies and not finished then
      finished = true
      wrk.thread:stop()
      finish()
   end
end

-- wrk runs for its whole -d even when every thread has stopped: the last thread to finish interrupts it (SIGINT
-- ends wrk's wait early; it reports the time really taken). Threads share no Lua state, so each leaves a file.
function finish()
   local dir = os.getenv("BENCH_WRK_DIR")
   local mark = assert(io.open(dir .. "/done-" .. slice, "w"))
   mark:close()
   for t = 1, tonumber(os.getenv("BENCH_WRK_THREADS")) do
      local other = io.open(dir .. "/done-" .. t, "r")
      if other == nil then return end
      other:close()
   end
   ffi.C.kill(ffi.C.getpid(), 2)
end

local function quoted(s)
   return '"' .. s:gsub('\\', '\\\\'):gsub('"', '\\"'):gsub('%c', ' ') .. '"'
end

function done(summary, latency, requests)
   local sent_total, answered_total, accepted_total, failures_total, ok_total = 0, 0, 0, 0, 0
   local failure = ""
   for _, thread in ipairs(threads) do
      sent_total = sent_total + thread:get("sent")
      answered_total = answered_total + thread:get("answered")
      accepted_total = accepted_total + thread:get("accepted")
      failures_total = failures_total + thread:get("failures")
      ok_total = ok_total + thread:get("ok_posts")
      if failure == "" then failure = thread:get("first_failure") end
   end
   local e = summary.errors
   io.write(string.format(
      '{"duration_us": %d, "requests": %d, "posts_sent": %d, "posts_answered": %d, "posts_ok": %d, '
         .. '"events_accepted": %d, "failed_posts": %d, "first_failure": %s, '
         .. '"socket_errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d}, '
         .. '"latency_us": {"p50": %d, "p90": %d, "p99": %d, "max": %d}}\n',
      summary.duration, summary.requests, sent_total, answered_total, ok_total, accepted_total, failures_total,
      quoted(failure), e.connect, e.read, e.write, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
