"""A small deterministic MLP regression problem shared by the tests."""

import jax
import jax.numpy as jnp
import numpy as np


def dataset(n=256, d=8):
    i = np.arange(n * d, dtype=np.float64).reshape(n, d)
    x = np.sin(0.37 * i) + 0.5 * np.cos(0.11 * i * i / (n * d))
    w = np.cos(np.arange(d) * 0.7)
    y = np.tanh(x @ w)[:, None] + 0.1 * np.sin(3.0 * x[:, :1])
    return jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)


def init_params(d=8, h=32):
    def mat(shape, salt):
        k = np.arange(np.prod(shape), dtype=np.float64).reshape(shape)
        return jnp.asarray(np.sin(k * 1.618 + salt) / np.sqrt(shape[0]), jnp.float32)

    return {
        "l1": {"w": mat((d, h), 0.1), "b": jnp.zeros((h,), jnp.float32)},
        "l2": {"w": mat((h, h), 0.2), "b": jnp.zeros((h,), jnp.float32)},
        "out": {"w": mat((h, 1), 0.3), "b": jnp.zeros((1,), jnp.float32)},
    }


def loss(params, x, y):
    h = jnp.tanh(x @ params["l1"]["w"] + params["l1"]["b"])
    h = jnp.tanh(h @ params["l2"]["w"] + params["l2"]["b"])
    pred = h @ params["out"]["w"] + params["out"]["b"]
    return jnp.mean((pred - y) ** 2)


def max_rel_diff(a, b):
    """max over leaves of max|a-b| / max(max|b|, 1e-30)."""
    worst = 0.0
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        u = np.asarray(u, np.float64)
        v = np.asarray(v, np.float64)
        worst = max(worst, float(np.max(np.abs(u - v)) / max(np.max(np.abs(v)), 1e-30)))
    return worst


def rel_l2(a, b):
    """||a - b||_2 / ||b||_2 over all leaves (float64)."""
    num = sum(float(np.sum((np.asarray(u, np.float64) - np.asarray(v, np.float64)) ** 2))
              for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
    den = sum(float(np.sum(np.asarray(v, np.float64) ** 2)) for v in jax.tree.leaves(b))
    return (num / den) ** 0.5
