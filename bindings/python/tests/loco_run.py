"""Run by test_loco.py in a fresh process with 4 host devices: LoCo's compressed exchange
inside shard_map (compress -> jax.lax.all_to_all of the packed uint8 bytes ->
decompress_reduce) for several steps, against the same exchange computed on one device by
core through adamant.numpy (the host entry points), bit for bit. Prints one JSON line."""

import json
import os
import sys

os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P  # noqa: E402

import adamant.jax as aj  # noqa: E402
import adamant.numpy as an  # noqa: E402

WORLD, N, STEPS = 4, 4 * 1000, 4  # shards of 1000: groups of 256 leave a short last group
CONFIGS = [
    dict(bits=4, error_storage="int8", group_len=256, err_beta=0.8, reset_every=3),
    dict(bits=4, error_storage="float32", group_len=256, err_beta=0.8, reset_every=3),
    dict(bits=8, error_storage="float32", group_len=100, err_beta=0.0, reset_every=0),
]


def grads_at(step):
    """Per-rank gradients (WORLD, N): mixed scales, zeros of both signs, subnormals."""
    rng = np.random.default_rng(100 + step)
    g = rng.standard_normal((WORLD, N)) * np.exp2(rng.integers(-20, 6, (WORLD, N)))
    g = g.astype(np.float32)
    g.ravel()[rng.choice(g.size, 64, replace=False)] = np.resize(
        np.array([0.0, -0.0, 1e-45, -3e-39, 1e-38], np.float32), 64)
    g[:, 256:512] = 0.0  # an all-zero group
    return g


def run_jax(cfg):
    mesh = Mesh(np.array(jax.devices()[:WORLD]), ("x",))
    _, _, elen = aj.loco.layout(N, world=WORLD, group_len=cfg["group_len"], bits=cfg["bits"],
                                error_storage=cfg["error_storage"])
    err_dtype = np.float32 if cfg["error_storage"] == "float32" else np.uint8
    err = jax.device_put(np.zeros((WORLD, elen), err_dtype), NamedSharding(mesh, P("x")))

    def local(g, e, count):
        shard, e2 = aj.loco.exchange(g[0], e[0], count, axis_name="x", **cfg)
        return shard[None], e2[None]

    step = jax.jit(jax.shard_map(local, mesh=mesh, in_specs=(P("x"), P("x"), P()),
                                 out_specs=(P("x"), P("x")), check_vma=False), donate_argnums=(1,))
    shards = []
    for t in range(STEPS):
        g = jax.device_put(grads_at(t), NamedSharding(mesh, P("x")))
        s, err = step(g, err, jnp.int32(t))
        shards.append(np.asarray(s))
    return shards, np.asarray(err)


def run_core(cfg):
    """The same exchange on one device: each rank's compress through the host entry point,
    the all-to-all as a transpose of chunks, each rank's decompress_reduce."""
    _, _, elen = an.loco_layout(N, world=WORLD, group_len=cfg["group_len"], bits=cfg["bits"],
                                error_storage=cfg["error_storage"])
    err_dtype = np.float32 if cfg["error_storage"] == "float32" else np.uint8
    errs = [np.zeros(elen, err_dtype) for _ in range(WORLD)]
    shards = []
    for t in range(STEPS):
        g = grads_at(t)
        packed = [an.loco_compress(g[r], errs[r], count=t, world=WORLD, **cfg) for r in range(WORLD)]
        out = [an.loco_decompress_reduce(np.stack([packed[r][k] for r in range(WORLD)]), shard_len=N // WORLD,
                                         world=WORLD, group_len=cfg["group_len"], bits=cfg["bits"])
               for k in range(WORLD)]
        shards.append(np.stack(out))
    return shards, np.stack(errs)


def main():
    assert len(jax.devices()) == WORLD, jax.devices()
    results = []
    for cfg in CONFIGS:
        js, je = run_jax(cfg)
        cs, ce = run_core(cfg)
        same = all(np.array_equal(a.view(np.uint32), b.view(np.uint32)) for a, b in zip(js, cs)) and \
            np.array_equal(je.view(np.uint8), ce.view(np.uint8))
        exact = grads_at(STEPS - 1).astype(np.float64).mean(axis=0).reshape(WORLD, -1)
        dev = float(np.max(np.abs(js[-1] - exact)))
        results.append(dict(cfg=cfg, same_bits=bool(same), max_abs_dev_from_mean=dev,
                            compressed_differs=bool(dev > 0), err_nonzero=bool(np.any(je != 0)),
                            scale=float(np.max(np.abs(exact)))))
    print(json.dumps({"devices": len(jax.devices()), "results": results}))
    return 0 if all(r["same_bits"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
