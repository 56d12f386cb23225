//! SGD with momentum: `adamant_sgd_step`, `adamant_sgd_step_multi`, per-step scalars.
//! The rule is `adamant_core::rules::sgd::sgd_elem`.

use crate::entry::{self, Call};
use crate::options::{adamant_step_options, flag};
use crate::status::adamant_status;
use crate::tensor::{adamant_const_tensor, adamant_tensor, View};
use adamant_core::rules::sgd::{SgdConfig, SgdScalars};
use adamant_core::rules::{Begin, Plan};
use adamant_core::{Sgd, StepError, StepOptions};

/// SGD hyper-parameters (PyTorch `torch.optim.SGD`; the learning rate is per step).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct adamant_sgd_config {
    /// Momentum factor, finite, `>= 0`; 0 means no momentum buffer (pass an empty view).
    pub momentum: f64,
    /// Dampening of the momentum, in `[0, 1]`.
    pub dampening: f64,
    /// L2 weight decay added to the gradient, finite, `>= 0`.
    pub weight_decay: f64,
    /// Seed of stochastic rounding for bf16 parameters.
    pub stochastic_rounding_seed: u64,
    /// 1: Nesterov momentum (needs `momentum > 0`, `dampening == 0`); 0: plain.
    pub nesterov: u32,
    /// 1: round bf16 parameters stochastically; 0: nearest-even.
    pub stochastic_rounding: u32,
}

/// PyTorch defaults: no momentum, no dampening, no weight decay, not Nesterov.
#[no_mangle]
pub extern "C" fn adamant_sgd_config_default() -> adamant_sgd_config {
    adamant_sgd_config {
        momentum: 0.0,
        dampening: 0.0,
        weight_decay: 0.0,
        stochastic_rounding_seed: 0,
        nesterov: 0,
        stochastic_rounding: 0,
    }
}

impl adamant_sgd_config {
    pub(crate) fn to_core(self, lr: f64) -> Result<SgdConfig, adamant_status> {
        let nesterov = flag(self.nesterov)?;
        let sr = flag(self.stochastic_rounding)?;
        Ok(SgdConfig {
            lr,
            momentum: self.momentum,
            dampening: self.dampening,
            weight_decay: self.weight_decay,
            nesterov,
            stochastic_rounding_seed: sr.then_some(self.stochastic_rounding_seed),
        })
    }
}

/// Per-step f32 scalars of SGD (`adamant_core`'s `SgdScalars`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct adamant_sgd_scalars {
    /// `lr`.
    pub lr: f32,
    /// L2 coefficient (0 skips the term).
    pub weight_decay: f32,
    /// Momentum factor (0: no buffer).
    pub momentum: f32,
    /// `1 - dampening`.
    pub one_minus_dampening: f32,
    /// 1 on the first step (the buffer starts as the gradient), else 0.
    pub first_step: u32,
    /// 1 for Nesterov momentum.
    pub nesterov: u32,
}

const _: () = {
    assert!(core::mem::size_of::<adamant_sgd_scalars>() == core::mem::size_of::<SgdScalars>());
    assert!(core::mem::align_of::<adamant_sgd_scalars>() == core::mem::align_of::<SgdScalars>());
};

impl From<SgdScalars> for adamant_sgd_scalars {
    fn from(k: SgdScalars) -> Self {
        adamant_sgd_scalars {
            lr: k.lr,
            weight_decay: k.weight_decay,
            momentum: k.momentum,
            one_minus_dampening: k.one_minus_dampening,
            first_step: k.first_step,
            nesterov: k.nesterov,
        }
    }
}

/// SGD, for [`entry::step`].
#[derive(Clone, Copy, Debug)]
struct Rule;

impl entry::Rule<3> for Rule {
    type Config = adamant_sgd_config;
    type Core = SgdConfig;
    type Scalars = SgdScalars;

    fn config(self, c: adamant_sgd_config, lr: f64) -> Result<SgdConfig, adamant_status> {
        let cfg = c.to_core(lr)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// The momentum buffer has the parameter's length with momentum, else it is empty.
    fn lens(cfg: &SgdConfig, v: &[View; 3]) -> Result<(), adamant_status> {
        let n = v[0].len;
        let want_buf = if cfg.has_momentum() { n } else { 0 };
        if v[1].len != n || v[2].len != want_buf {
            return Err(adamant_status::LengthMismatch);
        }
        Ok(())
    }

    fn begin(
        cfg: SgdConfig,
        step: u64,
        opts: &StepOptions,
    ) -> Result<Begin<SgdScalars>, StepError> {
        let mut sgd = Sgd::new(cfg)?;
        sgd.state.step = step;
        sgd.begin(opts, crate::run::no_grads())
    }

    fn run(plan: &Plan<SgdScalars>, v: &[View; 3]) -> Result<(), adamant_status> {
        crate::exec::sgd(plan, v)
    }
}

/// One SGD step over one tensor (PyTorch `torch.optim.SGD`), per element in f32:
/// `g = g + weight_decay*p`; with momentum, `buf = g` on the first step (`step == 0`), else
/// `buf = momentum*buf + (1-dampening)*g`, then `g = g + momentum*buf` (Nesterov) or
/// `g = buf`; finally `p = p - lr*g`.
///
/// `momentum_buffer` has the parameter's length when `momentum != 0` (f32 or bf16), and is
/// empty (`len == 0`, `data` may be NULL) otherwise. Other arguments, errors and the step
/// counter as `adamant_adamw_step`.
///
/// # Safety
/// As `adamant_adamw_step`.
#[no_mangle]
pub unsafe extern "C" fn adamant_sgd_step(
    config: *const adamant_sgd_config,
    options: *const adamant_step_options,
    step: u64,
    param: adamant_tensor,
    grad: adamant_const_tensor,
    momentum_buffer: adamant_tensor,
    out_step: *mut u64,
) -> adamant_status {
    let call = Call::one((param, grad, momentum_buffer));
    // SAFETY: the caller's contract above.
    unsafe { entry::step(Rule, config, options, step, call, out_step) }
}

/// One SGD step over `count` tensors; see `adamant_sgd_step` and `adamant_adamw_step_multi`.
///
/// # Safety
/// As `adamant_adamw_step_multi`.
#[no_mangle]
pub unsafe extern "C" fn adamant_sgd_step_multi(
    config: *const adamant_sgd_config,
    options: *const adamant_step_options,
    step: u64,
    params: *const adamant_tensor,
    grads: *const adamant_const_tensor,
    momentum_buffers: *const adamant_tensor,
    count: usize,
    out_step: *mut u64,
) -> adamant_status {
    let call = Call::many((params, grads, momentum_buffers), count);
    // SAFETY: the caller's contract above.
    unsafe { entry::step(Rule, config, options, step, call, out_step) }
}

/// As `adamant_sgd_step_multi`, with per-tensor clip coefficients: `clip_coefs` holds
/// `count` floats (finite, `>= 0`; from `adamant_adagc_coefs`), each replacing
/// `options.clip_coef` for its tensor (`ADAMANT_STATUS_INVALID_CONFIG` otherwise).
///
/// # Safety
/// As `adamant_sgd_step_multi`; `clip_coefs` points to `count` floats (may be NULL when
/// `count` is 0).
#[no_mangle]
pub unsafe extern "C" fn adamant_sgd_step_multi_clip(
    config: *const adamant_sgd_config,
    options: *const adamant_step_options,
    step: u64,
    params: *const adamant_tensor,
    grads: *const adamant_const_tensor,
    momentum_buffers: *const adamant_tensor,
    clip_coefs: *const f32,
    count: usize,
    out_step: *mut u64,
) -> adamant_status {
    let call = Call::clipped((params, grads, momentum_buffers), clip_coefs, count);
    // SAFETY: the caller's contract above.
    unsafe { entry::step(Rule, config, options, step, call, out_step) }
}

/// The per-step scalars SGD uses at learning rate `lr` for step `t` (1-based).
///
/// # Safety
/// `config` points to a valid struct; `out_scalars` to writable memory for one struct.
#[no_mangle]
pub unsafe extern "C" fn adamant_sgd_step_scalars(
    config: *const adamant_sgd_config,
    lr: f64,
    t: u64,
    out_scalars: *mut adamant_sgd_scalars,
) -> adamant_status {
    let scalars = |c| -> Result<adamant_sgd_scalars, adamant_status> {
        let cfg = entry::Rule::config(Rule, c, lr)?;
        entry::applied_step(t)?;
        Ok(cfg.scalars(lr, t).into())
    };
    // SAFETY: the caller's contract above.
    unsafe { entry::scalars(config, out_scalars, scalars) }
}
