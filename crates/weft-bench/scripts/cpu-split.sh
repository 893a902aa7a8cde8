#!/usr/bin/env bash
# cpu-split.sh - where a proxy's time goes, weft beside the peers issue 3 compares it with,
# one after another under the same load, round after round:
#   - max load (default): user and system microseconds per request, rps per proxy core,
#     page faults; `wrk -t1 -c64` for MAX_S (8) seconds after a 2 s warm-up;
#   - FIXED=1: the harness's latency phase, `oha -q RATE -c CONNS` (1000 rps over 16
#     connections) for FIXED_S (15) seconds: p50, p99, p99.9 and vCPU per 1000 rps;
#   - STRACE=1: system calls per request, `strace -c` over N requests (h2load --h1 -c64);
#     slower, so only the counts mean anything.
#
#   ROUNDS=10 bash crates/weft-bench/scripts/cpu-split.sh target/release/weft haproxy nginx
#   FIXED=1 ROUNDS=6 bash crates/weft-bench/scripts/cpu-split.sh direct target/release/weft haproxy envoy
#   STRACE=1 bash crates/weft-bench/scripts/cpu-split.sh target/release/weft haproxy nginx
#
# Arguments name the targets: `direct` (the upstream itself, no proxy), `envoy`, `haproxy`,
# `nginx`, or a path to a weft binary (`weft proxy --concurrency 1`); weft and Envoy run the
# bootstrap shape of /work/shared/bench/weft-proxy.sh. Placement as in proxy_bench.sh: the
# nginx upstream (1 KiB) and the load generator on core 0, the proxy alone on core 1, all at
# SCHED_FIFO 20; one worker thread each. CPU figures come from /proc/PID/stat.
#
# With ROUNDS > 1 it ends with a paired summary: per target the medians and, round by round,
# the ratio to the reference REF (haproxy by default) measured in the same round, with how
# many rounds the target did at least as well (rps per core; with FIXED=1, the p99 added
# over `direct` of the same round and vCPU per 1000 rps). Neighbouring runs see the same
# host, so these ratios drift far less than figures taken minutes apart.
# Only 127.0.0.1 is targeted; every load phase is bounded in time or count.
set -euo pipefail
ROUNDS=${ROUNDS:-1}
MAX_S=${MAX_S:-8}
N=${N:-20000}
FIXED=${FIXED:-0}
STRACE=${STRACE:-0}
RATE=${RATE:-1000}
CONNS=${CONNS:-16}
FIXED_S=${FIXED_S:-15}
OHA=${OHA:-$(command -v oha || echo "$HOME/.cargo/bin/oha")}
UP_PORT=${UP_PORT:-18390}
PORT=${PORT:-10394}
OUT=${OUT:-$(mktemp -d /tmp/weft-cpu-split.XXXXXX)}
# shellcheck source=upstream.sh
source "$(dirname "${BASH_SOURCE[0]}")/upstream.sh"
(($# > 0)) || { echo "usage: $0 (direct|envoy|haproxy|nginx|WEFT_BIN)..." >&2; exit 2; }

: >"$OUT/rounds.txt"
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
wait_200 50 0.1 "$UP_PORT" || { echo "the upstream nginx did not answer 200 on :$UP_PORT" >&2; exit 1; }

# fields: minflt utime stime (clock ticks)
stat3() { awk '{print $10, $14, $15}' "/proc/$1/stat"; }

measure() { # label cmd...   (no cmd: `direct`, the upstream without a proxy)
  local label=$1; shift
  local pid="" port=$PORT
  if (($# > 0)); then
    chrt -f 20 taskset -c 1 "$@" >"$OUT/$label.out" 2>&1 &
    pid=$!
    pids+=("$pid")
    wait_200 100 0.1 || { echo "$label did not answer 200 on :$PORT (see $OUT/$label.out)" >&2; exit 1; }
  else
    port=$UP_PORT
  fi
  local url="http://127.0.0.1:$port/"
  on 0 wrk -t1 -c64 -d2s "$url" >/dev/null
  if [[ "$STRACE" == 1 && -n "$pid" ]]; then
    strace -c -f -p "$pid" -o "$OUT/$label.strace" 2>/dev/null &
    local st=$!
    sleep 1
    h2load --h1 -n "$N" -c 64 -t 1 "$url" | grep -E "^requests:"
    kill -INT "$st"; wait "$st" 2>/dev/null || true
    awk -v n="$N" -v l="$label" '$1 ~ /^[0-9.]+$/ && $4 ~ /^[0-9]+$/ {
      printf "%s %s %.3f\n", l, $NF, $4 / n }' "$OUT/$label.strace"
  elif [[ "$STRACE" != 1 ]]; then
    local f0=0 u0=0 s0=0 f1=0 u1=0 s1=0 load
    [[ -n "$pid" ]] && read -r f0 u0 s0 < <(stat3 "$pid")
    if [[ "$FIXED" == 1 ]]; then
      load="$OUT/$label.oha.json"
      on 0 "$OHA" --no-tui --output-format json -q "$RATE" -c "$CONNS" -z "${FIXED_S}s" -w \
        --latency-correction "$url" >"$load" 2>"$load.err" || true
    else
      load="$OUT/$label.wrk.txt"
      on 0 wrk -t1 -c64 -d"${MAX_S}s" "$url" >"$load"
    fi
    [[ -n "$pid" ]] && read -r f1 u1 s1 < <(stat3 "$pid")
    python3 - "$label" "$FIXED" "$load" "$(getconf CLK_TCK)" "${pid:-0}" \
      "$u0" "$u1" "$s0" "$s1" "$f0" "$f1" <<'PY' | tee -a "$OUT/rounds.txt"
import json, re, sys
label, fixed, load, clk, pid = sys.argv[1], sys.argv[2] == "1", sys.argv[3], float(sys.argv[4]), sys.argv[5]
u0, u1, s0, s1, f0, f1 = map(int, sys.argv[6:12])
user, sys_ = (u1 - u0) / clk, (s1 - s0) / clk
if fixed:
    j = json.load(open(load))
    s, p = j["summary"], j["latencyPercentiles"]
    reqs, secs = sum(j.get("statusCodeDistribution", {}).values()), s["total"]
    lat = " ".join(f"{k} {p[k] * 1e3:6.3f}" for k in ("p50", "p99", "p99.9"))
    line = f"{label:12} {reqs / secs:6.0f} rps  {lat} ms"
else:
    txt = open(load).read()
    reqs = int(re.search(r"(\d+) requests in", txt).group(1))
    secs = float(re.search(r"requests in ([\d.]+)s", txt).group(1))
    line = f"{label:12} {reqs / secs:8.0f} rps"
if pid != "0":
    cpu = user + sys_
    line += (f"  user {user * 1e6 / reqs:5.2f} us/req  sys {sys_ * 1e6 / reqs:5.2f} us/req"
             f"  cores {cpu / secs:4.2f}")
    # At max load the proxy's efficiency; at a fixed rate, its cost.
    line += (f"  vcpu/1k {cpu / secs / (reqs / secs / 1000):.3f}" if fixed
             else f"  rps/core {reqs / cpu:7.0f}")
    line += f"  minflt/s {(f1 - f0) / secs:5.0f}"
print(line)
PY
  fi
  if [[ -n "$pid" ]]; then kill "$pid"; wait "$pid" 2>/dev/null || true; fi
}

for _ in $(seq 1 "$ROUNDS"); do
  for p in "$@"; do
    case $p in
      direct) measure direct ;;
      haproxy) measure haproxy haproxy -f "$OUT/haproxy.cfg" ;;
      nginx) measure nginx /usr/sbin/nginx -p "$OUT/ngx" -c "$OUT/ngx/nginx.conf" ;;
      envoy) measure envoy envoy -c "$OUT/bootstrap.yaml" --concurrency 1 -l warn ;;
      *) measure "$(basename "$p")" "$p" proxy -c "$OUT/bootstrap.yaml" --concurrency 1 -l warn ;;
    esac
  done
done

if [[ "$STRACE" != 1 ]] && ((ROUNDS > 1)); then
  python3 - "$OUT/rounds.txt" "${REF:-haproxy}" "$FIXED" <<'PY'
import statistics, sys
path, ref, fixed = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
runs = {}
for line in open(path):
    f = line.split()
    row = {f[i]: float(f[i + 1]) for i in range(1, len(f) - 1) if f[i] in ("rps/core", "p99", "vcpu/1k")}
    row["rps"] = float(f[1])
    runs.setdefault(f[0], []).append(row)
med = statistics.median
def paired(label, key, better):
    """Round-by-round ratio of label's key to ref's, and the rounds label did at least as well.
    The count compares the figures themselves, so a round where ref's is not positive (an
    added p99 at or below direct's) still counts; only the ratios skip it."""
    pairs = list(zip(runs[label], runs[ref]))
    wins = sum(better(a[key], b[key]) for a, b in pairs)
    r = [a[key] / b[key] for a, b in pairs if b[key] > 0]
    ratios = f"median {med(r):.3f} (min {min(r):.3f}, max {max(r):.3f})" if r else "n/a"
    return f"{key} ÷ {ref}: {ratios}, at least as good in {wins}/{len(pairs)}"
if fixed and "direct" in runs:  # latency each proxy adds over no proxy, same round
    for label, v in runs.items():
        for row, d in zip(v, runs["direct"]):
            row["+p99"] = row["p99"] - d["p99"]
print(f"\npaired summary, {len(next(iter(runs.values())))} rounds, each ratio against {ref} in the same round:")
for label, v in runs.items():
    parts = [label.ljust(12)]
    keys = (["p99", "+p99", "vcpu/1k"] if fixed else ["rps", "rps/core"])
    parts += [f"median {k} {med([x[k] for x in v]):{'.0f' if k.startswith('rps') else '.3f'}}"
              for k in keys if all(k in x for x in v)]
    if ref in runs and label != ref and label != "direct":
        if fixed:
            if "+p99" in v[0]:
                parts.append(paired(label, "+p99", lambda a, b: a <= b))
            parts.append(paired(label, "vcpu/1k", lambda a, b: a <= b))
        else:
            parts.append(paired(label, "rps/core", lambda a, b: a >= b))
    print("  ".join(parts))
PY
fi
