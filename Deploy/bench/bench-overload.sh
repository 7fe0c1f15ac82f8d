#!/usr/bin/env bash
# make bench-overload: the gateway's overload controls, measured.
#
# Phase 1, after the sell-out: the backend (nginx, one worker) answers every purchase with the
# ticket node's sold-out answer `{"code":-1,"msg":"sold out"}`. Loaded with
# `wrk -t1 -c CONCURRENCY -d DURATION --latency`, ROUNDS times in rotated order (only figures of
# the same run compare on this machine):
#   spikegate  `spikegate gateway --threads 1`, route POST|GET /buy/ticket with
#              `sold_out: {json_code: -1}`: after the first sold-out answer its latch answers
#              itself (one probe per recheck reaches the backend)
#   haproxy    HAProxy, nbthread 1, proxying every request to the backend (keep-alive, reuse)
# Reported: req/s, p50, p99 and the proxy's CPU per request (medians), and the ratio
# spikegate/haproxy (target ≥ 2). The backend's requests during the gateway's runs are counted
# (stub_status): at most one per recheck interval.
#
# Phase 2, 10x overload: a backend that serves 10 requests at a time in 50 ms each (200/s;
# Deploy/bench/overload_backend.py), `max_in_flight: 10` on it in the rules, offered RATE (2,000)
# requests/s for DURATION seconds by Deploy/bench/overload_load.py (open loop, 1,000 keep-alive
# connections, each from its own loopback address). Reported: goodput, the refusals by reason,
# and the latency of the refused requests (p50, p99, max; target p99 < 5 ms) and of the served
# ones; the backend's peak concurrency (≤ 10).
#
# Raw figures go to bench-results/bench-overload-TIMESTAMP.txt. Fails (exit 1) when a server
# dies, a wrk run sees socket errors, or the backend saw more than 10 requests at once.
# Knobs: ROUNDS (3), DURATION (10), CONCURRENCY (100), RATE (2000), SPIKEGATE_BIN.
set -euo pipefail
cd "$(dirname "$0")/../.."
source Deploy/bench/redis-lib.sh # free_port
source Deploy/bench/bench-lib.sh # wait_http, nginx_conf, haproxy_common, run_wrk, cpu_ticks, ...

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
CONCURRENCY=${CONCURRENCY:-100}
RATE=${RATE:-2000}
PAUSE=${PAUSE:-1}
SPIKEGATE_BIN=${SPIKEGATE_BIN:-.build/release/spikegate}
CLK_TCK=$(getconf CLK_TCK)
WORK=$(mktemp -d /tmp/spikegate-bench-overload.XXXXXX)
BACKEND_PID="" HAPROXY_PID="" GATEWAY_PID="" SLOW_PID="" OVERLOAD_PID="" STARTED_PID=""

cleanup() {
  stop_pid "$GATEWAY_PID"
  stop_pid "$OVERLOAD_PID"
  stop_pid "$HAPROXY_PID"
  stop_pid "$BACKEND_PID"
  stop_pid "$SLOW_PID"
  rm -rf "$WORK"
}
trap cleanup EXIT

for tool in wrk nginx haproxy python3; do
  command -v "$tool" >/dev/null || { echo "$tool is missing: make deps-bench-overload" >&2; exit 1; }
done
[ -x "$SPIKEGATE_BIN" ] || { echo "no gateway binary at $SPIKEGATE_BIN (make release)" >&2; exit 1; }

SOLD_OUT='{"code":-1,"msg":"sold out"}'

# start_gateway NAME BACKEND-PORT BACKEND-EXTRA ROUTE-EXTRA: one gateway, one thread.
start_gateway() {
  local name=$1 backend=$2 extra=$3 route=$4 port
  port=$(free_port)
  mkdir -p "$WORK/$name/rules"
  cat >"$WORK/$name/rules/upstreams.yaml" <<YAML
upstreams:
  bench:
    backends:
      - address: 127.0.0.1:$backend
$extra
    slow_start: 0s
routes:
$route
  - prefix: /
    upstream: bench
YAML
  "$SPIKEGATE_BIN" rules check "$WORK/$name/rules" >/dev/null
  "$SPIKEGATE_BIN" gateway --listen "127.0.0.1:$port" --rules "$WORK/$name/rules" --threads 1 >"$WORK/$name.log" 2>&1 &
  GATEWAY_PID=$!
  wait_http "$port" "$GATEWAY_PID" "spikegate gateway $name" || { cat "$WORK/$name.log" >&2; return 1; }
  wait_warm "$port" "spikegate gateway $name" || { cat "$WORK/$name.log" >&2; return 1; }
  GATEWAY_PORT=$port
}

backend_requests() { # requests the sold-out backend answered so far (its stub_status)
  http_get "$BACKEND_PORT" /nginx-status | awk '$1 == "server" {getline; print $3}'
}

RESULTS=bench-results/bench-overload-$(date -u +%Y%m%dT%H%M%SZ).txt
mkdir -p bench-results
echo "# bench-overload $(date -u +%FT%TZ) rounds=$ROUNDS duration=${DURATION}s concurrency=$CONCURRENCY rate=$RATE" >"$RESULTS"

# ---- Phase 1: after the sell-out ----
BACKEND_PORT=$(free_port)
nginx_conf "$WORK/backend" "$BACKEND_PORT" \
  "location / { default_type application/json; return 200 '$SOLD_OUT'; } location = /nginx-status { stub_status; }"
nginx -p "$WORK/backend" -c "$WORK/backend/nginx.conf" -g 'daemon off;' &
BACKEND_PID=$!
wait_http "$BACKEND_PORT" "$BACKEND_PID" "backend nginx"

start_gateway soldout "$BACKEND_PORT" "" "  - path: /buy/ticket
    upstream: bench
    sold_out: {json_code: -1, recheck: 1s}"
# The first answer through the gateway closes its latch.
http_get "$GATEWAY_PORT" /buy/ticket | tail -1 | grep -qF "$SOLD_OUT" || { echo "the gateway did not pass the sold-out answer on" >&2; exit 1; }

HAPROXY_PORT=$(free_port)
{ haproxy_common; cat <<CFG
frontend bench
  bind 127.0.0.1:$HAPROXY_PORT
  default_backend backend
backend backend
  server b1 127.0.0.1:$BACKEND_PORT
CFG
} >"$WORK/haproxy.cfg"
run_haproxy haproxy "$HAPROXY_PORT"
HAPROXY_PID=$STARTED_PID

declare -A PORT=([spikegate]=$GATEWAY_PORT [haproxy]=$HAPROXY_PORT) PROC=([spikegate]=$GATEWAY_PID [haproxy]=$HAPROXY_PID)
declare -A RPS_OF P50_OF P99_OF CPU_OF
TARGETS=(spikegate haproxy)
FAILED=0
for round in $(seq 1 "$ROUNDS"); do
  order=("${TARGETS[@]}")
  [ $((round % 2)) = 0 ] && order=(haproxy spikegate)
  for target in "${order[@]}"; do
    before_backend=$(backend_requests)
    before_cpu=$(cpu_ticks "${PROC[$target]}")
    run_wrk "${PORT[$target]}" "$DURATION" "" /buy/ticket
    after_cpu=$(cpu_ticks "${PROC[$target]}")
    reached=$(( $(backend_requests) - before_backend - 1 ))
    cpu=$(per_req_us $((after_cpu - before_cpu)) "$REQS")
    echo "round $round $target: $RPS req/s, p50 ${P50}us, p99 ${P99}us, cpu ${cpu}us/req, backend requests $reached, errors: $ERRORS" | tee -a "$RESULTS"
    [[ "$ERRORS" == none || "$ERRORS" == Non-2xx* ]] || FAILED=1
    RPS_OF[$target]+="$RPS " P50_OF[$target]+="$P50 " P99_OF[$target]+="$P99 " CPU_OF[$target]+="$cpu "
    sleep "$PAUSE"
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
echo | tee -a "$RESULTS"
echo "after the sell-out (medians of $ROUNDS rounds):" | tee -a "$RESULTS"
for target in "${TARGETS[@]}"; do
  printf '  %-10s %8s req/s  p50 %6s us  p99 %6s us  %6s us CPU/req\n' "$target" \
    "$(median <<<"${RPS_OF[$target]}")" "$(median <<<"${P50_OF[$target]}")" "$(median <<<"${P99_OF[$target]}")" \
    "$(median <<<"${CPU_OF[$target]}")" | tee -a "$RESULTS"
done
awk -v s="$(median <<<"${RPS_OF[spikegate]}")" -v h="$(median <<<"${RPS_OF[haproxy]}")" \
  'BEGIN { printf "  spikegate/haproxy: %.2fx req/s (target >= 2)\n", s / h }' | tee -a "$RESULTS"
stop_pid "$GATEWAY_PID"; GATEWAY_PID=""
stop_pid "$HAPROXY_PID"; HAPROXY_PID=""

# ---- Phase 2: 10x overload ----
SLOW_PORT=$(free_port)
python3 Deploy/bench/overload_backend.py --port "$SLOW_PORT" --slots 10 --service-ms 50 >"$WORK/slow.log" 2>&1 &
SLOW_PID=$!
wait_http "$SLOW_PORT" "$SLOW_PID" "slow backend"
start_gateway overload "$SLOW_PORT" "        max_in_flight: 10" ""
OVERLOAD_PID=$GATEWAY_PID
python3 Deploy/bench/overload_load.py --port "$GATEWAY_PORT" --path /work --rate "$RATE" --duration "$DURATION" --connections 1000 >"$WORK/overload.json"
kill -0 "$OVERLOAD_PID" || { echo "the gateway died under overload" >&2; exit 1; }
stop_pid "$SLOW_PID"; SLOW_PID=""
peak=$(awk -F= '/peak_concurrent/ {print $2}' "$WORK/slow.log")
echo | tee -a "$RESULTS"
echo "10x overload (backend 10 slots x 50 ms = 200 req/s, offered $RATE req/s for ${DURATION}s):" | tee -a "$RESULTS"
python3 - "$WORK/overload.json" "$peak" <<'PY' | tee -a "$RESULTS"
import json, sys
report = json.load(open(sys.argv[1]))
peak = sys.argv[2]
by = report["by_status"]
served = by.get("200", {}).get("count", 0)
print(f"  sent {report['sent']} ({report['sent'] / report['elapsed_s']:.0f}/s; {report['late']} more than a period late), over {report['elapsed_s']} s; errors {report['errors']}")
print(f"  served {served} ({served / report['elapsed_s']:.0f}/s, {100 * served / report['elapsed_s'] / 200:.0f}% of capacity); backend peak concurrency {peak}")
for key, figures in by.items():
    print(f"  {key:18} {figures['count']:7d}  p50 {figures['p50_ms']:8.3f} ms  p99 {figures['p99_ms']:8.3f} ms  max {figures['max_ms']:8.3f} ms")
refused = [f for k, f in by.items() if k.startswith("503-") and k != "503-queue_timeout"]
if refused:
    worst = max(f["p99_ms"] for f in refused)
    print(f"  refused on arrival: p99 {worst:.3f} ms (target < 5 ms)")
PY
[ -n "$peak" ] && [ "$peak" -le 10 ] || { echo "the backend saw $peak requests at once (cap 10)" >&2; FAILED=1; }
echo "raw figures: $RESULTS"
exit "$FAILED"
