//! # adamant-cpu
//!
//! The std-side CPU driver for [`adamant_core`]. Core is single-threaded, `no_std` and safe;
//! this crate adds what only std can give it:
//!
//! - [`HwSqrt`]: the hardware square root (IEEE-exact, so the same bits as core's `LibmSqrt`,
//!   and it vectorizes).
//! - Run-time ISA dispatch ([`Isa`], [`isa()`]): core's `#[inline(always)]` slice loops are
//!   compiled once per instruction set (AVX-512, AVX2, the baseline) and the widest one the CPU
//!   has is chosen when the program runs. The arithmetic is the same IEEE operations in the
//!   same order on every path, so every path gives the same bits.
//! - A threaded driver ([`Driver`], [`adam_step`], [`sgd_step`], [`lion_step`] and their
//!   `_multi` forms for a whole model): validate, plan (with a parallel finite scan), split
//!   every buffer at the same element boundaries, run core's fast path on each piece, commit.
//!   Any thread count gives the bits of core's reference path.
//! - Adam-mini ([`Driver::adam_mini_step`], [`Driver::adam_mini_step_multi`]): block
//!   statistics by core's canonical sums (small blocks fused with their update, large blocks
//!   split over threads at tile boundaries), then the element pass; the same bits as core's
//!   `apply_tensor` for every split.
//! - Clipped steps ([`Driver::adam_step_clipped`] and the SGD, Lion and Adam-mini forms, with a
//!   [`Clipper`]): per-tensor sums of squares in parallel, AdaGC or global-norm coefficients
//!   from core, then the rule's pass with each tensor's `clip_coef`.
//! - [`ceiling`]: kernels with a rule's exact memory traffic and no arithmetic, the yardstick
//!   `adamant bench` divides by.

mod clip;
mod driver;
mod isa;
mod kernels;
mod mini;

pub mod ceiling;

pub use clip::{ClippedOutcome, Clipper};
pub use driver::{
    adam_step, adam_step_multi, default_threads, lion_step, lion_step_multi, sgd_step,
    sgd_step_multi, AdamTensor, Driver, LionTensor, SgdTensor, SPLIT_ALIGN,
};
pub use isa::{detected_isa, isa, Isa, IsaUnavailable, ISA_ENV};
pub use mini::{adam_mini_step, adam_mini_step_multi, AdamMiniTensor, FUSE_MAX};

use adamant_core::scalars::Sqrt;

/// The hardware square root: `f32::sqrt`, which compiles to `sqrtss`/`sqrtps` (or `vsqrtps`
/// on wider vectors). IEEE-754 requires a correctly rounded square root, so it returns the
/// same bits as core's reference `LibmSqrt` for every input (tested on all edge classes and a
/// large random sample), while letting the compiler vectorize the loop.
#[derive(Clone, Copy, Debug, Default)]
pub struct HwSqrt;

impl Sqrt for HwSqrt {
    #[inline(always)]
    fn sqrt(x: f32) -> f32 {
        x.sqrt()
    }
}
