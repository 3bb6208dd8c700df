#!/usr/bin/env bash
# Runs every fuzz target (or those named) for SECONDS each, one after the other, then
# minimizes its corpus (cargo fuzz cmin, keeping every edge) and prints one summary line per
# target: executions, exec/s, coverage (cov: edges, ft: features), corpus size, crashes. Logs
# and crash artifacts go to fuzz/artifacts/ (not checked in); the minimized corpus replaces
# fuzz/corpus/<target>: commit it, and copy each crash to fuzz/regressions/<target>/.
#
#   fuzz/run-all.sh SECONDS [TARGET...]        e.g. fuzz/run-all.sh 3600
#
# Needs a nightly toolchain and cargo-fuzz (cargo install cargo-fuzz). Runs under nice -n 19,
# one libFuzzer process at a time (JOBS=N: libFuzzer's fork mode, N processes per target).
set -euo pipefail
cd "$(dirname "$0")"

seconds=${1:?usage: run-all.sh SECONDS [TARGET...]}
shift
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(head chunked conn headers paths api tls)
fi
jobs=${JOBS:-1}

# Inputs longer than libFuzzer's default 4 KB reach limits that matter: a chunked line or
# trailer section past its limit, a connection's buffer filling up.
max_len() {
    case "$1" in
        chunked) echo 24576 ;;
        conn) echo 32768 ;;
        *) echo 4096 ;;
    esac
}

mkdir -p artifacts/logs
nice -n 19 cargo +nightly fuzz build >/dev/null

summary=()
for target in "${targets[@]}"; do
    log="artifacts/logs/$target.log"
    mkdir -p "corpus/$target" "artifacts/$target"
    echo "== $target: ${seconds}s (log: fuzz/$log)"
    status=0
    if [ "$jobs" -gt 1 ]; then
        extra=(-fork="$jobs")
    else
        extra=()
    fi
    nice -n 19 cargo +nightly fuzz run "$target" "corpus/$target" -- \
        -max_total_time="$seconds" -max_len="$(max_len "$target")" -timeout=30 \
        -print_final_stats=1 "${extra[@]}" >"$log" 2>&1 || status=$?
    # The last status line libFuzzer printed: "#N ... cov: C ft: F corp: K/S exec/s: E".
    last=$(grep -a -E '^#[0-9]+.*(cov|ft):' "$log" | tail -1 || true)
    execs=$(echo "$last" | sed -E 's/^#([0-9]+).*/\1/')
    cov=$(echo "$last" | grep -oE 'cov: [0-9]+' | cut -d' ' -f2 || true)
    ft=$(echo "$last" | grep -oE 'ft: [0-9]+' | cut -d' ' -f2 || true)
    rate=$(grep -a -E 'stat::average_exec_per_sec' "$log" | tail -1 | grep -oE '[0-9]+$' || true)
    crashes=$(find "artifacts/$target" -type f | wc -l)
    if [ "$status" -ne 0 ]; then
        echo "   libFuzzer stopped with status $status: see $log and artifacts/$target/"
    fi
    # Keep the inputs that cover every edge (cov); -use_counters=0 leaves out hit-count
    # features (ft), which would keep thousands of near-duplicates.
    nice -n 19 cargo +nightly fuzz cmin "$target" "corpus/$target" -- \
        -max_len="$(max_len "$target")" -use_counters=0 \
        >"artifacts/logs/$target.cmin.log" 2>&1 || echo "   cmin failed: see artifacts/logs/$target.cmin.log"
    files=$(find "corpus/$target" -type f | wc -l)
    bytes=$(du -sk "corpus/$target" | cut -f1)
    summary+=("$(printf '%-8s %6ss %12s execs %8s exec/s  cov %6s  ft %6s  corpus %4s files %6s KB  crashes %s' \
        "$target" "$seconds" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "$files" "$bytes" "$crashes")")
done

echo
printf '%s\n' "${summary[@]}"
