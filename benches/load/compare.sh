#!/usr/bin/env bash
# Side-by-side wrk load on the same file from the same directory: looplight, the mio ceiling
# (benches/ceiling.rs: answers without parsing, so only for small files), nginx and lighttpd
# (each if installed), every server pinned to core 0 and wrk to core 1, rounds alternating
# between servers, loopback only.
#
#   benches/load/compare.sh [PATH] [CONNECTIONS] [SECONDS] [ROUNDS] [PIPELINE]
#   defaults:                /hello.txt  64        5         3        1
#   PIPELINE > 1 sends that many requests per write (benches/load/pipeline.lua).
#   ROOT=dir serves another directory; LL_ARGS="--file-cache-bytes 0" adds looplight flags;
#   LL_BIN=path measures another looplight binary; SERVERS="looplight nginx" picks servers.
#
# Needs wrk (apt-get install wrk); nginx and lighttpd are optional (apt-get install nginx
# lighttpd). Per run: requests/s, p99 latency, µs of server CPU per request (utime+stime from
# /proc: comparable across servers whatever wrk gets), and the CPU steal of the run (a shared
# VM: a run with steal above 1% is disturbed, marked '*', and left out of the medians unless
# every run of that server is). Then each server's medians and its ratio to looplight's.
set -euo pipefail
cd "$(dirname "$0")/../.."

path=${1:-/hello.txt}
conns=${2:-64}
secs=${3:-5}
rounds=${4:-3}
pipeline=${5:-1}
root=${ROOT:-$(pwd)/www}
servers=${SERVERS:-looplight ceiling nginx lighttpd}
server_cpu=0
wrk_cpu=1
port=18180

cargo build --release --quiet
ll_bin=${LL_BIN:-target/release/looplight}
ceiling_bin=$(cargo bench --bench ceiling --no-run 2>&1 | grep -o 'target/release/deps/ceiling-[0-9a-f]*' | head -1)
work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

nginx_conf() {
    cat <<CONF
worker_processes 1;
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

lighttpd_conf() {
    cat <<CONF
server.document-root = "$root"
server.bind = "127.0.0.1"
server.port = $port
server.pid-file = "$work/lighttpd.pid"
server.errorlog = "$work/lighttpd-error.log"
server.max-fds = 8192
server.max-connections = 4096
server.max-keep-alive-requests = 100000000
include_shell "/usr/share/lighttpd/create-mime.conf.pl"
CONF
}

start() { # server -> starts it pinned on $server_cpu, sets $pid; false if not installed
    case $1 in
        looplight)
            # shellcheck disable=SC2086 # LL_ARGS is a list of flags
            taskset -c $server_cpu "$ll_bin" --quiet --addr 127.0.0.1:$port --root "$root" \
                --db "$work/bench.db" ${LL_ARGS:-} > /dev/null 2>&1 & ;;
        ceiling)
            taskset -c $server_cpu "$ceiling_bin" --serve 127.0.0.1:$port > /dev/null 2>&1 & ;;
        nginx)
            command -v nginx > /dev/null 2>&1 || [ -x /usr/sbin/nginx ] || return 1
            nginx_conf > "$work/nginx.conf"
            taskset -c $server_cpu "$(command -v nginx || echo /usr/sbin/nginx)" \
                -c "$work/nginx.conf" > /dev/null 2>&1 & ;;
        lighttpd)
            [ -x /usr/sbin/lighttpd ] || return 1
            lighttpd_conf > "$work/lighttpd.conf"
            taskset -c $server_cpu /usr/sbin/lighttpd -D -f "$work/lighttpd.conf" \
                > /dev/null 2>&1 & ;;
    esac
    pid=$!
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    echo "$1 did not start" >&2
    exit 1
}

stop() {
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=
}

ticks_per_sec=$(getconf CLK_TCK)
cpu_ticks() { awk '/^cpu / {print $9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }
# CPU of the server and its children (nginx's worker), in ticks.
server_ticks() {
    local total=0 p
    for p in $pid $(pgrep -P "$pid" || true); do
        total=$((total + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
    done
    echo "$total"
}

one_run() { # server -> "rps p99_ms us_per_request steal%" (or nothing if not installed)
    start "$1" || return 0
    local lua=() s0 t0 c0 s1 t1 c1 out
    [ "$pipeline" -gt 1 ] && lua=(-s benches/load/pipeline.lua)
    read -r s0 t0 < <(cpu_ticks); c0=$(server_ticks)
    out=$(taskset -c $wrk_cpu wrk -t1 -c"$conns" -d"${secs}s" --latency "${lua[@]}" \
        "http://127.0.0.1:$port$path" -- "$pipeline")
    read -r s1 t1 < <(cpu_ticks); c1=$(server_ticks)
    stop
    echo "$out" | awk -v s=$((s1 - s0)) -v t=$((t1 - t0)) -v c=$((c1 - c0)) -v hz="$ticks_per_sec" '
        function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; return v * 1000 }
        /requests in/ { requests = $1 }
        /Requests\/sec/ { rps = $2 }
        /^ +99%/ { p99 = ms($2) }
        END { printf "%s %.2f %.2f %.1f\n", rps, p99, (requests ? c / hz * 1e6 / requests : 0),
                                             100 * s / (t > 0 ? t : 1) }'
}

echo "GET $path, $conns connections, pipeline $pipeline, ${secs}s x $rounds rounds"
for round in $(seq "$rounds"); do
    for server in $servers; do
        result=$(one_run "$server")
        [ -z "$result" ] && continue
        echo "$server $result" >> "$work/runs"
        read -r rps p99 us steal <<< "$result"
        mark=$(awk -v s="$steal" 'BEGIN { print (s > 1 ? "*" : " ") }')
        printf 'round %d %-10s %10.0f req/s  p99 %7.2f ms  %6.2f us/req  steal %4.1f%% %s\n' \
            "$round" "$server" "$rps" "$p99" "$us" "$steal" "$mark"
    done
done

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
column_median() { # column (2 rps, 3 p99, 4 us) of the runs on stdin
    awk -v c="$1" '{print $c}' | median
}

echo "medians (undisturbed runs):"
base=
for server in $servers; do
    grep "^$server " "$work/runs" > "$work/mine" 2>/dev/null || continue
    awk '$5 <= 1' "$work/mine" > "$work/calm"
    [ -s "$work/calm" ] && mv "$work/calm" "$work/mine"
    rps=$(column_median 2 < "$work/mine")
    [ -z "$base" ] && [ "$server" = looplight ] && base=$rps
    printf '%-10s %10.0f req/s  p99 %7.2f ms  %6.2f us/req' "$server" "$rps" \
        "$(column_median 3 < "$work/mine")" "$(column_median 4 < "$work/mine")"
    [ -n "$base" ] && [ "$server" != looplight ] &&
        awk -v a="$base" -v b="$rps" 'BEGIN { printf "  looplight / this: %.2f", a / b }'
    echo
done
