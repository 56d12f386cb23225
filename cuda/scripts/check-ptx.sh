#!/usr/bin/env bash
# Checks the committed PTX: (1) regenerating it gives the same bytes; (2) ptxas -v for sm_70,
# sm_80 and sm_90 reports 0 bytes stack frame and 0 bytes spill for every kernel; (3) SASS has
# no local-memory accesses (LDL/STL) and the update kernels use 128-bit global loads.
# Usage: cuda/scripts/check-ptx.sh   (installs the toolchain on first use)
# Set ADAMANT_PTXAS_REPORT=FILE to keep the ptxas -v output.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cuda_dir=$(dirname "$here")
bin=$("$here/setup-toolchain.sh" | tail -n 1)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

"$here/gen-ptx.sh" "$tmp/ptx" 2>/dev/null
for f in "$cuda_dir"/ptx/*.ptx; do
  name=$(basename "$f")
  if ! cmp -s "$f" "$tmp/ptx/$name"; then
    echo "STALE: cuda/ptx/$name differs from a fresh build (run cuda/scripts/gen-ptx.sh)"; fail=1
  fi
done
for f in "$tmp"/ptx/*.ptx; do
  [ -f "$cuda_dir/ptx/$(basename "$f")" ] || { echo "MISSING: cuda/ptx/$(basename "$f") is not committed"; fail=1; }
done

report=${ADAMANT_PTXAS_REPORT:-$tmp/ptxas.txt}
: > "$report"
export PATH="$bin:$PATH"  # cuobjdump runs nvdisasm from PATH
for f in "$cuda_dir"/ptx/*.ptx; do
  name=$(basename "$f" .ptx)
  for arch in sm_70 sm_80 sm_90; do
    out="$tmp/$name.$arch.txt"
    "$bin/ptxas" -O3 -v -arch=$arch "$f" -o "$tmp/$name.$arch.cubin" 2> "$out"
    { echo "== $name $arch"; cat "$out"; } >> "$report"
    kernels=$(grep -c "Compiling entry function" "$out")
    clean=$(grep -c "0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads" "$out" || true)
    if [ "$kernels" != "$clean" ]; then
      echo "SPILL/STACK: $name $arch: only $clean of $kernels kernels have no stack and no spills"
      grep -B2 -E "[1-9][0-9]* bytes (stack|spill)" "$out" | head -20
      fail=1
    fi
    sass="$tmp/$name.$arch.sass"
    "$bin/cuobjdump" -sass "$tmp/$name.$arch.cubin" > "$sass"
    if grep -qE "\b(LDL|STL)\b" "$sass"; then echo "LOCAL MEMORY: $name $arch uses LDL/STL"; fail=1; fi
    case $name in
      adam|sgd|lion|adam_mini)
        if ! grep -qE "LDG\.E\.128" "$sass"; then echo "NO 128-BIT LOADS: $name $arch"; fail=1; fi ;;
    esac
  done
  echo "ok: $name ($(grep -c '^.visible .entry' "$f") kernels)"
done
[ "$fail" = 0 ] || { echo "check-ptx: FAILED"; exit 1; }
echo "check-ptx: all PTX fresh; sm_70/80/90: 0 stack, 0 spills, no local memory"
