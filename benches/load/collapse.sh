#!/usr/bin/env bash
# Many short runs of the same keep-alive load in a row, to catch a run that collapses (one was
# seen at 21.7k req/s, p99 53 ms, beside ~120k): per run, requests/s, p99 latency and the CPU
# steal of the run. A run below half the median is marked COLLAPSE, and '(steal)' if the
# hypervisor took more than 1% of the CPU during it: only an undisturbed collapse is ours.
# Server pinned to core 0, wrk to core 1, loopback only.
#
#   benches/load/collapse.sh [RUNS] [SECONDS] [PATH] [CONNECTIONS]
#   defaults:                 20     2         /hello.txt 64        (BIN=another binary)
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-20}
secs=${2:-2}
path=${3:-/hello.txt}
conns=${4:-64}
port=18195
bin=${BIN:-target/release/looplight}
[ -n "${BIN:-}" ] || cargo build --release --quiet
work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

taskset -c 0 "$bin" --quiet --addr "127.0.0.1:$port" --root www --db "$work/bench.db" \
    > "$work/out" 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q listening "$work/out" 2>/dev/null && break; sleep 0.05; done

steal_ticks() { awk '/^cpu / {print $9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }
printf '%-4s %10s %10s %8s\n' run 'req/s' p99 'steal%'
: > "$work/runs"
for run in $(seq "$runs"); do
    read -r s0 t0 < <(steal_ticks)
    out=$(taskset -c 1 wrk -t1 -c"$conns" -d"${secs}s" --latency "http://127.0.0.1:$port$path")
    read -r s1 t1 < <(steal_ticks)
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
    steal=$(awk -v s=$((s1 - s0)) -v t=$((t1 - t0)) 'BEGIN { printf "%.1f", 100 * s / (t > 0 ? t : 1) }')
    printf '%-4s %10s %10s %8s\n' "$run" "$rps" "$p99" "$steal"
    echo "$run $rps $steal" >> "$work/runs"
done
median=$(awk '{print $2}' "$work/runs" | sort -n | awk '{a[NR] = $1} END { print a[int((NR + 1) / 2)] }')
echo "median: $median req/s"
awk -v m="$median" '$2 < m / 2 {
    printf "run %s: COLLAPSE %s req/s%s\n", $1, $2, ($3 > 1.0 ? " (steal " $3 "%)" : " (no steal: ours)")
    found = 1
} END { if (!found) print "no collapse" }' "$work/runs"
