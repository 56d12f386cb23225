#!/usr/bin/env bash
# Installs the minimal NVIDIA toolchain adamant needs to regenerate and check its PTX
# (nvcc 11.8, cicc, ptxas, cuobjdump, nvdisasm + CUDA 11.8 headers) into a prefix, without
# installing any driver or the 5 GiB toolkit. Recipe: shared/reference/cuda-toolchain.md 1.1.
# Usage: cuda/scripts/setup-toolchain.sh [PREFIX]   (default: $ADAMANT_CUDA_PREFIX or ~/.cache/adamant/cuda-11.8)
# Prints the prefix's bin directory on its last line. Idempotent: a complete prefix is reused.
set -euo pipefail
PREFIX=${1:-${ADAMANT_CUDA_PREFIX:-$HOME/.cache/adamant/cuda-11.8}}
if [ -x "$PREFIX/bin/nvcc" ] && [ -x "$PREFIX/bin/ptxas" ] && [ -f "$PREFIX/include/cuda_bf16.h" ] \
   && [ -f "$PREFIX/nvvm/libdevice/libdevice.10.bc" ]; then
  echo "$PREFIX/bin"; exit 0
fi
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
# Debian's NVIDIA toolkit lives in contrib/non-free, which a stock bookworm image does not enable.
if ! grep -rqs "non-free" /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null; then
  $SUDO tee /etc/apt/sources.list.d/zz-adamant-nonfree.sources >/dev/null <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: contrib non-free
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  $SUDO apt-get update -qq >&2
elif ! apt-cache show nvidia-cuda-toolkit >/dev/null 2>&1; then
  $SUDO apt-get update -qq >&2
fi
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
( cd "$scratch" && apt-get download nvidia-cuda-toolkit >&2 )
dpkg-deb -x "$scratch"/nvidia-cuda-toolkit_*.deb "$scratch/deb"
PY=${PYTHON:-python3}
"$PY" -m pip download -q --no-deps -d "$scratch/wheels" \
  nvidia-cuda-runtime-cu11==11.8.89 nvidia-cuda-nvcc-cu11==11.8.89 >&2
mkdir -p "$scratch/whl"
for w in "$scratch"/wheels/*.whl; do "$PY" -m zipfile -e "$w" "$scratch/whl" >/dev/null; done
rm -rf "$PREFIX.partial"; mkdir -p "$PREFIX.partial"/{bin,include,lib64,nvvm/libdevice}
d="$scratch/deb"
cp -a "$d"/usr/lib/nvidia-cuda-toolkit/bin/nvcc "$d"/usr/lib/nvidia-cuda-toolkit/bin/cicc "$PREFIX.partial/bin/"
[ -d "$d"/usr/lib/nvidia-cuda-toolkit/bin/crt ] && cp -a "$d"/usr/lib/nvidia-cuda-toolkit/bin/crt "$PREFIX.partial/bin/"
for t in ptxas cuobjdump nvdisasm fatbinary; do cp -a "$d/usr/bin/$t" "$PREFIX.partial/bin/"; done
cp -a "$d"/usr/lib/nvidia-cuda-toolkit/libdevice/libdevice.10.bc "$PREFIX.partial/nvvm/libdevice/"
for inc in "$scratch"/whl/nvidia/*/include; do cp -a "$inc"/. "$PREFIX.partial/include/"; done
cat > "$PREFIX.partial/bin/nvcc.profile" <<'PROF'
TOP = $(_HERE_)/..
NVVMIR_LIBRARY_DIR = $(TOP)/nvvm/libdevice
PATH += $(TOP)/bin:
INCLUDES += "-I$(TOP)/include" $(_SPACE_)
LIBRARIES =+ $(_SPACE_) "-L$(TOP)/lib64"
CUDAFE_FLAGS +=
PTXAS_FLAGS +=
PROF
rm -rf "$PREFIX"; mv "$PREFIX.partial" "$PREFIX"
"$PREFIX/bin/nvcc" --version >&2
echo "$PREFIX/bin"
