//! The threaded driver: one optimizer step spread over several threads.
//!
//! A step is: check every buffer length -> core's `begin` (validation, step counter,
//! `found_inf`) -> the finite scan of every gradient, in parallel -> split every buffer at the
//! same element boundaries and run core's fast slice path on each piece, on its thread, with the
//! stochastic-rounding key moved to the piece's first element -> core's `commit`. Each element's
//! update depends only on that element and the plan, so every split gives the same bits as
//! core's reference path on one thread.
//!
//! A multi-tensor step treats its tensors as one concatenated index space: tensor `k`'s element
//! `i` has global index `len(0) + .. + len(k-1) + i`, which keys stochastic rounding. A
//! multi-tensor step over `[a, b]` therefore equals a one-tensor step over `a ++ b`.

use crate::isa::{isa, Isa, IsaUnavailable};
use crate::kernels;
use adamant_core::error::{Buffer, StepError, StepOutcome};
use adamant_core::rules::adam::AdamScalars;
use adamant_core::rules::check_lens;
use adamant_core::rules::lion::LionScalars;
use adamant_core::rules::sgd::SgdScalars;
use adamant_core::store::{Element, StateElement};
use adamant_core::{Adam, Begin, Lion, Plan, Sgd, SkipReason, StepOptions};

mod apply;

/// Pieces of one tensor handed to different threads start at multiples of this many elements
/// of the tensor (whole cache lines for every dtype, whole vectors for every ISA).
pub const SPLIT_ALIGN: usize = 64;

/// Fewest elements worth a thread of their own by default: below this, starting a thread
/// costs more than the work it takes over.
const DEFAULT_GRAIN: usize = 1 << 16;

/// Number of threads the machine offers (`std::thread::available_parallelism`, at least 1),
/// read once per process (the query reads cgroup files).
pub fn default_threads() -> usize {
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *THREADS.get_or_init(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    })
}

/// How a step is run: thread count, instruction set and the smallest piece worth a thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Driver {
    threads: usize,
    isa: Isa,
    grain: usize,
}

impl Default for Driver {
    fn default() -> Self {
        Driver::new()
    }
}

/// One tensor of an Adam/AdamW step: every slice has the parameter's length.
#[derive(Debug)]
pub struct AdamTensor<'a, P, G, S> {
    /// Parameters (updated in place).
    pub param: &'a mut [P],
    /// Gradients.
    pub grad: &'a [G],
    /// First moment (updated in place).
    pub exp_avg: &'a mut [S],
    /// Second moment (updated in place).
    pub exp_avg_sq: &'a mut [S],
}

/// One tensor of an SGD step: `momentum_buffer` has the parameter's length, or is empty when
/// momentum is 0.
#[derive(Debug)]
pub struct SgdTensor<'a, P, G, S> {
    /// Parameters (updated in place).
    pub param: &'a mut [P],
    /// Gradients.
    pub grad: &'a [G],
    /// Momentum buffer (updated in place; empty without momentum).
    pub momentum_buffer: &'a mut [S],
}

/// One tensor of a Lion step: every slice has the parameter's length.
#[derive(Debug)]
pub struct LionTensor<'a, P, G, S> {
    /// Parameters (updated in place).
    pub param: &'a mut [P],
    /// Gradients.
    pub grad: &'a [G],
    /// Momentum (updated in place).
    pub exp_avg: &'a mut [S],
}

/// A run of elements that can be cut in two at the same index in every buffer it holds.
pub(crate) trait Piece: Sized + Send {
    fn len(&self) -> usize;
    fn split_at(self, mid: usize) -> (Self, Self);
    /// Cuts fall on multiples of this many elements from the piece's start.
    fn align(&self) -> usize {
        SPLIT_ALIGN
    }
}

/// Split a slice that is either as long as the tensor or empty (SGD without momentum).
fn split_opt<S>(s: &mut [S], mid: usize) -> (&mut [S], &mut [S]) {
    let mid = mid.min(s.len());
    s.split_at_mut(mid)
}

struct AdamPiece<'a, P, G, S> {
    offset: usize,
    /// The tensor's clip coefficient (the plan's unless a clipper set one per tensor).
    clip_coef: f32,
    param: &'a mut [P],
    grad: &'a [G],
    exp_avg: &'a mut [S],
    exp_avg_sq: &'a mut [S],
}

impl<P: Element, G: Element, S: StateElement> Piece for AdamPiece<'_, P, G, S> {
    fn len(&self) -> usize {
        self.param.len()
    }
    fn split_at(self, mid: usize) -> (Self, Self) {
        let (p0, p1) = self.param.split_at_mut(mid);
        let (g0, g1) = self.grad.split_at(mid);
        let (m0, m1) = self.exp_avg.split_at_mut(mid);
        let (v0, v1) = self.exp_avg_sq.split_at_mut(mid);
        (
            AdamPiece {
                offset: self.offset,
                clip_coef: self.clip_coef,
                param: p0,
                grad: g0,
                exp_avg: m0,
                exp_avg_sq: v0,
            },
            AdamPiece {
                offset: self.offset + mid,
                clip_coef: self.clip_coef,
                param: p1,
                grad: g1,
                exp_avg: m1,
                exp_avg_sq: v1,
            },
        )
    }
}

struct SgdPiece<'a, P, G, S> {
    offset: usize,
    /// The tensor's clip coefficient (the plan's unless a clipper set one per tensor).
    clip_coef: f32,
    param: &'a mut [P],
    grad: &'a [G],
    momentum_buffer: &'a mut [S],
}

impl<P: Element, G: Element, S: StateElement> Piece for SgdPiece<'_, P, G, S> {
    fn len(&self) -> usize {
        self.param.len()
    }
    fn split_at(self, mid: usize) -> (Self, Self) {
        let (p0, p1) = self.param.split_at_mut(mid);
        let (g0, g1) = self.grad.split_at(mid);
        let (b0, b1) = split_opt(self.momentum_buffer, mid);
        (
            SgdPiece {
                offset: self.offset,
                clip_coef: self.clip_coef,
                param: p0,
                grad: g0,
                momentum_buffer: b0,
            },
            SgdPiece {
                offset: self.offset + mid,
                clip_coef: self.clip_coef,
                param: p1,
                grad: g1,
                momentum_buffer: b1,
            },
        )
    }
}

struct LionPiece<'a, P, G, S> {
    offset: usize,
    /// The tensor's clip coefficient (the plan's unless a clipper set one per tensor).
    clip_coef: f32,
    param: &'a mut [P],
    grad: &'a [G],
    exp_avg: &'a mut [S],
}

impl<P: Element, G: Element, S: StateElement> Piece for LionPiece<'_, P, G, S> {
    fn len(&self) -> usize {
        self.param.len()
    }
    fn split_at(self, mid: usize) -> (Self, Self) {
        let (p0, p1) = self.param.split_at_mut(mid);
        let (g0, g1) = self.grad.split_at(mid);
        let (m0, m1) = self.exp_avg.split_at_mut(mid);
        (
            LionPiece {
                offset: self.offset,
                clip_coef: self.clip_coef,
                param: p0,
                grad: g0,
                exp_avg: m0,
            },
            LionPiece {
                offset: self.offset + mid,
                clip_coef: self.clip_coef,
                param: p1,
                grad: g1,
                exp_avg: m1,
            },
        )
    }
}

/// Four buffers cut together for the ceiling kernels (`c` may be empty).
pub(crate) struct TriplePiece<'a, P, G, S> {
    pub(crate) a: &'a mut [P],
    pub(crate) g: &'a [G],
    pub(crate) b: &'a mut [S],
    pub(crate) c: &'a mut [S],
}

impl<P: Element, G: Element, S: Element> Piece for TriplePiece<'_, P, G, S> {
    fn len(&self) -> usize {
        self.a.len()
    }
    fn split_at(self, mid: usize) -> (Self, Self) {
        let (a0, a1) = self.a.split_at_mut(mid);
        let (g0, g1) = self.g.split_at(mid);
        let (b0, b1) = self.b.split_at_mut(mid);
        let (c0, c1) = split_opt(self.c, mid);
        (
            TriplePiece {
                a: a0,
                g: g0,
                b: b0,
                c: c0,
            },
            TriplePiece {
                a: a1,
                g: g1,
                b: b1,
                c: c1,
            },
        )
    }
}

struct GradPiece<'a, G>(&'a [G]);

impl<G: Element> Piece for GradPiece<'_, G> {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn split_at(self, mid: usize) -> (Self, Self) {
        let (a, b) = self.0.split_at(mid);
        (GradPiece(a), GradPiece(b))
    }
}

/// Deal `pieces` (in order) into at most `threads` groups of about equal element counts,
/// cutting a piece only at a multiple of its [`Piece::align`] ([`SPLIT_ALIGN`] unless the
/// piece says otherwise) from its start (pieces start at a tensor's start or at such a cut, so
/// cuts are aligned within each tensor).
pub(crate) fn partition<T: Piece>(pieces: Vec<T>, threads: usize, grain: usize) -> Vec<Vec<T>> {
    let total: usize = pieces.iter().map(Piece::len).sum();
    let by_grain = total.div_ceil(grain.max(1)).max(1);
    let groups = threads.clamp(1, by_grain);
    if groups == 1 {
        return vec![pieces];
    }
    let target = total.div_ceil(groups).div_ceil(SPLIT_ALIGN) * SPLIT_ALIGN;
    let mut out: Vec<Vec<T>> = Vec::with_capacity(groups);
    let mut current: Vec<T> = Vec::new();
    let mut room = target;
    for piece in pieces {
        let mut rest = piece;
        loop {
            if rest.len() == 0 {
                break;
            }
            if out.len() + 1 == groups || rest.len() <= room {
                room = room.saturating_sub(rest.len());
                current.push(rest);
                break;
            }
            let align = rest.align().max(1);
            let cut = room.div_ceil(align).saturating_mul(align);
            if cut >= rest.len() {
                room = 0;
                current.push(rest);
                break;
            }
            let (head, tail) = rest.split_at(cut);
            if head.len() > 0 {
                current.push(head);
            }
            out.push(std::mem::take(&mut current));
            room = target;
            rest = tail;
        }
        if room == 0 && out.len() + 1 < groups {
            out.push(std::mem::take(&mut current));
            room = target;
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Run `work` on every group, one group per thread (the first on the calling thread), and
/// return the results in group order.
pub(crate) fn run_groups<T: Piece, R: Send>(
    groups: Vec<Vec<T>>,
    work: &(impl Fn(Vec<T>) -> R + Sync),
) -> Vec<R> {
    let mut groups = groups.into_iter();
    let Some(first) = groups.next() else {
        return Vec::new();
    };
    let rest: Vec<Vec<T>> = groups.collect();
    if rest.is_empty() {
        return vec![work(first)];
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = rest.into_iter().map(|g| s.spawn(move || work(g))).collect();
        let mut out = vec![work(first)];
        for h in handles {
            match h.join() {
                Ok(r) => out.push(r),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        out
    })
}

impl Driver {
    /// All cores ([`default_threads`]) and the process's instruction set ([`isa()`]).
    pub fn new() -> Driver {
        Driver {
            threads: default_threads(),
            isa: isa(),
            grain: DEFAULT_GRAIN,
        }
    }

    /// Use `threads` threads (0 means [`default_threads`]).
    pub fn with_threads(self, threads: usize) -> Driver {
        Driver {
            threads: if threads == 0 {
                default_threads()
            } else {
                threads
            },
            ..self
        }
    }

    /// Use the kernels compiled for `isa`, if this CPU has it.
    pub fn with_isa(self, isa: Isa) -> Result<Driver, IsaUnavailable> {
        if !isa.is_available() {
            return Err(IsaUnavailable(isa));
        }
        Ok(Driver { isa, ..self })
    }

    /// Give each thread at least `grain` elements (default 65536; at least 1). Smaller values
    /// only make sense for tests of odd splits.
    pub fn with_grain(self, grain: usize) -> Driver {
        Driver {
            grain: grain.max(1),
            ..self
        }
    }

    /// Thread count.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Instruction set of the kernels.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// Fewest elements per thread.
    pub fn grain(&self) -> usize {
        self.grain
    }

    /// The finite scan of every gradient, split over the threads.
    pub(crate) fn all_finite_grads<G: Element>(&self, grads: Vec<&[G]>) -> bool {
        self.all_finite(grads)
    }

    /// The finite scan of every gradient, split over the threads.
    fn all_finite<G: Element>(&self, grads: Vec<&[G]>) -> bool {
        let isa = self.isa;
        let pieces = grads.into_iter().map(GradPiece).collect();
        let groups = partition(pieces, self.threads, self.grain);
        run_groups(groups, &|group: Vec<GradPiece<'_, G>>| {
            group.iter().all(|g| kernels::all_finite(isa, g.0))
        })
        .into_iter()
        .all(|ok| ok)
    }

    /// Core's `begin` with the finite scan done here, in parallel: validation, step overflow and
    /// `found_inf` come first, exactly as in core.
    pub(crate) fn begin<'g, K, G: Element>(
        &self,
        begin: Begin<K>,
        opts: &StepOptions,
        grads: impl FnOnce() -> Vec<&'g [G]>,
    ) -> Begin<K> {
        if matches!(begin, Begin::Apply(_)) && opts.checks_finite() && !self.all_finite(grads()) {
            return Begin::Skip(SkipReason::NonFiniteGrad);
        }
        begin
    }

    /// One Adam/AdamW step over one tensor. Same bits as `adam_reference` for any thread count
    /// and instruction set; on error or skip nothing is written.
    pub fn adam_step<P: Element, G: Element, S: StateElement>(
        &self,
        opt: &mut Adam,
        param: &mut [P],
        grad: &[G],
        exp_avg: &mut [S],
        exp_avg_sq: &mut [S],
        opts: &StepOptions,
    ) -> Result<StepOutcome, StepError> {
        self.adam_step_multi(
            opt,
            &mut [AdamTensor {
                param,
                grad,
                exp_avg,
                exp_avg_sq,
            }],
            opts,
        )
    }

    /// One Adam/AdamW step over a list of tensors sharing `opt` (one step counter for the whole
    /// model). Every length is checked and every gradient scanned before anything is written.
    pub fn adam_step_multi<P: Element, G: Element, S: StateElement>(
        &self,
        opt: &mut Adam,
        tensors: &mut [AdamTensor<'_, P, G, S>],
        opts: &StepOptions,
    ) -> Result<StepOutcome, StepError> {
        adam_check(tensors)?;
        let begin = opt.begin::<G, _>(opts, core::iter::empty())?;
        let plan = match self.begin(begin, opts, || tensors.iter().map(|t| t.grad).collect()) {
            Begin::Skip(r) => return Ok(StepOutcome::Skipped(r)),
            Begin::Apply(plan) => plan,
        };
        self.adam_apply(&plan, tensors, None);
        opt.commit(&plan);
        Ok(StepOutcome::Applied { step: plan.step })
    }

    /// The element pass of a planned step; `coefs` (one per tensor) replaces the plan's clip
    /// coefficient tensor by tensor.
    pub(crate) fn adam_apply<P: Element, G: Element, S: StateElement>(
        &self,
        plan: &Plan<AdamScalars>,
        tensors: &mut [AdamTensor<'_, P, G, S>],
        coefs: Option<&[f32]>,
    ) {
        let mut offset = 0;
        let pieces = tensors
            .iter_mut()
            .enumerate()
            .map(|(i, t)| {
                let piece = AdamPiece {
                    offset,
                    clip_coef: coefs.map_or(plan.prep.clip_coef, |c| c[i]),
                    param: &mut *t.param,
                    grad: t.grad,
                    exp_avg: &mut *t.exp_avg,
                    exp_avg_sq: &mut *t.exp_avg_sq,
                };
                offset += piece.len();
                piece
            })
            .collect();
        let isa = self.isa;
        let work = |group: Vec<AdamPiece<'_, P, G, S>>| {
            for p in group {
                let mut plan = shifted(plan, p.offset);
                plan.prep.clip_coef = p.clip_coef;
                kernels::adam(isa, p.param, p.grad, p.exp_avg, p.exp_avg_sq, &plan);
            }
        };
        run_groups(partition(pieces, self.threads, self.grain), &work);
    }

    /// One SGD step over one tensor (`momentum_buffer` empty when momentum is 0).
    pub fn sgd_step<P: Element, G: Element, S: StateElement>(
        &self,
        opt: &mut Sgd,
        param: &mut [P],
        grad: &[G],
        momentum_buffer: &mut [S],
        opts: &StepOptions,
    ) -> Result<StepOutcome, StepError> {
        self.sgd_step_multi(
            opt,
            &mut [SgdTensor {
                param,
                grad,
                momentum_buffer,
            }],
            opts,
        )
    }

    /// One SGD step over a list of tensors sharing `opt`.
    pub fn sgd_step_multi<P: Element, G: Element, S: StateElement>(
        &self,
        opt: &mut Sgd,
        tensors: &mut [SgdTensor<'_, P, G, S>],
        opts: &StepOptions,
    ) -> Result<StepOutcome, StepError> {
        sgd_check(opt, tensors)?;
        let begin = opt.begin::<G, _>(opts, core::iter::empty())?;
        let plan = match self.begin(begin, opts, || tensors.iter().map(|t| t.grad).collect()) {
            Begin::Skip(r) => return Ok(StepOutcome::Skipped(r)),
            Begin::Apply(plan) => plan,
        };
        self.sgd_apply(&plan, tensors, None);
        opt.commit(&plan);
        Ok(StepOutcome::Applied { step: plan.step })
    }

    /// The element pass of a planned step; `coefs` (one per tensor) replaces the plan's clip
    /// coefficient tensor by tensor.
    pub(crate) fn sgd_apply<P: Element, G: Element, S: StateElement>(
        &self,
        plan: &Plan<SgdScalars>,
        tensors: &mut [SgdTensor<'_, P, G, S>],
        coefs: Option<&[f32]>,
    ) {
        let mut offset = 0;
        let pieces = tensors
            .iter_mut()
            .enumerate()
            .map(|(i, t)| {
                let piece = SgdPiece {
                    offset,
                    clip_coef: coefs.map_or(plan.prep.clip_coef, |c| c[i]),
                    param: &mut *t.param,
                    grad: t.grad,
                    momentum_buffer: &mut *t.momentum_buffer,
                };
                offset += piece.len();
                piece
            })
            .collect();
        let isa = self.isa;
        let work = |group: Vec<SgdPiece<'_, P, G, S>>| {
            for p in group {
                let mut plan = shifted(plan, p.offset);
                plan.prep.clip_coef = p.clip_coef;
                kernels::sgd(isa, p.param, p.grad, p.momentum_buffer, &plan);
            }
        };
        run_groups(partition(pieces, self.threads, self.grain), &work);
    }

    /// One Lion step over one tensor.
    pub fn lion_step<P: Element, G: Element, S: StateElement>(
        &self,
        opt: &mut Lion,
        param: &mut [P],
        grad: &[G],
        exp_avg: &mut [S],
        opts: &StepOptions,
    ) -> Result<StepOutcome, StepError> {
        self.lion_step_multi(
            opt,
            &mut [LionTensor {
                param,
                grad,
                exp_avg,
            }],
            opts,
        )
    }

    /// One Lion step over a list of tensors sharing `opt`.
    pub fn lion_step_multi<P: Element, G: Element, S: StateElement>(
        &self,
        opt: &mut Lion,
        tensors: &mut [LionTensor<'_, P, G, S>],
        opts: &StepOptions,
    ) -> Result<StepOutcome, StepError> {
        lion_check(tensors)?;
        let begin = opt.begin::<G, _>(opts, core::iter::empty())?;
        let plan = match self.begin(begin, opts, || tensors.iter().map(|t| t.grad).collect()) {
            Begin::Skip(r) => return Ok(StepOutcome::Skipped(r)),
            Begin::Apply(plan) => plan,
        };
        self.lion_apply(&plan, tensors, None);
        opt.commit(&plan);
        Ok(StepOutcome::Applied { step: plan.step })
    }

    /// The element pass of a planned step; `coefs` (one per tensor) replaces the plan's clip
    /// coefficient tensor by tensor.
    pub(crate) fn lion_apply<P: Element, G: Element, S: StateElement>(
        &self,
        plan: &Plan<LionScalars>,
        tensors: &mut [LionTensor<'_, P, G, S>],
        coefs: Option<&[f32]>,
    ) {
        let mut offset = 0;
        let pieces = tensors
            .iter_mut()
            .enumerate()
            .map(|(i, t)| {
                let piece = LionPiece {
                    offset,
                    clip_coef: coefs.map_or(plan.prep.clip_coef, |c| c[i]),
                    param: &mut *t.param,
                    grad: t.grad,
                    exp_avg: &mut *t.exp_avg,
                };
                offset += piece.len();
                piece
            })
            .collect();
        let isa = self.isa;
        let work = |group: Vec<LionPiece<'_, P, G, S>>| {
            for p in group {
                let mut plan = shifted(plan, p.offset);
                plan.prep.clip_coef = p.clip_coef;
                kernels::lion(isa, p.param, p.grad, p.exp_avg, &plan);
            }
        };
        run_groups(partition(pieces, self.threads, self.grain), &work);
    }
}

/// The plan for a piece starting at global element `offset`.
pub(crate) fn shifted<K: Copy>(plan: &Plan<K>, offset: usize) -> Plan<K> {
    Plan {
        sr: plan.sr.map(|k| k.offset_by(offset)),
        ..*plan
    }
}

/// One Adam/AdamW step on `threads` threads (0: all cores) with the process's ISA.
/// See [`Driver::adam_step`].
pub fn adam_step<P: Element, G: Element, S: StateElement>(
    opt: &mut Adam,
    param: &mut [P],
    grad: &[G],
    exp_avg: &mut [S],
    exp_avg_sq: &mut [S],
    opts: &StepOptions,
    threads: usize,
) -> Result<StepOutcome, StepError> {
    Driver::new()
        .with_threads(threads)
        .adam_step(opt, param, grad, exp_avg, exp_avg_sq, opts)
}

/// One Adam/AdamW step over a list of tensors on `threads` threads. See
/// [`Driver::adam_step_multi`].
pub fn adam_step_multi<P: Element, G: Element, S: StateElement>(
    opt: &mut Adam,
    tensors: &mut [AdamTensor<'_, P, G, S>],
    opts: &StepOptions,
    threads: usize,
) -> Result<StepOutcome, StepError> {
    Driver::new()
        .with_threads(threads)
        .adam_step_multi(opt, tensors, opts)
}

/// One SGD step on `threads` threads (0: all cores). See [`Driver::sgd_step`].
pub fn sgd_step<P: Element, G: Element, S: StateElement>(
    opt: &mut Sgd,
    param: &mut [P],
    grad: &[G],
    momentum_buffer: &mut [S],
    opts: &StepOptions,
    threads: usize,
) -> Result<StepOutcome, StepError> {
    Driver::new()
        .with_threads(threads)
        .sgd_step(opt, param, grad, momentum_buffer, opts)
}

/// One SGD step over a list of tensors. See [`Driver::sgd_step_multi`].
pub fn sgd_step_multi<P: Element, G: Element, S: StateElement>(
    opt: &mut Sgd,
    tensors: &mut [SgdTensor<'_, P, G, S>],
    opts: &StepOptions,
    threads: usize,
) -> Result<StepOutcome, StepError> {
    Driver::new()
        .with_threads(threads)
        .sgd_step_multi(opt, tensors, opts)
}

/// One Lion step on `threads` threads (0: all cores). See [`Driver::lion_step`].
pub fn lion_step<P: Element, G: Element, S: StateElement>(
    opt: &mut Lion,
    param: &mut [P],
    grad: &[G],
    exp_avg: &mut [S],
    opts: &StepOptions,
    threads: usize,
) -> Result<StepOutcome, StepError> {
    Driver::new()
        .with_threads(threads)
        .lion_step(opt, param, grad, exp_avg, opts)
}

/// One Lion step over a list of tensors. See [`Driver::lion_step_multi`].
pub fn lion_step_multi<P: Element, G: Element, S: StateElement>(
    opt: &mut Lion,
    tensors: &mut [LionTensor<'_, P, G, S>],
    opts: &StepOptions,
    threads: usize,
) -> Result<StepOutcome, StepError> {
    Driver::new()
        .with_threads(threads)
        .lion_step_multi(opt, tensors, opts)
}

/// Every length of an Adam step, checked before anything else.
pub(crate) fn adam_check<P: Element, G: Element, S: StateElement>(
    tensors: &[AdamTensor<'_, P, G, S>],
) -> Result<(), StepError> {
    for t in tensors.iter() {
        check_lens(
            t.param.len(),
            &[
                (Buffer::Grad, t.grad.len()),
                (Buffer::ExpAvg, t.exp_avg.len()),
                (Buffer::ExpAvgSq, t.exp_avg_sq.len()),
            ],
        )?;
    }
    Ok(())
}

/// Every length of a Sgd step, checked before anything else.
pub(crate) fn sgd_check<P: Element, G: Element, S: StateElement>(
    opt: &Sgd,
    tensors: &[SgdTensor<'_, P, G, S>],
) -> Result<(), StepError> {
    for t in tensors.iter() {
        check_lens(t.param.len(), &[(Buffer::Grad, t.grad.len())])?;
        check_lens(
            opt.momentum_buffer_len(t.param.len()),
            &[(Buffer::MomentumBuffer, t.momentum_buffer.len())],
        )?;
    }
    Ok(())
}

/// Every length of a Lion step, checked before anything else.
pub(crate) fn lion_check<P: Element, G: Element, S: StateElement>(
    tensors: &[LionTensor<'_, P, G, S>],
) -> Result<(), StepError> {
    for t in tensors.iter() {
        check_lens(
            t.param.len(),
            &[
                (Buffer::Grad, t.grad.len()),
                (Buffer::ExpAvg, t.exp_avg.len()),
            ],
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Span(usize, usize); // (offset, len)
    impl Piece for Span {
        fn len(&self) -> usize {
            self.1
        }
        fn split_at(self, mid: usize) -> (Self, Self) {
            (Span(self.0, mid), Span(self.0 + mid, self.1 - mid))
        }
    }

    #[test]
    fn spec_partition_covers_everything_once_with_aligned_cuts() {
        for lens in [
            vec![0usize],
            vec![1],
            vec![1000],
            vec![4097, 3, 0, 130],
            vec![63; 9],
        ] {
            for threads in 1..9 {
                let mut start = 0;
                let pieces: Vec<Span> = lens
                    .iter()
                    .map(|&l| {
                        let s = Span(start, l);
                        start += l;
                        s
                    })
                    .collect();
                let groups = partition(pieces, threads, 1);
                assert!(groups.len() <= threads.max(1));
                let flat: Vec<&Span> = groups.iter().flatten().collect();
                // In order, contiguous, complete.
                let mut at = 0;
                for s in &flat {
                    assert_eq!(s.0, at);
                    at += s.1;
                }
                assert_eq!(at, lens.iter().sum::<usize>());
                // Every cut inside a tensor is a multiple of SPLIT_ALIGN from the tensor start.
                let mut tensor_start = 0;
                let starts: Vec<usize> = lens
                    .iter()
                    .map(|&l| {
                        let s = tensor_start;
                        tensor_start += l;
                        s
                    })
                    .collect();
                for s in &flat {
                    let t = starts.iter().rposition(|&b| b <= s.0).unwrap();
                    assert_eq!((s.0 - starts[t]) % SPLIT_ALIGN, 0, "{lens:?} {threads}");
                }
            }
        }
    }
}
