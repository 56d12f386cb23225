"""adamant: bit-exact optimizer updates backed by a Rust core.

- ``adamant.numpy``: in-place steps on host numpy arrays.
- ``adamant.jax``: optax ``GradientTransformation``s (``adamw``, ``adam``, ``lion``, ``sgd``,
  ``adam_mini``, ``clip_by_global_norm``, ``adagc``) running through XLA's typed FFI, jit- and
  donation-friendly, and ``adamant.jax.loco`` (LoCo's compressed all-to-all exchange).

``adamant.jax`` is imported on demand so that ``adamant.numpy`` works without JAX.
"""

__version__ = "0.1.0"

#: numeric contract version of the Rust core these bindings were built against
NUMERIC_CONTRACT_VERSION = 1
