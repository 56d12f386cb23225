//! The steps behind both entry points (XLA handlers and host arrays): checks on dtypes,
//! lengths, alignment and overlap, the plan from core, then core's slice kernels with the
//! hardware square root. One function per rule serves JAX and `adamant.numpy`, so the two
//! give the same bits by construction.

use super::api::dtype;
use super::frame::Fail;
use adamant_core::reduce;
use adamant_core::rules::adam::{adam_slice, AdamState};
use adamant_core::rules::lion::lion_slice;
use adamant_core::rules::sgd::sgd_slice;
use adamant_core::scalars::Sqrt;
use adamant_core::{bf16, f16, Adam, AdamConfig, Begin, Lion, LionConfig, Sgd, SgdConfig};
use adamant_core::{Plan, StepOptions};
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
    if d == dtype::F32 {
        4
    } else {
        2
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
unsafe fn slice_mut<'a, T>(t: &Tensor) -> &'a mut [T] {
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
unsafe fn slice<'a, T>(t: &Tensor) -> &'a [T] {
    if t.len == 0 {
        return &[];
    }
    // SAFETY: non-null, aligned, `len` elements of `T`, not written while borrowed.
    unsafe { core::slice::from_raw_parts(t.data as *const T, t.len) }
}

/// Run `$body` with `$T` bound to the element type of XLA dtype `$d`.
macro_rules! with_float {
    ($d:expr, $T:ident, $body:block) => {
        match $d {
            dtype::F32 => {
                type $T = f32;
                $body
            }
            dtype::BF16 => {
                type $T = bf16;
                $body
            }
            dtype::F16 => {
                type $T = f16;
                $body
            }
            other => Err(Fail::invalid(format!("unsupported dtype {other}"))),
        }
    };
}

macro_rules! with_state {
    ($d:expr, $T:ident, $body:block) => {
        match $d {
            dtype::F32 => {
                type $T = f32;
                $body
            }
            dtype::BF16 => {
                type $T = bf16;
                $body
            }
            other => Err(Fail::invalid(format!("unsupported state dtype {other}"))),
        }
    };
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
    config: AdamConfig,
) -> Result<(), Fail> {
    let _ieee = super::fpenv::IeeeGuard::new();
    let n = param.len;
    param.check(target, PARAM_DTYPES, n)?;
    grad.check(target, PARAM_DTYPES, n)?;
    exp_avg.check(target, STATE_DTYPES, n)?;
    exp_avg_sq.check(target, &[exp_avg.dtype], n)?;
    check_disjoint(target, &[param, exp_avg, exp_avg_sq], &[grad])?;
    let opt = Adam::new(config).map_err(|e| config_fail(target, e))?;
    let opt = Adam {
        state: AdamState { step: count },
        ..opt
    };
    let plan = match opt
        .begin::<f32, _>(&StepOptions::new(lr), [])
        .map_err(|e| step_fail(target, e))?
    {
        Begin::Apply(p) => p,
        Begin::Skip(r) => return Err(skip_fail(target, r)),
    };
    // SAFETY: the caller's contract covers every tensor in `copies`.
    unsafe { copy_in(copies) };
    with_float!(param.dtype, P, {
        with_float!(grad.dtype, G, {
            with_state!(exp_avg.dtype, S, {
                // SAFETY: every tensor was checked (dtype, length, alignment) and the written
                // ones are disjoint from each other and from `grad`.
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
        })
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
    config: LionConfig,
) -> Result<(), Fail> {
    let _ieee = super::fpenv::IeeeGuard::new();
    let n = param.len;
    param.check(target, PARAM_DTYPES, n)?;
    grad.check(target, PARAM_DTYPES, n)?;
    exp_avg.check(target, STATE_DTYPES, n)?;
    check_disjoint(target, &[param, exp_avg], &[grad])?;
    let mut opt = Lion::new(config).map_err(|e| config_fail(target, e))?;
    opt.state.step = count;
    let plan = match opt
        .begin::<f32, _>(&StepOptions::new(lr), [])
        .map_err(|e| step_fail(target, e))?
    {
        Begin::Apply(p) => p,
        Begin::Skip(r) => return Err(skip_fail(target, r)),
    };
    // SAFETY: the caller's contract covers every tensor in `copies`.
    unsafe { copy_in(copies) };
    with_float!(param.dtype, P, {
        with_float!(grad.dtype, G, {
            with_state!(exp_avg.dtype, S, {
                // SAFETY: checked and disjoint, as in `adam`.
                unsafe {
                    lion_slice::<P, G, S>(
                        slice_mut(&param),
                        slice(&grad),
                        slice_mut(&exp_avg),
                        &plan,
                    );
                }
                Ok(())
            })
        })
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
    config: SgdConfig,
) -> Result<(), Fail> {
    let _ieee = super::fpenv::IeeeGuard::new();
    let n = param.len;
    param.check(target, PARAM_DTYPES, n)?;
    grad.check(target, PARAM_DTYPES, n)?;
    let buf_len = if config.has_momentum() { n } else { 0 };
    momentum_buffer.check(target, STATE_DTYPES, buf_len)?;
    check_disjoint(target, &[param, momentum_buffer], &[grad])?;
    let mut opt = Sgd::new(config).map_err(|e| config_fail(target, e))?;
    opt.state.step = count;
    let plan: Plan<_> = match opt
        .begin::<f32, _>(&StepOptions::new(lr), [])
        .map_err(|e| step_fail(target, e))?
    {
        Begin::Apply(p) => p,
        Begin::Skip(r) => return Err(skip_fail(target, r)),
    };
    // SAFETY: the caller's contract covers every tensor in `copies`.
    unsafe { copy_in(copies) };
    with_float!(param.dtype, P, {
        with_float!(grad.dtype, G, {
            with_state!(momentum_buffer.dtype, S, {
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
        })
    })
}

/// Phase one of a sharded sum of squares: one canonical tile result per 4096 elements of `x`
/// into `partials` (f32, `ceil(len/4096)` elements).
///
/// # Safety
/// As [`adam`].
pub unsafe fn sum_sq_partials(target: &str, x: Tensor, partials: Tensor) -> Result<(), Fail> {
    let _ieee = super::fpenv::IeeeGuard::new();
    x.check(target, PARAM_DTYPES, x.len)?;
    partials.check(target, &[dtype::F32], reduce::tile_count(x.len))?;
    check_disjoint(target, &[partials], &[x])?;
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
