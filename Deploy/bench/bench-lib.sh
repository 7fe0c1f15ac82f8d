# Shared by the side-by-side benchmarks (bench-proxy, bench-overload): waiting for servers,
# nginx and HAProxy configurations, wrk runs and CPU accounting. Callers set WORK (a scratch
# directory) and CONCURRENCY (wrk's connections) before run_wrk.

stop_pid() { if [ -n "$1" ]; then kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; fi; }

wait_http() { # wait_http PORT PID NAME: the port accepts connections while PID lives
  for _ in $(seq 1 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    kill -0 "$2" 2>/dev/null || { echo "$3 exited before listening on 127.0.0.1:$1" >&2; return 1; }
    sleep 0.05
  done
  echo "$3: nothing listens on 127.0.0.1:$1" >&2
  return 1
}

http_get() { # http_get PORT PATH [HEADER]: the whole answer (head and body), without CRs
  timeout 5 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$0"
    printf "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\nConnection: close\r\n\r\n" "$1" "$2" >&3
    cat <&3' "$1" "$2" "${3:-X-Bench: get}" | tr -d '\r'
}

# nginx_conf DIR PORT SERVER-BODY [HTTP-LINE...]: one worker, no access log, keep-alive without
# a request cap (nginx closes a client connection after 1,000 requests by default).
nginx_conf() {
  local dir=$1 port=$2 body=$3; shift 3
  mkdir -p "$dir/logs"
  {
    echo "worker_processes 1; pid $dir/nginx.pid; error_log $dir/logs/error.log warn;"
    echo "events { worker_connections 4096; }"
    echo "http { access_log off; keepalive_requests 1000000;"
    if [ $# -gt 0 ]; then printf '  %s\n' "$@"; fi
    echo "  server { listen 127.0.0.1:$port; $body }"
    echo "}"
  } >"$dir/nginx.conf"
}

# haproxy_common: the global and defaults sections of both HAProxy targets (one thread, HTTP
# keep-alive both ways, upstream connections reused).
haproxy_common() {
  cat <<CFG
global
  nbthread 1
  maxconn 4096
defaults
  mode http
  option http-keep-alive
  http-reuse always
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  timeout http-keep-alive 30s
CFG
}

# run_haproxy NAME PORT: checks $WORK/NAME.cfg, starts HAProxy on it, waits for PORT; sets
# STARTED_PID.
run_haproxy() {
  haproxy -c -q -f "$WORK/$1.cfg"
  haproxy -db -f "$WORK/$1.cfg" >"$WORK/$1.log" 2>&1 &
  STARTED_PID=$!
  wait_http "$2" "$STARTED_PID" "$1"
}

pids_of() { # pids_of PID: the process and its children (nginx: master and worker)
  echo "$1"
  pgrep -P "$1" || true
}

cpu_ticks() { # cpu_ticks PID...: utime+stime (fields 14 and 15 of /proc/PID/stat), summed
  local total=0 pid stat fields
  for pid in "$@"; do
    stat=$(cat "/proc/$pid/stat") || { echo "process $pid is gone" >&2; return 1; }
    read -r -a fields <<<"${stat##*) }" # fields[0] is field 3 (state): the comm may hold spaces
    total=$((total + fields[11] + fields[12]))
  done
  echo "$total"
}

# to_us VALUE: wrk's 612.00us / 1.23ms / 1.01s / 1.00m in µs.
to_us() {
  awk -v v="$1" 'BEGIN {
    n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
    f = (u == "us") ? 1 : (u == "ms") ? 1000 : (u == "s") ? 1000000 : (u == "m") ? 60000000 : -1
    if (f < 0) { print "?"; exit 1 }
    printf "%.0f\n", n * f }'
}

# run_wrk PORT SECONDS [LUA-SCRIPT [PATH]]: sets RPS REQS P50 P99 (µs) ERRORS from one wrk run.
run_wrk() {
  local out rc=0 script=()
  [ -z "${3:-}" ] || script=(-s "$3")
  out=$(timeout $(($2 + 30)) wrk -t1 -c "$CONCURRENCY" -d "${2}s" --latency "${script[@]}" "http://127.0.0.1:$1${4:-/}" 2>&1) || rc=$?
  echo "$out" >>"$WORK/wrk.log"
  RPS=$(awk '/^Requests\/sec:/ {printf "%d", $2}' <<<"$out")
  REQS=$(awk '$2 == "requests" && $3 == "in" {print $1}' <<<"$out")
  P50=$(awk '$1 == "50%" {print $2}' <<<"$out")
  P99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  ERRORS=$(awk '/Non-2xx|Socket errors/ {sub(/^ +/, ""); e = e (e == "" ? "" : "; ") $0} END {print e}' <<<"$out")
  if [ "$rc" != 0 ] || [ -z "$RPS" ] || [ -z "$REQS" ] || [ -z "$P50" ] || [ -z "$P99" ]; then
    ERRORS="${ERRORS:+$ERRORS; }wrk exit $rc: $(tr '\n' ' ' <<<"$out" | cut -c1-300)"
    RPS=${RPS:-0} REQS=${REQS:-0} P50=0 P99=0
  else
    P50=$(to_us "$P50") P99=$(to_us "$P99")
  fi
  ERRORS=${ERRORS:-none}
}

per_req_us() { # per_req_us TICKS REQUESTS -> µs of CPU per request
  awk -v t="$1" -v r="$2" -v hz="$CLK_TCK" 'BEGIN { if (r > 0) printf "%.2f\n", t * 1000000 / hz / r; else print "nan" }'
}

wait_warm() { # wait_warm PORT NAME: until the gateway's warm-up gate lets requests in (10 s at most)
  local reply
  for _ in $(seq 1 200); do
    reply=$(http_get "$1" / 2>/dev/null) || true
    if [ -n "$reply" ] && ! grep -q '"reason":"warming up"' <<<"$reply"; then return 0; fi
    sleep 0.05
  done
  echo "$2 on 127.0.0.1:$1 is still warming up:" >&2
  echo "$reply" >&2
  return 1
}
