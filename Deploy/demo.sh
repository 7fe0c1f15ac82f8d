#!/usr/bin/env bash
# make demo: for now a private redis-server and SpikeGate's Redis client driving it for a few
# seconds. Grows into the flash-sale demo (ticket nodes, gateway, replayed attack traffic).
set -euo pipefail
cd "$(dirname "$0")/.."
source Deploy/bench/redis-lib.sh
start_redis
echo "spikegate $(.build/release/spikegate --version): redis-server on 127.0.0.1:$REDIS_PORT"
.build/release/spikegate bench redis --url "redis://127.0.0.1:$REDIS_PORT" --duration 2
echo "demo done (the flash-sale demo arrives with the replay issue)"
