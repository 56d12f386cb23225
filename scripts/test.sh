#!/usr/bin/env bash
# The README's test command: installs what the tests need on a fresh Debian 12 machine, then
# runs every test. Safe to re-run; each install step is skipped when already satisfied.
#
#   bash scripts/test.sh            # everything
#   ADAMANT_SKIP_PYTHON=1 ...       # (local iteration only) skip the Python/JAX stage
#
# Caches: $ADAMANT_CACHE (default ~/.cache/adamant) holds the CUDA toolchain, the pinned
# cbindgen and the Python venv; CARGO_TARGET_DIR and PIP_CACHE_DIR are honoured.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export ADAMANT_CACHE="${ADAMANT_CACHE:-$HOME/.cache/adamant}"
mkdir -p "$ADAMANT_CACHE"
export CARGO_TERM_COLOR=never
START=$(date +%s)
stage() { printf '\n==> [%4ss] %s\n' "$(( $(date +%s) - START ))" "$*"; }

# ---------------------------------------------------------------------------- system packages
stage "system packages"
need=()
for pkg in cmake pkg-config libclang-dev; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

# ---------------------------------------------------------------------------- CUDA toolchain
stage "minimal CUDA 11.8 toolchain (nvcc, ptxas; no driver, no GPU)"
CUDA_BIN=$(bash cuda/scripts/setup-toolchain.sh "$ADAMANT_CACHE/cuda-11.8" | tail -n 1)
export PATH="$CUDA_BIN:$PATH"
export ADAMANT_CUDA_BIN="$CUDA_BIN"

# ---------------------------------------------------------------------------- Rust checks
stage "cargo fmt --check"
cargo fmt --all -- --check
stage "cargo clippy -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
stage "core has no std/alloc in its dependency tree"
bash scripts/check-core-no-std.sh

stage "cargo test (workspace, release: bit-exactness matrices are large)"
cargo test --workspace --release --no-fail-fast 2>&1 | tee "$ADAMANT_CACHE/cargo-test.log"

# ---------------------------------------------------------------------------- generated files
stage "include/adamant.h is what the pinned cbindgen generates"
bash scripts/gen-header.sh --check
stage "cuda/ptx is what nvcc 11.8 generates; ptxas: no spills, no stack"
bash cuda/scripts/check-ptx.sh

# ---------------------------------------------------------------------------- C and C++
stage "C and C++ examples against libadamant.a / libadamant.so (pkg-config, CMake find_package)"
bash scripts/test-c.sh

# ---------------------------------------------------------------------------- CLI smoke
stage "adamant CLI"
ADAMANT=("$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/adamant")
cargo build --release -q -p adamant-cli
"${ADAMANT[@]}" demo
"${ADAMANT[@]}" bench --quick --json
"${ADAMANT[@]}" memory --model llama2-7b
"${ADAMANT[@]}" verify --json

# ---------------------------------------------------------------------------- Python / JAX
if [ "${ADAMANT_SKIP_PYTHON:-0}" != 1 ]; then
  stage "Python package (numpy, JAX 0.10.2 CPU) and its tests"
  bash bindings/python/scripts/test.sh
fi

stage "all tests passed"
