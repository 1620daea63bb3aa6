-- HTTP/1.1 pipelining for wrk: every write on a connection carries DEPTH
-- back-to-back GET requests, and wrk waits for all DEPTH responses before the
-- next write.  DEPTH is the first script argument (`wrk ... -s pipeline.lua URL -- 16`),
-- default 16.  Headers given with -H (and Host) are included in every request.
--
-- Note: wrk records ONE latency sample per batch (time from the write until the
-- last of the DEPTH responses arrived), so p99 here is a per-batch figure.

local depth = 16
local batch = nil

function init(args)
  depth = tonumber(args[1]) or depth
  local reqs = {}
  for i = 1, depth do
    reqs[i] = wrk.format(nil, nil)
  end
  batch = table.concat(reqs)
end

function request()
  return batch
end
