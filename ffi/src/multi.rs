//! Validation of a whole call (one tensor or a list of tensors) before anything is written.
//!
//! A rule describes its `B` buffers per tensor with a [`Spec`]; the call's views come from
//! `raw(i)` for tensor `i`. The passes run over every tensor before the next pass starts, and
//! the executor runs only after all of them (and the configuration and skip checks) passed:
//! 1. dtypes (enum value, then allowed for that buffer);
//! 2. per view: NULL with `len > 0`, byte length, alignment; then the rule's length rule;
//! 3. overlap between every pair of byte ranges where one is written, including the view
//!    arrays themselves and every `out_*` pointer.
//!
//! Nothing here allocates: views are re-derived from the caller's arrays on each pass.

use crate::status::adamant_status;
use crate::tensor::{check_dtype, check_overlap, check_ptr, Range, View};
use adamant_core::Dtype;
use core::ffi::c_void;

/// A view as the caller passed it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Raw {
    pub data: *const c_void,
    pub dtype: u32,
    pub len: usize,
}

impl From<crate::tensor::adamant_tensor> for Raw {
    fn from(t: crate::tensor::adamant_tensor) -> Raw {
        Raw {
            data: t.data.cast_const(),
            dtype: t.dtype,
            len: t.len,
        }
    }
}

impl From<crate::tensor::adamant_const_tensor> for Raw {
    fn from(t: crate::tensor::adamant_const_tensor) -> Raw {
        Raw {
            data: t.data,
            dtype: t.dtype,
            len: t.len,
        }
    }
}

/// What a rule does with one of its buffers.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Spec {
    pub written: bool,
    pub allowed: &'static [Dtype],
}

/// The checked views of tensor `i`, assuming the dtype pass succeeded.
pub(crate) fn views<const B: usize>(
    specs: &[Spec; B],
    raw: &[Raw; B],
) -> Result<[View; B], adamant_status> {
    let mut out = [View {
        ptr: core::ptr::NonNull::<u32>::dangling().as_ptr().cast(),
        dtype: Dtype::F32,
        len: 0,
        written: false,
    }; B];
    for b in 0..B {
        let d = check_dtype(raw[b].dtype, specs[b].allowed)?;
        out[b] = check_ptr(raw[b].data, d, raw[b].len, specs[b].written)?;
    }
    Ok(out)
}

/// Run the three passes over `count` tensors. `lens(&views)` is the rule's length (and
/// dtype-pairing) rule; `extra` are further ranges (view arrays, `out_*` pointers).
pub(crate) fn check_all<const B: usize>(
    count: usize,
    specs: &[Spec; B],
    raw: impl Fn(usize) -> [Raw; B],
    lens: impl Fn(&[View; B]) -> Result<(), adamant_status>,
    extra: &[Range],
) -> Result<(), adamant_status> {
    for i in 0..count {
        let r = raw(i);
        for b in 0..B {
            check_dtype(r[b].dtype, specs[b].allowed)?;
        }
    }
    for i in 0..count {
        lens(&views(specs, &raw(i))?)?;
    }
    let n = count.checked_mul(B).ok_or(adamant_status::LengthTooLarge)?;
    let empty = Range {
        start: 0,
        end: 0,
        written: false,
    };
    check_overlap(n + extra.len(), |k| {
        if k < n {
            match views(specs, &raw(k / B)) {
                Ok(v) => v[k % B].as_range(),
                Err(_) => empty,
            }
        } else {
            extra[k - n]
        }
    })
}

/// The read-only byte range of a caller's array of `count` values of `T`.
pub(crate) fn array_range<T>(p: *const T, count: usize) -> Range {
    Range {
        start: p.addr(),
        end: p
            .addr()
            .saturating_add(count.saturating_mul(core::mem::size_of::<T>())),
        written: false,
    }
}

/// The view arrays' ranges (0 or 4 of them) followed by `out_step`'s range, as a fixed
/// array and the number of entries used.
pub(crate) fn extra_ranges(arrays: &[Range], out_step: *const u64) -> ([Range; 8], usize) {
    let out = View::out_range(out_step);
    let mut e = [out; 8];
    let n = arrays.len().min(7);
    e[..n].copy_from_slice(&arrays[..n]);
    e[n] = out;
    (e, n + 1)
}
