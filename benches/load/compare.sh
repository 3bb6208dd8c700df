#!/usr/bin/env bash
# Side-by-side wrk load: looplight and nginx serving the same file from the same directory,
# each server pinned to one core and wrk to the other, alternating rounds, loopback only.
#
#   benches/load/compare.sh [PATH] [CONNECTIONS] [SECONDS] [ROUNDS]
#   defaults:                /hello.txt  64        5         3
#   ROOT=dir serves another directory; LL_ARGS="--file-cache-bytes 0" adds looplight flags.
#
# Needs wrk (apt-get install wrk); nginx is optional (apt-get install nginx).
# Prints requests/s per round with the CPU steal of the run (a shared VM: count a run only when
# steal is near zero), the median of each, then the ratio.
set -euo pipefail
cd "$(dirname "$0")/../.."

path=${1:-/hello.txt}
conns=${2:-64}
secs=${3:-5}
rounds=${4:-3}
server_cpu=0
wrk_cpu=1
ll_port=18180
nginx_port=18181
root=${ROOT:-$(pwd)/www}

cargo build --release --quiet
work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

# shellcheck disable=SC2086 # LL_ARGS is a list of flags
taskset -c $server_cpu target/release/looplight --quiet --addr 127.0.0.1:$ll_port --root "$root" \
    --db "$work/bench.db" ${LL_ARGS:-} > "$work/looplight.out" &
pids+=($!)

have_nginx=false
if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then
    have_nginx=true
    cat > "$work/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $work/nginx.pid;
error_log $work/error.log;
events { worker_connections 4096; }
http {
    include /etc/nginx/mime.types;
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000000;
    server { listen 127.0.0.1:$nginx_port; root $root; }
}
CONF
    taskset -c $server_cpu "$(command -v nginx || echo /usr/sbin/nginx)" -c "$work/nginx.conf" &
    pids+=($!)
fi
sleep 0.5

steal_ticks() { awk '/^cpu / {print $9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }
run_wrk() { # url -> "requests/s steal%" (the machine is a shared VM: steal above ~1% = disturbed)
    local s0 t0 s1 t1 rps
    read -r s0 t0 < <(steal_ticks)
    rps=$(taskset -c $wrk_cpu wrk -t1 -c"$conns" -d"${secs}s" "$1" | awk '/Requests\/sec/ {print $2}')
    read -r s1 t1 < <(steal_ticks)
    awk -v r="$rps" -v s=$((s1 - s0)) -v t=$((t1 - t0)) \
        'BEGIN { printf "%s %.1f\n", r, 100 * s / (t > 0 ? t : 1) }'
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

: > "$work/ll"; : > "$work/ngx"
for round in $(seq "$rounds"); do
    read -r ll ll_steal < <(run_wrk "http://127.0.0.1:$ll_port$path"); echo "$ll" >> "$work/ll"
    line="round $round: looplight $ll req/s (steal $ll_steal%)"
    if $have_nginx; then
        read -r ngx ngx_steal < <(run_wrk "http://127.0.0.1:$nginx_port$path"); echo "$ngx" >> "$work/ngx"
        line="$line, nginx $ngx req/s (steal $ngx_steal%)"
    fi
    echo "$line"
done
ll_median=$(median < "$work/ll")
echo "looplight median: $ll_median req/s ($path, $conns connections, ${secs}s x $rounds)"
if $have_nginx; then
    ngx_median=$(median < "$work/ngx")
    echo "nginx median:     $ngx_median req/s"
    awk -v a="$ll_median" -v b="$ngx_median" 'BEGIN {printf "ratio looplight/nginx: %.2f\n", a / b}'
fi
