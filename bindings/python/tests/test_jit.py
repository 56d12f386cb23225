"""Compilation and memory behaviour under jax.jit: one compilation for a whole schedule, and
in-place updates when parameters and state are donated."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

import adamant.jax as aj
from mlp import dataset, init_params, loss

X, Y = dataset()


def _train_step(tx, fused):
    def one(params, state):
        grads = jax.grad(loss)(params, X, Y)
        if fused:
            return aj.step(tx, grads, state, params)
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    return one


def test_cosine_schedule_compiles_once():
    sched = optax.warmup_cosine_decay_schedule(0.0, 1e-2, 10, 200)
    for tx in (aj.adamw(sched), aj.lion(sched), aj.sgd(sched, momentum=0.9)):
        for fused in (True, False):
            step = jax.jit(_train_step(tx, fused), donate_argnums=(0, 1))
            params = init_params()
            state = tx.init(params)
            lrs = set()
            for i in range(200):
                params, state = step(params, state)
                lrs.add(float(sched(i)))
            assert step._cache_size() == 1
            assert int(state.count) == 200
            assert len(lrs) > 150  # the schedule really moved


def _pointers(tree):
    return [x.unsafe_buffer_pointer() for x in jax.tree.leaves(tree)]


def test_donated_step_updates_in_place():
    for tx in (aj.adamw(1e-3, weight_decay=0.1), aj.lion(1e-4), aj.sgd(1e-2, momentum=0.9),
               aj.chain(aj.clip_by_global_norm(1.0), aj.adamw(1e-3))):
        step = jax.jit(_train_step(tx, True), donate_argnums=(0, 1))
        params = init_params()
        state = tx.init(params)
        params, state = step(params, state)  # first call: buffers become XLA's
        before_p, before_s = _pointers(params), _pointers(state)
        for _ in range(3):
            params, state = step(params, state)
            assert _pointers(params) == before_p, "a parameter buffer moved (copied)"
            assert _pointers(state) == before_s, "a state buffer moved (copied)"


def test_donated_step_has_no_copies_in_the_compiled_module():
    tx = aj.adamw(optax.cosine_decay_schedule(1e-2, 100), weight_decay=0.1)
    params = init_params()
    state = tx.init(params)

    def update_only(grads, params, state):
        return aj.step(tx, grads, state, params)

    compiled = jax.jit(update_only, donate_argnums=(1, 2)).lower(params, params, state).compile()
    text = compiled.as_text()
    calls = [l for l in text.splitlines() if "custom_call_target=\"adamant_adam\"" in l]
    assert len(calls) == len(jax.tree.leaves(params))
    # Every donated parameter and moment is aliased to an output; XLA copies no array (only
    # the 4-byte step counter, which the custom calls read while its increment is written).
    copies = [l.strip() for l in text.splitlines() if " copy(" in l or "copy-start" in l]
    assert all("[] copy(" in l for l in copies), copies
    aliases = text.split("input_output_alias=")[1].split("}\n")[0] if "input_output_alias=" in text else ""
    n_aliased = aliases.count("may-alias") + aliases.count("must-alias")
    assert n_aliased >= 3 * len(jax.tree.leaves(params)), aliases


def test_float_learning_rate_and_schedule_agree():
    """A constant schedule gives the same bits as the float learning rate."""
    params = init_params()
    a, b = aj.adamw(1e-3), aj.adamw(optax.constant_schedule(1e-3))
    pa, sa = jax.jit(_train_step(a, True))(params, a.init(params))
    pb, sb = jax.jit(_train_step(b, True))(params, b.init(params))
    for u, v in zip(jax.tree.leaves((pa, sa)), jax.tree.leaves((pb, sb))):
        np.testing.assert_array_equal(np.asarray(u), np.asarray(v))
