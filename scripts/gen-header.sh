#!/usr/bin/env bash
# Generate include/adamant.h from ffi/src with the pinned cbindgen (0.29.4).
#   scripts/gen-header.sh           regenerate include/adamant.h
#   scripts/gen-header.sh --check   fail (exit 1, with a diff) when the committed header is stale
# cbindgen is installed once into $ADAMANT_CACHE (default ~/.cache/adamant) with
# `cargo install --locked`; point CBINDGEN at another binary of the same version to skip that.
set -euo pipefail
VERSION=0.29.4
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${ADAMANT_CACHE:-$HOME/.cache/adamant}"
CBINDGEN="${CBINDGEN:-$CACHE/cbindgen-$VERSION/bin/cbindgen}"
if [ ! -x "$CBINDGEN" ]; then
    echo "installing cbindgen $VERSION into $CACHE/cbindgen-$VERSION" >&2
    CARGO_TARGET_DIR="$CACHE/cbindgen-build" cargo install cbindgen --version "$VERSION" \
        --locked --root "$CACHE/cbindgen-$VERSION" >&2
fi
got="$("$CBINDGEN" --version)"
if [ "$got" != "cbindgen $VERSION" ]; then
    echo "need cbindgen $VERSION, found '$got' at $CBINDGEN" >&2
    exit 2
fi
out="$ROOT/include/adamant.h"
tmp="$(mktemp)"
trap 'rm -f "$tmp"' EXIT
(cd "$ROOT" && "$CBINDGEN" --quiet --config ffi/cbindgen.toml --crate adamant-ffi --output "$tmp" ffi)
if [ "${1:-}" = "--check" ]; then
    if ! diff -u "$out" "$tmp"; then
        echo "include/adamant.h is stale: run scripts/gen-header.sh and commit it" >&2
        exit 1
    fi
    echo "include/adamant.h is up to date (cbindgen $VERSION)"
else
    mkdir -p "$ROOT/include"
    cp "$tmp" "$out"
    echo "wrote $out"
fi
