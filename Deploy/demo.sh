#!/usr/bin/env bash
# make demo: a small flash sale on this machine — a private redis-server, a sale of 1,000
# tickets, four ticket nodes with shares 1:2:3:4, and 1,500 people buying at once (weighted over
# the nodes as a balancer would). Prints what each node sold and the sale's totals, and fails
# if a single ticket was oversold. Grows into the full demo (gateway, replayed attackers) with
# the replay issue.
set -euo pipefail
cd "$(dirname "$0")/.."
source Deploy/bench/redis-lib.sh
BIN=.build/release/spikegate
TICKETS=${TICKETS:-1000}
BUYERS=${BUYERS:-1500}
WORK=$(mktemp -d /tmp/spikegate-demo.XXXXXX)
NODE_PIDS=()

cleanup() {
  for pid in "${NODE_PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  stop_redis
  rm -rf "$WORK"
}

start_redis
trap cleanup EXIT
REDIS="redis://127.0.0.1:$REDIS_PORT"
echo "spikegate $($BIN --version): redis-server on 127.0.0.1:$REDIS_PORT"
"$BIN" sale init --redis "$REDIS" --sale demo --tickets "$TICKETS" --pay-timeout 10m

PORTS=()
for weight in 1 2 3 4; do
  port=$(free_port)
  "$BIN" ticket-node --listen "127.0.0.1:$port" --redis "$REDIS" --sale demo \
    --local-stock $((TICKETS * weight / 10)) --name "node-$weight" --threads 1 \
    --stat-log "$WORK/stat-$weight.log" >"$WORK/node-$weight.log" 2>&1 &
  NODE_PIDS+=($!)
  PORTS+=("$port")
done
for port in "${PORTS[@]}"; do
  for _ in $(seq 1 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.05
  done
done
echo "4 ticket nodes (shares 1:2:3:4) on ports ${PORTS[*]}"

# http PORT METHOD PATH [ACCOUNT]: one request on its own connection; prints the body.
http() {
  exec 3<>"/dev/tcp/127.0.0.1/$1"
  printf '%s %s HTTP/1.1\r\nHost: demo\r\nConnection: close\r\nContent-Length: 0\r\n%s\r\n' \
    "$2" "$3" "${4:+X-Account-Id: $4$'\r\n'}" >&3
  sed -n '/^\r$/,$p' <&3 | tail -n +2
  exec 3>&-
}

# The crowd: 4 lanes at once, each person sent to a node by weight (1,2,3,4 of every 10).
RING=(0 1 1 2 2 2 3 3 3 3)
lane() {
  local won=0
  for ((person = $1; person < BUYERS; person += 4)); do
    local node=${RING[$((person % 10))]}
    if http "${PORTS[$node]}" POST /buy/ticket "person-$person" | grep -q '"code":1,'; then
      won=$((won + 1))
    fi
  done
  echo "$won" >"$WORK/lane-$1"
}
echo "$BUYERS people buy at once ..."
LANES=()
for l in 0 1 2 3; do
  lane "$l" &
  LANES+=($!)
done
wait "${LANES[@]}"
won=$(cat "$WORK"/lane-* | awk '{s += $1} END {print s + 0}')

echo "person-0 tries again after the sell-out (the node answers from memory): $(http "${PORTS[0]}" POST /buy/ticket person-0)"
for i in 0 1 2 3; do
  echo "node-$((i + 1)): $(http "${PORTS[$i]}" GET /stock | sed 's/.*"node":/"node":/')"
done
"$BIN" sale status --redis "$REDIS" --sale demo
sold=$("$BIN" sale status --redis "$REDIS" --sale demo | awk '$1 == "sold" {print $2}')
echo "people who got a ticket: $won; sold: $sold of $TICKETS"
if [ "$sold" -gt "$TICKETS" ] || [ "$won" -gt "$sold" ]; then
  echo "OVERSOLD: stop and investigate" >&2
  exit 1
fi
echo "no ticket oversold; the gateway, attackers and the full demo arrive with their issues"
