//! # adamant-core
//!
//! The one definition of every optimizer update rule adamant ships, as allocation-free state
//! machines over caller-owned slices. `#![no_std]`, no `alloc`, no `unsafe`.
//!
//! ## The numeric contract (version [`NUMERIC_CONTRACT_VERSION`])
//! 1. Every per-element formula is a fixed sequence of IEEE-754 binary32 `+ - * / sqrt`,
//!    rounded to nearest even, subnormals kept, no fused multiply-add (Rust never contracts).
//! 2. Each rule's formula is one `#[inline]` scalar function here (`adam_elem`, `lion_elem`,
//!    `sgd_elem`, ...); the slice kernels and the CUDA kernels mirror it.
//! 3. Loads widen exactly to f32; stores narrow by integer round-to-nearest-even ([`store`]).
//! 4. Every stored NaN is canonical (`0x7FFF_FFFF`, `0x7FFF`).
//! 5. Per-step scalars come from one f64 recipe ([`scalars`]).
//! 6. Sums over blocks use one reduction tree ([`reduce`]).
//! 7. A non-finite gradient (when checking) or `found_inf` skips the step and writes nothing.
//!
//! ## Layers
//! - [`store`]: element types and conversions; [`scalars`]: the f64 recipe;
//!   [`step`]: per-step options, gradient preparation, the skip decision.
//! - [`rules`]: one module per rule: config (validated, typed errors, warnings), per-step
//!   scalars, the element function, a reference path and a fast slice path, and an optimizer
//!   value (`Copy` hyper-parameters plus `Copy` scalar state with a stable byte encoding).
//! - [`reduce`]: the canonical reduction; [`schedule`]: learning-rate schedules.
//! - [`clip`]: AdaGC and global-norm clipping applied inside the rules' passes;
//!   [`partition`]: Adam-mini's name rules and block descriptors.
//! - [`quant`]: symmetric 4/8-bit block quantizers and their packed layout;
//!   [`feedback`]: error feedback (shared engine, two-way EF); [`loco`]: LoCo's compressed
//!   gradient exchange (`compress` -> the caller's all-to-all -> `decompress_reduce`).
//!
//! Core is single-threaded and splittable: `begin` plans a step without writing, any split
//! of the slices runs the fast path, `commit` records it. The `adamant-cpu` crate spreads one
//! step over all cores with the hardware square root; every split gives the same bits.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![allow(clippy::too_many_arguments)]
// Formulas spell `a = a + b` so each line reads as one rounded operation of the contract.
#![allow(clippy::assign_op_pattern)]

pub mod clip;
pub mod error;
pub mod feedback;
pub mod loco;
pub mod partition;
pub mod quant;
pub mod reduce;
pub mod rules;
pub mod scalars;
pub mod schedule;
pub mod step;
pub mod store;

/// Version of the numeric contract: bumped whenever any formula's operation order, a
/// scalar recipe, a rounding rule or the reduction tree changes (and the golden hashes with it).
pub const NUMERIC_CONTRACT_VERSION: u32 = 1;

pub use error::{
    ConfigError, LayoutError, QuantError, SkipReason, StepError, StepOutcome, Warnings,
};
pub use rules::adam::{Adam, AdamConfig};
pub use rules::adam_mini::{AdamMini, AdamMiniConfig, BlockLayout, Segment};
pub use rules::lion::{Lion, LionConfig};
pub use rules::sgd::{Sgd, SgdConfig};
pub use rules::{Begin, Plan};
pub use step::StepOptions;
pub use store::{Dtype, Element, StateElement};

/// Re-exported storage types.
pub use half::{bf16, f16};
