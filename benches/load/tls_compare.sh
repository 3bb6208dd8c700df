#!/usr/bin/env bash
# HTTPS side by side: looplight and nginx with the same certificate (looplight's self-signed
# ECDSA P-256 one) and the same files, each server pinned to one core and the clients to the
# other, alternating rounds, loopback only. Three loads per round:
#
#   keep-alive  wrk, CONNECTIONS keep-alive connections, GET PATH          -> requests/s
#   new conns   wrk with "Connection: close": a TCP + TLS handshake per request (wrk's
#               OpenSSL resumes sessions where the server allows)       -> requests/s
#   full hs     benches/handshakes.rs, 8 threads: full TLS 1.3 handshakes (X25519, no
#               resumption) + one request each; the client skips certificate and signature
#               checks so that the server, not the client, is the bottleneck
#               -> handshakes/s, and the server's CPU time per handshake (from /proc)
#
#   benches/load/tls_compare.sh [PATH] [CONNECTIONS] [SECONDS] [ROUNDS]
#   defaults:                    /hello.txt  64        5         3
#
# Needs wrk and nginx (apt-get install wrk nginx).
set -euo pipefail
cd "$(dirname "$0")/../.."

path=${1:-/hello.txt}
conns=${2:-64}
secs=${3:-5}
rounds=${4:-3}
server_cpu=0
client_cpu=1
ll_port=18443
ll_plain_port=18180
nginx_port=18444
root=${ROOT:-$(pwd)/www}

cargo build --release --quiet
cargo bench --quiet --bench handshakes --no-run
work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

taskset -c $server_cpu target/release/looplight --quiet --addr 127.0.0.1:$ll_plain_port \
    --tls-addr 127.0.0.1:$ll_port --tls-self-signed --root "$root" --db "$work/bench.db" \
    > "$work/looplight.out" 2> "$work/looplight.err" &
ll_pid=$!
pids+=("$ll_pid")
for _ in $(seq 50); do [ -s "$work/looplight-cert.pem" ] && break; sleep 0.1; done
if ! kill -0 "$ll_pid" 2>/dev/null || [ ! -s "$work/looplight-cert.pem" ]; then
    echo "looplight did not start:" >&2; cat "$work/looplight.err" >&2; exit 1
fi

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
    keepalive_requests 100000000;
    ssl_protocols TLSv1.2 TLSv1.3;
    server {
        listen 127.0.0.1:$nginx_port ssl;
        ssl_certificate $work/looplight-cert.pem;
        ssl_certificate_key $work/looplight-key.pem;
        root $root;
    }
}
CONF
taskset -c $server_cpu "$(command -v nginx || echo /usr/sbin/nginx)" -c "$work/nginx.conf" &
pids+=($!)
sleep 0.5
nginx_pid=$(cat "$work/nginx.pid") # the worker is its only child
nginx_worker=$(pgrep -P "$nginx_pid" | head -1)

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
run_wrk() { # url [extra wrk args] -> requests/s
    local url=$1; shift
    taskset -c $client_cpu wrk -t1 -c"$conns" -d"${secs}s" "$@" "$url" | awk '/Requests\/sec/ {print $2}'
}
full_handshakes() { # port pid -> "handshakes/s server-µs-per-handshake"
    local before after line
    before=$(cpu_ticks "$2")
    line=$(taskset -c $client_cpu cargo bench --quiet --bench handshakes -- \
        "127.0.0.1:$1" "$secs" 8 "$path" | tail -1)
    after=$(cpu_ticks "$2")
    # "N handshakes in S s: R handshakes/s, F failed"
    awk -v t=$((after - before)) '{printf "%.0f %.0f\n", $5, t * 10000 / $1}' <<< "$line"
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

for f in ll_ka ngx_ka ll_new ngx_new ll_hs ngx_hs ll_us ngx_us; do : > "$work/$f"; done
for round in $(seq "$rounds"); do
    run_wrk "https://127.0.0.1:$ll_port$path" >> "$work/ll_ka"
    run_wrk "https://127.0.0.1:$nginx_port$path" >> "$work/ngx_ka"
    run_wrk "https://127.0.0.1:$ll_port$path" -H "Connection: close" >> "$work/ll_new"
    run_wrk "https://127.0.0.1:$nginx_port$path" -H "Connection: close" >> "$work/ngx_new"
    read -r hs us <<< "$(full_handshakes $ll_port "$ll_pid")"
    echo "$hs" >> "$work/ll_hs"; echo "$us" >> "$work/ll_us"
    read -r hs us <<< "$(full_handshakes $nginx_port "$nginx_worker")"
    echo "$hs" >> "$work/ngx_hs"; echo "$us" >> "$work/ngx_us"
    echo "round $round: keep-alive $(tail -1 "$work/ll_ka") vs $(tail -1 "$work/ngx_ka") req/s;" \
        "new conns $(tail -1 "$work/ll_new") vs $(tail -1 "$work/ngx_new") req/s;" \
        "full handshakes $(tail -1 "$work/ll_hs") vs $(tail -1 "$work/ngx_hs")/s," \
        "$(tail -1 "$work/ll_us") vs $(tail -1 "$work/ngx_us") server µs each (looplight vs nginx)"
done
report() { # label looplight-file nginx-file unit
    local a b r
    a=$(median < "$work/$2"); b=$(median < "$work/$3")
    # The machine is noisy: a round's two runs are close in time, so the median of the
    # per-round ratios is steadier than the ratio of the medians.
    r=$(paste "$work/$2" "$work/$3" | awk '{print $1 / $2}' | median)
    awk -v l="$1" -v a="$a" -v b="$b" -v u="$4" -v r="$r" \
        'BEGIN {printf "%-16s looplight %10s  nginx %10s  %-22s ratio per round %.2f\n", l, a, b, u, r}'
}
echo "medians ($path, $conns connections, ${secs}s x $rounds rounds):"
report "keep-alive" ll_ka ngx_ka "req/s"
report "new conns" ll_new ngx_new "req/s"
report "full handshakes" ll_hs ngx_hs "per s"
report "server CPU/hs" ll_us ngx_us "µs (lower is better)"
