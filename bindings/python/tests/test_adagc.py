"""AdaGC chained before AdamW: adamant.jax tracks a float64 evaluation of the official rule
on a spiky gradient sequence (stated tolerance), equals adamant.numpy (AdaGC coefficients
passed as `clip_coef`) bit for bit, and used alone in optax it rewrites g as g*coef."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import adamant.jax as aj
import adamant.numpy as an
from llama import grads_at, params0
from test_bits import bits

# max_norm 3.2: warm-up global clipping triggers on some steps (global norms 3.1-3.3) only.
HP = dict(max_norm=3.2, lambda_rel=1.04, beta=0.99, eps=1e-6, t_start=4)
LR, WD, B1, B2, EPS = 1e-2, 0.1, 0.9, 0.999, 1e-8
STEPS, SPIKE_AT, SPIKE = 12, 8, 50.0


def grads(t):
    return grads_at(t, spike_at=SPIKE_AT, spike=SPIKE)


def adagc64(norms, gamma, k, global_norm=None):
    """The official AdaGC rule in float64: (coefs, new gamma) at step k (1-based); the
    warm-up clips by the global norm (of `norms`, or `global_norm` when given)."""
    mx, lam, beta, eps, t0 = HP["max_norm"], HP["lambda_rel"], HP["beta"], HP["eps"], HP["t_start"]
    G = np.sqrt(np.sum(np.square(norms))) if global_norm is None else global_norm
    first = k == 1
    coefs, new = np.ones(len(norms)), gamma.copy()
    if k <= t0:
        c = min(1.0, mx / (G + eps))
        for i, n in enumerate(norms):
            coefs[i] = c
            new[i] = c * n if first else min(gamma[i], c * n)
    else:
        for i, n in enumerate(norms):
            g0 = n if first else gamma[i]
            thr = lam * g0
            if n > thr:
                coefs[i], clipped = thr / (n + eps), thr
            else:
                clipped = n
            new[i] = beta * g0 + (1 - beta) * clipped
    return coefs, new


def adamw64(p, g, m, v, t):
    p = p * (1 - LR * WD)
    m = B1 * m + (1 - B1) * g
    v = B2 * v + (1 - B2) * g * g
    bc1, bc2 = 1 - B1 ** t, 1 - B2 ** t
    return p - (LR / bc1) * m / (np.sqrt(v) / np.sqrt(bc2) + EPS), m, v


@pytest.mark.parametrize("mode", ["per_tensor", "global"])
def test_adagc_adamw_tracks_float64_and_equals_numpy_bits(mode):
    tx = aj.chain(aj.adagc(**HP, mode=mode), aj.adamw(LR, b1=B1, b2=B2, eps=EPS, weight_decay=WD))
    params = params0()
    state = tx.init(params)
    step = jax.jit(lambda g, s, p: aj.step(tx, g, s, p))
    p0 = [np.asarray(x) for x in jax.tree.leaves(params)]
    n = len(p0)
    ref = [(x.astype(np.float64).ravel(), np.zeros(x.size), np.zeros(x.size)) for x in p0]
    gamma64 = np.zeros(n if mode == "per_tensor" else 1)
    host = [(x.copy().ravel(), np.zeros(x.size, np.float32), np.zeros(x.size, np.float32)) for x in p0]
    gamma32 = np.zeros(n if mode == "per_tensor" else 1, np.float32)
    spike_coefs, warm = None, []
    worst_coef = worst_p = 0.0
    for t in range(1, STEPS + 1):
        gs = grads(t)
        params, state = step(gs, state, params)
        gl = [np.asarray(g).ravel() for g in jax.tree.leaves(gs)]
        # float64 reference
        norms64 = np.array([np.linalg.norm(g.astype(np.float64)) for g in gl])
        if mode == "global":
            G = np.sqrt(np.sum(norms64 ** 2))
            c, gamma64 = adagc64_global(G, gamma64, t)
            coefs64 = np.full(n, c)
        else:
            coefs64, gamma64 = adagc64(norms64, gamma64, t)
        ref = [adamw64(p, g.astype(np.float64) * c, m, v, t) for (p, m, v), g, c in zip(ref, gl, coefs64)]
        # adamant.numpy: AdaGC coefficients, then each rule step with clip_coef
        sums = np.array([an.tensor_sum_sq(g) for g in gl], np.float32)
        coefs32, _ = an.adagc(sums, gamma32, count=t - 1, mode=mode, **HP)
        for (p, m, v), g, c in zip(host, gl, coefs32):
            an.adam(p, g, m, v, lr=np.float32(LR), count=t - 1, b1=B1, b2=B2, eps=EPS, weight_decay=WD,
                    clip_coef=c)
        worst_coef = max(worst_coef, float(np.max(np.abs(coefs32 - coefs64) / coefs64)))
        if t == SPIKE_AT:
            spike_coefs = coefs32
        if t <= HP["t_start"]:
            warm.append(float(coefs32[0]))
    # The spike was clipped hard in the spiked tensors (every third leaf) and only there.
    spiked = np.arange(n) % 3 == 0
    if mode == "per_tensor":
        assert spike_coefs[spiked].max() < 0.1, spike_coefs
        assert spike_coefs[spiked].max() * 5 < spike_coefs[~spiked].min(), spike_coefs
    else:
        assert np.all(spike_coefs < 0.1) and np.all(spike_coefs == spike_coefs[0])
    # Warm-up: global clipping on some steps, none on others.
    assert min(warm) < 1.0 and max(warm) == 1.0, warm
    # Stated tolerances: coefficients within 1e-5 relative of float64, parameters within 2e-6.
    assert worst_coef < 1e-5, worst_coef
    for x, (p64, _, _) in zip(jax.tree.leaves(params), ref):
        worst_p = max(worst_p, float(np.max(np.abs(np.asarray(x, np.float64).ravel() - p64))))
    assert worst_p < 2e-6, worst_p
    print(mode, "worst coef rel err", worst_coef, "worst |p32-p64|", worst_p)
    # Bit identity with the host path, parameters, moments and AdaGC's gamma.
    for x, (p, m, v), mu, nu in zip(jax.tree.leaves(params), host, jax.tree.leaves(state[1].mu),
                                    jax.tree.leaves(state[1].nu)):
        assert np.array_equal(bits(np.asarray(x).ravel()), bits(p))
        assert np.array_equal(bits(np.asarray(mu).ravel()), bits(m))
        assert np.array_equal(bits(np.asarray(nu).ravel()), bits(v))
    assert np.array_equal(bits(np.asarray(state[0].gamma)), bits(gamma32))
    assert int(state[0].count) == STEPS


def adagc64_global(G, gamma, k):
    """AdaGC-Global: the same rule on the global norm with one gamma."""
    c, g = adagc64(np.array([G]), gamma, k, global_norm=G)
    return c[0], g


def test_optax_update_applies_the_coefficient_inside_the_rule():
    """`tx.update` of the chain gives deltas that, added back, are the fused step's params to
    within one rounding; `adagc` alone (optax.chain) returns g*coef."""
    tx = aj.chain(aj.adagc(**HP), aj.adamw(LR, weight_decay=WD))
    params = params0()
    s1 = s2 = tx.init(params)
    p_fused = p_optax = params
    fused, update = jax.jit(lambda g, s, p: aj.step(tx, g, s, p)), jax.jit(tx.update)
    for t in range(1, 7):
        gs = grads(t if t != 5 else SPIKE_AT)
        p_fused, s1 = fused(gs, s1, p_fused)
        upd, s2 = update(gs, s2, p_optax)
        p_optax = optax.apply_updates(p_optax, upd)
    for a, b in zip(jax.tree.leaves(p_fused), jax.tree.leaves(p_optax)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=0, atol=1e-6)
    alone = aj.adagc(**HP)
    st = alone.init(params)
    gs = grads(1)
    out, st = jax.jit(alone.update)(gs, st, params)
    sums = np.array([an.tensor_sum_sq(np.asarray(g)) for g in jax.tree.leaves(gs)], np.float32)
    coefs, _ = an.adagc(sums, np.zeros(len(sums), np.float32), count=0, **HP)
    assert coefs[0] < 1.0  # warm-up global clipping is active at this norm (3.295 > 3.2)
    for o, g, c in zip(jax.tree.leaves(out), jax.tree.leaves(gs), coefs):
        assert np.array_equal(bits(np.asarray(o)), bits(np.asarray(g) * c))
    # optax's own rule after adamant's adagc works too.
    tx2 = optax.chain(aj.adagc(**HP), optax.adamw(LR))
    out2, _ = jax.jit(tx2.update)(gs, tx2.init(params), params)
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(out2))


def test_chain_rejects_two_adagc():
    with pytest.raises(ValueError, match="at most one adagc"):
        aj.chain(aj.adagc(), aj.adagc(), aj.adamw(1e-3))
