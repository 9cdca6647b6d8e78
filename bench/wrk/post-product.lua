-- POST /products with the same body as the autocannon write scenario.
wrk.method = "POST"
wrk.body = '{"name":"bench product","price":9.99,"description":"created by the benchmark","stock":5}'
wrk.headers["Content-Type"] = "application/json"
dofile("report.lua")
