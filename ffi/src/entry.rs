//! The shared shape of the CPU rules' step entry points (`adamant_<rule>_step`,
//! `_step_multi`, `_step_multi_clip`, `_step_scalars`): the panic boundary, the pointer checks
//! of the configuration, options and `out_step`, the caller's view arrays, the configuration
//! and options conversions, then [`crate::run::step`]. A rule states only what is its own
//! (a [`Rule`]); Adam-mini, whose tensors carry layouts, uses the pieces directly.
//!
//! The order of the checks is the documented one: `config`, `options`, `out_step` pointers;
//! the view arrays and `clip_coefs` of a `_multi` call; the options' flags; the
//! configuration's flags and values; the options' values; then [`crate::run::step`].

use crate::multi::{array_range, extra_ranges, Raw, Spec};
use crate::options::adamant_step_options;
use crate::status::adamant_status;
use crate::tensor::{adamant_const_tensor, adamant_tensor, Range, View, ANY_DTYPE, STATE_DTYPES};
use adamant_core::rules::{Begin, Plan};
use adamant_core::{StepError, StepOptions};

/// The buffers `[param, grad, states...]` of a rule: the parameter written and the gradient
/// read (any dtype), every state written (f32 or bf16).
pub(crate) const fn specs<const B: usize>() -> [Spec; B] {
    let mut s = [Spec {
        written: true,
        allowed: STATE_DTYPES,
    }; B];
    s[0].allowed = ANY_DTYPE;
    s[1] = Spec {
        written: false,
        allowed: ANY_DTYPE,
    };
    s
}

/// `LengthMismatch` unless every view in `v` has the length of the first.
pub(crate) fn same_lens(v: &[View]) -> Result<(), adamant_status> {
    match v.split_first() {
        Some((first, rest)) if rest.iter().any(|x| x.len != first.len) => {
            Err(adamant_status::LengthMismatch)
        }
        _ => Ok(()),
    }
}

/// `UnsupportedDtype` unless two states (`exp_avg`, `exp_avg_sq`) share their dtype.
pub(crate) fn same_dtype(a: &View, b: &View) -> Result<(), adamant_status> {
    if a.dtype == b.dtype {
        Ok(())
    } else {
        Err(adamant_status::UnsupportedDtype)
    }
}

/// What distinguishes one CPU rule's step entry points; everything else is [`step`].
pub(crate) trait Rule<const B: usize>: Copy {
    /// The ABI configuration struct.
    type Config: Copy;
    /// Core's configuration.
    type Core: Copy;
    /// The plan's per-step scalars.
    type Scalars: Copy;
    /// The buffers per tensor.
    const SPECS: [Spec; B] = specs();
    /// Core's configuration at learning rate `lr`: the flags checked, then the values.
    fn config(self, c: Self::Config, lr: f64) -> Result<Self::Core, adamant_status>;
    /// The rule's length (and dtype-pairing) rule for one tensor.
    fn lens(core: &Self::Core, v: &[View; B]) -> Result<(), adamant_status>;
    /// Core's plan after `step` applied steps (no gradients: [`crate::run::step`] scans them).
    fn begin(
        core: Self::Core,
        step: u64,
        opts: &StepOptions,
    ) -> Result<Begin<Self::Scalars>, StepError>;
    /// Update one checked tensor.
    fn run(plan: &Plan<Self::Scalars>, v: &[View; B]) -> Result<(), adamant_status>;
}

/// One of a `_multi` call's view arrays (`params`, `grads`, a state), as the caller passed it.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Array {
    Mut(*const adamant_tensor),
    Const(*const adamant_const_tensor),
}

impl From<*const adamant_tensor> for Array {
    fn from(p: *const adamant_tensor) -> Array {
        Array::Mut(p)
    }
}

impl From<*const adamant_const_tensor> for Array {
    fn from(p: *const adamant_const_tensor) -> Array {
        Array::Const(p)
    }
}

impl Array {
    /// The read-only byte range of `count` views.
    fn range(self, count: usize) -> Range {
        match self {
            Array::Mut(p) => array_range(p, count),
            Array::Const(p) => array_range(p, count),
        }
    }
}

/// A checked view array.
#[derive(Clone, Copy, Debug)]
enum Slice<'a> {
    Mut(&'a [adamant_tensor]),
    Const(&'a [adamant_const_tensor]),
}

/// The checked view arrays of a `_multi` call: tensor `i` is view `i` of each.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Lists<'a, const B: usize>([Slice<'a>; B]);

impl<const B: usize> Lists<'_, B> {
    /// Tensor `i` (`i < count`).
    pub(crate) fn raw(&self, i: usize) -> [Raw; B] {
        core::array::from_fn(|b| match self.0[b] {
            Slice::Mut(s) => s[i].into(),
            Slice::Const(s) => s[i].into(),
        })
    }
}

/// Check each of `arrays` in order (NULL with `count > 0`, alignment, byte length).
///
/// # Safety
/// Each array that passes points to `count` views, readable for the call.
pub(crate) unsafe fn lists<'a, const B: usize>(
    arrays: [Array; B],
    count: usize,
) -> Result<Lists<'a, B>, adamant_status> {
    let mut out = [Slice::Const(&[]); B];
    for (slot, a) in out.iter_mut().zip(arrays) {
        *slot = match a {
            Array::Mut(p) => Slice::Mut(try_slice!(p, count)),
            Array::Const(p) => Slice::Const(try_slice!(p, count)),
        };
    }
    Ok(Lists(out))
}

/// The byte ranges of a `_multi` call's arrays (the view arrays, then `more`), for the
/// overlap check; `.1` of them are used.
pub(crate) fn array_ranges<const B: usize>(
    arrays: [Array; B],
    count: usize,
    more: &[Range],
) -> ([Range; 8], usize) {
    let empty = Range {
        start: 0,
        end: 0,
        written: false,
    };
    let mut r = [empty; 8];
    let mut n = 0;
    let all = arrays
        .iter()
        .map(|a| a.range(count))
        .chain(more.iter().copied());
    for (slot, range) in r.iter_mut().zip(all) {
        *slot = range;
        n += 1;
    }
    (r, n)
}

/// The tensors of a step call.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Call<const B: usize> {
    /// `adamant_<rule>_step`: one tensor.
    One([Raw; B]),
    /// `adamant_<rule>_step_multi[_clip]`: `count` tensors from the caller's view arrays;
    /// `_clip`'s `clip_coefs` (NULL with `count > 0` is `ADAMANT_STATUS_NULL_POINTER`,
    /// checked before anything else).
    Many {
        arrays: [Array; B],
        clip_coefs: Option<*const f32>,
        count: usize,
    },
}

impl<const B: usize> Call<B> {
    /// `_step`: one tensor, `(param, grad, states...)`.
    pub(crate) fn one(views: impl Tuple<Raw, B>) -> Call<B> {
        Call::One(views.array())
    }

    /// `_step_multi`: `count` tensors, the options' clip coefficient for each.
    pub(crate) fn many(arrays: impl Tuple<Array, B>, count: usize) -> Call<B> {
        Call::Many {
            arrays: arrays.array(),
            clip_coefs: None,
            count,
        }
    }

    /// `_step_multi_clip`: `count` tensors and their `clip_coefs`.
    pub(crate) fn clipped(
        arrays: impl Tuple<Array, B>,
        clip_coefs: *const f32,
        count: usize,
    ) -> Call<B> {
        Call::Many {
            arrays: arrays.array(),
            clip_coefs: Some(clip_coefs),
            count,
        }
    }
}

/// An entry point's buffer arguments `(param, grad, states...)` as one array.
pub(crate) trait Tuple<T, const B: usize> {
    /// The arguments in order, each converted to `T`.
    fn array(self) -> [T; B];
}

impl<T, P: Into<T>, G: Into<T>, S: Into<T>> Tuple<T, 3> for (P, G, S) {
    fn array(self) -> [T; 3] {
        [self.0.into(), self.1.into(), self.2.into()]
    }
}

impl<T, P: Into<T>, G: Into<T>, S: Into<T>, V: Into<T>> Tuple<T, 4> for (P, G, S, V) {
    fn array(self) -> [T; 4] {
        [self.0.into(), self.1.into(), self.2.into(), self.3.into()]
    }
}

/// The whole body of a CPU rule's step entry point, under the panic boundary.
///
/// # Safety
/// The entry point's contract: `config` and `options` point to valid structs, every view
/// (and view array, and `clip_coefs`) to the documented memory, valid for the call;
/// `out_step` to a writable `uint64_t`.
pub(crate) unsafe fn step<R: Rule<B>, const B: usize>(
    rule: R,
    config: *const R::Config,
    options: *const adamant_step_options,
    step: u64,
    call: Call<B>,
    out_step: *mut u64,
) -> adamant_status {
    ffi_boundary!({
        if let Call::Many {
            clip_coefs: Some(c),
            count,
            ..
        } = call
        {
            if c.is_null() && count > 0 {
                return Err(adamant_status::NullPointer);
            }
        }
        let config = *try_ref!(config);
        let options = *try_ref!(options);
        let out_step = try_out!(out_step);
        match call {
            Call::One(raw) => {
                // SAFETY: the caller's contract; `out_step` checked above.
                unsafe { run(rule, config, options, step, 1, |_| raw, &[], &[], out_step) }
            }
            Call::Many {
                arrays,
                clip_coefs,
                count,
            } => {
                // SAFETY: the caller's contract.
                let lists = unsafe { lists(arrays, count) }?;
                let clip_coefs = clip_coefs.unwrap_or(core::ptr::null());
                // SAFETY: the caller's contract.
                let c = unsafe { crate::options::clip_coefs(clip_coefs, count) }?;
                let ranges = array_ranges(arrays, count, &[array_range(clip_coefs, c.len())]);
                let raw = |i: usize| lists.raw(i);
                let arrays = &ranges.0[..ranges.1];
                // SAFETY: the caller's contract; `out_step` checked above.
                unsafe { run(rule, config, options, step, count, raw, arrays, c, out_step) }
            }
        }
    })
}

/// Options and configuration, then [`crate::run::step`].
///
/// # Safety
/// As [`step`]; `out_step` passed `try_out!`.
unsafe fn run<R: Rule<B>, const B: usize>(
    rule: R,
    config: R::Config,
    options: adamant_step_options,
    step: u64,
    count: usize,
    raw: impl Fn(usize) -> [Raw; B],
    arrays: &[Range],
    coefs: &[f32],
    out_step: *mut u64,
) -> Result<(), adamant_status> {
    let opts = options.to_core()?;
    // Configuration first: the length rule may depend on it (SGD's momentum buffer).
    let cfg = rule.config(config, opts.lr)?;
    opts.validate()?;
    let extra = extra_ranges(arrays, out_step);
    // SAFETY: forwarded caller contract; `out_step` checked and in `extra`.
    unsafe {
        crate::run::step(
            count,
            &R::SPECS,
            raw,
            |v| R::lens(&cfg, v),
            &extra.0[..extra.1],
            coefs,
            &opts,
            1,
            crate::run::no_check,
            || R::begin(cfg, step, &opts),
            |_, plan, v| R::run(plan, v),
            out_step,
        )
    }
}

/// The body of an `adamant_<rule>_step_scalars` entry point, under the panic boundary:
/// `config` and `out` checked, then `scalars(*config)` written to `*out` on success.
///
/// # Safety
/// `config` points to a valid struct; `out` to writable memory for one `S`.
pub(crate) unsafe fn scalars<C: Copy, S>(
    config: *const C,
    out: *mut S,
    scalars: impl FnOnce(C) -> Result<S, adamant_status>,
) -> adamant_status {
    ffi_boundary!({
        let config = *try_ref!(config);
        let out = try_out!(out);
        let k = scalars(config)?;
        // SAFETY: non-NULL and aligned (try_out!); a plain struct write.
        unsafe { out.write(k) };
        Ok(())
    })
}

/// `InvalidConfig` for step `t = 0` (scalars are for the step being applied, 1-based).
pub(crate) fn applied_step(t: u64) -> Result<(), adamant_status> {
    if t == 0 {
        Err(adamant_status::InvalidConfig)
    } else {
        Ok(())
    }
}
