//! The steps behind both entry points (XLA handlers and host arrays): checks on dtypes,
//! lengths, alignment and overlap, the plan from core, then core's slice kernels with the
//! hardware square root. One function per rule serves JAX and `adamant.numpy`, so the two
//! give the same bits by construction.

use super::api::dtype;
use super::frame::Fail;
use adamant_core::clip::{AdaGc, AdaGcConfig, AdaGcMode};
use adamant_core::feedback::{ErrorBuf, ErrorStorage};
use adamant_core::loco::{self, Loco, LocoConfig, LocoLayout};
use adamant_core::quant::Bits;
use adamant_core::reduce;
use adamant_core::rules::adam::adam_slice;
use adamant_core::rules::adam_mini::{
    adam_mini_slice, apply_tensor, block_update, grad_sq_partials, Path,
};
use adamant_core::rules::lion::lion_slice;
use adamant_core::rules::sgd::sgd_slice;
use adamant_core::scalars::Sqrt;
use adamant_core::step::GradPrep;
use adamant_core::{bf16, f16, Adam, AdamConfig, Begin, Lion, LionConfig, Sgd, SgdConfig};
use adamant_core::{AdamMini, AdamMiniConfig, BlockLayout, Segment};
use adamant_core::{Plan, StepError, StepOptions};
use core::ffi::c_void;

/// `f32::sqrt` (IEEE, correctly rounded, vectorizes; same bits as core's `LibmSqrt`).
#[derive(Clone, Copy, Debug, Default)]
pub struct HwSqrt;

impl Sqrt for HwSqrt {
    #[inline(always)]
    fn sqrt(x: f32) -> f32 {
        x.sqrt()
    }
}

/// A flat tensor: address, XLA dtype code, element count, and its name for messages.
#[derive(Clone, Copy, Debug)]
pub struct Tensor {
    /// Argument name.
    pub name: &'static str,
    /// `XLA_FFI_DataType` code (f32 = 11, bf16 = 16, f16 = 10).
    pub dtype: i32,
    /// First element.
    pub data: *mut c_void,
    /// Element count.
    pub len: usize,
}

const PARAM_DTYPES: &[i32] = &[dtype::F32, dtype::BF16, dtype::F16];
const STATE_DTYPES: &[i32] = &[dtype::F32, dtype::BF16];

fn elem_size(d: i32) -> usize {
    match d {
        dtype::F32 => 4,
        dtype::U8 => 1,
        _ => 2,
    }
}

impl Tensor {
    fn bytes(&self) -> usize {
        self.len * elem_size(self.dtype)
    }

    /// Check dtype membership, length, non-null and alignment.
    pub fn check(&self, target: &str, allowed: &[i32], len: usize) -> Result<(), Fail> {
        if !allowed.contains(&self.dtype) {
            let names: Vec<&str> = allowed.iter().map(|&d| dtype::name(d)).collect();
            return Err(Fail::invalid(format!(
                "{target}: `{}` has dtype {}; accepted: {}",
                self.name,
                dtype::name(self.dtype),
                names.join(", ")
            )));
        }
        if self.len != len {
            return Err(Fail::invalid(format!(
                "{target}: `{}` has {} elements, expected {len} (the length of `param`)",
                self.name, self.len
            )));
        }
        if len > 0 && self.data.is_null() {
            return Err(Fail::invalid(format!("{target}: `{}` is null", self.name)));
        }
        if (self.data as usize) % elem_size(self.dtype) != 0 {
            return Err(Fail::invalid(format!(
                "{target}: `{}` is not aligned to its element size",
                self.name
            )));
        }
        Ok(())
    }

    fn overlaps(&self, other: &Tensor) -> bool {
        let (a, b) = (self.data as usize, other.data as usize);
        self.bytes() > 0 && other.bytes() > 0 && a < b + other.bytes() && b < a + self.bytes()
    }
}

/// Buffers written by a step must not overlap each other or any input.
pub fn check_disjoint(target: &str, written: &[Tensor], read: &[Tensor]) -> Result<(), Fail> {
    for (i, w) in written.iter().enumerate() {
        for o in written[i + 1..].iter().chain(read) {
            if w.overlaps(o) {
                return Err(Fail::invalid(format!(
                    "{target}: `{}` overlaps `{}`",
                    w.name, o.name
                )));
            }
        }
    }
    Ok(())
}

fn config_fail(target: &str, e: impl core::fmt::Display) -> Fail {
    Fail::invalid(format!("{target}: invalid hyper-parameter: {e}"))
}

fn step_fail(target: &str, e: impl core::fmt::Display) -> Fail {
    Fail::invalid(format!("{target}: {e}"))
}

fn skip_fail(target: &str, r: adamant_core::SkipReason) -> Fail {
    // No skip options are passed, so this is unreachable in practice; report it anyway.
    Fail::invalid(format!("{target}: step skipped ({r:?})"))
}

/// `&mut [T]` over a checked tensor.
///
/// # Safety
/// `t` passed [`Tensor::check`] for `T`'s dtype and is not aliased for the returned lifetime.
pub(crate) unsafe fn slice_mut<'a, T>(t: &Tensor) -> &'a mut [T] {
    if t.len == 0 {
        return &mut [];
    }
    // SAFETY: non-null, aligned, `len` elements of `T`, exclusive (caller's contract).
    unsafe { core::slice::from_raw_parts_mut(t.data as *mut T, t.len) }
}

/// `&[T]` over a checked tensor.
///
/// # Safety
/// As [`slice_mut`], but shared.
pub(crate) unsafe fn slice<'a, T>(t: &Tensor) -> &'a [T] {
    if t.len == 0 {
        return &[];
    }
    // SAFETY: non-null, aligned, `len` elements of `T`, not written while borrowed.
    unsafe { core::slice::from_raw_parts(t.data as *const T, t.len) }
}

/// Run `$body` with `$T` bound to the element type of XLA dtype `$d`, one of the listed
/// `code => type` pairs; another code fails as an unsupported `$what` (never reached after
/// [`Tensor::check`]).
macro_rules! with_dtype {
    ($d:expr, $T:ident, $what:literal, [$($code:path => $ty:ty),+], $body:block) => {
        match $d {
            $($code => {
                type $T = $ty;
                $body
            })+
            other => Err(Fail::invalid(format!("unsupported {} {other}", $what))),
        }
    };
}

/// [`with_dtype!`] over the parameter and gradient dtypes (f32, bf16, f16).
macro_rules! with_float {
    ($d:expr, $T:ident, $body:block) => {
        with_dtype!(
            $d,
            $T,
            "dtype",
            [dtype::F32 => f32, dtype::BF16 => bf16, dtype::F16 => f16],
            $body
        )
    };
}

/// [`with_dtype!`] over the state dtypes (f32, bf16).
macro_rules! with_state {
    ($d:expr, $T:ident, $body:block) => {
        with_dtype!($d, $T, "state dtype", [dtype::F32 => f32, dtype::BF16 => bf16], $body)
    };
}

/// Run `$body` with `$P`, `$G` bound to the element types of float dtypes `$p`, `$g` and
/// `$S` to that of state dtype `$s` (the element types of a rule's kernel).
macro_rules! with_rule_types {
    ($p:expr, $g:expr, $s:expr, |$P:ident, $G:ident, $S:ident| $body:block) => {
        with_float!($p, $P, {
            with_float!($g, $G, { with_state!($s, $S, $body) })
        })
    };
}

/// Step options for a step at `lr` whose gradient is multiplied by `clip_coef` inside the
/// rule's pass (`1` changes no bit; core validates it finite and `>= 0`).
pub fn step_options(lr: f64, clip_coef: f32) -> StepOptions {
    let mut o = StepOptions::new(lr);
    if clip_coef != 1.0 {
        o.clip_coef = Some(clip_coef);
    }
    o
}

/// `clip_coef` must be finite and `>= 0` (core's check, with the argument's name).
pub fn check_clip(target: &str, clip_coef: f32) -> Result<(), Fail> {
    if !(clip_coef.is_finite() && clip_coef >= 0.0) {
        return Err(Fail::invalid(format!(
            "{target}: `clip_coef` is {clip_coef}; it must be finite and >= 0"
        )));
    }
    Ok(())
}

/// The 1-based step number for optax's `count` (steps applied so far).
pub fn step_from_count(target: &str, count: i64) -> Result<u64, Fail> {
    if count < 0 {
        return Err(Fail::invalid(format!(
            "{target}: `count` is {count}; it must be >= 0"
        )));
    }
    Ok(count as u64)
}

/// The checks every in-place rule starts with: `clip_coef`, then `param` and `grad`
/// (f32/bf16/f16, both of `param`'s length). Returns that length.
fn check_param_grad(
    target: &str,
    clip_coef: f32,
    param: &Tensor,
    grad: &Tensor,
) -> Result<usize, Fail> {
    check_clip(target, clip_coef)?;
    let n = param.len;
    param.check(target, PARAM_DTYPES, n)?;
    grad.check(target, PARAM_DTYPES, n)?;
    Ok(n)
}

/// The plan from core's `begin` (its errors and a skip as failures naming `target`).
fn plan_of<K>(target: &str, begun: Result<Begin<K>, StepError>) -> Result<Plan<K>, Fail> {
    match begun.map_err(|e| step_fail(target, e))? {
        Begin::Apply(p) => Ok(p),
        Begin::Skip(r) => Err(skip_fail(target, r)),
    }
}

/// The plan of a `$Opt` built from `$config` with `$count` steps applied, for a step at `$lr`
/// whose gradient is multiplied by `$clip_coef` (every failure names `$target`).
macro_rules! plan_step {
    ($target:expr, $Opt:ident, $config:expr, $count:expr, $lr:expr, $clip_coef:expr) => {{
        let mut opt = $Opt::new($config).map_err(|e| config_fail($target, e))?;
        opt.state.step = $count;
        plan_of(
            $target,
            opt.begin::<f32, _>(&step_options($lr, $clip_coef), []),
        )
    }};
}

/// `x` (f32/bf16/f16) and its per-tile results `partials` (f32, one per 4096 elements), disjoint.
fn check_partials(target: &str, x: &Tensor, partials: &Tensor) -> Result<(), Fail> {
    x.check(target, PARAM_DTYPES, x.len)?;
    partials.check(target, &[dtype::F32], reduce::tile_count(x.len))?;
    check_disjoint(target, &[*partials], &[*x])
}

/// Copy each `(source, destination)` pair whose addresses differ: an XLA result that is not
/// aliased to its input starts as a copy of it, then the step runs in place on the result.
///
/// # Safety
/// Both tensors of each pair hold `len` elements of the same dtype.
unsafe fn copy_in(copies: &[(Tensor, Tensor)]) {
    for (src, dst) in copies {
        if src.data != dst.data && src.bytes() > 0 {
            // SAFETY: caller's contract; `copy` tolerates overlap.
            unsafe { core::ptr::copy(src.data as *const u8, dst.data as *mut u8, src.bytes()) };
        }
    }
}

/// Adam/AdamW over one tensor, in place: checks, plan, `copies`, kernel. Nothing is
/// written on error.
///
/// # Safety
/// Each tensor's `data` must point to `len` elements of its dtype, valid for the call.
#[allow(clippy::too_many_arguments)]
pub unsafe fn adam(
    target: &str,
    copies: &[(Tensor, Tensor)],
    param: Tensor,
    grad: Tensor,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
    lr: f64,
    count: u64,
    clip_coef: f32,
    config: AdamConfig,
) -> Result<(), Fail> {
    let _ieee = super::fpenv::IeeeGuard::new();
    let n = check_param_grad(target, clip_coef, &param, &grad)?;
    exp_avg.check(target, STATE_DTYPES, n)?;
    exp_avg_sq.check(target, &[exp_avg.dtype], n)?;
    check_disjoint(target, &[param, exp_avg, exp_avg_sq], &[grad])?;
    let plan = plan_step!(target, Adam, config, count, lr, clip_coef)?;
    // SAFETY: the caller's contract covers every tensor in `copies`.
    unsafe { copy_in(copies) };
    with_rule_types!(param.dtype, grad.dtype, exp_avg.dtype, |P, G, S| {
        // SAFETY: every tensor was checked (dtype, length, alignment) and the written ones
        // are disjoint from each other and from `grad`.
        unsafe {
            adam_slice::<P, G, S, HwSqrt>(
                slice_mut(&param),
                slice(&grad),
                slice_mut(&exp_avg),
                slice_mut(&exp_avg_sq),
                &plan,
            );
        }
        Ok(())
    })
}

/// Lion over one tensor, in place.
///
/// # Safety
/// As [`adam`].
#[allow(clippy::too_many_arguments)]
pub unsafe fn lion(
    target: &str,
    copies: &[(Tensor, Tensor)],
    param: Tensor,
    grad: Tensor,
    exp_avg: Tensor,
    lr: f64,
    count: u64,
    clip_coef: f32,
    config: LionConfig,
) -> Result<(), Fail> {
    let _ieee = super::fpenv::IeeeGuard::new();
    let n = check_param_grad(target, clip_coef, &param, &grad)?;
    exp_avg.check(target, STATE_DTYPES, n)?;
    check_disjoint(target, &[param, exp_avg], &[grad])?;
    let plan = plan_step!(target, Lion, config, count, lr, clip_coef)?;
    // SAFETY: the caller's contract covers every tensor in `copies`.
    unsafe { copy_in(copies) };
    with_rule_types!(param.dtype, grad.dtype, exp_avg.dtype, |P, G, S| {
        // SAFETY: checked and disjoint, as in `adam`.
        unsafe {
            lion_slice::<P, G, S>(slice_mut(&param), slice(&grad), slice_mut(&exp_avg), &plan);
        }
        Ok(())
    })
}

/// SGD over one tensor, in place. Without momentum `momentum_buffer` must be empty.
///
/// # Safety
/// As [`adam`].
#[allow(clippy::too_many_arguments)]
pub unsafe fn sgd(
    target: &str,
    copies: &[(Tensor, Tensor)],
    param: Tensor,
    grad: Tensor,
    momentum_buffer: Tensor,
    lr: f64,
    count: u64,
    clip_coef: f32,
    config: SgdConfig,
) -> Result<(), Fail> {
    let _ieee = super::fpenv::IeeeGuard::new();
    let n = check_param_grad(target, clip_coef, &param, &grad)?;
    let buf_len = if config.has_momentum() { n } else { 0 };
    momentum_buffer.check(target, STATE_DTYPES, buf_len)?;
    check_disjoint(target, &[param, momentum_buffer], &[grad])?;
    let plan = plan_step!(target, Sgd, config, count, lr, clip_coef)?;
    // SAFETY: the caller's contract covers every tensor in `copies`.
    unsafe { copy_in(copies) };
    with_rule_types!(param.dtype, grad.dtype, momentum_buffer.dtype, |P, G, S| {
        // SAFETY: checked and disjoint, as in `adam`.
        unsafe {
            sgd_slice::<P, G, S>(
                slice_mut(&param),
                slice(&grad),
                slice_mut(&momentum_buffer),
                &plan,
            );
        }
        Ok(())
    })
}

/// Phase one of a sharded sum of squares: one canonical tile result per 4096 elements of `x`
/// into `partials` (f32, `ceil(len/4096)` elements).
///
/// # Safety
/// As [`adam`].
pub unsafe fn sum_sq_partials(target: &str, x: Tensor, partials: Tensor) -> Result<(), Fail> {
    let _ieee = super::fpenv::IeeeGuard::new();
    check_partials(target, &x, &partials)?;
    with_float!(x.dtype, T, {
        // SAFETY: both checked and disjoint.
        let (xs, out) = unsafe { (slice::<T>(&x), slice_mut::<f32>(&partials)) };
        reduce::partials_by(xs, |v| v * v, out).map_err(|e| step_fail(target, e))
    })
}

/// Phase two: the canonical combine of tile results gathered in global tile order, into
/// `out` (one f32).
///
/// # Safety
/// As [`adam`].
pub unsafe fn combine(target: &str, partials: Tensor, out: Tensor) -> Result<(), Fail> {
    let _ieee = super::fpenv::IeeeGuard::new();
    partials.check(target, &[dtype::F32], partials.len)?;
    out.check(target, &[dtype::F32], 1)?;
    check_disjoint(target, &[out], &[partials])?;
    // SAFETY: both checked and disjoint.
    let (p, o) = unsafe { (slice::<f32>(&partials), slice_mut::<f32>(&out)) };
    o[0] = reduce::combine(p);
    Ok(())
}

// ------------------------------------------------------------------------------ Adam-mini

/// Block layout codes shared by the XLA attributes and the host entry points.
pub mod layout_kind {
    /// [`adamant_core::BlockLayout::Element`]: per-element AdamW.
    pub const ELEMENT: i64 = 0;
    /// [`adamant_core::BlockLayout::Rows`] with `block_len = row_len`.
    pub const ROWS: i64 = 1;
    /// [`adamant_core::BlockLayout::Heads`] with `block_len = head_numel`.
    pub const HEADS: i64 = 2;
    /// [`adamant_core::BlockLayout::Tensor`]: one block.
    pub const TENSOR: i64 = 3;
    /// [`adamant_core::BlockLayout::Segments`] from `(len, block_len)` pairs (`block_len` 0:
    /// an element segment).
    pub const SEGMENTS: i64 = 4;
}

/// Segments from flat `(len, block_len)` pairs; `block_len == 0` is an element segment.
pub fn segments_from(target: &str, pairs: &[i64]) -> Result<Vec<Segment>, Fail> {
    if pairs.len() % 2 != 0 || pairs.is_empty() {
        return Err(Fail::invalid(format!(
            "{target}: `segments` must hold (len, block_len) pairs, got {} values",
            pairs.len()
        )));
    }
    let mut out = Vec::with_capacity(pairs.len() / 2);
    for p in pairs.chunks_exact(2) {
        if p[0] < 0 || p[1] < 0 {
            return Err(Fail::invalid(format!(
                "{target}: `segments` has a negative length ({}, {})",
                p[0], p[1]
            )));
        }
        let (len, block_len) = (p[0] as usize, p[1] as usize);
        out.push(if block_len == 0 {
            Segment::Element { len }
        } else {
            Segment::Blocks { len, block_len }
        });
    }
    Ok(out)
}

/// The block layout for a kind code and block length (`segments` for [`layout_kind::SEGMENTS`]).
pub fn layout_from<'a>(
    target: &str,
    kind: i64,
    block_len: i64,
    segments: &'a [Segment],
) -> Result<BlockLayout<'a>, Fail> {
    let bl = || {
        if block_len <= 0 {
            Err(Fail::invalid(format!(
                "{target}: `block_len` is {block_len}; rows and heads layouts need > 0"
            )))
        } else {
            Ok(block_len as usize)
        }
    };
    Ok(match kind {
        layout_kind::ELEMENT => BlockLayout::Element,
        layout_kind::ROWS => BlockLayout::Rows { row_len: bl()? },
        layout_kind::HEADS => BlockLayout::Heads { head_numel: bl()? },
        layout_kind::TENSOR => BlockLayout::Tensor,
        layout_kind::SEGMENTS => BlockLayout::Segments(segments),
        other => {
            return Err(Fail::invalid(format!(
                "{target}: `layout` is {other}; accepted: 0 element, 1 rows, 2 heads, \
                 3 tensor, 4 segments"
            )))
        }
    })
}

/// Adam-mini's configuration for a step whose `lr` comes with the call (the plan takes it
/// from [`step_options`]).
pub fn mini_config(beta1: f64, beta2: f64, eps: f64, weight_decay: f64) -> AdamMiniConfig {
    AdamMiniConfig {
        lr: 0.0,
        beta1,
        beta2,
        eps,
        weight_decay,
        stochastic_rounding_seed: None,
    }
}

fn layout_fail(target: &str, e: impl core::fmt::Display) -> Fail {
    Fail::invalid(format!("{target}: block layout: {e}"))
}

/// Adam-mini over one whole tensor held locally, in place (core's
/// `adamant_core::rules::adam_mini::apply_tensor`, fast path): every block's canonical sum of
/// the prepared squares, its second moment, then `adam_mini_elem` (element blocks:
/// `adam_elem`). `exp_avg_sq` holds `layout.state_len(numel)` entries.
///
/// # Safety
/// As [`adam`].
#[allow(clippy::too_many_arguments)]
pub unsafe fn adam_mini(
    target: &str,
    copies: &[(Tensor, Tensor)],
    param: Tensor,
    grad: Tensor,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
    layout: &BlockLayout<'_>,
    lr: f64,
    count: u64,
    clip_coef: f32,
    config: AdamMiniConfig,
) -> Result<(), Fail> {
    let _ieee = super::fpenv::IeeeGuard::new();
    let n = check_param_grad(target, clip_coef, &param, &grad)?;
    exp_avg.check(target, STATE_DTYPES, n)?;
    let state_len = layout.state_len(n).map_err(|e| layout_fail(target, e))?;
    if exp_avg_sq.len != state_len {
        return Err(Fail::invalid(format!(
            "{target}: `exp_avg_sq` has {} elements, expected {state_len} (one per block of \
             the layout)",
            exp_avg_sq.len
        )));
    }
    exp_avg_sq.check(target, &[exp_avg.dtype], state_len)?;
    check_disjoint(target, &[param, exp_avg, exp_avg_sq], &[grad])?;
    let plan = plan_step!(target, AdamMini, config, count, lr, clip_coef)?;
    // SAFETY: the caller's contract covers every tensor in `copies`.
    unsafe { copy_in(copies) };
    with_rule_types!(param.dtype, grad.dtype, exp_avg.dtype, |P, G, S| {
        // SAFETY: checked (dtype, length, alignment) and disjoint, as in `adam`.
        unsafe {
            apply_tensor::<P, G, S>(
                slice_mut(&param),
                slice(&grad),
                slice_mut(&exp_avg),
                slice_mut(&exp_avg_sq),
                layout,
                true,
                &plan,
                Path::Fast,
            )
        }
        .map_err(|e| layout_fail(target, e))
    })
}

/// Phase one of an Adam-mini block split over shards: per-tile (4096) canonical sums of the
/// prepared squares `(g*clip_coef)^2` of this shard's piece of the block
/// (`adamant_core::rules::adam_mini::grad_sq_partials`).
///
/// # Safety
/// As [`adam`].
pub unsafe fn adam_mini_partials(
    target: &str,
    grad: Tensor,
    clip_coef: f32,
    partials: Tensor,
) -> Result<(), Fail> {
    let _ieee = super::fpenv::IeeeGuard::new();
    check_clip(target, clip_coef)?;
    check_partials(target, &grad, &partials)?;
    let prep = GradPrep {
        grad_scale: 1.0,
        clip_coef,
    };
    with_float!(grad.dtype, G, {
        // SAFETY: both checked and disjoint.
        let (g, out) = unsafe { (slice::<G>(&grad), slice_mut::<f32>(&partials)) };
        grad_sq_partials(g, prep, out).map_err(|e| step_fail(target, e))
    })
}

/// Phases two and three of an Adam-mini block split over shards, on one shard's piece:
/// `exp_avg_sq` (one entry, replicated on every shard) is updated from the block's combined
/// `sum_sq` over its `block_numel` elements (`block_update`), then `adam_mini_elem` runs on
/// the piece with the block's scale (`adam_mini_slice`). Every shard computes the same entry.
///
/// # Safety
/// As [`adam`].
#[allow(clippy::too_many_arguments)]
pub unsafe fn adam_mini_block(
    target: &str,
    copies: &[(Tensor, Tensor)],
    param: Tensor,
    grad: Tensor,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
    sum_sq: f32,
    block_numel: u64,
    lr: f64,
    count: u64,
    clip_coef: f32,
    config: AdamMiniConfig,
) -> Result<(), Fail> {
    let _ieee = super::fpenv::IeeeGuard::new();
    let n = check_param_grad(target, clip_coef, &param, &grad)?;
    exp_avg.check(target, STATE_DTYPES, n)?;
    exp_avg_sq.check(target, &[exp_avg.dtype], 1).map_err(|_| {
        Fail::invalid(format!(
            "{target}: `exp_avg_sq` must be one element of the dtype of `exp_avg` (the \
             block's second moment), got {} of {}",
            exp_avg_sq.len,
            dtype::name(exp_avg_sq.dtype)
        ))
    })?;
    if block_numel == 0 || (block_numel as u128) < n as u128 {
        return Err(Fail::invalid(format!(
            "{target}: `block_numel` is {block_numel}; it must be >= the piece's {n} elements \
             and > 0"
        )));
    }
    check_disjoint(target, &[param, exp_avg, exp_avg_sq], &[grad])?;
    let plan = plan_step!(target, AdamMini, config, count, lr, clip_coef)?;
    // SAFETY: the caller's contract covers every tensor in `copies`.
    unsafe { copy_in(copies) };
    with_rule_types!(param.dtype, grad.dtype, exp_avg.dtype, |P, G, S| {
        // SAFETY: checked and disjoint, as in `adam`.
        unsafe {
            let v = &mut slice_mut::<S>(&exp_avg_sq)[0];
            let scale = block_update(v, sum_sq, block_numel, &plan.scalars);
            adam_mini_slice::<P, G, S>(
                slice_mut(&param),
                slice(&grad),
                slice_mut(&exp_avg),
                scale,
                &plan,
            );
        }
        Ok(())
    })
}

// ------------------------------------------------------------------------------ AdaGC

/// AdaGC for one step (plan and commit together: adamant's JAX and numpy steps never skip):
/// from the per-tensor sums of squares `tensor_sums` (f32, tensor order), write each tensor's
/// clip coefficient into `coefs` and the global norm into `global_norm`, and advance `gamma`
/// (`adamant_core::clip::AdaGc::{plan, commit}`; a non-finite norm gives coefficients 1 and
/// leaves `gamma` unchanged). `count` is the number of steps already applied.
///
/// # Safety
/// As [`adam`]; `gamma_copy` is `(gamma_in, gamma)` when XLA did not alias them.
#[allow(clippy::too_many_arguments)]
pub unsafe fn adagc(
    target: &str,
    gamma_copy: Option<(Tensor, Tensor)>,
    tensor_sums: Tensor,
    gamma: Tensor,
    coefs: Tensor,
    global_norm: Tensor,
    count: u64,
    config: AdaGcConfig,
) -> Result<(), Fail> {
    let _ieee = super::fpenv::IeeeGuard::new();
    let n = tensor_sums.len;
    let mut clip = AdaGc::new(config).map_err(|e| config_fail(target, e))?;
    clip.state.step = count;
    tensor_sums.check(target, &[dtype::F32], n)?;
    let glen = clip.gamma_len(n);
    if gamma.len != glen {
        return Err(Fail::invalid(format!(
            "{target}: `gamma` has {} elements, expected {glen} ({})",
            gamma.len,
            if glen == n && config.mode == AdaGcMode::PerTensor {
                "one per tensor"
            } else {
                "one in global mode"
            }
        )));
    }
    gamma.check(target, &[dtype::F32], glen)?;
    if let Some((src, _)) = gamma_copy {
        src.check(target, &[dtype::F32], glen)?;
    }
    coefs.check(target, &[dtype::F32], n)?;
    global_norm.check(target, &[dtype::F32], 1)?;
    let mut read = vec![tensor_sums];
    read.extend(gamma_copy.map(|c| c.0));
    check_disjoint(target, &[coefs, gamma, global_norm], &read)?;
    // SAFETY: the caller's contract covers the copy.
    unsafe { copy_in(gamma_copy.as_slice()) };
    // SAFETY: every tensor checked and disjoint.
    let (sums, g, c, norm_out) = unsafe {
        (
            slice::<f32>(&tensor_sums),
            slice_mut::<f32>(&gamma),
            slice_mut::<f32>(&coefs),
            slice_mut::<f32>(&global_norm),
        )
    };
    let plan = clip.plan(sums, g, c).map_err(|e| step_fail(target, e))?;
    clip.commit(sums, g, &plan)
        .map_err(|e| step_fail(target, e))?;
    norm_out[0] = plan.global_norm;
    Ok(())
}

// ------------------------------------------------------------------------------ LoCo

/// `v` as a count that must be `> 0`; the failure names `name`.
pub fn positive(target: &str, name: &str, v: i64) -> Result<usize, Fail> {
    if v <= 0 {
        return Err(Fail::invalid(format!(
            "{target}: `{name}` is {v}; it must be > 0"
        )));
    }
    Ok(v as usize)
}

/// A quantizer width from its code: 4 or 8 bits.
pub fn bits_from(target: &str, bits: i64) -> Result<Bits, Fail> {
    u32::try_from(bits)
        .ok()
        .and_then(Bits::from_u32)
        .ok_or_else(|| Fail::invalid(format!("{target}: `bits` is {bits}; accepted: 4, 8")))
}

/// A one-hop LoCo layout over `world` ranks.
pub fn loco_layout(
    target: &str,
    len: usize,
    world: i64,
    group_len: i64,
    bits: i64,
) -> Result<LocoLayout, Fail> {
    let bits = bits_from(target, bits)?;
    let world_n = positive(target, "world", world)?;
    let group_len = positive(target, "group_len", group_len)?;
    LocoLayout::new(len, world_n, 1, group_len, bits).map_err(|e| {
        Fail::invalid(format!(
            "{target}: `grad` of {len} elements cannot be cut into `world` = {world} shards \
             ({e})"
        ))
    })
}

/// LoCo's error storage from a code: 0 f32, 1 8-bit.
pub fn error_storage(target: &str, code: i64) -> Result<ErrorStorage, Fail> {
    match code {
        0 => Ok(ErrorStorage::F32),
        1 => Ok(ErrorStorage::Int8),
        other => Err(Fail::invalid(format!(
            "{target}: `error_storage` is {other}; accepted: 0 (float32), 1 (int8)"
        ))),
    }
}

fn quant_fail(target: &str, e: impl core::fmt::Display) -> Fail {
    Fail::invalid(format!("{target}: {e}"))
}

/// LoCo compression of this rank's gradient (`adamant_core::loco::compress`, one hop): `x =
/// g + e`, 4/8-bit codes of each of the `world` shards into `packed` (chunk `c` goes to rank
/// `c`), LoCo's error update into `err` (f32: one per element; 8-bit: packed). `count` is
/// the number of steps already compressed (reset at steps `1, 1 + reset_every, ...`).
///
/// # Safety
/// As [`adam`]; `err_copy` is `(err_in, err)` when XLA did not alias them.
#[allow(clippy::too_many_arguments)]
pub unsafe fn loco_compress(
    target: &str,
    err_copy: Option<(Tensor, Tensor)>,
    grad: Tensor,
    err: Tensor,
    packed: Tensor,
    count: u64,
    config: LocoConfig,
    world: i64,
) -> Result<(), Fail> {
    let _ieee = super::fpenv::IeeeGuard::new();
    let mut loco = Loco::new(config).map_err(|e| config_fail(target, e))?;
    loco.state.step = count;
    let layout = loco_layout(
        target,
        grad.len,
        world,
        config.group_len as i64,
        config.bits.bits() as i64,
    )?;
    let plan = loco.begin().map_err(|e| config_fail(target, e))?;
    grad.check(target, PARAM_DTYPES, grad.len)?;
    let (err_dtype, err_len) = match config.error_storage {
        ErrorStorage::F32 => (dtype::F32, layout.error_len(ErrorStorage::F32)),
        ErrorStorage::Int8 => (dtype::U8, layout.error_len(ErrorStorage::Int8)),
    };
    let err_check = |t: &Tensor| {
        if t.dtype != err_dtype || t.len != err_len {
            return Err(Fail::invalid(format!(
                "{target}: `{}` must be {} with {err_len} elements for this layout and \
                 `error_storage`, got {} with {}",
                t.name,
                dtype::name(err_dtype),
                dtype::name(t.dtype),
                t.len
            )));
        }
        t.check(target, &[err_dtype], err_len)
    };
    err_check(&err)?;
    if let Some((src, _)) = err_copy {
        err_check(&src)?;
    }
    if packed.dtype != dtype::U8 || packed.len != layout.compress_len() {
        return Err(Fail::invalid(format!(
            "{target}: `packed` must be uint8 with {} bytes, got {} with {}",
            layout.compress_len(),
            dtype::name(packed.dtype),
            packed.len
        )));
    }
    packed.check(target, &[dtype::U8], layout.compress_len())?;
    let mut read = vec![grad];
    read.extend(err_copy.map(|c| c.0));
    check_disjoint(target, &[err, packed], &read)?;
    // SAFETY: the caller's contract covers the copy.
    unsafe { copy_in(err_copy.as_slice()) };
    with_float!(grad.dtype, G, {
        // SAFETY: every tensor checked and disjoint.
        unsafe {
            let e = match config.error_storage {
                ErrorStorage::F32 => ErrorBuf::F32(slice_mut::<f32>(&err)),
                ErrorStorage::Int8 => ErrorBuf::Int8(slice_mut::<u8>(&err)),
            };
            loco::compress::<G>(&plan, &layout, slice(&grad), e, slice_mut(&packed))
        }
        .map_err(|e| quant_fail(target, e))
    })
}

/// LoCo's final reduction on one rank (`adamant_core::loco::decompress_reduce`, one hop):
/// `received` holds the `world` chunks this rank was sent, in rank order; `out[i] =
/// (fold_r deQ_r[i]) / world` for the rank's shard.
///
/// # Safety
/// As [`adam`].
pub unsafe fn loco_decompress_reduce(
    target: &str,
    received: Tensor,
    out: Tensor,
    world: i64,
    group_len: i64,
    bits: i64,
) -> Result<(), Fail> {
    let _ieee = super::fpenv::IeeeGuard::new();
    let len = out
        .len
        .checked_mul(world.max(0) as usize)
        .ok_or_else(|| Fail::invalid(format!("{target}: `out` is too large")))?;
    let layout = loco_layout(target, len, world, group_len, bits)?;
    if received.dtype != dtype::U8 || received.len != layout.received_len() {
        return Err(Fail::invalid(format!(
            "{target}: `received` must be uint8 with {} bytes ({world} chunks of {}), got {} \
             with {}",
            layout.received_len(),
            layout.chunk_len(),
            dtype::name(received.dtype),
            received.len
        )));
    }
    received.check(target, &[dtype::U8], received.len)?;
    out.check(target, &[dtype::F32], out.len)?;
    check_disjoint(target, &[out], &[received])?;
    // SAFETY: both checked and disjoint.
    let (r, o) = unsafe { (slice::<u8>(&received), slice_mut::<f32>(&out)) };
    loco::decompress_reduce(&layout, r, o).map_err(|e| quant_fail(target, e))
}
