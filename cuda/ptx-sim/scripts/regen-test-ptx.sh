#!/bin/sh
# Regenerate the committed PTX of the simulator's test kernels (tests/kernels/*.cu) with
# nvcc 11.8 for compute_70, or with --check compare fresh output against the committed files.
# Needs the minimal CUDA 11.8 toolchain: cuda/scripts/setup-toolchain.sh prints its bin dir
# (or set NVCC_BIN to it).
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${NVCC_BIN:-$(sh "$here/../scripts/setup-toolchain.sh" | tail -n 1)}
check=0
[ "${1:-}" = "--check" ] && check=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0
for cu in "$here"/tests/kernels/*.cu; do
    ptx="${cu%.cu}.ptx"
    "$bin/nvcc" -ccbin g++-12 -allow-unsupported-compiler -O3 -ptx -arch=compute_70 \
        "$cu" -o "$tmp/out.ptx"
    if [ $check = 1 ]; then
        if ! cmp -s "$tmp/out.ptx" "$ptx"; then
            echo "stale: $ptx (run $0 to regenerate)" >&2
            status=1
        fi
    else
        mv "$tmp/out.ptx" "$ptx"
    fi
done
exit $status
