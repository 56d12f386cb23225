"""adamant as optax ``GradientTransformation``s, running through XLA's typed FFI.

``adamw``, ``adam``, ``lion`` and ``sgd`` take the argument names and defaults of their optax
counterparts and return ``optax.GradientTransformationExtraArgs``. Two ways to apply them:

* the optax way: ``updates, state = tx.update(grads, state, params)`` then
  ``optax.apply_updates(params, updates)``. The updates are ``new_params - params`` in f32;
  adding them back gives adamant's parameters to within one rounding (exactly whenever
  ``new_params`` is within a factor of 2 of ``params``, by Sterbenz's lemma).
* the fused way: ``params, state = adamant.jax.step(tx, grads, state, params)``: adamant's
  exact bits (the same as ``adamant.numpy`` and the Rust core), updated in place when the
  jitted function donates ``params`` and ``state`` (the FFI call aliases each input buffer to
  its output).

``learning_rate`` may be a float or an optax schedule: the learning rate and the step count
reach the kernel as buffers, so a jitted step compiles once for the whole schedule. Under
JAX's default 32-bit mode the learning rate is an f32 (widened exactly to f64 for the
per-step scalar recipe); with ``jax_enable_x64`` it may be an f64.

``global_sum_sq``/``global_norm``/``clip_by_global_norm`` use the canonical reduction's two
phases (per-tile partials, then combine); given ``axis_name`` inside ``shard_map``, the
partials are all-gathered in device order, so shards cut at 4096-element boundaries give the
bits of the unsharded run.

Only the CPU platform is registered in this version.
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from . import _lib

__all__ = [
    "adamw", "adam", "lion", "sgd", "clip_by_global_norm", "chain", "step",
    "global_sum_sq", "global_norm", "adam_update", "lion_update", "sgd_update",
    "sum_sq_partials", "combine", "AdamState", "LionState", "SgdState",
    "adam_mini", "adagc", "adam_mini_update", "adam_mini_partials", "adam_mini_block_update",
    "adagc_update", "tensor_sum_sq", "path_name", "axis_size", "AdamMiniState", "AdaGcState", "loco",
]

_TARGETS = {
    "adamant_adam": "adamant_xla_adam",
    "adamant_lion": "adamant_xla_lion",
    "adamant_sgd": "adamant_xla_sgd",
    "adamant_sum_sq_partials": "adamant_xla_sum_sq_partials",
    "adamant_combine": "adamant_xla_combine",
    "adamant_adam_mini": "adamant_xla_adam_mini",
    "adamant_adam_mini_partials": "adamant_xla_adam_mini_partials",
    "adamant_adam_mini_block": "adamant_xla_adam_mini_block",
    "adamant_adagc": "adamant_xla_adagc",
    "adamant_loco_compress": "adamant_xla_loco_compress",
    "adamant_loco_decompress_reduce": "adamant_xla_loco_decompress_reduce",
}


def _register():
    lib = _lib.lib()
    for name, symbol in _TARGETS.items():
        jax.ffi.register_ffi_target(
            name, jax.ffi.pycapsule(getattr(lib, symbol)), platform="cpu", api_version=1
        )


_register()


# --------------------------------------------------------------------------- one-tensor ops


def _sds(x):
    return jax.ShapeDtypeStruct(x.shape, x.dtype)


def _lr_buffer(lr):
    lr = jnp.asarray(lr)
    if lr.dtype not in (jnp.float32, jnp.float64):
        lr = lr.astype(jnp.float32)
    return lr


def _count_buffer(count):
    count = jnp.asarray(count)
    if count.dtype not in (jnp.int32, jnp.int64):
        count = count.astype(jnp.int32)
    return count


def _coef_args(clip_coef):
    """The optional trailing ``clip_coef`` buffer (absent: the handler's earlier signature)."""
    return () if clip_coef is None else (jnp.asarray(clip_coef, jnp.float32).reshape(()),)


def adam_update(param, grad, exp_avg, exp_avg_sq, lr, count, *, b1=0.9, b2=0.999, eps=1e-8,
                weight_decay=0.0, decoupled=True, clip_coef=None):
    """One Adam/AdamW step on one tensor (``count`` = steps applied so far): returns
    ``(param, exp_avg, exp_avg_sq)``, each aliased to its input. ``clip_coef`` (f32 scalar,
    e.g. from ``adagc_update``) multiplies the gradient inside the kernel's pass."""
    return jax.ffi.ffi_call(
        "adamant_adam",
        (_sds(param), _sds(exp_avg), _sds(exp_avg_sq)),
        input_output_aliases={0: 0, 2: 1, 3: 2},
    )(param, grad, exp_avg, exp_avg_sq, _lr_buffer(lr), _count_buffer(count), *_coef_args(clip_coef),
      beta1=float(b1), beta2=float(b2), eps=float(eps), weight_decay=float(weight_decay),
      decoupled=bool(decoupled))


def lion_update(param, grad, exp_avg, lr, count, *, b1=0.9, b2=0.99, weight_decay=0.0,
                clip_coef=None):
    """One Lion step on one tensor: returns ``(param, exp_avg)``, aliased to the inputs."""
    return jax.ffi.ffi_call(
        "adamant_lion", (_sds(param), _sds(exp_avg)), input_output_aliases={0: 0, 2: 1}
    )(param, grad, exp_avg, _lr_buffer(lr), _count_buffer(count), *_coef_args(clip_coef),
      beta1=float(b1), beta2=float(b2), weight_decay=float(weight_decay))


_NO_BUFFER = np.zeros((0,), np.float32)


def sgd_update(param, grad, momentum_buffer, lr, count, *, momentum=0.0, dampening=0.0,
               weight_decay=0.0, nesterov=False, clip_coef=None):
    """One SGD step on one tensor: returns ``(param, momentum_buffer)``. Without momentum,
    ``momentum_buffer`` may be ``None`` (an empty buffer is passed and returned)."""
    if momentum_buffer is None:
        momentum_buffer = jnp.asarray(_NO_BUFFER)
    return jax.ffi.ffi_call(
        "adamant_sgd", (_sds(param), _sds(momentum_buffer)), input_output_aliases={0: 0, 2: 1}
    )(param, grad, momentum_buffer, _lr_buffer(lr), _count_buffer(count), *_coef_args(clip_coef),
      momentum=float(momentum), dampening=float(dampening), weight_decay=float(weight_decay),
      nesterov=bool(nesterov))


def sum_sq_partials(x):
    """Canonical per-tile (4096 elements, row-major) sums of squares of ``x``:
    float32[ceil(x.size / 4096)]."""
    return jax.ffi.ffi_call(
        "adamant_sum_sq_partials", jax.ShapeDtypeStruct((_lib.tile_count(x.size),), jnp.float32)
    )(x)


def combine(partials):
    """Canonical combine of tile results in global tile order (float32 scalar)."""
    return jax.ffi.ffi_call("adamant_combine", jax.ShapeDtypeStruct((), jnp.float32))(partials)


def global_sum_sq(tree, axis_name=None):
    """Sum of squares over every leaf of ``tree`` by the canonical reduction: per-tile partials
    of each leaf (all-gathered over ``axis_name`` inside ``shard_map``, in device order),
    concatenated in leaf order, then combined."""
    parts = []
    for leaf in jax.tree.leaves(tree):
        p = sum_sq_partials(leaf)
        if axis_name is not None:
            p = jax.lax.all_gather(p, axis_name, tiled=True)
        parts.append(p)
    if not parts:
        return jnp.zeros((), jnp.float32)
    return combine(jnp.concatenate(parts))


def global_norm(tree, axis_name=None):
    """``sqrt(global_sum_sq(tree))``."""
    return jnp.sqrt(global_sum_sq(tree, axis_name))


# --------------------------------------------------------------------------- transformations


class AdamState(NamedTuple):
    """State of ``adamw``/``adam`` (optax's ``ScaleByAdamState`` fields)."""

    count: Any  # int32 scalar: steps applied
    mu: Any  # exp_avg
    nu: Any  # exp_avg_sq


class LionState(NamedTuple):
    """State of ``lion`` (optax's ``ScaleByLionState`` fields)."""

    count: Any
    mu: Any


class SgdState(NamedTuple):
    """State of ``sgd``; ``trace`` is the momentum buffer (``None`` without momentum)."""

    count: Any
    trace: Any


def _safe_increment(count):
    top = jnp.iinfo(count.dtype).max
    return jnp.where(count < top, count + 1, count)


def _lr_at(learning_rate, count):
    return learning_rate(count) if callable(learning_rate) else learning_rate


def _float(value, what):
    if callable(value) or isinstance(value, jax.Array):
        raise ValueError(f"adamant: `{what}` must be a Python float (a static hyper-parameter)")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"adamant: `{what}` must be a float, got {type(value).__name__}") from None


def _check_lr(learning_rate):
    if not callable(learning_rate):
        _float(learning_rate, "learning_rate")


_STATE_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def _state_dtype(requested, what):
    """None (follow the parameter: float32 or bfloat16, float32 for float16) or one of them."""
    if requested is None:
        return None
    name = np.dtype(requested).name
    if name not in _STATE_DTYPES:
        raise ValueError(f"adamant: `{what}` is {name}; accepted: None, float32, bfloat16")
    return _STATE_DTYPES[name]


def _validate(rule, learning_rate, **hyper):
    """Check the hyper-parameters with core's validation now (ValueError naming the value),
    by a step on one host element, rather than at the first jitted call."""
    from . import numpy as anp

    lr = 0.0 if callable(learning_rate) else float(learning_rate)
    one = [np.zeros(1, np.float32) for _ in range(4)]
    if rule == "adam":
        anp.adam(one[0], one[1], one[2], one[3], lr=lr, count=0, **hyper)
    elif rule == "lion":
        anp.lion(one[0], one[1], one[2], lr=lr, count=0, **hyper)
    else:
        anp.sgd(one[0], one[1], one[2], lr=lr, count=0, **hyper)


def _zeros_like_state(p, dtype):
    if dtype is None:
        dtype = jnp.bfloat16 if p.dtype == jnp.bfloat16 else jnp.float32
    return jnp.zeros(p.shape, dtype)


def _decay_per_leaf(weight_decay, mask, params, treedef):
    """Flat list of weight decays: ``weight_decay`` where the mask is true, else 0."""
    n = treedef.num_leaves
    if mask is None:
        return [weight_decay] * n
    m = mask(params) if callable(mask) else mask
    try:
        flags = treedef.flatten_up_to(m)
    except (ValueError, TypeError) as e:
        raise ValueError(f"adamant: `mask` must have the structure of the parameters ({e})") from None
    out = []
    for f in flags:
        if isinstance(f, jax.core.Tracer):
            raise ValueError("adamant: `mask` leaves must be Python bools, not traced values")
        out.append(weight_decay if bool(f) else 0.0)
    return out


def _coefs_per_leaf(clip_coefs, n):
    if clip_coefs is None:
        return [None] * n
    if len(clip_coefs) != n:
        raise ValueError(f"adamant: {len(clip_coefs)} clip coefficients for {n} parameters")
    return list(clip_coefs)


def _attach(update_fn, step_fn):
    update_fn.adamant_step = step_fn
    return update_fn


def _optax_update(step_fn, name):
    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        if params is None:
            raise ValueError(f"adamant.jax.{name}: update needs `params` (update(grads, state, params))")
        new_params, new_state = step_fn(updates, state, params)
        deltas = jax.tree.map(lambda n, p: (n - p).astype(p.dtype), new_params, params)
        return deltas, new_state

    return _attach(update_fn, step_fn)


def _adam_family(name, learning_rate, b1, b2, eps, eps_root, mu_dtype, weight_decay, mask,
                 nesterov, decoupled):
    _check_lr(learning_rate)
    b1, b2, eps = _float(b1, "b1"), _float(b2, "b2"), _float(eps, "eps")
    weight_decay = _float(weight_decay, "weight_decay")
    if _float(eps_root, "eps_root") != 0.0:
        raise ValueError("adamant: `eps_root` must be 0.0 (adamant adds eps outside the square root only)")
    if nesterov:
        raise ValueError("adamant: `nesterov` must be False for Adam (NAdam is not supported)")
    state_dtype = _state_dtype(mu_dtype, "mu_dtype")
    _validate("adam", learning_rate, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay,
              decoupled=decoupled)

    def init_fn(params):
        mu = jax.tree.map(lambda p: _zeros_like_state(p, state_dtype), params)
        nu = jax.tree.map(lambda p: _zeros_like_state(p, state_dtype), params)
        return AdamState(count=jnp.zeros([], jnp.int32), mu=mu, nu=nu)

    def step_fn(grads, state, params, clip_coefs=None):
        leaves, treedef = jax.tree.flatten(params)
        gs = treedef.flatten_up_to(grads)
        ms = treedef.flatten_up_to(state.mu)
        vs = treedef.flatten_up_to(state.nu)
        wds = _decay_per_leaf(weight_decay, mask, params, treedef)
        cs = _coefs_per_leaf(clip_coefs, len(leaves))
        lr = _lr_buffer(_lr_at(learning_rate, state.count))
        out_p, out_m, out_v = [], [], []
        for p, g, m, v, wd, c in zip(leaves, gs, ms, vs, wds, cs):
            p2, m2, v2 = adam_update(p, g, m, v, lr, state.count, b1=b1, b2=b2, eps=eps,
                                     weight_decay=wd, decoupled=decoupled, clip_coef=c)
            out_p.append(p2)
            out_m.append(m2)
            out_v.append(v2)
        new_state = AdamState(
            count=_safe_increment(state.count),
            mu=treedef.unflatten(out_m),
            nu=treedef.unflatten(out_v),
        )
        return treedef.unflatten(out_p), new_state

    return optax.GradientTransformationExtraArgs(init_fn, _optax_update(step_fn, name))


def adamw(learning_rate, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, mu_dtype=None,
          weight_decay=1e-4, mask=None, *, nesterov=False):
    """AdamW with optax's arguments and defaults (``optax.adamw``). Per element (core's
    ``adam_elem``): ``p = p*(1 - lr*wd); m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g*g;
    p = p - (lr/bc1)*(m/(sqrt(v)/sqrt(bc2) + eps))``. optax computes
    ``p - lr*(m_hat/(sqrt(v_hat) + eps) + wd*p)``: the same value up to rounding.
    ``mask`` (pytree of bools or a callable on params) selects the leaves that decay;
    ``eps_root`` must be 0, ``nesterov`` False; ``mu_dtype`` (float32/bfloat16) sets both moments."""
    return _adam_family("adamw", learning_rate, b1, b2, eps, eps_root, mu_dtype, weight_decay,
                        mask, nesterov, True)


def adam(learning_rate, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, mu_dtype=None, *,
         nesterov=False):
    """Adam with optax's arguments and defaults (``optax.adam``; no weight decay)."""
    return _adam_family("adam", learning_rate, b1, b2, eps, eps_root, mu_dtype, 0.0, None,
                        nesterov, False)


def lion(learning_rate, b1=0.9, b2=0.99, mu_dtype=None, weight_decay=1e-3, mask=None):
    """Lion with optax's arguments and defaults (``optax.lion``; note optax's default
    ``weight_decay=1e-3``). Per element (core's ``lion_elem``): ``p = p*(1 - lr*wd);
    p = p - lr*sign(b1*m + (1-b1)*g); m = b2*m + (1-b2)*g``."""
    _check_lr(learning_rate)
    b1, b2 = _float(b1, "b1"), _float(b2, "b2")
    weight_decay = _float(weight_decay, "weight_decay")
    state_dtype = _state_dtype(mu_dtype, "mu_dtype")
    _validate("lion", learning_rate, b1=b1, b2=b2, weight_decay=weight_decay)

    def init_fn(params):
        mu = jax.tree.map(lambda p: _zeros_like_state(p, state_dtype), params)
        return LionState(count=jnp.zeros([], jnp.int32), mu=mu)

    def step_fn(grads, state, params, clip_coefs=None):
        leaves, treedef = jax.tree.flatten(params)
        gs = treedef.flatten_up_to(grads)
        ms = treedef.flatten_up_to(state.mu)
        wds = _decay_per_leaf(weight_decay, mask, params, treedef)
        cs = _coefs_per_leaf(clip_coefs, len(leaves))
        lr = _lr_buffer(_lr_at(learning_rate, state.count))
        out_p, out_m = [], []
        for p, g, m, wd, c in zip(leaves, gs, ms, wds, cs):
            p2, m2 = lion_update(p, g, m, lr, state.count, b1=b1, b2=b2, weight_decay=wd, clip_coef=c)
            out_p.append(p2)
            out_m.append(m2)
        return treedef.unflatten(out_p), LionState(
            count=_safe_increment(state.count), mu=treedef.unflatten(out_m))

    return optax.GradientTransformationExtraArgs(init_fn, _optax_update(step_fn, "lion"))


def sgd(learning_rate, momentum=None, nesterov=False, accumulator_dtype=None):
    """SGD with optax's arguments and defaults (``optax.sgd``): ``trace = g + momentum*trace``
    (the first step gives ``g``), ``g = g + momentum*trace`` (Nesterov) or ``trace``,
    ``p = p - lr*g`` (core's ``sgd_elem`` with dampening 0)."""
    _check_lr(learning_rate)
    momentum = 0.0 if momentum is None else _float(momentum, "momentum")
    if momentum < 0:
        raise ValueError("adamant: `momentum` must be None or >= 0")
    nesterov = bool(nesterov) and momentum > 0  # optax ignores nesterov without momentum
    state_dtype = _state_dtype(accumulator_dtype, "accumulator_dtype")
    _validate("sgd", learning_rate, momentum=momentum, nesterov=nesterov)

    def init_fn(params):
        trace = None
        if momentum > 0:
            trace = jax.tree.map(lambda p: _zeros_like_state(p, state_dtype), params)
        return SgdState(count=jnp.zeros([], jnp.int32), trace=trace)

    def step_fn(grads, state, params, clip_coefs=None):
        leaves, treedef = jax.tree.flatten(params)
        gs = treedef.flatten_up_to(grads)
        bs = treedef.flatten_up_to(state.trace) if momentum > 0 else [None] * len(leaves)
        cs = _coefs_per_leaf(clip_coefs, len(leaves))
        lr = _lr_buffer(_lr_at(learning_rate, state.count))
        out_p, out_b = [], []
        for p, g, b, c in zip(leaves, gs, bs, cs):
            p2, b2 = sgd_update(p, g, b, lr, state.count, momentum=momentum, nesterov=nesterov,
                                clip_coef=c)
            out_p.append(p2)
            out_b.append(b2)
        trace = treedef.unflatten(out_b) if momentum > 0 else None
        return treedef.unflatten(out_p), SgdState(count=_safe_increment(state.count), trace=trace)

    return optax.GradientTransformationExtraArgs(init_fn, _optax_update(step_fn, "sgd"))


def clip_by_global_norm(max_norm, axis_name=None):
    """``optax.clip_by_global_norm`` with adamant's canonical global norm: gradients are
    multiplied by ``max_norm / norm`` when ``norm >= max_norm`` (optax's trigger). Inside
    ``shard_map`` pass the mesh ``axis_name`` the gradients are sharded over."""
    max_norm = _float(max_norm, "max_norm")

    def init_fn(params):
        del params
        return optax.EmptyState()

    def pre_fn(grads, state, params):
        del params
        norm = global_norm(grads, axis_name)
        scale = jnp.where(norm < max_norm, jnp.float32(1.0), jnp.float32(max_norm) / norm)
        return jax.tree.map(lambda g: (g * scale).astype(g.dtype), grads), state

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        return pre_fn(updates, state, params)

    update_fn.adamant_pre = pre_fn
    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def chain(*transformations):
    """``optax.chain`` for adamant: any number of gradient transformations
    (``clip_by_global_norm``, at most one ``adagc``) followed by one adamant rule.

    ``adagc`` does not rewrite the gradients here: its per-tensor coefficients are passed to
    the rule, whose kernel multiplies each gradient element by its tensor's coefficient
    inside its own pass (core's ``StepOptions::clip_coef``). Both ``tx.update`` (optax's
    deltas) and ``adamant.jax.step`` (exact bits, in place) run that way. The state is the
    tuple of the transformations' states, as ``optax.chain``'s."""
    *pres, last = transformations
    for t in pres:
        if not (hasattr(t.update, "adamant_pre") or hasattr(t.update, "adamant_coef")):
            raise ValueError("adamant.jax.chain: only adamant gradient transformations may precede the rule")
    if sum(hasattr(t.update, "adamant_coef") for t in pres) > 1:
        raise ValueError("adamant.jax.chain: at most one adagc per chain")
    if not hasattr(last.update, "adamant_step"):
        raise ValueError("adamant.jax.chain: the last transformation must be an adamant rule")

    def init_fn(params):
        return tuple(t.init(params) for t in transformations)

    def step_fn(grads, state, params):
        new_states = []
        coefs = None
        for t, s in zip(pres, state[:-1]):
            if hasattr(t.update, "adamant_coef"):
                coefs, s = t.update.adamant_coef(grads, s, params)
            else:
                grads, s = t.update.adamant_pre(grads, s, params)
            new_states.append(s)
        if coefs is None:
            params, s = last.update.adamant_step(grads, state[-1], params)
        else:
            params, s = last.update.adamant_step(grads, state[-1], params, clip_coefs=coefs)
        return params, tuple(new_states) + (s,)

    return optax.GradientTransformationExtraArgs(init_fn, _optax_update(step_fn, "chain"))


def step(tx, grads, state, params):
    """Apply ``tx`` (an adamant rule, or ``adamant.jax.chain``) to ``params``: returns
    ``(new_params, new_state)`` with adamant's exact bits. Under ``jax.jit`` with ``params``
    and ``state`` donated, every buffer is updated in place."""
    fn = getattr(tx.update, "adamant_step", None)
    if fn is None:
        raise ValueError("adamant.jax.step: `tx` must come from adamant.jax (adamw, adam, lion, sgd, adam_mini, chain)")
    return fn(grads, state, params)


# --------------------------------------------------------------------------- Adam-mini


def tensor_sum_sq(x, axis_name=None):
    """Canonical sum of squares of one tensor (core's ``clip::tensor_sum_sq``): its per-tile
    partials (all-gathered over ``axis_name`` inside ``shard_map``), combined."""
    p = sum_sq_partials(x)
    if axis_name is not None:
        p = jax.lax.all_gather(p, axis_name, tiled=True)
    return combine(p)


def axis_size(axis_name):
    """The size of a mesh axis inside ``shard_map`` as a Python int."""
    f = getattr(jax.lax, "axis_size", None)
    return int(f(axis_name)) if f is not None else int(jax.lax.psum(1, axis_name))


def _coef_buffer(c):
    return jnp.ones((), jnp.float32) if c is None else jnp.asarray(c, jnp.float32).reshape(())


def _layout_attrs(layout):
    kind, bl, segs = _lib.layout_code(layout)
    attrs = dict(layout=np.int64(kind), block_len=np.int64(bl))
    if segs is not None:
        attrs["segments"] = segs
    return attrs


def adam_mini_update(param, grad, exp_avg, exp_avg_sq, lr, count, clip_coef=None, *, layout,
                     b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0):
    """One Adam-mini step on one whole tensor (core's ``adam_mini::apply_tensor``):
    returns ``(param, exp_avg, exp_avg_sq)`` aliased to the inputs; ``exp_avg_sq`` has one
    entry per block of ``layout`` (see ``adamant.numpy.adam_mini``)."""
    return jax.ffi.ffi_call(
        "adamant_adam_mini", (_sds(param), _sds(exp_avg), _sds(exp_avg_sq)),
        input_output_aliases={0: 0, 2: 1, 3: 2},
    )(param, grad, exp_avg, exp_avg_sq, _lr_buffer(lr), _count_buffer(count), _coef_buffer(clip_coef),
      beta1=float(b1), beta2=float(b2), eps=float(eps), weight_decay=float(weight_decay),
      **_layout_attrs(layout))


def adam_mini_partials(grad, clip_coef=None):
    """Per-tile (4096) canonical sums of ``(g*clip_coef)^2`` of this shard's piece of a block:
    float32[ceil(grad.size / 4096)]. Gather them in the block's order and ``combine``."""
    return jax.ffi.ffi_call(
        "adamant_adam_mini_partials",
        jax.ShapeDtypeStruct((_lib.tile_count(grad.size),), jnp.float32),
    )(grad, _coef_buffer(clip_coef))


def adam_mini_block_update(param, grad, exp_avg, exp_avg_sq, sum_sq, lr, count, clip_coef=None, *,
                           block_numel, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0):
    """One shard's piece of a block spanning shards: ``exp_avg_sq`` (one entry, identical on
    every shard) from the block's combined ``sum_sq`` over ``block_numel`` elements, then the
    element pass on the piece. Returns ``(param, exp_avg, exp_avg_sq)``."""
    return jax.ffi.ffi_call(
        "adamant_adam_mini_block", (_sds(param), _sds(exp_avg), _sds(exp_avg_sq)),
        input_output_aliases={0: 0, 2: 1, 3: 2},
    )(param, grad, exp_avg, exp_avg_sq, jnp.asarray(sum_sq, jnp.float32).reshape(()), _lr_buffer(lr),
      _count_buffer(count), _coef_buffer(clip_coef), beta1=float(b1), beta2=float(b2), eps=float(eps),
      weight_decay=float(weight_decay), block_numel=np.int64(block_numel))


class AdamMiniState(NamedTuple):
    """State of ``adam_mini``: ``mu`` like the parameters, ``nu`` one 1-D array per parameter
    holding one second moment per block."""

    count: Any
    mu: Any
    nu: Any


def path_name(path):
    """A parameter's name from its pytree key path, keys joined by ``.``
    (``{'layers': [{'q_proj': {'weight': ..}}]}`` -> ``layers.0.q_proj.weight``)."""
    parts = []
    for k in path:
        for attr in ("key", "name", "idx"):
            if hasattr(k, attr):
                parts.append(str(getattr(k, attr)))
                break
        else:
            parts.append(str(k))
    return ".".join(parts)


def adam_mini(learning_rate, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0, *, dim, n_heads,
              n_kv_heads=None, blocks=None, mu_dtype=None, axis_name=None, sharded=None):
    """Adam-mini (official v1.1.1 semantics; core's ``rules::adam_mini``) as an optax
    transformation. Each parameter's blocks come from its pytree path name (``path_name``)
    and shape by the official name rules, evaluated by core's ``partition::classify``:
    ``bias`` -> per-element AdamW; ``q_proj k_proj wq wk query key`` -> heads of
    ``dim*dim // n_heads`` elements; ``embed embd wte lm_head output final_layer v_proj wv value
    feed_forward linear mlp o_proj wo attn.proj`` -> rows (``numel // shape[0]``); anything
    else -> one block per tensor. Weight decay is off for names containing ``norm``, ``ln``
    or ``bias``. Rows follow PyTorch's ``(out, in)`` weight layout (``shape[0]``).

    ``blocks`` maps exact names to explicit descriptors (``"element"``, ``"tensor"``,
    ``("rows", n)``, ``("heads", n)`` or segments ``[("blocks", len, block_len),
    ("element", len)]``), optionally as ``(descriptor, weight_decay_on)``; they win over the
    rules.

    Inside ``shard_map`` pass ``axis_name``: parameters are taken as sharded along that axis
    (``sharded``: a pytree of bools or a callable on params to mark replicated ones False).
    Row and head blocks must not straddle shards (each shard updates its own blocks and its
    slice of ``nu``); one-block tensors are updated in three phases (per-tile partials,
    all-gather, combine) with ``nu`` replicated, which gives the single-device bits when
    every shard holds a multiple of 4096 elements."""
    _check_lr(learning_rate)
    b1, b2, eps = _float(b1, "b1"), _float(b2, "b2"), _float(eps, "eps")
    weight_decay = _float(weight_decay, "weight_decay")
    state_dtype = _state_dtype(mu_dtype, "mu_dtype")
    from . import numpy as anp

    try:
        lr0 = 0.0 if callable(learning_rate) else float(learning_rate)
        one = [np.zeros(1, np.float32) for _ in range(4)]
        anp.adam_mini(one[0], one[1], one[2], one[3], lr=lr0, count=0, layout="tensor", b1=b1,
                      b2=b2, eps=eps, weight_decay=weight_decay)
        anp.adam_mini_classify("probe", (1,), dim=dim, n_heads=n_heads, n_kv_heads=n_kv_heads)
    except ValueError as e:
        raise ValueError(str(e).replace("adamant: adamant_adam_mini_classify:", "adamant:")) from None
    explicit = {}
    for name, d in (blocks or {}).items():
        if isinstance(d, tuple) and len(d) == 2 and isinstance(d[1], bool):
            d, wd_on = d
        else:
            wd_on = True
        _lib.layout_code(d, f"blocks[{name!r}]")
        explicit[name] = (d, wd_on)
    cache = {}

    def describe(name, shape):
        key = (name, tuple(shape))
        if key not in cache:
            if name in explicit:
                d, wd_on = explicit[name]
                cache[key] = (d, wd_on)
            else:
                d, wd_on, _, _ = anp.adam_mini_classify(name, shape, dim=dim, n_heads=n_heads,
                                                        n_kv_heads=n_kv_heads)
                cache[key] = (d, wd_on)
        return cache[key]

    def init_fn(params):
        named, treedef = jax.tree_util.tree_flatten_with_path(params)
        mu, nu = [], []
        for path, p in named:
            d, _ = describe(path_name(path), p.shape)
            n = _lib.state_len(d, int(np.prod(p.shape, dtype=np.int64)), f"layout of {path_name(path)}")
            mu.append(_zeros_like_state(p, state_dtype))
            nu.append(jnp.zeros((n,), mu[-1].dtype))
        return AdamMiniState(count=jnp.zeros([], jnp.int32), mu=treedef.unflatten(mu),
                             nu=treedef.unflatten(nu))

    def step_fn(grads, state, params, clip_coefs=None):
        named, treedef = jax.tree_util.tree_flatten_with_path(params)
        gs = treedef.flatten_up_to(grads)
        ms = treedef.flatten_up_to(state.mu)
        vs = treedef.flatten_up_to(state.nu)
        cs = _coefs_per_leaf(clip_coefs, len(named))
        shard_flags = ([False] * len(named) if axis_name is None else
                       [bool(f) for f in _decay_per_leaf(1.0, sharded, params, treedef)])
        lr = _lr_buffer(_lr_at(learning_rate, state.count))
        out_p, out_m, out_v = [], [], []
        for (path, p), g, m, v, c, sh in zip(named, gs, ms, vs, cs, shard_flags):
            d, wd_on = describe(path_name(path), p.shape)
            wd = weight_decay if wd_on else 0.0
            if sh and d == "tensor":
                part = jax.lax.all_gather(adam_mini_partials(g, c), axis_name, tiled=True)
                numel = p.size * axis_size(axis_name)
                p2, m2, v2 = adam_mini_block_update(p, g, m, v, combine(part), lr, state.count, c,
                                                    block_numel=numel, b1=b1, b2=b2, eps=eps,
                                                    weight_decay=wd)
            else:
                p2, m2, v2 = adam_mini_update(p, g, m, v, lr, state.count, c, layout=d, b1=b1, b2=b2,
                                              eps=eps, weight_decay=wd)
            out_p.append(p2)
            out_m.append(m2)
            out_v.append(v2)
        return treedef.unflatten(out_p), AdamMiniState(
            count=_safe_increment(state.count), mu=treedef.unflatten(out_m), nu=treedef.unflatten(out_v))

    return optax.GradientTransformationExtraArgs(init_fn, _optax_update(step_fn, "adam_mini"))


# --------------------------------------------------------------------------- AdaGC


class AdaGcState(NamedTuple):
    """State of ``adagc``: steps applied and one threshold per tensor (one in global mode)."""

    count: Any
    gamma: Any


def adagc_update(tensor_sums, gamma, count, *, max_norm=1.0, lambda_rel=1.04, beta=0.99, eps=1e-6,
                 t_start=100, mode="per_tensor"):
    """One AdaGC step (core's ``clip::AdaGc`` plan and commit) from the per-tensor sums of
    squares (float32[N], tensor order): returns ``(coefs float32[N], gamma, global_norm)``,
    ``gamma`` aliased to its input."""
    sums = jnp.asarray(tensor_sums, jnp.float32).reshape(-1)
    return jax.ffi.ffi_call(
        "adamant_adagc",
        (jax.ShapeDtypeStruct(sums.shape, jnp.float32), _sds(gamma),
         jax.ShapeDtypeStruct((), jnp.float32)),
        input_output_aliases={1: 1},
    )(sums, gamma, _count_buffer(count), max_norm=float(max_norm), lambda_rel=float(lambda_rel),
      beta=float(beta), eps=float(eps), t_start=np.int64(t_start), **{"global": mode == "global"})


def adagc(max_norm=1.0, lambda_rel=1.04, beta=0.99, eps=1e-6, t_start=100, mode="per_tensor",
          axis_name=None, sharded=None):
    """AdaGC (arXiv 2502.11034, the official Megatron code's rule; core's ``clip::adagc``):
    per-tensor adaptive clipping. Steps ``1..t_start``: global clipping to ``max_norm`` and
    ``gamma_i`` = running minimum of the clipped norms; afterwards each tensor is clipped to
    ``lambda_rel * gamma_i`` and ``gamma_i = beta*gamma_i + (1-beta)*min(norm_i, threshold)``.
    ``mode="global"`` runs the rule on the global norm with one ``gamma``.

    Chain it before an adamant rule with ``adamant.jax.chain(adagc(...), adamw(...))``: the
    coefficients go to the rule's kernel, which multiplies the gradient inside its own pass
    (the gradients are never rewritten). Used alone (e.g. in ``optax.chain`` before an optax
    rule), ``update`` returns ``g * coef`` computed by XLA. Inside ``shard_map`` pass
    ``axis_name``: per-tensor norms then come from the all-gathered per-tile partials
    (``sharded``, a pytree of bools or a callable on the gradients, marks replicated tensors
    False: their norms are taken locally)."""
    if mode not in ("per_tensor", "global"):
        raise ValueError(f"adamant: `mode` is {mode!r}; accepted: 'per_tensor', 'global'")
    hyper = dict(max_norm=_float(max_norm, "max_norm"), lambda_rel=_float(lambda_rel, "lambda_rel"),
                 beta=_float(beta, "beta"), eps=_float(eps, "eps"), mode=mode)
    if isinstance(t_start, bool) or not isinstance(t_start, (int, np.integer)) or t_start < 0:
        raise ValueError(f"adamant: `t_start` must be an integer >= 0, got {t_start!r}")
    hyper["t_start"] = int(t_start)
    from . import numpy as anp

    anp.adagc(np.zeros(1, np.float32), np.zeros(1, np.float32), count=0, **hyper)

    def init_fn(params):
        n = len(jax.tree.leaves(params))
        return AdaGcState(count=jnp.zeros([], jnp.int32),
                          gamma=jnp.zeros((n if mode == "per_tensor" else 1,), jnp.float32))

    def coef_fn(grads, state, params):
        del params
        leaves, treedef = jax.tree.flatten(grads)
        flags = ([False] * len(leaves) if axis_name is None else
                 [bool(f) for f in _decay_per_leaf(1.0, sharded, grads, treedef)])
        sums = jnp.stack([tensor_sum_sq(g, axis_name if f else None) for g, f in zip(leaves, flags)]) \
            if leaves else jnp.zeros((0,), jnp.float32)
        coefs, gamma, _ = adagc_update(sums, state.gamma, state.count, **hyper)
        return [coefs[i] for i in range(len(leaves))], AdaGcState(_safe_increment(state.count), gamma)

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        coefs, state = coef_fn(updates, state, params)
        leaves, treedef = jax.tree.flatten(updates)
        return treedef.unflatten([(g * c).astype(g.dtype) for g, c in zip(leaves, coefs)]), state

    update_fn.adamant_coef = coef_fn
    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


from . import _jax_loco as loco  # noqa: E402  (the LoCo helpers, ``adamant.jax.loco``)
