//! Adam-mini: `adamant_adam_mini_step[_multi]` over whole tensors with a block layout, and the
//! sharded phases `adamant_adam_mini_partials` → `adamant_reduce_combine` →
//! `adamant_adam_mini_block_step` for a block split over ranks. The rule is
//! `adamant_core::rules::adam_mini` (`block_second_moment`, `block_scale`, `adam_mini_elem`;
//! element blocks run `adam_elem`).

use crate::entry::{self, Tuple};
use crate::multi::{array_range, check_all, views, Raw, Spec};
use crate::options::{adamant_step_options, flag};
use crate::status::adamant_status;
use crate::tensor::{
    adamant_const_tensor, adamant_tensor, as_slice, as_slice_mut, Range, View, ANY_DTYPE,
};
use adamant_core::rules::adam_mini::{self as core_mini, AdamMiniScalars, Path};
use adamant_core::rules::{Begin, Plan};
use adamant_core::{bf16, f16, AdamMini, AdamMiniConfig, BlockLayout, Dtype, StepOptions};

/// Adam-mini hyper-parameters (the learning rate is per step, in `adamant_step_options`).
/// Start from `adamant_adam_mini_config_default()`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct adamant_adam_mini_config {
    /// First-moment decay, in `[0, 1)`.
    pub beta1: f64,
    /// Second-moment (per block) decay, in `[0, 1)`.
    pub beta2: f64,
    /// Added to `sqrt(exp_avg_sq) / sqrt(bias_correction2)`; finite, `> 0`.
    pub eps: f64,
    /// Decoupled weight decay, finite, `>= 0`, applied to tensors whose layout has
    /// `weight_decay = 1`.
    pub weight_decay: f64,
    /// Seed of stochastic rounding for bf16 parameters (used when `stochastic_rounding` is 1).
    pub stochastic_rounding_seed: u64,
    /// 1: round bf16 parameters stochastically; 0: nearest-even. Other values:
    /// `ADAMANT_STATUS_INVALID_ENUM`.
    pub stochastic_rounding: u32,
}

/// The official Adam-mini defaults: betas (0.9, 0.999), eps 1e-8, weight_decay 0.
#[no_mangle]
pub extern "C" fn adamant_adam_mini_config_default() -> adamant_adam_mini_config {
    let c = AdamMiniConfig::default();
    adamant_adam_mini_config {
        beta1: c.beta1,
        beta2: c.beta2,
        eps: c.eps,
        weight_decay: c.weight_decay,
        stochastic_rounding_seed: 0,
        stochastic_rounding: 0,
    }
}

impl adamant_adam_mini_config {
    pub(crate) fn to_core(self, lr: f64) -> Result<AdamMiniConfig, adamant_status> {
        let sr = flag(self.stochastic_rounding)?;
        Ok(AdamMiniConfig {
            lr,
            beta1: self.beta1,
            beta2: self.beta2,
            eps: self.eps,
            weight_decay: self.weight_decay,
            stochastic_rounding_seed: sr.then_some(self.stochastic_rounding_seed),
        })
    }
}

/// How a tensor is cut into blocks sharing one second moment. Crosses the ABI as the
/// `kind` field (`uint32_t`) of `adamant_block_layout`, checked on entry.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum adamant_block_kind {
    /// One block per element: per-element AdamW (biases). State length `numel`.
    Element = 0,
    /// Contiguous rows of `block_len` elements. State length `numel / block_len`.
    Rows = 1,
    /// Contiguous heads of `block_len` elements (`dim*dim/n_heads`). State `numel / block_len`.
    Heads = 2,
    /// One block for the whole tensor. State length 1 (0 for an empty tensor).
    Tensor = 3,
    /// Explicit consecutive segments (`segments`, `segment_count`) covering the tensor.
    Segments = 4,
}

/// One segment of an explicit layout: `len` elements cut into blocks of `block_len`
/// (`block_len` divides `len`), or per-element AdamW when `block_len` is 0.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct adamant_block_segment {
    /// Elements in the segment, `> 0`.
    pub len: usize,
    /// Elements per block, or 0 for per-element AdamW.
    pub block_len: usize,
}

/// A tensor's block layout and its weight-decay flag (the official code turns weight decay
/// off for norms and biases).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct adamant_block_layout {
    /// An `adamant_block_kind` value.
    pub kind: u32,
    /// Block length for `Rows`/`Heads` (`> 0`, divides the tensor length); ignored otherwise.
    pub block_len: usize,
    /// For `Segments`: `segment_count` segments (may be NULL when the count is 0); ignored
    /// otherwise.
    pub segments: *const adamant_block_segment,
    /// Number of segments.
    pub segment_count: usize,
    /// 1: apply `weight_decay` to this tensor; 0: not. Other values:
    /// `ADAMANT_STATUS_INVALID_ENUM`.
    pub weight_decay: u32,
}

/// A checked layout.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Layout<'a> {
    Plain(BlockLayout<'static>),
    Segments(&'a [adamant_block_segment]),
}

/// Check the enum values of a layout (not its lengths).
///
/// # Safety
/// `segments` points to `segment_count` readable segments for the call.
pub(crate) unsafe fn layout_from<'a>(
    l: &adamant_block_layout,
) -> Result<(Layout<'a>, bool), adamant_status> {
    let wd = flag(l.weight_decay)?;
    let layout = match l.kind {
        0 => Layout::Plain(BlockLayout::Element),
        1 => Layout::Plain(BlockLayout::Rows {
            row_len: l.block_len,
        }),
        2 => Layout::Plain(BlockLayout::Heads {
            head_numel: l.block_len,
        }),
        3 => Layout::Plain(BlockLayout::Tensor),
        4 => Layout::Segments(try_slice!(l.segments, l.segment_count)),
        _ => return Err(adamant_status::InvalidEnum),
    };
    Ok((layout, wd))
}

impl Layout<'_> {
    /// `exp_avg_sq` length for `numel` elements, or `LengthMismatch` when the blocks do not
    /// tile the tensor.
    pub(crate) fn state_len(&self, numel: usize) -> Result<usize, adamant_status> {
        match self {
            Layout::Plain(b) => Ok(b.state_len(numel)?),
            Layout::Segments(segs) => {
                let (mut covered, mut state) = (0usize, 0usize);
                for s in *segs {
                    if s.len == 0 || (s.block_len != 0 && s.len % s.block_len != 0) {
                        return Err(adamant_status::LengthMismatch);
                    }
                    covered = covered.saturating_add(s.len);
                    // block_len 0: per-element, one state entry per element.
                    state += s.len.checked_div(s.block_len).unwrap_or(s.len);
                }
                if covered != numel {
                    return Err(adamant_status::LengthMismatch);
                }
                Ok(state)
            }
        }
    }
}

/// The `exp_avg_sq` length of a tensor of `numel` elements under `layout`, into `*out_len`.
/// Blocks that do not tile the tensor (zero or non-dividing block length, segments that do
/// not cover it exactly) give `ADAMANT_STATUS_LENGTH_MISMATCH`.
///
/// # Safety
/// `layout` points to a valid struct (and its segments array); `out_len` to a writable
/// `size_t`.
#[no_mangle]
pub unsafe extern "C" fn adamant_adam_mini_state_len(
    layout: *const adamant_block_layout,
    numel: usize,
    out_len: *mut usize,
) -> adamant_status {
    ffi_boundary!({
        let l = try_ref!(layout);
        let out = try_out!(out_len);
        // SAFETY: the caller's contract above.
        let (l, _) = unsafe { layout_from(l) }?;
        let n = l.state_len(numel)?;
        // SAFETY: non-NULL, aligned (try_out!).
        unsafe { out.write(n) };
        Ok(())
    })
}

const SPECS: [Spec; 4] = entry::specs();

/// `exp_avg` has the parameter's length (`exp_avg_sq`'s is the layout's, checked later).
fn lens(v: &[View; 4]) -> Result<(), adamant_status> {
    entry::same_lens(&v[..3])?;
    entry::same_dtype(&v[2], &v[3])
}

/// The slices of checked views `[param, grad, exp_avg, exp_avg_sq]`.
///
/// # Safety
/// Every view passed the NULL/length/alignment checks, the written views overlap nothing
/// else in the call, and the dtypes are those of `P`, `G`, `S`.
unsafe fn slices<'a, P, G, S>(v: &[View; 4]) -> (&'a mut [P], &'a [G], &'a mut [S], &'a mut [S]) {
    // SAFETY: the caller's contract above.
    unsafe {
        (
            as_slice_mut::<P>(&v[0]),
            as_slice::<G>(&v[1]),
            as_slice_mut::<S>(&v[2]),
            as_slice_mut::<S>(&v[3]),
        )
    }
}

/// Bind `$P`, `$G`, `$S` to the element types of a parameter, gradient and state dtype.
macro_rules! with_types {
    ($p:expr, $g:expr, $s:expr, $P:ident, $G:ident, $S:ident => $body:expr) => {
        with_types!(@p $p, $g, $s, $P, $G, $S => $body)
    };
    (@p $p:expr, $g:expr, $s:expr, $P:ident, $G:ident, $S:ident => $body:expr) => {
        match $p {
            Dtype::F32 => { type $P = f32; with_types!(@g $g, $s, $G, $S => $body) }
            Dtype::Bf16 => { type $P = bf16; with_types!(@g $g, $s, $G, $S => $body) }
            Dtype::F16 => { type $P = f16; with_types!(@g $g, $s, $G, $S => $body) }
        }
    };
    (@g $g:expr, $s:expr, $G:ident, $S:ident => $body:expr) => {
        match $g {
            Dtype::F32 => { type $G = f32; with_types!(@s $s, $S => $body) }
            Dtype::Bf16 => { type $G = bf16; with_types!(@s $s, $S => $body) }
            Dtype::F16 => { type $G = f16; with_types!(@s $s, $S => $body) }
        }
    };
    (@s $s:expr, $S:ident => $body:expr) => {
        match $s {
            Dtype::F32 => { type $S = f32; $body }
            Dtype::Bf16 => { type $S = bf16; $body }
            Dtype::F16 => Err(adamant_status::UnsupportedDtype),
        }
    };
}

/// Run one tensor (views checked, layout checked against the lengths).
fn exec(
    plan: &Plan<AdamMiniScalars>,
    v: &[View; 4],
    layout: Layout<'_>,
    weight_decay: bool,
) -> Result<(), adamant_status> {
    with_types!(v[0].dtype, v[1].dtype, v[2].dtype, P, G, S => {
        // SAFETY: every view passed the NULL/length/alignment checks, the lengths match the
        // layout, written views overlap nothing else in the call, dtypes match the types.
        let (p, g, m, s) = unsafe { slices::<P, G, S>(v) };
        match layout {
            Layout::Plain(b) => {
                core_mini::apply_tensor(p, g, m, s, &b, weight_decay, plan, Path::Fast)?
            }
            Layout::Segments(segs) => {
                // A segment is a tensor of its own with its element offset carried into the
                // stochastic-rounding index: the bits of core's `BlockLayout::Segments`.
                let (mut off, mut st) = (0usize, 0usize);
                for seg in segs {
                    let (b, n) = if seg.block_len == 0 {
                        (BlockLayout::Element, seg.len)
                    } else {
                        (
                            BlockLayout::Heads {
                                head_numel: seg.block_len,
                            },
                            seg.len / seg.block_len,
                        )
                    };
                    let piece = Plan {
                        sr: plan.sr.map(|k| k.offset_by(off)),
                        ..*plan
                    };
                    let r = off..off + seg.len;
                    core_mini::apply_tensor(
                        &mut p[r.clone()],
                        &g[r.clone()],
                        &mut m[r],
                        &mut s[st..st + n],
                        &b,
                        weight_decay,
                        &piece,
                        Path::Fast,
                    )?;
                    off += seg.len;
                    st += n;
                }
            }
        }
        Ok(())
    })
}

/// # Safety
/// As the public entry points; `layouts(i)` are valid for the call.
unsafe fn step_any(
    config: *const adamant_adam_mini_config,
    options: *const adamant_step_options,
    step: u64,
    count: usize,
    raw: impl Fn(usize) -> [Raw; 4],
    layout: impl Fn(usize) -> *const adamant_block_layout,
    coefs: &[f32],
    arrays: &[Range],
    out_step: *mut u64,
) -> Result<(), adamant_status> {
    let config = *try_ref!(config);
    let options = *try_ref!(options);
    let out_step = try_out!(out_step);
    for i in 0..count {
        let _ = try_ref!(layout(i));
    }
    let opts: StepOptions = options.to_core()?;
    // SAFETY: checked non-NULL and aligned above; the caller's contract.
    let layout_at = |i: usize| unsafe { layout_from(&*layout(i)) };
    for i in 0..count {
        layout_at(i)?;
    }
    let cfg = config.to_core(opts.lr)?;
    cfg.validate()?;
    opts.validate()?;
    let extra = crate::multi::extra_ranges(arrays, out_step);
    // The layout fixes `exp_avg_sq`'s length: checked after every view, before the plan.
    let state_len = |i: usize, v: &[View; 4]| {
        if layout_at(i)?.0.state_len(v[0].len)? != v[3].len {
            return Err(adamant_status::LengthMismatch);
        }
        Ok(())
    };
    // SAFETY: forwarded caller contract; `out_step` checked above and in `extra`.
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
            state_len,
            || {
                let mut mini = AdamMini::new(cfg)?;
                mini.state.step = step;
                mini.begin(&opts, crate::run::no_grads())
            },
            |i, plan, v| {
                let (l, wd) = layout_at(i)?;
                exec(plan, v, l, wd)
            },
            out_step,
        )
    }
}

/// One Adam-mini step over one tensor, cut into blocks by `layout`
/// (`adamant_core::rules::adam_mini::apply_tensor`). Per block `b` of `n_b` elements, with
/// `g` the gradient after the loss scale and clip coefficient of `options`, in f32:
/// `sum_b` = canonical sum of `g*g` over the block; `mean = sum_b / n_b`;
/// `exp_avg_sq[b] = beta2*exp_avg_sq[b] + (1-beta2)*mean`;
/// `scale = (1/bias_correction1) / (sqrt(exp_avg_sq[b])/sqrt(bias_correction2) + eps)`; then per
/// element `p = p*(1 - lr*wd)`, `exp_avg = beta1*exp_avg + (1-beta1)*g`,
/// `p = p - (exp_avg*scale)*lr`. Element blocks run the AdamW element rule.
///
/// `param`, `grad` may be f32, bf16 or f16; `exp_avg` (the parameter's length) and
/// `exp_avg_sq` (`adamant_adam_mini_state_len`) are f32 or bf16 (the same), starting at zero.
/// `step` is the steps applied so far; on success `*out_step = step + 1`. On any nonzero
/// status nothing was written.
///
/// # Safety
/// `config`, `options`, `layout` point to valid structs; every view's `data` points to `len`
/// elements of its dtype, valid for the call and not accessed concurrently; `out_step` points
/// to a writable `uint64_t`.
#[no_mangle]
pub unsafe extern "C" fn adamant_adam_mini_step(
    config: *const adamant_adam_mini_config,
    options: *const adamant_step_options,
    step: u64,
    layout: *const adamant_block_layout,
    param: adamant_tensor,
    grad: adamant_const_tensor,
    exp_avg: adamant_tensor,
    exp_avg_sq: adamant_tensor,
    out_step: *mut u64,
) -> adamant_status {
    ffi_boundary!({
        let raw = |_| [param.into(), grad.into(), exp_avg.into(), exp_avg_sq.into()];
        // SAFETY: the caller's contract above.
        unsafe {
            step_any(
                config,
                options,
                step,
                1,
                raw,
                |_| layout,
                &[],
                &[],
                out_step,
            )
        }
    })
}

/// One Adam-mini step over `count` tensors: tensor `i` is `(layouts[i], params[i], grads[i],
/// exp_avgs[i], exp_avg_sqs[i])`. `clip_coefs` is NULL (every tensor uses `options`' clip
/// coefficient) or `count` per-tensor clip coefficients (AdaGC's `adamant_adagc_coefs`), each
/// finite and `>= 0`, which replace `options.clip_coef` for their tensor. Every tensor is
/// validated (and scanned, when finite-checking is on) before any is written.
///
/// # Safety
/// As `adamant_adam_mini_step`, for every view; each array holds `count` entries (may be
/// NULL when `count` is 0).
#[no_mangle]
pub unsafe extern "C" fn adamant_adam_mini_step_multi(
    config: *const adamant_adam_mini_config,
    options: *const adamant_step_options,
    step: u64,
    layouts: *const adamant_block_layout,
    params: *const adamant_tensor,
    grads: *const adamant_const_tensor,
    exp_avgs: *const adamant_tensor,
    exp_avg_sqs: *const adamant_tensor,
    clip_coefs: *const f32,
    count: usize,
    out_step: *mut u64,
) -> adamant_status {
    ffi_boundary!({
        let _ = try_ref!(config);
        let _ = try_ref!(options);
        let _ = try_out!(out_step);
        let l = try_slice!(layouts, count);
        let arrays: [entry::Array; 4] = (params, grads, exp_avgs, exp_avg_sqs).array();
        // SAFETY: the caller's contract above.
        let lists = unsafe { entry::lists(arrays, count) }?;
        // SAFETY: the caller's contract above.
        let c = unsafe { crate::options::clip_coefs(clip_coefs, count) }?;
        let more = [
            array_range(layouts, count),
            array_range(clip_coefs, c.len()),
        ];
        let ranges = entry::array_ranges(arrays, count, &more);
        // SAFETY: the caller's contract above.
        unsafe {
            step_any(
                config,
                options,
                step,
                count,
                |i| lists.raw(i),
                |i| &l[i] as *const _,
                c,
                &ranges.0[..ranges.1],
                out_step,
            )
        }
    })
}

/// Sharded phase one for a block split over ranks: the per-tile partial sums of the prepared
/// squares `((g/grad_scale)*clip_coef)^2` of this rank's piece of the block
/// (`adamant_core::rules::adam_mini::grad_sq_partials`), with `options`' loss scale and clip
/// coefficient. `out_partials` holds exactly `adamant_reduce_tile_count(grad.len)` floats.
/// Gather the pieces' partials in the block's tile order, `adamant_reduce_combine` them, and
/// pass the sum to `adamant_adam_mini_block_step` on every rank.
///
/// # Safety
/// `options` points to a valid struct; `grad.data` to `grad.len` elements of its dtype;
/// `out_partials` to `partials_len` writable floats.
#[no_mangle]
pub unsafe extern "C" fn adamant_adam_mini_partials(
    options: *const adamant_step_options,
    grad: adamant_const_tensor,
    out_partials: *mut f32,
    partials_len: usize,
) -> adamant_status {
    ffi_boundary!({
        let options = *try_ref!(options);
        crate::tensor::check_out_array(out_partials, partials_len)?;
        let opts = options.to_core()?;
        opts.validate()?;
        const IN: [Spec; 1] = [Spec {
            written: false,
            allowed: ANY_DTYPE,
        }];
        let raw = |_| [Raw::from(grad)];
        let out_range = Range {
            written: true,
            ..array_range(out_partials, partials_len)
        };
        check_all(1, &IN, raw, |_: &[View; 1]| Ok(()), &[out_range])?;
        if adamant_core::reduce::tile_count(grad.len) != partials_len {
            return Err(adamant_status::LengthMismatch);
        }
        if partials_len == 0 {
            return Ok(());
        }
        let v = views(&IN, &raw(0))?[0];
        // SAFETY: non-NULL, aligned, `partials_len` floats, not overlapping the input.
        let out = unsafe { core::slice::from_raw_parts_mut(out_partials, partials_len) };
        let prep = opts.grad_prep();
        with_types!(v.dtype, v.dtype, Dtype::F32, G, _G2, _S => {
            // SAFETY: checked read-only view.
            let g = unsafe { as_slice::<G>(&v) };
            core_mini::grad_sq_partials(g, prep, out).map_err(adamant_status::from)
        })
    })
}

/// Sharded phase three: this rank's piece of one block that spans ranks. `sum_sq` is the
/// block's combined sum of prepared squares (phase one and `adamant_reduce_combine`) and
/// `count` its global element count; `exp_avg_sq` is the block's one state entry (a view of
/// length 1, replicated on every rank). Updates `exp_avg_sq`
/// (`adamant_core::rules::adam_mini::block_update`), then every element of the piece
/// (`adam_mini_slice`). `index_offset` is the piece's first element's index in the whole
/// tensor (stochastic rounding only). `weight_decay` is the tensor's 0/1 flag. The step
/// counter is shared by every block of the step: pass the same `step` to every call; on
/// success `*out_step = step + 1`.
///
/// # Safety
/// As `adamant_adam_mini_step`.
#[no_mangle]
pub unsafe extern "C" fn adamant_adam_mini_block_step(
    config: *const adamant_adam_mini_config,
    options: *const adamant_step_options,
    step: u64,
    sum_sq: f32,
    count: u64,
    index_offset: u64,
    weight_decay: u32,
    param: adamant_tensor,
    grad: adamant_const_tensor,
    exp_avg: adamant_tensor,
    exp_avg_sq: adamant_tensor,
    out_step: *mut u64,
) -> adamant_status {
    ffi_boundary!({
        let config = *try_ref!(config);
        let options = *try_ref!(options);
        let out_step = try_out!(out_step);
        let wd = flag(weight_decay)?;
        let opts = options.to_core()?;
        let cfg = config.to_core(opts.lr)?;
        cfg.validate()?;
        opts.validate()?;
        if count == 0 {
            return Err(adamant_status::InvalidConfig);
        }
        let raw = |_| [param.into(), grad.into(), exp_avg.into(), exp_avg_sq.into()];
        let extra = crate::multi::extra_ranges(&[], out_step);
        check_all(1, &SPECS, raw, lens, &extra.0[..extra.1])?;
        let v = views(&SPECS, &raw(0))?;
        if v[3].len != 1 || (v[0].len as u64) > count {
            return Err(adamant_status::LengthMismatch);
        }
        let mut mini = AdamMini::new(cfg)?;
        mini.state.step = step;
        let mut plan = match mini.begin(&opts, crate::run::no_grads())? {
            Begin::Skip(r) => return Err(r.into()),
            Begin::Apply(p) => p,
        };
        if opts.checks_finite() && !(sum_sq.is_finite() && crate::exec::all_finite(&v[1])) {
            return Err(adamant_status::SkippedNonFinite);
        }
        if !wd {
            plan.scalars = plan.scalars.without_weight_decay();
        }
        plan.sr = plan
            .sr
            .map(|k| adamant_core::step::StochasticRounding { index_offset, ..k });
        with_types!(v[0].dtype, v[1].dtype, v[2].dtype, P, G, S => {
            // SAFETY: as in `exec`.
            let (p, g, m, s) = unsafe { slices::<P, G, S>(&v) };
            let scale = core_mini::block_update(&mut s[0], sum_sq, count, &plan.scalars);
            core_mini::adam_mini_slice(p, g, m, scale, &plan);
            Ok::<(), adamant_status>(())
        })?;
        // SAFETY: non-NULL, aligned, not overlapping any view.
        unsafe { out_step.write(plan.step) };
        Ok(())
    })
}
