"""In-place optimizer steps on host numpy arrays, through the same Rust functions the JAX
handlers run (so ``adamant.numpy`` and ``adamant.jax`` give the same bits).

Arrays must be C-contiguous; parameters, gradients: float32, bfloat16 (``ml_dtypes``) or
float16; states: float32 or bfloat16. ``count`` is the number of steps already applied
(optax's ``count``); the step applied is ``count + 1``. Each function returns ``None`` and
raises ``ValueError`` (naming the argument) before writing anything when a check fails.
"""

import ctypes

import numpy as np

from . import _lib
from ._lib import BF16, F32, dtype_code, tile_count

__all__ = [
    "adam", "lion", "sgd", "sum_sq_partials", "combine", "global_sum_sq", "tensor_sum_sq",
    "adam_mini", "adam_mini_partials", "adam_mini_block", "adam_mini_classify", "adagc",
    "loco_layout", "loco_compress", "loco_decompress_reduce",
]


def _ptr(a, name, writable):
    if not isinstance(a, np.ndarray):
        raise ValueError(f"adamant: `{name}` must be a numpy array, got {type(a).__name__}")
    if not a.flags.c_contiguous:
        raise ValueError(f"adamant: `{name}` must be C-contiguous")
    if writable and not a.flags.writeable:
        raise ValueError(f"adamant: `{name}` is read-only")
    return a.ctypes.data


def _call(fn, *args):
    msg = ctypes.create_string_buffer(512)
    if fn(*args, msg, len(msg)) != 0:
        raise ValueError("adamant: " + msg.value.decode(errors="replace"))


def _f32(x):
    """A clip coefficient as the f32 the kernels use (numpy scalars and 0-d arrays accepted)."""
    return float(np.float32(np.asarray(x, np.float32).reshape(())))


def _same_size(param, **others):
    for k, v in others.items():
        if v is not None and v.size != param.size:
            raise ValueError(f"adamant: `{k}` has {v.size} elements, `param` has {param.size}")


def adam(param, grad, exp_avg, exp_avg_sq, *, lr, count, b1=0.9, b2=0.999, eps=1e-8,
         weight_decay=0.0, decoupled=True, clip_coef=1.0):
    """One Adam (``decoupled=False``: L2 added to the gradient) or AdamW step in place:
    ``p = p*(1 - lr*wd); m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g*g;
    p = p - (lr/bc1) * (m / (sqrt(v)/sqrt(bc2) + eps))`` (core's ``adam_elem``), with
    ``g = g * clip_coef`` inside the pass (e.g. AdaGC's coefficient; 1 changes nothing)."""
    _same_size(param, grad=grad, exp_avg=exp_avg, exp_avg_sq=exp_avg_sq)
    sd = dtype_code(exp_avg.dtype, "`exp_avg`", (F32, BF16))
    if exp_avg_sq.dtype != exp_avg.dtype:
        raise ValueError("adamant: `exp_avg_sq` must have the dtype of `exp_avg`")
    l = _lib.lib()
    _call(l.adamant_host_adam,
          _ptr(param, "param", True), dtype_code(param.dtype, "`param`"),
          _ptr(grad, "grad", False), dtype_code(grad.dtype, "`grad`"),
          _ptr(exp_avg, "exp_avg", True), _ptr(exp_avg_sq, "exp_avg_sq", True), sd,
          param.size, float(lr), int(count), float(b1), float(b2), float(eps),
          float(weight_decay), int(bool(decoupled)), _f32(clip_coef))


def lion(param, grad, exp_avg, *, lr, count=0, b1=0.9, b2=0.99, weight_decay=0.0, clip_coef=1.0):
    """One Lion step in place: ``p = p*(1 - lr*wd); p = p - lr*sign(b1*m + (1-b1)*g);
    m = b2*m + (1-b2)*g`` (core's ``lion_elem``)."""
    _same_size(param, grad=grad, exp_avg=exp_avg)
    l = _lib.lib()
    _call(l.adamant_host_lion,
          _ptr(param, "param", True), dtype_code(param.dtype, "`param`"),
          _ptr(grad, "grad", False), dtype_code(grad.dtype, "`grad`"),
          _ptr(exp_avg, "exp_avg", True), dtype_code(exp_avg.dtype, "`exp_avg`", (F32, BF16)),
          param.size, float(lr), int(count), float(b1), float(b2), float(weight_decay), _f32(clip_coef))


def sgd(param, grad, momentum_buffer=None, *, lr, count, momentum=0.0, dampening=0.0,
        weight_decay=0.0, nesterov=False, clip_coef=1.0):
    """One SGD step in place (``torch.optim.SGD`` semantics; with ``dampening=0`` the same as
    optax's ``sgd``): ``g += wd*p; buf = g`` on the first step else ``momentum*buf +
    (1-dampening)*g``; ``g = g + momentum*buf`` (Nesterov) or ``buf``; ``p -= lr*g``."""
    if momentum and momentum_buffer is None:
        raise ValueError("adamant: `momentum_buffer` is required when momentum != 0")
    l = _lib.lib()
    if momentum:
        _same_size(param, grad=grad, momentum_buffer=momentum_buffer)
        buf, bd = _ptr(momentum_buffer, "momentum_buffer", True), dtype_code(
            momentum_buffer.dtype, "`momentum_buffer`", (F32, BF16))
    else:
        _same_size(param, grad=grad)
        buf, bd = None, F32
    _call(l.adamant_host_sgd,
          _ptr(param, "param", True), dtype_code(param.dtype, "`param`"),
          _ptr(grad, "grad", False), dtype_code(grad.dtype, "`grad`"),
          buf, bd, param.size, float(lr), int(count), float(momentum), float(dampening),
          float(weight_decay), int(bool(nesterov)), _f32(clip_coef))


def sum_sq_partials(x):
    """Canonical per-tile (4096 elements, row-major) sums of squares: float32[ceil(n/4096)]."""
    x = np.ascontiguousarray(x)
    out = np.zeros(tile_count(x.size), np.float32)
    _call(_lib.lib().adamant_host_sum_sq_partials, _ptr(x, "x", False),
          dtype_code(x.dtype, "`x`"), x.size, out.ctypes.data, out.size)
    return out


def combine(partials):
    """Canonical combine of tile results gathered in global tile order (float32 scalar)."""
    p = np.ascontiguousarray(partials, dtype=np.float32)
    out = np.zeros((), np.float32)
    _call(_lib.lib().adamant_host_combine, p.ctypes.data, p.size, out.ctypes.data)
    return out


def global_sum_sq(arrays):
    """Sum of squares over a list of arrays: partials of each, concatenated in order, combined."""
    parts = [sum_sq_partials(a) for a in arrays]
    return combine(np.concatenate(parts) if parts else np.zeros(0, np.float32))


def tensor_sum_sq(x):
    """Canonical sum of squares of one tensor (``combine(sum_sq_partials(x))``; core's
    ``clip::tensor_sum_sq``)."""
    return combine(sum_sq_partials(x))


# --------------------------------------------------------------------------- Adam-mini


def adam_mini(param, grad, exp_avg, exp_avg_sq, *, lr, count, layout, b1=0.9, b2=0.999, eps=1e-8,
              weight_decay=0.0, clip_coef=1.0):
    """One Adam-mini step on one whole tensor in place (core's ``adam_mini::apply_tensor``).
    ``layout`` is a block descriptor (``_lib.layout_code``: ``"element"``, ``"tensor"``,
    ``("rows", n)``, ``("heads", n)`` or segments); ``exp_avg_sq`` holds one entry per block.
    Per block ``b`` with the prepared gradient ``g*clip_coef``: ``v_b = b2*v_b +
    (1-b2)*sum(g*g)/n_b``; ``scale = (1/bc1)/(sqrt(v_b)/sqrt(bc2) + eps)``; per element
    ``p = p*(1-lr*wd); m = b1*m + (1-b1)*g; p = p - (m*scale)*lr``. Element blocks run AdamW."""
    kind, bl, segs = _lib.layout_code(layout)
    _same_size(param, grad=grad, exp_avg=exp_avg)
    sd = dtype_code(exp_avg.dtype, "`exp_avg`", (F32, BF16))
    if exp_avg_sq.dtype != exp_avg.dtype:
        raise ValueError("adamant: `exp_avg_sq` must have the dtype of `exp_avg`")
    segp = None if segs is None else segs.ctypes.data
    _call(_lib.lib().adamant_host_adam_mini,
          _ptr(param, "param", True), dtype_code(param.dtype, "`param`"),
          _ptr(grad, "grad", False), dtype_code(grad.dtype, "`grad`"),
          _ptr(exp_avg, "exp_avg", True), _ptr(exp_avg_sq, "exp_avg_sq", True), sd,
          param.size, exp_avg_sq.size, float(lr), int(count), _f32(clip_coef), float(b1), float(b2),
          float(eps), float(weight_decay), kind, bl, segp, 0 if segs is None else segs.size // 2)


def adam_mini_partials(grad, clip_coef=1.0):
    """Phase one of an Adam-mini block split over shards: per-tile sums of ``(g*clip_coef)^2``
    of this piece (float32[ceil(n/4096)])."""
    g = np.ascontiguousarray(grad)
    out = np.zeros(tile_count(g.size), np.float32)
    _call(_lib.lib().adamant_host_adam_mini_partials, _ptr(g, "grad", False),
          dtype_code(g.dtype, "`grad`"), g.size, _f32(clip_coef), out.ctypes.data, out.size)
    return out


def adam_mini_block(param, grad, exp_avg, exp_avg_sq, sum_sq, *, block_numel, lr, count, b1=0.9,
                    b2=0.999, eps=1e-8, weight_decay=0.0, clip_coef=1.0):
    """Phases two and three on one piece of a block that spans shards: ``exp_avg_sq`` (one
    entry) from the block's combined ``sum_sq`` over ``block_numel`` elements, then the
    element pass on the piece, in place."""
    _same_size(param, grad=grad, exp_avg=exp_avg)
    sd = dtype_code(exp_avg.dtype, "`exp_avg`", (F32, BF16))
    if exp_avg_sq.dtype != exp_avg.dtype or exp_avg_sq.size != 1:
        raise ValueError("adamant: `exp_avg_sq` must be one element of the dtype of `exp_avg`")
    _call(_lib.lib().adamant_host_adam_mini_block,
          _ptr(param, "param", True), dtype_code(param.dtype, "`param`"),
          _ptr(grad, "grad", False), dtype_code(grad.dtype, "`grad`"),
          _ptr(exp_avg, "exp_avg", True), _ptr(exp_avg_sq, "exp_avg_sq", True), sd,
          param.size, _f32(sum_sq), int(block_numel), float(lr), int(count), _f32(clip_coef),
          float(b1), float(b2), float(eps), float(weight_decay))


_RULES = ("element", "head", "row", "tensor")


def adam_mini_classify(name, shape, *, dim, n_heads, n_kv_heads=None):
    """Adam-mini's official v1.1.1 name rules, evaluated by core (``partition::classify``):
    ``(layout, weight_decay, state_len, rule)`` for a parameter ``name`` of ``shape``."""
    raw = str(name).encode()
    shp = np.asarray(list(shape), np.int64)
    out = np.zeros(5, np.int64)
    _call(_lib.lib().adamant_host_adam_mini_classify, raw, len(raw),
          shp.ctypes.data if shp.size else None, shp.size, int(dim), int(n_heads),
          0 if n_kv_heads is None else int(n_kv_heads), out.ctypes.data)
    kind, bl, wd, rule, sl = (int(v) for v in out)
    layout = {_lib.ELEMENT: "element", _lib.TENSOR: "tensor"}.get(kind) or (
        ("rows" if kind == _lib.ROWS else "heads"), bl)
    return layout, bool(wd), sl, _RULES[rule]


# --------------------------------------------------------------------------- AdaGC


def adagc(tensor_sums, gamma, *, count, max_norm=1.0, lambda_rel=1.04, beta=0.99, eps=1e-6,
          t_start=100, mode="per_tensor"):
    """One AdaGC step (core's ``clip::AdaGc`` plan then commit): from the per-tensor sums of
    squares of the gradients (``tensor_sum_sq`` of each, in tensor order) return
    ``(coefs, global_norm)`` and advance ``gamma`` (float32, one per tensor, or one in
    ``mode="global"``) in place. ``count`` is the number of steps already applied. Pass each
    coefficient as ``clip_coef`` to the rule's step."""
    sums = np.ascontiguousarray(tensor_sums, np.float32).reshape(-1)
    if mode not in ("per_tensor", "global"):
        raise ValueError(f"adamant: `mode` is {mode!r}; accepted: 'per_tensor', 'global'")
    if not isinstance(gamma, np.ndarray) or gamma.dtype != np.float32:
        raise ValueError("adamant: `gamma` must be a float32 numpy array")
    coefs = np.zeros(sums.size, np.float32)
    norm = np.zeros((), np.float32)
    if int(t_start) < 0:
        raise ValueError(f"adamant: `t_start` is {t_start}; it must be >= 0")
    _call(_lib.lib().adamant_host_adagc, sums.ctypes.data, sums.size, _ptr(gamma, "gamma", True),
          gamma.size, coefs.ctypes.data, norm.ctypes.data, int(count), float(max_norm),
          float(lambda_rel), float(beta), float(eps), int(t_start), int(mode == "global"))
    return coefs, norm


# --------------------------------------------------------------------------- LoCo

_STORAGE = {"float32": 0, "int8": 1}


def _storage(error_storage):
    if error_storage not in _STORAGE:
        raise ValueError(f"adamant: `error_storage` is {error_storage!r}; accepted: 'float32', 'int8'")
    return _STORAGE[error_storage]


def loco_layout(size, *, world, group_len=512, bits=4, error_storage="int8"):
    """``(chunk_len, packed_len, err_len)`` of a one-hop LoCo exchange of ``size`` elements
    over ``world`` ranks: bytes per destination chunk, bytes ``loco_compress`` writes, and
    the error buffer's length (float32 values or bytes)."""
    out = np.zeros(3, np.uintp)
    _call(_lib.lib().adamant_host_loco_layout, int(size), int(world), int(group_len), int(bits),
          _storage(error_storage), out.ctypes.data)
    return tuple(int(v) for v in out)


def loco_compress(grad, err, *, count, world, group_len=512, bits=4, err_beta=0.8,
                  reset_every=1024, error_storage="int8"):
    """LoCo compression of this rank's gradient (core's ``loco::compress``, one hop): returns
    the packed bytes (uint8[world, chunk_len]; row ``c`` goes to rank ``c``) and updates
    ``err`` in place (float32[size] or uint8[err_len] for ``error_storage="int8"``).
    ``count`` is the number of steps already compressed (every error reads as zero at steps
    ``1, 1 + reset_every, ...``)."""
    g = np.ascontiguousarray(grad)
    chunk, plen, elen = loco_layout(g.size, world=world, group_len=group_len, bits=bits,
                                    error_storage=error_storage)
    want = np.float32 if error_storage == "float32" else np.uint8
    if not isinstance(err, np.ndarray) or err.dtype != want or err.size != elen:
        raise ValueError(f"adamant: `err` must be a {np.dtype(want).name} array of {elen} elements")
    packed = np.zeros((int(world), chunk), np.uint8)
    _call(_lib.lib().adamant_host_loco_compress, _ptr(g, "grad", False), dtype_code(g.dtype, "`grad`"),
          g.size, _ptr(err, "err", True), _storage(error_storage), err.size, packed.ctypes.data,
          packed.size, int(count), int(world), int(group_len), int(bits), float(err_beta),
          int(reset_every))
    return packed


def loco_decompress_reduce(received, *, shard_len, world, group_len=512, bits=4):
    """LoCo's final reduction on one rank (core's ``loco::decompress_reduce``): ``received``
    holds the ``world`` chunks this rank was sent, in rank order; returns this rank's shard
    (``shard_len`` = size / world elements) of the average, ``(sum_r deQ_r) / world``
    (rank-order fold from +0, one division)."""
    r = np.ascontiguousarray(received, np.uint8)
    out = np.zeros(int(shard_len), np.float32)
    _call(_lib.lib().adamant_host_loco_decompress_reduce, r.ctypes.data, r.size, out.ctypes.data,
          out.size, int(world), int(group_len), int(bits))
    return out
