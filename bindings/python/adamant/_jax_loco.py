"""LoCo's compressed gradient exchange for JAX (``adamant.jax.loco``; core's ``loco``).

Inside ``shard_map`` over a mesh axis of ``world`` devices, each holding its own full-size
gradient ``g`` (data parallelism):

```python
packed, err = loco.compress(g, err, count, world=world)        # uint8[world, chunk_len]
received = jax.lax.all_to_all(packed, axis, 0, 0, tiled=True)   # row r: rank r's chunk for me
shard = loco.decompress_reduce(received, world=world)           # my shard of the average
# or all three at once: shard, err = loco.exchange(g, err, count, axis_name=axis)
```

Only packed 4-bit codes and one f32 scale per group cross the wire. The error buffer
``err`` (``init_error``) stays on its device: f32 per element, or DeepSpeed's packed 8-bit.
Every device that folds the same bytes gets the same bits, which are core's bits.
"""

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["layout", "init_error", "compress", "decompress_reduce", "exchange"]

_STORAGE = {"float32": 0, "int8": 1}


def _storage(error_storage):
    if error_storage not in _STORAGE:
        raise ValueError(f"adamant: `error_storage` is {error_storage!r}; accepted: 'float32', 'int8'")
    return _STORAGE[error_storage]


def layout(size, *, world, group_len=512, bits=4, error_storage="int8"):
    """``(chunk_len, packed_len, err_len)``: bytes per destination chunk, bytes ``compress``
    writes, and the error buffer's length (from core's ``LocoLayout``)."""
    from . import numpy as anp

    return anp.loco_layout(size, world=world, group_len=group_len, bits=bits, error_storage=error_storage)


def init_error(size, *, world, group_len=512, bits=4, error_storage="int8"):
    """A zero error buffer for a gradient of ``size`` elements (step 1 reads it as zero anyway)."""
    _, _, n = layout(size, world=world, group_len=group_len, bits=bits, error_storage=error_storage)
    return jnp.zeros((n,), jnp.float32 if error_storage == "float32" else jnp.uint8)


def compress(grad, err, count, *, world, group_len=512, bits=4, err_beta=0.8, reset_every=1024,
             error_storage="int8"):
    """Compress this device's gradient: ``x = g + e`` per shard, ``bits``-bit codes into
    ``packed`` (uint8[world, chunk_len], row ``c`` for rank ``c``), LoCo's error update.
    ``count`` = steps already compressed. Returns ``(packed, err)``, ``err`` aliased."""
    chunk, _, _ = layout(grad.size, world=world, group_len=group_len, bits=bits, error_storage=error_storage)
    packed, err = jax.ffi.ffi_call(
        "adamant_loco_compress",
        (jax.ShapeDtypeStruct((int(world) * chunk,), jnp.uint8), jax.ShapeDtypeStruct(err.shape, err.dtype)),
        input_output_aliases={1: 1},
    )(grad, err, _count(count), world=np.int64(world), err_beta=float(err_beta),
      group_len=np.int64(group_len), bits=np.int64(bits), error_storage=np.int64(_storage(error_storage)),
      reset_every=np.int64(reset_every))
    return packed.reshape(int(world), chunk), err


def decompress_reduce(received, *, world, shard_len, group_len=512, bits=4):
    """This device's shard of the average: ``received`` holds the ``world`` chunks it was sent
    (rank order, as ``all_to_all`` delivers them); returns float32[shard_len] =
    ``(sum_r deQ_r) / world`` folded in rank order."""
    return jax.ffi.ffi_call(
        "adamant_loco_decompress_reduce", jax.ShapeDtypeStruct((int(shard_len),), jnp.float32)
    )(received, world=np.int64(world), group_len=np.int64(group_len), bits=np.int64(bits))


def exchange(grad, err, count, *, axis_name, group_len=512, bits=4, err_beta=0.8, reset_every=1024,
             error_storage="int8"):
    """``compress`` -> ``jax.lax.all_to_all`` of the packed bytes over ``axis_name`` ->
    ``decompress_reduce``: returns ``(shard, err)``, ``shard`` this device's
    ``grad.size // world`` elements (in flat order) of the averaged gradient."""
    from .jax import axis_size

    world = axis_size(axis_name)
    packed, err = compress(grad, err, count, world=world, group_len=group_len, bits=bits,
                           err_beta=err_beta, reset_every=reset_every, error_storage=error_storage)
    received = jax.lax.all_to_all(packed, axis_name, 0, 0, tiled=True)
    shard = decompress_reduce(received, world=world, shard_len=grad.size // world, group_len=group_len,
                              bits=bits)
    return shard, err


def _count(count):
    count = jnp.asarray(count)
    if count.dtype not in (jnp.int32, jnp.int64):
        count = count.astype(jnp.int32)
    return count
