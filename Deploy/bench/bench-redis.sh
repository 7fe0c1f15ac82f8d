#!/usr/bin/env bash
# make bench-redis: GateRedis against redis-benchmark on the same private redis-server, in the
# same run, printed as ratios (this machine drifts 2-3x over minutes; only same-run ratios count).
#   CONCURRENCY (50), PIPELINE (16), DURATION seconds per test (5), REQUESTS for redis-benchmark.
set -euo pipefail
cd "$(dirname "$0")/../.."
source Deploy/bench/redis-lib.sh

CONCURRENCY=${CONCURRENCY:-50}
PIPELINE=${PIPELINE:-16}
DURATION=${DURATION:-5}
REQUESTS=${REQUESTS:-2000000}
BIN=.build/release/spikegate

start_redis
echo "redis-server $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/') on 127.0.0.1:$REDIS_PORT; concurrency $CONCURRENCY, pipeline $PIPELINE"

rb() { # rb TEST PIPELINE -> requests per second
  redis-benchmark -p "$REDIS_PORT" -c "$CONCURRENCY" -P "$2" -n "$3" -t "$1" -q --csv 2>/dev/null \
    | awk -F'"' -v t="$(echo "$1" | tr a-z A-Z)" '$2==t {printf "%d\n", $4}'
}

ours=$("$BIN" bench redis --url "redis://127.0.0.1:$REDIS_PORT" --concurrency "$CONCURRENCY" \
  --pipeline "$PIPELINE" --duration "$DURATION" --tests set,get,watch)
rb_set=$(rb set "$PIPELINE" "$REQUESTS")
rb_get=$(rb get "$PIPELINE" "$REQUESTS")
rb_set1=$(rb set 1 $((REQUESTS / 8)))
our_set=$(awk '$1=="set"{print $2}' <<<"$ours")
our_get=$(awk '$1=="get"{print $2}' <<<"$ours")
our_watch=$(awk '$1=="watch"{print $2}' <<<"$ours")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
printf '\n%-34s %14s %14s %8s\n' "test" "GateRedis/s" "redis-bench/s" "ratio"
printf '%-34s %14s %14s %8s\n' "SET pipelined (-P $PIPELINE)" "$our_set" "$rb_set" "$(ratio "$our_set" "$rb_set")"
printf '%-34s %14s %14s %8s\n' "GET pipelined (-P $PIPELINE)" "$our_get" "$rb_get" "$(ratio "$our_get" "$rb_get")"
printf '%-34s %14s %14s %8s\n' "WATCH/GET/MULTI/SET/EXEC (tx/s)" "$our_watch" "$rb_set1" "$(ratio "$our_watch" "$rb_set1")"
echo "(the transaction row compares committed transactions with unpipelined SETs, -P 1)"
