-- POST /api/auth/login for the user the api.sh script registers (argon2 on the helper pool).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"username":"bench","password":"benchmark-password"}'
