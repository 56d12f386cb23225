//! Lion: `adamant_lion_step`, `adamant_lion_step_multi`, per-step scalars.
//! The rule is `adamant_core::rules::lion::lion_elem`.

use crate::multi::{array_range, Raw, Spec};
use crate::options::{adamant_step_options, flag};
use crate::status::adamant_status;
use crate::tensor::{adamant_const_tensor, adamant_tensor, View, ANY_DTYPE, STATE_DTYPES};
use adamant_core::rules::lion::{LionConfig, LionScalars};
use adamant_core::Lion;

/// Lion hyper-parameters (the official `google/automl` code; the learning rate is per step).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct adamant_lion_config {
    /// Interpolation factor of the update, in `[0, 1)`.
    pub beta1: f64,
    /// Momentum decay, in `[0, 1)`.
    pub beta2: f64,
    /// Decoupled weight decay (multiplied by `lr`), finite, `>= 0`.
    pub weight_decay: f64,
    /// Seed of stochastic rounding for bf16 parameters.
    pub stochastic_rounding_seed: u64,
    /// 1: round bf16 parameters stochastically; 0: nearest-even.
    pub stochastic_rounding: u32,
}

/// The official defaults: betas (0.9, 0.99), weight_decay 0.
#[no_mangle]
pub extern "C" fn adamant_lion_config_default() -> adamant_lion_config {
    let c = LionConfig::official();
    adamant_lion_config {
        beta1: c.beta1,
        beta2: c.beta2,
        weight_decay: c.weight_decay,
        stochastic_rounding_seed: 0,
        stochastic_rounding: 0,
    }
}

impl adamant_lion_config {
    pub(crate) fn to_core(self, lr: f64) -> Result<LionConfig, adamant_status> {
        let sr = flag(self.stochastic_rounding)?;
        Ok(LionConfig {
            lr,
            beta1: self.beta1,
            beta2: self.beta2,
            weight_decay: self.weight_decay,
            stochastic_rounding_seed: sr.then_some(self.stochastic_rounding_seed),
        })
    }
}

/// Per-step f32 scalars of Lion (`adamant_core`'s `LionScalars`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct adamant_lion_scalars {
    /// `1 - lr*weight_decay`.
    pub decay: f32,
    /// `lr`.
    pub lr: f32,
    /// `beta1`.
    pub beta1: f32,
    /// `1 - beta1`.
    pub one_minus_beta1: f32,
    /// `beta2`.
    pub beta2: f32,
    /// `1 - beta2`.
    pub one_minus_beta2: f32,
}

const _: () = {
    assert!(core::mem::size_of::<adamant_lion_scalars>() == core::mem::size_of::<LionScalars>());
    assert!(core::mem::align_of::<adamant_lion_scalars>() == core::mem::align_of::<LionScalars>());
};

impl From<LionScalars> for adamant_lion_scalars {
    fn from(k: LionScalars) -> Self {
        adamant_lion_scalars {
            decay: k.decay,
            lr: k.lr,
            beta1: k.beta1,
            one_minus_beta1: k.one_minus_beta1,
            beta2: k.beta2,
            one_minus_beta2: k.one_minus_beta2,
        }
    }
}

const SPECS: [Spec; 3] = [
    Spec {
        written: true,
        allowed: ANY_DTYPE,
    },
    Spec {
        written: false,
        allowed: ANY_DTYPE,
    },
    Spec {
        written: true,
        allowed: STATE_DTYPES,
    },
];

fn lens(v: &[View; 3]) -> Result<(), adamant_status> {
    let n = v[0].len;
    if v[1].len != n || v[2].len != n {
        return Err(adamant_status::LengthMismatch);
    }
    Ok(())
}

/// # Safety
/// As the public entry points.
unsafe fn step_any(
    config: *const adamant_lion_config,
    options: *const adamant_step_options,
    step: u64,
    count: usize,
    raw: impl Fn(usize) -> [Raw; 3],
    arrays: &[crate::tensor::Range],
    coefs: &[f32],
    out_step: *mut u64,
) -> Result<(), adamant_status> {
    let config = *try_ref!(config);
    let options = *try_ref!(options);
    let out_step = try_out!(out_step);
    let opts = options.to_core()?;
    let cfg = config.to_core(opts.lr)?;
    // Configuration first: the length rule may depend on it (SGD's momentum buffer).
    cfg.validate()?;
    opts.validate()?;
    let extra = crate::multi::extra_ranges(arrays, out_step);
    // SAFETY: forwarded caller contract; out_step checked above and in `extra`.
    unsafe {
        crate::run::step(
            count,
            &SPECS,
            raw,
            lens,
            &extra.0[..extra.1],
            coefs,
            &opts,
            1,
            || {
                let mut lion = Lion::new(cfg)?;
                lion.state.step = step;
                lion.begin(&opts, crate::run::no_grads())
            },
            crate::exec::lion,
            out_step,
        )
    }
}

/// One Lion step over one tensor, per element in f32: `p = p*(1 - lr*wd)`;
/// `c = beta1*exp_avg + (1-beta1)*g`; `p = p - lr*sign(c)` (`sign(0) = 0`);
/// `exp_avg = beta2*exp_avg + (1-beta2)*g`. `exp_avg` is f32 or bf16 and starts at zero.
/// Other arguments, errors and the step counter as `adamant_adamw_step`.
///
/// # Safety
/// As `adamant_adamw_step`.
#[no_mangle]
pub unsafe extern "C" fn adamant_lion_step(
    config: *const adamant_lion_config,
    options: *const adamant_step_options,
    step: u64,
    param: adamant_tensor,
    grad: adamant_const_tensor,
    exp_avg: adamant_tensor,
    out_step: *mut u64,
) -> adamant_status {
    ffi_boundary!({
        let raw = |_| [param.into(), grad.into(), exp_avg.into()];
        // SAFETY: the caller's contract above.
        unsafe { step_any(config, options, step, 1, raw, &[], &[], out_step) }
    })
}

/// One Lion step over `count` tensors; see `adamant_lion_step` and `adamant_adamw_step_multi`.
///
/// # Safety
/// As `adamant_adamw_step_multi`.
#[no_mangle]
pub unsafe extern "C" fn adamant_lion_step_multi(
    config: *const adamant_lion_config,
    options: *const adamant_step_options,
    step: u64,
    params: *const adamant_tensor,
    grads: *const adamant_const_tensor,
    exp_avgs: *const adamant_tensor,
    count: usize,
    out_step: *mut u64,
) -> adamant_status {
    ffi_boundary!({
        // SAFETY: the caller's contract above.
        unsafe {
            multi(
                config,
                options,
                step,
                params,
                grads,
                exp_avgs,
                core::ptr::null(),
                count,
                out_step,
            )
        }
    })
}

/// As `adamant_lion_step_multi`, with per-tensor clip coefficients: `clip_coefs` holds
/// `count` floats (finite, `>= 0`; from `adamant_adagc_coefs`), each replacing
/// `options.clip_coef` for its tensor (`ADAMANT_STATUS_INVALID_CONFIG` otherwise).
///
/// # Safety
/// As `adamant_lion_step_multi`; `clip_coefs` points to `count` floats (may be NULL when
/// `count` is 0).
#[no_mangle]
pub unsafe extern "C" fn adamant_lion_step_multi_clip(
    config: *const adamant_lion_config,
    options: *const adamant_step_options,
    step: u64,
    params: *const adamant_tensor,
    grads: *const adamant_const_tensor,
    exp_avgs: *const adamant_tensor,
    clip_coefs: *const f32,
    count: usize,
    out_step: *mut u64,
) -> adamant_status {
    ffi_boundary!({
        if clip_coefs.is_null() && count > 0 {
            return Err(adamant_status::NullPointer);
        }
        // SAFETY: the caller's contract above.
        unsafe {
            multi(
                config, options, step, params, grads, exp_avgs, clip_coefs, count, out_step,
            )
        }
    })
}

/// # Safety
/// As the `_multi` entry points; a non-NULL `clip_coefs` holds `count` floats.
unsafe fn multi(
    config: *const adamant_lion_config,
    options: *const adamant_step_options,
    step: u64,
    params: *const adamant_tensor,
    grads: *const adamant_const_tensor,
    exp_avgs: *const adamant_tensor,
    clip_coefs: *const f32,
    count: usize,
    out_step: *mut u64,
) -> Result<(), adamant_status> {
    let _ = try_ref!(config);
    let _ = try_ref!(options);
    let _ = try_out!(out_step);
    let p = try_slice!(params, count);
    let g = try_slice!(grads, count);
    let b = try_slice!(exp_avgs, count);
    // SAFETY: the caller's contract.
    let c = unsafe { crate::options::clip_coefs(clip_coefs, count) }?;
    let arrays = [
        array_range(params, count),
        array_range(grads, count),
        array_range(exp_avgs, count),
        array_range(clip_coefs, c.len()),
    ];
    let raw = |i: usize| [p[i].into(), g[i].into(), b[i].into()];
    // SAFETY: the caller's contract.
    unsafe { step_any(config, options, step, count, raw, &arrays, c, out_step) }
}

/// The per-step scalars Lion uses at learning rate `lr` (they do not depend on the step).
///
/// # Safety
/// `config` points to a valid struct; `out_scalars` to writable memory for one struct.
#[no_mangle]
pub unsafe extern "C" fn adamant_lion_step_scalars(
    config: *const adamant_lion_config,
    lr: f64,
    out_scalars: *mut adamant_lion_scalars,
) -> adamant_status {
    ffi_boundary!({
        let config = *try_ref!(config);
        let out = try_out!(out_scalars);
        let cfg = config.to_core(lr)?;
        cfg.validate()?;
        let k: adamant_lion_scalars = cfg.scalars(lr).into();
        // SAFETY: non-NULL and aligned (try_out!).
        unsafe { out.write(k) };
        Ok(())
    })
}
