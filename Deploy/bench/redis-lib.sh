# Shared by the bench and demo scripts: a private redis-server on a free loopback port,
# stopped by its PID when the calling script exits.

free_port() {
  local port
  for _ in $(seq 1 200); do
    port=$(( 20000 + RANDOM % 12000 ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  echo "no free port found" >&2
  return 1
}

# start_redis: sets REDIS_PORT, REDIS_PID and REDIS_DIR; registers cleanup on exit.
start_redis() {
  REDIS_PORT=$(free_port)
  REDIS_DIR=$(mktemp -d /tmp/spikegate-redis.XXXXXX)
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$REDIS_DIR" --daemonize no >"$REDIS_DIR/redis.log" 2>&1 &
  REDIS_PID=$!
  trap stop_redis EXIT
  for _ in $(seq 1 200); do
    if redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.05
  done
  echo "redis-server did not start; its log:" >&2
  cat "$REDIS_DIR/redis.log" >&2
  return 1
}

stop_redis() {
  if [ -n "${REDIS_PID:-}" ]; then
    kill "$REDIS_PID" 2>/dev/null || true
    wait "$REDIS_PID" 2>/dev/null || true
    REDIS_PID=""
  fi
  # An `if`, not `&&`: as the last command of an EXIT trap its status would become the script's.
  if [ -n "${REDIS_DIR:-}" ]; then rm -rf "$REDIS_DIR"; fi
}
