#!/usr/bin/env bash
# Install libadamant (.so and .a), adamant.h, adamant.hpp, adamant.pc and the CMake package.
#   scripts/install.sh [--prefix DIR] [--no-build]
# Default prefix /usr/local. Builds `cargo build --release -p adamant-ffi` first unless
# --no-build (then the libraries must already be in target/release).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PREFIX=/usr/local
BUILD=1
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) PREFIX="$2"; shift 2 ;;
        --prefix=*) PREFIX="${1#--prefix=}"; shift ;;
        --no-build) BUILD=0; shift ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
if [ "$BUILD" = 1 ]; then
    (cd "$ROOT" && cargo build --release -p adamant-ffi)
fi
LIBDIR="${CARGO_TARGET_DIR:-$ROOT/target}/release"
VERSION="$(sed -n 's/^#define ADAMANT_VERSION_STRING "\(.*\)"$/\1/p' "$ROOT/include/adamant.h")"
CONTRACT="$(sed -n 's/^#define ADAMANT_NUMERIC_CONTRACT_VERSION \([0-9]*\)$/\1/p' "$ROOT/include/adamant.h")"
mkdir -p "$PREFIX/lib/pkgconfig" "$PREFIX/lib/cmake/adamant" "$PREFIX/include"
install -m 0755 "$LIBDIR/libadamant.so" "$PREFIX/lib/libadamant.so"
install -m 0644 "$LIBDIR/libadamant.a" "$PREFIX/lib/libadamant.a"
install -m 0644 "$ROOT/include/adamant.h" "$PREFIX/include/adamant.h"
install -m 0644 "$ROOT/bindings/cpp/adamant.hpp" "$PREFIX/include/adamant.hpp"
sed -e "s|@PREFIX@|$PREFIX|" -e "s|@ADAMANT_VERSION@|$VERSION|" \
    "$ROOT/cmake/adamant.pc.in" > "$PREFIX/lib/pkgconfig/adamant.pc"
sed -e "s|@ADAMANT_NUMERIC_CONTRACT_VERSION@|$CONTRACT|" \
    "$ROOT/cmake/adamantConfig.cmake.in" > "$PREFIX/lib/cmake/adamant/adamantConfig.cmake"
sed -e "s|@ADAMANT_VERSION@|$VERSION|" \
    "$ROOT/cmake/adamantConfigVersion.cmake.in" > "$PREFIX/lib/cmake/adamant/adamantConfigVersion.cmake"
echo "installed adamant $VERSION into $PREFIX"
