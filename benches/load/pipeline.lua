-- N requests per write (wrk ... -s pipeline.lua URL -- N): the cost of the request path itself,
-- with the syscalls per request amortized away.
local depth = 16
init = function(args)
  depth = tonumber(args[1]) or depth
  local one = wrk.format(nil, wrk.path)
  request_bytes = string.rep(one, depth)
end
request = function()
  return request_bytes
end
