-- GET /api/search?q=... cycling through words the seeded posts contain, one and two at a time.
local words = { "epoll", "socket", "buffer", "latency", "kernel", "parser", "session", "cache" }
local n = 0
request = function()
  n = n + 1
  local q = words[n % #words + 1]
  if n % 2 == 0 then q = q .. "%20" .. words[(n * 3) % #words + 1] end
  return wrk.format("GET", "/api/search?q=" .. q)
end
