//! Host-array entry points for the same steps (the backend of `adamant.numpy`). They run the
//! exact functions the XLA handlers run, so JAX and numpy give the same bits. Each returns 0
//! on success, or 1 and a NUL-terminated message (naming the argument) in `msg[..msg_cap]`;
//! nothing is written to the tensors on error. Dtypes are XLA codes: f32 = 11, bf16 = 16,
//! f16 = 10.

#![allow(clippy::too_many_arguments)] // flat C signatures

use super::frame::Fail;
use super::run::{self, Tensor};
use adamant_core::{AdamConfig, LionConfig, SgdConfig};
use core::ffi::{c_char, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};

fn finish(r: std::thread::Result<Result<(), Fail>>, msg: *mut c_char, msg_cap: usize) -> i32 {
    let message = match r {
        Ok(Ok(())) => return 0,
        Ok(Err(f)) => f.message,
        Err(_) => "internal panic".to_string(),
    };
    if !msg.is_null() && msg_cap > 0 {
        let n = message.len().min(msg_cap - 1);
        // SAFETY: the caller gives `msg_cap` writable bytes at `msg`.
        unsafe {
            core::ptr::copy_nonoverlapping(message.as_ptr(), msg as *mut u8, n);
            *msg.add(n) = 0;
        }
    }
    1
}

fn t(name: &'static str, data: *mut c_void, dtype: i32, len: usize) -> Tensor {
    Tensor {
        name,
        dtype,
        data,
        len,
    }
}

fn count_of(target: &str, count: i64) -> Result<u64, Fail> {
    run::step_from_count(target, count)
}

/// One Adam/AdamW step over `n` elements in place, step number `count + 1`
/// (`adamant_core::rules::adam::adam_elem` per element).
///
/// # Safety
/// Each pointer holds `n` elements of its dtype (`exp_avg_sq` has `state_dtype`), and
/// `msg` is null or has `msg_cap` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn adamant_host_adam(
    param: *mut c_void,
    param_dtype: i32,
    grad: *const c_void,
    grad_dtype: i32,
    exp_avg: *mut c_void,
    exp_avg_sq: *mut c_void,
    state_dtype: i32,
    n: usize,
    lr: f64,
    count: i64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    decoupled: i32,
    msg: *mut c_char,
    msg_cap: usize,
) -> i32 {
    let target = "adamant_adam";
    let r = catch_unwind(AssertUnwindSafe(|| {
        let config = AdamConfig {
            lr,
            beta1,
            beta2,
            eps,
            weight_decay,
            decoupled: decoupled != 0,
            stochastic_rounding_seed: None,
        };
        // SAFETY: the caller's contract.
        unsafe {
            run::adam(
                target,
                &[],
                t("param", param, param_dtype, n),
                t("grad", grad as *mut c_void, grad_dtype, n),
                t("exp_avg", exp_avg, state_dtype, n),
                t("exp_avg_sq", exp_avg_sq, state_dtype, n),
                lr,
                count_of(target, count)?,
                config,
            )
        }
    }));
    finish(r, msg, msg_cap)
}

/// One Lion step over `n` elements in place (`adamant_core::rules::lion::lion_elem`).
///
/// # Safety
/// As [`adamant_host_adam`].
#[no_mangle]
pub unsafe extern "C" fn adamant_host_lion(
    param: *mut c_void,
    param_dtype: i32,
    grad: *const c_void,
    grad_dtype: i32,
    exp_avg: *mut c_void,
    state_dtype: i32,
    n: usize,
    lr: f64,
    count: i64,
    beta1: f64,
    beta2: f64,
    weight_decay: f64,
    msg: *mut c_char,
    msg_cap: usize,
) -> i32 {
    let target = "adamant_lion";
    let r = catch_unwind(AssertUnwindSafe(|| {
        let config = LionConfig {
            lr,
            beta1,
            beta2,
            weight_decay,
            stochastic_rounding_seed: None,
        };
        // SAFETY: the caller's contract.
        unsafe {
            run::lion(
                target,
                &[],
                t("param", param, param_dtype, n),
                t("grad", grad as *mut c_void, grad_dtype, n),
                t("exp_avg", exp_avg, state_dtype, n),
                lr,
                count_of(target, count)?,
                config,
            )
        }
    }));
    finish(r, msg, msg_cap)
}

/// One SGD step over `n` elements in place (`adamant_core::rules::sgd::sgd_elem`);
/// `momentum_buffer` may be null (and is ignored) when `momentum == 0`.
///
/// # Safety
/// As [`adamant_host_adam`].
#[no_mangle]
pub unsafe extern "C" fn adamant_host_sgd(
    param: *mut c_void,
    param_dtype: i32,
    grad: *const c_void,
    grad_dtype: i32,
    momentum_buffer: *mut c_void,
    state_dtype: i32,
    n: usize,
    lr: f64,
    count: i64,
    momentum: f64,
    dampening: f64,
    weight_decay: f64,
    nesterov: i32,
    msg: *mut c_char,
    msg_cap: usize,
) -> i32 {
    let target = "adamant_sgd";
    let r = catch_unwind(AssertUnwindSafe(|| {
        let config = SgdConfig {
            lr,
            momentum,
            dampening,
            weight_decay,
            nesterov: nesterov != 0,
            stochastic_rounding_seed: None,
        };
        let buf_len = if config.has_momentum() { n } else { 0 };
        // SAFETY: the caller's contract.
        unsafe {
            run::sgd(
                target,
                &[],
                t("param", param, param_dtype, n),
                t("grad", grad as *mut c_void, grad_dtype, n),
                t("momentum_buffer", momentum_buffer, state_dtype, buf_len),
                lr,
                count_of(target, count)?,
                config,
            )
        }
    }));
    finish(r, msg, msg_cap)
}

/// Canonical per-tile sums of squares of `n` elements into `partials`
/// (f32, `ceil(n/4096)` elements, given as `partials_len` and checked).
///
/// # Safety
/// `x` holds `n` elements of `x_dtype`, `partials` holds `partials_len` f32.
#[no_mangle]
pub unsafe extern "C" fn adamant_host_sum_sq_partials(
    x: *const c_void,
    x_dtype: i32,
    n: usize,
    partials: *mut f32,
    partials_len: usize,
    msg: *mut c_char,
    msg_cap: usize,
) -> i32 {
    let r = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the caller's contract.
        unsafe {
            run::sum_sq_partials(
                "adamant_sum_sq_partials",
                t("x", x as *mut c_void, x_dtype, n),
                t("partials", partials as *mut c_void, 11, partials_len),
            )
        }
    }));
    finish(r, msg, msg_cap)
}

/// Canonical combine of `len` tile results into `*out`.
///
/// # Safety
/// `partials` holds `len` f32; `out` is one writable f32.
#[no_mangle]
pub unsafe extern "C" fn adamant_host_combine(
    partials: *const f32,
    len: usize,
    out: *mut f32,
    msg: *mut c_char,
    msg_cap: usize,
) -> i32 {
    let r = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the caller's contract.
        unsafe {
            run::combine(
                "adamant_combine",
                t("partials", partials as *mut c_void, 11, len),
                t("sum", out as *mut c_void, 11, 1),
            )
        }
    }));
    finish(r, msg, msg_cap)
}
