#!/usr/bin/env bash
# cpu-split.sh - where a proxy's time goes at max load: user and system microseconds per
# request, page faults, and (STRACE=1) system calls per request, for weft and the peers
# issue 3 compares it with, one after another under the same load.
#
#   ROUNDS=3 bash crates/weft-bench/scripts/cpu-split.sh target/release/weft haproxy nginx
#   STRACE=1 bash crates/weft-bench/scripts/cpu-split.sh target/release/weft haproxy nginx
#
# Arguments name the proxies: `haproxy`, `nginx`, or a path to a weft binary (run as
# `weft proxy --concurrency 1` on the bootstrap shape of /work/shared/bench/weft-proxy.sh).
# Placement as in proxy_bench.sh: the nginx upstream (1 KiB) and wrk on core 0, the proxy
# alone on core 1, all at SCHED_FIFO 20; one worker thread each. The figures come from
# /proc/PID/stat (utime, stime, minflt) around a MAX_S-second `wrk -t1 -c64` run after a
# 2 s warm-up. With STRACE=1, `strace -c` counts the proxy's system calls over N requests
# (h2load --h1 -c64) instead: slower, so only the counts mean anything.
# Only 127.0.0.1 is targeted; every load phase is bounded in time or count.
set -euo pipefail
ROUNDS=${ROUNDS:-1}
MAX_S=${MAX_S:-8}
N=${N:-20000}
UP_PORT=${UP_PORT:-18390}
PORT=${PORT:-10394}
OUT=${OUT:-$(mktemp -d /tmp/weft-cpu-split.XXXXXX)}
# shellcheck source=upstream.sh
source "$(dirname "${BASH_SOURCE[0]}")/upstream.sh"
(($# > 0)) || { echo "usage: $0 (haproxy|nginx|WEFT_BIN)..." >&2; exit 2; }

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
on() { chrt -f 20 taskset -c "$@"; }

cat >"$OUT/haproxy.cfg" <<CFG
global
  nbthread 1
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  option http-keep-alive
  http-reuse always
frontend fe
  bind 127.0.0.1:$PORT
  default_backend be
backend be
  server s1 127.0.0.1:$UP_PORT
CFG
mkdir -p "$OUT"/ngx/{logs,tmp}
cat >"$OUT/ngx/nginx.conf" <<NGX
worker_processes 1; daemon off; master_process off;
pid $OUT/ngx/nginx.pid; error_log $OUT/ngx/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off; keepalive_requests 100000000;
  client_body_temp_path $OUT/ngx/tmp/cb; proxy_temp_path $OUT/ngx/tmp/px;
  fastcgi_temp_path $OUT/ngx/tmp/fc; uwsgi_temp_path $OUT/ngx/tmp/uw; scgi_temp_path $OUT/ngx/tmp/sc;
  upstream up { server 127.0.0.1:$UP_PORT; keepalive 128; }
  server { listen 127.0.0.1:$PORT; location / {
    proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; } }
}
NGX

chrt -f 20 taskset -c 0 /usr/sbin/nginx -p "$OUT/up" -c "$OUT/up/nginx.conf" >"$OUT/up.out" 2>&1 &
pids+=($!)

# fields: minflt utime stime (clock ticks)
stat3() { awk '{print $10, $14, $15}' "/proc/$1/stat"; }

measure() { # label cmd...
  local label=$1; shift
  chrt -f 20 taskset -c 1 "$@" >"$OUT/$label.out" 2>&1 &
  local pid=$!
  pids+=("$pid")
  wait_200 100 0.1 || { echo "$label did not answer 200 on :$PORT (see $OUT/$label.out)" >&2; exit 1; }
  on 0 wrk -t1 -c64 -d2s "http://127.0.0.1:$PORT/" >/dev/null
  if [[ "${STRACE:-0}" == 1 ]]; then
    strace -c -f -p "$pid" -o "$OUT/$label.strace" 2>/dev/null &
    local st=$!
    sleep 1
    h2load --h1 -n "$N" -c 64 -t 1 "http://127.0.0.1:$PORT/" | grep -E "^requests:"
    kill -INT "$st"; wait "$st" 2>/dev/null || true
    awk -v n="$N" -v l="$label" '$1 ~ /^[0-9.]+$/ && $4 ~ /^[0-9]+$/ {
      printf "%s %s %.3f\n", l, $NF, $4 / n }' "$OUT/$label.strace"
  else
    local f0 u0 s0 f1 u1 s1 reqs
    read -r f0 u0 s0 < <(stat3 "$pid")
    reqs=$(on 0 wrk -t1 -c64 -d"${MAX_S}s" "http://127.0.0.1:$PORT/" | awk '/requests in/{print $1}')
    read -r f1 u1 s1 < <(stat3 "$pid")
    python3 - "$label" "$reqs" "$MAX_S" "$(getconf CLK_TCK)" "$u0" "$u1" "$s0" "$s1" "$f0" "$f1" <<'PY'
import sys
label, reqs, secs, clk = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
u0, u1, s0, s1, f0, f1 = map(int, sys.argv[5:11])
user, sys_ = (u1 - u0) / clk, (s1 - s0) / clk
cpu = user + sys_
print(f"{label:12} {reqs / secs:8.0f} rps  user {user * 1e6 / reqs:5.2f} us/req  "
      f"sys {sys_ * 1e6 / reqs:5.2f} us/req  cores {cpu / secs:4.2f}  "
      f"rps/core {reqs / cpu:7.0f}  minflt/s {(f1 - f0) / secs:5.0f}")
PY
  fi
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

for _ in $(seq 1 "$ROUNDS"); do
  for p in "$@"; do
    case $p in
      haproxy) measure haproxy haproxy -f "$OUT/haproxy.cfg" ;;
      nginx) measure nginx /usr/sbin/nginx -p "$OUT/ngx" -c "$OUT/ngx/nginx.conf" ;;
      *) measure "$(basename "$p")" "$p" proxy -c "$OUT/bootstrap.yaml" --concurrency 1 -l warn ;;
    esac
  done
done
