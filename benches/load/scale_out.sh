#!/usr/bin/env bash
# The API on both backends in one run, then two instances sharing PostgreSQL behind nginx:
# requests/s for GET /api/posts/:id, GET /api/posts (a page), GET /api/search and POST
# /api/posts over 10,000 seeded posts, and chat delivery time across instances. A throwaway
# PostgreSQL cluster is created in a temp dir (run as the postgres OS user when root) and
# removed. Servers (looplight, PostgreSQL, nginx) on core 0, wrk on core 1; loopback only.
#
#   benches/load/scale_out.sh [SECONDS] [MESSAGES]     (defaults 5 and 1000; BIN=another binary)
#
# Needs wrk, nginx and postgresql (apt-get install wrk nginx postgresql). The CPU steal of the
# whole run is printed at the end: above ~1% the figures are disturbed.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-5}
messages=${2:-1000}
here=benches/load
bin=${BIN:-target/release/looplight}
[ -n "${BIN:-}" ] || cargo build --release --quiet
bin=$(realpath "$bin")

work=$(mktemp -d)
chmod 755 "$work"
pids=()
pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
as_pg() { if [ "$(id -u)" = 0 ]; then su postgres -c "$*"; else sh -c "$*"; fi; }
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    as_pg "$pg_bin/pg_ctl -D $work/pg/data stop -m immediate" > /dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
steal() { awk '/^cpu / {print $9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }
read -r steal0 total0 < <(steal)

# PostgreSQL on core 0, like the instances.
mkdir -p "$work/pg"
[ "$(id -u)" = 0 ] && chown postgres "$work/pg"
pg_port=18400
as_pg "$pg_bin/initdb -D $work/pg/data -A trust -U postgres" > /dev/null
as_pg "taskset -c 0 $pg_bin/pg_ctl -D $work/pg/data -l $work/pg/log -w \
    -o '-p $pg_port -k $work/pg -c listen_addresses=127.0.0.1' start" > /dev/null
db_url() { # name -> URL of a new database
    as_pg "$pg_bin/psql -q -h 127.0.0.1 -p $pg_port -U postgres -c 'CREATE DATABASE $1'"
    echo "postgres://postgres@127.0.0.1:$pg_port/$1"
}

start() { # port db extra-args... -> starts an instance, waits until it listens
    local port=$1 db=$2
    shift 2
    taskset -c 0 "$bin" --quiet --addr "127.0.0.1:$port" --root www --db "$db" "$@" \
        > "$work/ll-$port.out" 2>&1 &
    pids+=($!)
    for _ in $(seq 200); do grep -q listening "$work/ll-$port.out" 2>/dev/null && return; sleep 0.05; done
    echo "instance on :$port did not start" >&2
    cat "$work/ll-$port.out" >&2
    exit 1
}
token() { # base URL -> a session token for the bench user (registered once per database)
    curl -s -o /dev/null -X POST "$1/api/auth/register" -H 'Content-Type: application/json' \
        -d '{"username":"bench","password":"benchmark-password"}'
    curl -sf -X POST "$1/api/auth/login" -H 'Content-Type: application/json' \
        -d '{"username":"bench","password":"benchmark-password"}' |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])'
}
rps() { taskset -c 1 wrk -t1 -c64 -d"${secs}s" "$@" | awk '/Requests\/sec/ {print $2}'; }
routes() { # base URL, token -> one line of figures
    local base=$1
    printf '%10s %10s %10s %10s\n' \
        "$(rps -s $here/posts_by_id.lua "$base")" \
        "$(rps "$base/api/posts?limit=20")" \
        "$(rps -s $here/search.lua "$base")" \
        "$(TOKEN=$2 rps -s $here/create_post.lua "$base")"
}

printf '%-34s %10s %10s %10s %10s   (req/s)\n' setup 'posts/:id' 'list' 'search' 'create'
start 18401 "$work/bench.db" --seed-posts 10000
printf '%-34s ' 'one instance, SQLite'
routes http://127.0.0.1:18401 "$(token http://127.0.0.1:18401)"
kill "${pids[-1]}"

pg=$(db_url bench)
start 18402 "$pg" --seed-posts 10000
printf '%-34s ' 'one instance, PostgreSQL'
routes http://127.0.0.1:18402 "$(token http://127.0.0.1:18402)"

start 18403 "$pg"
cat > "$work/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $work/nginx-body;
    proxy_temp_path $work/nginx-proxy;
    upstream looplight {
        server 127.0.0.1:18402;
        server 127.0.0.1:18403;
        keepalive 64;
    }
    server {
        listen 127.0.0.1:18404;
        location / {
            proxy_pass http://looplight;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
CONF
taskset -c 0 "$(command -v nginx || echo /usr/sbin/nginx)" -c "$work/nginx.conf" &
pids+=($!)
for _ in $(seq 100); do curl -sf -o /dev/null http://127.0.0.1:18404/healthz && break; sleep 0.05; done
printf '%-34s ' 'nginx, two instances, PostgreSQL'
routes http://127.0.0.1:18404 "$(token http://127.0.0.1:18404)"

python3 $here/chat_across.py 18402 18403 "$(token http://127.0.0.1:18402)" "$messages"

read -r steal1 total1 < <(steal)
awk -v s=$((steal1 - steal0)) -v t=$((total1 - total0)) \
    'BEGIN { printf "CPU steal during the run: %.1f%%\n", 100 * s / (t > 0 ? t : 1) }'
