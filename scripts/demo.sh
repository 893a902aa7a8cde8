#!/usr/bin/env bash
# weft's main job on one machine: build weft and the Bookinfo sample, then run the local
# mesh (`weft demo`): control plane, ingress gateway on 127.0.0.1:8080 and every Bookinfo
# workload with its own weft sidecar. Open http://127.0.0.1:8080/productpage, then follow
# the steps it prints (README.md: "Quickstart"). Ctrl-C stops everything.
#
#   scripts/demo.sh                    # explicit mode: apps use their sidecar as HTTP proxy
#   sudo scripts/demo.sh --netns       # transparent capture in network namespaces
#   scripts/demo.sh --sidecar envoy    # Envoy 1.40 sidecars under weft's control plane
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p weft -p weft-bookinfo
exec "${CARGO_TARGET_DIR:-target}/release/weft" demo "$@"
