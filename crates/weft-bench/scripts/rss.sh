#!/usr/bin/env bash
# rss.sh - weft proxy resident memory at idle, after a 64-connection burst, and under
# 1000 rps over 16 connections (the phases issue 3's harness reads), with the split into
# file-backed pages (the binary's code and data) and anonymous memory (heap, stacks).
#
#   WEFT_BIN=target/release/weft bash crates/weft-bench/scripts/rss.sh
#
# Same bootstrap shape as /work/shared/bench/weft-proxy.sh (one listener, one round-robin
# cluster) in front of an nginx upstream answering 1 KiB. Figures come from
# /proc/PID/smaps_rollup (Rss, Pss, Anonymous, and Rss minus Anonymous as "file") and
# VmHWM (peak). Only 127.0.0.1 is targeted; every load phase is bounded in time.
# Not a throughput benchmark: wall-clock phases are short and unpinned.
set -euo pipefail
WEFT_BIN=${WEFT_BIN:?set WEFT_BIN to the weft binary}
UP_PORT=${UP_PORT:-18290}
PORT=${PORT:-10194}
BURST_S=${BURST_S:-3}      # wrk -c64 (the harness's max phase is 10 s)
FIXED_S=${FIXED_S:-6}      # oha -q 1000 -c 16 (the harness's fixed phase is 15 s)
EXTRA_ARGS=${EXTRA_ARGS:-} # more `weft proxy` flags
OUT=${OUT:-$(mktemp -d /tmp/weft-rss.XXXXXX)}
# shellcheck source=upstream.sh
source "$(dirname "${BASH_SOURCE[0]}")/upstream.sh"

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

/usr/sbin/nginx -p "$OUT/up" -c "$OUT/up/nginx.conf" >"$OUT/up.out" 2>&1 &
pids+=($!)
# shellcheck disable=SC2086
"$WEFT_BIN" proxy -c "$OUT/bootstrap.yaml" --concurrency 1 -l warn $EXTRA_ARGS >"$OUT/weft.out" 2>&1 &
weft=$!
pids+=($weft)

wait_200 300 0.1 || true

# phase name -> one row: RSS, PSS, anonymous, file-backed (RSS - anonymous), peak, threads
report() {
  awk -v phase="$1" -v hwm="$(awk '$1=="VmHWM:"{print $2}' /proc/$weft/status)" \
    -v thr="$(awk '$1=="Threads:"{print $2}' /proc/$weft/status)" '
    $1=="Rss:"{r=$2} $1=="Pss:"{p=$2} $1=="Anonymous:"{a=$2}
    END{printf "%-22s rss %6.1f MB  pss %6.1f  anon %5.1f  file %5.1f  peak %5.1f  threads %d\n",
        phase, r/1024, p/1024, a/1024, (r-a)/1024, hwm/1024, thr}' /proc/$weft/smaps_rollup
}

sleep 1
report "idle"
wrk -t1 -c64 -d"${BURST_S}s" "http://127.0.0.1:$PORT/" >"$OUT/wrk.txt" 2>&1
report "after 64-conn burst"
sleep 2
report "burst + 2 s quiet"
oha --no-tui -q 1000 -c 16 -z "${FIXED_S}s" "http://127.0.0.1:$PORT/" >"$OUT/oha.txt" 2>&1 &
oha=$!
pids+=($oha)
sleep $((FIXED_S / 2))
report "during 1000 rps/16"
wait "$oha" || true
report "after 1000 rps/16"
grep -E "Requests/sec" "$OUT/wrk.txt" | sed 's/^/wrk burst: /'
grep -E "Success rate|Requests/sec" "$OUT/oha.txt" | sed 's/^ */oha: /'
echo "output: $OUT"
