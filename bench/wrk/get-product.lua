-- GET /products/{random id in 1..10000} (the seeded ids, bench/lib/seed.ts SEED_PRODUCTS), like the autocannon
-- read-only scenario, for a generator that does not saturate a core building random paths.
math.randomseed(os.time())
request = function()
  return wrk.format("GET", "/products/" .. math.random(1, 10000))
end
dofile("report.lua")
