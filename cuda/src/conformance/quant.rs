//! Conformance bodies of the quantizer kernels (`quant` module): quantize, dequantize, LoCo
//! (compress over several steps with f32 and 8-bit error buffers, one and two hops, the second
//! hop, decompress_reduce / decompress_sum) and two-way error feedback (worker, server,
//! decompress), each against `adamant-core` on the same bytes: packed buffers byte for byte,
//! f32 outputs and error buffers by bits, the status word set exactly where core returns an
//! error, and every output untouched then.

use super::{get, put, values_with, Rng};
use crate::backend::Backend;
use crate::ops::{self, OpError};
use adamant_core::error::QuantError;
use adamant_core::feedback::{self, ErrorBuf, ErrorStorage, ShardLayout};
use adamant_core::loco::{self, LocoConfig, LocoLayout, LocoPlan};
use adamant_core::quant::{self, Bits, QuantLayout};
use adamant_core::{bf16, f16, Dtype, Element};

const STATUS_SET: u32 = crate::args::FOUND_INF_SET;

fn narrow<T: Element>(x: f32) -> T {
    match T::DTYPE {
        Dtype::F32 => T::from_bits_u32(x.to_bits()),
        Dtype::Bf16 => T::from_bits_u32(bf16::from_f32(x).to_bits() as u32),
        Dtype::F16 => T::from_bits_u32(f16::from_f32(x).to_bits() as u32),
    }
}

/// Finite adversarial values, shaped per group: ordinary random values (with +-0, subnormals,
/// huge and tiny ones), all-zero groups (+0 and -0), all-equal groups, subnormal-only groups
/// (scale saturation at f32::MAX), ties at half a step for 4 and 8 bits, and (`extreme`)
/// groups holding the dtype's largest finite value.
fn quant_values<T: Element>(rng: &mut Rng, n: usize, group_len: usize, extreme: bool) -> Vec<T> {
    let mut v = values_with::<T>(rng, n, false, true);
    if !extreme {
        // Keep |x| <= 1e30 so that x + e never overflows.
        for x in v.iter_mut() {
            if x.widen().abs() > 1e30 {
                *x = narrow(x.widen() * 1e-10);
            }
        }
    }
    let max = match T::DTYPE {
        Dtype::F32 => f32::MAX,
        Dtype::Bf16 => bf16::MAX.to_f32(),
        Dtype::F16 => f16::MAX.to_f32(),
    };
    let sub_bits: u32 = match T::DTYPE {
        Dtype::F32 => 0x007F_FFFF,
        Dtype::Bf16 => 0x7F,
        Dtype::F16 => 0x3FF,
    };
    for (g, grp) in v.chunks_mut(group_len).enumerate() {
        let r = rng.next();
        match g % 8 {
            1 => {
                for (k, x) in grp.iter_mut().enumerate() {
                    *x = narrow(if (k + g) % 3 == 0 { -0.0 } else { 0.0 });
                }
            }
            2 => {
                let c = grp[0];
                grp.fill(c);
            }
            3 => {
                for x in grp.iter_mut() {
                    let b = (rng.next() as u32) % sub_bits + 1;
                    let s = if rng.next() % 2 == 0 {
                        0
                    } else {
                        sign_bit::<T>()
                    };
                    *x = T::from_bits_u32(b | s);
                }
            }
            4 if extreme => {
                let k = (r as usize) % grp.len();
                grp[k] = narrow(if r % 2 == 0 { max } else { -max });
            }
            5 | 6 => {
                // absmax 8 (4-bit scale 1) or 128 (8-bit scale 1): x.5 values are exact ties.
                let h = if g % 8 == 5 { 8.0 } else { 128.0 };
                for (k, x) in grp.iter_mut().enumerate() {
                    let t = ((k as i64 * 7 + (r % 13) as i64) % (2 * h as i64)) as f32 - h;
                    *x = narrow(if k == 0 { h } else { t + 0.5 });
                }
            }
            _ => {}
        }
    }
    v
}

fn sign_bit<T: Element>() -> u32 {
    if T::DTYPE == Dtype::F32 {
        0x8000_0000
    } else {
        0x8000
    }
}

fn elem_bytes<T: Element>(xs: &[T]) -> Vec<u8> {
    super::to_bytes(xs)
}

fn f32_bytes(xs: &[f32]) -> Vec<u8> {
    xs.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn bytes_f32(b: &[u8]) -> Vec<f32> {
    b.chunks(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// A device call to compare: read-only inputs, outputs with their initial bytes, core's
/// outputs (or core's error).
struct Call<'a> {
    what: String,
    inputs: Vec<(&'a [u8], u64)>,
    outputs: Vec<Vec<u8>>,
    want: Result<Vec<Vec<u8>>, QuantError>,
    /// The status word starts set.
    preset: bool,
}

impl<'a> Call<'a> {
    fn new(
        what: String,
        inputs: Vec<(&'a [u8], u64)>,
        outputs: Vec<Vec<u8>>,
        want: Result<Vec<Vec<u8>>, QuantError>,
    ) -> Self {
        Call {
            what,
            inputs,
            outputs,
            want,
            preset: false,
        }
    }

    /// The same call with the status word already set (the step's `found_inf`): the device
    /// must write nothing, as when core refuses.
    fn preset(mut self) -> Self {
        self.what = format!("{} with status preset", self.what);
        self.preset = true;
        self.want = Err(QuantError::WrongStorage {
            buffer: adamant_core::error::Buffer::Packed,
        });
        self
    }
}

/// Upload, launch, download and compare. Returns (bytes compared, whether core refused).
fn run<B: Backend + ?Sized>(
    b: &mut B,
    call: Call<'_>,
    launch: impl FnOnce(&mut B, &[u64], &[u64], u64) -> Result<(), OpError>,
) -> Result<(usize, bool), String> {
    let mut ins = Vec::new();
    for (bytes, misalign) in &call.inputs {
        ins.push(put(b, bytes, *misalign)?);
    }
    let mut outs = Vec::new();
    for o in &call.outputs {
        outs.push(put(b, o, 0)?);
    }
    let status0: u32 = if call.preset { STATUS_SET } else { 0 };
    let status = put(b, &status0.to_le_bytes(), 0)?;
    launch(b, &ins, &outs, status).map_err(|e| format!("{}: {e}", call.what))?;
    let st = get(b, status, 1, 4)?[0];
    let refused = call.want.is_err();
    let want_outs = match &call.want {
        Ok(w) => w.clone(),
        Err(_) => call.outputs.clone(),
    };
    let want_st = if refused { STATUS_SET } else { 0 };
    if st != want_st {
        return Err(format!(
            "{}: status {st:#x}, expected {want_st:#x} (core: {:?})",
            call.what,
            call.want.as_ref().err()
        ));
    }
    let mut n = 0;
    for (k, (addr, w)) in outs.iter().zip(&want_outs).enumerate() {
        let got: Vec<u8> = get(b, *addr, w.len(), 1)?
            .iter()
            .map(|&x| x as u8)
            .collect();
        if let Some(i) = (0..w.len()).find(|&i| got[i] != w[i]) {
            return Err(format!(
                "{}: output {k} byte {i}: device {:#04x} core {:#04x}{}",
                call.what,
                got[i],
                w[i],
                if refused {
                    " (core refused: nothing may change)"
                } else {
                    ""
                }
            ));
        }
        n += w.len();
    }
    Ok((n, refused))
}

/// Compare a call that writes `out_len` bytes (output 0) and updates an error buffer (output 1,
/// initially `err`, bytes of `storage`): core runs on copies, the device from the same bytes.
/// Returns core's new error bytes when core accepted the call.
#[allow(clippy::too_many_arguments)]
fn run_with_error<B: Backend + ?Sized, R>(
    b: &mut B,
    counts: &mut QuantCounts,
    what: String,
    input: (&[u8], u64),
    out_len: usize,
    storage: ErrorStorage,
    err: &[u8],
    core: impl FnOnce(ErrorBuf<'_>, &mut [u8]) -> Result<R, QuantError>,
    launch: impl FnOnce(&mut B, &[u64], &[u64], u64) -> Result<(), OpError>,
) -> Result<Option<Vec<u8>>, String> {
    let mut out = sentinel(out_len);
    let mut e = err.to_vec();
    let mut ef = Vec::new();
    let want = core(err_buf(storage, &mut e, &mut ef), &mut out)
        .map(|_| vec![out, err_bytes(storage, &e, &ef)]);
    let next = want.as_ref().ok().map(|w| w[1].clone());
    let call = Call::new(
        what,
        vec![input],
        vec![sentinel(out_len), err.to_vec()],
        want,
    );
    counts.add(run(b, call, launch)?);
    Ok(next)
}

/// Case counter: launches compared, bytes compared, refusals compared.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QuantCounts {
    /// Calls compared (each a check launch and a main launch).
    pub cases: usize,
    /// Output bytes compared.
    pub bytes: usize,
    /// Calls core refused (status set, outputs untouched on the device).
    pub refused: usize,
}

impl QuantCounts {
    fn add(&mut self, r: (usize, bool)) {
        self.cases += 1;
        self.bytes += r.0;
        self.refused += r.1 as usize;
    }
}

fn sentinel(n: usize) -> Vec<u8> {
    (0..n).map(|i| 0xA5 ^ (i as u8)).collect()
}

fn set_f32(b: &mut [u8], at: usize, v: f32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// quantize + dequantize of one dtype over one layout, then the refusals (a non-finite input;
/// a bad scale on decode).
pub fn quantize_case<B: Backend + ?Sized, T: Element>(
    b: &mut B,
    layout: QuantLayout,
    seed: u64,
    misalign: u64,
    counts: &mut QuantCounts,
) -> Result<(), String> {
    let mut rng = Rng(seed);
    let x = quant_values::<T>(&mut rng, layout.len, layout.group_len, true);
    let xb = elem_bytes(&x);
    let pl = layout.packed_len();
    let what = format!("quantize {} {layout:?}", T::DTYPE);
    let mut packed = sentinel(pl);
    let want = quant::quantize(&x, &layout, &mut packed).map(|_| vec![packed.clone()]);
    let w = T::DTYPE.size() as u64;
    let quantize = |b: &mut B, i: &[u64], o: &[u64], s: u64| {
        ops::quantize(b, T::DTYPE, &layout, i[0], o[0], s)
    };
    let dequantize =
        |b: &mut B, i: &[u64], o: &[u64], s: u64| ops::dequantize(b, &layout, i[0], o[0], s);
    let call = Call::new(
        what.clone(),
        vec![(&xb, misalign * w)],
        vec![sentinel(pl)],
        want,
    );
    if layout.len > 0 && seed % 2 == 0 {
        let again = Call::new(
            what.clone(),
            call.inputs.clone(),
            call.outputs.clone(),
            Ok(Vec::new()),
        )
        .preset();
        counts.add(run(b, again, quantize)?);
    }
    counts.add(run(b, call, quantize)?);

    // Dequantize core's bytes.
    let mut out = vec![0f32; layout.len];
    let want = quant::dequantize(&packed, &layout, &mut out).map(|_| vec![f32_bytes(&out)]);
    let call = Call::new(
        format!("de{what}"),
        vec![(&packed, 0)],
        vec![sentinel(4 * layout.len)],
        want,
    );
    counts.add(run(b, call, dequantize)?);

    if layout.len > 0 {
        // A non-finite input element: nothing written.
        let mut bad = x.clone();
        let k = (rng.next() as usize) % layout.len;
        bad[k] = T::from_bits_u32(match (T::DTYPE, seed % 3) {
            (Dtype::F32, 0) => 0x7F80_0000,
            (Dtype::F32, 1) => 0xFF80_0000,
            (Dtype::F32, _) => 0x7FC0_1234,
            (Dtype::Bf16, 0) => 0xFF80,
            (Dtype::Bf16, _) => 0x7FC1,
            (Dtype::F16, 0) => 0x7C00,
            (Dtype::F16, _) => 0xFE01,
        });
        let bb = elem_bytes(&bad);
        let mut p2 = sentinel(pl);
        let want = quant::quantize(&bad, &layout, &mut p2).map(|_| vec![p2.clone()]);
        let call = Call::new(
            format!("{what} non-finite at {k}"),
            vec![(&bb, 0)],
            vec![sentinel(pl)],
            want,
        );
        counts.add(run(b, call, quantize)?);
        // A bad scale (zero, negative, infinite or NaN) in one group.
        let g = (rng.next() as usize) % layout.groups();
        let mut corrupt = packed.clone();
        let v = [0.0f32, -1.0, f32::INFINITY, f32::NAN][(seed % 4) as usize];
        set_f32(&mut corrupt, layout.scales_offset() + 4 * g, v);
        let mut out = vec![0f32; layout.len];
        let want = quant::dequantize(&corrupt, &layout, &mut out).map(|_| vec![f32_bytes(&out)]);
        let call = Call::new(
            format!("de{what} bad scale {v} in group {g}"),
            vec![(&corrupt, 0)],
            vec![sentinel(4 * layout.len)],
            want,
        );
        counts.add(run(b, call, dequantize)?);
    }
    Ok(())
}

/// Layouts of the quantize matrix: single elements, odd group lengths, partial last groups,
/// groups longer than a block, an empty tensor.
pub fn quant_layouts() -> Vec<(usize, usize)> {
    vec![
        (1, 1),
        (9, 1),
        (7, 2),
        (33, 7),
        (64, 32),
        (300, 33),
        (517, 512),
        (1100, 512),
        (1030, 513),
        (40, 64),
        (0, 4),
    ]
}

fn packed_chunks(
    rng: &mut Rng,
    chunk: &QuantLayout,
    count: usize,
    scale_by: f32,
) -> Result<Vec<u8>, String> {
    let mut all = Vec::new();
    for _ in 0..count {
        let v: Vec<f32> = quant_values::<f32>(rng, chunk.len, chunk.group_len, false)
            .into_iter()
            .map(|x| {
                let y = x * scale_by;
                if y.is_finite() {
                    y
                } else {
                    scale_by.copysign(x)
                }
            })
            .collect();
        let mut p = vec![0u8; chunk.packed_len()];
        quant::quantize(&v, chunk, &mut p).map_err(|e| format!("{e:?}"))?;
        all.extend(p);
    }
    Ok(all)
}

/// An initial error buffer for `chunks` shards: f32 values, or valid 8-bit packed chunks.
fn initial_error(
    rng: &mut Rng,
    chunk: &QuantLayout,
    chunks: usize,
    storage: ErrorStorage,
) -> Result<Vec<u8>, String> {
    match storage {
        ErrorStorage::F32 => {
            let v: Vec<f32> = quant_values::<f32>(rng, chunk.len * chunks, chunk.group_len, false)
                .into_iter()
                .map(|x| x * 1e-3)
                .collect();
            Ok(f32_bytes(&v))
        }
        ErrorStorage::Int8 => {
            let l8 = QuantLayout {
                bits: Bits::Eight,
                ..*chunk
            };
            packed_chunks(rng, &l8, chunks, 1e-3)
        }
    }
}

fn err_buf<'a>(storage: ErrorStorage, bytes: &'a mut [u8], f32s: &'a mut Vec<f32>) -> ErrorBuf<'a> {
    match storage {
        ErrorStorage::F32 => {
            *f32s = bytes_f32(bytes);
            ErrorBuf::F32(f32s)
        }
        ErrorStorage::Int8 => ErrorBuf::Int8(bytes),
    }
}

fn err_bytes(storage: ErrorStorage, bytes: &[u8], f32s: &[f32]) -> Vec<u8> {
    match storage {
        ErrorStorage::F32 => f32_bytes(f32s),
        ErrorStorage::Int8 => bytes.to_vec(),
    }
}

/// LoCo over `steps` steps of one layout and storage with gradients of `T`: compress (a reset
/// at step 1, then the error history), a planted infinity at step 3 (refused), the second hop
/// for two-hop layouts, and decompress_reduce / decompress_sum of received chunks (plus an
/// overflowing fold, refused).
pub fn loco_case<B: Backend + ?Sized, T: Element>(
    b: &mut B,
    layout: LocoLayout,
    storage: ErrorStorage,
    seed: u64,
    counts: &mut QuantCounts,
) -> Result<(), String> {
    let mut rng = Rng(seed);
    let config = LocoConfig {
        group_len: layout.group_len,
        bits: layout.bits,
        error_storage: storage,
        ..LocoConfig::deepspeed()
    };
    let chunk = layout.chunk();
    let mut err =
        sentinel(layout.error_len(storage) * if storage == ErrorStorage::F32 { 4 } else { 1 });
    let mut inter = sentinel(
        layout.inter_error_len(storage) * if storage == ErrorStorage::F32 { 4 } else { 1 },
    );
    for step in 1..=4u64 {
        let plan = LocoPlan {
            step,
            reset: step == 1,
            rule: config.rule(),
            error_storage: storage,
        };
        let mut g = quant_values::<T>(&mut rng, layout.len, layout.group_len, false);
        if step == 3 && layout.len > 0 {
            let k = (rng.next() as usize) % layout.len;
            g[k] = T::from_bits_u32(if T::DTYPE == Dtype::F32 {
                0xFF80_0000
            } else {
                0xFC00
            });
            if T::DTYPE == Dtype::Bf16 {
                g[k] = T::from_bits_u32(0x7F80);
            }
        }
        let gb = elem_bytes(&g);
        let what = format!(
            "loco compress {} {layout:?} {storage:?} step {step}",
            T::DTYPE
        );
        if let Some(e) = run_with_error(
            b,
            counts,
            what,
            (&gb, (step % 2) * T::DTYPE.size() as u64),
            layout.compress_len(),
            storage,
            &err,
            |e, out| loco::compress(&plan, &layout, &g, e, out),
            |b, i, o, s| ops::loco_compress(b, &plan, &layout, T::DTYPE, i[0], o[1], o[0], s),
        )? {
            err = e;
        }

        if layout.nodes > 1 {
            // Second hop over received chunks from `local` ranks.
            let received = packed_chunks(&mut rng, &chunk, layout.world, 1.0)?;
            if let Some(e) = run_with_error(
                b,
                counts,
                format!("loco reduce_hop {layout:?} {storage:?} step {step}"),
                (&received, 0),
                layout.hop_len(),
                storage,
                &inter,
                |e, out| loco::reduce_hop(&plan, &layout, &received, e, out),
                |b, i, o, s| ops::loco_reduce_hop(b, &plan, &layout, i[0], o[1], o[0], s),
            )? {
                inter = e;
            }
        }
    }
    // Final reduction (average and sum), and an overflowing fold (every peer near f32::MAX).
    for (average, scale_by) in [(true, 1.0f32), (false, 1e3), (true, 3.0e38)] {
        let received = packed_chunks(&mut rng, &chunk, layout.final_count(), scale_by)?;
        let mut out = vec![0f32; layout.shard_len()];
        let r = if average {
            loco::decompress_reduce(&layout, &received, &mut out)
        } else {
            loco::decompress_sum(&layout, &received, &mut out)
        };
        let want = r.map(|_| vec![f32_bytes(&out)]);
        let call = Call::new(
            format!("loco decompress {layout:?} average {average} x{scale_by}"),
            vec![(&received, 0)],
            vec![sentinel(4 * layout.shard_len())],
            want,
        );
        counts.add(run(b, call, |b, i, o, s| {
            ops::loco_decompress(b, &layout, i[0], o[0], average, s)
        })?);
    }
    Ok(())
}

/// Two-way error feedback: worker compress (two steps), server compress with its own bit
/// width, decompress of the server chunks, and a corrupted 8-bit error scale (refused).
pub fn ef_case<B: Backend + ?Sized, T: Element>(
    b: &mut B,
    layout: ShardLayout,
    server_bits: Bits,
    storage: ErrorStorage,
    seed: u64,
    counts: &mut QuantCounts,
) -> Result<(), String> {
    let mut rng = Rng(seed);
    let chunk = layout.chunk();
    let mut err = initial_error(&mut rng, &chunk, layout.shards, storage)?;
    for step in 0..3 {
        let x = quant_values::<T>(&mut rng, layout.len, layout.group_len, false);
        let xb = elem_bytes(&x);
        let mut e0 = err.clone();
        if step == 2 && storage == ErrorStorage::Int8 && chunk.groups() > 0 {
            // Corrupt the last scale of the last shard's 8-bit error: core refuses.
            let n = e0.len();
            set_f32(&mut e0, n - 4, 0.0);
        }
        if let Some(e) = run_with_error(
            b,
            counts,
            format!("ef worker {} {layout:?} {storage:?} step {step}", T::DTYPE),
            (&xb, T::DTYPE.size() as u64),
            layout.packed_len(),
            storage,
            &e0,
            |e, out| feedback::ef_worker_compress(&layout, &x, e, out),
            |b, i, o, s| {
                ops::ef_worker_compress(b, &layout, T::DTYPE, i[0], o[1], storage, o[0], s)
            },
        )? {
            err = e;
        }
    }
    // Server: `workers` chunks of one shard.
    let workers = 3;
    let received = packed_chunks(&mut rng, &chunk, workers, 1.0)?;
    let mut server_err = initial_error(&mut rng, &chunk, 1, storage)?;
    let out_layout = QuantLayout {
        bits: server_bits,
        ..chunk
    };
    for step in 0..2 {
        if let Some(e) = run_with_error(
            b,
            counts,
            format!("ef server {chunk:?} -> {server_bits:?} {storage:?} step {step}"),
            (&received, 0),
            out_layout.packed_len(),
            storage,
            &server_err,
            |e, out| feedback::ef_server_compress(&chunk, server_bits, &received, workers, e, out),
            |b, i, o, s| {
                let (w, bits) = (workers, server_bits);
                ops::ef_server_compress(b, &chunk, bits, i[0], w, o[1], storage, o[0], s)
            },
        )? {
            server_err = e;
        }
    }
    // Decompress the all-gathered server chunks.
    let gathered = packed_chunks(&mut rng, &chunk, layout.shards, 1.0)?;
    let mut out = vec![0f32; layout.len];
    let want = feedback::ef_decompress(&layout, &gathered, &mut out).map(|_| vec![f32_bytes(&out)]);
    let call = Call::new(
        format!("ef decompress {layout:?}"),
        vec![(&gathered, 0)],
        vec![sentinel(4 * layout.len)],
        want,
    );
    counts.add(run(b, call, |b, i, o, s| {
        ops::ef_decompress(b, &layout, i[0], o[0], s)
    })?);
    Ok(())
}

macro_rules! by_dtype {
    ($f:ident, $d:expr, $($a:expr),*) => {
        match $d {
            Dtype::F32 => $f::<_, f32>($($a),*),
            Dtype::Bf16 => $f::<_, bf16>($($a),*),
            Dtype::F16 => $f::<_, f16>($($a),*),
        }
    };
}

/// The quantizer matrix: quantize/dequantize for every dtype, bit width and layout; LoCo for
/// one- and two-hop layouts with both error storages; two-way EF with both storages and mixed
/// bit widths. `quick` keeps one dtype per layout.
pub fn quant_matrix<B: Backend + ?Sized>(b: &mut B, quick: bool) -> Result<QuantCounts, String> {
    let mut c = QuantCounts::default();
    for (li, (len, group_len)) in quant_layouts().into_iter().enumerate() {
        for (bi, bits) in [Bits::Four, Bits::Eight].into_iter().enumerate() {
            for (di, d) in Dtype::ALL.into_iter().enumerate() {
                if quick && di != (li + bi) % 3 {
                    continue;
                }
                let layout =
                    QuantLayout::new(len, group_len, bits).map_err(|e| format!("{e:?}"))?;
                let seed = (li * 100 + bi * 10 + di) as u64;
                by_dtype!(quantize_case, d, b, layout, seed, (li % 2) as u64, &mut c)?;
            }
        }
    }
    if !quick {
        // More groups than the largest grid: blocks stride over groups.
        let layout = QuantLayout::new(4099, 1, Bits::Eight).map_err(|e| format!("{e:?}"))?;
        quantize_case::<B, bf16>(b, layout, 77, 0, &mut c)?;
    }
    let locos = [
        (37, 1, 1, 8, Bits::Four),
        (4 * 45, 4, 1, 16, Bits::Four),
        (4 * 33, 4, 2, 7, Bits::Four),
        (6 * 20, 6, 3, 512, Bits::Eight),
        (2 * 600, 2, 1, 512, Bits::Four),
        (2 * 1030, 2, 1, 513, Bits::Eight),
    ];
    for (k, (len, world, nodes, group_len, bits)) in locos.into_iter().enumerate() {
        let layout =
            LocoLayout::new(len, world, nodes, group_len, bits).map_err(|e| format!("{e:?}"))?;
        for (si, storage) in [ErrorStorage::F32, ErrorStorage::Int8]
            .into_iter()
            .enumerate()
        {
            let d = Dtype::ALL[(k + si) % 3];
            by_dtype!(
                loco_case,
                d,
                b,
                layout,
                storage,
                (k * 10 + si) as u64 + 1000,
                &mut c
            )?;
            if !quick && d != Dtype::F32 {
                loco_case::<B, f32>(b, layout, storage, (k * 10 + si) as u64 + 2000, &mut c)?;
            }
        }
    }
    let efs = [
        (3 * 21, 3, 5, Bits::Four, Bits::Eight),
        (2 * 300, 2, 256, Bits::Eight, Bits::Four),
        (17, 1, 4, Bits::Four, Bits::Four),
    ];
    for (k, (len, shards, group_len, bits, server_bits)) in efs.into_iter().enumerate() {
        let layout =
            ShardLayout::new(len, shards, group_len, bits).map_err(|e| format!("{e:?}"))?;
        for (si, storage) in [ErrorStorage::F32, ErrorStorage::Int8]
            .into_iter()
            .enumerate()
        {
            let d = Dtype::ALL[(k + si) % 3];
            by_dtype!(
                ef_case,
                d,
                b,
                layout,
                server_bits,
                storage,
                (k * 10 + si) as u64 + 3000,
                &mut c
            )?;
        }
    }
    Ok(c)
}
