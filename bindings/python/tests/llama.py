"""A small Llama-shaped parameter tree (PyTorch `(out, in)` weights) shared by the Adam-mini
and AdaGC tests: dim 64, 4 heads, 2 key/value heads (grouped-query attention)."""

import jax.numpy as jnp
import numpy as np

DIM, N_HEADS, N_KV_HEADS, VOCAB, HIDDEN = 64, 4, 2, 96, 128

SHAPES = {
    "embed_tokens": {"weight": (VOCAB, DIM)},
    "layers": [{
        "self_attn": {"q_proj": {"weight": (DIM, DIM)}, "k_proj": {"weight": (DIM // 2, DIM)},
                      "v_proj": {"weight": (DIM // 2, DIM)}, "o_proj": {"weight": (DIM, DIM)}},
        "mlp": {"up_proj": {"weight": (HIDDEN, DIM), "bias": (HIDDEN,)},
                "down_proj": {"weight": (DIM, HIDDEN)}},
        "input_layernorm": {"weight": (DIM,)},
        "fused": {"wqkv": (2 * DIM, DIM)},
    }],
    "norm": {"weight": (DIM,)},
    "lm_head": {"weight": (VOCAB, DIM)},
}

# Explicit descriptor for the fused projection: Q heads, K heads (GQA), V rows.
FUSED_NAME = "layers.0.fused.wqkv"
FUSED = [("blocks", DIM * DIM, DIM * DIM // N_HEADS), ("blocks", DIM * DIM // 2, DIM * DIM // N_HEADS),
         ("blocks", DIM * DIM // 2, DIM)]


def _tree(fn):
    import jax

    return jax.tree.map(fn, SHAPES, is_leaf=lambda s: isinstance(s, tuple))


def params0():
    salt = iter(range(1000))
    return _tree(lambda s: jnp.asarray(
        np.sin(np.arange(np.prod(s)).reshape(s) * 0.031 + next(salt)) * 0.5, jnp.float32))


def grads_at(step, spike_at=None, spike=1.0):
    salt = iter(range(1000))

    def one(s):
        k = next(salt)
        g = np.cos(np.arange(np.prod(s)).reshape(s) * (0.013 + 0.001 * k) + step * 0.7 + k) * 0.02
        g = g * (1.0 + 0.3 * np.sin(step + k))
        if spike_at is not None and step == spike_at and k % 3 == 0:
            g = g * spike
        return jnp.asarray(g, jnp.float32)

    return _tree(one)
