#!/usr/bin/env bash
# The Rust-side ABI tests (ffi/tests: errors, bits, fuzz, no_alloc) under instrumentation,
# with a nightly toolchain (these flags are nightly-only):
#   asan  every test, 100000 fuzz cases, under AddressSanitizer (-Zsanitizer=address) (~2 min)
#   miri  the unit tests, every error-code test and the multi-tensor/clip/scalar tests under
#         Miri with strict provenance (~3 min); the fuzz test is too slow for Miri (60 cases
#         did not finish in 20 min) and runs under ASan instead
# Needs `rustup toolchain install nightly --component miri rust-src` (miri only for `miri`).
#   scripts/test-ffi-sanitizers.sh [asan|miri|all]   (default asan)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
MODE="${1:-asan}"
cd "$ROOT"
if [ "$MODE" = asan ] || [ "$MODE" = all ]; then
    echo "== ASan: ABI tests, 100000 fuzz cases"
    ADAMANT_FUZZ_CASES=100000 RUSTFLAGS="-Zsanitizer=address" RUSTDOCFLAGS="-Zsanitizer=address" \
        CARGO_TARGET_DIR="$ROOT/target/asan" \
        cargo +nightly test -p adamant-ffi --target x86_64-unknown-linux-gnu --tests
fi
if [ "$MODE" = miri ] || [ "$MODE" = all ]; then
    echo "== Miri (strict provenance): unit, error and bits tests"
    MIRIFLAGS="-Zmiri-strict-provenance" CARGO_TARGET_DIR="$ROOT/target/miri" \
        cargo +nightly miri test -p adamant-ffi --lib --test errors --test bits \
        -- --skip conformance_adam --skip conformance_sgd --skip conformance_lion \
        --skip conformance_reductions
fi
