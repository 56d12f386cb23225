"""LoCo on 4 host devices: compress -> jax.lax.all_to_all of the packed bytes ->
decompress_reduce inside shard_map gives the bits of the same exchange computed by core on
one device (adamant.numpy host entry points), over steps with and without error resets, for
8-bit and f32 error storage and 4/8-bit codes."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import adamant.jax as aj
import adamant.numpy as an


def test_four_device_exchange_matches_core_on_one_device():
    env = dict(os.environ)
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
    script = os.path.join(os.path.dirname(__file__), "loco_run.py")
    r = subprocess.run([sys.executable, script], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode in (0, 1), r.stderr[-4000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    print(out)
    assert out["devices"] == 4
    for res in out["results"]:
        assert res["same_bits"], res
        # Not blind: the exchange is lossy (differs from the exact mean) yet close to it, and
        # the error memory is in use.
        assert res["compressed_differs"] and res["err_nonzero"], res
        assert res["max_abs_dev_from_mean"] < 0.25 * res["scale"], res


def test_single_device_helpers_match_numpy_bits():
    """One jitted compress/decompress_reduce pair (world 2, bf16 gradient) == the host path."""
    rng = np.random.default_rng(3)
    import ml_dtypes

    g = (rng.standard_normal(2 * 777) * 3).astype(ml_dtypes.bfloat16)
    kw = dict(world=2, group_len=64, bits=4, err_beta=0.5, reset_every=0, error_storage="int8")
    err = np.asarray(aj.loco.init_error(g.size, world=2, group_len=64, bits=4, error_storage="int8"))
    herr = err.copy()
    f = jax.jit(lambda g, e, c: aj.loco.compress(g, e, c, **kw))
    for count in range(3):
        packed, err = f(g, err, count)
        hp = an.loco_compress(g, herr, count=count, **kw)
        assert np.array_equal(np.asarray(packed), hp) and np.array_equal(np.asarray(err), herr)
    red = aj.loco.decompress_reduce(jnp.asarray(hp), world=2, shard_len=777, group_len=64, bits=4)
    hred = an.loco_decompress_reduce(hp, shard_len=777, world=2, group_len=64, bits=4)
    assert np.array_equal(np.asarray(red).view(np.uint32), hred.view(np.uint32))


def test_loco_errors_name_the_argument():
    g = jnp.ones((1000,), jnp.float32)
    with pytest.raises(jax.errors.JaxRuntimeError, match=r"`err` must be uint8 with \d+ elements"):
        jax.block_until_ready(aj.loco.compress(g, jnp.zeros((5,), jnp.uint8), 0, world=4))
    with pytest.raises(jax.errors.JaxRuntimeError, match=r"`grad` of 1000 elements cannot be cut into `world` = 3"):
        jax.block_until_ready(jax.ffi.ffi_call(
            "adamant_loco_compress", (jax.ShapeDtypeStruct((8,), jnp.uint8), jax.ShapeDtypeStruct((4,), jnp.float32)),
        )(g, jnp.zeros((4,), jnp.float32), jnp.int32(0), world=np.int64(3), err_beta=0.8, group_len=np.int64(512),
          bits=np.int64(4), error_storage=np.int64(0), reset_every=np.int64(0)))
    with pytest.raises(jax.errors.JaxRuntimeError, match=r"`received` must be uint8 with"):
        jax.block_until_ready(aj.loco.decompress_reduce(jnp.zeros((10,), jnp.uint8), world=4, shard_len=250))
    bad = np.full(1000, np.nan, np.float32)
    err = np.zeros(1000, np.float32)
    with pytest.raises(ValueError, match="non-finite|NonFinite|not finite"):
        an.loco_compress(bad, err, count=0, world=4, error_storage="float32")
    assert not err.any()  # nothing written
    with pytest.raises(ValueError, match="`bits` is 3"):
        an.loco_layout(1000, world=4, bits=3)
