#!/usr/bin/env bash
# The Rust-side ABI tests (ffi/tests: errors, bits, fuzz, no_alloc) under instrumentation,
# with a nightly toolchain (these flags are nightly-only):
#   asan  every test, 100000 fuzz cases, under AddressSanitizer (-Zsanitizer=address) (~2 min)
#   miri  the unit, error and (60-case) fuzz tests under Miri with strict provenance (~10 min)
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
    echo "== Miri (strict provenance): unit, error and fuzz tests"
    ADAMANT_FUZZ_CASES=60 MIRIFLAGS="-Zmiri-strict-provenance" CARGO_TARGET_DIR="$ROOT/target/miri" \
        cargo +nightly miri test -p adamant-ffi --lib --test errors --test fuzz --test bits \
        -- --skip conformance_adam --skip conformance_sgd --skip conformance_lion \
        --skip conformance_reductions
fi
