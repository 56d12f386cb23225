//! SGD with momentum: `adamant_sgd_step`, `adamant_sgd_step_multi`, per-step scalars.
//! The rule is `adamant_core::rules::sgd::sgd_elem`.

use crate::multi::{array_range, Raw, Spec};
use crate::options::{adamant_step_options, flag};
use crate::status::adamant_status;
use crate::tensor::{adamant_const_tensor, adamant_tensor, View, ANY_DTYPE, STATE_DTYPES};
use adamant_core::rules::sgd::{SgdConfig, SgdScalars};
use adamant_core::Sgd;

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

/// # Safety
/// As the public entry points.
unsafe fn step_any(
    config: *const adamant_sgd_config,
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
    let with_buf = cfg.has_momentum();
    let lens = move |v: &[View; 3]| {
        let n = v[0].len;
        let want_buf = if with_buf { n } else { 0 };
        if v[1].len != n || v[2].len != want_buf {
            return Err(adamant_status::LengthMismatch);
        }
        Ok(())
    };
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
                let mut sgd = Sgd::new(cfg)?;
                sgd.state.step = step;
                sgd.begin(&opts, crate::run::no_grads())
            },
            crate::exec::sgd,
            out_step,
        )
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
    ffi_boundary!({
        let raw = |_| [param.into(), grad.into(), momentum_buffer.into()];
        // SAFETY: the caller's contract above.
        unsafe { step_any(config, options, step, 1, raw, &[], &[], out_step) }
    })
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
    ffi_boundary!({
        // SAFETY: the caller's contract above.
        unsafe {
            multi(
                config,
                options,
                step,
                params,
                grads,
                momentum_buffers,
                core::ptr::null(),
                count,
                out_step,
            )
        }
    })
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
    ffi_boundary!({
        if clip_coefs.is_null() && count > 0 {
            return Err(adamant_status::NullPointer);
        }
        // SAFETY: the caller's contract above.
        unsafe {
            multi(
                config,
                options,
                step,
                params,
                grads,
                momentum_buffers,
                clip_coefs,
                count,
                out_step,
            )
        }
    })
}

/// # Safety
/// As the `_multi` entry points; a non-NULL `clip_coefs` holds `count` floats.
unsafe fn multi(
    config: *const adamant_sgd_config,
    options: *const adamant_step_options,
    step: u64,
    params: *const adamant_tensor,
    grads: *const adamant_const_tensor,
    momentum_buffers: *const adamant_tensor,
    clip_coefs: *const f32,
    count: usize,
    out_step: *mut u64,
) -> Result<(), adamant_status> {
    let _ = try_ref!(config);
    let _ = try_ref!(options);
    let _ = try_out!(out_step);
    let p = try_slice!(params, count);
    let g = try_slice!(grads, count);
    let b = try_slice!(momentum_buffers, count);
    // SAFETY: the caller's contract.
    let c = unsafe { crate::options::clip_coefs(clip_coefs, count) }?;
    let arrays = [
        array_range(params, count),
        array_range(grads, count),
        array_range(momentum_buffers, count),
        array_range(clip_coefs, c.len()),
    ];
    let raw = |i: usize| [p[i].into(), g[i].into(), b[i].into()];
    // SAFETY: the caller's contract.
    unsafe { step_any(config, options, step, count, raw, &arrays, c, out_step) }
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
    ffi_boundary!({
        let config = *try_ref!(config);
        let out = try_out!(out_scalars);
        let cfg = config.to_core(lr)?;
        cfg.validate()?;
        if t == 0 {
            return Err(adamant_status::InvalidConfig);
        }
        let k: adamant_sgd_scalars = cfg.scalars(lr, t).into();
        // SAFETY: non-NULL and aligned (try_out!).
        unsafe { out.write(k) };
        Ok(())
    })
}
