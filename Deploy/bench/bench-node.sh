#!/usr/bin/env bash
# make bench-node: the source articles' set-up — `ab -n 10000 -c 100` and `wrk` against one
# ticket node, and against 4 nodes behind nginx with weights 1-4 — on a private redis-server.
#
# Three loads per target:
#   ab    -n REQUESTS -c CONCURRENCY, a new connection per request (as the source ran it), one
#         account: the first request buys, the rest answer "already holds" after the script ran.
#   wrk   -c CONCURRENCY for DURATION s, keep-alive, a new account per request: every request a
#         real purchase (local share, then the Lua script), stock large enough not to run out.
#   wrk   the same after the sale sold out: each node answers from memory, no Redis trip.
# Knobs: REQUESTS (10000), CONCURRENCY (100), DURATION (10), WRK_THREADS (2).
# Every run ends by checking the sale in Redis: sold never exceeds the stock.
set -euo pipefail
cd "$(dirname "$0")/../.."
source Deploy/bench/redis-lib.sh

REQUESTS=${REQUESTS:-10000}
CONCURRENCY=${CONCURRENCY:-100}
DURATION=${DURATION:-10}
WRK_THREADS=${WRK_THREADS:-2}
BIN=.build/release/spikegate
WORK=$(mktemp -d /tmp/spikegate-bench-node.XXXXXX)
NODE_PIDS=()
NGINX_PID=""

stop_pid() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
stop_nodes() {
  for pid in "${NODE_PIDS[@]}"; do stop_pid "$pid"; done
  NODE_PIDS=()
}
stop_nginx() {
  if [ -n "$NGINX_PID" ]; then stop_pid "$NGINX_PID"; fi
  NGINX_PID=""
}
cleanup() {
  stop_nodes
  stop_nginx
  stop_redis
  rm -rf "$WORK"
}

start_redis
trap cleanup EXIT
REDIS="redis://127.0.0.1:$REDIS_PORT"

wait_http() { # wait_http PORT
  for _ in $(seq 1 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "nothing listens on 127.0.0.1:$1" >&2
  return 1
}

# start_nodes TICKETS SHARE... : a fresh sale and one node per share; sets NODE_PORTS.
start_nodes() {
  local tickets=$1; shift
  stop_nodes
  NODE_PORTS=()
  "$BIN" sale init --redis "$REDIS" --sale bench --tickets "$tickets" --force >/dev/null
  local index=0
  for share in "$@"; do
    index=$((index + 1))
    local port; port=$(free_port)
    "$BIN" ticket-node --listen "127.0.0.1:$port" --redis "$REDIS" --sale bench --local-stock "$share" \
      --name "node-$index" --threads 1 >"$WORK/node-$index.log" 2>&1 &
    NODE_PIDS+=($!)
    NODE_PORTS+=("$port")
  done
  for port in "${NODE_PORTS[@]}"; do wait_http "$port"; done
}

# start_nginx: nginx on NGINX_PORT in front of NODE_PORTS with weights 1, 2, 3, 4.
start_nginx() {
  stop_nginx
  NGINX_PORT=$(free_port)
  mkdir -p "$WORK/nginx/logs"
  {
    echo "worker_processes 1; pid $WORK/nginx/nginx.pid; error_log $WORK/nginx/logs/error.log warn;"
    echo "events { worker_connections 4096; }"
    echo "http { access_log off;"
    echo "  upstream nodes { keepalive 128;"
    local weight=0
    for port in "${NODE_PORTS[@]}"; do weight=$((weight + 1)); echo "    server 127.0.0.1:$port weight=$weight;"; done
    echo "  }"
    echo "  server { listen 127.0.0.1:$NGINX_PORT;"
    echo "    location / { proxy_pass http://nodes; proxy_http_version 1.1; proxy_set_header Connection \"\"; } }"
    echo "}"
  } >"$WORK/nginx/nginx.conf"
  nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -g 'daemon off;' &
  NGINX_PID=$!
  wait_http "$NGINX_PORT"
}

cat >"$WORK/accounts.lua" <<'LUA'
-- A new account per request, distinct across wrk threads.
local next_thread = 0
function setup(thread)
  thread:set("tid", next_thread)
  next_thread = next_thread + 1
end
local counter = 0
function request()
  counter = counter + 1
  return wrk.format("POST", "/buy/ticket", { ["X-Account-Id"] = "t" .. tid .. "-" .. counter }, "")
end
LUA

ab_rate() { # ab_rate PORT -> "req/s p99 errors"
  # ab counts a body whose length differs from the first one as "failed" (Length): here every
  # answer after the first is "already holds", longer than "success", so only Connect, Receive,
  # Exceptions and non-2xx count as errors.
  ab -q -n "$REQUESTS" -c "$CONCURRENCY" -H "X-Account-Id: ab-bench" "http://127.0.0.1:$1/buy/ticket" 2>&1 \
    | awk '/Requests per second/ {rps=$4} /^ +99%/ {p99=$2 "ms"}
           /\(Connect:/ {gsub(/[(),]/, ""); errors=$2+$4+$8} /Non-2xx responses/ {errors+=$3}
           END {printf "%d %s %s\n", rps, p99, (errors > 0 ? errors " errors" : "none")}'
}

wrk_rate() { # wrk_rate PORT -> "req/s p99 errors"
  wrk -t "$WRK_THREADS" -c "$CONCURRENCY" -d "${DURATION}s" --latency -s "$WORK/accounts.lua" "http://127.0.0.1:$1/buy/ticket" 2>&1 \
    | awk '/Requests\/sec/ {rps=$2} /^ +99%/ {p99=$2} /Non-2xx|Socket errors/ {errors=errors $0 ";"}
           END {printf "%d %s %s\n", rps, p99, (errors == "" ? "none" : errors)}'
}

check_sale() { # check_sale LABEL: never more sold than the stock
  local status total sold
  status=$("$BIN" sale status --redis "$REDIS" --sale bench)
  total=$(echo "$status" | awk '$1 == "total" {print $2}')
  sold=$(echo "$status" | awk '$1 == "sold" {print $2}')
  if [ -z "$total" ] || [ -z "$sold" ] || [ "$sold" -gt "$total" ]; then
    echo "OVERSOLD or unreadable sale status after $1: $status" >&2
    exit 1
  fi
  echo "  sale after $1: $sold of $total sold"
}

RESULTS=()
bench_target() { # bench_target LABEL PORT
  local label=$1 port=$2
  local ab wrk_buy wrk_out
  ab=$(ab_rate "$port")
  wrk_buy=$(wrk_rate "$port")
  check_sale "$label purchases"
  RESULTS+=("$label|ab (1 account, no keep-alive)|$ab")
  RESULTS+=("$label|wrk purchases (new account each)|$wrk_buy")
}

echo "redis-server on 127.0.0.1:$REDIS_PORT; ab -n $REQUESTS -c $CONCURRENCY; wrk -t $WRK_THREADS -c $CONCURRENCY -d ${DURATION}s"

# Stock far above what a run can buy, shares in the ratio 1:2:3:4 for the 4-node set-up.
BIG=50000000
echo "1 node ..."
start_nodes "$BIG" "$BIG"
bench_target "1 node" "${NODE_PORTS[0]}"
start_nodes 1000 1000
wrk_rate "${NODE_PORTS[0]}" >/dev/null # sells the 1,000 and latches sold-out
RESULTS+=("1 node|wrk after sell-out (answered from memory)|$(wrk_rate "${NODE_PORTS[0]}")")
check_sale "1 node sell-out"

echo "4 nodes (weights 1:2:3:4) behind nginx ..."
start_nodes "$BIG" $((BIG / 10)) $((BIG / 10 * 2)) $((BIG / 10 * 3)) $((BIG / 10 * 4))
start_nginx
bench_target "nginx + 4 nodes" "$NGINX_PORT"
start_nodes 1000 100 200 300 400
start_nginx
wrk_rate "$NGINX_PORT" >/dev/null
RESULTS+=("nginx + 4 nodes|wrk after sell-out (answered from memory)|$(wrk_rate "$NGINX_PORT")")
check_sale "4 nodes sell-out"

printf '\n%-16s %-42s %10s  %s\n' "target" "load" "req/s" "detail"
for row in "${RESULTS[@]}"; do
  IFS='|' read -r target load figures <<<"$row"
  read -r rps rest <<<"$figures"
  printf '%-16s %-42s %10s  %s\n' "$target" "$load" "$rps" "$rest"
done
echo "(detail: p99 latency, then errors: connect/receive/exceptions and non-2xx for ab; socket errors and non-2xx for wrk)"
