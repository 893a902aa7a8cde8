#!/usr/bin/env bash
# weft's distribution build: the release profile plus profile-guided optimisation (PGO).
#
#   scripts/pgo-build.sh            # -> $CARGO_TARGET_DIR/pgo/release/weft (default target/)
#
# 1. builds an instrumented `weft` (-Cprofile-generate; target/pgo-gen),
# 2. trains it on two bounded workloads, every process of them that instrumented `weft`:
#    a. scripts/pgo/front.yaml in front of scripts/pgo/upstream.yaml: HTTP/1.1 keep-alive
#       and new connections, h2c, POST bodies, header and prefix routes, weighted clusters,
#       an HTTP/2 upstream, retries and an access log;
#    b. the Bookinfo demo (`weft demo`: control plane, gateway, a sidecar per workload,
#       its xDS) under load through its gateway, HTTP/1.1 and h2c,
# 3. merges the profiles (llvm-profdata from rustup's llvm-tools component),
# 4. builds `weft` again with -Cprofile-use (target/pgo).
#
# The same source and Cargo profile as `cargo build --release`; only the code layout,
# inlining and branch order follow the measured profile (docs/performance.md,
# "Profile-guided distribution build").
# Takes about 12 minutes on 2 cores (two full builds). Needs h2load (Debian nghttp2-client;
# installed when missing) and setpriv (util-linux). Listens only on loopback: 127.0.0.1 ports
# PGO_PORT..PGO_PORT+4 (default 19480) and the demo's pod addresses in 127.0.12.0/24 (not
# the 127.0.10.0/24 of a `scripts/demo.sh` that may be running).
set -euo pipefail
cd "$(dirname "$0")/.."
T=${CARGO_TARGET_DIR:-target}
mkdir -p "$T"
T=$(cd "$T" && pwd)
DATA=$T/pgo-data
BASE=${PGO_PORT:-19480}
FRONT=$BASE UP=$((BASE + 1)) INGRESS=$((BASE + 2)) XDS=$((BASE + 3)) API=$((BASE + 4))

have() { command -v "$1" >/dev/null 2>&1; }
if ! have h2load; then
  SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nghttp2-client >/dev/null
fi
sysroot=$(rustc --print sysroot)
host=$(rustc -vV | sed -n 's/^host: //p')
profdata=$sysroot/lib/rustlib/$host/bin/llvm-profdata
if [[ ! -x $profdata ]]; then
  rustup component add llvm-tools
fi

echo "pgo-build: 1/4 instrumented build"
RUSTFLAGS="-Cprofile-generate=$DATA/raw" cargo build --release -p weft --target-dir "$T/pgo-gen"
cargo build --release -p weft-bookinfo --target-dir "$T"
gen=$T/pgo-gen/release/weft
# Build scripts and proc macros are instrumented too: keep only the training's profiles.
rm -rf "$DATA"
mkdir -p "$DATA/raw" "$DATA/run"

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
wait_for() { # URL: until it answers 200 (bounded: 20 s)
  for _ in $(seq 1 200); do
    [[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1" || true)" == 200 ]] && return 0
    sleep 0.1
  done
  echo "pgo-build: $1 did not answer 200" >&2
  return 1
}
stop() { # PID: SIGTERM (the profile is written at exit), then wait
  kill -TERM "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
load() { # h2load with a bounded request count; fails the build when requests fail
  local out
  out=$(h2load "$@")
  grep -E "^requests:" <<<"$out"
  grep -qE " 0 failed, 0 errored, 0 timeout" <<<"$out" || { echo "$out" >&2; return 1; }
}

echo "pgo-build: 2/4 training a: proxy in front of a direct-response upstream"
for f in upstream front; do
  sed -e "s/PORT_UP/$UP/g" -e "s/PORT_FRONT/$FRONT/g" "scripts/pgo/$f.yaml" >"$DATA/run/$f.yaml"
done
"$gen" proxy -c "$DATA/run/upstream.yaml" --concurrency 1 -l warn >"$DATA/run/upstream.log" 2>&1 &
up=$!
pids+=("$up")
"$gen" proxy -c "$DATA/run/front.yaml" --concurrency 1 -l warn >"$DATA/run/front.log" 2>&1 &
front=$!
pids+=("$front")
wait_for "http://127.0.0.1:$FRONT/"
u=http://127.0.0.1:$FRONT
head -c 16384 /dev/zero | tr '\0' 'p' >"$DATA/run/body"
load --h1 -n 200000 -c 16 -t 1 "$u/productpage" "$u/api/v1/items?id=7" "$u/static/app.js"
load --h1 -n 20000 -c 16 -t 1 -H ':authority: reviews:9080' -H 'end-user: jason' "$u/reviews/0"
load --h1 -n 30000 -c 16 -t 1 -H ':authority: reviews:9080' "$u/reviews/0"
load --h1 -n 20000 -c 8 -t 1 -d "$DATA/run/body" "$u/api/v1/upload"
h2load --h1 -n 2000 -c 4 -t 1 "$u/status/503" >/dev/null || true # retried 503s: "failed" to h2load
load -n 100000 -c 16 -m 8 -t 1 "$u/productpage" "$u/api/v1/items"
# New connections: one request each (h2load --h1 with -n = -c over many rounds).
for _ in $(seq 1 50); do load --h1 -n 64 -c 64 -t 1 "$u/productpage" >/dev/null; done
stop "$front"
stop "$up"

echo "pgo-build: 3/4 training b: the Bookinfo demo through its gateway"
"$gen" demo --ingress "127.0.0.1:$INGRESS" --xds-addr "127.0.0.1:$XDS" --api-addr "127.0.0.1:$API" \
  --pod-subnet 127.0.12.0 --state-dir "$DATA/run/demo" --bookinfo-bin "$T/release/bookinfo" >"$DATA/run/demo.log" 2>&1 &
demo=$!
pids+=("$demo")
wait_for "http://127.0.0.1:$INGRESS/productpage"
load --h1 -n 5000 -c 8 -t 1 "http://127.0.0.1:$INGRESS/productpage"
load -n 5000 -c 8 -m 4 -t 1 "http://127.0.0.1:$INGRESS/productpage"
kill -INT "$demo"
wait "$demo" 2>/dev/null || true
trap - EXIT

echo "pgo-build: 4/4 merge and optimised build"
"$profdata" merge -o "$DATA/weft.profdata" "$DATA"/raw/*.profraw
RUSTFLAGS="-Cprofile-use=$DATA/weft.profdata" cargo build --release -p weft --target-dir "$T/pgo"
echo "pgo-build: $T/pgo/release/weft"
