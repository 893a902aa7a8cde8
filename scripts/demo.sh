#!/usr/bin/env bash
# weft's main job on a fresh machine: build weft, then check the bundled Bookinfo
# configuration the way a user does before applying it (validation, then analysis across
# resources). `weft demo` (the local Bookinfo mesh) takes this script's place when it lands.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p weft
WEFT=target/release/weft
echo "== weft validate -f samples/bookinfo"
"$WEFT" validate -f samples/bookinfo
echo "== weft analyze -f samples/bookinfo/networking -f samples/bookinfo/platform/kube"
"$WEFT" analyze -f samples/bookinfo/networking -f samples/bookinfo/platform/kube
