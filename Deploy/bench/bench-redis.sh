#!/usr/bin/env bash
# make bench-redis: GateRedis against redis-benchmark on the same private redis-server, in the
# same run, printed as ratios (this machine drifts 2-3x over minutes; only same-run ratios count).
#   CONCURRENCY (50), PIPELINE (16), DURATION seconds per test (3), ROUNDS (2), REQUESTS for
#   redis-benchmark. Each figure is the best of ROUNDS interleaved runs.
set -euo pipefail
cd "$(dirname "$0")/../.."
source Deploy/bench/redis-lib.sh

CONCURRENCY=${CONCURRENCY:-50}
PIPELINE=${PIPELINE:-16}
DURATION=${DURATION:-3}
REQUESTS=${REQUESTS:-2000000}
BIN=.build/release/spikegate

start_redis
echo "redis-server $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/') on 127.0.0.1:$REDIS_PORT; concurrency $CONCURRENCY, pipeline $PIPELINE"

rb() { # rb TEST PIPELINE -> requests per second
  redis-benchmark -p "$REDIS_PORT" -c "$CONCURRENCY" -P "$2" -n "$3" -t "$1" -q --csv 2>/dev/null \
    | awk -F'"' -v t="$(echo "$1" | tr a-z A-Z)" '$2==t {printf "%d\n", $4}'
}

ours() { # ours TEST -> ops per second
  "$BIN" bench redis --url "redis://127.0.0.1:$REDIS_PORT" --concurrency "$CONCURRENCY" \
    --pipeline "$PIPELINE" --duration "$DURATION" --tests "$1" | awk -v t="$1" '$1==t {print $2}'
}
max() { if [ "${1:-0}" -gt "${2:-0}" ]; then echo "$1"; else echo "${2:-0}"; fi; }

# Interleaved, best of ROUNDS: the machine drifts, so neither side gets only the good minutes.
ROUNDS=${ROUNDS:-2}
rb_set=0 rb_get=0 rb_set1=0 our_set=0 our_get=0 our_watch=0
for round in $(seq 1 "$ROUNDS"); do
  echo "round $round/$ROUNDS ..."
  rb_set=$(max "$rb_set" "$(rb set "$PIPELINE" "$REQUESTS")")
  our_set=$(max "$our_set" "$(ours set)")
  rb_get=$(max "$rb_get" "$(rb get "$PIPELINE" "$REQUESTS")")
  our_get=$(max "$our_get" "$(ours get)")
  rb_set1=$(max "$rb_set1" "$(rb set 1 $((REQUESTS / 8)))")
  our_watch=$(max "$our_watch" "$(ours watch)")
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
printf '\n%-34s %14s %14s %8s\n' "test" "GateRedis/s" "redis-bench/s" "ratio"
printf '%-34s %14s %14s %8s\n' "SET pipelined (-P $PIPELINE)" "$our_set" "$rb_set" "$(ratio "$our_set" "$rb_set")"
printf '%-34s %14s %14s %8s\n' "GET pipelined (-P $PIPELINE)" "$our_get" "$rb_get" "$(ratio "$our_get" "$rb_get")"
printf '%-34s %14s %14s %8s\n' "WATCH/GET/MULTI/SET/EXEC (tx/s)" "$our_watch" "$rb_set1" "$(ratio "$our_watch" "$rb_set1")"
echo "(transactions: WATCH k + GET k in one write, MULTI/SET/EXEC in a second, one key per worker;"
echo " compared with unpipelined SETs, -P 1: one round trip each, where a transaction needs two)"
