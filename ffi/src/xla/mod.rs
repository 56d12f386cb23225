//! adamant as XLA typed-FFI handlers for JAX (`jax.ffi.register_ffi_target(..., api_version=1)`),
//! plus host-array entry points over the same functions for `adamant.numpy`.
//!
//! - [`api`] holds `#[repr(C)]` mirrors of the stable C API structs, pinned by `offset_of!`.
//! - [`frame`] reads the metadata query (API 0.1, accepted by jaxlib 0.6 through 0.10), stages,
//!   argument/attribute checks, errors through `XLA_FFI_Error_Create` naming the argument.
//! - [`run`] has the checked steps shared by both entry points (core's slice kernels).
//! - [`handlers`] exports `adamant_xla_{adam,lion,sgd,sum_sq_partials,combine}`,
//!   `adamant_xla_adam_mini{,_partials,_block}`, `adamant_xla_adagc` and
//!   `adamant_xla_loco_{compress,decompress_reduce}`; adam/lion/sgd take an optional trailing
//!   `clip_coef` buffer (AdaGC's coefficient, applied inside the rule's pass).
//! - [`host`] exports the matching `adamant_host_*` entry points, plus
//!   `adamant_host_adam_mini_classify` (core's official name rules) and
//!   `adamant_host_loco_layout`.
//!
//! Sharded statistics (global norms, AdaGC's per-tensor norms, Adam-mini blocks that span
//! shards) run in two phases: per-tile partials on each shard, an all-gather of the tile
//! results in global tile order, then `combine`, so shards cut at 4096-element tile
//! boundaries reproduce the unsharded bits.

pub mod api;
pub mod fpenv;
pub mod frame;
pub mod handlers;
pub mod host;
pub mod run;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_rules;
