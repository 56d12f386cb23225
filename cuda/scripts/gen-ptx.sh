#!/usr/bin/env bash
# Regenerates cuda/ptx/<name>.ptx from cuda/kernels/<name>.cu with nvcc 11.8 for compute_70
# (PTX ISA 7.8), deterministically (nvcc's PTX carries no paths or timestamps).
# Usage: cuda/scripts/gen-ptx.sh [OUT_DIR]   (default: cuda/ptx)
# The toolchain comes from setup-toolchain.sh (installed on first use, ~6 s).
# Never add -use_fast_math / -ftz=true / -prec-div=false / -prec-sqrt=false: they turn the
# explicit .rn intrinsics into .ftz / .approx operations and break the numeric contract.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cuda_dir=$(dirname "$here")
out=${1:-$cuda_dir/ptx}
bin=$("$here/setup-toolchain.sh" | tail -n 1)
host_cxx=${ADAMANT_NVCC_CCBIN:-$(command -v g++-12 || command -v g++-11 || command -v g++)}
mkdir -p "$out"
for cu in "$cuda_dir"/kernels/*.cu; do
  name=$(basename "$cu" .cu)
  # nvcc 11.8 refuses gcc 12 as host compiler; for device-only -ptx output the host
  # compiler does not influence the PTX (byte-identical to a g++-11 build).
  "$bin/nvcc" -ccbin "$host_cxx" -allow-unsupported-compiler -O3 -fmad=false \
    -ptx -arch=compute_70 -I"$cuda_dir/kernels" "$cu" -o "$out/$name.ptx"
done
ls "$out"/*.ptx >&2
