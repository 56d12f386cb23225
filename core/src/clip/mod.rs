//! Gradient clipping that composes with every rule without writing the gradients: a
//! read-only reduction phase gives each tensor a clip coefficient, and the rule's own pass
//! multiplies by it ([`crate::step::StepOptions::clip_coef`], [`crate::step::GradPrep`]).
//!
//! The flow of one step, for a model of tensors `0..N` (in the caller's fixed tensor order):
//! 1. [`tensor_sum_sq`] of every tensor's *unscaled* gradient (`g / grad_scale`, the loss scale
//!    divided out before the norm). A tensor split over ranks (tensor parallelism) or threads:
//!    [`tensor_sum_sq_partials`] per piece, gathered in global tile order, then
//!    [`crate::reduce::combine`] (the all-reduce of the sums of squares, in canonical order).
//! 2. The global sum of squares is [`global_sum_sq`]: the canonical combine of the per-tensor
//!    sums, in tensor order, as if they were tile partials.
//! 3. Coefficients: [`global_norm::GlobalNormClip`] (PyTorch `clip_grad_norm_`) or
//!    [`adagc::AdaGc`] (per-tensor adaptive, or its global mode).
//! 4. Each tensor's rule pass runs with `clip_coef` = its coefficient; then commit.
//!
//! Norms are `sqrt` (f32, correctly rounded) of those sums. Coefficients are fixed f32
//! operation sequences (documented per function), so a GPU reproduces them bit for bit.
//! A non-finite norm gives coefficient 1 and a plan marked not finite: with finite-checking on
//! (always with a loss scale) the rule skips the step, and the clip state is not committed.
//!
//! ```
//! use adamant_core::clip::{tensor_sum_sq, AdaGc, AdaGcConfig};
//! use adamant_core::rules::adam_mini::{apply_tensor, Path};
//! use adamant_core::{AdamMini, AdamMiniConfig, Begin, BlockLayout, StepOptions};
//!
//! // Two tensors: a 4x8 matrix with per-row blocks and a norm weight (one block).
//! let layouts = [BlockLayout::Rows { row_len: 8 }, BlockLayout::Tensor];
//! let mut params = [vec![0.5f32; 32], vec![1.0f32; 8]];
//! let grads = [vec![0.01f32; 32], vec![3.0f32; 8]];
//! let mut exp_avg = [vec![0.0f32; 32], vec![0.0f32; 8]];
//! let mut exp_avg_sq = [vec![0.0f32; 4], vec![0.0f32; 1]];
//! let mut opt = AdamMini::new(AdamMiniConfig::default()).unwrap();
//! let mut clip = AdaGc::new(AdaGcConfig::default()).unwrap();
//! let mut gamma = [0.0f32; 2];
//!
//! let opts = StepOptions::new(1e-3);
//! // 1-3: norms of the unscaled gradients, then one coefficient per tensor.
//! let sums = [tensor_sum_sq(&grads[0], 1.0), tensor_sum_sq(&grads[1], 1.0)];
//! let mut coefs = [0.0f32; 2];
//! let clip_plan = clip.plan(&sums, &gamma, &mut coefs).unwrap();
//! // 4: the rule's own pass applies each coefficient; then both commit.
//! if let Begin::Apply(plan) = opt.begin(&opts, grads.iter().map(|g| g.as_slice())).unwrap() {
//!     for i in 0..2 {
//!         let mut p = plan;
//!         p.prep.clip_coef = coefs[i];
//!         apply_tensor(&mut params[i], &grads[i], &mut exp_avg[i], &mut exp_avg_sq[i],
//!                      &layouts[i], i == 0, &p, Path::Fast).unwrap();
//!     }
//!     opt.commit(&plan);
//!     clip.commit(&sums, &mut gamma, &clip_plan).unwrap();
//! }
//! assert!(coefs[1] < 1.0); // the global norm sqrt(72) > max_norm 1 during warm-up
//! ```

pub mod adagc;
pub mod global_norm;

use crate::error::LayoutError;
use crate::reduce;
use crate::scalars::{LibmSqrt, Sqrt};
use crate::store::Element;

pub use adagc::{AdaGc, AdaGcConfig, AdaGcMode, AdaGcPlan, AdaGcState};
pub use global_norm::GlobalNormClip;

/// Canonical sum of `(g / grad_scale)^2` over one whole tensor (each element: one division,
/// skipped when `grad_scale == 1`, which gives the same bits; one multiplication).
pub fn tensor_sum_sq<G: Element>(grad: &[G], grad_scale: f32) -> f32 {
    reduce::sum_by(grad, |v| {
        let g = v / grad_scale;
        g * g
    })
}

/// Per-tile partials of `(g / grad_scale)^2` for a piece of a tensor (length
/// `tile_count(grad.len())`, checked before writing). Pieces cut at multiples of 4096 from the
/// tensor's start, gathered in order and combined, give [`tensor_sum_sq`] of the whole tensor.
pub fn tensor_sum_sq_partials<G: Element>(
    grad: &[G],
    grad_scale: f32,
    out: &mut [f32],
) -> Result<(), LayoutError> {
    reduce::partials_by(
        grad,
        |v| {
            let g = v / grad_scale;
            g * g
        },
        out,
    )
}

/// The global sum of squares: [`crate::reduce::combine`] of the per-tensor sums in tensor order.
pub fn global_sum_sq(tensor_sums: &[f32]) -> f32 {
    reduce::combine(tensor_sums)
}

/// `sqrt(sum_sq)`, f32, correctly rounded.
#[inline]
pub fn norm(sum_sq: f32) -> f32 {
    LibmSqrt::sqrt(sum_sq)
}

/// The clamp of a threshold clip: `d = norm + eps; c = max_norm / d; if c < 1 { c } else { 1 }`
/// (f32, in this order). A non-finite `norm` gives 1. Shared by PyTorch-style global clipping
/// and AdaGC's warm-up, which compute it the same way.
#[inline]
pub fn threshold_coef(norm: f32, max_norm: f32, eps: f32) -> f32 {
    if !norm.is_finite() {
        return 1.0;
    }
    let d = norm + eps;
    let c = max_norm / d;
    if c < 1.0 {
        c
    } else {
        1.0
    }
}
