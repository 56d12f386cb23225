//! Adam and AdamW: `adamant_adamw_step`, `adamant_adam_step`, their `_multi` forms and
//! per-step scalars. The rule is `adamant_core::rules::adam::adam_elem`.

use crate::entry::{self, Call};
use crate::options::{adamant_step_options, flag};
use crate::status::adamant_status;
use crate::tensor::{adamant_const_tensor, adamant_tensor, View};
use adamant_core::rules::adam::{AdamConfig, AdamScalars};
use adamant_core::rules::{Begin, Plan};
use adamant_core::{Adam, StepError, StepOptions};

/// Adam/AdamW hyper-parameters (the learning rate is per step, in `adamant_step_options`).
/// Start from `adamant_adamw_config_default()` or `adamant_adam_config_default()`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct adamant_adam_config {
    /// First-moment decay, in `[0, 1)`.
    pub beta1: f64,
    /// Second-moment decay, in `[0, 1)`.
    pub beta2: f64,
    /// Added to `sqrt(exp_avg_sq) / sqrt(bias_correction2)`; finite, `> 0`.
    pub eps: f64,
    /// Weight decay, finite, `>= 0`. AdamW: `p = p * (1 - lr*weight_decay)` before the
    /// update; Adam: `g = g + weight_decay*p` (L2).
    pub weight_decay: f64,
    /// Seed of stochastic rounding for bf16 parameters (used when `stochastic_rounding` is 1).
    pub stochastic_rounding_seed: u64,
    /// 1: round bf16 parameters stochastically; 0: nearest-even. Other values:
    /// `ADAMANT_STATUS_INVALID_ENUM`.
    pub stochastic_rounding: u32,
}

/// PyTorch `torch.optim.AdamW` defaults: betas (0.9, 0.999), eps 1e-8, weight_decay 1e-2.
#[no_mangle]
pub extern "C" fn adamant_adamw_config_default() -> adamant_adam_config {
    from_core(&AdamConfig::adamw())
}

/// PyTorch `torch.optim.Adam` defaults: betas (0.9, 0.999), eps 1e-8, weight_decay 0.
#[no_mangle]
pub extern "C" fn adamant_adam_config_default() -> adamant_adam_config {
    from_core(&AdamConfig::adam())
}

fn from_core(c: &AdamConfig) -> adamant_adam_config {
    adamant_adam_config {
        beta1: c.beta1,
        beta2: c.beta2,
        eps: c.eps,
        weight_decay: c.weight_decay,
        stochastic_rounding_seed: c.stochastic_rounding_seed.unwrap_or(0),
        stochastic_rounding: c.stochastic_rounding_seed.is_some() as u32,
    }
}

impl adamant_adam_config {
    /// Core's config at learning rate `lr` (flags checked here, values by core).
    pub(crate) fn to_core(self, decoupled: bool, lr: f64) -> Result<AdamConfig, adamant_status> {
        let sr = flag(self.stochastic_rounding)?;
        Ok(AdamConfig {
            lr,
            beta1: self.beta1,
            beta2: self.beta2,
            eps: self.eps,
            weight_decay: self.weight_decay,
            decoupled,
            stochastic_rounding_seed: sr.then_some(self.stochastic_rounding_seed),
        })
    }
}

/// Per-step f32 scalars of Adam/AdamW, as the kernels use them (`adamant_core`'s
/// `AdamScalars`): each is computed in f64 from the hyper-parameters and the step, then
/// rounded once to f32.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct adamant_adam_scalars {
    /// `1 - lr*weight_decay` for AdamW, 1 for Adam.
    pub decay: f32,
    /// L2 coefficient for Adam, 0 for AdamW.
    pub weight_decay: f32,
    /// `beta1`.
    pub beta1: f32,
    /// `1 - beta1`.
    pub one_minus_beta1: f32,
    /// `beta2`.
    pub beta2: f32,
    /// `1 - beta2`.
    pub one_minus_beta2: f32,
    /// `lr / (1 - beta1^t)`.
    pub step_size: f32,
    /// `sqrt(1 - beta2^t)`.
    pub bias_correction2_sqrt: f32,
    /// `eps`.
    pub eps: f32,
}

const _: () = {
    assert!(core::mem::size_of::<adamant_adam_scalars>() == core::mem::size_of::<AdamScalars>());
    assert!(core::mem::align_of::<adamant_adam_scalars>() == core::mem::align_of::<AdamScalars>());
};

impl From<AdamScalars> for adamant_adam_scalars {
    fn from(k: AdamScalars) -> Self {
        adamant_adam_scalars {
            decay: k.decay,
            weight_decay: k.weight_decay,
            beta1: k.beta1,
            one_minus_beta1: k.one_minus_beta1,
            beta2: k.beta2,
            one_minus_beta2: k.one_minus_beta2,
            step_size: k.step_size,
            bias_correction2_sqrt: k.bias_correction2_sqrt,
            eps: k.eps,
        }
    }
}

/// AdamW (`decoupled`) or Adam, for [`entry::step`].
#[derive(Clone, Copy, Debug)]
struct Rule {
    decoupled: bool,
}

const ADAMW: Rule = Rule { decoupled: true };
const ADAM: Rule = Rule { decoupled: false };

impl entry::Rule<4> for Rule {
    type Config = adamant_adam_config;
    type Core = AdamConfig;
    type Scalars = AdamScalars;

    fn config(self, c: adamant_adam_config, lr: f64) -> Result<AdamConfig, adamant_status> {
        let cfg = c.to_core(self.decoupled, lr)?;
        cfg.validate()?;
        Ok(cfg)
    }

    fn lens(_: &AdamConfig, v: &[View; 4]) -> Result<(), adamant_status> {
        entry::same_lens(v)?;
        entry::same_dtype(&v[2], &v[3])
    }

    fn begin(
        cfg: AdamConfig,
        step: u64,
        opts: &StepOptions,
    ) -> Result<Begin<AdamScalars>, StepError> {
        let mut adam = Adam::new(cfg)?;
        adam.state.step = step;
        adam.begin(opts, crate::run::no_grads())
    }

    fn run(plan: &Plan<AdamScalars>, v: &[View; 4]) -> Result<(), adamant_status> {
        crate::exec::adam(plan, v)
    }
}

/// One AdamW step (decoupled weight decay, PyTorch `torch.optim.AdamW`) over one tensor.
///
/// Per element, in f32 with the per-step scalars of `adamant_adamw_step_scalars`:
/// `p = p*(1 - lr*wd)`; `exp_avg = beta1*exp_avg + (1-beta1)*g`;
/// `exp_avg_sq = beta2*exp_avg_sq + (1-beta2)*(g*g)`;
/// `p = p - step_size*(exp_avg/(sqrt(exp_avg_sq)/bias_correction2_sqrt + eps))`, where `g` is
/// the gradient after the loss scale and clip coefficient of `options`.
///
/// `step` is the number of steps applied so far (0 before the first); on success
/// `*out_step = step + 1`. `param` and `grad` may be f32, bf16 or f16; `exp_avg` and
/// `exp_avg_sq` are f32 or bf16 (both the same) and start at zero. All four have the same
/// length. On any nonzero status nothing was written, `*out_step` included.
///
/// # Safety
/// `config`, `options` point to valid structs; every view's `data` points to `len`
/// elements of its dtype, valid for the call and not accessed concurrently; `out_step` points
/// to a writable `uint64_t`.
#[no_mangle]
pub unsafe extern "C" fn adamant_adamw_step(
    config: *const adamant_adam_config,
    options: *const adamant_step_options,
    step: u64,
    param: adamant_tensor,
    grad: adamant_const_tensor,
    exp_avg: adamant_tensor,
    exp_avg_sq: adamant_tensor,
    out_step: *mut u64,
) -> adamant_status {
    let call = Call::one((param, grad, exp_avg, exp_avg_sq));
    // SAFETY: the caller's contract above.
    unsafe { entry::step(ADAMW, config, options, step, call, out_step) }
}

/// One Adam step (L2 weight decay added to the gradient, PyTorch `torch.optim.Adam`) over
/// one tensor: `g = g + weight_decay*p`, then as `adamant_adamw_step` without the decay of
/// `p`. Arguments, errors and safety as `adamant_adamw_step`.
///
/// # Safety
/// As `adamant_adamw_step`.
#[no_mangle]
pub unsafe extern "C" fn adamant_adam_step(
    config: *const adamant_adam_config,
    options: *const adamant_step_options,
    step: u64,
    param: adamant_tensor,
    grad: adamant_const_tensor,
    exp_avg: adamant_tensor,
    exp_avg_sq: adamant_tensor,
    out_step: *mut u64,
) -> adamant_status {
    let call = Call::one((param, grad, exp_avg, exp_avg_sq));
    // SAFETY: the caller's contract above.
    unsafe { entry::step(ADAM, config, options, step, call, out_step) }
}

/// One AdamW step over `count` tensors (one call per model): tensor `i` is
/// `(params[i], grads[i], exp_avgs[i], exp_avg_sqs[i])`, each with its own dtypes and length.
/// The step counter is shared. Every tensor is validated, and every gradient scanned when
/// finite-checking is on, before any is written: one bad tensor means nothing is written.
///
/// # Safety
/// As `adamant_adamw_step`, for every view; each array holds `count` views (may be NULL when
/// `count` is 0).
#[no_mangle]
pub unsafe extern "C" fn adamant_adamw_step_multi(
    config: *const adamant_adam_config,
    options: *const adamant_step_options,
    step: u64,
    params: *const adamant_tensor,
    grads: *const adamant_const_tensor,
    exp_avgs: *const adamant_tensor,
    exp_avg_sqs: *const adamant_tensor,
    count: usize,
    out_step: *mut u64,
) -> adamant_status {
    let call = Call::many((params, grads, exp_avgs, exp_avg_sqs), count);
    // SAFETY: the caller's contract above.
    unsafe { entry::step(ADAMW, config, options, step, call, out_step) }
}

/// One Adam step over `count` tensors; see `adamant_adamw_step_multi`.
///
/// # Safety
/// As `adamant_adamw_step_multi`.
#[no_mangle]
pub unsafe extern "C" fn adamant_adam_step_multi(
    config: *const adamant_adam_config,
    options: *const adamant_step_options,
    step: u64,
    params: *const adamant_tensor,
    grads: *const adamant_const_tensor,
    exp_avgs: *const adamant_tensor,
    exp_avg_sqs: *const adamant_tensor,
    count: usize,
    out_step: *mut u64,
) -> adamant_status {
    let call = Call::many((params, grads, exp_avgs, exp_avg_sqs), count);
    // SAFETY: the caller's contract above.
    unsafe { entry::step(ADAM, config, options, step, call, out_step) }
}

/// As `adamant_adamw_step_multi`, with per-tensor clip coefficients: `clip_coefs` holds
/// `count` floats (finite, `>= 0`; from `adamant_adagc_coefs`), each replacing
/// `options.clip_coef` for its tensor (`ADAMANT_STATUS_INVALID_CONFIG` otherwise).
///
/// # Safety
/// As `adamant_adamw_step_multi`; `clip_coefs` points to `count` floats (may be NULL when
/// `count` is 0).
#[no_mangle]
pub unsafe extern "C" fn adamant_adamw_step_multi_clip(
    config: *const adamant_adam_config,
    options: *const adamant_step_options,
    step: u64,
    params: *const adamant_tensor,
    grads: *const adamant_const_tensor,
    exp_avgs: *const adamant_tensor,
    exp_avg_sqs: *const adamant_tensor,
    clip_coefs: *const f32,
    count: usize,
    out_step: *mut u64,
) -> adamant_status {
    let call = Call::clipped((params, grads, exp_avgs, exp_avg_sqs), clip_coefs, count);
    // SAFETY: the caller's contract above.
    unsafe { entry::step(ADAMW, config, options, step, call, out_step) }
}

/// As `adamant_adam_step_multi`, with per-tensor clip coefficients: `clip_coefs` holds
/// `count` floats (finite, `>= 0`; from `adamant_adagc_coefs`), each replacing
/// `options.clip_coef` for its tensor (`ADAMANT_STATUS_INVALID_CONFIG` otherwise).
///
/// # Safety
/// As `adamant_adam_step_multi`; `clip_coefs` points to `count` floats (may be NULL when
/// `count` is 0).
#[no_mangle]
pub unsafe extern "C" fn adamant_adam_step_multi_clip(
    config: *const adamant_adam_config,
    options: *const adamant_step_options,
    step: u64,
    params: *const adamant_tensor,
    grads: *const adamant_const_tensor,
    exp_avgs: *const adamant_tensor,
    exp_avg_sqs: *const adamant_tensor,
    clip_coefs: *const f32,
    count: usize,
    out_step: *mut u64,
) -> adamant_status {
    let call = Call::clipped((params, grads, exp_avgs, exp_avg_sqs), clip_coefs, count);
    // SAFETY: the caller's contract above.
    unsafe { entry::step(ADAM, config, options, step, call, out_step) }
}

/// The per-step scalars AdamW uses at learning rate `lr` for step `t` (1-based: the step
/// being applied), by the f64 recipe of the numeric contract; for kernels written outside
/// adamant that want adamant's bits. `t = 0` or an invalid configuration gives
/// `ADAMANT_STATUS_INVALID_CONFIG`.
///
/// # Safety
/// `config` points to a valid struct; `out_scalars` to writable memory for one struct.
#[no_mangle]
pub unsafe extern "C" fn adamant_adamw_step_scalars(
    config: *const adamant_adam_config,
    lr: f64,
    t: u64,
    out_scalars: *mut adamant_adam_scalars,
) -> adamant_status {
    // SAFETY: the caller's contract above.
    unsafe { entry::scalars(config, out_scalars, |c| scalars(ADAMW, c, lr, t)) }
}

/// As `adamant_adamw_step_scalars`, for Adam (L2 weight decay).
///
/// # Safety
/// As `adamant_adamw_step_scalars`.
#[no_mangle]
pub unsafe extern "C" fn adamant_adam_step_scalars(
    config: *const adamant_adam_config,
    lr: f64,
    t: u64,
    out_scalars: *mut adamant_adam_scalars,
) -> adamant_status {
    // SAFETY: the caller's contract above.
    unsafe { entry::scalars(config, out_scalars, |c| scalars(ADAM, c, lr, t)) }
}

/// The scalars of `adamant_adam[w]_step_scalars`.
fn scalars(
    rule: Rule,
    c: adamant_adam_config,
    lr: f64,
    t: u64,
) -> Result<adamant_adam_scalars, adamant_status> {
    let cfg = entry::Rule::config(rule, c, lr)?;
    entry::applied_step(t)?;
    Ok(cfg.scalars(lr, t).into())
}
