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
    f32, u64 = ctypes.c_float, ctypes.c_uint64
    l.adamant_host_adam.argtypes = [p, i32, p, i32, p, p, i32, sz, f64, i64, f64, f64, f64, f64, i32, f32, cp, sz]
    l.adamant_host_lion.argtypes = [p, i32, p, i32, p, i32, sz, f64, i64, f64, f64, f64, f32, cp, sz]
    l.adamant_host_sgd.argtypes = [p, i32, p, i32, p, i32, sz, f64, i64, f64, f64, f64, i32, f32, cp, sz]
    l.adamant_host_sum_sq_partials.argtypes = [p, i32, sz, p, sz, cp, sz]
    l.adamant_host_combine.argtypes = [p, sz, p, cp, sz]
    l.adamant_host_adam_mini.argtypes = [p, i32, p, i32, p, p, i32, sz, sz, f64, i64, f32, f64, f64, f64, f64,
                                         i64, i64, p, sz, cp, sz]
    l.adamant_host_adam_mini_partials.argtypes = [p, i32, sz, f32, p, sz, cp, sz]
    l.adamant_host_adam_mini_block.argtypes = [p, i32, p, i32, p, p, i32, sz, f32, u64, f64, i64, f32, f64, f64,
                                               f64, f64, cp, sz]
    l.adamant_host_adam_mini_classify.argtypes = [p, sz, p, sz, i64, i64, i64, p, cp, sz]
    l.adamant_host_adagc.argtypes = [p, sz, p, sz, p, p, i64, f64, f64, f64, f64, u64, i32, cp, sz]
    l.adamant_host_loco_layout.argtypes = [sz, i64, i64, i64, i64, p, cp, sz]
    l.adamant_host_loco_compress.argtypes = [p, i32, sz, p, i64, sz, p, sz, i64, i64, i64, i64, f64, u64, cp, sz]
    l.adamant_host_loco_decompress_reduce.argtypes = [p, sz, p, sz, i64, i64, i64, cp, sz]
    for f in ("adam", "lion", "sgd", "sum_sq_partials", "combine", "adam_mini", "adam_mini_partials",
              "adam_mini_block", "adam_mini_classify", "adagc", "loco_layout", "loco_compress",
              "loco_decompress_reduce"):
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


# ------------------------------------------------------------------ Adam-mini block layouts

#: layout codes of the FFI handlers and host entry points
ELEMENT, ROWS, HEADS, TENSOR, SEGMENTS = 0, 1, 2, 3, 4


def layout_code(desc, what="layout"):
    """``(kind, block_len, segments)`` for a block descriptor:

    * ``"element"``: per-element AdamW (biases); ``"tensor"``: one block for the tensor;
    * ``("rows", row_len)`` / ``("heads", head_numel)``: contiguous blocks of that length;
    * a list of segments ``[("element", len) | ("blocks", len, block_len), ...]`` covering
      the tensor in order (e.g. a fused QKV projection with grouped-query heads).

    ``segments`` is an int64 array of ``(len, block_len)`` pairs (block_len 0 for element
    segments) or ``None``."""
    if isinstance(desc, str):
        if desc == "element":
            return ELEMENT, 0, None
        if desc == "tensor":
            return TENSOR, 0, None
    elif isinstance(desc, tuple) and len(desc) == 2 and desc[0] in ("rows", "heads"):
        n = _int(desc[1], what)
        return (ROWS if desc[0] == "rows" else HEADS), n, None
    elif isinstance(desc, list) and desc:
        pairs = []
        for seg in desc:
            if isinstance(seg, tuple) and len(seg) == 2 and seg[0] == "element":
                pairs += [_int(seg[1], what), 0]
            elif isinstance(seg, tuple) and len(seg) == 3 and seg[0] == "blocks":
                bl = _int(seg[2], what)
                if bl <= 0:
                    raise ValueError(f"adamant: `{what}`: a blocks segment needs block_len > 0, got {seg}")
                pairs += [_int(seg[1], what), bl]
            else:
                raise ValueError(f"adamant: `{what}`: bad segment {seg!r}; expected ('element', len) "
                                 "or ('blocks', len, block_len)")
        return SEGMENTS, 0, np.asarray(pairs, np.int64)
    raise ValueError(f"adamant: `{what}` is {desc!r}; expected 'element', 'tensor', ('rows', n), "
                     "('heads', n) or a list of segments")


def _int(v, what):
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
        raise ValueError(f"adamant: `{what}`: lengths must be integers, got {v!r}")
    return int(v)


def state_len(desc, numel, what="layout"):
    """Length of ``exp_avg_sq`` for a tensor of ``numel`` elements (ValueError naming ``what``
    when the blocks do not tile it)."""
    kind, bl, segs = layout_code(desc, what)
    if kind == ELEMENT:
        return numel
    if kind == TENSOR:
        return 1 if numel else 0
    if kind in (ROWS, HEADS):
        if bl <= 0 or numel % bl:
            raise ValueError(f"adamant: `{what}`: blocks of {bl} do not tile {numel} elements")
        return numel // bl
    covered = state = 0
    for ln, b in segs.reshape(-1, 2):
        if ln <= 0 or (b and ln % b):
            raise ValueError(f"adamant: `{what}`: segment ({ln}, {b}) is empty or not a multiple of its blocks")
        covered += int(ln)
        state += int(ln) if b == 0 else int(ln // b)
    if covered != numel:
        raise ValueError(f"adamant: `{what}`: segments cover {covered} elements, the tensor has {numel}")
    return state
