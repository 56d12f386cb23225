#!/usr/bin/env bash
# Build and test the adamant Python package in a fresh virtual environment:
#   bindings/python/scripts/test.sh            # venv at $ADAMANT_VENV (default: <repo>/.venv)
# Needs python3.11 (jax 0.10.2 is the newest jax for 3.11) and cargo on PATH; PyPI reachable
# (or a warm pip cache at $PIP_CACHE_DIR, default ~/.cache/pip).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null || PY=python3
VENV="${ADAMANT_VENV:-$ROOT/.venv}"
export PIP_CACHE_DIR="${PIP_CACHE_DIR:-$HOME/.cache/pip}"
export PIP_DISABLE_PIP_VERSION_CHECK=1

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/pip" install -q "jax==0.10.2" "jaxlib==0.10.2" "optax==0.2.8" "numpy==2.4.6" "pytest==9.2.0"
# One pip install of the directory builds the Rust library (cargo build --release -p adamant-ffi)
# and ships libadamant.so inside the package.
"$VENV/bin/pip" install -q --force-reinstall --no-deps "$HERE"
# Run from the tests directory so the installed package (not the source tree) is imported.
cd "$HERE/tests"
exec "$VENV/bin/python" -m pytest -q -p no:cacheprovider "$@" .
