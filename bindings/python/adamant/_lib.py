"""Loading ``libadamant`` and the dtype codes shared by every entry point."""

import ctypes
import os
import sys
from pathlib import Path

import numpy as np

_NAME = "libadamant.dylib" if sys.platform == "darwin" else "libadamant.so"

# XLA_FFI_DataType codes, used by the host entry points too.
F16, F32, BF16 = 10, 11, 16


def library_path() -> str:
    """``$ADAMANT_LIBRARY`` if set, else the library shipped inside the package."""
    env = os.environ.get("ADAMANT_LIBRARY")
    if env:
        return env
    return str(Path(__file__).resolve().parent / _NAME)


_lib = None


def lib() -> ctypes.CDLL:
    """The loaded library (loaded once)."""
    global _lib
    if _lib is None:
        _lib = ctypes.CDLL(library_path())
        _declare(_lib)
    return _lib


def _declare(l):
    p, i32, sz, f64, i64, cp = (
        ctypes.c_void_p,
        ctypes.c_int32,
        ctypes.c_size_t,
        ctypes.c_double,
        ctypes.c_int64,
        ctypes.c_char_p,
    )
    l.adamant_host_adam.argtypes = [p, i32, p, i32, p, p, i32, sz, f64, i64, f64, f64, f64, f64, i32, cp, sz]
    l.adamant_host_lion.argtypes = [p, i32, p, i32, p, i32, sz, f64, i64, f64, f64, f64, cp, sz]
    l.adamant_host_sgd.argtypes = [p, i32, p, i32, p, i32, sz, f64, i64, f64, f64, f64, i32, cp, sz]
    l.adamant_host_sum_sq_partials.argtypes = [p, i32, sz, p, sz, cp, sz]
    l.adamant_host_combine.argtypes = [p, sz, p, cp, sz]
    for f in ("adam", "lion", "sgd", "sum_sq_partials", "combine"):
        getattr(l, "adamant_host_" + f).restype = i32


def dtype_code(dtype, what: str, allowed=(F32, BF16, F16)) -> int:
    """XLA code of a numpy/jax dtype, or ValueError naming what is accepted."""
    name = np.dtype(dtype).name
    code = {"float32": F32, "bfloat16": BF16, "float16": F16}.get(name)
    if code is None or code not in allowed:
        names = ", ".join({F32: "float32", BF16: "bfloat16", F16: "float16"}[c] for c in allowed)
        raise ValueError(f"adamant: {what} has dtype {name}; accepted: {names}")
    return code


def tile_count(n: int) -> int:
    """Partials per tensor of ``n`` elements: ``ceil(n / 4096)``."""
    return -(-n // 4096)


TILE = 4096
