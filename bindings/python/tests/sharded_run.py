"""Run by test_sharded.py in a fresh process with 4 host devices: the same training steps
(global-norm clip + AdamW with a cosine schedule) on one device and inside shard_map on 4,
then a bit-for-bit comparison. Prints one JSON line."""

import json
import os
import sys

os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P  # noqa: E402

import adamant.jax as aj  # noqa: E402

STEPS = 10
# Each leaf is sharded by rows; every shard holds a multiple of 4096 elements.
SHAPES = {"a": (32, 1024), "b": (16, 2048), "c": (4, 4096)}


def params0():
    return {k: jnp.asarray(np.sin(np.arange(np.prod(s)).reshape(s) * 0.013 + i), jnp.float32)
            for i, (k, s) in enumerate(SHAPES.items())}


def grads_at(step):
    return {k: np.asarray(np.cos(np.arange(np.prod(s)).reshape(s) * 0.007 * (step + 1) + i) * 0.05,
                          np.float32) for i, (k, s) in enumerate(SHAPES.items())}


def make_tx(axis_name):
    sched = optax.cosine_decay_schedule(1e-2, STEPS)
    return aj.chain(aj.clip_by_global_norm(1.0, axis_name=axis_name), aj.adamw(sched, weight_decay=0.1))


def spec_for(x):
    return P() if np.ndim(x) == 0 else P("x")


def run_single():
    tx = make_tx(None)
    dev = jax.devices()[0]
    params = jax.device_put(params0(), dev)
    state = jax.device_put(tx.init(params), dev)
    step = jax.jit(lambda g, s, p: aj.step(tx, g, s, p), donate_argnums=(1, 2))
    norms = []
    for i in range(STEPS):
        g = jax.device_put(grads_at(i), dev)
        norms.append(float(aj.global_norm(g)))
        params, state = step(g, state, params)
    return params, state, norms


def run_sharded(axis_name):
    tx = make_tx(axis_name)
    mesh = Mesh(np.array(jax.devices()[:4]), ("x",))
    params = params0()
    state = tx.init(params)
    p_specs = jax.tree.map(spec_for, params)
    s_specs = jax.tree.map(spec_for, state)
    put = lambda tree, specs: jax.tree.map(lambda x, s: jax.device_put(x, NamedSharding(mesh, s)), tree, specs)
    params, state = put(params, p_specs), put(state, s_specs)

    def local(g, s, p):
        return aj.step(tx, g, s, p)

    step = jax.jit(
        jax.shard_map(local, mesh=mesh, in_specs=(p_specs, s_specs, p_specs),
                      out_specs=(p_specs, s_specs), check_vma=False),
        donate_argnums=(1, 2))
    for i in range(STEPS):
        g = put(grads_at(i), p_specs)
        params, state = step(g, state, params)
    return params, state


def bits(tree):
    return [np.asarray(x).view(np.uint32 if np.asarray(x).dtype.itemsize == 4 else np.uint8).tobytes()
            for x in jax.tree.leaves(tree)]


def main():
    assert len(jax.devices()) == 4, jax.devices()
    p1, s1, norms = run_single()
    p4, s4 = run_sharded("x")
    p4_local, _ = run_sharded(None)  # per-shard norms: must differ (the gather matters)
    same = bits((p1, s1)) == bits((p4, s4))
    print(json.dumps({
        "devices": len(jax.devices()),
        "same_bits": same,
        "local_norm_run_differs": bits(p1) != bits(p4_local),
        "clipped_steps": sum(n >= 1.0 for n in norms),
        "leaves": len(jax.tree.leaves((p1, s1))),
        "param_sharding": str(jax.tree.leaves(p4)[0].sharding),
    }))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
