#!/usr/bin/env bash
# C/C++ integration of adamant, as CI runs it (needs gcc, g++, cmake, pkg-config; see below).
#  1. include/adamant.h equals what the pinned cbindgen generates (scripts/gen-header.sh --check);
#  2. release build, install into a temporary prefix (scripts/install.sh);
#  3. libadamant.so needs no NVIDIA library (ldd / readelf NEEDED) and loads without a GPU;
#  4. C11 programs (tests/c/abi_checks.c, examples/c/llmc_adamw.c) against libadamant.a and
#     libadamant.so, -Wall -Wextra -Wpedantic -Werror, ASan+UBSan; the shared build through
#     pkg-config;
#  5. C++17 programs: tests/cpp/header_checks.cpp directly, examples/cpp/multi_tensor.cpp
#     through CMake find_package(adamant) against both libraries, ASan+UBSan;
#  6. the examples' outputs equal adamant's Rust API bit for bit (ffi/tests/examples.rs).
# apt: build-essential cmake pkg-config (and libclang-dev for the bindgen layout test).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
PREFIX="$WORK/prefix"
OUT="$WORK/out"
mkdir -p "$OUT"
SAN="-fsanitize=address,undefined -fno-sanitize-recover=all"
CWARN="-Wall -Wextra -Wpedantic -Werror"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
step() { echo "== $*"; }

step "header is fresh"
"$ROOT/scripts/gen-header.sh" --check

step "build and install into $PREFIX"
"$ROOT/scripts/install.sh" --prefix "$PREFIX" > "$WORK/install.log" 2>&1 || { cat "$WORK/install.log"; exit 1; }
SO="$PREFIX/lib/libadamant.so"
A="$PREFIX/lib/libadamant.a"

step "libadamant.so depends on no NVIDIA library"
ldd "$SO"
if ldd "$SO" | grep -Eiq 'nvidia|libcuda|cudart|cublas|nvrtc|nvjitlink'; then
    echo "libadamant.so links an NVIDIA library" >&2
    exit 1
fi
if readelf -d "$SO" | grep NEEDED | grep -Eiq 'cuda|nvidia|nvrtc'; then
    echo "libadamant.so has an NVIDIA NEEDED entry" >&2
    exit 1
fi
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    echo "(a GPU is present: the load-without-GPU check below is not meaningful here)"
fi

export PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig"
STATIC_LIBS="$(pkg-config --libs-only-l --static adamant | sed 's/-ladamant//')"
build_c() { # name source kind
    local name="$1" src="$2" kind="$3"
    if [ "$kind" = static ]; then
        gcc -std=c11 $CWARN -g $SAN "$src" $(pkg-config --cflags adamant) "$A" $STATIC_LIBS -o "$WORK/$name"
    else
        gcc -std=c11 $CWARN -g $SAN "$src" $(pkg-config --cflags --libs adamant) \
            -Wl,-rpath,"$PREFIX/lib" -o "$WORK/$name"
    fi
}

for kind in static shared; do
    step "C11 against libadamant ($kind)"
    build_c "abi_checks_$kind" "$ROOT/tests/c/abi_checks.c" "$kind"
    "$WORK/abi_checks_$kind"
    build_c "llmc_adamw_$kind" "$ROOT/examples/c/llmc_adamw.c" "$kind"
    "$WORK/llmc_adamw_$kind" > "$OUT/c_$kind.txt"
    cat "$OUT/c_$kind.txt"
done

step "C++17 header checks"
g++ -std=c++17 $CWARN -g $SAN "$ROOT/tests/cpp/header_checks.cpp" -I"$PREFIX/include" \
    "$A" $STATIC_LIBS -o "$WORK/header_checks_static"
"$WORK/header_checks_static"
g++ -std=c++17 $CWARN -g $SAN "$ROOT/tests/cpp/header_checks.cpp" -I"$PREFIX/include" \
    -L"$PREFIX/lib" -ladamant -Wl,-rpath,"$PREFIX/lib" -o "$WORK/header_checks_shared"
"$WORK/header_checks_shared"

for kind in static shared; do
    step "C++17 example through CMake find_package(adamant) ($kind)"
    st=OFF; [ "$kind" = static ] && st=ON
    cmake -S "$ROOT/examples/cpp" -B "$WORK/cmake-$kind" -DCMAKE_PREFIX_PATH="$PREFIX" \
        -DADAMANT_STATIC=$st -DCMAKE_BUILD_TYPE=Debug \
        -DCMAKE_CXX_FLAGS="$SAN" -DCMAKE_EXE_LINKER_FLAGS="$SAN" > "$WORK/cmake-$kind.log" 2>&1 \
        || { cat "$WORK/cmake-$kind.log"; exit 1; }
    cmake --build "$WORK/cmake-$kind" >> "$WORK/cmake-$kind.log" 2>&1 \
        || { cat "$WORK/cmake-$kind.log"; exit 1; }
    "$WORK/cmake-$kind/multi_tensor" > "$OUT/cpp_$kind.txt"
    cat "$OUT/cpp_$kind.txt"
done

step "example outputs equal the Rust API bit for bit"
(cd "$ROOT" && ADAMANT_EXAMPLE_OUTPUTS="$OUT" cargo test --release -p adamant-ffi --test examples -- --ignored)
echo "test-c.sh: all C/C++ checks passed"
