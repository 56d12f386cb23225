#!/bin/sh
# Regenerate the committed PTX of the simulator's test kernels (tests/kernels/*.cu).
# Needs the minimal CUDA 11.8 toolchain (cuda/scripts/setup-toolchain.sh prints its bin dir).
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${NVCC_BIN:-$(sh "$here/../scripts/setup-toolchain.sh" | tail -n 1)}
for cu in "$here"/tests/kernels/*.cu; do
    "$bin/nvcc" -ccbin g++-12 -allow-unsupported-compiler -O3 -ptx -arch=compute_70 \
        "$cu" -o "${cu%.cu}.ptx"
done
