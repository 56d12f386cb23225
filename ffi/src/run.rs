//! The shared body of every step entry point: validate the whole call, plan, decide the
//! skip, run the executor over every tensor, then write `out_step`.

use crate::exec;
use crate::multi::{check_all, views, Raw, Spec};
use crate::status::adamant_status;
use crate::tensor::{Range, View};
use adamant_core::rules::{Begin, Plan};
use adamant_core::{StepError, StepOptions};

/// One step over `count` tensors of `B` buffers each; `grad` is the index of the gradient
/// buffer; `coefs` is empty or one clip coefficient per tensor. `check(i, views)` is a
/// further per-tensor rule run after every view check (Adam-mini's layout against the
/// lengths). `begin` plans the step (validating configuration and options; it sees no
/// gradients, the finite scan runs here over every tensor's gradient with its own dtype).
/// `run(i, plan, views)` updates tensor `i`.
///
/// # Safety
/// `out_step` passed `try_out!` and is part of `extra`; every raw view's memory is valid as
/// the entry point's documentation requires.
pub(crate) unsafe fn step<const B: usize, K: Copy>(
    count: usize,
    specs: &[Spec; B],
    raw: impl Fn(usize) -> [Raw; B],
    lens: impl Fn(&[View; B]) -> Result<(), adamant_status>,
    extra: &[Range],
    coefs: &[f32],
    opts: &StepOptions,
    grad: usize,
    check: impl Fn(usize, &[View; B]) -> Result<(), adamant_status>,
    begin: impl FnOnce() -> Result<Begin<K>, StepError>,
    run: impl Fn(usize, &Plan<K>, &[View; B]) -> Result<(), adamant_status>,
    out_step: *mut u64,
) -> Result<(), adamant_status> {
    crate::options::check_clip_coefs(coefs)?;
    check_all(count, specs, &raw, lens, extra)?;
    for i in 0..count {
        check(i, &views(specs, &raw(i))?)?;
    }
    let plan = match begin()? {
        Begin::Skip(r) => return Err(r.into()),
        Begin::Apply(p) => p,
    };
    if opts.checks_finite() {
        for i in 0..count {
            if !exec::all_finite(&views(specs, &raw(i))?[grad]) {
                return Err(adamant_status::SkippedNonFinite);
            }
        }
    }
    for i in 0..count {
        // A per-tensor clip coefficient (AdaGC) replaces the options' one for its tensor.
        let mut p = plan;
        if let Some(&c) = coefs.get(i) {
            p.prep.clip_coef = c;
        }
        run(i, &p, &views(specs, &raw(i))?)?;
    }
    // SAFETY: non-NULL, aligned (try_out!), and not overlapping any view (overlap check).
    unsafe { out_step.write(plan.step) };
    Ok(())
}

/// No further per-tensor rule (the `check` of [`step`]).
pub(crate) fn no_check<V>(_: usize, _: &V) -> Result<(), adamant_status> {
    Ok(())
}

/// The empty gradient list handed to core's `begin` (the scan happens in [`step`]).
pub(crate) fn no_grads() -> core::iter::Empty<&'static [f32]> {
    core::iter::empty()
}
