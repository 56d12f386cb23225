//! The XLA typed-FFI handlers (CPU, `platform="cpu"`). Each is an execute-only handler:
//! it answers the metadata query with API 0.1, does nothing in other stages, and in EXECUTE
//! checks the call frame, then runs the rule in place on its results. When XLA aliases a
//! result to its input (`input_output_aliases` with donation) the update touches only that
//! buffer; otherwise the result starts as a copy of the input.
//!
//! `lr` (f32 or f64) and `count` (int32 or int64, optax's steps-applied counter) arrive as
//! scalar buffers, so a schedule under `jax.jit` never recompiles; the hyper-parameters are
//! static attributes. On the host (CPU platform) reading those scalars is reading host memory.

use super::api::{self, dtype, CallFrame, Error};
use super::frame::{enter, error, BufView, Fail, Frame, Stage};
use super::run::{self, Tensor};
use adamant_core::{AdamConfig, LionConfig, SgdConfig};
use std::panic::{catch_unwind, AssertUnwindSafe};

fn handle(
    frame: *mut CallFrame,
    target: &'static str,
    body: fn(&Frame<'_>) -> Result<(), Fail>,
) -> *mut Error {
    let r = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `frame` is what XLA passed to the handler.
        match unsafe { enter(frame, target) }? {
            Stage::Answered | Stage::Other => Ok(()),
            Stage::Execute(f) => body(&f),
        }
    }));
    let fail = match r {
        Ok(Ok(())) => return core::ptr::null_mut(),
        Ok(Err(f)) => f,
        Err(_) => Fail {
            code: api::ERROR_INTERNAL,
            message: format!("{target}: internal panic"),
        },
    };
    // SAFETY: as above.
    unsafe { error(frame, fail) }
}

fn tensor(b: &BufView) -> Tensor {
    Tensor {
        name: b.name,
        dtype: b.dtype,
        data: b.data,
        len: b.len,
    }
}

/// A result must have its input's dtype and shape.
fn same_as(target: &str, out: &BufView, input: &BufView) -> Result<(), Fail> {
    if out.dtype != input.dtype || out.dims() != input.dims() {
        return Err(Fail::invalid(format!(
            "{target}: result `{}` must have the dtype and shape of argument `{}` \
             ({} {:?}), got {} {:?}",
            out.name,
            input.name,
            dtype::name(input.dtype),
            input.dims(),
            dtype::name(out.dtype),
            out.dims()
        )));
    }
    Ok(())
}

/// An argument read alongside `param` must have its shape (dtype is checked by the rule).
fn same_shape(target: &str, arg: &BufView, param: &BufView) -> Result<(), Fail> {
    if arg.dims() != param.dims() {
        return Err(Fail::invalid(format!(
            "{target}: argument `{}` has shape {:?}, expected {:?} (the shape of `param`)",
            arg.name,
            arg.dims(),
            param.dims()
        )));
    }
    Ok(())
}

fn scalar_check(target: &str, b: &BufView, allowed: &[i32]) -> Result<(), Fail> {
    if b.len != 1 {
        return Err(Fail::invalid(format!(
            "{target}: `{}` must hold one element, got shape {:?}",
            b.name,
            b.dims()
        )));
    }
    if !allowed.contains(&b.dtype) {
        let names: Vec<&str> = allowed.iter().map(|&d| dtype::name(d)).collect();
        return Err(Fail::invalid(format!(
            "{target}: `{}` has dtype {}; accepted: {}",
            b.name,
            dtype::name(b.dtype),
            names.join(", ")
        )));
    }
    if b.data.is_null() {
        return Err(Fail::invalid(format!("{target}: `{}` is null", b.name)));
    }
    Ok(())
}

/// The learning rate from its one-element buffer (f32 widens exactly).
fn read_lr(target: &str, b: &BufView) -> Result<f64, Fail> {
    scalar_check(target, b, &[dtype::F32, dtype::F64])?;
    // SAFETY: one element of the checked dtype; on the CPU platform buffers are host memory.
    Ok(unsafe {
        if b.dtype == dtype::F32 {
            (b.data as *const f32).read_unaligned() as f64
        } else {
            (b.data as *const f64).read_unaligned()
        }
    })
}

/// optax's `count` (steps applied so far) from its one-element buffer.
fn read_count(target: &str, b: &BufView) -> Result<u64, Fail> {
    scalar_check(target, b, &[dtype::S32, dtype::S64])?;
    // SAFETY: as in `read_lr`.
    let c = unsafe {
        if b.dtype == dtype::S32 {
            (b.data as *const i32).read_unaligned() as i64
        } else {
            (b.data as *const i64).read_unaligned()
        }
    };
    run::step_from_count(target, c)
}

fn adam_body(f: &Frame<'_>) -> Result<(), Fail> {
    let t = f.target;
    let [p, g, m, v, lr, count] =
        f.args(["param", "grad", "exp_avg", "exp_avg_sq", "lr", "count"])?;
    let [po, mo, vo] = f.rets(["param_out", "exp_avg_out", "exp_avg_sq_out"])?;
    let [beta1, beta2, eps, wd, decoupled] =
        f.attrs(["beta1", "beta2", "eps", "weight_decay", "decoupled"])?;
    for a in [&g, &m, &v] {
        same_shape(t, a, &p)?;
    }
    same_as(t, &po, &p)?;
    same_as(t, &mo, &m)?;
    same_as(t, &vo, &v)?;
    let lr = read_lr(t, &lr)?;
    let count = read_count(t, &count)?;
    let config = AdamConfig {
        lr,
        beta1: beta1.f64(),
        beta2: beta2.f64(),
        eps: eps.f64(),
        weight_decay: wd.f64(),
        decoupled: decoupled.flag(),
        stochastic_rounding_seed: None,
    };
    let named = |b: &BufView, name| Tensor { name, ..tensor(b) };
    let copies = [
        (tensor(&p), named(&po, "param")),
        (tensor(&m), named(&mo, "exp_avg")),
        (tensor(&v), named(&vo, "exp_avg_sq")),
    ];
    // SAFETY: the descriptors come from XLA for this call; results match their inputs.
    unsafe {
        run::adam(
            t,
            &copies,
            copies[0].1,
            tensor(&g),
            copies[1].1,
            copies[2].1,
            lr,
            count,
            config,
        )
    }
}

fn lion_body(f: &Frame<'_>) -> Result<(), Fail> {
    let t = f.target;
    let [p, g, m, lr, count] = f.args(["param", "grad", "exp_avg", "lr", "count"])?;
    let [po, mo] = f.rets(["param_out", "exp_avg_out"])?;
    let [beta1, beta2, wd] = f.attrs(["beta1", "beta2", "weight_decay"])?;
    for a in [&g, &m] {
        same_shape(t, a, &p)?;
    }
    same_as(t, &po, &p)?;
    same_as(t, &mo, &m)?;
    let lr = read_lr(t, &lr)?;
    let count = read_count(t, &count)?;
    let config = LionConfig {
        lr,
        beta1: beta1.f64(),
        beta2: beta2.f64(),
        weight_decay: wd.f64(),
        stochastic_rounding_seed: None,
    };
    let copies = [
        (
            tensor(&p),
            Tensor {
                name: "param",
                ..tensor(&po)
            },
        ),
        (
            tensor(&m),
            Tensor {
                name: "exp_avg",
                ..tensor(&mo)
            },
        ),
    ];
    // SAFETY: as in `adam_body`.
    unsafe {
        run::lion(
            t,
            &copies,
            copies[0].1,
            tensor(&g),
            copies[1].1,
            lr,
            count,
            config,
        )
    }
}

fn sgd_body(f: &Frame<'_>) -> Result<(), Fail> {
    let t = f.target;
    let [p, g, b, lr, count] = f.args(["param", "grad", "momentum_buffer", "lr", "count"])?;
    let [po, bo] = f.rets(["param_out", "momentum_buffer_out"])?;
    let [momentum, dampening, wd, nesterov] =
        f.attrs(["momentum", "dampening", "weight_decay", "nesterov"])?;
    same_shape(t, &g, &p)?;
    if momentum.f64() != 0.0 {
        same_shape(t, &b, &p)?;
    }
    same_as(t, &po, &p)?;
    same_as(t, &bo, &b)?;
    let lr = read_lr(t, &lr)?;
    let count = read_count(t, &count)?;
    let config = SgdConfig {
        lr,
        momentum: momentum.f64(),
        dampening: dampening.f64(),
        weight_decay: wd.f64(),
        nesterov: nesterov.flag(),
        stochastic_rounding_seed: None,
    };
    let copies = [
        (
            tensor(&p),
            Tensor {
                name: "param",
                ..tensor(&po)
            },
        ),
        (
            tensor(&b),
            Tensor {
                name: "momentum_buffer",
                ..tensor(&bo)
            },
        ),
    ];
    // SAFETY: as in `adam_body`.
    unsafe {
        run::sgd(
            t,
            &copies,
            copies[0].1,
            tensor(&g),
            copies[1].1,
            lr,
            count,
            config,
        )
    }
}

fn sum_sq_partials_body(f: &Frame<'_>) -> Result<(), Fail> {
    let [x] = f.args(["x"])?;
    let [out] = f.rets(["partials"])?;
    f.attrs::<0>([])?;
    // SAFETY: descriptors from XLA for this call.
    unsafe { run::sum_sq_partials(f.target, tensor(&x), tensor(&out)) }
}

fn combine_body(f: &Frame<'_>) -> Result<(), Fail> {
    let [p] = f.args(["partials"])?;
    let [out] = f.rets(["sum"])?;
    f.attrs::<0>([])?;
    // SAFETY: descriptors from XLA for this call.
    unsafe { run::combine(f.target, tensor(&p), tensor(&out)) }
}

/// XLA FFI handler `adamant_adam` (CPU): one Adam/AdamW step on one tensor.
///
/// Arguments `(param, grad, exp_avg, exp_avg_sq, lr, count)`, results
/// `(param_out, exp_avg_out, exp_avg_sq_out)`; attributes `beta1, beta2, eps, weight_decay`
/// (floats) and `decoupled` (bool: AdamW). Computes `adamant_core::rules::adam::adam_elem`
/// per element with step `count + 1`.
///
/// # Safety
/// Called by XLA with a valid call frame.
#[no_mangle]
pub unsafe extern "C" fn adamant_xla_adam(frame: *mut CallFrame) -> *mut Error {
    handle(frame, "adamant_adam", adam_body)
}

/// XLA FFI handler `adamant_lion` (CPU): arguments `(param, grad, exp_avg, lr, count)`,
/// results `(param_out, exp_avg_out)`, attributes `beta1, beta2, weight_decay`
/// (`adamant_core::rules::lion::lion_elem`).
///
/// # Safety
/// Called by XLA with a valid call frame.
#[no_mangle]
pub unsafe extern "C" fn adamant_xla_lion(frame: *mut CallFrame) -> *mut Error {
    handle(frame, "adamant_lion", lion_body)
}

/// XLA FFI handler `adamant_sgd` (CPU): arguments `(param, grad, momentum_buffer, lr, count)`
/// (`momentum_buffer` empty when `momentum == 0`), results `(param_out, momentum_buffer_out)`,
/// attributes `momentum, dampening, weight_decay, nesterov`
/// (`adamant_core::rules::sgd::sgd_elem`).
///
/// # Safety
/// Called by XLA with a valid call frame.
#[no_mangle]
pub unsafe extern "C" fn adamant_xla_sgd(frame: *mut CallFrame) -> *mut Error {
    handle(frame, "adamant_sgd", sgd_body)
}

/// XLA FFI handler `adamant_sum_sq_partials` (CPU): argument `x` (f32/bf16/f16, any shape),
/// result f32[`ceil(n/4096)`]: the canonical sum of `x*x` over each 4096-element tile.
///
/// # Safety
/// Called by XLA with a valid call frame.
#[no_mangle]
pub unsafe extern "C" fn adamant_xla_sum_sq_partials(frame: *mut CallFrame) -> *mut Error {
    handle(frame, "adamant_sum_sq_partials", sum_sq_partials_body)
}

/// XLA FFI handler `adamant_combine` (CPU): argument f32 `partials` gathered in global tile
/// order, result f32[] (rank 0 or one element): their canonical combine.
///
/// # Safety
/// Called by XLA with a valid call frame.
#[no_mangle]
pub unsafe extern "C" fn adamant_xla_combine(frame: *mut CallFrame) -> *mut Error {
    handle(frame, "adamant_combine", combine_body)
}
