-- GET /api/posts/:id for random ids in 1..10000 (a database seeded with --seed-posts 10000).
math.randomseed(42)
request = function()
  return wrk.format("GET", "/api/posts/" .. math.random(1, 10000))
end
