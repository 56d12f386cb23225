//! Adam-mini (Zhang et al., arXiv:2406.16793, ICLR 2025) as the official code v1.1.1 computes
//! it, in the contract's form: one second moment per *block* of parameters (a head, a row, a
//! whole tensor), the full first moment, and per-element Adam for biases.
//!
//! | here | official `Adam_mini` |
//! |---|---|
//! | `exp_avg` | `m` |
//! | `exp_avg_sq` (one per block) | `v` / `vmean` |
//! | [`BlockLayout::Heads`] `head_numel` | `dim*dim // n_heads` |
//! | [`BlockLayout::Rows`] `row_len` | `mean(grad*grad, dim=1)` |
//! | [`BlockLayout::Tensor`] | one block per tensor (norms, and what no rule names) |
//! | [`BlockLayout::Element`] | `adam_block_names` (biases): per-element AdamW |
//!
//! A step over one tensor, per block `b` of `n_b` elements (`g` already prepared by
//! [`GradPrep`]: `(g / grad_scale) * clip_coef`):
//! 1. `sum_b` = canonical sum of `g*g` over the block ([`crate::reduce`]); for a block split
//!    over shards or threads, per-tile partials ([`grad_sq_partials`]) gathered in the block's
//!    tile order and [`crate::reduce::combine`]d.
//! 2. [`block_second_moment`], [`block_scale`]: the block's `exp_avg_sq` and its scale `(1/bc1) / h_b`.
//! 3. [`adam_mini_elem`] on every element of the block with that scale.
//!
//! Differences from the official code, by decision: the first moment is
//! `beta1*m + (1-beta1)*g` (the form of [`crate::rules::adam::adam_elem`]) rather than
//! PyTorch's `m.lerp_(g, 1-beta1)`, whose rounding switches formula at weight 0.5; the mean is
//! the canonical sum divided by the element count rounded to f32 (PyTorch's `mean` uses its
//! own reduction order). Both are within one rounding of the official value per operation.
//! The step counter is one per optimizer (the official per-tensor counters always agree).

use crate::error::{beta, non_negative, positive, Buffer, ConfigError, Hyper, LayoutError};
use crate::error::{StepError, StepOutcome, Warnings};
use crate::reduce;
use crate::rules::adam::AdamScalars;
use crate::rules::{begin_common, check_lens, chunked3, Begin, ChunkHook, NoHook, Plan};
use crate::scalars::{bias_correction, sqrt_f64, to_f32, LibmSqrt, Sqrt};
use crate::step::{store_param, GradPrep, StepOptions, StochasticRounding};
use crate::store::{Element, StateElement};

/// Adam-mini hyper-parameters. Defaults are the official code's:
/// `lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight_decay 0` (its docstring's eps 1e-6 is wrong).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamMiniConfig {
    /// Learning rate used by [`AdamMini::step_tensor`] (per-step `lr` may override it).
    pub lr: f64,
    /// First-moment decay, in `[0, 1)`.
    pub beta1: f64,
    /// Second-moment decay, in `[0, 1)`.
    pub beta2: f64,
    /// Added to `sqrt(v)/sqrt(bc2)`, `> 0`.
    pub eps: f64,
    /// Decoupled weight decay, `>= 0` (applied only to tensors whose descriptor allows it).
    pub weight_decay: f64,
    /// Seed for stochastic rounding of bf16 parameters; `None` rounds to nearest even.
    pub stochastic_rounding_seed: Option<u64>,
}

impl Default for AdamMiniConfig {
    fn default() -> Self {
        AdamMiniConfig {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            stochastic_rounding_seed: None,
        }
    }
}

impl AdamMiniConfig {
    /// Typed errors: lr finite `>= 0`, betas in `[0, 1)`, eps `> 0`, weight decay `>= 0`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        non_negative(Hyper::Lr, self.lr)?;
        beta(Hyper::Beta1, self.beta1)?;
        beta(Hyper::Beta2, self.beta2)?;
        positive(Hyper::Eps, self.eps)?;
        non_negative(Hyper::WeightDecay, self.weight_decay)?;
        Ok(())
    }

    /// Convergence-region warnings (never errors).
    pub fn warnings(&self) -> Warnings {
        Warnings::for_adam_betas(self.beta1, self.beta2)
    }

    /// Per-step scalars for step `t` at learning rate `lr` by the contract's f64 recipe, each
    /// rounded once to f32: `decay = 1 - lr*wd`, `bias_correction1_recip = 1/bc1`,
    /// `bias_correction2_sqrt = sqrt(bc2)`, `step_size = lr/bc1` (element blocks), `lr`.
    pub fn scalars(&self, lr: f64, t: u64) -> AdamMiniScalars {
        let bc1 = bias_correction(self.beta1, t);
        let bc2 = bias_correction(self.beta2, t);
        AdamMiniScalars {
            decay: to_f32(1.0 - lr * self.weight_decay),
            beta1: to_f32(self.beta1),
            one_minus_beta1: to_f32(1.0 - self.beta1),
            beta2: to_f32(self.beta2),
            one_minus_beta2: to_f32(1.0 - self.beta2),
            bias_correction1_recip: to_f32(1.0 / bc1),
            bias_correction2_sqrt: to_f32(sqrt_f64(bc2)),
            lr: to_f32(lr),
            step_size: to_f32(lr / bc1),
            eps: to_f32(self.eps),
        }
    }
}

/// Per-step f32 scalars of Adam-mini (see [`AdamMiniConfig::scalars`]).
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct AdamMiniScalars {
    /// `1 - lr*weight_decay` (1 for tensors without weight decay).
    pub decay: f32,
    /// `beta1`.
    pub beta1: f32,
    /// `1 - beta1`.
    pub one_minus_beta1: f32,
    /// `beta2`.
    pub beta2: f32,
    /// `1 - beta2`.
    pub one_minus_beta2: f32,
    /// `1 / bias_correction1`.
    pub bias_correction1_recip: f32,
    /// `sqrt(bias_correction2)`.
    pub bias_correction2_sqrt: f32,
    /// `lr`.
    pub lr: f32,
    /// `lr / bias_correction1` (element blocks only).
    pub step_size: f32,
    /// `eps`.
    pub eps: f32,
}

impl AdamMiniScalars {
    /// The same scalars with weight decay off (`decay = 1`; `p*1 == p`).
    pub fn without_weight_decay(self) -> Self {
        AdamMiniScalars { decay: 1.0, ..self }
    }

    /// The scalars of an element block ([`BlockLayout::Element`]), which the official code runs
    /// as PyTorch's single-tensor AdamW: [`crate::rules::adam::adam_elem`] with these values
    /// (`v = beta2*v + (1-beta2)*(g*g)`; the official `addcmul_` rounds `value*g*g` in its own
    /// order, `p - (lr/bc1)*(m/h)` as its `addcdiv_`).
    pub fn element_scalars(&self) -> AdamScalars {
        AdamScalars {
            decay: self.decay,
            weight_decay: 0.0,
            beta1: self.beta1,
            one_minus_beta1: self.one_minus_beta1,
            beta2: self.beta2,
            one_minus_beta2: self.one_minus_beta2,
            step_size: self.step_size,
            bias_correction2_sqrt: self.bias_correction2_sqrt,
            eps: self.eps,
        }
    }
}

/// One block's second moment and scale, in two functions so the scale is computed from the
/// *stored* second moment (a bf16 state gives the scale of its bf16 value, as the official
/// code does with a bf16 `v`). With `sum_sq` the canonical sum of `g*g` over the block's
/// `count` elements, the f32 operations in order (no fused multiply-add):
///
/// ```text
/// block_second_moment:
/// 1. mean = sum_sq / count_f32                 (count_f32 = count rounded to nearest even)
/// 2. exp_avg_sq = beta2*exp_avg_sq + one_minus_beta2*mean
///    (stored: narrowed to the state type)
/// block_scale (on the stored exp_avg_sq):
/// 3. h = sqrt(exp_avg_sq)/bias_correction2_sqrt + eps
/// 4. block_scale = bias_correction1_recip / h
/// ```
/// CUDA mirror: `adam_mini_block` in `cuda/kernels/adam_mini.cu`.
#[inline(always)]
pub fn block_second_moment(
    exp_avg_sq: f32,
    sum_sq: f32,
    count_f32: f32,
    k: &AdamMiniScalars,
) -> f32 {
    let mean = sum_sq / count_f32;
    k.beta2 * exp_avg_sq + k.one_minus_beta2 * mean
}

/// Steps 3 and 4 of [`block_second_moment`]'s listing: `(1/bc1) / (sqrt(v)/sqrt(bc2) + eps)`.
#[inline(always)]
pub fn block_scale<Q: Sqrt>(exp_avg_sq: f32, k: &AdamMiniScalars) -> f32 {
    let h = Q::sqrt(exp_avg_sq) / k.bias_correction2_sqrt + k.eps;
    k.bias_correction1_recip / h
}

/// One element of a block. With `block_scale` from [`block_scale`], the f32 operations in
/// order (no fused multiply-add):
///
/// ```text
/// 1. p = p * decay
/// 2. exp_avg = beta1*exp_avg + one_minus_beta1*g
/// 3. u = exp_avg * block_scale
/// 4. u = u * lr
/// 5. p = p - u
/// ```
/// Returns `(p, exp_avg)`. CUDA mirror: `adam_mini_elem` in `cuda/kernels/adam_mini.cu`.
#[inline(always)]
pub fn adam_mini_elem(
    param: f32,
    grad: f32,
    exp_avg: f32,
    block_scale: f32,
    k: &AdamMiniScalars,
) -> (f32, f32) {
    let p = param * k.decay;
    let m = k.beta1 * exp_avg + k.one_minus_beta1 * grad;
    let u = m * block_scale;
    let u = u * k.lr;
    (p - u, m)
}

/// How a tensor is cut into blocks that share one second moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockLayout<'a> {
    /// One block per element: per-element AdamW (biases). State length: `numel`.
    Element,
    /// Contiguous rows of `row_len` elements (dim 0 of a row-major matrix). State: `numel/row_len`.
    Rows {
        /// Elements per row.
        row_len: usize,
    },
    /// Contiguous heads of `head_numel` elements. State: `numel/head_numel`.
    Heads {
        /// Elements per head (`dim*dim/n_heads` in the official code).
        head_numel: usize,
    },
    /// One block for the whole tensor (possibly spanning shards). State: 1.
    Tensor,
    /// An explicit descriptor: consecutive segments that must cover the tensor exactly (fused
    /// QKV with grouped-query heads, tensor-parallel shards of mixed tensors).
    Segments(&'a [Segment]),
}

/// One segment of an explicit block descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Segment {
    /// `len` elements with per-element AdamW.
    Element {
        /// Elements in the segment.
        len: usize,
    },
    /// `len` elements cut into blocks of `block_len`.
    Blocks {
        /// Elements in the segment.
        len: usize,
        /// Elements per block (`> 0`, divides `len`).
        block_len: usize,
    },
}

/// One block of a tensor: where it lies, where its second moment lives, and whether it is a
/// per-element (AdamW) run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Block {
    /// First element.
    pub offset: usize,
    /// Elements.
    pub len: usize,
    /// Index of its first `exp_avg_sq` entry.
    pub state_index: usize,
    /// `true`: a run of per-element AdamW (`len` state entries); `false`: one shared entry.
    pub per_element: bool,
}

fn blocks_of(len: usize, block_len: usize) -> Result<usize, LayoutError> {
    if block_len == 0 || len % block_len != 0 {
        return Err(LayoutError::BadBlocks { len, block_len });
    }
    Ok(len / block_len)
}

impl BlockLayout<'_> {
    /// Length of the `exp_avg_sq` buffer for a tensor of `numel` elements, or a typed error if
    /// the blocks do not tile it (zero-length block, a block length that does not divide,
    /// segments that do not cover it exactly). An empty tensor has no blocks.
    pub fn state_len(&self, numel: usize) -> Result<usize, LayoutError> {
        match *self {
            BlockLayout::Element => Ok(numel),
            BlockLayout::Rows { row_len } => blocks_of(numel, row_len),
            BlockLayout::Heads { head_numel } => blocks_of(numel, head_numel),
            BlockLayout::Tensor => Ok(if numel == 0 { 0 } else { 1 }),
            BlockLayout::Segments(segs) => {
                let mut covered = 0usize;
                let mut state = 0usize;
                for s in segs {
                    let (len, n) = match *s {
                        Segment::Element { len } => (len, len),
                        Segment::Blocks { len, block_len } => (len, blocks_of(len, block_len)?),
                    };
                    if len == 0 {
                        return Err(LayoutError::BadBlocks { len, block_len: 0 });
                    }
                    covered = covered.saturating_add(len);
                    state += n;
                }
                if covered != numel {
                    return Err(LayoutError::BlocksDoNotTile {
                        len: numel,
                        covered,
                    });
                }
                Ok(state)
            }
        }
    }

    /// Visit the blocks of a tensor of `numel` elements in order (per-element runs are visited
    /// as one [`Block`] with `per_element`). Call [`BlockLayout::state_len`] first.
    pub fn for_each_block<F: FnMut(Block)>(&self, numel: usize, mut f: F) {
        fn uniform<F: FnMut(Block)>(f: &mut F, base: usize, state: usize, len: usize, bl: usize) {
            for j in 0..len / bl {
                f(Block {
                    offset: base + j * bl,
                    len: bl,
                    state_index: state + j,
                    per_element: false,
                });
            }
        }
        match *self {
            BlockLayout::Element => {
                if numel > 0 {
                    f(Block {
                        offset: 0,
                        len: numel,
                        state_index: 0,
                        per_element: true,
                    })
                }
            }
            BlockLayout::Rows { row_len: bl } | BlockLayout::Heads { head_numel: bl } => {
                uniform(&mut f, 0, 0, numel, bl)
            }
            BlockLayout::Tensor => {
                if numel > 0 {
                    uniform(&mut f, 0, 0, numel, numel)
                }
            }
            BlockLayout::Segments(segs) => {
                let (mut off, mut st) = (0, 0);
                for s in segs {
                    match *s {
                        Segment::Element { len } => {
                            f(Block {
                                offset: off,
                                len,
                                state_index: st,
                                per_element: true,
                            });
                            off += len;
                            st += len;
                        }
                        Segment::Blocks { len, block_len } => {
                            uniform(&mut f, off, st, len, block_len);
                            off += len;
                            st += len / block_len;
                        }
                    }
                }
            }
        }
    }
}

impl BlockLayout<'_> {
    /// Visit the pieces of blocks that fall inside the element range `start..end` of a tensor
    /// of `numel` elements (a shard's or a thread's range): `f(block, lo, hi)` with
    /// `block.offset <= lo < hi <= block.offset + block.len` and `start <= lo`, `hi <= end`.
    /// A shard computes [`grad_sq_partials`] of each piece; partials of one block gathered from
    /// all pieces in order and combined give the block's sum (the unsharded bits when every cut
    /// lies a multiple of 4096 elements from the block's start).
    pub fn for_each_piece<F: FnMut(Block, usize, usize)>(
        &self,
        numel: usize,
        start: usize,
        end: usize,
        mut f: F,
    ) {
        self.for_each_block(numel, |b| {
            let lo = b.offset.max(start);
            let hi = (b.offset + b.len).min(end);
            if lo < hi {
                f(b, lo, hi)
            }
        })
    }
}

/// Canonical sum of the prepared squares `((g/grad_scale)*clip_coef)^2` over one whole block.
pub fn grad_sq_sum<G: Element>(grad: &[G], prep: GradPrep) -> f32 {
    reduce::sum_by(grad, |v| {
        let g = prep.apply(v);
        g * g
    })
}

/// Phase one of a block split over shards or threads: the per-tile partial sums of the
/// prepared squares of a piece of the block (`out.len() == tile_count(grad.len())`, checked
/// before writing). Gather the pieces' partials in the block's tile order and
/// [`crate::reduce::combine`] them: pieces cut at multiples of 4096 elements from the block's
/// start reproduce [`grad_sq_sum`] of the whole block; any other cut gives the same bits on
/// every rank that combines the same gathered list.
pub fn grad_sq_partials<G: Element>(
    grad: &[G],
    prep: GradPrep,
    out: &mut [f32],
) -> Result<(), LayoutError> {
    reduce::partials_by(
        grad,
        |v| {
            let g = prep.apply(v);
            g * g
        },
        out,
    )
}

/// Phase two: update one block's second moment in place from its combined `sum_sq` over the
/// block's global element `count`, and return the block's scale ([`block_second_moment`],
/// [`block_scale`]). Every shard of the block calls it with the same inputs and gets the same
/// bits; the state entry lives wherever the caller keeps it (replicated on every rank).
pub fn block_update<S: StateElement>(
    exp_avg_sq: &mut S,
    sum_sq: f32,
    count: u64,
    scalars: &AdamMiniScalars,
) -> f32 {
    let v = block_second_moment(exp_avg_sq.widen(), sum_sq, count as f32, scalars);
    *exp_avg_sq = S::narrow(v);
    block_scale::<LibmSqrt>(exp_avg_sq.widen(), scalars)
}

/// Phase three, reference path: a plain indexed loop of [`adam_mini_elem`] over a piece of one
/// block (gradient preparation always applied). `plan.sr`'s index offset names `param[0]`.
pub fn adam_mini_reference<P: Element, G: Element, S: StateElement>(
    param: &mut [P],
    grad: &[G],
    exp_avg: &mut [S],
    block_scale: f32,
    plan: &Plan<AdamMiniScalars>,
) {
    let n = param.len().min(grad.len()).min(exp_avg.len());
    for i in 0..n {
        let g = plan.prep.apply(grad[i].widen());
        let (p, m) = adam_mini_elem(
            param[i].widen(),
            g,
            exp_avg[i].widen(),
            block_scale,
            &plan.scalars,
        );
        param[i] = store_param(p, &plan.sr, i);
        exp_avg[i] = S::narrow(m);
    }
}

/// Phase three, fast path: the same formula over zipped slices, specialised on gradient
/// preparation and stochastic rounding. Any split of a block into pieces gives the same bits
/// (pass each piece's `sr` with [`StochasticRounding::offset_by`]).
#[inline(always)]
pub fn adam_mini_slice<P: Element, G: Element, S: StateElement>(
    param: &mut [P],
    grad: &[G],
    exp_avg: &mut [S],
    block_scale: f32,
    plan: &Plan<AdamMiniScalars>,
) {
    adam_mini_slice_hooked::<P, G, S, NoHook>(param, grad, exp_avg, block_scale, plan, &mut NoHook)
}

/// [`adam_mini_slice`] with `hook.before(start)` run ahead of every `H::CHUNK` elements (same
/// bits for any hook).
#[inline(always)]
pub fn adam_mini_slice_hooked<P: Element, G: Element, S: StateElement, H: ChunkHook>(
    param: &mut [P],
    grad: &[G],
    exp_avg: &mut [S],
    block_scale: f32,
    plan: &Plan<AdamMiniScalars>,
    hook: &mut H,
) {
    match (plan.prep.is_identity(), plan.sr.is_some()) {
        (true, false) => {
            mini_loop::<P, G, S, H, false, false>(param, grad, exp_avg, block_scale, plan, hook)
        }
        (false, false) => {
            mini_loop::<P, G, S, H, true, false>(param, grad, exp_avg, block_scale, plan, hook)
        }
        (true, true) => {
            mini_loop::<P, G, S, H, false, true>(param, grad, exp_avg, block_scale, plan, hook)
        }
        (false, true) => {
            mini_loop::<P, G, S, H, true, true>(param, grad, exp_avg, block_scale, plan, hook)
        }
    }
}

#[inline(always)]
fn mini_loop<
    P: Element,
    G: Element,
    S: StateElement,
    H: ChunkHook,
    const PREP: bool,
    const SR: bool,
>(
    param: &mut [P],
    grad: &[G],
    exp_avg: &mut [S],
    block_scale: f32,
    plan: &Plan<AdamMiniScalars>,
    hook: &mut H,
) {
    let k = plan.scalars;
    let prep = plan.prep;
    let sr = plan.sr.unwrap_or(StochasticRounding {
        seed: 0,
        step: 0,
        index_offset: 0,
    });
    chunked3(param, grad, exp_avg, hook, |i, p, g, m| {
        let mut gv = g.widen();
        if PREP {
            gv = prep.apply(gv);
        }
        let (np, nm) = adam_mini_elem(p.widen(), gv, m.widen(), block_scale, &k);
        *p = if SR {
            P::narrow_stochastic(np, sr.bits(i))
        } else {
            P::narrow(np)
        };
        *m = S::narrow(nm);
    });
}

/// Which element path [`apply_tensor`] takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// Indexed loops with the software square root ([`adam_mini_reference`]).
    Reference,
    /// Zipped, specialised loops ([`adam_mini_slice`]).
    Fast,
}

/// Check one whole (unsharded) tensor's buffers against its layout; returns the state length.
pub fn check_tensor(
    numel: usize,
    grad: usize,
    exp_avg: usize,
    exp_avg_sq: usize,
    layout: &BlockLayout<'_>,
) -> Result<usize, LayoutError> {
    let state = layout.state_len(numel)?;
    check_lens(numel, &[(Buffer::Grad, grad), (Buffer::ExpAvg, exp_avg)])?;
    check_lens(state, &[(Buffer::ExpAvgSq, exp_avg_sq)])?;
    Ok(state)
}

/// Apply a plan to one whole tensor held locally: every block's statistic, second moment and
/// element update. Validates the buffers against `layout` before writing anything.
/// `weight_decay` is the descriptor's flag (the official code turns it off for norms and
/// biases). For a model, run [`check_tensor`] on every tensor before applying any, so that a
/// bad tensor leaves the whole model unwritten. Element blocks run [`crate::rules::adam::adam_elem`] with [`AdamMiniScalars::element_scalars`].
pub fn apply_tensor<P: Element, G: Element, S: StateElement>(
    param: &mut [P],
    grad: &[G],
    exp_avg: &mut [S],
    exp_avg_sq: &mut [S],
    layout: &BlockLayout<'_>,
    weight_decay: bool,
    plan: &Plan<AdamMiniScalars>,
    path: Path,
) -> Result<(), LayoutError> {
    check_tensor(
        param.len(),
        grad.len(),
        exp_avg.len(),
        exp_avg_sq.len(),
        layout,
    )?;
    let mut plan = *plan;
    if !weight_decay {
        plan.scalars = plan.scalars.without_weight_decay();
    }
    layout.for_each_block(param.len(), |b| {
        let r = b.offset..b.offset + b.len;
        let sr = plan.sr.map(|k| k.offset_by(b.offset));
        let piece = Plan { sr, ..plan };
        if b.per_element {
            let ap = Plan {
                step: plan.step,
                scalars: plan.scalars.element_scalars(),
                prep: plan.prep,
                sr,
            };
            let v = &mut exp_avg_sq[b.state_index..b.state_index + b.len];
            match path {
                Path::Reference => crate::rules::adam::adam_reference(
                    &mut param[r.clone()],
                    &grad[r.clone()],
                    &mut exp_avg[r],
                    v,
                    &ap,
                ),
                Path::Fast => crate::rules::adam::adam_slice::<P, G, S, LibmSqrt>(
                    &mut param[r.clone()],
                    &grad[r.clone()],
                    &mut exp_avg[r],
                    v,
                    &ap,
                ),
            }
        } else {
            let sum = grad_sq_sum(&grad[r.clone()], plan.prep);
            let scale = block_update(
                &mut exp_avg_sq[b.state_index],
                sum,
                b.len as u64,
                &plan.scalars,
            );
            match path {
                Path::Reference => adam_mini_reference(
                    &mut param[r.clone()],
                    &grad[r.clone()],
                    &mut exp_avg[r],
                    scale,
                    &piece,
                ),
                Path::Fast => adam_mini_slice(
                    &mut param[r.clone()],
                    &grad[r.clone()],
                    &mut exp_avg[r],
                    scale,
                    &piece,
                ),
            }
        }
    });
    Ok(())
}

/// Adam-mini scalar state: the step counter (stable encoding: 8 bytes little-endian).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AdamMiniState {
    /// Steps applied so far.
    pub step: u64,
}

impl AdamMiniState {
    /// Stable byte encoding for checkpoints.
    pub fn to_bytes(&self) -> [u8; 8] {
        self.step.to_le_bytes()
    }
    /// Inverse of [`AdamMiniState::to_bytes`].
    pub fn from_bytes(b: [u8; 8]) -> Self {
        AdamMiniState {
            step: u64::from_le_bytes(b),
        }
    }
}

/// An Adam-mini optimizer: hyper-parameters plus the step counter. The caller owns `exp_avg`
/// (the parameter's length) and `exp_avg_sq` ([`BlockLayout::state_len`]), both starting at 0.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamMini {
    /// Hyper-parameters (validated by [`AdamMini::new`]).
    pub config: AdamMiniConfig,
    /// Scalar state.
    pub state: AdamMiniState,
}

impl AdamMini {
    /// Validate `config` and start at step 0.
    pub fn new(config: AdamMiniConfig) -> Result<AdamMini, ConfigError> {
        config.validate()?;
        Ok(AdamMini {
            config,
            state: AdamMiniState::default(),
        })
    }

    /// Validate options, decide the skip and plan the next step over all the model's
    /// gradients. Writes nothing. For per-tensor clip coefficients, copy the plan and set
    /// `prep.clip_coef` per tensor.
    pub fn begin<'a, G: Element, I>(
        &self,
        opts: &StepOptions,
        grads: I,
    ) -> Result<Begin<AdamMiniScalars>, StepError>
    where
        I: IntoIterator<Item = &'a [G]>,
    {
        let t = match begin_common(self.state.step, opts, grads)? {
            Ok(t) => t,
            Err(r) => return Ok(Begin::Skip(r)),
        };
        Ok(Begin::Apply(Plan {
            step: t,
            scalars: self.config.scalars(opts.lr, t),
            prep: opts.grad_prep(),
            sr: self
                .config
                .stochastic_rounding_seed
                .map(|seed| StochasticRounding {
                    seed,
                    step: t,
                    index_offset: 0,
                }),
        }))
    }

    /// Record that `plan` was applied to every tensor.
    pub fn commit(&mut self, plan: &Plan<AdamMiniScalars>) {
        self.state.step = plan.step;
    }

    /// One step of a model of one tensor on the calling thread: validate, skip or apply, commit.
    pub fn step_tensor<P: Element, G: Element, S: StateElement>(
        &mut self,
        param: &mut [P],
        grad: &[G],
        exp_avg: &mut [S],
        exp_avg_sq: &mut [S],
        layout: &BlockLayout<'_>,
        weight_decay: bool,
        opts: &StepOptions,
    ) -> Result<StepOutcome, StepError> {
        check_tensor(
            param.len(),
            grad.len(),
            exp_avg.len(),
            exp_avg_sq.len(),
            layout,
        )?;
        match self.begin(opts, [grad])? {
            Begin::Skip(r) => Ok(StepOutcome::Skipped(r)),
            Begin::Apply(plan) => {
                apply_tensor(
                    param,
                    grad,
                    exp_avg,
                    exp_avg_sq,
                    layout,
                    weight_decay,
                    &plan,
                    Path::Fast,
                )?;
                self.commit(&plan);
                Ok(StepOutcome::Applied { step: plan.step })
            }
        }
    }
}

/// Optimizer state bytes of one tensor: `exp_avg` (numel) plus `exp_avg_sq` (state length),
/// at `state_size` bytes per entry.
pub fn state_bytes(
    numel: usize,
    layout: &BlockLayout<'_>,
    state_size: usize,
) -> Result<usize, LayoutError> {
    Ok((numel + layout.state_len(numel)?) * state_size)
}
