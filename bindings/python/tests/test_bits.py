"""Bit identity: adamant.jax (XLA FFI under jit) == adamant.numpy (host entry points) == an
independent numpy model of core's formulas (scalars by the f64 recipe, then the numbered f32
operations), on adversarial inputs. `==` on bits, never a tolerance."""

import math

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest

import adamant.jax as aj
import adamant.numpy as an

CANON_NAN = np.uint32(0x7FFFFFFF)
SPECIALS = np.array(
    [0x00000000, 0x80000000, 0x00000001, 0x807FFFFF, 0x00800000, 0x7F7FFFFF, 0xFF7FFFFF,
     0x7F800000, 0xFF800000, 0x7FC00001, 0xFFA00000, 0x3F800000, 0xBF800000, 0x1E3CE508,
     0x6C2BC4B3, 0x33D6BF95],
    dtype=np.uint32,
).view(np.float32)


def adversarial(n, seed):
    """Mostly ordinary values of mixed scales, with every special value sprinkled in."""
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(n) * np.exp2(rng.integers(-30, 10, n))).astype(np.float32)
    idx = rng.choice(n, size=min(n, 3 * len(SPECIALS)), replace=False)
    x[idx] = np.resize(SPECIALS, len(idx))
    return x


def finite_positive(n, seed):
    rng = np.random.default_rng(seed)
    v = (np.abs(rng.standard_normal(n)) * np.exp2(rng.integers(-40, 4, n))).astype(np.float32)
    v[: min(n, 3)] = np.array([0.0, 1e-45, 3e38], np.float32)[: min(n, 3)]
    return v


def bits(a):
    a = np.asarray(a)
    return a.view(np.uint32 if a.dtype.itemsize == 4 else np.uint16)


def canon(x):
    x = np.array(x, np.float32)
    b = x.view(np.uint32)
    b[np.isnan(x)] = CANON_NAN
    return x


def pow_u64(base, t):
    r = 1.0
    if t == 0:
        return r
    for i in range(t.bit_length() - 1, -1, -1):
        r *= r
        if (t >> i) & 1:
            r *= base
    return r


def model_adamw(p, g, m, v, lr, count, b1, b2, eps, wd):
    t = count + 1
    f = np.float32
    bc1, bc2 = 1.0 - pow_u64(b1, t), 1.0 - pow_u64(b2, t)
    decay, step_size, bc2s = f(1.0 - lr * wd), f(lr / bc1), f(math.sqrt(bc2))
    with np.errstate(all="ignore"):
        p = p * decay
        m = f(b1) * m + f(1.0 - b1) * g
        v = f(b2) * v + f(1.0 - b2) * (g * g)
        denom = np.sqrt(v) / bc2s + f(eps)
        p = p - step_size * (m / denom)
    return canon(p), canon(m), canon(v)


def model_lion(p, g, m, lr, b1, b2, wd):
    f = np.float32
    with np.errstate(all="ignore"):
        p = p * f(1.0 - lr * wd)
        c = f(b1) * m + f(1.0 - b1) * g
        s = np.where(c > 0, f(1), np.where(c < 0, f(-1), np.where(c == 0, f(0), c)))
        p = p - f(lr) * s
        m = f(b2) * m + f(1.0 - b2) * g
    return canon(p), canon(m)


def _tile(t):
    """One tile by the canonical tree: 256 lanes add their 16 values in order, then halve."""
    acc = np.zeros(256, np.float32)
    with np.errstate(all="ignore"):
        for i in range(0, len(t), 256):
            row = t[i:i + 256]
            acc[: len(row)] = acc[: len(row)] + row
        s = 128
        while s >= 1:
            acc[:s] = acc[:s] + acc[s:2 * s]
            s //= 2
    return acc[0]


def model_sum_sq(x):
    with np.errstate(all="ignore"):
        sq = (x * x).astype(np.float32)
    return np.array([_tile(sq[i:i + 4096]) for i in range(0, len(sq), 4096)], np.float32)


def model_combine(parts):
    if len(parts) == 0:
        return np.float32(0)
    while len(parts) > 1:
        parts = np.array([_tile(parts[i:i + 4096]) for i in range(0, len(parts), 4096)], np.float32)
    return parts[0]


SIZES = [1, 7, 256, 4097, 12289]
HP = dict(b1=0.9, b2=0.999, eps=1e-8)


@pytest.mark.parametrize("n", SIZES)
def test_adamw_jax_numpy_model_bits(n):
    jit_step = jax.jit(lambda p, g, m, v, lr, c: aj.adam_update(
        p, g, m, v, lr, c, weight_decay=0.01, **HP))
    p, g = adversarial(n, 1), adversarial(n, 2)
    m, v = adversarial(n, 3), finite_positive(n, 4)
    for count, lr in [(0, 1e-3), (1, 3e-4), (41, 0.5), (1_000_000, 2.0 ** -7)]:
        lr32 = float(np.float32(lr))  # the JAX path carries lr as f32
        jp, jm, jv = jit_step(p, g, m, v, jnp.float32(lr32), jnp.int32(count))
        hp, hm, hv = p.copy(), m.copy(), v.copy()
        an.adam(hp, g, hm, hv, lr=lr32, count=count, weight_decay=0.01, **HP)
        mp, mm, mv = model_adamw(p, g, m, v, lr32, count, HP["b1"], HP["b2"], HP["eps"], 0.01)
        for name, a, b, c in [("param", jp, hp, mp), ("exp_avg", jm, hm, mm), ("exp_avg_sq", jv, hv, mv)]:
            np.testing.assert_array_equal(bits(a), bits(b), err_msg=f"jax vs numpy: {name} n={n} t={count}")
            np.testing.assert_array_equal(bits(b), bits(c), err_msg=f"numpy vs model: {name} n={n} t={count}")
        p, m, v = hp, hm, hv


@pytest.mark.parametrize("n", SIZES)
def test_lion_jax_numpy_model_bits(n):
    jit_step = jax.jit(lambda p, g, m, lr, c: aj.lion_update(p, g, m, lr, c, weight_decay=0.1))
    p, g, m = adversarial(n, 5), adversarial(n, 6), adversarial(n, 7)
    for count, lr in [(0, 1e-4), (5, 0.25)]:
        jp, jm = jit_step(p, g, m, jnp.float32(lr), jnp.int32(count))
        hp, hm = p.copy(), m.copy()
        an.lion(hp, g, hm, lr=lr, count=count, weight_decay=0.1)
        mp, mm = model_lion(p, g, m, lr, 0.9, 0.99, 0.1)
        for name, a, b, c in [("param", jp, hp, mp), ("exp_avg", jm, hm, mm)]:
            np.testing.assert_array_equal(bits(a), bits(b), err_msg=f"jax vs numpy: {name}")
            np.testing.assert_array_equal(bits(b), bits(c), err_msg=f"numpy vs model: {name}")
        p, m = hp, hm


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_jax_numpy_bits(nesterov):
    n = 4097
    jit_step = jax.jit(lambda p, g, b, lr, c: aj.sgd_update(
        p, g, b, lr, c, momentum=0.9, nesterov=nesterov, weight_decay=1e-4))
    p, g, b = adversarial(n, 8), adversarial(n, 9), np.zeros(n, np.float32)
    for count in range(3):
        jp, jb = jit_step(p, g, b, jnp.float32(0.01), jnp.int32(count))
        hp, hb = p.copy(), b.copy()
        an.sgd(hp, g, hb, lr=0.01, count=count, momentum=0.9, nesterov=nesterov, weight_decay=1e-4)
        np.testing.assert_array_equal(bits(jp), bits(hp))
        np.testing.assert_array_equal(bits(jb), bits(hb))
        # The model: first step buf = g', later 0.9*buf + 1*g'.
        with np.errstate(all="ignore"):
            gg = g + np.float32(1e-4) * p
            mb = gg if count == 0 else np.float32(0.9) * b + np.float32(1.0) * gg
            step = gg + np.float32(0.9) * mb if nesterov else mb
            mp = p - np.float32(0.01) * step
        np.testing.assert_array_equal(bits(hp), bits(canon(mp)))
        np.testing.assert_array_equal(bits(hb), bits(canon(mb)))
        p, b = hp, hb


@pytest.mark.parametrize("param_dtype", [jnp.bfloat16, jnp.float16])
@pytest.mark.parametrize("state_dtype", [jnp.float32, jnp.bfloat16])
def test_low_precision_jax_numpy_bits(param_dtype, state_dtype):
    n = 5000
    npd, nsd = np.dtype(param_dtype), np.dtype(state_dtype)
    with np.errstate(all="ignore"):
        p = adversarial(n, 10).astype(npd)
        g = adversarial(n, 11).astype(npd)
        m = adversarial(n, 12).astype(nsd)
        v = finite_positive(n, 13).astype(nsd)
    jp, jm, jv = jax.jit(lambda *a: aj.adam_update(*a, weight_decay=0.01, **HP))(
        p, g, m, v, jnp.float32(1e-3), jnp.int32(3))
    an.adam(p, g, m, v, lr=float(np.float32(1e-3)), count=3, weight_decay=0.01, **HP)
    for a, b in [(jp, p), (jm, m), (jv, v)]:
        assert np.asarray(a).dtype == b.dtype
        np.testing.assert_array_equal(bits(a), bits(b))


@pytest.mark.parametrize("n", [0, 1, 4095, 4096, 4097, 3 * 4096 + 5])
def test_sum_sq_partials_and_combine_bits(n):
    x = adversarial(max(n, 1), 14)[:n] if n else np.zeros(0, np.float32)
    x = np.where(np.isfinite(x), x, np.float32(0.5)).astype(np.float32)
    x[np.abs(x) > 1e18] = 3.0  # keep the sums finite so every tile's bits are informative
    jparts = np.asarray(jax.jit(aj.sum_sq_partials)(x))
    hparts = an.sum_sq_partials(x)
    np.testing.assert_array_equal(bits(jparts), bits(hparts))
    np.testing.assert_array_equal(bits(hparts), bits(model_sum_sq(x)))
    js = np.asarray(jax.jit(aj.combine)(jparts))
    np.testing.assert_array_equal(bits(js), bits(an.combine(hparts)))
    np.testing.assert_array_equal(bits(np.float32(js)), bits(model_combine(hparts)))


def test_combine_of_many_partials_recurses():
    parts = finite_positive(4096 * 2 + 3, 15)
    np.testing.assert_array_equal(
        bits(np.asarray(jax.jit(aj.combine)(parts))), bits(model_combine(parts)))


def test_numpy_unaligned_views():
    """Host arrays at an element offset into a larger buffer (not 16-byte aligned)."""
    base = [adversarial(1001, s) for s in (16, 17, 18)] + [finite_positive(1001, 19)]
    p, g, m, v = (b[1:] for b in base)
    ref = [b[1:].copy() for b in base]
    an.adam(p, g, m, v, lr=1e-3, count=0, **HP)
    an.adam(ref[0], ref[1], ref[2], ref[3], lr=1e-3, count=0, **HP)
    for a, b in zip((p, m, v), (ref[0], ref[2], ref[3])):
        np.testing.assert_array_equal(bits(a), bits(b))
    assert not np.array_equal(bits(p), bits(adversarial(1001, 16)[1:])), "the step wrote nothing"
