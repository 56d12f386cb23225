//! Global-norm clipping with PyTorch `torch.nn.utils.clip_grad_norm_` semantics:
//! `total_norm = sqrt(sum of squares over all gradients)`,
//! `clip_coef = min(1, max_norm / (total_norm + 1e-6))`, every gradient multiplied by it.
//! Here the multiplication happens inside the rule's pass (`StepOptions::clip_coef`).
//!
//! Difference by decision: PyTorch takes the norm of the per-tensor norms; adamant takes the
//! square root of the canonical combine of the per-tensor sums of squares (one rounding fewer
//! per tensor, and a fixed order on every backend).

use super::{global_sum_sq, norm, threshold_coef};
use crate::error::{ConfigError, Hyper};

/// Global-norm clipping to `max_norm`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GlobalNormClip {
    /// Largest allowed global norm, finite and `> 0`.
    pub max_norm: f64,
}

/// PyTorch's `1e-6` in `max_norm / (total_norm + 1e-6)`.
pub const CLIP_EPS: f32 = 1e-6;

impl GlobalNormClip {
    /// Validate `max_norm` (finite, `> 0`).
    pub fn new(max_norm: f64) -> Result<GlobalNormClip, ConfigError> {
        crate::error::positive(Hyper::Clip, max_norm)?;
        Ok(GlobalNormClip { max_norm })
    }

    /// `(total_norm, clip_coef)` from the per-tensor sums of squares in tensor order:
    /// `total_norm = sqrt(combine(tensor_sums))`, `clip_coef` by [`threshold_coef`] with
    /// `max_norm` rounded once to f32 and `eps = 1e-6` (f32). Non-finite norm: coefficient 1.
    pub fn coefficient(&self, tensor_sums: &[f32]) -> (f32, f32) {
        let total = norm(global_sum_sq(tensor_sums));
        (total, threshold_coef(total, self.max_norm as f32, CLIP_EPS))
    }
}
