-- POST /counters/c1/increment with the same body as the autocannon counter hammer.
wrk.method = "POST"
wrk.body = '{"by":1}'
wrk.headers["Content-Type"] = "application/json"
dofile("report.lua")
