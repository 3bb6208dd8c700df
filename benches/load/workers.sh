#!/usr/bin/env bash
# --workers on a small machine: looplight with 1 and 2 workers against nginx with 1 and 2
# worker processes, then how evenly looplight's workers share connections, then its memory.
#
#   benches/load/workers.sh [SECONDS] [PIPELINE]
#   defaults:               5         16
#
# 1. Throughput: wrk (one thread, pipelining PIPELINE requests per write,
#    benches/load/pipeline.lua) on a small file and a 16 KiB file, 64 connections. With one
#    worker the server is pinned to core 0 and wrk to core 1; with two workers the server may
#    use every core and so competes with wrk: compare the µs of server CPU per request
#    (utime+stime from /proc), which must not grow much with workers, more than req/s.
# 2. Balance: requests and connections per worker (their closing lines on stderr) after wrk
#    with 64 and with 1,000 connections against --workers 2.
# 3. Memory: RSS of --workers 2 at start, and per idle keep-alive connection
#    (benches/load/idle_memory.py, 1,000 connections).
#
# Loopback only. Needs wrk; nginx is optional.
set -euo pipefail
cd "$(dirname "$0")/../.."

secs=${1:-5}
pipeline=${2:-16}
port=18190
cargo build --release --quiet
ll_bin=${LL_BIN:-target/release/looplight}
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

root=$work/root
mkdir -p "$root"
printf 'hello, world\n' > "$root/hello.txt"
head -c 16384 /dev/urandom > "$root/16k.bin"

nginx_conf() { # workers
    cat <<CONF
worker_processes $1;
daemon off;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 4096; }
http {
    include /etc/nginx/mime.types;
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000000;
    server { listen 127.0.0.1:$port; root $root; }
}
CONF
}

wait_listening() {
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    echo "the server did not start" >&2
    exit 1
}

start() { # server workers -> sets $pid
    local cpus=0
    [ "$2" -gt 1 ] && cpus=0-$(($2 - 1))
    case $1 in
        looplight)
            taskset -c "$cpus" "$ll_bin" --quiet --addr 127.0.0.1:$port --root "$root" \
                --db "$work/bench.db" --workers "$2" > /dev/null 2> "$work/stderr" & ;;
        nginx)
            [ -x "$nginx_bin" ] || return 1
            nginx_conf "$2" > "$work/nginx.conf"
            taskset -c "$cpus" "$nginx_bin" -c "$work/nginx.conf" > /dev/null 2>&1 & ;;
    esac
    pid=$!
    wait_listening
}

stop() {
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=
}

ticks_per_sec=$(getconf CLK_TCK)
server_ticks() {
    local total=0 p
    for p in $pid $(pgrep -P "$pid" || true); do
        total=$((total + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
    done
    echo "$total"
}

load() { # path connections -> "rps us_per_request"
    local c0 c1 out
    c0=$(server_ticks)
    out=$(taskset -c 1 wrk -t1 -c"$2" -d"${secs}s" -s benches/load/pipeline.lua \
        "http://127.0.0.1:$port$1" -- "$pipeline")
    c1=$(server_ticks)
    echo "$out" | awk -v c=$((c1 - c0)) -v hz="$ticks_per_sec" '
        /requests in/ { requests = $1 }
        /Requests\/sec/ { rps = $2 }
        END { printf "%s %.2f\n", rps, (requests ? c / hz * 1e6 / requests : 0) }'
}

echo "1. throughput: 64 connections, pipeline $pipeline, ${secs}s per run"
for path in /hello.txt /16k.bin; do
    for server in looplight nginx; do
        for workers in 1 2; do
            start $server $workers || continue
            read -r rps us <<< "$(load $path 64)"
            stop
            printf '%-10s %-10s workers %d  %10.0f req/s  %6.2f us CPU/req\n' \
                "$path" "$server" "$workers" "$rps" "$us"
        done
    done
done

echo "2. balance of looplight --workers 2 (/hello.txt, pipeline $pipeline)"
for conns in 64 1000; do
    start looplight 2
    load /hello.txt $conns > /dev/null
    stop
    echo "$conns connections:"
    grep ' INFO worker ' "$work/stderr" | sed 's/^/    /'
done

echo "3. memory of looplight --workers 2"
start looplight 2
benches/load/idle_memory.py $port "$pid" 1000 /hello.txt | sed 's/^/    /'
stop
