-- wrk script for bench/producer/run: POSTs one position per request,
--   {"name":"bus-17","message_id":"t1-42","lat":52.5xxx,"lon":13.4xxx,
--    "speed":11.2,"heading":87}
-- with Content-Type: application/json, 1000 entity names (so that keys
-- spread over the partitions) and a counter as message_id.
--
-- Requests are formatted ahead in a pool of POOL per thread and cycled, so
-- that wrk spends its CPU on the connections, not on Lua string building
-- (wrk competes with nginx for the same cores).  message_id is unique
-- within a pool; it repeats every POOL requests of a thread, which the
-- module does not care about (it only echoes it).
--
-- done() prints key=value lines that bench/producer/run reads.

local POOL = 4096

local threads = {}
local counter = 1

function setup(thread)
   thread:set("tid", counter)
   counter = counter + 1
   table.insert(threads, thread)
end

local pool = {}
local n = 0

function init(args)
   local headers = { ["Content-Type"] = "application/json" }
   for i = 0, POOL - 1 do
      local body = string.format(
         '{"name":"bus-%d","message_id":"t%d-%d","lat":%.4f,"lon":%.4f,'
            .. '"speed":11.2,"heading":87}',
         (i * 7 + tid * 13) % 1000, tid, i,
         52.5 + (i % 997) / 10000, 13.4 + (i % 991) / 10000)
      pool[i + 1] = wrk.format("POST", wrk.path, headers, body)
   end
end

function request()
   n = n % POOL + 1
   return pool[n]
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format("requests=%d\n", summary.requests))
   io.write(string.format("duration_s=%.3f\n", summary.duration / 1e6))
   io.write(string.format("rps=%.1f\n",
                          summary.requests / (summary.duration / 1e6)))
   io.write(string.format("p50_ms=%.3f\n", latency:percentile(50) / 1000))
   io.write(string.format("p90_ms=%.3f\n", latency:percentile(90) / 1000))
   io.write(string.format("p99_ms=%.3f\n", latency:percentile(99) / 1000))
   io.write(string.format("max_ms=%.3f\n", latency.max / 1000))
   io.write(string.format("non2xx=%d\n", e.status))
   io.write(string.format("sock_errors=%d\n",
                          e.connect + e.read + e.write + e.timeout))
end
