//! Tensor views and their checks: dtype, NULL, byte length, alignment, overlap.
//!
//! A view is `{data, dtype, len}` over caller-owned memory. The library never keeps a view
//! past the call. This module only checks views; it does not read or write their elements.

use crate::status::adamant_status;
use adamant_core::Dtype;
use core::ffi::c_void;

/// Element types of a view. Crosses the ABI as a `uint32_t` and is checked on entry (an
/// unknown value gives `ADAMANT_STATUS_INVALID_ENUM`). Values equal `adamant_core::Dtype`'s.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum adamant_dtype {
    /// IEEE binary32 (`float`).
    F32 = 0,
    /// bfloat16 (the top 16 bits of a `float`), stored as `uint16_t`.
    Bf16 = 1,
    /// IEEE binary16 (`_Float16` / `__half`), stored as `uint16_t`.
    F16 = 2,
}

const _: () = {
    assert!(adamant_dtype::F32 as u32 == Dtype::F32 as u32);
    assert!(adamant_dtype::Bf16 as u32 == Dtype::Bf16 as u32);
    assert!(adamant_dtype::F16 as u32 == Dtype::F16 as u32);
};

/// A writable view of `len` elements of type `dtype` (an `adamant_dtype` value) at `data`.
/// `data` may be NULL only when `len` is 0, and must be aligned to the element size.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct adamant_tensor {
    /// First element (caller-owned, borrowed for the call only).
    pub data: *mut c_void,
    /// Element type: an `adamant_dtype` value.
    pub dtype: u32,
    /// Number of elements.
    pub len: usize,
}

/// A read-only view (gradients, reduction inputs); otherwise as `adamant_tensor`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct adamant_const_tensor {
    /// First element (caller-owned, borrowed for the call only, never written).
    pub data: *const c_void,
    /// Element type: an `adamant_dtype` value.
    pub dtype: u32,
    /// Number of elements.
    pub len: usize,
}

/// A view that passed every per-view check.
#[derive(Clone, Copy, Debug)]
pub(crate) struct View {
    /// Element 0 (dangling but aligned when `len == 0`); kept as a pointer so the caller's
    /// provenance survives to the slice the executor builds.
    pub ptr: *mut u8,
    pub dtype: Dtype,
    pub len: usize,
    /// Whether the call writes this buffer.
    pub written: bool,
}

/// States may be f32 or bf16.
pub(crate) const STATE_DTYPES: &[Dtype] = &[Dtype::F32, Dtype::Bf16];
/// Parameters and gradients may be any dtype.
pub(crate) const ANY_DTYPE: &[Dtype] = &Dtype::ALL;

/// The dtype with ABI value `v`, or `InvalidEnum`.
pub(crate) fn dtype_from(v: u32) -> Result<Dtype, adamant_status> {
    Dtype::from_u32(v).ok_or(adamant_status::InvalidEnum)
}

/// Check the enum and dtype of one view (first pass, so enum errors win over pointer ones
/// of later views only in the documented order: callers run this over every view first).
pub(crate) fn check_dtype(v: u32, allowed: &[Dtype]) -> Result<Dtype, adamant_status> {
    let d = dtype_from(v)?;
    if allowed.contains(&d) {
        Ok(d)
    } else {
        Err(adamant_status::UnsupportedDtype)
    }
}

/// Check NULL, byte length and alignment of a view whose dtype already passed.
pub(crate) fn check_ptr(
    data: *const c_void,
    dtype: Dtype,
    len: usize,
    written: bool,
) -> Result<View, adamant_status> {
    let size = dtype.size();
    if len == 0 {
        // An empty view reads and writes nothing; its pointer is not used.
        return Ok(View {
            ptr: core::ptr::NonNull::<u32>::dangling().as_ptr().cast(), // aligned, never used
            dtype,
            len: 0,
            written,
        });
    }
    if data.is_null() {
        return Err(adamant_status::NullPointer);
    }
    let addr = data.addr();
    let bytes = len.checked_mul(size).filter(|&b| b <= isize::MAX as usize);
    match bytes {
        Some(b) if addr.checked_add(b).is_some() => {}
        _ => return Err(adamant_status::LengthTooLarge),
    }
    if addr % size != 0 {
        return Err(adamant_status::Misaligned);
    }
    Ok(View {
        ptr: data.cast_mut().cast(),
        dtype,
        len,
        written,
    })
}

impl View {
    /// Byte range `[start, end)`.
    pub fn range(&self) -> (usize, usize) {
        let start = self.ptr.addr();
        (start, start + self.len * self.dtype.size())
    }

    /// A raw byte range of `bytes` bytes at `addr` (an `out_*` scalar), written.
    pub fn out_range<T>(p: *const T) -> Range {
        Range {
            start: p.addr(),
            end: p.addr() + core::mem::size_of::<T>(),
            written: true,
        }
    }

    /// As a [`Range`] for the overlap check.
    pub fn as_range(&self) -> Range {
        let (start, end) = self.range();
        Range {
            start,
            end,
            written: self.written,
        }
    }
}

/// A byte range a call touches.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Range {
    pub start: usize,
    pub end: usize,
    pub written: bool,
}

impl Range {
    fn conflicts(&self, o: &Range) -> bool {
        (self.written || o.written)
            && self.start < self.end
            && o.start < o.end
            && self.start < o.end
            && o.start < self.end
    }
}

/// `Overlap` when any two ranges intersect and at least one of them is written. Empty
/// ranges never overlap. Pairwise over the ranges (no allocation); the ranges are produced
/// lazily by `ranges(i)` for `i in 0..n`.
pub(crate) fn check_overlap(
    n: usize,
    ranges: impl Fn(usize) -> Range,
) -> Result<(), adamant_status> {
    for i in 0..n {
        let a = ranges(i);
        if a.start == a.end {
            continue;
        }
        for j in (i + 1)..n {
            if a.conflicts(&ranges(j)) {
                return Err(adamant_status::Overlap);
            }
        }
    }
    Ok(())
}

/// Element count that `T`-typed view `v` holds as a slice of `T` (for the executor).
///
/// # Safety
/// `v` passed [`check_ptr`] and the caller promises its memory is valid and, for the
/// duration of the borrow, not accessed through any other path.
pub(crate) unsafe fn as_slice_mut<'a, T>(v: &View) -> &'a mut [T] {
    debug_assert_eq!(core::mem::size_of::<T>(), v.dtype.size());
    // SAFETY: non-NULL (or dangling-aligned with len 0), aligned, within isize; exclusive by
    // the overlap check and the caller's promise.
    unsafe { core::slice::from_raw_parts_mut(v.ptr.cast::<T>(), v.len) }
}

/// Shared slice over a checked view.
///
/// # Safety
/// As [`as_slice_mut`], except that other shared borrows may coexist.
pub(crate) unsafe fn as_slice<'a, T>(v: &View) -> &'a [T] {
    debug_assert_eq!(core::mem::size_of::<T>(), v.dtype.size());
    // SAFETY: as in `as_slice_mut`; no writer overlaps a read-only view (overlap check).
    unsafe { core::slice::from_raw_parts(v.ptr.cast_const().cast::<T>(), v.len) }
}

/// Check a caller's output array of `len` values of `T` without creating a reference to it
/// (it may be uninitialised): NULL with `len > 0`, alignment, byte length.
pub(crate) fn check_out_array<T>(p: *mut T, len: usize) -> Result<(), adamant_status> {
    if len == 0 {
        return Ok(());
    }
    if p.is_null() {
        return Err(adamant_status::NullPointer);
    }
    if !p.is_aligned() {
        return Err(adamant_status::Misaligned);
    }
    let size = core::mem::size_of::<T>();
    match len.checked_mul(size) {
        Some(b) if b <= isize::MAX as usize && p.addr().checked_add(b).is_some() => Ok(()),
        _ => Err(adamant_status::LengthTooLarge),
    }
}
