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

__all__ = ["adam", "lion", "sgd", "sum_sq_partials", "combine", "global_sum_sq"]


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


def _same_size(param, **others):
    for k, v in others.items():
        if v is not None and v.size != param.size:
            raise ValueError(f"adamant: `{k}` has {v.size} elements, `param` has {param.size}")


def adam(param, grad, exp_avg, exp_avg_sq, *, lr, count, b1=0.9, b2=0.999, eps=1e-8,
         weight_decay=0.0, decoupled=True):
    """One Adam (``decoupled=False``: L2 added to the gradient) or AdamW step in place:
    ``p = p*(1 - lr*wd); m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g*g;
    p = p - (lr/bc1) * (m / (sqrt(v)/sqrt(bc2) + eps))`` (core's ``adam_elem``)."""
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
          float(weight_decay), int(bool(decoupled)))


def lion(param, grad, exp_avg, *, lr, count=0, b1=0.9, b2=0.99, weight_decay=0.0):
    """One Lion step in place: ``p = p*(1 - lr*wd); p = p - lr*sign(b1*m + (1-b1)*g);
    m = b2*m + (1-b2)*g`` (core's ``lion_elem``)."""
    _same_size(param, grad=grad, exp_avg=exp_avg)
    l = _lib.lib()
    _call(l.adamant_host_lion,
          _ptr(param, "param", True), dtype_code(param.dtype, "`param`"),
          _ptr(grad, "grad", False), dtype_code(grad.dtype, "`grad`"),
          _ptr(exp_avg, "exp_avg", True), dtype_code(exp_avg.dtype, "`exp_avg`", (F32, BF16)),
          param.size, float(lr), int(count), float(b1), float(b2), float(weight_decay))


def sgd(param, grad, momentum_buffer=None, *, lr, count, momentum=0.0, dampening=0.0,
        weight_decay=0.0, nesterov=False):
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
          float(weight_decay), int(bool(nesterov)))


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
