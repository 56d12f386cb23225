//! Global-norm clipping (PyTorch `clip_grad_norm_`): the coefficient from a combined sum of
//! squares. The per-element multiply happens inside the rule's own pass through
//! `adamant_step_options.clip_coef`, so clipping costs no extra pass over the gradients.
//!
//! AdaGC's per-tensor phases will sit next to this (`adamant_adagc_*`), fed by the same
//! partials/combine calls.

use crate::status::adamant_status;

/// `clip_coef = min(max_norm / (sqrt(sum_sq) + eps), 1)` in f32, the operations in this
/// order, each rounded to nearest even: `1. norm = sqrt(sum_sq)`, `2. d = norm + eps`,
/// `3. c = max_norm / d`, `4. c = c < 1 ? c : 1`. `sum_sq` is the sum of squares of every
/// gradient as core's global-norm clip defines it: each tensor's sum (its tile partials from
/// `adamant_reduce_partials` with `ADAMANT_REDUCE_OP_SUM_SQ`, then `adamant_reduce_combine`),
/// then `adamant_reduce_combine` over those per-tensor sums in tensor order. That is the value
/// `adamant_adagc_coefs` in global mode and `adamant_cuda_clip_coef_global_norm` use; one
/// combine over the tiles of all tensors is also a canonical sum but may differ in the last
/// bit. PyTorch uses `eps = 1e-6`.
///
/// Writes `*out_norm = norm` and `*out_clip_coef = c`. A NaN or infinite `sum_sq` gives
/// `ADAMANT_STATUS_SKIPPED_NON_FINITE` (the step should be skipped) and writes nothing;
/// `max_norm` must be finite and `> 0`, `eps` finite and `>= 0`, else
/// `ADAMANT_STATUS_INVALID_CONFIG`.
///
/// # Safety
/// `out_clip_coef` and `out_norm` point to distinct writable floats.
#[no_mangle]
pub unsafe extern "C" fn adamant_clip_coef_global_norm(
    sum_sq: f32,
    max_norm: f32,
    eps: f32,
    out_clip_coef: *mut f32,
    out_norm: *mut f32,
) -> adamant_status {
    ffi_boundary!({
        let oc = try_out!(out_clip_coef);
        let on = try_out!(out_norm);
        if oc == on {
            return Err(adamant_status::Overlap);
        }
        if !(max_norm.is_finite() && max_norm > 0.0 && eps.is_finite() && eps >= 0.0) {
            return Err(adamant_status::InvalidConfig);
        }
        if !sum_sq.is_finite() {
            return Err(adamant_status::SkippedNonFinite);
        }
        let norm = sum_sq.sqrt();
        let d = norm + eps;
        // A NaN `c` cannot occur here (finite `sum_sq`, `max_norm > 0`), `+inf` (d = 0)
        // becomes 1.
        let c = (max_norm / d).min(1.0);
        // SAFETY: non-NULL, aligned, distinct (checked above).
        unsafe {
            oc.write(c);
            on.write(norm);
        }
        Ok(())
    })
}
