//! Host-array entry points for the same steps (the backend of `adamant.numpy`). They run the
//! exact functions the XLA handlers run, so JAX and numpy give the same bits. Each returns 0
//! on success, or 1 and a NUL-terminated message (naming the argument) in `msg[..msg_cap]`;
//! nothing is written to the tensors on error. Dtypes are XLA codes: f32 = 11, bf16 = 16,
//! f16 = 10.

#![allow(clippy::too_many_arguments)] // flat C signatures

use super::api::dtype;
use super::frame::Fail;
use super::run::{self, Tensor};
use adamant_core::clip::{AdaGcConfig, AdaGcMode};
use adamant_core::feedback::ErrorStorage;
use adamant_core::loco::LocoConfig;
use adamant_core::partition::{self, BlockRule, ModelDims, NameRules, Param, ParamBlocks};
use adamant_core::{AdamConfig, BlockLayout, LionConfig, SgdConfig};
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

/// Run an entry point's checks and step: 0 on success; otherwise 1 and the message (a panic is
/// caught and reported, never unwound into the caller).
fn host_call(msg: *mut c_char, msg_cap: usize, body: impl FnOnce() -> Result<(), Fail>) -> i32 {
    finish(catch_unwind(AssertUnwindSafe(body)), msg, msg_cap)
}

fn t<T>(name: &'static str, data: *const T, dtype: i32, len: usize) -> Tensor {
    Tensor {
        name,
        dtype,
        data: data as *mut c_void,
        len,
    }
}

/// An f32 array of `len` elements.
fn f32s(name: &'static str, data: *const f32, len: usize) -> Tensor {
    t(name, data, dtype::F32, len)
}

/// A byte array of `len` elements.
fn bytes(name: &'static str, data: *const u8, len: usize) -> Tensor {
    t(name, data, dtype::U8, len)
}

fn count_of(target: &str, count: i64) -> Result<u64, Fail> {
    run::step_from_count(target, count)
}

/// One Adam/AdamW step over `n` elements in place, step number `count + 1`
/// (`adamant_core::rules::adam::adam_elem` per element), the gradient multiplied by
/// `clip_coef` inside the pass (1: unchanged).
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
    clip_coef: f32,
    msg: *mut c_char,
    msg_cap: usize,
) -> i32 {
    let target = "adamant_adam";
    host_call(msg, msg_cap, || {
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
                t("grad", grad, grad_dtype, n),
                t("exp_avg", exp_avg, state_dtype, n),
                t("exp_avg_sq", exp_avg_sq, state_dtype, n),
                lr,
                count_of(target, count)?,
                clip_coef,
                config,
            )
        }
    })
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
    clip_coef: f32,
    msg: *mut c_char,
    msg_cap: usize,
) -> i32 {
    let target = "adamant_lion";
    host_call(msg, msg_cap, || {
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
                t("grad", grad, grad_dtype, n),
                t("exp_avg", exp_avg, state_dtype, n),
                lr,
                count_of(target, count)?,
                clip_coef,
                config,
            )
        }
    })
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
    clip_coef: f32,
    msg: *mut c_char,
    msg_cap: usize,
) -> i32 {
    let target = "adamant_sgd";
    host_call(msg, msg_cap, || {
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
                t("grad", grad, grad_dtype, n),
                t("momentum_buffer", momentum_buffer, state_dtype, buf_len),
                lr,
                count_of(target, count)?,
                clip_coef,
                config,
            )
        }
    })
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
    host_call(msg, msg_cap, || {
        // SAFETY: the caller's contract.
        unsafe {
            run::sum_sq_partials(
                "adamant_sum_sq_partials",
                t("x", x, x_dtype, n),
                f32s("partials", partials, partials_len),
            )
        }
    })
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
    host_call(msg, msg_cap, || {
        // SAFETY: the caller's contract.
        unsafe {
            run::combine(
                "adamant_combine",
                f32s("partials", partials, len),
                f32s("sum", out, 1),
            )
        }
    })
}

/// One Adam-mini step over one whole tensor of `n` elements in place
/// (`adamant_core::rules::adam_mini::apply_tensor`). `layout`: 0 element, 1 rows, 2 heads,
/// 3 tensor, 4 segments (`segments`: `n_segments` `(len, block_len)` int64 pairs, block_len 0
/// for an element segment); `exp_avg_sq` holds `state_len` entries (one per block).
///
/// # Safety
/// Each pointer holds its stated number of elements of its dtype; `segments` holds
/// `2*n_segments` int64; `msg` as in [`adamant_host_adam`].
#[no_mangle]
pub unsafe extern "C" fn adamant_host_adam_mini(
    param: *mut c_void,
    param_dtype: i32,
    grad: *const c_void,
    grad_dtype: i32,
    exp_avg: *mut c_void,
    exp_avg_sq: *mut c_void,
    state_dtype: i32,
    n: usize,
    state_len: usize,
    lr: f64,
    count: i64,
    clip_coef: f32,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    layout: i64,
    block_len: i64,
    segments: *const i64,
    n_segments: usize,
    msg: *mut c_char,
    msg_cap: usize,
) -> i32 {
    let target = "adamant_adam_mini";
    host_call(msg, msg_cap, || {
        let segs = if layout == run::layout_kind::SEGMENTS {
            if segments.is_null() {
                return Err(Fail::invalid(format!("{target}: `segments` is null")));
            }
            // SAFETY: the caller's contract.
            let pairs = unsafe { core::slice::from_raw_parts(segments, 2 * n_segments) };
            run::segments_from(target, pairs)?
        } else {
            Vec::new()
        };
        let layout = run::layout_from(target, layout, block_len, &segs)?;
        // SAFETY: the caller's contract.
        unsafe {
            run::adam_mini(
                target,
                &[],
                t("param", param, param_dtype, n),
                t("grad", grad, grad_dtype, n),
                t("exp_avg", exp_avg, state_dtype, n),
                t("exp_avg_sq", exp_avg_sq, state_dtype, state_len),
                &layout,
                lr,
                count_of(target, count)?,
                clip_coef,
                run::mini_config(beta1, beta2, eps, weight_decay),
            )
        }
    })
}

/// Phase one of a sharded Adam-mini block: per-tile sums of `(g*clip_coef)^2` of `n`
/// elements into `partials` (`partials_len` = `ceil(n/4096)` f32, checked).
///
/// # Safety
/// As [`adamant_host_sum_sq_partials`].
#[no_mangle]
pub unsafe extern "C" fn adamant_host_adam_mini_partials(
    grad: *const c_void,
    grad_dtype: i32,
    n: usize,
    clip_coef: f32,
    partials: *mut f32,
    partials_len: usize,
    msg: *mut c_char,
    msg_cap: usize,
) -> i32 {
    host_call(msg, msg_cap, || {
        // SAFETY: the caller's contract.
        unsafe {
            run::adam_mini_partials(
                "adamant_adam_mini_partials",
                t("grad", grad, grad_dtype, n),
                clip_coef,
                f32s("partials", partials, partials_len),
            )
        }
    })
}

/// Phases two and three of a sharded Adam-mini block on a piece of `n` elements: the block's
/// one `exp_avg_sq` entry from `sum_sq` over `block_numel` elements, then the element pass.
///
/// # Safety
/// As [`adamant_host_adam`]; `exp_avg_sq` is one element of `state_dtype`.
#[no_mangle]
pub unsafe extern "C" fn adamant_host_adam_mini_block(
    param: *mut c_void,
    param_dtype: i32,
    grad: *const c_void,
    grad_dtype: i32,
    exp_avg: *mut c_void,
    exp_avg_sq: *mut c_void,
    state_dtype: i32,
    n: usize,
    sum_sq: f32,
    block_numel: u64,
    lr: f64,
    count: i64,
    clip_coef: f32,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    msg: *mut c_char,
    msg_cap: usize,
) -> i32 {
    let target = "adamant_adam_mini_block";
    host_call(msg, msg_cap, || {
        // SAFETY: the caller's contract.
        unsafe {
            run::adam_mini_block(
                target,
                &[],
                t("param", param, param_dtype, n),
                t("grad", grad, grad_dtype, n),
                t("exp_avg", exp_avg, state_dtype, n),
                t("exp_avg_sq", exp_avg_sq, state_dtype, 1),
                sum_sq,
                block_numel,
                lr,
                count_of(target, count)?,
                clip_coef,
                run::mini_config(beta1, beta2, eps, weight_decay),
            )
        }
    })
}

/// Adam-mini's official v1.1.1 name rules (`adamant_core::partition::classify` with
/// `NameRules::OFFICIAL`) for one parameter: `name` (`name_len` UTF-8 bytes) of shape
/// `shape[..ndim]`. Writes `out[0..5]` = `(layout, block_len, weight_decay, rule, state_len)`
/// with `layout` as in [`adamant_host_adam_mini`] and `rule` 0 element, 1 head, 2 row,
/// 3 tensor. `n_kv_heads` 0 means `n_heads`.
///
/// # Safety
/// `name` holds `name_len` bytes, `shape` `ndim` int64, `out` five writable int64.
#[no_mangle]
pub unsafe extern "C" fn adamant_host_adam_mini_classify(
    name: *const u8,
    name_len: usize,
    shape: *const i64,
    ndim: usize,
    dim: i64,
    n_heads: i64,
    n_kv_heads: i64,
    out: *mut i64,
    msg: *mut c_char,
    msg_cap: usize,
) -> i32 {
    let target = "adamant_adam_mini_classify";
    host_call(msg, msg_cap, || {
        if name.is_null() || out.is_null() || (ndim > 0 && shape.is_null()) {
            return Err(Fail::invalid(format!("{target}: null pointer")));
        }
        // SAFETY: the caller's contract.
        let (name, shape_i) = unsafe {
            (
                core::slice::from_raw_parts(name, name_len),
                if ndim == 0 {
                    &[][..]
                } else {
                    core::slice::from_raw_parts(shape, ndim)
                },
            )
        };
        let name = core::str::from_utf8(name)
            .map_err(|_| Fail::invalid(format!("{target}: `name` is not UTF-8")))?;
        let mut shape = Vec::with_capacity(ndim);
        for &d in shape_i {
            if d < 0 {
                return Err(Fail::invalid(format!(
                    "{target}: `{name}` has a negative dimension"
                )));
            }
            shape.push(d as usize);
        }
        // Messages name the rule the layout is for, as its other checks do.
        let pos = |v: i64, what: &str| run::positive("adamant_adam_mini", what, v);
        let n_heads_u = pos(n_heads, "n_heads")?;
        let dims = ModelDims {
            dim: pos(dim, "dim")?,
            n_heads: n_heads_u,
            n_kv_heads: if n_kv_heads == 0 {
                n_heads_u
            } else {
                pos(n_kv_heads, "n_kv_heads")?
            },
        };
        let params = [Param {
            name,
            shape: &shape,
        }];
        let mut blocks = [ParamBlocks {
            rule: BlockRule::Tensor,
            layout: BlockLayout::Tensor,
            weight_decay: false,
            numel: 0,
            state_len: 0,
        }];
        partition::partition(&params, &dims, &NameRules::OFFICIAL, &[], &mut blocks).map_err(
            |e| match e {
                partition::PartitionError::Layout { error, .. } => Fail::invalid(format!(
                    "adamant_adam_mini: parameter `{name}` of shape {shape:?}: {error}"
                )),
                other => Fail::invalid(format!(
                    "adamant_adam_mini: {other} (`dim`, `n_heads`, `n_kv_heads`)"
                )),
            },
        )?;
        let b = blocks[0];
        let (kind, bl) = match b.layout {
            BlockLayout::Element => (run::layout_kind::ELEMENT, 0),
            BlockLayout::Rows { row_len } => (run::layout_kind::ROWS, row_len as i64),
            BlockLayout::Heads { head_numel } => (run::layout_kind::HEADS, head_numel as i64),
            BlockLayout::Tensor => (run::layout_kind::TENSOR, 0),
            BlockLayout::Segments(_) => (run::layout_kind::SEGMENTS, 0),
        };
        let rule = match b.rule {
            BlockRule::Element => 0,
            BlockRule::Head => 1,
            BlockRule::Row => 2,
            BlockRule::Tensor | BlockRule::Explicit => 3,
        };
        let vals = [kind, bl, b.weight_decay as i64, rule, b.state_len as i64];
        // SAFETY: `out` holds five writable int64 (caller's contract).
        unsafe { core::ptr::copy_nonoverlapping(vals.as_ptr(), out, 5) };
        Ok(())
    })
}

/// AdaGC for one step (`adamant_core::clip::AdaGc::plan` then `commit`): from `n` per-tensor
/// sums of squares, write `coefs[..n]`, advance `gamma` (`gamma_len`: `n`, or 1 when
/// `global != 0`) in place and write the global norm to `*global_norm`. `count` is the number
/// of steps already applied.
///
/// # Safety
/// Each pointer holds its stated number of f32; `global_norm` one writable f32.
#[no_mangle]
pub unsafe extern "C" fn adamant_host_adagc(
    tensor_sums: *const f32,
    n: usize,
    gamma: *mut f32,
    gamma_len: usize,
    coefs: *mut f32,
    global_norm: *mut f32,
    count: i64,
    max_norm: f64,
    lambda_rel: f64,
    beta: f64,
    eps: f64,
    t_start: u64,
    global: i32,
    msg: *mut c_char,
    msg_cap: usize,
) -> i32 {
    let target = "adamant_adagc";
    host_call(msg, msg_cap, || {
        let config = AdaGcConfig {
            lambda_rel,
            beta,
            eps,
            t_start,
            max_norm,
            mode: if global != 0 {
                AdaGcMode::Global
            } else {
                AdaGcMode::PerTensor
            },
        };
        // SAFETY: the caller's contract.
        unsafe {
            run::adagc(
                target,
                None,
                f32s("tensor_sums", tensor_sums, n),
                f32s("gamma", gamma, gamma_len),
                f32s("coefs", coefs, n),
                f32s("global_norm", global_norm, 1),
                count_of(target, count)?,
                config,
            )
        }
    })
}

/// Sizes of a one-hop LoCo layout: `out[0..3]` = `(chunk_len, compress_len, error_len)` in
/// bytes, bytes and elements of the error storage (`error_storage`: 0 f32, 1 8-bit).
///
/// # Safety
/// `out` holds three writable `usize`.
#[no_mangle]
pub unsafe extern "C" fn adamant_host_loco_layout(
    len: usize,
    world: i64,
    group_len: i64,
    bits: i64,
    error_storage: i64,
    out: *mut usize,
    msg: *mut c_char,
    msg_cap: usize,
) -> i32 {
    let target = "adamant_loco_layout";
    host_call(msg, msg_cap, || {
        let l = run::loco_layout(target, len, world, group_len, bits)?;
        let s = run::error_storage(target, error_storage)?;
        if out.is_null() {
            return Err(Fail::invalid(format!("{target}: `out` is null")));
        }
        let vals = [l.chunk_len(), l.compress_len(), l.error_len(s)];
        // SAFETY: three writable usize (caller's contract).
        unsafe { core::ptr::copy_nonoverlapping(vals.as_ptr(), out, 3) };
        Ok(())
    })
}

/// LoCo compression of `len` gradient elements over `world` ranks, one hop
/// (`adamant_core::loco::compress`): codes into `packed` (`packed_len` bytes), the error
/// update into `err` in place (`err_len` f32 or bytes, by `error_storage`).
///
/// # Safety
/// Each pointer holds its stated number of elements.
#[no_mangle]
pub unsafe extern "C" fn adamant_host_loco_compress(
    grad: *const c_void,
    grad_dtype: i32,
    len: usize,
    err: *mut c_void,
    error_storage: i64,
    err_len: usize,
    packed: *mut u8,
    packed_len: usize,
    count: i64,
    world: i64,
    group_len: i64,
    bits: i64,
    err_beta: f64,
    reset_every: u64,
    msg: *mut c_char,
    msg_cap: usize,
) -> i32 {
    let target = "adamant_loco_compress";
    host_call(msg, msg_cap, || {
        let storage = run::error_storage(target, error_storage)?;
        let bits = run::bits_from(target, bits)?;
        let group_len = run::positive(target, "group_len", group_len)?;
        let config = LocoConfig {
            err_beta,
            group_len,
            bits,
            error_storage: storage,
            reset_every,
        };
        let err_dtype = if storage == ErrorStorage::F32 {
            dtype::F32
        } else {
            dtype::U8
        };
        // SAFETY: the caller's contract.
        unsafe {
            run::loco_compress(
                target,
                None,
                t("grad", grad, grad_dtype, len),
                t("err", err, err_dtype, err_len),
                bytes("packed", packed, packed_len),
                count_of(target, count)?,
                config,
                world,
            )
        }
    })
}

/// LoCo's final reduction on one rank, one hop (`adamant_core::loco::decompress_reduce`):
/// `received` (`received_len` bytes: `world` chunks in rank order) into `out` (`shard_len`
/// f32), `out[i] = (fold_r deQ_r[i]) / world`.
///
/// # Safety
/// Each pointer holds its stated number of elements.
#[no_mangle]
pub unsafe extern "C" fn adamant_host_loco_decompress_reduce(
    received: *const u8,
    received_len: usize,
    out: *mut f32,
    shard_len: usize,
    world: i64,
    group_len: i64,
    bits: i64,
    msg: *mut c_char,
    msg_cap: usize,
) -> i32 {
    host_call(msg, msg_cap, || {
        // SAFETY: the caller's contract.
        unsafe {
            run::loco_decompress_reduce(
                "adamant_loco_decompress_reduce",
                bytes("received", received, received_len),
                f32s("out", out, shard_len),
                world,
                group_len,
                bits,
            )
        }
    })
}
