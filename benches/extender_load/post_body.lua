-- wrk script for benches/extender_load.rs: POST the request body in $TESSERA_LOAD_BODY.
local path = os.getenv("TESSERA_LOAD_BODY")
local file = assert(io.open(path, "rb"), "cannot open " .. tostring(path))
wrk.method = "POST"
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "application/json"

-- wrk counts answers other than 2xx/3xx as status errors: the run must show none.
done = function(summary, latency, requests)
  io.write(string.format("non-2xx answers: %d, socket errors: %d\n",
    summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
