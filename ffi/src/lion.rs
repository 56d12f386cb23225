//! Lion: `adamant_lion_step`, `adamant_lion_step_multi`, per-step scalars.
//! The rule is `adamant_core::rules::lion::lion_elem`.

use crate::entry::{self, Call};
use crate::options::{adamant_step_options, flag};
use crate::status::adamant_status;
use crate::tensor::{adamant_const_tensor, adamant_tensor, View};
use adamant_core::rules::lion::{LionConfig, LionScalars};
use adamant_core::rules::{Begin, Plan};
use adamant_core::{Lion, StepError, StepOptions};

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

/// Lion, for [`entry::step`].
#[derive(Clone, Copy, Debug)]
struct Rule;

impl entry::Rule<3> for Rule {
    type Config = adamant_lion_config;
    type Core = LionConfig;
    type Scalars = LionScalars;

    fn config(self, c: adamant_lion_config, lr: f64) -> Result<LionConfig, adamant_status> {
        let cfg = c.to_core(lr)?;
        cfg.validate()?;
        Ok(cfg)
    }

    fn lens(_: &LionConfig, v: &[View; 3]) -> Result<(), adamant_status> {
        entry::same_lens(v)
    }

    fn begin(
        cfg: LionConfig,
        step: u64,
        opts: &StepOptions,
    ) -> Result<Begin<LionScalars>, StepError> {
        let mut lion = Lion::new(cfg)?;
        lion.state.step = step;
        lion.begin(opts, crate::run::no_grads())
    }

    fn run(plan: &Plan<LionScalars>, v: &[View; 3]) -> Result<(), adamant_status> {
        crate::exec::lion(plan, v)
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
    let call = Call::one((param, grad, exp_avg));
    // SAFETY: the caller's contract above.
    unsafe { entry::step(Rule, config, options, step, call, out_step) }
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
    let call = Call::many((params, grads, exp_avgs), count);
    // SAFETY: the caller's contract above.
    unsafe { entry::step(Rule, config, options, step, call, out_step) }
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
    let call = Call::clipped((params, grads, exp_avgs), clip_coefs, count);
    // SAFETY: the caller's contract above.
    unsafe { entry::step(Rule, config, options, step, call, out_step) }
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
    let scalars = |c| -> Result<adamant_lion_scalars, adamant_status> {
        let cfg = entry::Rule::config(Rule, c, lr)?;
        Ok(cfg.scalars(lr).into())
    };
    // SAFETY: the caller's contract above.
    unsafe { entry::scalars(config, out_scalars, scalars) }
}
