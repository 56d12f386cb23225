//! Adam-mini on the threaded driver.
//!
//! Core's Adam-mini step over one tensor has three phases per block: the canonical sum of the
//! prepared squares, [`block_update`] (the block's `exp_avg_sq` and scale), then the element
//! pass with that scale. The driver cuts a model's blocks into units of work as follows.
//!
//! - A shared block of at most [`FUSE_MAX`] elements is done whole by one thread, all three
//!   phases back to back while the block's gradient is in cache: the step reads `p, g, m` once
//!   from memory and writes `p, m` (the per-block `exp_avg_sq` is tiny). Runs of such blocks
//!   are cut only at block boundaries (and, where the block length allows, at multiples of 64
//!   elements). Per-row blocks of a weight matrix take this path, and so do per-head blocks
//!   of small models (GPT-2 small: 768*768/12 = 49152 elements).
//! - A larger shared block (a whole big tensor, [`BlockLayout::Tensor`], or a per-head block
//!   of a large model: Llama-2-7B's are 4096*4096/32 = 524288 elements) needs its statistic
//!   before any of its elements moves, so it takes two passes over memory: first its per-tile
//!   partials, split over the threads at multiples of 4096 elements from the block's start;
//!   then, on the calling thread, core's `combine` of the partials in tile order (the bits of
//!   core's one-thread sum) and [`block_update`]; then the element pass, split at multiples of
//!   64 elements.
//! - A per-element run (biases) is core's AdamW, split at multiples of 64 elements.
//!
//! Every element sees its block's scale computed from the canonical sum, so every thread count
//! and instruction set gives the bits of core's reference path. As in the other multi-tensor
//! steps, a model's tensors form one index space for stochastic rounding: tensor `k`'s element
//! `i` has index `len(0) + .. + len(k-1) + i`.

use crate::driver::{partition, run_groups, shifted, Piece, SPLIT_ALIGN};
use crate::kernels;
use adamant_core::error::{StepError, StepOutcome};
use adamant_core::reduce::{combine, tile_count, TILE};
use adamant_core::rules::adam::AdamScalars;
use adamant_core::rules::adam_mini::{block_update, check_tensor, AdamMiniScalars};
use adamant_core::step::GradPrep;
use adamant_core::store::{Element, StateElement};
use adamant_core::{AdamMini, Begin, BlockLayout, Plan, StepOptions};

use crate::Driver;

/// Shared blocks of at most this many elements (16 tiles: 256 KiB of f32 gradient) are
/// computed whole by one thread in one pass over memory; larger ones take two passes.
pub const FUSE_MAX: usize = kernels::BLOCK_SUM_MAX;

/// One tensor of an Adam-mini step: `grad` and `exp_avg` have the parameter's length,
/// `exp_avg_sq` the layout's state length ([`BlockLayout::state_len`]).
#[derive(Debug)]
pub struct AdamMiniTensor<'a, P, G, S> {
    /// Parameters (updated in place).
    pub param: &'a mut [P],
    /// Gradients.
    pub grad: &'a [G],
    /// First moment, one per element (updated in place).
    pub exp_avg: &'a mut [S],
    /// Second moment, one per block (per element in element blocks; updated in place).
    pub exp_avg_sq: &'a mut [S],
    /// How the tensor is cut into blocks.
    pub layout: BlockLayout<'a>,
    /// Whether decoupled weight decay applies to this tensor (off for norms and biases in the
    /// official code).
    pub weight_decay: bool,
}

/// A unit of element work (the second parallel phase).
enum Unit<'a, P, G, S> {
    /// Consecutive shared blocks of `block_len`, each done whole ([`kernels::adam_mini_blocks`]).
    Blocks {
        offset: usize,
        block_len: usize,
        param: &'a mut [P],
        grad: &'a [G],
        exp_avg: &'a mut [S],
        exp_avg_sq: &'a mut [S],
        plan: Plan<AdamMiniScalars>,
    },
    /// Elements of a large block whose scale is known.
    Scaled {
        offset: usize,
        block_scale: f32,
        param: &'a mut [P],
        grad: &'a [G],
        exp_avg: &'a mut [S],
        plan: Plan<AdamMiniScalars>,
    },
    /// A per-element (AdamW) run.
    Element {
        offset: usize,
        param: &'a mut [P],
        grad: &'a [G],
        exp_avg: &'a mut [S],
        exp_avg_sq: &'a mut [S],
        plan: Plan<AdamScalars>,
    },
}

/// Cuts of a run of blocks: multiples of the block length that are also multiples of
/// [`SPLIT_ALIGN`] when that stays small, else multiples of the block length.
pub(crate) fn blocks_align(block_len: usize) -> usize {
    let mut a = block_len;
    while a % SPLIT_ALIGN != 0 && a < FUSE_MAX {
        a += block_len;
    }
    if a % SPLIT_ALIGN == 0 {
        a
    } else {
        block_len
    }
}

impl<P: Element, G: Element, S: StateElement> Piece for Unit<'_, P, G, S> {
    fn len(&self) -> usize {
        match self {
            Unit::Blocks { param, .. }
            | Unit::Scaled { param, .. }
            | Unit::Element { param, .. } => param.len(),
        }
    }

    fn align(&self) -> usize {
        match self {
            Unit::Blocks { block_len, .. } => blocks_align(*block_len),
            _ => SPLIT_ALIGN,
        }
    }

    fn split_at(self, mid: usize) -> (Self, Self) {
        match self {
            Unit::Blocks {
                offset,
                block_len,
                param,
                grad,
                exp_avg,
                exp_avg_sq,
                plan,
            } => {
                // `mid` is a multiple of `block_len` (see `align`).
                let (p0, p1) = param.split_at_mut(mid);
                let (g0, g1) = grad.split_at(mid);
                let (m0, m1) = exp_avg.split_at_mut(mid);
                let (v0, v1) = exp_avg_sq.split_at_mut(mid / block_len);
                (
                    Unit::Blocks {
                        offset,
                        block_len,
                        param: p0,
                        grad: g0,
                        exp_avg: m0,
                        exp_avg_sq: v0,
                        plan,
                    },
                    Unit::Blocks {
                        offset: offset + mid,
                        block_len,
                        param: p1,
                        grad: g1,
                        exp_avg: m1,
                        exp_avg_sq: v1,
                        plan,
                    },
                )
            }
            Unit::Scaled {
                offset,
                block_scale,
                param,
                grad,
                exp_avg,
                plan,
            } => {
                let (p0, p1) = param.split_at_mut(mid);
                let (g0, g1) = grad.split_at(mid);
                let (m0, m1) = exp_avg.split_at_mut(mid);
                (
                    Unit::Scaled {
                        offset,
                        block_scale,
                        param: p0,
                        grad: g0,
                        exp_avg: m0,
                        plan,
                    },
                    Unit::Scaled {
                        offset: offset + mid,
                        block_scale,
                        param: p1,
                        grad: g1,
                        exp_avg: m1,
                        plan,
                    },
                )
            }
            Unit::Element {
                offset,
                param,
                grad,
                exp_avg,
                exp_avg_sq,
                plan,
            } => {
                let (p0, p1) = param.split_at_mut(mid);
                let (g0, g1) = grad.split_at(mid);
                let (m0, m1) = exp_avg.split_at_mut(mid);
                let (v0, v1) = exp_avg_sq.split_at_mut(mid);
                (
                    Unit::Element {
                        offset,
                        param: p0,
                        grad: g0,
                        exp_avg: m0,
                        exp_avg_sq: v0,
                        plan,
                    },
                    Unit::Element {
                        offset: offset + mid,
                        param: p1,
                        grad: g1,
                        exp_avg: m1,
                        exp_avg_sq: v1,
                        plan,
                    },
                )
            }
        }
    }
}

/// Tile partials of a piece of a gradient (the statistics phase).
pub(crate) struct StatsPiece<'a, G> {
    pub(crate) grad: &'a [G],
    pub(crate) prep: GradPrep,
    pub(crate) out: &'a mut [f32],
}

impl<G: Element> Piece for StatsPiece<'_, G> {
    fn len(&self) -> usize {
        self.grad.len()
    }
    fn align(&self) -> usize {
        TILE
    }
    fn split_at(self, mid: usize) -> (Self, Self) {
        // `mid` is a multiple of TILE (see `align`).
        let (g0, g1) = self.grad.split_at(mid);
        let (o0, o1) = self.out.split_at_mut(mid / TILE);
        (
            StatsPiece {
                grad: g0,
                prep: self.prep,
                out: o0,
            },
            StatsPiece {
                grad: g1,
                prep: self.prep,
                out: o1,
            },
        )
    }
}

/// A work unit before the statistics phase: large blocks still wait for their scale.
enum Pending<'a, P, G, S> {
    Ready(Unit<'a, P, G, S>),
    Large {
        /// Index into the large blocks' scales.
        index: usize,
        offset: usize,
        param: &'a mut [P],
        grad: &'a [G],
        exp_avg: &'a mut [S],
        plan: Plan<AdamMiniScalars>,
    },
}

/// A large block's second-moment entry and where its partials lie.
struct LargeBlock<'a, S> {
    exp_avg_sq: &'a mut S,
    tiles: core::ops::Range<usize>,
    len: usize,
    scalars: AdamMiniScalars,
}

impl Driver {
    /// Per-tile partials of every gradient piece, in parallel: `out` has `tile_count` entries
    /// per piece, in piece order.
    pub(crate) fn stats(&self, pieces: Vec<StatsPiece<'_, impl Element>>) {
        let isa = self.isa();
        let groups = partition(pieces, self.threads(), self.grain());
        run_groups(groups, &|group: Vec<StatsPiece<'_, _>>| {
            for p in group {
                kernels::sq_partials(isa, p.grad, p.prep, p.out);
            }
        });
    }

    /// Canonical sums of the prepared squares of whole gradients, `(g/grad_scale)*clip_coef`
    /// squared, one per gradient, computed in parallel: each equals core's
    /// `reduce::sum_by(g, |v| { let g = prep.apply(v); g * g })` (for `clip_coef = 1`, core's
    /// `clip::tensor_sum_sq`).
    pub fn sums_sq<G: Element>(&self, grads: &[&[G]], prep: GradPrep) -> Vec<f32> {
        let counts: Vec<usize> = grads.iter().map(|g| tile_count(g.len())).collect();
        let mut partials = vec![0.0f32; counts.iter().sum()];
        let mut rest: &mut [f32] = &mut partials;
        let mut pieces = Vec::with_capacity(grads.len());
        for (g, &k) in grads.iter().zip(&counts) {
            let (out, tail) = core::mem::take(&mut rest).split_at_mut(k);
            rest = tail;
            pieces.push(StatsPiece { grad: g, prep, out });
        }
        self.stats(pieces);
        let mut at = 0;
        counts
            .iter()
            .map(|&k| {
                at += k;
                combine(&partials[at - k..at])
            })
            .collect()
    }

    /// One Adam-mini step over one tensor cut into blocks by `layout` (`weight_decay`: whether
    /// decoupled weight decay applies to it). Same bits as core's `apply_tensor` on either
    /// path for any thread count and instruction set; on error or skip nothing is written.
    #[allow(clippy::too_many_arguments)]
    pub fn adam_mini_step<P: Element, G: Element, S: StateElement>(
        &self,
        opt: &mut AdamMini,
        param: &mut [P],
        grad: &[G],
        exp_avg: &mut [S],
        exp_avg_sq: &mut [S],
        layout: &BlockLayout<'_>,
        weight_decay: bool,
        opts: &StepOptions,
    ) -> Result<StepOutcome, StepError> {
        self.adam_mini_step_multi(
            opt,
            &mut [AdamMiniTensor {
                param,
                grad,
                exp_avg,
                exp_avg_sq,
                layout: *layout,
                weight_decay,
            }],
            opts,
        )
    }

    /// One Adam-mini step over a model's tensors sharing `opt` (one step counter). Every
    /// tensor's buffers are checked against its layout and every gradient scanned (when
    /// finite-checking is on) before anything is written.
    pub fn adam_mini_step_multi<P: Element, G: Element, S: StateElement>(
        &self,
        opt: &mut AdamMini,
        tensors: &mut [AdamMiniTensor<'_, P, G, S>],
        opts: &StepOptions,
    ) -> Result<StepOutcome, StepError> {
        adam_mini_check(tensors)?;
        let begin = opt.begin::<G, _>(opts, core::iter::empty())?;
        let plan = match self.begin(begin, opts, || tensors.iter().map(|t| t.grad).collect()) {
            Begin::Skip(r) => return Ok(StepOutcome::Skipped(r)),
            Begin::Apply(plan) => plan,
        };
        self.adam_mini_apply(&plan, tensors, None);
        opt.commit(&plan);
        Ok(StepOutcome::Applied { step: plan.step })
    }

    /// The three phases of a planned step (buffers already checked); `coefs` (one per tensor)
    /// replaces the plan's clip coefficient tensor by tensor.
    pub(crate) fn adam_mini_apply<P: Element, G: Element, S: StateElement>(
        &self,
        plan: &Plan<AdamMiniScalars>,
        tensors: &mut [AdamMiniTensor<'_, P, G, S>],
        coefs: Option<&[f32]>,
    ) {
        let mut pending: Vec<Pending<'_, P, G, S>> = Vec::new();
        let mut large: Vec<LargeBlock<'_, S>> = Vec::new();
        let mut stats_grads: Vec<(&[G], GradPrep)> = Vec::new();
        let mut tiles = 0usize;
        let mut base = 0usize;
        for (i, t) in tensors.iter_mut().enumerate() {
            let n = t.param.len();
            let mut tplan = *plan;
            if !t.weight_decay {
                tplan.scalars = tplan.scalars.without_weight_decay();
            }
            if let Some(c) = coefs {
                tplan.prep.clip_coef = c[i];
            }
            let eplan = Plan {
                step: tplan.step,
                scalars: tplan.scalars.element_scalars(),
                prep: tplan.prep,
                sr: tplan.sr,
            };
            let mut param: &mut [P] = &mut *t.param;
            let mut grad: &[G] = t.grad;
            let mut exp_avg: &mut [S] = &mut *t.exp_avg;
            let mut exp_avg_sq: &mut [S] = &mut *t.exp_avg_sq;
            let mut at = 0usize;
            // Take the next `len` elements and `states` state entries off the tensor.
            let mut take = |len: usize, states: usize, at: &mut usize| {
                let (p, pr) = core::mem::take(&mut param).split_at_mut(len);
                let (g, gr) = grad.split_at(len);
                let (m, mr) = core::mem::take(&mut exp_avg).split_at_mut(len);
                let (v, vr) = core::mem::take(&mut exp_avg_sq).split_at_mut(states);
                (param, grad, exp_avg, exp_avg_sq) = (pr, gr, mr, vr);
                *at += len;
                (p, g, m, v)
            };
            layout_units(&t.layout, n, |item| match item {
                Item::Run {
                    start,
                    block_len,
                    count,
                } => {
                    debug_assert_eq!(start, at);
                    let (p, g, m, v) = take(block_len * count, count, &mut at);
                    pending.push(Pending::Ready(Unit::Blocks {
                        offset: base + start,
                        block_len,
                        param: p,
                        grad: g,
                        exp_avg: m,
                        exp_avg_sq: v,
                        plan: tplan,
                    }));
                }
                Item::Element { start, len } => {
                    debug_assert_eq!(start, at);
                    let (p, g, m, v) = take(len, len, &mut at);
                    pending.push(Pending::Ready(Unit::Element {
                        offset: base + start,
                        param: p,
                        grad: g,
                        exp_avg: m,
                        exp_avg_sq: v,
                        plan: eplan,
                    }));
                }
                Item::Large { start, len } => {
                    debug_assert_eq!(start, at);
                    let (p, g, m, v) = take(len, 1, &mut at);
                    let k = tile_count(len);
                    large.push(LargeBlock {
                        exp_avg_sq: &mut v[0],
                        tiles: tiles..tiles + k,
                        len,
                        scalars: tplan.scalars,
                    });
                    tiles += k;
                    stats_grads.push((g, tplan.prep));
                    pending.push(Pending::Large {
                        index: large.len() - 1,
                        offset: base + start,
                        param: p,
                        grad: g,
                        exp_avg: m,
                        plan: tplan,
                    });
                }
            });
            base += n;
        }

        // Phase one: the large blocks' partials, in parallel; then their second moments.
        let mut scales = Vec::with_capacity(large.len());
        if !large.is_empty() {
            let mut partials = vec![0.0f32; tiles];
            {
                let mut rest: &mut [f32] = &mut partials;
                let mut pieces = Vec::with_capacity(stats_grads.len());
                for &(grad, prep) in &stats_grads {
                    let (out, tail) =
                        core::mem::take(&mut rest).split_at_mut(tile_count(grad.len()));
                    rest = tail;
                    pieces.push(StatsPiece { grad, prep, out });
                }
                self.stats(pieces);
            }
            for b in large {
                let sum = combine(&partials[b.tiles]);
                scales.push(block_update(b.exp_avg_sq, sum, b.len as u64, &b.scalars));
            }
        }

        // Phase two: every element, in parallel.
        let units: Vec<Unit<'_, P, G, S>> = pending
            .into_iter()
            .map(|p| match p {
                Pending::Ready(u) => u,
                Pending::Large {
                    index,
                    offset,
                    param,
                    grad,
                    exp_avg,
                    plan,
                } => Unit::Scaled {
                    offset,
                    block_scale: scales[index],
                    param,
                    grad,
                    exp_avg,
                    plan,
                },
            })
            .collect();
        let isa = self.isa();
        let work = |group: Vec<Unit<'_, P, G, S>>| {
            for u in group {
                match u {
                    Unit::Blocks {
                        offset,
                        block_len,
                        param,
                        grad,
                        exp_avg,
                        exp_avg_sq,
                        plan,
                    } => kernels::adam_mini_blocks(
                        isa,
                        param,
                        grad,
                        exp_avg,
                        exp_avg_sq,
                        block_len,
                        &shifted(&plan, offset),
                    ),
                    Unit::Scaled {
                        offset,
                        block_scale,
                        param,
                        grad,
                        exp_avg,
                        plan,
                    } => kernels::adam_mini(
                        isa,
                        param,
                        grad,
                        exp_avg,
                        block_scale,
                        &shifted(&plan, offset),
                    ),
                    Unit::Element {
                        offset,
                        param,
                        grad,
                        exp_avg,
                        exp_avg_sq,
                        plan,
                    } => kernels::adam(
                        isa,
                        param,
                        grad,
                        exp_avg,
                        exp_avg_sq,
                        &shifted(&plan, offset),
                    ),
                }
            }
        };
        run_groups(partition(units, self.threads(), self.grain()), &work);
    }
}

/// What [`layout_units`] reports, in element order.
enum Item {
    /// `count` shared blocks of `block_len <= FUSE_MAX` elements starting at `start`.
    Run {
        start: usize,
        block_len: usize,
        count: usize,
    },
    /// A per-element run.
    Element { start: usize, len: usize },
    /// One shared block of more than [`FUSE_MAX`] elements.
    Large { start: usize, len: usize },
}

/// Walk a (checked) layout's blocks, gathering consecutive small shared blocks of one length
/// into runs.
fn layout_units(layout: &BlockLayout<'_>, numel: usize, mut f: impl FnMut(Item)) {
    let mut run: Option<(usize, usize, usize)> = None;
    let flush = |run: &mut Option<(usize, usize, usize)>, f: &mut dyn FnMut(Item)| {
        if let Some((start, block_len, count)) = run.take() {
            f(Item::Run {
                start,
                block_len,
                count,
            });
        }
    };
    layout.for_each_block(numel, |b| {
        if !b.per_element && b.len <= FUSE_MAX {
            if let Some((start, bl, count)) = run.as_mut() {
                if *bl == b.len && *start + *bl * *count == b.offset {
                    *count += 1;
                    return;
                }
            }
            flush(&mut run, &mut f);
            run = Some((b.offset, b.len, 1));
            return;
        }
        flush(&mut run, &mut f);
        f(if b.per_element {
            Item::Element {
                start: b.offset,
                len: b.len,
            }
        } else {
            Item::Large {
                start: b.offset,
                len: b.len,
            }
        });
    });
    flush(&mut run, &mut f);
}

/// Every tensor's buffers against its layout, checked before anything else.
pub(crate) fn adam_mini_check<P: Element, G: Element, S: StateElement>(
    tensors: &[AdamMiniTensor<'_, P, G, S>],
) -> Result<(), StepError> {
    for t in tensors {
        check_tensor(
            t.param.len(),
            t.grad.len(),
            t.exp_avg.len(),
            t.exp_avg_sq.len(),
            &t.layout,
        )?;
    }
    Ok(())
}

/// One Adam-mini step over one tensor on `threads` threads (0: all cores) with the process's
/// ISA. See [`Driver::adam_mini_step`].
#[allow(clippy::too_many_arguments)]
pub fn adam_mini_step<P: Element, G: Element, S: StateElement>(
    opt: &mut AdamMini,
    param: &mut [P],
    grad: &[G],
    exp_avg: &mut [S],
    exp_avg_sq: &mut [S],
    layout: &BlockLayout<'_>,
    weight_decay: bool,
    opts: &StepOptions,
    threads: usize,
) -> Result<StepOutcome, StepError> {
    Driver::new().with_threads(threads).adam_mini_step(
        opt,
        param,
        grad,
        exp_avg,
        exp_avg_sq,
        layout,
        weight_decay,
        opts,
    )
}

/// One Adam-mini step over a model's tensors on `threads` threads. See
/// [`Driver::adam_mini_step_multi`].
pub fn adam_mini_step_multi<P: Element, G: Element, S: StateElement>(
    opt: &mut AdamMini,
    tensors: &mut [AdamMiniTensor<'_, P, G, S>],
    opts: &StepOptions,
    threads: usize,
) -> Result<StepOutcome, StepError> {
    Driver::new()
        .with_threads(threads)
        .adam_mini_step_multi(opt, tensors, opts)
}
