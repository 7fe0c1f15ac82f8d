#!/usr/bin/env bash
# make screenshot: docs/dashboard.png, the admin dashboard of a live gateway with a ban, a
# challenged client and some traffic, taken by headless Chromium.
#
# A backend (python3's http.server), `spikegate gateway` in front of it with a purchase window
# that challenges above 3 requests and bans above 6, a little traffic from a few loopback
# addresses (curl --interface), then Chromium renders http://ADMIN/ at 1200x900. Every process
# started here is stopped by its PID on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
source Deploy/bench/redis-lib.sh # free_port
source Deploy/bench/bench-lib.sh # wait_http, wait_warm, stop_pid

SPIKEGATE_BIN=${SPIKEGATE_BIN:-.build/release/spikegate}
OUT=${OUT:-docs/dashboard.png}
WORK=$(mktemp -d /tmp/spikegate-screenshot.XXXXXX)
BACKEND_PID="" GATEWAY_PID=""
cleanup() {
  stop_pid "$GATEWAY_PID"
  stop_pid "$BACKEND_PID"
  rm -rf "$WORK"
}
trap cleanup EXIT
for tool in chromium curl python3; do
  command -v "$tool" >/dev/null || { echo "$tool is missing: make deps" >&2; exit 1; }
done

BACKEND_PORT=$(free_port)
mkdir -p "$WORK/site/buy" && echo ok >"$WORK/site/buy/ticket" && echo ok >"$WORK/site/health"
python3 -m http.server "$BACKEND_PORT" --bind 127.0.0.1 --directory "$WORK/site" >"$WORK/backend.log" 2>&1 &
BACKEND_PID=$!
wait_http "$BACKEND_PORT" "$BACKEND_PID" "backend"

PORT=$(free_port) ADMIN=$(free_port)
mkdir -p "$WORK/rules"
cat >"$WORK/rules/rules.yaml" <<YAML
windows:
  per-ip: {length: 60s, challenge_above: 3, ban_above: 6, ban_for: 10m}
upstreams:
  tickets:
    backends:
      - address: 127.0.0.1:$BACKEND_PORT
    slow_start: 0s
routes:
  - prefix: /buy/
    upstream: tickets
    windows: [per-ip]
  - prefix: /
    upstream: tickets
YAML
"$SPIKEGATE_BIN" gateway --listen "127.0.0.1:$PORT" --admin "127.0.0.1:$ADMIN" --rules "$WORK/rules" --threads 1 >"$WORK/gateway.log" 2>&1 &
GATEWAY_PID=$!
wait_http "$PORT" "$GATEWAY_PID" "spikegate gateway"
wait_warm "$PORT" "spikegate gateway"

# Real people (a request each), a bot that gets banned, one that gets challenged.
for i in $(seq 1 20); do curl -s -o /dev/null --interface "127.0.8.$i" "http://127.0.0.1:$PORT/buy/ticket"; done
for _ in $(seq 1 8); do curl -s -o /dev/null --interface 127.0.9.1 "http://127.0.0.1:$PORT/buy/ticket"; done
for _ in $(seq 1 5); do curl -s -o /dev/null --interface 127.0.9.2 "http://127.0.0.1:$PORT/buy/ticket"; done
curl -s -o /dev/null "http://127.0.0.1:$PORT/nowhere" || true

mkdir -p "$(dirname "$OUT")"
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1200,900 --virtual-time-budget=5000 \
  --screenshot="$WORK/dashboard.png" "http://127.0.0.1:$ADMIN/" >/dev/null 2>&1
mv "$WORK/dashboard.png" "$OUT"
echo "wrote $OUT"
