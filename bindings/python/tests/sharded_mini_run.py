"""Run by test_sharded_mini.py in a fresh process with 4 host devices: AdaGC chained with
Adam-mini, on one device and inside shard_map on 4 (rows sharded; a one-block norm weight
updated in phases with its partials all-gathered), then a bit-for-bit comparison. Prints one
JSON line."""

import json
import os
import sys

os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P  # noqa: E402

import adamant.jax as aj  # noqa: E402

STEPS = 8
DIM, N_HEADS = 128, 8  # heads of 2048 elements; a q_proj shard of 32 rows holds two
SHAPES = {
    "embed_tokens": {"weight": (64, 256)},
    "q_proj": {"weight": (DIM, DIM)},
    "norm": {"weight": (16384,)},  # one block; each shard holds 4096 elements
    "mlp": {"up_proj": {"bias": (16384,)}},  # per element; every leaf shards on 4096 boundaries
}


def params0():
    leaves, treedef = jax.tree.flatten(SHAPES, is_leaf=lambda s: isinstance(s, tuple))
    return treedef.unflatten([jnp.asarray(np.sin(np.arange(np.prod(s)).reshape(s) * 0.013 + i), jnp.float32)
                              for i, s in enumerate(leaves)])


def grads_at(step):
    leaves, treedef = jax.tree.flatten(SHAPES, is_leaf=lambda s: isinstance(s, tuple))
    out = []
    for i, s in enumerate(leaves):
        g = np.cos(np.arange(np.prod(s)).reshape(s) * 0.007 * (step + 1) + i) * 0.05
        if step == 5 and i == 2:
            g = g * 40.0  # a spike on the norm weight: AdaGC clips it
        out.append(np.asarray(g, np.float32))
    return treedef.unflatten(out)


def make_tx(axis_name, sharded=None):
    return aj.chain(aj.adagc(max_norm=1.0, t_start=3, axis_name=axis_name),
                    aj.adam_mini(1e-2, weight_decay=0.1, dim=DIM, n_heads=N_HEADS, axis_name=axis_name,
                                 sharded=sharded))


def run_single():
    tx = make_tx(None)
    dev = jax.devices()[0]
    params = jax.device_put(params0(), dev)
    state = jax.device_put(tx.init(params), dev)
    step = jax.jit(lambda g, s, p: aj.step(tx, g, s, p), donate_argnums=(1, 2))
    for i in range(STEPS):
        params, state = step(jax.device_put(grads_at(i), dev), state, params)
    return params, state


def state_specs(state):
    # nu of the one-block norm weight and every scalar are replicated; the rest follows params.
    return jax.tree.map(lambda x: P() if np.ndim(x) == 0 or np.size(x) == 1 or x.ndim == 1 and x.shape[0] == 1
                        else P("x"), state)


def run_sharded(sharded=None):
    tx = make_tx("x", sharded)
    mesh = Mesh(np.array(jax.devices()[:4]), ("x",))
    params = params0()
    state = tx.init(params)
    p_specs = jax.tree.map(lambda x: P("x"), params)
    s_specs = state_specs(state)
    s_specs = (jax.tree.map(lambda x: P(), state[0]),) + s_specs[1:]  # AdaGC state replicated
    put = lambda tree, specs: jax.tree.map(lambda x, s: jax.device_put(x, NamedSharding(mesh, s)), tree, specs)
    params, state = put(params, p_specs), put(state, s_specs)
    step = jax.jit(jax.shard_map(lambda g, s, p: aj.step(tx, g, s, p), mesh=mesh,
                                 in_specs=(p_specs, s_specs, p_specs), out_specs=(p_specs, s_specs),
                                 check_vma=False), donate_argnums=(1, 2))
    for i in range(STEPS):
        params, state = step(put(grads_at(i), p_specs), state, params)
    return params, state


def bits(tree):
    return [np.asarray(x).view(np.uint32 if np.asarray(x).dtype.itemsize == 4 else np.uint8).tobytes()
            for x in jax.tree.leaves(tree)]


def main():
    assert len(jax.devices()) == 4, jax.devices()
    p1, s1 = run_single()
    p4, s4 = run_sharded()
    p4_local, _ = run_sharded(sharded=jax.tree.map(lambda x: False, params0()))
    same = bits((p1, s1)) == bits((p4, s4))
    norm_leaf = 2
    print(json.dumps({
        "devices": len(jax.devices()),
        "same_bits": same,
        "local_run_differs": bits(p1)[norm_leaf] != bits(p4_local)[norm_leaf],
        "gamma": np.asarray(s1[0].gamma).tolist(),
        "leaves": len(jax.tree.leaves((p1, s1))),
        "param_sharding": str(jax.tree.leaves(p4)[0].sharding),
    }))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
