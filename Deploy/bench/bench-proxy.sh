#!/usr/bin/env bash
# make bench-proxy: the gateway's proxy cost next to nginx and HAProxy, in the same run.
#
# One fast backend (nginx, `return 200 "ok"`, keep-alive) and four targets loaded by
# `wrk -t1 -c CONCURRENCY -d DURATION --latency`:
#   direct     the backend itself
#   spikegate  `spikegate gateway --threads 1` proxying to it (rules: one upstream, route /)
#   nginx      nginx, worker_processes 1, upstream keepalive 128, HTTP/1.1 to the backend
#              (keepalive_requests raised both ways: by default nginx closes a connection
#              after 1,000 requests, which no other target does)
#   haproxy    HAProxy, nbthread 1, mode http, http-reuse always
# Every proxy gets one worker thread, the backend one worker process. The targets are loaded
# in turn, ROUNDS times, each round in another order (rotated): this 2-core machine drifts
# 2-3x over minutes, so only figures from the same run (ratios) mean anything.
#
# Per run: req/s, p50 and p99 (wrk's latency distribution), and the CPU time the proxy (and
# the backend) used during the run, from /proc/PID/stat utime+stime, divided by the requests
# wrk counted: µs of CPU per request. The table gives medians over the rounds; its ratios are
# medians of the per-round ratios (the targets of one round ran within a minute of each other).
# Raw figures go to bench-results/bench-proxy-TIMESTAMP.txt.
# Fails (exit 1) when any wrk run saw non-2xx/3xx responses or socket errors, or a server died.
#
# Each run also counts the connections the backend accepted (its stub_status): a proxy that
# reuses its upstream connections opens about as many as it has requests in flight.
#
# The gateway keeps up to GATEWAY_UPSTREAM_IDLE (128, as nginx's `keepalive 128`) idle upstream
# connections (config `limits.upstream_idle_per_loop`, default 256; below wrk's 100 connections
# it would close and redial backend connections all the time).
#
# Purchase rules (PURCHASE=1, the default): the same wrk load, each request with its own account
# (`X-Account-Id: uN`, a wrk Lua script) and the anti-cheat rules of a purchase route on — account
# identity from the header, one in-flight request per account, a per-IP sliding window (thresholds
# far above the load: nothing is refused, every request costs the checks) — against:
#   sg-local   the gateway with the in-flight flags in process (no Redis configured)
#   sg-watch   the same with a private redis-server, `in_flight: {store: watch}`
#   sg-setnx   ... `store: setnx`
#   sg-lua     ... `store: lua`
#   ha-stick   HAProxy with the equivalent stick-table rules: `track-sc0` on the account header
#              (deny 429 when its `conn_cur` > 1: a second request of the account in flight) and
#              `track-sc1 src` (deny when `http_req_rate(10s)` is above the same threshold)
# Every purchase run must end with no 429 (a flag that was not given back would refuse the next
# request of a reused account) and, for the Redis modes, no flag key left in Redis (`DBSIZE` 0
# a moment after the run). The Redis server's CPU per request is reported beside the proxy's.
#
# Knobs: ROUNDS (3), DURATION seconds per wrk run (10), CONCURRENCY (100), WARMUP seconds per
# target before round 1 (2, 0 = none, not recorded), PAUSE seconds between runs (1),
# SPIKEGATE_BIN (.build/release/spikegate), GATEWAY_UPSTREAM_IDLE (128), SKIP_SPIKEGATE=1
# (leave the gateway out: nginx and HAProxy only, to check the set-up without a release build),
# PURCHASE (1; 0 = the plain proxies only).
set -euo pipefail
cd "$(dirname "$0")/../.."
source Deploy/bench/redis-lib.sh # free_port
source Deploy/bench/bench-lib.sh # wait_http, nginx_conf, haproxy_common, run_wrk, cpu_ticks, ...

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
CONCURRENCY=${CONCURRENCY:-100}
WARMUP=${WARMUP:-2}
PAUSE=${PAUSE:-1}
SPIKEGATE_BIN=${SPIKEGATE_BIN:-.build/release/spikegate}
SKIP_SPIKEGATE=${SKIP_SPIKEGATE:-0}
GATEWAY_UPSTREAM_IDLE=${GATEWAY_UPSTREAM_IDLE:-128}
PURCHASE=${PURCHASE:-1}
# The per-IP window of the purchase rules: far above what one wrk run sends (every request pays
# for the check, none is refused), the same figure in HAProxy's rule.
WINDOW_ABOVE=10000000
CLK_TCK=$(getconf CLK_TCK)
WORK=$(mktemp -d /tmp/spikegate-bench-proxy.XXXXXX)
BACKEND_PID="" NGINX_PID="" HAPROXY_PID="" HAPROXY_STICK_PID="" STARTED_PID="" REDIS_PID=""
GATEWAY_PIDS=()

cleanup() {
  local pid
  for pid in "${GATEWAY_PIDS[@]}"; do stop_pid "$pid"; done
  stop_pid "$NGINX_PID"
  stop_pid "$HAPROXY_PID"
  stop_pid "$HAPROXY_STICK_PID"
  stop_pid "$STARTED_PID"
  stop_pid "$BACKEND_PID"
  stop_redis
  rm -rf "$WORK"
}
trap cleanup EXIT

for tool in wrk nginx haproxy redis-server redis-cli; do
  command -v "$tool" >/dev/null || { echo "$tool is missing: make deps-bench-proxy" >&2; exit 1; }
done
if [ "$SKIP_SPIKEGATE" != 1 ] && [ ! -x "$SPIKEGATE_BIN" ]; then
  echo "no gateway binary at $SPIKEGATE_BIN (make release, or SPIKEGATE_BIN=..., or SKIP_SPIKEGATE=1)" >&2
  exit 1
fi

check_ok() { # check_ok PORT NAME [HEADER]: GET / answers 200 with body "ok"
  local reply
  reply=$(http_get "$1" / "${3:-X-Bench: check}") || true
  if ! head -1 <<<"$reply" | grep -q '^HTTP/1.1 200' || [ "$(tail -1 <<<"$reply")" != ok ]; then
    echo "$2 on 127.0.0.1:$1 does not answer 200 \"ok\"; it answered:" >&2
    echo "$reply" >&2
    return 1
  fi
}

start_backend() {
  BACKEND_PORT=$(free_port)
  nginx_conf "$WORK/backend" "$BACKEND_PORT" \
    'location / { return 200 "ok"; } location = /nginx-status { stub_status; }'
  nginx -p "$WORK/backend" -c "$WORK/backend/nginx.conf" -g 'daemon off;' &
  BACKEND_PID=$!
  wait_http "$BACKEND_PORT" "$BACKEND_PID" "backend nginx"
}

# start_gateway NAME [ROUTE-LINES [TOP-LEVEL-LINES [CONFIG-LINES]]]: one gateway process with one
# worker thread, one upstream (the backend) and one route `/`; sets PORT[NAME] and PID[NAME].
start_gateway() {
  local name=$1 route=${2:-} top=${3:-} config=${4:-} port pid
  port=$(free_port)
  mkdir -p "$WORK/$name/rules"
  {
    [ -z "$top" ] || echo "$top"
    cat <<YAML
upstreams:
  bench:
    backends:
      - address: 127.0.0.1:$BACKEND_PORT
        weight: 1
    slow_start: 0s
routes:
  - prefix: /
    upstream: bench
YAML
    [ -z "$route" ] || echo "$route"
  } >"$WORK/$name/rules/upstreams.yaml"
  {
    echo "limits:"
    echo "  upstream_idle_per_loop: $GATEWAY_UPSTREAM_IDLE"
    [ -z "$config" ] || echo "$config"
  } >"$WORK/$name/gateway.yaml"
  "$SPIKEGATE_BIN" rules check "$WORK/$name/rules" >/dev/null
  "$SPIKEGATE_BIN" gateway --config "$WORK/$name/gateway.yaml" --listen "127.0.0.1:$port" \
    --rules "$WORK/$name/rules" --threads 1 \
    >"$WORK/$name.log" 2>&1 &
  pid=$!
  GATEWAY_PIDS+=("$pid")
  # Readiness is the port accepting: the "gateway listening on port N" line goes to stdout
  # through a buffered stdio stream, so into a file it arrives only when the gateway exits.
  wait_http "$port" "$pid" "spikegate gateway $name" || { cat "$WORK/$name.log" >&2; return 1; }
  wait_warm "$port" "spikegate gateway $name" || { cat "$WORK/$name.log" >&2; return 1; }
  PORT[$name]=$port PID[$name]=$pid
}

start_nginx_proxy() {
  NGINX_PORT=$(free_port)
  nginx_conf "$WORK/nginx" "$NGINX_PORT" \
    'location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; }' \
    "upstream backend { server 127.0.0.1:$BACKEND_PORT; keepalive 128; keepalive_requests 1000000; }"
  nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -g 'daemon off;' &
  NGINX_PID=$!
  wait_http "$NGINX_PORT" "$NGINX_PID" "nginx proxy"
}

start_haproxy() {
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
}

# The purchase rules as HAProxy stick tables: one in-flight request per account (a second
# stream tracking the same account while one is open sees conn_cur 2) and a per-IP request rate.
start_haproxy_stick() {
  local port
  port=$(free_port)
  { haproxy_common; cat <<CFG
backend per_account
  stick-table type string len 64 size 1m expire 30s store conn_cur
backend per_ip
  stick-table type ip size 100k expire 30s store http_req_rate(10s)
frontend purchase
  bind 127.0.0.1:$port
  http-request deny deny_status 401 unless { req.hdr(x-account-id) -m found }
  http-request track-sc0 req.hdr(x-account-id) table per_account
  http-request track-sc1 src table per_ip
  http-request deny deny_status 429 if { sc0_conn_cur gt 1 }
  http-request deny deny_status 429 if { sc1_http_req_rate gt $WINDOW_ABOVE }
  default_backend backend
backend backend
  server b1 127.0.0.1:$BACKEND_PORT
CFG
  } >"$WORK/haproxy-stick.cfg"
  run_haproxy haproxy-stick "$port"
  HAPROXY_STICK_PID=$STARTED_PID
  PORT[ha-stick]=$port PID[ha-stick]=$HAPROXY_STICK_PID
}

backend_accepts() { # connections the backend accepted so far (its stub_status, this one included)
  http_get "$BACKEND_PORT" /nginx-status | awk '$1 == "server" {getline; print $1}'
}

# Each request its own account: u1, u2, ... (one wrk thread, so one counter).
cat >"$WORK/accounts.lua" <<'LUA'
counter = 0
request = function()
  counter = counter + 1
  return wrk.format(nil, nil, {["X-Account-Id"] = "u" .. counter})
end
LUA

declare -A PORT PID SCRIPT REDIS_TARGET
start_backend
PORT[direct]=$BACKEND_PORT PID[direct]=""
TARGETS=(direct)
if [ "$SKIP_SPIKEGATE" != 1 ]; then
  start_gateway spikegate
  TARGETS+=(spikegate)
fi
start_nginx_proxy
PORT[nginx]=$NGINX_PORT PID[nginx]=$NGINX_PID
start_haproxy
PORT[haproxy]=$HAPROXY_PORT PID[haproxy]=$HAPROXY_PID
TARGETS+=(nginx haproxy)
if [ "$PURCHASE" = 1 ]; then
  IDENTITY="identity: {header: X-Account-Id, trust: clients}
windows:
  per-ip: {key: ip, length: 10s, challenge_above: $WINDOW_ABOVE}"
  PURCHASE_ROUTE="    purchase: true
    windows: [per-ip]"
  if [ "$SKIP_SPIKEGATE" != 1 ]; then
    start_redis
    trap cleanup EXIT # start_redis set its own
    start_gateway sg-local "$PURCHASE_ROUTE" "$IDENTITY"
    TARGETS+=(sg-local)
    for mode in watch setnx lua; do
      start_gateway "sg-$mode" "$PURCHASE_ROUTE
    in_flight: {store: $mode}" "$IDENTITY" "redis: redis://127.0.0.1:$REDIS_PORT"
      TARGETS+=("sg-$mode")
      REDIS_TARGET[sg-$mode]=1
    done
  fi
  start_haproxy_stick
  TARGETS+=(ha-stick)
  for target in sg-local sg-watch sg-setnx sg-lua ha-stick; do SCRIPT[$target]=$WORK/accounts.lua; done
fi
for target in "${TARGETS[@]}"; do check_ok "${PORT[$target]}" "$target" "X-Account-Id: check-$target"; done

mkdir -p bench-results
RESULT_FILE=bench-results/bench-proxy-$(date +%Y%m%d-%H%M%S).txt
{
  echo "# make bench-proxy $(date -Iseconds) on $(hostname), $(nproc) cores, commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD 2>/dev/null || echo '+changes')"
  echo "# wrk -t1 -c$CONCURRENCY -d${DURATION}s --latency, $ROUNDS rounds (order rotated each round), warm-up ${WARMUP}s per target"
  if [ "$SKIP_SPIKEGATE" = 1 ]; then
    echo "# one worker thread per proxy: spikegate SKIPPED (SKIP_SPIKEGATE=1),"
  else
    echo "# one worker thread per proxy: spikegate $("$SPIKEGATE_BIN" --version) gateway --threads 1 ($SPIKEGATE_BIN,"
    echo "#   limits.upstream_idle_per_loop $GATEWAY_UPSTREAM_IDLE),"
  fi
  echo "#   nginx $(nginx -v 2>&1 | sed 's/.*nginx\///') worker_processes 1 (upstream keepalive 128, keepalive_requests 1000000), haproxy $(haproxy -v | awk 'NR==1 {print $3}') nbthread 1 (http-reuse always);"
  echo "#   backend: nginx worker_processes 1, return 200 \"ok\", keep-alive; $(wrk -v 2>&1 | awk 'NR==1 {print $1, $2}')"
  if [ "$PURCHASE" = 1 ]; then
    echo "# purchase targets (sg-*, ha-stick): a new X-Account-Id per request (wrk Lua script), identity from the header,"
    echo "#   one in-flight request per account, per-IP 10 s window (above $WINDOW_ABOVE); sg-watch/setnx/lua share"
    echo "#   $(redis-server --version | awk '{print $1, $2, $3}') (private, no persistence); ha-stick: track-sc0 account (conn_cur), track-sc1 src (http_req_rate(10s))"
  fi
  echo "# CPU: utime+stime from /proc/PID/stat over the wrk run (CLK_TCK $CLK_TCK; nginx: master+worker), per request wrk counted"
  echo "# round order target req/s requests p50_us p99_us proxy_ticks proxy_cpu_us_per_req backend_ticks backend_cpu_us_per_req backend_conns redis_cpu_us_per_req flags_left errors"
} | tee "$RESULT_FILE"

FAILURES=()
check_alive() {
  local target
  for target in "${TARGETS[@]}"; do
    local pid=${PID[$target]:-$BACKEND_PID}
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "$target (pid $pid) died; logs:" >&2
      tail -n 20 "$WORK"/*.log "$WORK"/*/logs/error.log 2>/dev/null >&2 || true
      exit 1
    fi
  done
}

if [ "$WARMUP" -gt 0 ]; then
  for target in "${TARGETS[@]}"; do
    run_wrk "${PORT[$target]}" "$WARMUP" "${SCRIPT[$target]:-}"
    [ "$ERRORS" = none ] || FAILURES+=("warm-up $target: $ERRORS")
  done
  echo "# warm-up: ${WARMUP}s per target${FAILURES:+ (errors: ${FAILURES[*]})}" | tee -a "$RESULT_FILE"
fi

COUNT=${#TARGETS[@]}
for round in $(seq 1 "$ROUNDS"); do
  for position in $(seq 0 $((COUNT - 1))); do
    target=${TARGETS[$(((position + round - 1) % COUNT))]}
    proxy_pids=() proxy_before=0
    if [ -n "${PID[$target]}" ]; then
      mapfile -t proxy_pids < <(pids_of "${PID[$target]}")
      proxy_before=$(cpu_ticks "${proxy_pids[@]}")
    fi
    mapfile -t backend_pids < <(pids_of "$BACKEND_PID")
    accepts_before=$(backend_accepts)
    backend_before=$(cpu_ticks "${backend_pids[@]}")
    redis_before=0
    [ -z "${REDIS_TARGET[$target]:-}" ] || redis_before=$(cpu_ticks "$REDIS_PID")
    run_wrk "${PORT[$target]}" "$DURATION" "${SCRIPT[$target]:-}"
    redis_us=- flags_left=-
    if [ -n "${REDIS_TARGET[$target]:-}" ]; then
      redis_us=$(per_req_us $(( $(cpu_ticks "$REDIS_PID") - redis_before )) "$REQS")
      sleep 0.5 # releases still on their way
      flags_left=$(redis-cli -p "$REDIS_PORT" dbsize)
      if [ "$flags_left" != 0 ]; then
        if [ "$ERRORS" = none ]; then ERRORS="$flags_left flag keys left in Redis"; else ERRORS="$ERRORS; $flags_left flag keys left in Redis"; fi
      fi
      redis-cli -p "$REDIS_PORT" flushall >/dev/null
    fi
    backend_ticks=$(( $(cpu_ticks "${backend_pids[@]}") - backend_before ))
    backend_conns=$(( $(backend_accepts) - accepts_before - 1 )) # less the status request's own
    if [ ${#proxy_pids[@]} -gt 0 ]; then
      proxy_ticks=$(( $(cpu_ticks "${proxy_pids[@]}") - proxy_before ))
      proxy_us=$(per_req_us "$proxy_ticks" "$REQS")
    else
      proxy_ticks=- proxy_us=-
    fi
    backend_us=$(per_req_us "$backend_ticks" "$REQS")
    echo "$round $((position + 1)) $target $RPS $REQS $P50 $P99 $proxy_ticks $proxy_us $backend_ticks $backend_us $backend_conns $redis_us $flags_left $ERRORS" \
      | tee -a "$RESULT_FILE"
    [ "$ERRORS" = none ] || FAILURES+=("round $round $target: $ERRORS")
    check_alive
    sleep "$PAUSE"
  done
done

# The table: medians over rounds; ratios are medians of the per-round ratios.
{
  echo
  awk -v targets="${TARGETS[*]}" -v rounds="$ROUNDS" '
    function median(list,   a, n, i, j, t) {
      n = split(list, a, " ")
      for (i = 2; i <= n; i++) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
      if (n == 0) return "nan"
      return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    function add(key, value) { col[key] = col[key] (col[key] == "" ? "" : " ") value }
    function ms(us) { return (us == "nan" || us == "") ? "-" : sprintf("%.2fms", us / 1000) }
    function num(v, fmt) { return (v == "nan" || v == "") ? "-" : sprintf(fmt, v) }
    /^#/ || NF < 15 { next }
    { r = $1; t = $3; rps[r, t] = $4; p50[r, t] = $6; p99[r, t] = $7; cpu[r, t] = $9; bcpu[r, t] = $11
      add(t " rps", $4); add(t " p50", $6); add(t " p99", $7); add(t " bcpu", $11); add(t " conns", $12)
      if ($9 != "-") add(t " cpu", $9)
      if ($13 != "-") add(t " rcpu", $13) }
    END {
      n = split(targets, tg, " ")
      for (r = 1; r <= rounds; r++) {
        for (i = 1; i <= n; i++) {
          t = tg[i]
          if (rps[r, "direct"] > 0) add(t " rps/direct", rps[r, t] / rps[r, "direct"])
          if (p50[r, "direct"] > 0) add(t " p50/direct", p50[r, t] / p50[r, "direct"])
          if (p99[r, "direct"] > 0) add(t " p99/direct", p99[r, t] / p99[r, "direct"])
        }
        if (rps[r, "sg-local"] > 0) {
          if (rps[r, "ha-stick"] > 0) { add("local/stick rps", rps[r, "sg-local"] / rps[r, "ha-stick"]); add("local/stick cpu", cpu[r, "sg-local"] / cpu[r, "ha-stick"]) }
          if (rps[r, "spikegate"] > 0) add("local/plain rps", rps[r, "sg-local"] / rps[r, "spikegate"])
          for (m = 1; m <= 3; m++) {
            mode = (m == 1) ? "sg-watch" : (m == 2) ? "sg-setnx" : "sg-lua"
            if (rps[r, mode] != "") add(mode "/local rps", rps[r, mode] / rps[r, "sg-local"])
          }
        }
        if (rps[r, "spikegate"] == "") continue
        for (j = 1; j <= 2; j++) {
          o = (j == 1) ? "nginx" : "haproxy"
          if (rps[r, o] > 0) add("vs " o " rps", rps[r, "spikegate"] / rps[r, o])
          if (p50[r, o] > 0) add("vs " o " p50", p50[r, "spikegate"] / p50[r, o])
          if (p99[r, o] > 0) add("vs " o " p99", p99[r, "spikegate"] / p99[r, o])
          if (cpu[r, o] > 0) add("vs " o " cpu", cpu[r, "spikegate"] / cpu[r, o])
        }
      }
      printf "%-10s %8s %8s %8s %8s %8s %8s %11s %11s %8s\n", "target", "req/s", "x direct", "p50", "x direct", "p99", "x direct", "proxy CPU", "backend CPU", "b. conns"
      for (i = 1; i <= n; i++) {
        t = tg[i]
        printf "%-10s %8d %8s %8s %8s %8s %8s %11s %11s %8d\n", t, median(col[t " rps"]), num(median(col[t " rps/direct"]), "%.2f"),
          ms(median(col[t " p50"])), num(median(col[t " p50/direct"]), "%.2f"),
          ms(median(col[t " p99"])), num(median(col[t " p99/direct"]), "%.2f"),
          (col[t " cpu"] == "" ? "-" : sprintf("%.2fus/req", median(col[t " cpu"]))),
          sprintf("%.2fus/req", median(col[t " bcpu"])), median(col[t " conns"])
        if (col[t " rcpu"] != "") printf "%-10s redis-server CPU %.2fus/req\n", "", median(col[t " rcpu"])
      }
      for (j = 1; j <= 2; j++) {
        o = (j == 1) ? "nginx" : "haproxy"
        if (col["vs " o " rps"] == "") continue
        printf "spikegate/%-8s req/s %.2f  p50 %s  p99 %s  proxy CPU/request %s\n", o, median(col["vs " o " rps"]),
          num(median(col["vs " o " p50"]), "%.2f"), num(median(col["vs " o " p99"]), "%.2f"), num(median(col["vs " o " cpu"]), "%.2f")
      }
      if (col["local/stick rps"] != "")
        printf "purchase rules, in process: sg-local/ha-stick req/s %.2f  proxy CPU/request %.2f\n", median(col["local/stick rps"]), median(col["local/stick cpu"])
      if (col["local/plain rps"] != "")
        printf "purchase rules, in process: sg-local/spikegate (no rules) req/s %.2f\n", median(col["local/plain rps"])
      for (m = 1; m <= 3; m++) {
        mode = (m == 1) ? "sg-watch" : (m == 2) ? "sg-setnx" : "sg-lua"
        if (col[mode "/local rps"] != "") printf "flags in Redis: %s/sg-local req/s %.2f\n", mode, median(col[mode "/local rps"])
      }
    }' "$RESULT_FILE"
  echo "(medians over $ROUNDS rounds of wrk -t1 -c$CONCURRENCY -d${DURATION}s; each proxy has one worker thread:"
  echo " spikegate --threads 1, nginx worker_processes 1, haproxy nbthread 1; the backend is nginx with one worker."
  echo " x direct and spikegate/... are medians of the per-round ratios. proxy CPU: the proxy process's"
  echo " utime+stime during the run per request (nginx: master+worker); backend CPU: the backend nginx's;"
  echo " b. conns: connections the backend accepted during the run (from its stub_status)."
  echo " sg-* and ha-stick: purchase rules, a new account per request; redis-server CPU: the shared Redis's, per request.)"
} | tee -a "$RESULT_FILE"
# What the servers logged above info level during the run (errors, warnings), in brief.
{
  for log in "$WORK"/*.log "$WORK"/*/logs/error.log; do
    [ "${log##*/}" != wrk.log ] || continue
    [ -f "$log" ] || continue
    lines=$(grep -ciE 'warn|error|alert|crit|emerg' "$log" || true)
    echo "# log ${log#"$WORK"/}: $lines warning/error lines"
    grep -iE 'warn|error|alert|crit|emerg' "$log" | head -n 5 | sed 's/^/#   /' || true
  done
} | tee -a "$RESULT_FILE"
echo "raw figures: $RESULT_FILE"

if [ ${#FAILURES[@]} -gt 0 ]; then
  echo "FAILED: wrk saw errors:" >&2
  printf '  %s\n' "${FAILURES[@]}" >&2
  exit 1
fi
