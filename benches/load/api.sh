#!/usr/bin/env bash
# API load in one run: wrk against GET /api/posts/:id and GET /api/search over 10,000 seeded
# posts, each next to the static-file figure, and the p99 latency of a static file while logins
# (argon2 on the helper pool) are running. Server on one core, wrk on the other; loopback only.
#
#   benches/load/api.sh [SECONDS]      (default 5; BIN=path to measure another binary)
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-5}
port=18190
here=benches/load

bin=${BIN:-target/release/looplight}
[ -n "${BIN:-}" ] || cargo build --release --quiet
work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

taskset -c 0 "$bin" --quiet --addr 127.0.0.1:$port --db "$work/bench.db" \
    --seed-posts 10000 > "$work/out" &
pid=$!
for _ in $(seq 100); do grep -q listening "$work/out" 2>/dev/null && break; sleep 0.1; done
base=http://127.0.0.1:$port
curl -sf -o /dev/null -X POST $base/api/auth/register -H 'Content-Type: application/json' \
    -d '{"username":"bench","password":"benchmark-password"}'

rps() { taskset -c 1 wrk -t1 -c64 -d"${secs}s" "$@" | awk '/Requests\/sec/ {print $2}'; }

echo "static /hello.txt:      $(rps $base/hello.txt) req/s"
echo "GET /api/posts/:id:     $(rps -s $here/posts_by_id.lua $base) req/s"
echo "GET /api/search?q=...:  $(rps -s $here/search.lua $base) req/s"
echo "static /hello.txt:      $(rps $base/hello.txt) req/s"

echo "p99 of /hello.txt, alone and while 8 clients log in continuously:"
alone=$(taskset -c 1 wrk -t1 -c8 -d"${secs}s" --latency $base/hello.txt | awk '$1 == "99%" {print $2}')
taskset -c 1 wrk -t1 -c8 -d"$((secs + 2))s" -s $here/login.lua $base/api/auth/login > "$work/login" &
logins=$!
sleep 1
during=$(taskset -c 1 wrk -t1 -c8 -d"${secs}s" --latency $base/hello.txt | awk '$1 == "99%" {print $2}')
wait $logins
echo "  alone: $alone   during logins: $during   (logins/s: $(awk '/Requests\/sec/ {print $2}' "$work/login"))"
