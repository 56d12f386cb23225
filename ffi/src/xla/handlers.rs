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
use super::frame::{enter, error, AttrValue, BufView, Fail, Frame, Stage};
use super::run::{self, Tensor};
use adamant_core::clip::{AdaGcConfig, AdaGcMode};
use adamant_core::loco::LocoConfig;
use adamant_core::{AdamConfig, AdamMiniConfig, LionConfig, SgdConfig};
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

/// An exported handler: `$name` runs `$body` under [`handle`] as custom-call target
/// `$target`. The doc comments given are the handler's; the safety contract is the same for all.
macro_rules! xla_handler {
    ($(#[$doc:meta])* $name:ident, $target:literal, $body:ident) => {
        $(#[$doc])*
        ///
        /// # Safety
        /// Called by XLA with a valid call frame.
        #[no_mangle]
        pub unsafe extern "C" fn $name(frame: *mut CallFrame) -> *mut Error {
            handle(frame, $target, $body)
        }
    };
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

/// Each of `args` must have the shape of `param`.
fn same_shapes<const N: usize>(
    target: &str,
    param: &BufView,
    args: [&BufView; N],
) -> Result<(), Fail> {
    args.iter().try_for_each(|a| same_shape(target, a, param))
}

/// Results a rule updates in place: each `(input, result)` must agree in dtype and shape
/// (checked in order). Gives `(input, result)` tensor pairs, the result under its input's
/// name: the rule copies the input into the result unless XLA aliased them, then writes it.
fn in_place<const N: usize>(
    target: &str,
    pairs: [(&BufView, &BufView); N],
) -> Result<[(Tensor, Tensor); N], Fail> {
    for (input, out) in pairs {
        same_as(target, out, input)?;
    }
    Ok(pairs.map(|(input, out)| {
        let input = tensor(input);
        let out = Tensor {
            name: input.name,
            ..tensor(out)
        };
        (input, out)
    }))
}

/// An in-place pair as an optional copy: `None` when XLA aliased the result to its input.
fn copy_unless_aliased((input, out): (Tensor, Tensor)) -> Option<(Tensor, Tensor)> {
    (input.data != out.data).then_some((input, out))
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

/// A one-element f32 buffer (on the CPU platform: host memory).
fn read_f32(target: &str, b: &BufView) -> Result<f32, Fail> {
    scalar_check(target, b, &[dtype::F32])?;
    // SAFETY: one f32 element; on the CPU platform buffers are host memory.
    Ok(unsafe { (b.data as *const f32).read_unaligned() })
}

/// The arguments `names` plus an optional trailing `clip_coef` (f32 scalar, default 1:
/// handlers called without it keep their earlier signature).
fn args_clip<const N: usize>(
    f: &Frame<'_>,
    names: [&'static str; N],
) -> Result<([BufView; N], f32), Fail> {
    let (bufs, clip) = f.args_opt(names, "clip_coef")?;
    let clip = match clip {
        Some(c) => read_f32(f.target, &c)?,
        None => 1.0,
    };
    Ok((bufs, clip))
}

/// An integer attribute (integral floats accepted).
fn int_attr(target: &str, name: &str, v: AttrValue) -> Result<i64, Fail> {
    v.int().ok_or_else(|| {
        Fail::invalid(format!(
            "{target}: attribute `{name}` must be an integer, got {v:?}"
        ))
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

/// The learning rate and optax's `count`, from their one-element buffers.
fn read_lr_count(target: &str, lr: &BufView, count: &BufView) -> Result<(f64, u64), Fail> {
    Ok((read_lr(target, lr)?, read_count(target, count)?))
}

fn adam_body(f: &Frame<'_>) -> Result<(), Fail> {
    let t = f.target;
    let ([p, g, m, v, lr, count], clip) =
        args_clip(f, ["param", "grad", "exp_avg", "exp_avg_sq", "lr", "count"])?;
    let [po, mo, vo] = f.rets(["param_out", "exp_avg_out", "exp_avg_sq_out"])?;
    let [beta1, beta2, eps, wd, decoupled] =
        f.attrs(["beta1", "beta2", "eps", "weight_decay", "decoupled"])?;
    same_shapes(t, &p, [&g, &m, &v])?;
    let copies = in_place(t, [(&p, &po), (&m, &mo), (&v, &vo)])?;
    let (lr, count) = read_lr_count(t, &lr, &count)?;
    let config = AdamConfig {
        lr,
        beta1: beta1.f64(),
        beta2: beta2.f64(),
        eps: eps.f64(),
        weight_decay: wd.f64(),
        decoupled: decoupled.flag(),
        stochastic_rounding_seed: None,
    };
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
            clip,
            config,
        )
    }
}

fn lion_body(f: &Frame<'_>) -> Result<(), Fail> {
    let t = f.target;
    let ([p, g, m, lr, count], clip) = args_clip(f, ["param", "grad", "exp_avg", "lr", "count"])?;
    let [po, mo] = f.rets(["param_out", "exp_avg_out"])?;
    let [beta1, beta2, wd] = f.attrs(["beta1", "beta2", "weight_decay"])?;
    same_shapes(t, &p, [&g, &m])?;
    let copies = in_place(t, [(&p, &po), (&m, &mo)])?;
    let (lr, count) = read_lr_count(t, &lr, &count)?;
    let config = LionConfig {
        lr,
        beta1: beta1.f64(),
        beta2: beta2.f64(),
        weight_decay: wd.f64(),
        stochastic_rounding_seed: None,
    };
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
            clip,
            config,
        )
    }
}

fn sgd_body(f: &Frame<'_>) -> Result<(), Fail> {
    let t = f.target;
    let ([p, g, b, lr, count], clip) =
        args_clip(f, ["param", "grad", "momentum_buffer", "lr", "count"])?;
    let [po, bo] = f.rets(["param_out", "momentum_buffer_out"])?;
    let [momentum, dampening, wd, nesterov] =
        f.attrs(["momentum", "dampening", "weight_decay", "nesterov"])?;
    same_shape(t, &g, &p)?;
    if momentum.f64() != 0.0 {
        same_shape(t, &b, &p)?;
    }
    let copies = in_place(t, [(&p, &po), (&b, &bo)])?;
    let (lr, count) = read_lr_count(t, &lr, &count)?;
    let config = SgdConfig {
        lr,
        momentum: momentum.f64(),
        dampening: dampening.f64(),
        weight_decay: wd.f64(),
        nesterov: nesterov.flag(),
        stochastic_rounding_seed: None,
    };
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
            clip,
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

xla_handler! {
    /// XLA FFI handler `adamant_adam` (CPU): one Adam/AdamW step on one tensor.
    ///
    /// Arguments `(param, grad, exp_avg, exp_avg_sq, lr, count[, clip_coef])` (`clip_coef`: f32
    /// scalar multiplying the gradient inside the pass, e.g. AdaGC's; default 1), results
    /// `(param_out, exp_avg_out, exp_avg_sq_out)`; attributes `beta1, beta2, eps, weight_decay`
    /// (floats) and `decoupled` (bool: AdamW). Computes `adamant_core::rules::adam::adam_elem`
    /// per element with step `count + 1`.
    adamant_xla_adam, "adamant_adam", adam_body
}

xla_handler! {
    /// XLA FFI handler `adamant_lion` (CPU): arguments `(param, grad, exp_avg, lr, count[,
    /// clip_coef])`, results `(param_out, exp_avg_out)`, attributes `beta1, beta2,
    /// weight_decay` (`adamant_core::rules::lion::lion_elem`).
    adamant_xla_lion, "adamant_lion", lion_body
}

xla_handler! {
    /// XLA FFI handler `adamant_sgd` (CPU): arguments `(param, grad, momentum_buffer, lr,
    /// count[, clip_coef])` (`momentum_buffer` empty when `momentum == 0`), results
    /// `(param_out, momentum_buffer_out)`, attributes `momentum, dampening, weight_decay,
    /// nesterov` (`adamant_core::rules::sgd::sgd_elem`).
    adamant_xla_sgd, "adamant_sgd", sgd_body
}

xla_handler! {
    /// XLA FFI handler `adamant_sum_sq_partials` (CPU): argument `x` (f32/bf16/f16, any shape),
    /// result f32[`ceil(n/4096)`]: the canonical sum of `x*x` over each 4096-element tile.
    adamant_xla_sum_sq_partials, "adamant_sum_sq_partials", sum_sq_partials_body
}

xla_handler! {
    /// XLA FFI handler `adamant_combine` (CPU): argument f32 `partials` gathered in global tile
    /// order, result f32[] (rank 0 or one element): their canonical combine.
    adamant_xla_combine, "adamant_combine", combine_body
}

fn mini_config(b1: AttrValue, b2: AttrValue, eps: AttrValue, wd: AttrValue) -> AdamMiniConfig {
    run::mini_config(b1.f64(), b2.f64(), eps.f64(), wd.f64())
}

fn adam_mini_body(f: &Frame<'_>) -> Result<(), Fail> {
    let t = f.target;
    let [p, g, m, v, lr, count, clip] = f.args([
        "param",
        "grad",
        "exp_avg",
        "exp_avg_sq",
        "lr",
        "count",
        "clip_coef",
    ])?;
    let [po, mo, vo] = f.rets(["param_out", "exp_avg_out", "exp_avg_sq_out"])?;
    let [beta1, beta2, eps, wd, layout, block_len, segments] = f.attrs_opt([
        "beta1",
        "beta2",
        "eps",
        "weight_decay",
        "layout",
        "block_len",
        "segments",
    ])?;
    let need = |v: Option<AttrValue>, name: &str| {
        v.ok_or_else(|| Fail::invalid(format!("{t}: missing attribute `{name}`")))
    };
    let (beta1, beta2, eps, wd) = (
        need(beta1, "beta1")?,
        need(beta2, "beta2")?,
        need(eps, "eps")?,
        need(wd, "weight_decay")?,
    );
    let kind = int_attr(t, "layout", need(layout, "layout")?)?;
    let block_len = match block_len {
        Some(b) => int_attr(t, "block_len", b)?,
        None => 0,
    };
    let segs = match segments {
        Some(s) if kind == run::layout_kind::SEGMENTS => run::segments_from(
            t,
            &s.ints().ok_or_else(|| {
                Fail::invalid(format!("{t}: attribute `segments` must be an int64 array"))
            })?,
        )?,
        Some(_) => {
            return Err(Fail::invalid(format!(
                "{t}: attribute `segments` is only accepted with `layout` = 4 (segments)"
            )))
        }
        None if kind == run::layout_kind::SEGMENTS => {
            return Err(Fail::invalid(format!(
                "{t}: `layout` = 4 (segments) needs attribute `segments`"
            )))
        }
        None => Vec::new(),
    };
    let layout = run::layout_from(t, kind, block_len, &segs)?;
    same_shapes(t, &p, [&g, &m])?;
    let copies = in_place(t, [(&p, &po), (&m, &mo), (&v, &vo)])?;
    let (lr, count) = read_lr_count(t, &lr, &count)?;
    let clip = read_f32(t, &clip)?;
    let config = mini_config(beta1, beta2, eps, wd);
    // SAFETY: descriptors from XLA for this call; results match their inputs.
    unsafe {
        run::adam_mini(
            t,
            &copies,
            copies[0].1,
            tensor(&g),
            copies[1].1,
            copies[2].1,
            &layout,
            lr,
            count,
            clip,
            config,
        )
    }
}

fn adam_mini_partials_body(f: &Frame<'_>) -> Result<(), Fail> {
    let [g, clip] = f.args(["grad", "clip_coef"])?;
    let [out] = f.rets(["partials"])?;
    f.attrs::<0>([])?;
    let clip = read_f32(f.target, &clip)?;
    // SAFETY: descriptors from XLA for this call.
    unsafe { run::adam_mini_partials(f.target, tensor(&g), clip, tensor(&out)) }
}

fn adam_mini_block_body(f: &Frame<'_>) -> Result<(), Fail> {
    let t = f.target;
    let [p, g, m, v, sum_sq, lr, count, clip] = f.args([
        "param",
        "grad",
        "exp_avg",
        "exp_avg_sq",
        "sum_sq",
        "lr",
        "count",
        "clip_coef",
    ])?;
    let [po, mo, vo] = f.rets(["param_out", "exp_avg_out", "exp_avg_sq_out"])?;
    let [beta1, beta2, eps, wd, block_numel] =
        f.attrs(["beta1", "beta2", "eps", "weight_decay", "block_numel"])?;
    let block_numel = int_attr(t, "block_numel", block_numel)?;
    if block_numel <= 0 {
        return Err(Fail::invalid(format!(
            "{t}: attribute `block_numel` is {block_numel}; it must be > 0"
        )));
    }
    same_shapes(t, &p, [&g, &m])?;
    let copies = in_place(t, [(&p, &po), (&m, &mo), (&v, &vo)])?;
    let sum_sq = read_f32(t, &sum_sq)?;
    let (lr, count) = read_lr_count(t, &lr, &count)?;
    let clip = read_f32(t, &clip)?;
    let config = mini_config(beta1, beta2, eps, wd);
    // SAFETY: descriptors from XLA for this call; results match their inputs.
    unsafe {
        run::adam_mini_block(
            t,
            &copies,
            copies[0].1,
            tensor(&g),
            copies[1].1,
            copies[2].1,
            sum_sq,
            block_numel as u64,
            lr,
            count,
            clip,
            config,
        )
    }
}

fn adagc_body(f: &Frame<'_>) -> Result<(), Fail> {
    let t = f.target;
    let [sums, gamma, count] = f.args(["tensor_sums", "gamma", "count"])?;
    let [coefs, gamma_out, norm] = f.rets(["coefs", "gamma_out", "global_norm"])?;
    let [max_norm, lambda_rel, beta, eps, t_start, global] =
        f.attrs(["max_norm", "lambda_rel", "beta", "eps", "t_start", "global"])?;
    let t_start = int_attr(t, "t_start", t_start)?;
    if t_start < 0 {
        return Err(Fail::invalid(format!(
            "{t}: attribute `t_start` is {t_start}; it must be >= 0"
        )));
    }
    let [gamma_pair] = in_place(t, [(&gamma, &gamma_out)])?;
    let count = read_count(t, &count)?;
    let config = AdaGcConfig {
        lambda_rel: lambda_rel.f64(),
        beta: beta.f64(),
        eps: eps.f64(),
        t_start: t_start as u64,
        max_norm: max_norm.f64(),
        mode: if global.flag() {
            AdaGcMode::Global
        } else {
            AdaGcMode::PerTensor
        },
    };
    // SAFETY: descriptors from XLA for this call.
    unsafe {
        run::adagc(
            t,
            copy_unless_aliased(gamma_pair),
            tensor(&sums),
            gamma_pair.1,
            tensor(&coefs),
            tensor(&norm),
            count,
            config,
        )
    }
}

fn loco_config(
    t: &str,
    err_beta: AttrValue,
    group_len: AttrValue,
    bits: AttrValue,
    storage: AttrValue,
    reset_every: AttrValue,
) -> Result<LocoConfig, Fail> {
    let group_len = int_attr(t, "group_len", group_len)?;
    let bits = int_attr(t, "bits", bits)?;
    let reset_every = int_attr(t, "reset_every", reset_every)?;
    let group_len = run::positive(t, "group_len", group_len)?;
    if reset_every < 0 {
        return Err(Fail::invalid(format!(
            "{t}: `reset_every` is {reset_every}; it must be >= 0"
        )));
    }
    Ok(LocoConfig {
        err_beta: err_beta.f64(),
        group_len,
        bits: run::bits_from(t, bits)?,
        error_storage: run::error_storage(t, int_attr(t, "error_storage", storage)?)?,
        reset_every: reset_every as u64,
    })
}

fn loco_compress_body(f: &Frame<'_>) -> Result<(), Fail> {
    let t = f.target;
    let [g, e, count] = f.args(["grad", "err", "count"])?;
    let [packed, e_out] = f.rets(["packed", "err_out"])?;
    let [world, err_beta, group_len, bits, storage, reset_every] = f.attrs([
        "world",
        "err_beta",
        "group_len",
        "bits",
        "error_storage",
        "reset_every",
    ])?;
    let [err_pair] = in_place(t, [(&e, &e_out)])?;
    let world = int_attr(t, "world", world)?;
    let config = loco_config(t, err_beta, group_len, bits, storage, reset_every)?;
    let count = read_count(t, &count)?;
    // SAFETY: descriptors from XLA for this call.
    unsafe {
        run::loco_compress(
            t,
            copy_unless_aliased(err_pair),
            tensor(&g),
            err_pair.1,
            tensor(&packed),
            count,
            config,
            world,
        )
    }
}

fn loco_decompress_reduce_body(f: &Frame<'_>) -> Result<(), Fail> {
    let t = f.target;
    let [received] = f.args(["received"])?;
    let [out] = f.rets(["out"])?;
    let [world, group_len, bits] = f.attrs(["world", "group_len", "bits"])?;
    let world = int_attr(t, "world", world)?;
    let group_len = int_attr(t, "group_len", group_len)?;
    let bits = int_attr(t, "bits", bits)?;
    // SAFETY: descriptors from XLA for this call.
    unsafe {
        run::loco_decompress_reduce(t, tensor(&received), tensor(&out), world, group_len, bits)
    }
}

xla_handler! {
    /// XLA FFI handler `adamant_adam_mini` (CPU): one Adam-mini step on one whole tensor.
    ///
    /// Arguments `(param, grad, exp_avg, exp_avg_sq, lr, count, clip_coef)` (`exp_avg_sq`: one
    /// entry per block), results `(param_out, exp_avg_out, exp_avg_sq_out)`; attributes `beta1,
    /// beta2, eps, weight_decay` (floats), `layout` (0 element, 1 rows, 2 heads, 3 tensor,
    /// 4 segments), `block_len` (row length or head size) and `segments` (int64 `(len,
    /// block_len)` pairs, `block_len` 0 for an element segment). Computes
    /// `adamant_core::rules::adam_mini::apply_tensor` (`block_second_moment`, `block_scale`,
    /// `adam_mini_elem`).
    adamant_xla_adam_mini, "adamant_adam_mini", adam_mini_body
}

xla_handler! {
    /// XLA FFI handler `adamant_adam_mini_partials` (CPU): arguments `(grad, clip_coef)`, result
    /// f32[`ceil(n/4096)`]: the per-tile canonical sums of `(g*clip_coef)^2` of this shard's piece
    /// of a block (`adamant_core::rules::adam_mini::grad_sq_partials`).
    adamant_xla_adam_mini_partials, "adamant_adam_mini_partials", adam_mini_partials_body
}

xla_handler! {
    /// XLA FFI handler `adamant_adam_mini_block` (CPU): one shard's piece of a block that spans
    /// shards. Arguments `(param, grad, exp_avg, exp_avg_sq[1], sum_sq, lr, count, clip_coef)`
    /// with `sum_sq` the block's combined sum, results `(param_out, exp_avg_out,
    /// exp_avg_sq_out)`; attributes `beta1, beta2, eps, weight_decay, block_numel` (the block's
    /// global element count). `block_update` then `adam_mini_slice`.
    adamant_xla_adam_mini_block, "adamant_adam_mini_block", adam_mini_block_body
}

xla_handler! {
    /// XLA FFI handler `adamant_adagc` (CPU): arguments `(tensor_sums f32[N], gamma, count)`,
    /// results `(coefs f32[N], gamma_out, global_norm f32[])`; attributes `max_norm, lambda_rel,
    /// beta, eps` (floats), `t_start` (int), `global` (bool). `adamant_core::clip::AdaGc::plan`
    /// then `commit` (`adagc_tensor` per tensor).
    adamant_xla_adagc, "adamant_adagc", adagc_body
}

xla_handler! {
    /// XLA FFI handler `adamant_loco_compress` (CPU): arguments `(grad, err, count)`, results
    /// `(packed u8[world*chunk_len], err_out)`; attributes `world, group_len, bits,
    /// error_storage, reset_every` (ints), `err_beta` (float). `adamant_core::loco::compress`
    /// with one hop.
    adamant_xla_loco_compress, "adamant_loco_compress", loco_compress_body
}

xla_handler! {
    /// XLA FFI handler `adamant_loco_decompress_reduce` (CPU): argument `received`
    /// (u8, `world` chunks in rank order), result f32[shard_len]; attributes `world, group_len,
    /// bits`. `adamant_core::loco::decompress_reduce` with one hop.
    adamant_xla_loco_decompress_reduce, "adamant_loco_decompress_reduce", loco_decompress_reduce_body
}
