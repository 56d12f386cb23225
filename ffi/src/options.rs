//! Per-step options shared by every rule: learning rate, loss scale, clip coefficient,
//! `found_inf`, finite-checking.

use crate::status::adamant_status;
use adamant_core::StepOptions;

/// Per-step inputs that are not hyper-parameters (`adamant_core::StepOptions`).
///
/// The gradient each rule sees is `g = (grad / grad_scale) * clip_coef`, each operation
/// applied only when its `has_*` flag is 1. Giving a loss scale turns finite-checking on.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct adamant_step_options {
    /// Learning rate of this step (constant, or from `adamant_schedule_lr`); finite, `>= 0`.
    pub lr: f64,
    /// Loss scale the gradients are divided by (PyTorch `grad_scale`); finite, `> 0`.
    /// Used only when `has_grad_scale` is 1.
    pub grad_scale: f32,
    /// Clip coefficient the unscaled gradients are multiplied by (from
    /// `adamant_clip_coef_global_norm` or AdaGC); finite, `>= 0`. Used only when
    /// `has_clip_coef` is 1.
    pub clip_coef: f32,
    /// 1: apply `grad_scale` (and check finiteness); 0: no loss scale. Other values:
    /// `ADAMANT_STATUS_INVALID_ENUM`.
    pub has_grad_scale: u32,
    /// 1: apply `clip_coef`; 0: no clipping. Other values: `ADAMANT_STATUS_INVALID_ENUM`.
    pub has_clip_coef: u32,
    /// The caller's overflow flag (PyTorch `found_inf`): any nonzero value skips the step
    /// with `ADAMANT_STATUS_SKIPPED_FOUND_INF`.
    pub found_inf: u32,
    /// 1: scan the gradients and skip the step (`ADAMANT_STATUS_SKIPPED_NON_FINITE`) if any
    /// element is NaN or infinite; 0: no scan unless a loss scale is given.
    pub check_finite: u32,
}

/// Options for a plain step at `lr = 1e-3`: no loss scale, no clipping, no finite scan.
#[no_mangle]
pub extern "C" fn adamant_step_options_default() -> adamant_step_options {
    adamant_step_options {
        lr: 1e-3,
        grad_scale: 1.0,
        clip_coef: 1.0,
        has_grad_scale: 0,
        has_clip_coef: 0,
        found_inf: 0,
        check_finite: 0,
    }
}

/// A 0/1 flag, or `InvalidEnum`.
pub(crate) fn flag(v: u32) -> Result<bool, adamant_status> {
    match v {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(adamant_status::InvalidEnum),
    }
}

impl adamant_step_options {
    /// Core's options (flags checked; values are validated by core later).
    pub(crate) fn to_core(self) -> Result<StepOptions, adamant_status> {
        let has_scale = flag(self.has_grad_scale)?;
        let has_clip = flag(self.has_clip_coef)?;
        let check = flag(self.check_finite)?;
        Ok(StepOptions {
            lr: self.lr,
            grad_scale: has_scale.then_some(self.grad_scale),
            clip_coef: has_clip.then_some(self.clip_coef),
            found_inf: self.found_inf != 0,
            check_finite: check,
        })
    }
}

/// Per-tensor clip coefficients (a `_multi` call's `clip_coefs`): each finite and `>= 0`,
/// else `InvalidConfig`.
pub(crate) fn check_clip_coefs(c: &[f32]) -> Result<(), adamant_status> {
    if c.iter().all(|x| x.is_finite() && *x >= 0.0) {
        Ok(())
    } else {
        Err(adamant_status::InvalidConfig)
    }
}

/// The per-tensor clip coefficients of a `_multi` call: empty when `clip_coefs` is NULL.
///
/// # Safety
/// A non-NULL `clip_coefs` points to `count` readable floats.
pub(crate) unsafe fn clip_coefs<'a>(
    clip_coefs: *const f32,
    count: usize,
) -> Result<&'a [f32], adamant_status> {
    if clip_coefs.is_null() {
        Ok(&[])
    } else {
        // SAFETY: the caller's contract above.
        unsafe { crate::boundary::slice_from(clip_coefs, count) }
    }
}
