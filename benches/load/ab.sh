#!/usr/bin/env bash
# Two looplight binaries under the same wrk load, alternating rounds, so that a change can be
# judged before/after in one run: the server pinned to core 0, wrk to core 1, loopback only.
#
#   benches/load/ab.sh BIN_A BIN_B [PATH] [CONNECTIONS] [SECONDS] [ROUNDS] [PIPELINE]
#   defaults:                       /hello.txt  64          5         3        1
#   PIPELINE > 1 sends that many requests per write (benches/load/pipeline.lua).
#   ROOT=dir serves another directory (default www/); LL_ARGS="--seed-posts 3" adds flags to
#   both binaries (the API's routes need posts to answer 200).
#
# Per run: requests/s, µs of server CPU per request (utime+stime from /proc), and the CPU
# steal of the run (the machine is a shared VM: a run with steal above ~1% is disturbed and
# marked '*'). Then the median of each binary's undisturbed runs (all runs if none is).
set -euo pipefail
cd "$(dirname "$0")/../.."

bin_a=${1:?usage: ab.sh BIN_A BIN_B [PATH] [CONNECTIONS] [SECONDS] [ROUNDS] [PIPELINE]}
bin_b=${2:?usage: ab.sh BIN_A BIN_B [PATH] [CONNECTIONS] [SECONDS] [ROUNDS] [PIPELINE]}
path=${3:-/hello.txt}
read -r -a ll_args <<< "${LL_ARGS:-}"
conns=${4:-64}
secs=${5:-5}
rounds=${6:-3}
pipeline=${7:-1}
port=18190
work=$(mktemp -d)
server=
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

ticks_per_sec=$(getconf CLK_TCK)
steal_ticks() { awk '/^cpu / {print $9}' /proc/stat; }
total_ticks() { awk '/^cpu / {s=0; for (i=2; i<=NF; i++) s+=$i; print s}' /proc/stat; }
server_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

wait_for_port() {
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    echo "server did not start" >&2
    exit 1
}

one_run() { # binary -> "rps us_per_request steal_percent"
    taskset -c 0 "$1" --quiet --addr "127.0.0.1:$port" --root "${ROOT:-www}" --db "$work/bench.db" \
        "${ll_args[@]}" > /dev/null 2>&1 &
    server=$!
    wait_for_port
    local lua=()
    if [ "$pipeline" -gt 1 ]; then
        lua=(-s benches/load/pipeline.lua)
    fi
    local cpu0 steal0 total0 out
    cpu0=$(server_ticks "$server"); steal0=$(steal_ticks); total0=$(total_ticks)
    out=$(taskset -c 1 wrk -t1 -c"$conns" -d"${secs}s" "${lua[@]}" "http://127.0.0.1:$port$path" \
        -- "$pipeline")
    local cpu1 steal1 total1
    cpu1=$(server_ticks "$server"); steal1=$(steal_ticks); total1=$(total_ticks)
    kill "$server"; wait "$server" 2>/dev/null || true; server=
    local requests
    requests=$(echo "$out" | awk '/requests in/ {print $1}')
    awk -v r="$requests" -v s="$secs" -v c=$((cpu1 - cpu0)) -v hz="$ticks_per_sec" \
        -v st=$((steal1 - steal0)) -v tt=$((total1 - total0)) \
        'BEGIN { printf "%.0f %.2f %.1f\n", r / s, c / hz * 1e6 / r, 100 * st / (tt > 0 ? tt : 1) }'
}

median() { sort -n | awk '{a[NR] = $1} END { if (NR) print a[int((NR + 1) / 2)]; else print "-" }'; }

printf '%-4s %-6s %10s %10s %8s\n' run binary 'req/s' 'us/req' 'steal%'
: > "$work/a"; : > "$work/b"
for round in $(seq "$rounds"); do
    for which in a b; do
        bin=$bin_a; [ "$which" = b ] && bin=$bin_b
        read -r rps us steal < <(one_run "$bin")
        mark=' '; disturbed=$(awk -v s="$steal" 'BEGIN { print (s > 1.0) }')
        [ "$disturbed" = 1 ] && mark='*'
        printf '%-4s %-6s %10s %10s %7s%s\n' "$round" "$which" "$rps" "$us" "$steal" "$mark"
        echo "$rps $us $disturbed" >> "$work/$which"
    done
done
for which in a b; do
    file=$work/$which
    clean=$(awk '$3 == 0' "$file")
    [ -z "$clean" ] && clean=$(cat "$file")
    rps=$(echo "$clean" | awk '{print $1}' | median)
    us=$(echo "$clean" | awk '{print $2}' | median)
    printf 'median %s: %s req/s, %s us of server CPU per request\n' "$which" "$rps" "$us"
done
