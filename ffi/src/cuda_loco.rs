//! CUDA entry points of gradient compression: the block quantizer
//! (`adamant_cuda_quantize` / `adamant_cuda_dequantize`), LoCo (`adamant_cuda_loco_compress`,
//! `_reduce_hop`, `_decompress_reduce`) and two-way error feedback
//! (`adamant_cuda_ef_worker_compress`, `_ef_server_compress`, `_ef_decompress`). Each takes
//! the arguments of its CPU entry point (`adamant_quantize`, ...; packed layout in the `loco`
//! module doc) with device addresses for the buffers, plus a device `status` word and the
//! stream; the bytes and floats written are the CPU ABI's, bit for bit.
//!
//! ## The device status word
//! Failures that depend on the data (a NaN or infinite value, where the CPU returns
//! `ADAMANT_STATUS_SKIPPED_NON_FINITE`; a packed scale that is not finite and positive, or a
//! fold that would overflow, where it returns `ADAMANT_STATUS_INVALID_CONFIG`) cannot be
//! reported by the host call, which does not wait for the device. Each call queues a pre-scan
//! that stores f32 `1.0` into `*status` (a 4-byte aligned device word) where the CPU call
//! would fail, then the main kernel, which writes nothing at all (no packed byte, no error
//! buffer value, no output) while the word is nonzero. The caller zeroes the word before the
//! first call of a step and reads it after the stream ran: nonzero means "skipped, nothing
//! written", as the CPU's nonzero status. Passing the step's `found_inf` flag as the word
//! makes an overflowed step skip its compression too, and a set word skips every later call
//! that shares it.
//!
//! Argument errors (NULL, lengths, alignment, overlap, enum values, configuration) are
//! returned by the call itself, exactly as the CPU ABI's, before anything is queued. Device
//! buffers the kernels access in 32-bit words must be 4-byte aligned: packed buffers, 8-bit
//! error buffers and the status word (`ADAMANT_STATUS_MISALIGNED` otherwise).

use crate::adamant_loco_config;
use crate::cuda_dev::{dev_array, fits_u32, launch, on_stream, status_word};
use crate::loco::{
    bits_from, input_view, layout_of, no_overlap, plan_after, quant_layout, shard_layout,
    storage_from,
};
use crate::status::adamant_status;
use crate::tensor::{adamant_const_tensor, Range, View};
use adamant_core::feedback::ErrorStorage;
use adamant_core::quant::QuantLayout;
use adamant_cuda::ops::{self, Launcher};
use core::ffi::c_void;

/// A read-only device view's address (0 when empty).
fn view_addr(v: &View) -> u64 {
    if v.len == 0 {
        0
    } else {
        v.ptr.addr() as u64
    }
}

fn len_is(want: usize, got: usize) -> Result<(), adamant_status> {
    if want == got {
        Ok(())
    } else {
        Err(adamant_status::LengthMismatch)
    }
}

/// A device error buffer of `err_len` values of `storage` (f32 values, or 8-bit packed
/// chunks read as 32-bit words), written.
fn err_array(
    storage: ErrorStorage,
    err: *mut c_void,
    err_len: usize,
) -> Result<(u64, Range), adamant_status> {
    let size = match storage {
        ErrorStorage::F32 => 4,
        ErrorStorage::Int8 => 1,
    };
    dev_array(err.cast_const().cast::<u8>(), err_len, size, 4, true)
}

/// Device packed bytes (4-byte aligned).
fn packed_array(p: *const u8, n: usize, written: bool) -> Result<(u64, Range), adamant_status> {
    dev_array(p, n, 1, 4, written)
}

/// Device f32 values.
fn f32_array(p: *const f32, n: usize, written: bool) -> Result<(u64, Range), adamant_status> {
    dev_array(p, n, 4, 4, written)
}

pub(crate) fn checked_quantize<L: Launcher>(
    x: adamant_const_tensor,
    group_len: usize,
    bits: u32,
    out_packed: *mut u8,
    packed_len: usize,
    status: *mut f32,
    launcher: impl FnOnce() -> Result<L, adamant_status>,
) -> Result<(), adamant_status> {
    let (pa, pr) = packed_array(out_packed.cast_const(), packed_len, true)?;
    let (sa, sr) = status_word(status)?;
    let layout = quant_layout(x.len, group_len, bits_from(bits)?)?;
    fits_u32(&[group_len])?;
    let v = input_view(x, &[pr, sr])?;
    len_is(layout.packed_len(), packed_len)?;
    launch(launcher, |l| {
        ops::quantize(l, v.dtype, &layout, view_addr(&v), pa, sa)
    })
}

pub(crate) fn checked_dequantize<L: Launcher>(
    packed: *const u8,
    packed_len: usize,
    group_len: usize,
    bits: u32,
    out: *mut f32,
    len: usize,
    status: *mut f32,
    launcher: impl FnOnce() -> Result<L, adamant_status>,
) -> Result<(), adamant_status> {
    let (pa, pr) = packed_array(packed, packed_len, false)?;
    let (oa, or) = f32_array(out.cast_const(), len, true)?;
    let (sa, sr) = status_word(status)?;
    let layout = quant_layout(len, group_len, bits_from(bits)?)?;
    fits_u32(&[group_len])?;
    no_overlap(&[pr, or, sr])?;
    len_is(layout.packed_len(), packed_len)?;
    launch(launcher, |l| ops::dequantize(l, &layout, pa, oa, sa))
}

pub(crate) fn checked_loco_compress<L: Launcher>(
    config: *const adamant_loco_config,
    step: u64,
    world: usize,
    nodes: usize,
    grad: adamant_const_tensor,
    err: *mut c_void,
    err_len: usize,
    out_packed: *mut u8,
    packed_len: usize,
    out_step: *mut u64,
    status: *mut f32,
    launcher: impl FnOnce() -> Result<L, adamant_status>,
) -> Result<(), adamant_status> {
    let c = try_ref!(config).to_core()?;
    let os = try_out!(out_step);
    let (pa, pr) = packed_array(out_packed.cast_const(), packed_len, true)?;
    let (ea, er) = err_array(c.error_storage, err, err_len)?;
    let (sa, sr) = status_word(status)?;
    let v = input_view(grad, &[er, pr, sr, View::out_range(os)])?;
    let lay = layout_of(&c, grad.len, world, nodes)?;
    fits_u32(&[c.group_len, world])?;
    len_is(lay.compress_len(), packed_len)?;
    len_is(lay.error_len(c.error_storage), err_len)?;
    let plan = plan_after(c, step)?;
    launch(launcher, |l| {
        ops::loco_compress(l, &plan, &lay, v.dtype, view_addr(&v), ea, pa, sa)
    })?;
    // SAFETY: non-NULL, aligned (try_out!), overlapping no other buffer of the call.
    unsafe { os.write(plan.step) };
    Ok(())
}

pub(crate) fn checked_loco_reduce_hop<L: Launcher>(
    config: *const adamant_loco_config,
    step: u64,
    len: usize,
    world: usize,
    nodes: usize,
    received: *const u8,
    received_len: usize,
    err_inter: *mut c_void,
    err_len: usize,
    out_packed: *mut u8,
    packed_len: usize,
    status: *mut f32,
    launcher: impl FnOnce() -> Result<L, adamant_status>,
) -> Result<(), adamant_status> {
    let c = try_ref!(config).to_core()?;
    let (ra, rr) = packed_array(received, received_len, false)?;
    let (pa, pr) = packed_array(out_packed.cast_const(), packed_len, true)?;
    let (ea, er) = err_array(c.error_storage, err_inter, err_len)?;
    let (sa, sr) = status_word(status)?;
    no_overlap(&[rr, er, pr, sr])?;
    let lay = layout_of(&c, len, world, nodes)?;
    if nodes < 2 {
        return Err(adamant_status::LengthMismatch);
    }
    fits_u32(&[c.group_len, world])?;
    len_is(lay.compress_len(), received_len)?;
    len_is(lay.hop_len(), packed_len)?;
    len_is(lay.inter_error_len(c.error_storage), err_len)?;
    let plan = plan_after(c, step)?;
    launch(launcher, |l| {
        ops::loco_reduce_hop(l, &plan, &lay, ra, ea, pa, sa)
    })
}

pub(crate) fn checked_loco_decompress_reduce<L: Launcher>(
    config: *const adamant_loco_config,
    len: usize,
    world: usize,
    nodes: usize,
    received: *const u8,
    received_len: usize,
    out: *mut f32,
    out_len: usize,
    status: *mut f32,
    launcher: impl FnOnce() -> Result<L, adamant_status>,
) -> Result<(), adamant_status> {
    let c = try_ref!(config).to_core()?;
    let (ra, rr) = packed_array(received, received_len, false)?;
    let (oa, or) = f32_array(out.cast_const(), out_len, true)?;
    let (sa, sr) = status_word(status)?;
    no_overlap(&[rr, or, sr])?;
    let lay = layout_of(&c, len, world, nodes)?;
    fits_u32(&[c.group_len, world])?;
    len_is(lay.received_len(), received_len)?;
    len_is(lay.shard_len(), out_len)?;
    launch(launcher, |l| {
        ops::loco_decompress(l, &lay, ra, oa, true, sa)
    })
}

pub(crate) fn checked_ef_worker_compress<L: Launcher>(
    x: adamant_const_tensor,
    shards: usize,
    group_len: usize,
    bits: u32,
    error_int8: u32,
    err: *mut c_void,
    err_len: usize,
    out_packed: *mut u8,
    packed_len: usize,
    status: *mut f32,
    launcher: impl FnOnce() -> Result<L, adamant_status>,
) -> Result<(), adamant_status> {
    let b = bits_from(bits)?;
    let st = storage_from(error_int8)?;
    let (pa, pr) = packed_array(out_packed.cast_const(), packed_len, true)?;
    let (ea, er) = err_array(st, err, err_len)?;
    let (sa, sr) = status_word(status)?;
    let v = input_view(x, &[er, pr, sr])?;
    let lay = shard_layout(x.len, shards, group_len, b)?;
    fits_u32(&[group_len, shards])?;
    len_is(lay.packed_len(), packed_len)?;
    len_is(lay.error_len(st), err_len)?;
    launch(launcher, |l| {
        ops::ef_worker_compress(l, &lay, v.dtype, view_addr(&v), ea, st, pa, sa)
    })
}

pub(crate) fn checked_ef_server_compress<L: Launcher>(
    shard_len: usize,
    group_len: usize,
    worker_bits: u32,
    server_bits: u32,
    workers: usize,
    received: *const u8,
    received_len: usize,
    error_int8: u32,
    err: *mut c_void,
    err_len: usize,
    out_packed: *mut u8,
    packed_len: usize,
    status: *mut f32,
    launcher: impl FnOnce() -> Result<L, adamant_status>,
) -> Result<(), adamant_status> {
    let wb = bits_from(worker_bits)?;
    let sb = bits_from(server_bits)?;
    let st = storage_from(error_int8)?;
    let (ra, rr) = packed_array(received, received_len, false)?;
    let (pa, pr) = packed_array(out_packed.cast_const(), packed_len, true)?;
    let (ea, er) = err_array(st, err, err_len)?;
    let (sa, sr) = status_word(status)?;
    no_overlap(&[rr, er, pr, sr])?;
    let worker = quant_layout(shard_len, group_len, wb)?;
    if workers == 0 {
        return Err(adamant_status::InvalidConfig);
    }
    fits_u32(&[group_len, workers])?;
    let want_received = workers
        .checked_mul(worker.packed_len())
        .ok_or(adamant_status::LengthTooLarge)?;
    len_is(want_received, received_len)?;
    let server = QuantLayout { bits: sb, ..worker };
    len_is(server.packed_len(), packed_len)?;
    let one = shard_layout(shard_len, 1, group_len, wb)?;
    len_is(one.error_len(st), err_len)?;
    launch(launcher, |l| {
        ops::ef_server_compress(l, &worker, sb, ra, workers, ea, st, pa, sa)
    })
}

pub(crate) fn checked_ef_decompress<L: Launcher>(
    packed: *const u8,
    packed_len: usize,
    shards: usize,
    group_len: usize,
    bits: u32,
    out: *mut f32,
    len: usize,
    status: *mut f32,
    launcher: impl FnOnce() -> Result<L, adamant_status>,
) -> Result<(), adamant_status> {
    let (pa, pr) = packed_array(packed, packed_len, false)?;
    let (oa, or) = f32_array(out.cast_const(), len, true)?;
    let (sa, sr) = status_word(status)?;
    let b = bits_from(bits)?;
    no_overlap(&[pr, or, sr])?;
    let lay = shard_layout(len, shards, group_len, b)?;
    fits_u32(&[group_len, shards])?;
    len_is(lay.packed_len(), packed_len)?;
    launch(launcher, |l| ops::ef_decompress(l, &lay, pa, oa, sa))
}

/// `adamant_quantize` on the device: `x` (a device view, f32/bf16/f16) into `out_packed`
/// (device, exactly `adamant_quant_packed_len` bytes, 4-byte aligned), queued on `stream`.
/// A NaN or infinite element sets `*status` (see the module doc) and writes nothing.
///
/// Returns `ADAMANT_STATUS_OK` when queued; argument errors as `adamant_quantize` (nothing
/// queued); `ADAMANT_STATUS_NO_CUDA_DRIVER` without a driver or device;
/// `ADAMANT_STATUS_CUDA_ERROR` when the driver refused a launch.
///
/// # Safety
/// Every buffer pointer (`x.data`, `out_packed`, `status`) is a device address of the current
/// context holding the declared lengths, valid until the stream ran the call; `stream` is NULL
/// or a live stream of the current context.
#[no_mangle]
pub unsafe extern "C" fn adamant_cuda_quantize(
    x: adamant_const_tensor,
    group_len: usize,
    bits: u32,
    out_packed: *mut u8,
    packed_len: usize,
    status: *mut f32,
    stream: *mut c_void,
) -> adamant_status {
    ffi_boundary!({
        // SAFETY: the caller's contract above.
        let l = unsafe { on_stream(stream) };
        checked_quantize(x, group_len, bits, out_packed, packed_len, status, l)
    })
}

/// `adamant_dequantize` on the device: `packed` (device, 4-byte aligned) into `len` f32
/// values at `out` (device). Corrupt scales set `*status` and write nothing.
///
/// # Safety
/// As `adamant_cuda_quantize`.
#[no_mangle]
pub unsafe extern "C" fn adamant_cuda_dequantize(
    packed: *const u8,
    packed_len: usize,
    group_len: usize,
    bits: u32,
    out: *mut f32,
    len: usize,
    status: *mut f32,
    stream: *mut c_void,
) -> adamant_status {
    ffi_boundary!({
        // SAFETY: the caller's contract above.
        let l = unsafe { on_stream(stream) };
        checked_dequantize(packed, packed_len, group_len, bits, out, len, status, l)
    })
}

/// `adamant_loco_compress` on the device: `grad`, the error buffer `err` (f32 values or
/// 8-bit chunks as `config.error_int8` says, 4-byte aligned) and `out_packed` are device
/// buffers; `step` and `*out_step` are host values as on the CPU. The step's plan (reset or
/// not) is made on the host from `step`, and `*out_step = step + 1` is written when the work
/// is queued. A non-finite `g + e` (or a corrupt 8-bit error scale) sets `*status` and writes
/// nothing on the device: the CPU would have returned an error and not advanced, so a caller
/// that finds the word set keeps its old `step`.
///
/// # Safety
/// As `adamant_cuda_quantize`; `config` points to a valid host struct and `out_step` to a
/// writable host `uint64_t`.
#[no_mangle]
pub unsafe extern "C" fn adamant_cuda_loco_compress(
    config: *const adamant_loco_config,
    step: u64,
    world: usize,
    nodes: usize,
    grad: adamant_const_tensor,
    err: *mut c_void,
    err_len: usize,
    out_packed: *mut u8,
    packed_len: usize,
    out_step: *mut u64,
    status: *mut f32,
    stream: *mut c_void,
) -> adamant_status {
    ffi_boundary!({
        // SAFETY: the caller's contract above.
        let l = unsafe { on_stream(stream) };
        checked_loco_compress(
            config, step, world, nodes, grad, err, err_len, out_packed, packed_len, out_step,
            status, l,
        )
    })
}

/// `adamant_loco_reduce_hop` on the device (second hop of a two-hop layout): `received`,
/// `err_inter` and `out_packed` are device buffers; `step` is the host step of this step's
/// compress call. Data errors set `*status`.
///
/// # Safety
/// As `adamant_cuda_loco_compress`.
#[no_mangle]
pub unsafe extern "C" fn adamant_cuda_loco_reduce_hop(
    config: *const adamant_loco_config,
    step: u64,
    len: usize,
    world: usize,
    nodes: usize,
    received: *const u8,
    received_len: usize,
    err_inter: *mut c_void,
    err_len: usize,
    out_packed: *mut u8,
    packed_len: usize,
    status: *mut f32,
    stream: *mut c_void,
) -> adamant_status {
    ffi_boundary!({
        // SAFETY: the caller's contract above.
        let l = unsafe { on_stream(stream) };
        checked_loco_reduce_hop(
            config,
            step,
            len,
            world,
            nodes,
            received,
            received_len,
            err_inter,
            err_len,
            out_packed,
            packed_len,
            status,
            l,
        )
    })
}

/// `adamant_loco_decompress_reduce` on the device: the received chunks (device) decoded and
/// averaged into `out` (device, `shard_len` floats). Corrupt scales or an overflowing sum set
/// `*status` and write nothing.
///
/// # Safety
/// As `adamant_cuda_quantize`; `config` points to a valid host struct.
#[no_mangle]
pub unsafe extern "C" fn adamant_cuda_loco_decompress_reduce(
    config: *const adamant_loco_config,
    len: usize,
    world: usize,
    nodes: usize,
    received: *const u8,
    received_len: usize,
    out: *mut f32,
    out_len: usize,
    status: *mut f32,
    stream: *mut c_void,
) -> adamant_status {
    ffi_boundary!({
        // SAFETY: the caller's contract above.
        let l = unsafe { on_stream(stream) };
        checked_loco_decompress_reduce(
            config,
            len,
            world,
            nodes,
            received,
            received_len,
            out,
            out_len,
            status,
            l,
        )
    })
}

/// `adamant_ef_worker_compress` on the device (`x`, `err`, `out_packed` device buffers). A
/// non-finite `x` or `x + e` sets `*status` and writes nothing.
///
/// # Safety
/// As `adamant_cuda_quantize`.
#[no_mangle]
pub unsafe extern "C" fn adamant_cuda_ef_worker_compress(
    x: adamant_const_tensor,
    shards: usize,
    group_len: usize,
    bits: u32,
    error_int8: u32,
    err: *mut c_void,
    err_len: usize,
    out_packed: *mut u8,
    packed_len: usize,
    status: *mut f32,
    stream: *mut c_void,
) -> adamant_status {
    ffi_boundary!({
        // SAFETY: the caller's contract above.
        let l = unsafe { on_stream(stream) };
        checked_ef_worker_compress(
            x, shards, group_len, bits, error_int8, err, err_len, out_packed, packed_len, status, l,
        )
    })
}

/// `adamant_ef_server_compress` on the device (`received`, `err`, `out_packed` device
/// buffers). A non-finite `w`, corrupt scales or an overflowing fold set `*status` and write
/// nothing.
///
/// # Safety
/// As `adamant_cuda_quantize`.
#[no_mangle]
pub unsafe extern "C" fn adamant_cuda_ef_server_compress(
    shard_len: usize,
    group_len: usize,
    worker_bits: u32,
    server_bits: u32,
    workers: usize,
    received: *const u8,
    received_len: usize,
    error_int8: u32,
    err: *mut c_void,
    err_len: usize,
    out_packed: *mut u8,
    packed_len: usize,
    status: *mut f32,
    stream: *mut c_void,
) -> adamant_status {
    ffi_boundary!({
        // SAFETY: the caller's contract above.
        let l = unsafe { on_stream(stream) };
        checked_ef_server_compress(
            shard_len,
            group_len,
            worker_bits,
            server_bits,
            workers,
            received,
            received_len,
            error_int8,
            err,
            err_len,
            out_packed,
            packed_len,
            status,
            l,
        )
    })
}

/// `adamant_ef_decompress` on the device (`packed`, `out` device buffers). Corrupt scales set
/// `*status` and write nothing.
///
/// # Safety
/// As `adamant_cuda_quantize`.
#[no_mangle]
pub unsafe extern "C" fn adamant_cuda_ef_decompress(
    packed: *const u8,
    packed_len: usize,
    shards: usize,
    group_len: usize,
    bits: u32,
    out: *mut f32,
    len: usize,
    status: *mut f32,
    stream: *mut c_void,
) -> adamant_status {
    ffi_boundary!({
        // SAFETY: the caller's contract above.
        let l = unsafe { on_stream(stream) };
        checked_ef_decompress(
            packed, packed_len, shards, group_len, bits, out, len, status, l,
        )
    })
}

#[cfg(test)]
mod sim_tests {
    //! Every entry point's validation and launches run on the PTX simulator and compared with
    //! the CPU ABI bit for bit: packed bytes, error buffers, outputs, and the status word
    //! where the CPU reports a data error (the device then writes nothing).
    use super::*;
    use crate::cuda_dev::sim::*;
    use crate::{
        adamant_dequantize, adamant_ef_decompress, adamant_ef_server_compress,
        adamant_ef_worker_compress, adamant_loco_compress, adamant_loco_decompress_reduce,
        adamant_loco_layout_sizes, adamant_loco_reduce_hop, adamant_loco_sizes,
        adamant_quant_packed_len, adamant_quantize,
    };
    use ptx_sim::Simulator;

    const SET: u32 = 0x3F80_0000;
    const OK: adamant_status = adamant_status::Ok;

    fn word(s: &mut Simulator, a: u64) -> u32 {
        get_words(s, a, 1)[0]
    }

    /// The CPU call returned `failure` and the device set its status word at `sa`, or (no
    /// failure) the CPU call succeeded and the word stayed clear.
    fn same_outcome(
        s: &mut Simulator,
        sa: u64,
        st: adamant_status,
        failure: Option<adamant_status>,
        what: &str,
    ) {
        let want = failure.map_or((OK, 0), |f| (f, SET));
        assert_eq!((st, word(s, sa)), want, "{what}");
    }

    fn cview(w: &[u32], d: u32, n: usize) -> adamant_const_tensor {
        adamant_const_tensor {
            data: w.as_ptr().cast(),
            dtype: d,
            len: n,
        }
    }

    fn dview(a: u64, d: u32, n: usize) -> adamant_const_tensor {
        adamant_const_tensor {
            data: dptr::<c_void>(a).cast_const(),
            dtype: d,
            len: n,
        }
    }

    fn packed_len(n: usize, g: usize, bits: u32) -> usize {
        let mut p = 0;
        // SAFETY: a live out pointer.
        assert_eq!(unsafe { adamant_quant_packed_len(n, g, bits, &mut p) }, OK);
        p
    }

    /// Quantize (every dtype, 4 and 8 bits, 1001 elements in groups of 64 with a short last
    /// group) and dequantize: bytes and floats equal the CPU ABI's; a NaN payload or -inf sets
    /// the status word and leaves the packed buffer as it was; a corrupt scale makes
    /// dequantize set the word and write nothing.
    #[test]
    #[cfg_attr(miri, ignore = "interprets PTX: far too slow under Miri")]
    fn conformance_quantize_and_dequantize_equal_the_cpu_abi() {
        let mut s = sim();
        let (n, g) = (1001usize, 64usize);
        for d in 0..3u32 {
            let huge = if d == 2 { 6.0e4 } else { 1e30 };
            let vals = adversarial(n, 7 + d as u64, huge);
            for bits in [4u32, 8] {
                let plen = packed_len(n, g, bits);
                for poison in [None, Some((500, nan_payload(d))), Some((n - 1, neg_inf(d)))] {
                    let raw: Vec<(usize, u32)> = poison.into_iter().collect();
                    let xb = elem_bytes(d, &vals, &raw);
                    let xw = words(&xb);
                    let mut cpu = vec![0xA5u8; plen];
                    // SAFETY: host views over live vectors.
                    let st = unsafe {
                        adamant_quantize(cview(&xw, d, n), g, bits, cpu.as_mut_ptr(), plen)
                    };
                    let xa = put_bytes(&mut s, &xb);
                    let pa = put_bytes(&mut s, &vec![0xA5u8; plen]);
                    let sa = put_bytes(&mut s, &[0u8; 4]);
                    let r = checked_quantize(
                        dview(xa, d, n),
                        g,
                        bits,
                        dptr(pa),
                        plen,
                        dptr(sa),
                        || Ok(Borrowed(&mut s)),
                    );
                    assert_eq!(r, Ok(()));
                    let dev = get_bytes(&mut s, pa, plen);
                    let what = format!("dtype {d} bits {bits} poison {poison:?}");
                    let failure = poison.map(|_| adamant_status::SkippedNonFinite);
                    same_outcome(&mut s, sa, st, failure, &what);
                    if poison.is_some() {
                        assert!(dev.iter().all(|&b| b == 0xA5), "{what}: packed written");
                        continue;
                    }
                    assert_eq!(dev, cpu, "{what}: packed bytes");
                    // Dequantize the same bytes, then a copy with a NaN scale.
                    let mut bad = cpu.clone();
                    bad[plen - 4..].copy_from_slice(&0x7FC0_0001u32.to_le_bytes());
                    for (bytes, corrupt) in [(&cpu, false), (&bad, true)] {
                        let mut out = vec![0x5A5A_5A5Au32; n];
                        // SAFETY: live host buffers.
                        let st = unsafe {
                            adamant_dequantize(
                                bytes.as_ptr(),
                                plen,
                                g,
                                bits,
                                out.as_mut_ptr().cast(),
                                n,
                            )
                        };
                        let ba = put_bytes(&mut s, bytes);
                        let oa = put_bytes(&mut s, &le(&vec![0x5A5A_5A5Au32; n]));
                        let sa = put_bytes(&mut s, &[0u8; 4]);
                        let r = checked_dequantize(
                            dptr(ba),
                            plen,
                            g,
                            bits,
                            dptr(oa),
                            n,
                            dptr(sa),
                            || Ok(Borrowed(&mut s)),
                        );
                        assert_eq!(r, Ok(()));
                        let got = get_words(&mut s, oa, n);
                        let failure = corrupt.then_some(adamant_status::InvalidConfig);
                        same_outcome(&mut s, sa, st, failure, &what);
                        if corrupt {
                            assert!(got.iter().all(|&w| w == 0x5A5A_5A5A), "{what}: out written");
                        } else {
                            assert_eq!(got, out, "{what}: dequantized bits");
                        }
                    }
                }
            }
        }
    }

    /// LoCo, two hops (world 4 on 2 nodes, shards of 250 in groups of 32) and one hop (world
    /// 2), f32 and 8-bit error buffers, f32 and bf16 gradients: three steps (a reset step, a
    /// step that reads the errors, a step with a NaN gradient) of compress -> reduce_hop ->
    /// decompress_reduce on the simulator equal the CPU ABI's packed bytes, error buffers and
    /// averages; the poisoned step sets the status word and writes nothing, and the hop that
    /// shares the set word writes nothing either.
    #[test]
    #[cfg_attr(miri, ignore = "interprets PTX: far too slow under Miri")]
    fn conformance_loco_steps_equal_the_cpu_abi() {
        let mut s = sim();
        let len = 1000usize;
        for (world, nodes, int8, d) in [(4usize, 2usize, 0u32, 0u32), (4, 2, 1, 1), (2, 1, 1, 0)] {
            let cfg = adamant_loco_config {
                err_beta: 0.8,
                group_len: 32,
                reset_every: 0,
                bits: 4,
                error_int8: int8,
            };
            let mut z = adamant_loco_sizes::default();
            // SAFETY: live pointers.
            assert_eq!(
                unsafe { adamant_loco_layout_sizes(&cfg, len, world, nodes, &mut z) },
                OK
            );
            let unit = if int8 == 1 { 1 } else { 4 };
            let (eb, ib) = (z.error_len * unit, z.inter_error_len * unit);
            let mut err = vec![0u32; eb.div_ceil(4)];
            let mut err_inter = vec![0u32; ib.div_ceil(4).max(1)];
            let ea = put_bytes(&mut s, &le(&err));
            let ia = put_bytes(&mut s, &le(&err_inter));
            let pa = put_bytes(&mut s, &vec![0u8; z.compress_len]);
            let ha = put_bytes(&mut s, &vec![0u8; z.hop_len.max(4)]);
            let oa = put_bytes(&mut s, &vec![0u8; 4 * z.shard_len]);
            let mut packed = vec![0u8; z.compress_len];
            let mut hop = vec![0u8; z.hop_len];
            for step in 0..3u64 {
                let what = format!("world {world} nodes {nodes} int8 {int8} dtype {d} step {step}");
                let poison = step == 2;
                let raw: Vec<(usize, u32)> = if poison {
                    vec![(len / 2 + 3, nan_payload(d))]
                } else {
                    vec![]
                };
                let gb = elem_bytes(d, &adversarial(len, 40 + step, 1e30), &raw);
                let gw = words(&gb);
                let (packed0, err0) = (packed.clone(), err.clone());
                let mut cpu_step = 0u64;
                // SAFETY: live host buffers of the declared lengths.
                let st = unsafe {
                    adamant_loco_compress(
                        &cfg,
                        step,
                        world,
                        nodes,
                        cview(&gw, d, len),
                        err.as_mut_ptr().cast(),
                        z.error_len,
                        packed.as_mut_ptr(),
                        z.compress_len,
                        &mut cpu_step,
                    )
                };
                let ga = put_bytes(&mut s, &gb);
                let sa = put_bytes(&mut s, &[0u8; 4]);
                let mut dev_step = 0u64;
                let r = checked_loco_compress(
                    &cfg,
                    step,
                    world,
                    nodes,
                    dview(ga, d, len),
                    dptr(ea),
                    z.error_len,
                    dptr(pa),
                    z.compress_len,
                    &mut dev_step,
                    dptr(sa),
                    || Ok(Borrowed(&mut s)),
                );
                assert_eq!(r, Ok(()), "{what}");
                assert_eq!(
                    dev_step,
                    step + 1,
                    "{what}: out_step is written when queued"
                );
                let failure = poison.then_some(adamant_status::SkippedNonFinite);
                same_outcome(&mut s, sa, st, failure, &what);
                if poison {
                    assert_eq!((&packed, &err), (&packed0, &err0), "{what}: CPU wrote");
                } else {
                    assert_eq!(cpu_step, step + 1, "{what}");
                }
                assert_eq!(
                    get_bytes(&mut s, pa, z.compress_len),
                    packed,
                    "{what}: packed"
                );
                assert_eq!(get_bytes(&mut s, ea, eb), le(&err)[..eb], "{what}: errors");
                let final_src = if nodes > 1 {
                    let (hop0, inter0) = (get_bytes(&mut s, ha, z.hop_len), err_inter.clone());
                    if !poison {
                        // SAFETY: live host buffers.
                        let st = unsafe {
                            adamant_loco_reduce_hop(
                                &cfg,
                                step,
                                len,
                                world,
                                nodes,
                                packed.as_ptr(),
                                z.compress_len,
                                err_inter.as_mut_ptr().cast(),
                                z.inter_error_len,
                                hop.as_mut_ptr(),
                                z.hop_len,
                            )
                        };
                        assert_eq!(st, OK, "{what}");
                    }
                    let r = checked_loco_reduce_hop(
                        &cfg,
                        step,
                        len,
                        world,
                        nodes,
                        dptr::<u8>(pa),
                        z.compress_len,
                        dptr(ia),
                        z.inter_error_len,
                        dptr(ha),
                        z.hop_len,
                        dptr(sa),
                        || Ok(Borrowed(&mut s)),
                    );
                    assert_eq!(r, Ok(()), "{what}");
                    let got_hop = get_bytes(&mut s, ha, z.hop_len);
                    let got_inter = get_bytes(&mut s, ia, ib);
                    if poison {
                        assert_eq!(got_hop, hop0, "{what}: hop written under a set word");
                        assert_eq!(got_inter, le(&inter0)[..ib], "{what}");
                    } else {
                        assert_eq!(got_hop, hop, "{what}: hop bytes");
                        assert_eq!(got_inter, le(&err_inter)[..ib], "{what}: inter errors");
                    }
                    (ha, hop.clone())
                } else {
                    (pa, packed.clone())
                };
                if poison {
                    continue;
                }
                let mut out = vec![0u32; z.shard_len];
                // SAFETY: live host buffers.
                let st = unsafe {
                    adamant_loco_decompress_reduce(
                        &cfg,
                        len,
                        world,
                        nodes,
                        final_src.1.as_ptr(),
                        z.received_len,
                        out.as_mut_ptr().cast(),
                        z.shard_len,
                    )
                };
                assert_eq!(st, OK, "{what}");
                let r = checked_loco_decompress_reduce(
                    &cfg,
                    len,
                    world,
                    nodes,
                    dptr::<u8>(final_src.0),
                    z.received_len,
                    dptr(oa),
                    z.shard_len,
                    dptr(sa),
                    || Ok(Borrowed(&mut s)),
                );
                assert_eq!(r, Ok(()), "{what}");
                assert_eq!(get_words(&mut s, oa, z.shard_len), out, "{what}: average");
            }
        }
    }

    /// Two-way error feedback: worker compress (f32 and f16 inputs, f32 and 8-bit errors, two
    /// steps carrying the errors, then a -inf input), server compress of two workers' chunks
    /// (4-bit workers, 8-bit server) and the decompress of four server chunks equal the CPU
    /// ABI bit for bit; the poisoned step sets the word and writes nothing.
    #[test]
    #[cfg_attr(miri, ignore = "interprets PTX: far too slow under Miri")]
    fn conformance_error_feedback_equals_the_cpu_abi() {
        let mut s = sim();
        let (len, shards, g) = (1000usize, 4usize, 32usize);
        let shard = len / shards;
        for (int8, d) in [(0u32, 0u32), (1, 2)] {
            let huge = if d == 2 { 6.0e4 } else { 1e30 };
            let unit = if int8 == 1 { 1 } else { 4 };
            let wchunk = packed_len(shard, g, 4);
            let schunk = packed_len(shard, g, 8);
            let werr = if int8 == 1 { shards * schunk } else { len };
            let serr = if int8 == 1 { schunk } else { shard };
            // 8-bit error buffers start as packed zeros (scale 1): an all-zero buffer has
            // zero scales, which both sides refuse as corrupt.
            let zero_chunk = {
                let zeros = vec![0u32; shard];
                let mut p = vec![0u8; schunk];
                // SAFETY: live host buffers.
                let st = unsafe {
                    adamant_quantize(cview(&zeros, 0, shard), g, 8, p.as_mut_ptr(), schunk)
                };
                assert_eq!(st, OK);
                p
            };
            let init = |chunks: usize, values: usize| -> Vec<u32> {
                if int8 == 1 {
                    words(&zero_chunk.repeat(chunks))
                } else {
                    vec![0u32; values]
                }
            };
            let mut err = init(shards, len);
            let mut packed = vec![0u8; shards * wchunk];
            let ea = put_bytes(&mut s, &le(&err));
            let pa = put_bytes(&mut s, &packed);
            let mut serr_buf = init(1, shard);
            let sea = put_bytes(&mut s, &le(&serr_buf));
            let spa = put_bytes(&mut s, &vec![0u8; schunk]);
            for step in 0..3u64 {
                let what = format!("int8 {int8} dtype {d} step {step}");
                let poison = step == 2;
                let raw: Vec<(usize, u32)> = if poison {
                    vec![(7, neg_inf(d))]
                } else {
                    vec![]
                };
                let xb = elem_bytes(d, &adversarial(len, 90 + step, huge), &raw);
                let xw = words(&xb);
                let (packed0, err0) = (packed.clone(), err.clone());
                // SAFETY: live host buffers.
                let st = unsafe {
                    adamant_ef_worker_compress(
                        cview(&xw, d, len),
                        shards,
                        g,
                        4,
                        int8,
                        err.as_mut_ptr().cast(),
                        werr,
                        packed.as_mut_ptr(),
                        packed.len(),
                    )
                };
                let xa = put_bytes(&mut s, &xb);
                let sa = put_bytes(&mut s, &[0u8; 4]);
                let r = checked_ef_worker_compress(
                    dview(xa, d, len),
                    shards,
                    g,
                    4,
                    int8,
                    dptr(ea),
                    werr,
                    dptr(pa),
                    shards * wchunk,
                    dptr(sa),
                    || Ok(Borrowed(&mut s)),
                );
                assert_eq!(r, Ok(()), "{what}");
                let failure = poison.then_some(adamant_status::SkippedNonFinite);
                same_outcome(&mut s, sa, st, failure, &what);
                if poison {
                    assert_eq!((&packed, &err), (&packed0, &err0), "{what}");
                }
                assert_eq!(
                    get_bytes(&mut s, pa, packed.len()),
                    packed,
                    "{what}: packed"
                );
                assert_eq!(
                    get_bytes(&mut s, ea, werr * unit),
                    le(&err)[..werr * unit],
                    "{what}"
                );
                if poison {
                    continue;
                }
                // Server: chunks 0 and 1 stand for two workers' chunks of one shard.
                let mut sp = vec![0u8; schunk];
                // SAFETY: live host buffers.
                let st = unsafe {
                    adamant_ef_server_compress(
                        shard,
                        g,
                        4,
                        8,
                        2,
                        packed.as_ptr(),
                        2 * wchunk,
                        int8,
                        serr_buf.as_mut_ptr().cast(),
                        serr,
                        sp.as_mut_ptr(),
                        schunk,
                    )
                };
                assert_eq!(st, OK, "{what}");
                let r = checked_ef_server_compress(
                    shard,
                    g,
                    4,
                    8,
                    2,
                    dptr::<u8>(pa),
                    2 * wchunk,
                    int8,
                    dptr(sea),
                    serr,
                    dptr(spa),
                    schunk,
                    dptr(sa),
                    || Ok(Borrowed(&mut s)),
                );
                assert_eq!(r, Ok(()), "{what}");
                assert_eq!(get_bytes(&mut s, spa, schunk), sp, "{what}: server chunk");
                assert_eq!(
                    get_bytes(&mut s, sea, serr * unit),
                    le(&serr_buf)[..serr * unit],
                    "{what}: server errors"
                );
                // All-gather: four server chunks (the same one) decoded into the tensor.
                let all: Vec<u8> = sp.repeat(shards);
                let mut out = vec![0u32; len];
                // SAFETY: live host buffers.
                let st = unsafe {
                    adamant_ef_decompress(
                        all.as_ptr(),
                        all.len(),
                        shards,
                        g,
                        8,
                        out.as_mut_ptr().cast(),
                        len,
                    )
                };
                assert_eq!(st, OK, "{what}");
                let aa = put_bytes(&mut s, &all);
                let oa = put_bytes(&mut s, &vec![0u8; 4 * len]);
                let r = checked_ef_decompress(
                    dptr::<u8>(aa),
                    all.len(),
                    shards,
                    g,
                    8,
                    dptr(oa),
                    len,
                    dptr(sa),
                    || Ok(Borrowed(&mut s)),
                );
                assert_eq!(r, Ok(()), "{what}");
                assert_eq!(get_words(&mut s, oa, len), out, "{what}: decompressed");
            }
        }
    }
}
