#!/usr/bin/env bash
# weft's whole test suite: installs what the tests need, then formatting, lints and every
# test of the workspace. CI runs exactly this (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/test-deps.sh

echo "== cargo fmt --check"
cargo fmt --all --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== cargo test"
mkdir -p target
# `weft demo`'s tests run the Bookinfo binary beside `weft` (crates/weft/tests/demo.rs).
cargo build --locked -p weft-bookinfo --bin bookinfo
cargo test --workspace --locked --no-fail-fast 2>&1 | tee target/test-output.txt
status=${PIPESTATUS[0]}

# One closing line for the whole run: "N passed, N failed".
passed=$(grep -Eo 'test result: [a-zA-Z]+\. [0-9]+ passed' target/test-output.txt | awk '{s+=$4} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed' target/test-output.txt | awk '{s+=$1} END {print s+0}')
ignored=$(grep -Eo '[0-9]+ ignored' target/test-output.txt | awk '{s+=$1} END {print s+0}')
echo
echo "weft: ${passed} passed, ${failed} failed, ${ignored} skipped"
exit "$status"
