//! AdaGC (arXiv 2502.11034) adaptive per-tensor clipping as two calls around the optimizer's
//! step: `adamant_adagc_coefs` (per-tensor clip coefficients, writes no state) before it and
//! `adamant_adagc_commit` (new thresholds `gamma`, new step) only after the step was applied,
//! so a skipped step leaves the clipper as it was. The per-tensor sums of squares come from
//! `adamant_reduce` / `adamant_reduce_partials[_multi]` + `adamant_reduce_combine` (sharded
//! tensors combined first). The coefficients feed a `_multi` step's `clip_coefs` array. The
//! rule is `adamant_core::clip::adagc::adagc_tensor`.

use crate::multi::array_range;
use crate::status::adamant_status;
use crate::tensor::{check_out_array, check_overlap, Range, View};
use adamant_core::clip::{self, AdaGc, AdaGcConfig, AdaGcMode, AdaGcPlan, AdaGcState};

/// Per-tensor thresholds (official `AdaGC`, `AdaGC-Shard`) or one global threshold
/// (`AdaGC-Global`). Crosses the ABI as `adamant_adagc_config.mode`, checked on entry.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum adamant_adagc_mode {
    /// One `gamma` per tensor.
    PerTensor = 0,
    /// One `gamma` for the global norm; every tensor gets the same coefficient.
    Global = 1,
}

/// AdaGC hyper-parameters. Start from `adamant_adagc_config_default()`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct adamant_adagc_config {
    /// `lambda_rel`: relative threshold, finite, `> 0`.
    pub lambda_rel: f64,
    /// EMA decay of the thresholds, in `[0, 1)`.
    pub beta: f64,
    /// Added to the norm in the divisor; finite, `> 0`.
    pub eps: f64,
    /// `lambda_abs`: global clipping threshold during warm-up; finite, `> 0`.
    pub max_norm: f64,
    /// Warm-up steps of global clipping (`T_start`).
    pub t_start: u64,
    /// An `adamant_adagc_mode` value.
    pub mode: u32,
}

/// The official code's defaults: `lambda_rel 1.04, beta 0.99, eps 1e-6, max_norm 1.0,
/// t_start 100`, per-tensor.
#[no_mangle]
pub extern "C" fn adamant_adagc_config_default() -> adamant_adagc_config {
    let c = AdaGcConfig::default();
    adamant_adagc_config {
        lambda_rel: c.lambda_rel,
        beta: c.beta,
        eps: c.eps,
        max_norm: c.max_norm,
        t_start: c.t_start,
        mode: adamant_adagc_mode::PerTensor as u32,
    }
}

impl adamant_adagc_config {
    pub(crate) fn to_core(self) -> Result<AdaGc, adamant_status> {
        let mode = match self.mode {
            0 => AdaGcMode::PerTensor,
            1 => AdaGcMode::Global,
            _ => return Err(adamant_status::InvalidEnum),
        };
        Ok(AdaGc::new(AdaGcConfig {
            lambda_rel: self.lambda_rel,
            beta: self.beta,
            eps: self.eps,
            t_start: self.t_start,
            max_norm: self.max_norm,
            mode,
        })?)
    }
}

/// Length of the `gamma` buffer for `n_tensors` tensors: `n_tensors` per-tensor, 1 global.
///
/// # Safety
/// `config` points to a valid struct; `out_len` to a writable `size_t`.
#[no_mangle]
pub unsafe extern "C" fn adamant_adagc_gamma_len(
    config: *const adamant_adagc_config,
    n_tensors: usize,
    out_len: *mut usize,
) -> adamant_status {
    ffi_boundary!({
        let c = *try_ref!(config);
        let out = try_out!(out_len);
        let a = c.to_core()?;
        // SAFETY: non-NULL, aligned (try_out!).
        unsafe { out.write(a.gamma_len(n_tensors)) };
        Ok(())
    })
}

/// The plan of the step after `step`, from checked inputs.
fn plan_of(a: &AdaGc, sums: &[f32]) -> AdaGcPlan {
    let step = a.state.step + 1;
    let k = a.config.scalars();
    let global_norm = clip::norm(clip::global_sum_sq(sums));
    AdaGcPlan {
        step,
        global_norm,
        global_coef: if step <= a.config.t_start {
            clip::threshold_coef(global_norm, k.max_norm, k.eps)
        } else {
            1.0
        },
        finite: global_norm.is_finite(),
    }
}

/// Shared checks: configuration, arrays, lengths, overlap, step counter, finiteness.
///
/// # Safety
/// `tensor_sums` holds `count` floats, `gamma` `gamma_len` floats.
unsafe fn checked<'a>(
    config: *const adamant_adagc_config,
    step: u64,
    tensor_sums: *const f32,
    count: usize,
    gamma: *const f32,
    gamma_len: usize,
    outs: &[Range],
    gamma_written: bool,
) -> Result<(AdaGc, &'a [f32], AdaGcPlan), adamant_status> {
    let c = *try_ref!(config);
    let sums = try_slice!(tensor_sums, count);
    let _ = try_slice!(gamma, gamma_len);
    let mut a = c.to_core()?;
    if a.gamma_len(count) != gamma_len {
        return Err(adamant_status::LengthMismatch);
    }
    let ranges = |k: usize| match k {
        0 => array_range(tensor_sums, count),
        1 => Range {
            written: gamma_written,
            ..array_range(gamma, gamma_len)
        },
        _ => outs[k - 2],
    };
    check_overlap(2 + outs.len(), ranges)?;
    if step == u64::MAX {
        return Err(adamant_status::StepOverflow);
    }
    a.state = AdaGcState { step };
    let plan = plan_of(&a, sums);
    if !plan.finite {
        return Err(adamant_status::SkippedNonFinite);
    }
    Ok((a, sums, plan))
}

/// Phase one of an AdaGC step: from the per-tensor sums of squares of the unscaled gradients
/// (`tensor_sums[i]`, sharded tensors already combined) and the thresholds `gamma`
/// (`adamant_adagc_gamma_len` floats, any value before step 1), write each tensor's clip
/// coefficient into `out_coefs[i]` and the global norm into `*out_global_norm`. Writes no
/// state. With `norm_i = sqrt(tensor_sums[i])`, `k = step + 1`, per tensor in f32
/// (`adagc_tensor`): during warm-up (`k <= t_start`) `coef = min(max_norm/(G + eps), 1)` with
/// `G` the global norm; afterwards `threshold = lambda_rel*gamma_i` (`norm_i` at `k = 1`) and
/// `coef = norm_i > threshold ? threshold/(norm_i + eps) : 1`.
///
/// A NaN or infinite norm gives `ADAMANT_STATUS_SKIPPED_NON_FINITE` (skip the step, do not
/// commit) and writes nothing; `step == UINT64_MAX` gives `ADAMANT_STATUS_STEP_OVERFLOW`.
///
/// # Safety
/// `config` points to a valid struct; `tensor_sums` to `count` floats; `gamma` to
/// `gamma_len` floats; `out_coefs` to `count` writable floats; `out_global_norm` to a
/// writable float.
#[no_mangle]
pub unsafe extern "C" fn adamant_adagc_coefs(
    config: *const adamant_adagc_config,
    step: u64,
    tensor_sums: *const f32,
    count: usize,
    gamma: *const f32,
    gamma_len: usize,
    out_coefs: *mut f32,
    out_global_norm: *mut f32,
) -> adamant_status {
    ffi_boundary!({
        let _ = try_ref!(config);
        let on = try_out!(out_global_norm);
        check_out_array(out_coefs, count)?;
        let outs = [
            Range {
                written: true,
                ..array_range(out_coefs, count)
            },
            View::out_range(on),
        ];
        // SAFETY: the caller's contract above.
        let (a, sums, plan) = unsafe {
            checked(
                config,
                step,
                tensor_sums,
                count,
                gamma,
                gamma_len,
                &outs,
                false,
            )
        }?;
        let g = try_slice!(gamma, gamma_len);
        let k = a.config.scalars();
        let first = plan.step == 1;
        let warmup = plan.step <= a.config.t_start;
        let global = match a.config.mode {
            AdaGcMode::Global => Some(
                clip::adagc::adagc_tensor(
                    g[0],
                    plan.global_norm,
                    first,
                    warmup,
                    plan.global_coef,
                    &k,
                )
                .0,
            ),
            AdaGcMode::PerTensor => None,
        };
        for (i, &s) in sums.iter().enumerate() {
            let c = match global {
                Some(c) => c,
                None => {
                    clip::adagc::adagc_tensor(
                        g[i],
                        clip::norm(s),
                        first,
                        warmup,
                        plan.global_coef,
                        &k,
                    )
                    .0
                }
            };
            // SAFETY: `count` writable floats (checked), overlapping no input.
            unsafe { out_coefs.add(i).write(c) };
        }
        // SAFETY: non-NULL, aligned, distinct from every other buffer.
        unsafe { on.write(plan.global_norm) };
        Ok(())
    })
}

/// Phase two, called only after the optimizer applied the step that used
/// `adamant_adagc_coefs`' coefficients (same `config`, `step`, `tensor_sums`): update every
/// threshold in `gamma` (`gamma = beta*g0 + (1-beta)*clipped`, or the running minimum of the
/// clipped norms during warm-up) and set `*out_step = step + 1`. Errors as
/// `adamant_adagc_coefs`; on error `gamma` is unchanged.
///
/// # Safety
/// As `adamant_adagc_coefs`; `gamma` is writable; `out_step` points to a writable `uint64_t`.
#[no_mangle]
pub unsafe extern "C" fn adamant_adagc_commit(
    config: *const adamant_adagc_config,
    step: u64,
    tensor_sums: *const f32,
    count: usize,
    gamma: *mut f32,
    gamma_len: usize,
    out_step: *mut u64,
) -> adamant_status {
    ffi_boundary!({
        let _ = try_ref!(config);
        let os = try_out!(out_step);
        let outs = [View::out_range(os)];
        // SAFETY: the caller's contract above.
        let (mut a, sums, plan) = unsafe {
            checked(
                config,
                step,
                tensor_sums,
                count,
                gamma.cast_const(),
                gamma_len,
                &outs,
                true,
            )
        }?;
        let g: &mut [f32] = if gamma_len == 0 {
            &mut []
        } else {
            // SAFETY: non-NULL, aligned, `gamma_len` floats (checked), written by this call
            // only (overlap check).
            unsafe { core::slice::from_raw_parts_mut(gamma, gamma_len) }
        };
        if !a.commit(sums, g, &plan)? {
            // Not reached: the plan is finite and follows the state by construction.
            return Err(adamant_status::Panic);
        }
        // SAFETY: non-NULL, aligned, distinct from every other buffer.
        unsafe { os.write(plan.step) };
        Ok(())
    })
}
