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

/// A whole buffer is a piece: cut with `split_at_mut`, so a buffer shorter than the cut panics.
impl<T: Send> Piece for &mut [T] {
    fn len(&self) -> usize {
        <[T]>::len(self)
    }
    fn split_at(self, mid: usize) -> (Self, Self) {
        self.split_at_mut(mid)
    }
}

/// A read-only buffer (the gradient) is a piece.
impl<T: Sync> Piece for &[T] {
    fn len(&self) -> usize {
        <[T]>::len(self)
    }
    fn split_at(self, mid: usize) -> (Self, Self) {
        <[T]>::split_at(self, mid)
    }
}

/// A state buffer that is either as long as the tensor or empty (SGD's momentum buffer
/// without momentum); an empty one stays empty in both halves.
pub(crate) struct MaybeEmpty<'a, S>(&'a mut [S]);

impl<S: Send> Piece for MaybeEmpty<'_, S> {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn split_at(self, mid: usize) -> (Self, Self) {
        let (head, tail) = split_opt(self.0, mid);
        (MaybeEmpty(head), MaybeEmpty(tail))
    }
}

/// A tensor's buffers, cut together; the first one (the parameter) sets the length.
impl<A: Piece, B: Piece, C: Piece> Piece for (A, B, C) {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn split_at(self, mid: usize) -> (Self, Self) {
        let ((a0, a1), (b0, b1), (c0, c1)) = (
            self.0.split_at(mid),
            self.1.split_at(mid),
            self.2.split_at(mid),
        );
        ((a0, b0, c0), (a1, b1, c1))
    }
}

/// A tensor's buffers, cut together; the first one (the parameter) sets the length.
impl<A: Piece, B: Piece, C: Piece, D: Piece> Piece for (A, B, C, D) {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn split_at(self, mid: usize) -> (Self, Self) {
        let ((a0, a1), (b0, b1), (c0, c1), (d0, d1)) = (
            self.0.split_at(mid),
            self.1.split_at(mid),
            self.2.split_at(mid),
            self.3.split_at(mid),
        );
        ((a0, b0, c0, d0), (a1, b1, c1, d1))
    }
}

/// One tensor of a rule's step (the public `*Tensor` structs) and what the step needs to know
/// about the rule. The step's skeleton is the same for every rule (length checks -> core's
/// `begin` -> parallel finite scan -> cut into pieces -> the rule's kernel on each piece, on
/// its thread -> core's `commit`), so it is written once against this trait, in
/// [`Driver::step_multi`] and [`Driver::apply`]; each rule states only its length rules, its
/// optimizer, its buffers and its kernel.
pub(crate) trait RuleTensor: Sized {
    /// The rule's optimizer value (step counter and config).
    type Opt;
    /// Core's per-step scalars of the rule.
    type Scalars: Copy + Sync;
    /// Element type of the gradient.
    type Grad: Element;
    /// Every buffer of the tensor, borrowed, in the kernel's argument order (cut together).
    type Bufs<'b>: Piece;

    /// Every length of every tensor, in the rule's order, before anything else.
    fn check(opt: &Self::Opt, tensors: &[Self]) -> Result<(), StepError>;
    /// Core's `begin` (validation, step counter, `found_inf`; the finite scan is the driver's).
    fn begin(opt: &Self::Opt, opts: &StepOptions) -> Result<Begin<Self::Scalars>, StepError>;
    /// Core's `commit`.
    fn commit(opt: &mut Self::Opt, plan: &Plan<Self::Scalars>);
    /// The gradient.
    fn grad(&self) -> &[Self::Grad];
    /// Every buffer, reborrowed.
    fn bufs(&mut self) -> Self::Bufs<'_>;
    /// The rule's kernel over a run of elements, under `plan` (already moved to the run's first
    /// element and carrying its tensor's clip coefficient).
    fn update(bufs: Self::Bufs<'_>, isa: Isa, plan: &Plan<Self::Scalars>);
}

/// A run of one tensor's elements handed to a thread: the tensor's buffers cut down to the
/// run, where the run starts in the step's global index space (`offset`, which keys
/// stochastic rounding) and the tensor's clip coefficient (the plan's unless a clipper set
/// one per tensor).
struct TensorPiece<B> {
    offset: usize,
    clip_coef: f32,
    bufs: B,
}

impl<B: Piece> Piece for TensorPiece<B> {
    fn len(&self) -> usize {
        self.bufs.len()
    }
    fn split_at(self, mid: usize) -> (Self, Self) {
        let (head, tail) = self.bufs.split_at(mid);
        (
            TensorPiece {
                offset: self.offset,
                clip_coef: self.clip_coef,
                bufs: head,
            },
            TensorPiece {
                offset: self.offset + mid,
                clip_coef: self.clip_coef,
                bufs: tail,
            },
        )
    }
}

impl<P: Element, G: Element, S: StateElement> RuleTensor for AdamTensor<'_, P, G, S> {
    type Opt = Adam;
    type Scalars = AdamScalars;
    type Grad = G;
    type Bufs<'b> = (&'b mut [P], &'b [G], &'b mut [S], &'b mut [S]);

    fn check(_opt: &Adam, tensors: &[Self]) -> Result<(), StepError> {
        for t in tensors {
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
    fn begin(opt: &Adam, opts: &StepOptions) -> Result<Begin<AdamScalars>, StepError> {
        opt.begin::<G, _>(opts, core::iter::empty())
    }
    fn commit(opt: &mut Adam, plan: &Plan<AdamScalars>) {
        opt.commit(plan);
    }
    fn grad(&self) -> &[G] {
        self.grad
    }
    fn bufs(&mut self) -> Self::Bufs<'_> {
        (self.param, self.grad, self.exp_avg, self.exp_avg_sq)
    }
    fn update(
        (param, grad, exp_avg, exp_avg_sq): Self::Bufs<'_>,
        isa: Isa,
        plan: &Plan<AdamScalars>,
    ) {
        kernels::adam(isa, param, grad, exp_avg, exp_avg_sq, plan);
    }
}

impl<P: Element, G: Element, S: StateElement> RuleTensor for SgdTensor<'_, P, G, S> {
    type Opt = Sgd;
    type Scalars = SgdScalars;
    type Grad = G;
    type Bufs<'b> = (&'b mut [P], &'b [G], MaybeEmpty<'b, S>);

    /// The momentum buffer's length is the config's (empty without momentum).
    fn check(opt: &Sgd, tensors: &[Self]) -> Result<(), StepError> {
        for t in tensors {
            check_lens(t.param.len(), &[(Buffer::Grad, t.grad.len())])?;
            check_lens(
                opt.momentum_buffer_len(t.param.len()),
                &[(Buffer::MomentumBuffer, t.momentum_buffer.len())],
            )?;
        }
        Ok(())
    }
    fn begin(opt: &Sgd, opts: &StepOptions) -> Result<Begin<SgdScalars>, StepError> {
        opt.begin::<G, _>(opts, core::iter::empty())
    }
    fn commit(opt: &mut Sgd, plan: &Plan<SgdScalars>) {
        opt.commit(plan);
    }
    fn grad(&self) -> &[G] {
        self.grad
    }
    fn bufs(&mut self) -> Self::Bufs<'_> {
        (self.param, self.grad, MaybeEmpty(self.momentum_buffer))
    }
    fn update((param, grad, momentum): Self::Bufs<'_>, isa: Isa, plan: &Plan<SgdScalars>) {
        kernels::sgd(isa, param, grad, momentum.0, plan);
    }
}

impl<P: Element, G: Element, S: StateElement> RuleTensor for LionTensor<'_, P, G, S> {
    type Opt = Lion;
    type Scalars = LionScalars;
    type Grad = G;
    type Bufs<'b> = (&'b mut [P], &'b [G], &'b mut [S]);

    fn check(_opt: &Lion, tensors: &[Self]) -> Result<(), StepError> {
        for t in tensors {
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
    fn begin(opt: &Lion, opts: &StepOptions) -> Result<Begin<LionScalars>, StepError> {
        opt.begin::<G, _>(opts, core::iter::empty())
    }
    fn commit(opt: &mut Lion, plan: &Plan<LionScalars>) {
        opt.commit(plan);
    }
    fn grad(&self) -> &[G] {
        self.grad
    }
    fn bufs(&mut self) -> Self::Bufs<'_> {
        (self.param, self.grad, self.exp_avg)
    }
    fn update((param, grad, exp_avg): Self::Bufs<'_>, isa: Isa, plan: &Plan<LionScalars>) {
        kernels::lion(isa, param, grad, exp_avg, plan);
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
        let groups = partition(grads, self.threads, self.grain);
        run_groups(groups, &|group: Vec<&[G]>| {
            group.iter().all(|g| kernels::all_finite(isa, g))
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

    /// One step of any rule over a list of tensors sharing `opt`: every length checked, core's
    /// `begin`, the parallel finite scan, the element pass, core's `commit`. Returns before
    /// writing anything on an error or a skip.
    fn step_multi<T: RuleTensor>(
        &self,
        opt: &mut T::Opt,
        tensors: &mut [T],
        opts: &StepOptions,
    ) -> Result<StepOutcome, StepError> {
        T::check(opt, tensors)?;
        let begin = T::begin(opt, opts)?;
        let plan = match self.begin(begin, opts, || tensors.iter().map(T::grad).collect()) {
            Begin::Skip(r) => return Ok(StepOutcome::Skipped(r)),
            Begin::Apply(plan) => plan,
        };
        self.apply(&plan, tensors, None);
        T::commit(opt, &plan);
        Ok(StepOutcome::Applied { step: plan.step })
    }

    /// The element pass of a planned step of any rule: the tensors as one index space, split
    /// into pieces over the threads, each piece updated by the rule's kernel under the plan
    /// moved to its first element; `coefs` (one per tensor) replaces the plan's clip
    /// coefficient tensor by tensor.
    pub(crate) fn apply<T: RuleTensor>(
        &self,
        plan: &Plan<T::Scalars>,
        tensors: &mut [T],
        coefs: Option<&[f32]>,
    ) {
        let mut offset = 0;
        let pieces = tensors
            .iter_mut()
            .enumerate()
            .map(|(i, t)| {
                let piece = TensorPiece {
                    offset,
                    clip_coef: coefs.map_or(plan.prep.clip_coef, |c| c[i]),
                    bufs: t.bufs(),
                };
                offset += piece.len();
                piece
            })
            .collect();
        let isa = self.isa;
        let work = |group: Vec<TensorPiece<T::Bufs<'_>>>| {
            for p in group {
                let mut plan = shifted(plan, p.offset);
                plan.prep.clip_coef = p.clip_coef;
                T::update(p.bufs, isa, &plan);
            }
        };
        run_groups(partition(pieces, self.threads, self.grain), &work);
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
        self.step_multi(opt, tensors, opts)
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
        self.step_multi(opt, tensors, opts)
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
        self.step_multi(opt, tensors, opts)
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
