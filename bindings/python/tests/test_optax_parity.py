"""adamant.jax against optax on a real training loop (a small MLP, 200 steps).

Two comparisons:
* free-running: each optimizer trains its own copy; the parameters stay within a stated
  relative L2 distance of optax's at every step (rounding differences are amplified by the
  trajectory, Lion's sign most of all, so the tolerances are per rule);
* teacher-forced: at every step of optax's trajectory, adamant's step from optax's own
  parameters, state and gradients gives moments within 2 ulp (of the size of the
  moment's terms) of optax's (same formula and
  operation order; XLA:CPU contracts optax's `(1-b)*g + b*m` into a fused multiply-add, which
  adamant's contract forbids) and parameters within a few f32 roundings of optax's.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import adamant.jax as aj
from mlp import dataset, init_params, loss, rel_l2

STEPS = 200
X, Y = dataset()

# (name, adamant transformation, optax transformation, free-running tolerance)
# Observed maxima (jax 0.10.2 CPU): adamw 7.3e-6, adamw+cosine 2.8e-6, lion 2.0e-4,
# sgd 1.1e-7, sgd nesterov 1.2e-7, plain sgd 7.1e-8.
CASES = [
    ("adamw", aj.adamw(1e-2, weight_decay=1e-2), optax.adamw(1e-2, weight_decay=1e-2), 1e-4),
    ("adamw_cosine",
     aj.adamw(optax.cosine_decay_schedule(1e-2, STEPS)),
     optax.adamw(optax.cosine_decay_schedule(1e-2, STEPS)), 1e-4),
    ("adamw_mask",
     aj.adamw(1e-2, weight_decay=0.1, mask=lambda p: jax.tree.map(lambda x: x.ndim > 1, p)),
     optax.adamw(1e-2, weight_decay=0.1, mask=lambda p: jax.tree.map(lambda x: x.ndim > 1, p)),
     1e-4),
    ("adam", aj.adam(1e-2), optax.adam(1e-2), 1e-4),
    ("lion", aj.lion(1e-4), optax.lion(1e-4), 2e-3),
    ("sgd_momentum", aj.sgd(5e-2, momentum=0.9), optax.sgd(5e-2, momentum=0.9), 1e-6),
    ("sgd_nesterov", aj.sgd(5e-2, momentum=0.9, nesterov=True),
     optax.sgd(5e-2, momentum=0.9, nesterov=True), 1e-6),
    ("sgd", aj.sgd(5e-2), optax.sgd(5e-2), 1e-6),
]


def _train(tx, mode):
    params = init_params()
    state = tx.init(params)

    @jax.jit
    def one(params, state):
        value, grads = jax.value_and_grad(loss)(params, X, Y)
        if mode == "fused":
            params, state = aj.step(tx, grads, state, params)
        else:
            updates, state = tx.update(grads, state, params)
            params = optax.apply_updates(params, updates)
        return params, state, value

    out = []
    for _ in range(STEPS):
        params, state, value = one(params, state)
        out.append((params, float(value)))
    return out


@pytest.mark.parametrize("name,ours,theirs,tol", CASES, ids=[c[0] for c in CASES])
def test_training_loop_tracks_optax(name, ours, theirs, tol):
    ref = _train(theirs, "optax")
    for mode in ("fused", "optax"):
        got = _train(ours, mode)
        worst = 0.0
        for i, ((p, l), (q, lq)) in enumerate(zip(got, ref)):
            d = rel_l2(p, q)
            worst = max(worst, d)
            assert d <= tol, f"{name}/{mode}: step {i + 1}: relative L2 distance {d:.3g} > {tol:g}"
        print(f"{name}/{mode}: max relative L2 distance {worst:.3g} (tolerance {tol:g})")
    # The loop really trains.
    assert ref[-1][1] < 0.5 * ref[0][1], (name, ref[0][1], ref[-1][1])
    assert got[-1][1] < 0.5 * got[0][1], (name, got[0][1], got[-1][1])


def _leaves(tree):
    return [np.asarray(x) for x in jax.tree.leaves(tree)]


@pytest.mark.parametrize("rule", ["adamw", "lion"])
def test_teacher_forced_steps_match_optax(rule):
    if rule == "adamw":
        lr = 1e-2
        ours, theirs = aj.adamw(lr, weight_decay=1e-2), optax.adamw(lr, weight_decay=1e-2)

        def moments(s):  # optax.adamw's state: (ScaleByAdamState, EmptyState, EmptyState)
            return (s[0].count, s[0].mu, s[0].nu)

        def ours_state(s):
            return aj.AdamState(count=s[0].count, mu=s[0].mu, nu=s[0].nu)

        def ours_moments(s):
            return (s.count, s.mu, s.nu)
    else:
        lr = 1e-3
        ours, theirs = aj.lion(lr), optax.lion(lr)

        def moments(s):
            return (s[0].count, s[0].mu)

        def ours_state(s):
            return aj.LionState(count=s[0].count, mu=s[0].mu)

        def ours_moments(s):
            return (s.count, s.mu)

    @jax.jit
    def both(params, state):
        grads = jax.grad(loss)(params, X, Y)
        updates, new_state = theirs.update(grads, state, params)
        new_params = optax.apply_updates(params, updates)
        mine, my_state = aj.step(ours, grads, ours_state(state), params)
        return new_params, new_state, mine, my_state

    params = init_params()
    state = theirs.init(params)
    worst = worst_ulps = 0.0
    for i in range(STEPS):
        old, old_moments = params, _leaves(moments(state))
        params, state, mine, my_state = both(params, state)
        for a, b, m0 in zip(_leaves(moments(state)), _leaves(ours_moments(my_state)), old_moments):
            if a.dtype.kind == "i":
                np.testing.assert_array_equal(a, b, err_msg=f"{rule}: count at step {i + 1}")
                continue
            # The terms of b*m0 + (1-b)*x are bounded by |m0| + |a|: measure ulps of that.
            ulps = np.abs(a - b) / np.spacing(np.abs(m0) + np.abs(a))
            worst_ulps = max(worst_ulps, float(np.max(ulps)))
            assert np.all(ulps <= 2), f"{rule}: moments differ by {np.max(ulps)} ulp at step {i + 1}"
        for p0, p, q in zip(jax.tree.leaves(old), jax.tree.leaves(params), jax.tree.leaves(mine)):
            p0, p, q = (np.asarray(v, np.float64) for v in (p0, p, q))
            # A few f32 roundings of the parameter, plus the step's error: the moments above
            # may differ by 2 ulp of their terms, which cancellation in the moment turns into a
            # relative error of the step up to about 1e-5 of lr.
            bound = 6e-7 * np.abs(p0) + 1e-5 * (np.abs(p - p0) + lr)
            err = np.abs(p - q)
            worst = max(worst, float(np.max(err / bound)))
            k = np.argmax(err / bound)
            assert np.all(err <= bound), (f"{rule}: step {i + 1}: max excess {np.max(err / bound):.3g}", p0.flat[k], p.flat[k], q.flat[k])
    print(f"{rule}: teacher-forced worst error / bound = {worst:.3g}, moments {worst_ulps} ulp")


def test_signatures_match_optax():
    import inspect

    for name in ("adamw", "adam", "lion", "sgd"):
        ours = inspect.signature(getattr(aj, name))
        theirs = inspect.signature(getattr(optax, name))
        assert list(ours.parameters) == list(theirs.parameters), name
        for k, v in theirs.parameters.items():
            assert ours.parameters[k].default == v.default, (name, k)
            assert ours.parameters[k].kind == v.kind, (name, k)


@pytest.mark.parametrize("rule", ["adamw", "lion", "sgd"])
def test_training_loop_matches_adamant_numpy_bit_for_bit(rule):
    """The jitted JAX loop and the same steps on host arrays through adamant.numpy."""
    import adamant.numpy as an

    sched = optax.cosine_decay_schedule(1e-2, 30)
    if rule == "adamw":
        tx = aj.adamw(sched, weight_decay=0.05)
    elif rule == "lion":
        tx = aj.lion(sched)
    else:
        tx = aj.sgd(sched, momentum=0.9, nesterov=True)
    params = init_params()
    state = tx.init(params)
    host_p = [np.array(x) for x in jax.tree.leaves(params)]
    host_s = [np.zeros_like(x) for x in host_p]
    host_s2 = [np.zeros_like(x) for x in host_p]

    @jax.jit
    def one(params, state):
        grads = jax.grad(loss)(params, X, Y)
        new_params, new_state = aj.step(tx, grads, state, params)
        # The learning rate as the jitted step computes it (an eager sched(i) may round
        # differently from the compiled one).
        return new_params, new_state, grads, sched(state.count)

    for i in range(30):
        params, state, grads, lr = one(params, state)
        lr = float(lr)  # the f32 the kernel received, widened exactly
        for p, g, s, s2 in zip(host_p, [np.asarray(x) for x in jax.tree.leaves(grads)], host_s, host_s2):
            if rule == "adamw":
                an.adam(p, g, s, s2, lr=lr, count=i, weight_decay=0.05)
            elif rule == "lion":
                an.lion(p, g, s, lr=lr, count=i, weight_decay=1e-3)
            else:
                an.sgd(p, g, s, lr=lr, count=i, momentum=0.9, nesterov=True)
        for a, b in zip(jax.tree.leaves(params), host_p):
            np.testing.assert_array_equal(np.asarray(a).view(np.uint32), b.view(np.uint32),
                                          err_msg=f"{rule}: step {i + 1}")
