//! adamant as XLA typed-FFI handlers for JAX (`jax.ffi.register_ffi_target(..., api_version=1)`),
//! plus host-array entry points over the same functions for `adamant.numpy`.
//!
//! - [`api`] holds `#[repr(C)]` mirrors of the stable C API structs, pinned by `offset_of!`.
//! - [`frame`] reads the metadata query (API 0.1, accepted by jaxlib 0.6 through 0.10), stages,
//!   argument/attribute checks, errors through `XLA_FFI_Error_Create` naming the argument.
//! - [`run`] has the checked steps shared by both entry points (core's slice kernels).
//! - [`handlers`] exports `adamant_xla_{adam,lion,sgd,sum_sq_partials,combine}`.
//! - [`host`] exports `adamant_host_{adam,lion,sgd,sum_sq_partials,combine}`.
//!
//! Sharded statistics (global-norm clipping now; Adam-mini and AdaGC later) run in two phases:
//! `sum_sq_partials` on each shard, an all-gather of the per-tile results in global tile order,
//! then `combine`, so shards cut at 4096-element tile boundaries reproduce the unsharded bits.

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
