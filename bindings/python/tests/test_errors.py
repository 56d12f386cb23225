"""Bad calls give errors that name the argument, never a crash, and write nothing."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import adamant.jax as aj
import adamant.numpy as an

JaxRuntimeError = jax.errors.JaxRuntimeError
P = jnp.ones((4, 3), jnp.float32)
Z = jnp.zeros((4, 3), jnp.float32)
LR, COUNT = jnp.float32(1e-3), jnp.int32(0)


def _adam(*args, **attrs):
    base = dict(beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, decoupled=True)
    base.update(attrs)
    base = {k: v for k, v in base.items() if v is not None}
    p, m, v = args[0], args[2], args[3]
    f = jax.ffi.ffi_call("adamant_adam", (jax.ShapeDtypeStruct(p.shape, p.dtype),
                                          jax.ShapeDtypeStruct(m.shape, m.dtype),
                                          jax.ShapeDtypeStruct(v.shape, v.dtype)))
    return jax.block_until_ready(jax.jit(lambda *a: f(*a, **base))(*args))


def test_wrong_dtype_names_the_argument():
    with pytest.raises(JaxRuntimeError, match=r"INVALID_ARGUMENT.*`param` has dtype int32; accepted: float32, bfloat16, float16"):
        _adam(jnp.ones((4, 3), jnp.int32), Z, Z, Z, LR, COUNT)
    with pytest.raises(JaxRuntimeError, match=r"`exp_avg_sq` has dtype bfloat16; accepted: float32"):
        _adam(P, Z, Z, Z.astype(jnp.bfloat16), LR, COUNT)
    with pytest.raises(JaxRuntimeError, match=r"`lr` has dtype int32; accepted: float32, float64"):
        _adam(P, Z, Z, Z, jnp.int32(1), COUNT)
    with pytest.raises(JaxRuntimeError, match=r"`count` has dtype float32"):
        _adam(P, Z, Z, Z, LR, jnp.float32(0))


def test_shape_mismatch_names_the_argument():
    with pytest.raises(JaxRuntimeError, match=r"argument `grad` has shape \[3, 4\], expected \[4, 3\]"):
        _adam(P, jnp.zeros((3, 4)), Z, Z, LR, COUNT)
    with pytest.raises(JaxRuntimeError, match=r"argument `exp_avg` has shape \[12\]"):
        _adam(P, Z, jnp.zeros(12), Z, LR, COUNT)
    with pytest.raises(JaxRuntimeError, match=r"`lr` must hold one element"):
        _adam(P, Z, Z, Z, jnp.zeros(2), COUNT)


def test_unknown_and_missing_attributes():
    with pytest.raises(JaxRuntimeError, match=r"unknown attribute `bogus`; accepted: beta1, beta2, eps, weight_decay, decoupled"):
        _adam(P, Z, Z, Z, LR, COUNT, bogus=1.0)
    with pytest.raises(JaxRuntimeError, match=r"missing attribute `eps`"):
        _adam(P, Z, Z, Z, LR, COUNT, eps=None)
    with pytest.raises(JaxRuntimeError, match=r"attribute `beta1` must be a scalar"):
        _adam(P, Z, Z, Z, LR, COUNT, beta1="0.9")


def test_invalid_values_and_arity():
    with pytest.raises(JaxRuntimeError, match=r"invalid hyper-parameter: beta1 = 1.5 is outside"):
        _adam(P, Z, Z, Z, LR, COUNT, beta1=1.5)
    with pytest.raises(JaxRuntimeError, match=r"`count` is -1; it must be >= 0"):
        _adam(P, Z, Z, Z, LR, jnp.int32(-1))
    f = jax.ffi.ffi_call("adamant_lion", (jax.ShapeDtypeStruct(P.shape, P.dtype),) * 2)
    with pytest.raises(JaxRuntimeError, match=r"expected 5 arguments \(param, grad, exp_avg, lr, count\), got 4"):
        jax.block_until_ready(f(P, Z, Z, LR, beta1=0.9, beta2=0.99, weight_decay=0.0))
    # The backend survives every error above.
    out = aj.adam_update(P, Z + 1, Z, Z, LR, COUNT)
    assert float(out[0][0, 0]) < 1.0


def test_unsupported_optax_arguments_raise_value_error():
    with pytest.raises(ValueError, match="eps_root"):
        aj.adamw(1e-3, eps_root=1e-8)
    with pytest.raises(ValueError, match="nesterov"):
        aj.adam(1e-3, nesterov=True)
    with pytest.raises(ValueError, match="accepted: None, float32, bfloat16"):
        aj.adamw(1e-3, mu_dtype=jnp.float16)
    with pytest.raises(ValueError, match="weight_decay"):
        aj.adamw(1e-3, weight_decay=optax.constant_schedule(1e-4))
    with pytest.raises(ValueError, match="momentum"):
        aj.sgd(1e-3, momentum=-0.5)
    with pytest.raises(ValueError, match="learning_rate"):
        aj.lion("fast")
    # Core's validation runs at construction, naming the value.
    with pytest.raises(ValueError, match=r"beta1 = 1(\.0)? is outside \[0, 1\)"):
        aj.adamw(1e-3, b1=1.0)
    with pytest.raises(ValueError, match="eps = 0"):
        aj.adamw(1e-3, eps=0.0)
    with pytest.raises(ValueError, match="weight_decay = -1"):
        aj.lion(1e-3, weight_decay=-1.0)
    with pytest.raises(ValueError, match="lr must be finite"):
        aj.sgd(float("nan"))
    tx = aj.adamw(1e-3, mask={"w": True})
    params = {"w": P, "b": Z}
    with pytest.raises(ValueError, match="mask"):
        tx.update(params, tx.init(params), params)
    with pytest.raises(ValueError, match="needs `params`"):
        tx.update(params, tx.init(params))
    with pytest.raises(ValueError, match="adamant rule"):
        aj.chain(aj.clip_by_global_norm(1.0), optax.adam(1e-3))


def test_numpy_errors_write_nothing():
    p = np.ones(10, np.float32)
    g = np.full(10, 0.5, np.float32)
    m, v = np.zeros(10, np.float32), np.zeros(10, np.float32)
    with pytest.raises(ValueError, match="`exp_avg_sq` has 9 elements"):
        an.adam(p, g, m, v[:9], lr=1e-3, count=0)
    with pytest.raises(ValueError, match=r"`param` has dtype float64; accepted"):
        an.adam(p.astype(np.float64), g, m, v, lr=1e-3, count=0)
    with pytest.raises(ValueError, match="beta2 = 1"):
        an.adam(p, g, m, v, lr=1e-3, count=0, b2=1.0)
    with pytest.raises(ValueError, match="`count` is -3"):
        an.adam(p, g, m, v, lr=1e-3, count=-3)
    with pytest.raises(ValueError, match="overlaps"):
        an.adam(p, g, p, v, lr=1e-3, count=0)
    assert np.all(p == 1) and np.all(m == 0) and np.all(v == 0)
    an.adam(p, g, m, v, lr=1e-3, count=0)
    assert np.all(p < 1)


# ------------------------------------------------------------------ Adam-mini, AdaGC, clip_coef


def test_adam_mini_errors_name_the_argument_and_write_nothing():
    p, g, m = jnp.ones((8, 16)), jnp.ones((8, 16)), jnp.zeros((8, 16))
    with pytest.raises(JaxRuntimeError, match=r"adamant_adam_mini: `exp_avg_sq` has 3 elements, expected 8"):
        jax.block_until_ready(aj.adam_mini_update(p, g, m, jnp.zeros((3,)), LR, COUNT, layout=("rows", 16)))
    with pytest.raises(JaxRuntimeError, match=r"block layout: .*(tile|divide|block)"):
        jax.block_until_ready(aj.adam_mini_update(p, g, m, jnp.zeros((3,)), LR, COUNT, layout=("heads", 40)))
    with pytest.raises(JaxRuntimeError, match=r"`clip_coef` has dtype int32"):
        jax.block_until_ready(jax.ffi.ffi_call("adamant_adam", (jax.ShapeDtypeStruct(P.shape, P.dtype),) * 3)(
            P, Z, Z, Z, LR, COUNT, jnp.int32(1), beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0,
            decoupled=True))
    with pytest.raises(JaxRuntimeError, match=r"adamant_adam: `clip_coef` is -1; it must be finite and >= 0"):
        jax.block_until_ready(aj.adam_update(P, Z, Z, Z, LR, COUNT, clip_coef=-1.0))
    with pytest.raises(JaxRuntimeError, match=r"`block_numel` is 5; it must be >= the piece's 128"):
        jax.block_until_ready(aj.adam_mini_block_update(p, g, m, jnp.zeros((1,)), 1.0, LR, COUNT, block_numel=5))
    # numpy: the same checks, nothing written
    hp, hm, hv = np.ones(128, np.float32), np.zeros(128, np.float32), np.zeros(3, np.float32)
    with pytest.raises(ValueError, match=r"`exp_avg_sq` has 3 elements, expected 8"):
        an.adam_mini(hp, np.ones(128, np.float32), hm, hv, lr=1e-3, count=0, layout=("rows", 16))
    assert (hp == 1).all() and not hm.any() and not hv.any()
    with pytest.raises(ValueError, match=r"`layout`.*segment"):
        an.adam_mini(hp, hp, hm, hv, lr=1e-3, count=0, layout=[("blocks", 128)])
    with pytest.raises(ValueError, match=r"segments cover 100 elements, the tensor has 128"):
        aj.adam_mini(1e-3, dim=64, n_heads=4, blocks={"w": [("element", 100)]}).init({"w": jnp.ones(128)})


def test_adam_mini_and_adagc_construction_errors_name_the_value():
    with pytest.raises(ValueError, match=r"n_heads"):
        aj.adam_mini(1e-3, dim=64, n_heads=0)
    with pytest.raises(ValueError, match=r"(?i)beta1"):
        aj.adam_mini(1e-3, b1=1.5, dim=64, n_heads=4)
    with pytest.raises(ValueError, match=r"`mode` is 'x'"):
        aj.adagc(mode="x")
    with pytest.raises(ValueError, match=r"(?i)beta"):
        aj.adagc(beta=1.0)
    with pytest.raises(ValueError, match=r"`t_start` must be an integer >= 0"):
        aj.adagc(t_start=-1)


def test_adagc_errors_name_the_argument():
    with pytest.raises(JaxRuntimeError, match=r"adamant_adagc: `gamma` has 2 elements, expected 3"):
        jax.block_until_ready(aj.adagc_update(jnp.ones((3,)), jnp.zeros((2,)), COUNT))
    with pytest.raises(JaxRuntimeError, match=r"`count` is -1"):
        jax.block_until_ready(aj.adagc_update(jnp.ones((3,)), jnp.zeros((3,)), jnp.int32(-1)))
    gamma = np.zeros(2, np.float32)
    with pytest.raises(ValueError, match=r"`gamma` has 2 elements, expected 3"):
        an.adagc(np.ones(3, np.float32), gamma, count=0)
