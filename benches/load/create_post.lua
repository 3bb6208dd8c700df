-- POST /api/posts as the logged-in bench user (TOKEN from the environment): one write each.
local token = os.getenv("TOKEN") or ""
local n = 0
request = function()
  n = n + 1
  local body = '{"title":"load ' .. n .. '","body":"a post written by wrk, number ' .. n .. '"}'
  return wrk.format("POST", "/api/posts",
    { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token }, body)
end
