//! Gradient compression: the symmetric block quantizer (`adamant_quantize`,
//! `adamant_dequantize`) and LoCo's shard-local kernels (`adamant_loco_compress`,
//! `adamant_loco_reduce_hop`, `adamant_loco_decompress_reduce`). The trainer's collective
//! (NCCL, MPI, XLA) moves the packed bytes between the calls.
//!
//! ## Packed layout (one tensor or one shard: `len` elements, groups of `group_len`)
//! ```text
//! [codes: one group after another; 4-bit: ceil(group_len/2) bytes per group, element 2k in
//!  the high nibble and 2k+1 in the low nibble; 8-bit: one byte per element; two's complement;
//!  the last group may be shorter]
//! [zero padding to a multiple of 4 bytes]
//! [one little-endian f32 inv_scale per group]
//! ```
//! `adamant_quant_packed_len` gives its length. Per group (f32, nearest even, no FMA):
//! `absmax = max|x|`; `scale = absmax == 0 ? 1 : min(H/absmax, FLT_MAX)` (`H` = 8 or 128);
//! `inv_scale = 1/scale`; `q = clamp(rne(x*scale), -H, H-1)`; decoded `x̂ = f32(q)*inv_scale`.
//!
//! ## LoCo sharding
//! A local gradient of `len` elements (`len % world == 0`) is cut into `world` shards; each is
//! packed on its own into one chunk (`adamant_loco_layout_sizes` gives every length). One hop
//! (`nodes = 1`): chunk `c` of `adamant_loco_compress`'s output is shard `c`, sent to rank `c`.
//! Two hops: chunk `j*nodes + n` is shard `n*local + j`; after the intra-node all-to-all,
//! `adamant_loco_reduce_hop` folds and re-compresses, its chunk `n` going to node `n`. The
//! final `adamant_loco_decompress_reduce` averages the received chunks (rank-order fold from
//! `+0.0`, one division by `world`). Error buffers: f32 (one value per element) or 8-bit
//! (packed chunks), as the configuration says; a step's `reset` reads them as zero.

use crate::multi::{array_range, check_all, views, Raw, Spec};
use crate::options::flag;
use crate::status::adamant_status;
use crate::tensor::{adamant_const_tensor, check_out_array, check_overlap, Range, View, ANY_DTYPE};
use adamant_core::error::QuantError;
use adamant_core::feedback::{ErrorBuf, ErrorStorage, ShardLayout};
use adamant_core::loco::{self, Loco, LocoConfig, LocoLayout, LocoPlan};
use adamant_core::quant::{self, Bits, QuantLayout};
use adamant_core::{bf16, f16, Dtype};
use core::ffi::c_void;

impl From<QuantError> for adamant_status {
    fn from(e: QuantError) -> Self {
        match e {
            QuantError::Config(c) => c.into(),
            QuantError::Layout(l) => l.into(),
            QuantError::NonFinite { .. } => adamant_status::SkippedNonFinite,
            QuantError::WrongStorage { .. } => adamant_status::UnsupportedDtype,
            // Corrupt packed bytes (a scale that is not finite and positive) or a sum that would
            // overflow: the input is not a valid packed buffer for this call.
            _ => adamant_status::InvalidConfig,
        }
    }
}

pub(crate) fn bits_from(b: u32) -> Result<Bits, adamant_status> {
    Bits::from_u32(b).ok_or(adamant_status::InvalidEnum)
}

/// LoCo hyper-parameters. Start from `adamant_loco_config_default()` (DeepSpeed's).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct adamant_loco_config {
    /// Weight of the error history, in `[0, 1)`; 0 is classic error feedback.
    pub err_beta: f64,
    /// Elements per quantization group, `> 0`.
    pub group_len: usize,
    /// Reset period in steps: error buffers read as zero at steps `1, 1 + reset_every, ...`
    /// (0: only at step 1).
    pub reset_every: u64,
    /// Code width of the exchanged gradients: 4 or 8 (`ADAMANT_STATUS_INVALID_ENUM` otherwise).
    pub bits: u32,
    /// 1: error buffers packed 8-bit (DeepSpeed); 0: f32. Other values: invalid enum.
    pub error_int8: u32,
}

/// DeepSpeed's `zeropp_loco_param` defaults: `err_beta 0.8`, reset every 1024 steps, 4-bit
/// codes, 8-bit error storage, groups of 512.
#[no_mangle]
pub extern "C" fn adamant_loco_config_default() -> adamant_loco_config {
    let c = LocoConfig::deepspeed();
    adamant_loco_config {
        err_beta: c.err_beta,
        group_len: c.group_len,
        reset_every: c.reset_every,
        bits: c.bits.bits(),
        error_int8: (c.error_storage == ErrorStorage::Int8) as u32,
    }
}

impl adamant_loco_config {
    pub(crate) fn to_core(self) -> Result<LocoConfig, adamant_status> {
        let bits = bits_from(self.bits)?;
        let int8 = flag(self.error_int8)?;
        let c = LocoConfig {
            err_beta: self.err_beta,
            group_len: self.group_len,
            bits,
            error_storage: if int8 {
                ErrorStorage::Int8
            } else {
                ErrorStorage::F32
            },
            reset_every: self.reset_every,
        };
        c.validate()?;
        Ok(c)
    }
}

/// Bytes of the packed form of `len` elements in groups of `group_len` at `bits` (4 or 8).
///
/// # Safety
/// `out_len` points to a writable `size_t`.
#[no_mangle]
pub unsafe extern "C" fn adamant_quant_packed_len(
    len: usize,
    group_len: usize,
    bits: u32,
    out_len: *mut usize,
) -> adamant_status {
    ffi_boundary!({
        let out = try_out!(out_len);
        let b = bits_from(bits)?;
        if group_len == 0 {
            return Err(adamant_status::InvalidConfig);
        }
        // Guard core's unchecked size arithmetic: codes + padding + scales.
        quant::group_count(len, group_len)
            .checked_mul(4)
            .and_then(|s| s.checked_add(len))
            .and_then(|s| s.checked_add(3))
            .ok_or(adamant_status::LengthTooLarge)?;
        // SAFETY: non-NULL, aligned (try_out!).
        unsafe { out.write(quant::packed_len(len, group_len, b)) };
        Ok(())
    })
}

/// Every length of one LoCo tensor (from `adamant_loco_layout_sizes`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct adamant_loco_sizes {
    /// Elements per shard (`len / world`): the length of `adamant_loco_decompress_reduce`'s output.
    pub shard_len: usize,
    /// Bytes of one packed chunk.
    pub chunk_len: usize,
    /// Bytes `adamant_loco_compress` writes (`world` chunks).
    pub compress_len: usize,
    /// Bytes `adamant_loco_reduce_hop` reads (same as `compress_len`) and writes (`nodes`
    /// chunks): the written length; 0 with one hop.
    pub hop_len: usize,
    /// Bytes `adamant_loco_decompress_reduce` reads.
    pub received_len: usize,
    /// Elements (f32 storage) or bytes (8-bit storage) of the compress error buffer.
    pub error_len: usize,
    /// Elements or bytes of the second hop's error buffer (0 with one hop).
    pub inter_error_len: usize,
}

pub(crate) fn layout_of(
    c: &LocoConfig,
    len: usize,
    world: usize,
    nodes: usize,
) -> Result<LocoLayout, adamant_status> {
    let l = LocoLayout::new(len, world, nodes, c.group_len, c.bits)?;
    // Guard the size arithmetic below (core's are const fns without overflow checks).
    len.checked_mul(2)
        .and_then(|b| b.checked_add(quant::group_count(len, c.group_len).checked_mul(8)?))
        .and_then(|b| b.checked_add(world.checked_mul(8)?))
        .ok_or(adamant_status::LengthTooLarge)?;
    Ok(l)
}

/// The lengths of a `len`-element tensor compressed over `world` ranks on `nodes` nodes.
/// `world % nodes != 0` or `len % world != 0` give `ADAMANT_STATUS_LENGTH_MISMATCH`.
///
/// # Safety
/// `config` points to a valid struct; `out_sizes` to a writable struct.
#[no_mangle]
pub unsafe extern "C" fn adamant_loco_layout_sizes(
    config: *const adamant_loco_config,
    len: usize,
    world: usize,
    nodes: usize,
    out_sizes: *mut adamant_loco_sizes,
) -> adamant_status {
    ffi_boundary!({
        let c = try_ref!(config).to_core()?;
        let out = try_out!(out_sizes);
        let l = layout_of(&c, len, world, nodes)?;
        let two = nodes > 1;
        let s = adamant_loco_sizes {
            shard_len: l.shard_len(),
            chunk_len: l.chunk_len(),
            compress_len: l.compress_len(),
            hop_len: if two { l.hop_len() } else { 0 },
            received_len: l.received_len(),
            error_len: l.error_len(c.error_storage),
            inter_error_len: if two {
                l.inter_error_len(c.error_storage)
            } else {
                0
            },
        };
        // SAFETY: non-NULL, aligned (try_out!).
        unsafe { out.write(s) };
        Ok(())
    })
}

const IN: [Spec; 1] = [Spec {
    written: false,
    allowed: ANY_DTYPE,
}];

fn written(p: *const u8, n: usize) -> Range {
    Range {
        written: true,
        ..array_range(p, n)
    }
}

/// No two of `ranges` overlap (`ADAMANT_STATUS_OVERLAP` otherwise).
pub(crate) fn no_overlap(ranges: &[Range]) -> Result<(), adamant_status> {
    check_overlap(ranges.len(), |k| ranges[k])
}

/// The one input view `x` of a call, checked (dtype, pointer, no overlap with `others`).
pub(crate) fn input_view(
    x: adamant_const_tensor,
    others: &[Range],
) -> Result<View, adamant_status> {
    let raw = |_| [Raw::from(x)];
    check_all(1, &IN, raw, |_: &[View; 1]| Ok(()), others)?;
    Ok(views(&IN, &raw(0))?[0])
}

/// The quantizer layout of `len` elements (`ADAMANT_STATUS_INVALID_CONFIG` when invalid).
pub(crate) fn quant_layout(
    len: usize,
    group_len: usize,
    bits: Bits,
) -> Result<QuantLayout, adamant_status> {
    QuantLayout::new(len, group_len, bits).map_err(|_| adamant_status::InvalidConfig)
}

/// The error-feedback layout of `len` elements in `shards` shards
/// (`ADAMANT_STATUS_LENGTH_MISMATCH` when invalid).
pub(crate) fn shard_layout(
    len: usize,
    shards: usize,
    group_len: usize,
    bits: Bits,
) -> Result<ShardLayout, adamant_status> {
    ShardLayout::new(len, shards, group_len, bits).map_err(|_| adamant_status::LengthMismatch)
}

/// The LoCo plan of the step after `step` (`Loco::begin` from that counter).
pub(crate) fn plan_after(c: LocoConfig, step: u64) -> Result<LocoPlan, adamant_status> {
    let mut lc = Loco::new(c)?;
    lc.state.step = step;
    Ok(lc.begin()?)
}

/// `n` writable values at `p` (empty when `n` is 0).
///
/// # Safety
/// `p` passed `check_out_array` for `n` values and no other buffer of the call overlaps it.
unsafe fn out_slice<'a, T>(p: *mut T, n: usize) -> &'a mut [T] {
    if n == 0 {
        &mut []
    } else {
        // SAFETY: non-NULL, aligned, `n` values (checked); exclusive by the caller's promise.
        unsafe { core::slice::from_raw_parts_mut(p, n) }
    }
}

/// `f` on the elements of the checked view `v`, whatever its dtype.
macro_rules! on_elems {
    ($v:expr, |$x:ident| $body:expr) => {
        with_elem($v, |e| match e {
            Elems::F32($x) => $body,
            Elems::Bf16($x) => $body,
            Elems::F16($x) => $body,
        })
    };
}

/// Quantize `x` (f32, bf16 or f16) into `out_packed` (exactly `adamant_quant_packed_len`
/// bytes; padding written as zero). A NaN or infinite element gives
/// `ADAMANT_STATUS_SKIPPED_NON_FINITE` and writes nothing.
///
/// # Safety
/// `x.data` points to `x.len` elements of its dtype; `out_packed` to `packed_len` writable
/// bytes.
#[no_mangle]
pub unsafe extern "C" fn adamant_quantize(
    x: adamant_const_tensor,
    group_len: usize,
    bits: u32,
    out_packed: *mut u8,
    packed_len: usize,
) -> adamant_status {
    ffi_boundary!({
        check_out_array(out_packed, packed_len)?;
        let b = bits_from(bits)?;
        let layout = quant_layout(x.len, group_len, b)?;
        let v = input_view(x, &[written(out_packed, packed_len)])?;
        if layout.packed_len() != packed_len {
            return Err(adamant_status::LengthMismatch);
        }
        // SAFETY: `packed_len` bytes (checked), not overlapping `x`.
        let out = unsafe { out_slice(out_packed, packed_len) };
        on_elems!(v, |x| quant::quantize(x, &layout, out))?;
        Ok(())
    })
}

/// A checked read-only view's elements.
enum Elems<'a> {
    F32(&'a [f32]),
    Bf16(&'a [bf16]),
    F16(&'a [f16]),
}

fn with_elem<R>(v: View, f: impl FnOnce(Elems<'_>) -> R) -> R {
    // SAFETY: a checked read-only view that nothing in the call writes.
    unsafe {
        match v.dtype {
            Dtype::F32 => f(Elems::F32(crate::tensor::as_slice(&v))),
            Dtype::Bf16 => f(Elems::Bf16(crate::tensor::as_slice(&v))),
            Dtype::F16 => f(Elems::F16(crate::tensor::as_slice(&v))),
        }
    }
}

/// Bytes and floats of a call, checked: NULL, alignment, byte length, overlap.
fn bytes<'a>(p: *const u8, n: usize) -> Result<&'a [u8], adamant_status> {
    // SAFETY: the entry points' callers promise `n` readable bytes at `p`.
    unsafe { crate::boundary::slice_from(p, n) }
}

/// Decode `packed` (`packed_len` bytes, the layout of `len` elements in groups of
/// `group_len` at `bits`) into `out` (`len` floats): `out[i] = f32(q_i) * inv_scale`. A scale
/// that is not finite and positive (corrupt bytes) gives `ADAMANT_STATUS_INVALID_CONFIG`.
///
/// # Safety
/// `packed` points to `packed_len` bytes; `out` to `len` writable floats.
#[no_mangle]
pub unsafe extern "C" fn adamant_dequantize(
    packed: *const u8,
    packed_len: usize,
    group_len: usize,
    bits: u32,
    out: *mut f32,
    len: usize,
) -> adamant_status {
    ffi_boundary!({
        let p = bytes(packed, packed_len)?;
        check_out_array(out, len)?;
        let b = bits_from(bits)?;
        let layout = quant_layout(len, group_len, b)?;
        no_overlap(&[
            array_range(packed, packed_len),
            written(out.cast(), len * 4),
        ])?;
        // SAFETY: `len` floats (checked), not overlapping `packed`.
        let o = unsafe { out_slice(out, len) };
        quant::dequantize(p, &layout, o)?;
        Ok(())
    })
}

/// A checked error buffer: f32 values or packed bytes, by the configured storage.
///
/// # Safety
/// `err` points to `err_len` writable values of the storage type.
unsafe fn err_buf<'a>(
    storage: ErrorStorage,
    err: *mut c_void,
    err_len: usize,
) -> Result<(ErrorBuf<'a>, Range), adamant_status> {
    let size = match storage {
        ErrorStorage::F32 => 4,
        ErrorStorage::Int8 => 1,
    };
    match storage {
        ErrorStorage::F32 => check_out_array(err.cast::<f32>(), err_len)?,
        ErrorStorage::Int8 => check_out_array(err.cast::<u8>(), err_len)?,
    }
    let range = written(err.cast(), err_len * size);
    // SAFETY: non-NULL, aligned, in range (checked); exclusive by the overlap check that
    // every caller runs before using the buffer.
    let buf = unsafe {
        match storage {
            ErrorStorage::F32 => ErrorBuf::F32(out_slice(err.cast(), err_len)),
            ErrorStorage::Int8 => ErrorBuf::Int8(out_slice(err.cast(), err_len)),
        }
    };
    Ok((buf, range))
}

/// Compress this rank's gradient for LoCo's all-to-all: for every chunk `c` (shard
/// `k`, see the module doc) and element, `x = g + e_old` (`e_old = 0` at a reset step),
/// 4- or 8-bit codes of `x` into chunk `c` of `out_packed` (`compress_len` bytes), and the
/// error update `e = err_beta*e_old + (1-err_beta)*(x - x̂)` into `err` (`error_len` f32
/// values or bytes, by `config.error_int8`). `step` is the steps compressed so far (shared
/// by every tensor of a step); on success `*out_step = step + 1`. A non-finite gradient or
/// `g + e` gives `ADAMANT_STATUS_SKIPPED_NON_FINITE`; nothing is written on any error.
///
/// # Safety
/// `config` points to a valid struct; `grad.data` to `grad.len` elements of its dtype; `err`
/// to `err_len` writable values; `out_packed` to `packed_len` writable bytes; `out_step` to a
/// writable `uint64_t`.
#[no_mangle]
pub unsafe extern "C" fn adamant_loco_compress(
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
) -> adamant_status {
    ffi_boundary!({
        let c = try_ref!(config).to_core()?;
        let os = try_out!(out_step);
        check_out_array(out_packed, packed_len)?;
        // SAFETY: the caller's contract above.
        let (e, er) = unsafe { err_buf(c.error_storage, err, err_len) }?;
        let others = [er, written(out_packed, packed_len), View::out_range(os)];
        let v = input_view(grad, &others)?;
        let l = layout_of(&c, grad.len, world, nodes)?;
        let plan = plan_after(c, step)?;
        // SAFETY: `packed_len` bytes (checked), overlapping nothing else.
        let out = unsafe { out_slice(out_packed, packed_len) };
        on_elems!(v, |g| loco::compress(&plan, &l, g, e, out))?;
        // SAFETY: non-NULL, aligned, overlapping nothing else.
        unsafe { os.write(plan.step) };
        Ok(())
    })
}

/// Second hop of a two-hop layout (`nodes > 1`): `received` (`compress_len` bytes, the
/// intra-node all-to-all's output) is folded per node over the local ranks, the inter error
/// buffer `err_inter` (`inter_error_len`) added, and the result re-compressed into
/// `out_packed` (`hop_len` bytes, chunk `n` for node `n`) with LoCo's error update. Same
/// `step` as the compress call of this step; errors as `adamant_loco_compress`.
///
/// # Safety
/// As `adamant_loco_compress`; `received` points to `received_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn adamant_loco_reduce_hop(
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
) -> adamant_status {
    ffi_boundary!({
        let c = try_ref!(config).to_core()?;
        let r = bytes(received, received_len)?;
        check_out_array(out_packed, packed_len)?;
        // SAFETY: the caller's contract above.
        let (e, er) = unsafe { err_buf(c.error_storage, err_inter, err_len) }?;
        no_overlap(&[
            array_range(received, received_len),
            er,
            written(out_packed, packed_len),
        ])?;
        let l = layout_of(&c, len, world, nodes)?;
        if nodes < 2 {
            return Err(adamant_status::LengthMismatch);
        }
        let plan = plan_after(c, step)?;
        // SAFETY: `packed_len` bytes (checked), overlapping nothing else.
        let out = unsafe { out_slice(out_packed, packed_len) };
        loco::reduce_hop(&plan, &l, r, e, out)?;
        Ok(())
    })
}

/// Final reduction of this rank's shard: `received` (`received_len` bytes: `world` chunks
/// with one hop, `nodes` with two, in rank/node order) decoded and averaged into `out`
/// (`shard_len` floats): `out[i] = (((+0.0 + x̂_0[i]) + x̂_1[i]) + ...) / world`. Corrupt
/// scales or a sum that would overflow give `ADAMANT_STATUS_INVALID_CONFIG`.
///
/// # Safety
/// `config` points to a valid struct; `received` to `received_len` bytes; `out` to `out_len`
/// writable floats.
#[no_mangle]
pub unsafe extern "C" fn adamant_loco_decompress_reduce(
    config: *const adamant_loco_config,
    len: usize,
    world: usize,
    nodes: usize,
    received: *const u8,
    received_len: usize,
    out: *mut f32,
    out_len: usize,
) -> adamant_status {
    ffi_boundary!({
        let c = try_ref!(config).to_core()?;
        let r = bytes(received, received_len)?;
        check_out_array(out, out_len)?;
        no_overlap(&[
            array_range(received, received_len),
            written(out.cast(), out_len * 4),
        ])?;
        let l = layout_of(&c, len, world, nodes)?;
        // SAFETY: `out_len` floats (checked), not overlapping `received`.
        let o = unsafe { out_slice(out, out_len) };
        loco::decompress_reduce(&l, r, o)?;
        Ok(())
    })
}

/// Storage of an error buffer from a 0/1 flag (1: 8-bit packed).
pub(crate) fn storage_from(error_int8: u32) -> Result<ErrorStorage, adamant_status> {
    Ok(if flag(error_int8)? {
        ErrorStorage::Int8
    } else {
        ErrorStorage::F32
    })
}

/// Two-way error feedback, worker side (1-bit-Adam-style compression of the values a worker
/// sends): per shard (`shards` equal shards of `x`, chunk `c` = shard `c`), `u = x + e`,
/// codes of `u` (groups of `group_len`, `bits` 4 or 8) into chunk `c` of `out_packed`
/// (`shards * adamant_quant_packed_len(len/shards, group_len, bits)` bytes), and
/// `e = u - x̂` into `err` (`len` f32 values, or 8-bit packed chunks when `error_int8` is 1).
/// A non-finite `x` or `u` gives `ADAMANT_STATUS_SKIPPED_NON_FINITE`; nothing is written on
/// any error. `adamant_core::feedback::ef_worker_compress`.
///
/// # Safety
/// `x.data` points to `x.len` elements of its dtype; `err` to `err_len` writable values of its
/// storage; `out_packed` to `packed_len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn adamant_ef_worker_compress(
    x: adamant_const_tensor,
    shards: usize,
    group_len: usize,
    bits: u32,
    error_int8: u32,
    err: *mut c_void,
    err_len: usize,
    out_packed: *mut u8,
    packed_len: usize,
) -> adamant_status {
    ffi_boundary!({
        let b = bits_from(bits)?;
        let st = storage_from(error_int8)?;
        check_out_array(out_packed, packed_len)?;
        // SAFETY: the caller's contract above.
        let (e, er) = unsafe { err_buf(st, err, err_len) }?;
        let v = input_view(x, &[er, written(out_packed, packed_len)])?;
        let l = shard_layout(x.len, shards, group_len, b)?;
        // SAFETY: `packed_len` bytes (checked), overlapping nothing else.
        let out = unsafe { out_slice(out_packed, packed_len) };
        on_elems!(v, |g| adamant_core::feedback::ef_worker_compress(
            &l, g, e, out
        ))?;
        Ok(())
    })
}

/// Two-way error feedback, server side for one shard of `shard_len` elements: `received`
/// holds `workers` chunks packed with (`group_len`, `worker_bits`) in rank order;
/// `w = fold_r(x̂_r)/workers + e` (rank-order fold from `+0.0`, one f32 division), codes of
/// `w` with `server_bits` into `out_packed` (one chunk), `e = w - ŵ` into `err` (`shard_len`
/// f32 values or one 8-bit chunk). Errors as `adamant_ef_worker_compress`, plus corrupt
/// scales (`ADAMANT_STATUS_INVALID_CONFIG`). `adamant_core::feedback::ef_server_compress`.
///
/// # Safety
/// `received` points to `received_len` bytes; `err` to `err_len` writable values;
/// `out_packed` to `packed_len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn adamant_ef_server_compress(
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
) -> adamant_status {
    ffi_boundary!({
        let wb = bits_from(worker_bits)?;
        let sb = bits_from(server_bits)?;
        let st = storage_from(error_int8)?;
        let r = bytes(received, received_len)?;
        check_out_array(out_packed, packed_len)?;
        // SAFETY: the caller's contract above.
        let (e, er) = unsafe { err_buf(st, err, err_len) }?;
        no_overlap(&[
            array_range(received, received_len),
            er,
            written(out_packed, packed_len),
        ])?;
        let worker = quant_layout(shard_len, group_len, wb)?;
        if workers == 0 {
            return Err(adamant_status::InvalidConfig);
        }
        // SAFETY: `packed_len` bytes (checked), overlapping nothing else.
        let out = unsafe { out_slice(out_packed, packed_len) };
        adamant_core::feedback::ef_server_compress(&worker, sb, r, workers, e, out)?;
        Ok(())
    })
}

/// Two-way error feedback, final step: decode the all-gathered server chunks (`shards`
/// chunks, chunk `c` = shard `c`, packed with `group_len` and `bits`) into `out`, the whole
/// tensor of `len` floats. `adamant_core::feedback::ef_decompress`.
///
/// # Safety
/// `packed` points to `packed_len` bytes; `out` to `len` writable floats.
#[no_mangle]
pub unsafe extern "C" fn adamant_ef_decompress(
    packed: *const u8,
    packed_len: usize,
    shards: usize,
    group_len: usize,
    bits: u32,
    out: *mut f32,
    len: usize,
) -> adamant_status {
    ffi_boundary!({
        let p = bytes(packed, packed_len)?;
        check_out_array(out, len)?;
        let b = bits_from(bits)?;
        no_overlap(&[
            array_range(packed, packed_len),
            written(out.cast(), len * 4),
        ])?;
        let l = shard_layout(len, shards, group_len, b)?;
        // SAFETY: `len` floats (checked), not overlapping `packed`.
        let o = unsafe { out_slice(out, len) };
        adamant_core::feedback::ef_decompress(&l, p, o)?;
        Ok(())
    })
}
