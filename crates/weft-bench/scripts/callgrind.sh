#!/usr/bin/env bash
# callgrind.sh - instructions per proxied request, counted by valgrind (repeatable on a busy
# machine, unlike wall-clock figures).
#
# Runs `weft proxy --concurrency 1` under callgrind with the bootstrap shape of
# /work/shared/bench/weft-proxy.sh (one listener, one round-robin cluster) in front of an
# nginx upstream answering 1 KiB, warms up, zeroes the counters, sends exactly N HTTP/1.1
# keep-alive requests over C connections (h2load --h1), dumps, and prints Ir per request.
#
#   WEFT_BIN=target/release/weft N=20000 bash crates/weft-bench/scripts/callgrind.sh
#
# EXAMPLE=1 runs the weft-bench `proxy` example instead (same runtime and hot path, quicker
# to rebuild): WEFT_BIN=target/release/examples/proxy EXAMPLE=1 bash .../callgrind.sh
#
# Output: $OUT/callgrind.out.* and $OUT/annotate.txt (callgrind_annotate, inclusive).
# Only 127.0.0.1 is targeted; every phase is bounded by its request count.
set -euo pipefail
WEFT_BIN=${WEFT_BIN:?set WEFT_BIN to the weft binary (release, with line tables)}
N=${N:-20000}
WARM=${WARM:-2000}
C=${C:-16}
H2=${H2:-0}                          # 1 = downstream h2c (prior knowledge) instead of HTTP/1.1
UP_PORT=${UP_PORT:-18190}
PORT=${PORT:-10094}
OUT=${OUT:-/tmp/weft-callgrind/$(date +%Y%m%d-%H%M%S)}
# shellcheck source=upstream.sh
source "$(dirname "${BASH_SOURCE[0]}")/upstream.sh"

args=(proxy -c "$OUT/bootstrap.yaml" --concurrency 1 -l warn)
[[ "${EXAMPLE:-0}" == 1 ]] && args=("$OUT/bootstrap.yaml" 1)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

/usr/sbin/nginx -p "$OUT/up" -c "$OUT/up/nginx.conf" >"$OUT/up.out" 2>&1 &
pids+=($!)
valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.out.%p" \
  "$WEFT_BIN" "${args[@]}" >"$OUT/weft.out" 2>&1 &
vg=$!
pids+=($vg)

wait_200 600 0.2 || true
h2opts=(--h1)
[[ "$H2" == 1 ]] && h2opts=()
h2load "${h2opts[@]}" -n "$WARM" -c "$C" -t 1 "http://127.0.0.1:$PORT/" >"$OUT/warm.txt"
callgrind_control -z "$vg" >/dev/null
h2load "${h2opts[@]}" -n "$N" -c "$C" -t 1 "http://127.0.0.1:$PORT/" >"$OUT/load.txt"
callgrind_control -d "$vg" >/dev/null
grep -E "requests:|status codes:" "$OUT/load.txt"
kill "$vg"; wait "$vg" 2>/dev/null || true
dump=$(ls -t "$OUT"/callgrind.out.* | grep -v '\.[0-9]*$' | head -1 || true)
dump=$(ls -S "$OUT"/callgrind.out.*.1 2>/dev/null | head -1 || echo "$dump")
callgrind_annotate --inclusive=yes "$dump" >"$OUT/annotate.txt" 2>/dev/null || true
callgrind_annotate "$dump" >"$OUT/annotate-self.txt" 2>/dev/null || true
total=$(grep -m1 -oE '^[0-9,]+ +\(100.0%\) +PROGRAM TOTALS' "$OUT/annotate-self.txt" | tr -d , | awk '{print $1}')
echo "dump: $dump"
echo "Ir total: $total; requests: $N; Ir/request: $((total / N))"
