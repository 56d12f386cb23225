//! The canonical reduction (numeric contract item 6) and the non-finite check: whole-tensor
//! sums, the two-phase partials/combine calls for sharded statistics, max-abs.
//!
//! Sharded use: each rank calls `adamant_reduce_partials[_multi]` on its shard, the caller
//! gathers the partials in global tile order (an all-gather of a few floats), and every rank
//! calls `adamant_reduce_combine` on the same array, getting the same bits. Shards cut at
//! 4096-element boundaries reproduce the unsharded result.

use crate::exec::{self, Op};
use crate::multi::{array_range, check_all, views, Raw, Spec};
use crate::status::adamant_status;
use crate::tensor::{adamant_const_tensor, Range, View, ANY_DTYPE};

/// What a reduction sums. Crosses the ABI as a `uint32_t`, checked on entry.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum adamant_reduce_op {
    /// `sum x`.
    Sum = 0,
    /// `sum x*x` (each square rounded to f32, then added): squared L2 norm.
    SumSq = 1,
}

fn op_from(v: u32) -> Result<Op, adamant_status> {
    match v {
        0 => Ok(Op::Sum),
        1 => Ok(Op::SumSq),
        _ => Err(adamant_status::InvalidEnum),
    }
}

/// Values per tile of the canonical reduction.
pub const ADAMANT_REDUCE_TILE: usize = 4096;
const _: () = assert!(ADAMANT_REDUCE_TILE == adamant_core::reduce::TILE);

/// Number of partials (tiles) for `n` elements: `ceil(n / 4096)`.
#[no_mangle]
pub extern "C" fn adamant_reduce_tile_count(n: usize) -> usize {
    adamant_core::reduce::tile_count(n)
}

const IN: [Spec; 1] = [Spec {
    written: false,
    allowed: ANY_DTYPE,
}];

/// A written f32 output array as a range.
fn out_array(p: *const f32, len: usize) -> Range {
    Range {
        written: true,
        ..array_range(p, len)
    }
}

/// Check `count` input views (from `raw`) plus extra ranges.
fn check_inputs(
    count: usize,
    raw: impl Fn(usize) -> [Raw; 1],
    extra: &[Range],
) -> Result<(), adamant_status> {
    check_all(count, &IN, raw, |_: &[View; 1]| Ok(()), extra)
}

/// Phase one over one tensor: the canonical result of every 4096-element tile of `x`, in
/// order, into `out_partials`, which must hold exactly `adamant_reduce_tile_count(x.len)`
/// floats (`ADAMANT_STATUS_LENGTH_MISMATCH` otherwise). `op` is an `adamant_reduce_op`.
///
/// # Safety
/// `x.data` points to `x.len` elements of its dtype; `out_partials` to `partials_len`
/// writable floats; valid for the call.
#[no_mangle]
pub unsafe extern "C" fn adamant_reduce_partials(
    x: adamant_const_tensor,
    op: u32,
    out_partials: *mut f32,
    partials_len: usize,
) -> adamant_status {
    // SAFETY: the caller's contract above.
    unsafe { adamant_reduce_partials_multi(&x, 1, op, out_partials, partials_len) }
}

/// Phase one over `count` tensors: the partials of `xs[0]`, then of `xs[1]`, ... into
/// `out_partials`, which must hold exactly the sum of their tile counts. For a global norm
/// over a model, combine the result with `adamant_reduce_combine`.
///
/// # Safety
/// `xs` points to `count` views (may be NULL when `count` is 0), each as in
/// `adamant_reduce_partials`; `out_partials` to `partials_len` writable floats.
#[no_mangle]
pub unsafe extern "C" fn adamant_reduce_partials_multi(
    xs: *const adamant_const_tensor,
    count: usize,
    op: u32,
    out_partials: *mut f32,
    partials_len: usize,
) -> adamant_status {
    ffi_boundary!({
        let x = try_slice!(xs, count);
        crate::tensor::check_out_array(out_partials, partials_len)?;
        let op = op_from(op)?;
        let raw = |i: usize| [Raw::from(x[i])];
        let extra = [
            array_range(xs, count),
            out_array(out_partials, partials_len),
        ];
        check_inputs(count, raw, &extra)?;
        let mut want = 0usize;
        for t in x {
            want = want
                .checked_add(adamant_core::reduce::tile_count(t.len))
                .ok_or(adamant_status::LengthMismatch)?;
        }
        if want != partials_len {
            return Err(adamant_status::LengthMismatch);
        }
        if partials_len == 0 {
            return Ok(());
        }
        // SAFETY: non-NULL, aligned, `partials_len` floats (checked above), overlapping no
        // input (overlap check).
        let out = unsafe { core::slice::from_raw_parts_mut(out_partials, partials_len) };
        let mut at = 0;
        for i in 0..count {
            let v = views(&IN, &raw(i))?[0];
            let k = adamant_core::reduce::tile_count(v.len);
            exec::partials(&v, op, &mut out[at..at + k])?;
            at += k;
        }
        Ok(())
    })
}

/// Phase two: reduce partials gathered in global tile order by the same tree, identically
/// on every rank. No partials give `+0.0`. Writes `*out_result` (f32).
///
/// # Safety
/// `partials` points to `len` floats (may be NULL when `len` is 0); `out_result` to a
/// writable float.
#[no_mangle]
pub unsafe extern "C" fn adamant_reduce_combine(
    partials: *const f32,
    len: usize,
    out_result: *mut f32,
) -> adamant_status {
    ffi_boundary!({
        let p = try_slice!(partials, len);
        let out = try_out!(out_result);
        crate::tensor::check_overlap(2, |k| {
            if k == 0 {
                array_range(partials, len)
            } else {
                View::out_range(out)
            }
        })?;
        let r = adamant_core::reduce::combine(p);
        // SAFETY: non-NULL, aligned, not overlapping the input.
        unsafe { out.write(r) };
        Ok(())
    })
}

/// The canonical sum (or sum of squares) of one whole tensor: the same bits as
/// `adamant_reduce_partials` followed by `adamant_reduce_combine`.
///
/// # Safety
/// `x.data` points to `x.len` elements of its dtype; `out_result` to a writable float.
#[no_mangle]
pub unsafe extern "C" fn adamant_reduce(
    x: adamant_const_tensor,
    op: u32,
    out_result: *mut f32,
) -> adamant_status {
    ffi_boundary!({
        let out = try_out!(out_result);
        let op = op_from(op)?;
        let raw = |_| [Raw::from(x)];
        check_inputs(1, raw, &[View::out_range(out)])?;
        let r = exec::sum(&views(&IN, &raw(0))?[0], op);
        // SAFETY: non-NULL, aligned, not overlapping the input.
        unsafe { out.write(r) };
        Ok(())
    })
}

/// `max |x_i|` over one tensor (`+0.0` when empty; the canonical NaN `0x7FFFFFFF` if any
/// element is NaN). Order-free: combine per-shard results with `adamant_max_abs_combine`.
///
/// # Safety
/// `x.data` points to `x.len` elements of its dtype; `out_result` to a writable float.
#[no_mangle]
pub unsafe extern "C" fn adamant_max_abs(
    x: adamant_const_tensor,
    out_result: *mut f32,
) -> adamant_status {
    ffi_boundary!({
        let out = try_out!(out_result);
        let raw = |_| [Raw::from(x)];
        check_inputs(1, raw, &[View::out_range(out)])?;
        let r = exec::max_abs(&views(&IN, &raw(0))?[0]);
        // SAFETY: non-NULL, aligned, not overlapping the input.
        unsafe { out.write(r) };
        Ok(())
    })
}

/// Combine per-shard max-abs results (any order): NaN if any is NaN, else the largest.
///
/// # Safety
/// `parts` points to `len` floats (may be NULL when `len` is 0); `out_result` to a writable
/// float.
#[no_mangle]
pub unsafe extern "C" fn adamant_max_abs_combine(
    parts: *const f32,
    len: usize,
    out_result: *mut f32,
) -> adamant_status {
    ffi_boundary!({
        let p = try_slice!(parts, len);
        let out = try_out!(out_result);
        crate::tensor::check_overlap(2, |k| {
            if k == 0 {
                array_range(parts, len)
            } else {
                View::out_range(out)
            }
        })?;
        let r = adamant_core::reduce::combine_max_abs(p);
        // SAFETY: non-NULL, aligned, not overlapping the input.
        unsafe { out.write(r) };
        Ok(())
    })
}

/// The non-finite check of the numeric contract: `*out_all_finite = 1` when every element
/// of every view is finite (no NaN, no infinity), else 0. Read from the stored bits.
///
/// # Safety
/// `xs` points to `count` views (may be NULL when `count` is 0), each valid for reads;
/// `out_all_finite` to a writable `uint32_t`.
#[no_mangle]
pub unsafe extern "C" fn adamant_all_finite(
    xs: *const adamant_const_tensor,
    count: usize,
    out_all_finite: *mut u32,
) -> adamant_status {
    ffi_boundary!({
        let x = try_slice!(xs, count);
        let out = try_out!(out_all_finite);
        let raw = |i: usize| [Raw::from(x[i])];
        let out_range = Range {
            start: out.addr(),
            end: out.addr() + 4,
            written: true,
        };
        check_inputs(count, raw, &[array_range(xs, count), out_range])?;
        let mut ok = true;
        for i in 0..count {
            if !exec::all_finite(&views(&IN, &raw(i))?[0]) {
                ok = false;
                break;
            }
        }
        // SAFETY: non-NULL, aligned, not overlapping any input.
        unsafe { out.write(ok as u32) };
        Ok(())
    })
}
