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

if ((${#need_apt[@]})); then
  SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  echo "test-deps: apt-get install ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
