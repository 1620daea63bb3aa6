-- Appended by bench/run.py to every wrk script: prints one machine-readable line
-- with the run summary so the harness does not have to parse wrk's human units.
-- Latencies are in microseconds, duration in microseconds.

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "\nBENCH_WRK_JSON {\"requests\": %.0f, \"duration_us\": %.0f, \"bytes\": %.0f, " ..
    "\"lat_mean_us\": %.3f, \"lat_max_us\": %.0f, \"p50_us\": %.0f, \"p90_us\": %.0f, " ..
    "\"p99_us\": %.0f, \"connect\": %.0f, \"read\": %.0f, \"write\": %.0f, " ..
    "\"status\": %.0f, \"timeout\": %.0f}\n",
    summary.requests, summary.duration, summary.bytes,
    latency.mean, latency.max, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), e.connect, e.read, e.write, e.status, e.timeout))
end
