//! Error feedback around the block quantizers of [`crate::quant`]: the shared engine that
//! LoCo ([`crate::loco`]) builds on, and two-way error feedback in the style of Efficient-Adam
//! (Chen, Shen, Liu, Luo, arXiv 2205.14473): an error memory on every worker and one on the
//! server (or on each shard owner of a two-hop all-reduce).
//!
//! ## Two-way error feedback
//! ```text
//! worker i:  u_i = x_i + e_i ;  q_i = Q_w(u_i) ;  e_i <- u_i - deQ(q_i) ;  send q_i
//! server:    ū = (fold_r deQ(q_r)) / N ;  w = ū + e_s ;  Δ = Q_s(w) ;  e_s <- w - deQ(Δ)
//!            broadcast Δ ;  every worker uses deQ(Δ)
//! ```
//! `Q_w`, `Q_s` are any of the block quantizers (4 or 8 bits, any `group_len`), with the packed
//! layout of [`crate::quant`]. The fold is the rank-order sum of [`crate::quant`]. What the
//! papers confirm is the structure (two error memories, a class of quantizers); their exact
//! quantizer and where the Adam moments live are not confirmed (reference/algorithms.md §7),
//! so this module compresses whatever the caller exchanges (gradients or Adam updates).
//!
//! ## Error storage
//! An error buffer is f32 (one value per element) or 8-bit: the packed layout of
//! [`crate::quant`] with [`Bits::Eight`] and the same `group_len`, one packed chunk per shard,
//! as DeepSpeed persists LoCo's errors. An 8-bit error is requantized per group after every
//! update (its own absmax and scale).
//!
//! ## Order of operations of one compressed group (f32, nearest even, no FMA)
//! ```text
//! 1. e_old = 0 (reset) | e[i] (f32) | deQ8(e)[i] (8-bit)
//! 2. x = base + e_old                 (base: the gradient, or the peers' fold)
//! 3. absmax, scale, inv_scale of the group of x; q = Q(x); x̂ = f32(q) * inv_scale
//! 4. e_new = error_elem(x, x̂, e_old)  (ef_error_elem or loco_error_elem)
//! 5. f32 storage: e[i] = e_new ; 8-bit: absmax8/scale8 of the group's e_new, e = Q8(e_new)
//! ```
//! Before anything is written, every `x` of the call is formed and checked finite.

use crate::error::{Buffer, LayoutError, QuantError};
use crate::quant::{
    absmax, check_len, check_scales, code_group, code_sum, dequantize_group, dequantize_group_add,
    dequantized_at, group_scale, max_magnitude_bits, pack_code_bits, packed_len, quantize_elem,
    read_f32, write_f32, Bits, QuantLayout, MAGIC,
};
use crate::store::Element;

/// How an error buffer is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorStorage {
    /// One f32 per element.
    F32,
    /// Packed 8-bit per group, as DeepSpeed's LoCo (`packed_len(len, group_len, 8)` bytes per shard).
    Int8,
}

/// A caller-owned error buffer.
#[derive(Debug)]
pub enum ErrorBuf<'a> {
    /// f32 storage.
    F32(&'a mut [f32]),
    /// 8-bit packed storage.
    Int8(&'a mut [u8]),
}

impl ErrorBuf<'_> {
    /// The storage kind.
    pub fn storage(&self) -> ErrorStorage {
        match self {
            ErrorBuf::F32(_) => ErrorStorage::F32,
            ErrorBuf::Int8(_) => ErrorStorage::Int8,
        }
    }
    fn len(&self) -> usize {
        match self {
            ErrorBuf::F32(e) => e.len(),
            ErrorBuf::Int8(e) => e.len(),
        }
    }
}

/// Length of an error buffer for `chunks` shards of `shard_len` elements: f32 values, or bytes
/// of 8-bit packed chunks.
pub const fn error_len(
    storage: ErrorStorage,
    shard_len: usize,
    chunks: usize,
    group_len: usize,
) -> usize {
    match storage {
        ErrorStorage::F32 => chunks * shard_len,
        ErrorStorage::Int8 => chunks * packed_len(shard_len, group_len, Bits::Eight),
    }
}

/// Which error update a compressor applies.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ErrorRule {
    /// Classic error feedback: [`ef_error_elem`].
    Plain,
    /// LoCo's moving average of errors: [`loco_error_elem`].
    Ema {
        /// `err_beta` rounded to f32.
        err_beta: f32,
        /// `1 - err_beta` computed in f64 and rounded once to f32.
        one_minus_err_beta: f32,
    },
}

/// Classic error feedback: `e_new = x - x̂` (one f32 subtraction).
/// CUDA mirror: `ef_error_elem` in the LoCo kernels.
#[inline(always)]
pub fn ef_error_elem(x: f32, x_hat: f32) -> f32 {
    x - x_hat
}

/// LoCo's error update, in order: `1. d = x - x̂ ; 2. a = err_beta*e_old ;
/// 3. b = one_minus_err_beta*d ; 4. e_new = a + b` (f32, nearest even, no FMA).
/// CUDA mirror: `loco_error_elem` in the LoCo kernels.
#[inline(always)]
pub fn loco_error_elem(
    x: f32,
    x_hat: f32,
    e_old: f32,
    err_beta: f32,
    one_minus_err_beta: f32,
) -> f32 {
    let d = x - x_hat;
    err_beta * e_old + one_minus_err_beta * d
}

#[inline(always)]
fn error_elem(x: f32, x_hat: f32, e_old: f32, rule: ErrorRule) -> f32 {
    match rule {
        ErrorRule::Plain => ef_error_elem(x, x_hat),
        ErrorRule::Ema {
            err_beta,
            one_minus_err_beta,
        } => loco_error_elem(x, x_hat, e_old, err_beta, one_minus_err_beta),
    }
}

/// One chunk's view of an error buffer.
pub(crate) enum ErrChunk<'a> {
    F32(&'a mut [f32]),
    Int8(&'a mut [u8]),
}

impl ErrChunk<'_> {
    #[inline(always)]
    fn old(&self, layout8: &QuantLayout, reset: bool, i: usize) -> f32 {
        if reset {
            return 0.0;
        }
        match self {
            ErrChunk::F32(e) => e[i],
            ErrChunk::Int8(e) => dequantized_at(e, layout8, i),
        }
    }
}

/// The `c`-th chunk of an error buffer (shards of `layout.len`).
pub(crate) fn err_chunk<'a>(
    err: &'a mut ErrorBuf<'_>,
    layout: &QuantLayout,
    c: usize,
) -> ErrChunk<'a> {
    match err {
        ErrorBuf::F32(e) => ErrChunk::F32(&mut e[c * layout.len..(c + 1) * layout.len]),
        ErrorBuf::Int8(e) => {
            let p = packed_len(layout.len, layout.group_len, Bits::Eight);
            ErrChunk::Int8(&mut e[c * p..(c + 1) * p])
        }
    }
}

/// Check an error buffer's length for `chunks` shards, and its 8-bit scales (unless the step
/// resets it, when it is not read).
pub(crate) fn check_err(
    err: &ErrorBuf<'_>,
    layout: &QuantLayout,
    chunks: usize,
    reset: bool,
) -> Result<(), QuantError> {
    let want = error_len(err.storage(), layout.len, chunks, layout.group_len);
    check_len(Buffer::ErrorFeedback, want, err.len())?;
    if let (ErrorBuf::Int8(e), false) = (err, reset) {
        let l8 = QuantLayout {
            bits: Bits::Eight,
            ..*layout
        };
        check_scales(Buffer::ErrorFeedback, e, &l8, chunks)?;
    }
    Ok(())
}

/// Where a compressor's `base` values come from: [`Base::at`] one element (the generic
/// engine), [`Base::fill_add`] one whole group (the fast engine); both give the same bits.
pub(crate) trait Base {
    /// Base value of element `i` of the chunk.
    fn at(&self, i: usize) -> f32;
    /// Group `g` of `layout`: `xs[j] = base[j] + e_old[j]` (the group's length); returns
    /// the largest magnitude bits of `xs` (see `quant::max_magnitude_bits`).
    fn fill_add(&self, layout: &QuantLayout, g: usize, e_old: &[f32], xs: &mut [f32]) -> u32;
}

/// Base values read (widened) from a gradient shard.
pub(crate) struct SliceBase<'a, G>(pub &'a [G]);

impl<G: Element> Base for SliceBase<'_, G> {
    #[inline(always)]
    fn at(&self, i: usize) -> f32 {
        self.0[i].widen()
    }
    #[inline(always)]
    fn fill_add(&self, layout: &QuantLayout, g: usize, e_old: &[f32], xs: &mut [f32]) -> u32 {
        let (start, _) = layout.group_range(g);
        let mut m = 0u32;
        for ((x, v), e) in xs.iter_mut().zip(&self.0[start..]).zip(e_old) {
            let s = v.widen() + *e;
            *x = s;
            m = m.max(s.to_bits() & 0x7FFF_FFFF);
        }
        m
    }
}

/// Base values folded from received packed chunks: `count` chunks of `layout`, the one of rank
/// `r` at chunk index `first + r*stride`; `s = +0.0; s = s + deQ_r` in rank order, then
/// `s / divisor` when there is a divisor.
pub(crate) struct FoldBase<'a> {
    pub received: &'a [u8],
    pub layout: QuantLayout,
    pub first: usize,
    pub stride: usize,
    pub count: usize,
    pub divisor: Option<f32>,
}

impl FoldBase<'_> {
    #[inline(always)]
    fn chunk(&self, r: usize) -> &[u8] {
        let cl = self.layout.packed_len();
        let at = (self.first + r * self.stride) * cl;
        &self.received[at..at + cl]
    }
}

impl Base for FoldBase<'_> {
    fn at(&self, i: usize) -> f32 {
        let mut s = 0.0f32;
        for r in 0..self.count {
            s = s + dequantized_at(self.chunk(r), &self.layout, i);
        }
        match self.divisor {
            Some(d) => s / d,
            None => s,
        }
    }
    fn fill_add(&self, _: &QuantLayout, g: usize, e_old: &[f32], xs: &mut [f32]) -> u32 {
        xs.fill(0.0);
        let at = self.layout.group_code_offset(g);
        let so = self.layout.scales_offset();
        for r in 0..self.count {
            let c = self.chunk(r);
            dequantize_group_add(&c[at..], self.layout.bits, read_f32(c, so + 4 * g), xs);
        }
        if let Some(d) = self.divisor {
            for x in xs.iter_mut() {
                *x = *x / d;
            }
        }
        for (x, e) in xs.iter_mut().zip(e_old) {
            *x = *x + *e;
        }
        max_magnitude_bits(xs)
    }
}

/// Largest group the fast engine buffers on the stack (`3 * FAST_GROUP` f32 and u32);
/// larger groups take the generic, element-at-a-time engine (the same bits).
pub(crate) const FAST_GROUP: usize = 2048;

/// Stack buffer length for `layout`'s groups: the smallest tier (64, 512, [`FAST_GROUP`])
/// holding a whole group, so small tensors and groups do not pay for zeroing 24 KiB.
fn buffer_tier(layout: &QuantLayout) -> usize {
    match layout.group_len.min(layout.len) {
        0..=64 => 64,
        65..=512 => 512,
        _ => FAST_GROUP,
    }
}

/// Group `g`'s old error `e_old` (step 1 of the module doc): zeros at a reset, the f32 buffer
/// itself, or the 8-bit codes decoded into `buf` (`so8`: the 8-bit chunk's scales offset).
#[inline(always)]
fn e_old_group<'b>(
    layout: &QuantLayout,
    err: &'b ErrChunk<'_>,
    reset: bool,
    g: usize,
    so8: usize,
    buf: &'b mut [f32],
) -> &'b [f32] {
    let (start, end) = layout.group_range(g);
    let buf = &mut buf[..end - start];
    match (err, reset) {
        (_, true) => {
            buf.fill(0.0);
            buf
        }
        (ErrChunk::F32(e), false) => &e[start..end],
        (ErrChunk::Int8(e), false) => {
            // The 8-bit chunk has the same groups: codes at g*group_len, one byte each.
            let codes = &e[g * layout.group_len..];
            dequantize_group(codes, Bits::Eight, read_f32(e, so8 + 4 * g), buf);
            buf
        }
    }
}

/// The 8-bit error chunk's scales offset for `layout`'s groups.
fn scales_offset8(layout: &QuantLayout) -> usize {
    QuantLayout {
        bits: Bits::Eight,
        ..*layout
    }
    .scales_offset()
}

/// Index of the first element whose compensated value `base(i) + e_old(i)` is not finite,
/// screened group by group without branches per element.
pub(crate) fn first_bad<B: Base>(
    layout: &QuantLayout,
    base: &B,
    err: &ErrChunk<'_>,
    reset: bool,
) -> Option<usize> {
    if layout.group_len > FAST_GROUP {
        return first_bad_generic(layout, &|i| base.at(i), err, reset);
    }
    match buffer_tier(layout) {
        64 => first_bad_fast::<B, 64>(layout, base, err, reset),
        512 => first_bad_fast::<B, 512>(layout, base, err, reset),
        _ => first_bad_fast::<B, FAST_GROUP>(layout, base, err, reset),
    }
}

fn first_bad_fast<B: Base, const N: usize>(
    layout: &QuantLayout,
    base: &B,
    err: &ErrChunk<'_>,
    reset: bool,
) -> Option<usize> {
    let so8 = scales_offset8(layout);
    let mut xs = [0.0f32; N];
    let mut eb = [0.0f32; N];
    for g in 0..layout.groups() {
        let (start, end) = layout.group_range(g);
        let xs = &mut xs[..end - start];
        let e_old = e_old_group(layout, err, reset, g, so8, &mut eb);
        if base.fill_add(layout, g, e_old, xs) >= 0x7F80_0000 {
            return xs.iter().position(|x| !x.is_finite()).map(|j| start + j);
        }
    }
    None
}

/// [`first_bad`], one element at a time.
fn first_bad_generic<F: Fn(usize) -> f32>(
    layout: &QuantLayout,
    base: &F,
    err: &ErrChunk<'_>,
    reset: bool,
) -> Option<usize> {
    let l8 = QuantLayout {
        bits: Bits::Eight,
        ..*layout
    };
    (0..layout.len).find(|&i| !(base(i) + err.old(&l8, reset, i)).is_finite())
}

/// The error of a failed [`first_bad`] screen at element `index` of a gradient-based
/// compression: the first non-finite gradient element if there is one (a finite sum implies
/// finite terms, so one screen of `g + e` covers both checks), else the error buffer at `index`.
pub(crate) fn bad_grad_or_error<G: Element>(grad: &[G], index: usize) -> QuantError {
    match crate::quant::first_non_finite(grad) {
        Some(index) => QuantError::NonFinite {
            buffer: Buffer::Grad,
            index,
        },
        None => QuantError::NonFinite {
            buffer: Buffer::ErrorFeedback,
            index,
        },
    }
}

/// Compress one chunk with error feedback (no checks; [`first_bad`] must have passed):
/// writes the packed chunk `out` and updates the error chunk, in the order of the module doc.
/// Groups up to [`FAST_GROUP`] go through the group-buffered engine (monomorphized on the
/// rule), larger ones through [`ef_compress_chunk_generic`].
pub(crate) fn ef_compress_chunk<B: Base>(
    layout: &QuantLayout,
    base: &B,
    err: &mut ErrChunk<'_>,
    reset: bool,
    rule: ErrorRule,
    out: &mut [u8],
) {
    if layout.group_len > FAST_GROUP {
        return ef_compress_chunk_generic(layout, &|i| base.at(i), err, reset, rule, out);
    }
    let (ema, b, omb) = match rule {
        ErrorRule::Plain => (false, 0.0, 0.0),
        ErrorRule::Ema {
            err_beta,
            one_minus_err_beta,
        } => (true, err_beta, one_minus_err_beta),
    };
    let run = match (ema, buffer_tier(layout)) {
        (false, 64) => compress_groups::<B, false, 64>,
        (false, 512) => compress_groups::<B, false, 512>,
        (false, _) => compress_groups::<B, false, FAST_GROUP>,
        (true, 64) => compress_groups::<B, true, 64>,
        (true, 512) => compress_groups::<B, true, 512>,
        (true, _) => compress_groups::<B, true, FAST_GROUP>,
    };
    run(layout, base, err, reset, b, omb, out);
}

/// The fast engine: per group, `x` and `e_old` into stack buffers, the absmax, then one
/// straight-line loop computing codes and `e_new` (in place of `e_old`), then packing and
/// storing. `EMA` selects [`loco_error_elem`] (else [`ef_error_elem`]).
#[allow(clippy::too_many_arguments)]
fn compress_groups<B: Base, const EMA: bool, const N: usize>(
    layout: &QuantLayout,
    base: &B,
    err: &mut ErrChunk<'_>,
    reset: bool,
    err_beta: f32,
    one_minus_err_beta: f32,
    out: &mut [u8],
) {
    let l8 = QuantLayout {
        bits: Bits::Eight,
        ..*layout
    };
    let so8 = l8.scales_offset();
    let bits = layout.bits;
    let (lo, hi) = (bits.q_min() as f32, bits.q_max() as f32);
    let so = layout.scales_offset();
    out[layout.code_bytes()..so].fill(0);
    let mut xs = [0.0f32; N];
    let mut eb = [0.0f32; N];
    let mut codes = [0u32; N];
    for g in 0..layout.groups() {
        let (start, end) = layout.group_range(g);
        let n = end - start;
        let (xs, codes) = (&mut xs[..n], &mut codes[..n]);
        let e_old = e_old_group(layout, err, reset, g, so8, &mut eb);
        let m = base.fill_add(layout, g, e_old, xs);
        let (scale, inv) = group_scale(f32::from_bits(m), bits);
        // The error slice updated in place: e_old on entry, e_new on exit (the f32 buffer
        // itself, zeroed first at a reset; or the decoded 8-bit group in `eb`).
        let e: &mut [f32] = match err {
            ErrChunk::F32(es) => {
                let e = &mut es[start..end];
                if reset {
                    e.fill(0.0);
                }
                e
            }
            ErrChunk::Int8(_) => &mut eb[..n],
        };
        for ((x, e), c) in xs.iter().zip(e.iter_mut()).zip(codes.iter_mut()) {
            let t = code_sum(*x, scale, lo, hi);
            *c = t.to_bits();
            let x_hat = (t - MAGIC) * inv;
            *e = if EMA {
                loco_error_elem(*x, x_hat, *e, err_beta, one_minus_err_beta)
            } else {
                ef_error_elem(*x, x_hat)
            };
        }
        let cb = layout.group_code_offset(g);
        pack_code_bits(codes, bits, &mut out[cb..cb + bits.code_bytes(n)]);
        write_f32(out, so + 4 * g, inv);
        if let ErrChunk::Int8(es) = err {
            let e = &eb[..n];
            let (scale8, inv8) = group_scale(absmax(e), Bits::Eight);
            let c8 = l8.group_code_offset(g);
            code_group(e, scale8, Bits::Eight, &mut es[c8..c8 + n]);
            write_f32(es, so8 + 4 * g, inv8);
        }
    }
    if let ErrChunk::Int8(e) = err {
        e[l8.code_bytes()..so8].fill(0);
    }
}

/// The generic engine: one element at a time through closures, `x` recomputed in each pass
/// (the module doc's order written out plainly). Used for groups larger than [`FAST_GROUP`]
/// and as the fast engine's reference in tests.
pub(crate) fn ef_compress_chunk_generic<F: Fn(usize) -> f32>(
    layout: &QuantLayout,
    base: &F,
    err: &mut ErrChunk<'_>,
    reset: bool,
    rule: ErrorRule,
    out: &mut [u8],
) {
    let l8 = QuantLayout {
        bits: Bits::Eight,
        ..*layout
    };
    let bits = layout.bits;
    let so = layout.scales_offset();
    for b in out[layout.code_bytes()..so].iter_mut() {
        *b = 0;
    }
    for g in 0..layout.groups() {
        let (start, end) = layout.group_range(g);
        // The old 8-bit error of this group: its scale read once, codes by offset (the same
        // bits as `ErrChunk::old`).
        let inv8_old = match err {
            ErrChunk::Int8(e) if !reset => l8.scale(e, g),
            _ => 0.0,
        };
        let c8 = l8.group_code_offset(g);
        let x_at = |err: &ErrChunk<'_>, i: usize| {
            let e_old = if reset {
                0.0
            } else {
                match err {
                    ErrChunk::F32(e) => e[i],
                    ErrChunk::Int8(e) => {
                        crate::quant::dequantize_elem(e[c8 + i - start] as i8, inv8_old)
                    }
                }
            };
            (base(i) + e_old, e_old)
        };
        let mut m = 0u32;
        for i in start..end {
            m = m.max(x_at(&*err, i).0.to_bits() & 0x7FFF_FFFF);
        }
        let (scale, inv) = group_scale(f32::from_bits(m), bits);
        // x, x̂ and e_new of element i (recomputed identically in each pass).
        let update = |err: &ErrChunk<'_>, i: usize| {
            let (x, e_old) = x_at(err, i);
            let q = quantize_elem(x, scale, bits);
            let x_hat = crate::quant::dequantize_elem(q, inv);
            (q, error_elem(x, x_hat, e_old, rule))
        };
        let code_base = layout.group_code_offset(g);
        let put_code = |out: &mut [u8], i: usize, q: i8| {
            let j = i - start;
            match bits {
                Bits::Eight => out[code_base + j] = q as u8,
                Bits::Four => {
                    let nib = (q as u8) & 0x0F;
                    if j % 2 == 0 {
                        out[code_base + j / 2] = nib << 4;
                    } else {
                        out[code_base + j / 2] |= nib;
                    }
                }
            }
        };
        match err {
            ErrChunk::F32(_) => {
                for i in start..end {
                    let (q, e_new) = update(&*err, i);
                    put_code(out, i, q);
                    if let ErrChunk::F32(e) = err {
                        e[i] = e_new;
                    }
                }
            }
            ErrChunk::Int8(_) => {
                let mut m8 = 0u32;
                for i in start..end {
                    m8 = m8.max(update(&*err, i).1.to_bits() & 0x7FFF_FFFF);
                }
                let (scale8, inv8) = group_scale(f32::from_bits(m8), Bits::Eight);
                // Codes are rewritten in place one element at a time: element i's old code is
                // read (with the old scale, still stored) before it is replaced; the new
                // scale is stored after the last element.
                for i in start..end {
                    let (q, e_new) = update(&*err, i);
                    put_code(out, i, q);
                    if let ErrChunk::Int8(e) = err {
                        e[c8 + (i - start)] = quantize_elem(e_new, scale8, Bits::Eight) as u8;
                    }
                }
                if let ErrChunk::Int8(e) = err {
                    let s8 = l8.scales_offset() + 4 * g;
                    write_f32(e, s8, inv8);
                }
            }
        }
        write_f32(out, so + 4 * g, inv);
    }
    if let ErrChunk::Int8(e) = err {
        for b in e[l8.code_bytes()..l8.scales_offset()].iter_mut() {
            *b = 0;
        }
    }
}

/// A tensor of `len` elements cut into `shards` equal shards, each packed on its own with
/// `group_len` and `bits` (groups restart at every shard). Chunk `c` of a packed buffer is
/// shard `c` (one destination rank of a reduce-scatter, or the whole tensor when `shards = 1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShardLayout {
    /// Elements of the whole tensor.
    pub len: usize,
    /// Number of shards (`len % shards == 0`).
    pub shards: usize,
    /// Elements per group.
    pub group_len: usize,
    /// Bit width of the codes.
    pub bits: Bits,
}

impl ShardLayout {
    /// Validate: `shards > 0`, `len % shards == 0`, `group_len > 0`.
    pub fn new(
        len: usize,
        shards: usize,
        group_len: usize,
        bits: Bits,
    ) -> Result<ShardLayout, LayoutError> {
        if shards == 0 || len % shards != 0 {
            return Err(LayoutError::BadBlocks {
                len,
                block_len: shards,
            });
        }
        QuantLayout::new(len / shards, group_len, bits)?;
        Ok(ShardLayout {
            len,
            shards,
            group_len,
            bits,
        })
    }
    /// Elements per shard.
    pub const fn shard_len(&self) -> usize {
        self.len / self.shards
    }
    /// Layout of one shard's packed chunk.
    pub const fn chunk(&self) -> QuantLayout {
        QuantLayout {
            len: self.shard_len(),
            group_len: self.group_len,
            bits: self.bits,
        }
    }
    /// Bytes of one chunk.
    pub const fn chunk_len(&self) -> usize {
        self.chunk().packed_len()
    }
    /// Bytes of the packed buffer (all shards).
    pub const fn packed_len(&self) -> usize {
        self.shards * self.chunk_len()
    }
    /// Length of an error buffer for this layout.
    pub const fn error_len(&self, storage: ErrorStorage) -> usize {
        error_len(storage, self.shard_len(), self.shards, self.group_len)
    }
}

/// Worker side of two-way error feedback: `u = x + e_w`, `q = Q_w(u)`, `e_w <- u - deQ(q)`,
/// shard by shard into `packed` (chunk `c` = shard `c`). Errors before anything is written:
/// wrong lengths, a non-finite `x` or `u`, a bad 8-bit error scale.
pub fn ef_worker_compress<G: Element>(
    layout: &ShardLayout,
    x: &[G],
    mut err: ErrorBuf<'_>,
    packed: &mut [u8],
) -> Result<(), QuantError> {
    let chunk = layout.chunk();
    let s = layout.shard_len();
    check_len(Buffer::Grad, layout.len, x.len())?;
    check_len(Buffer::Packed, layout.packed_len(), packed.len())?;
    check_err(&err, &chunk, layout.shards, false)?;
    for c in 0..layout.shards {
        let base = SliceBase(&x[c * s..(c + 1) * s]);
        let e = err_chunk(&mut err, &chunk, c);
        if let Some(i) = first_bad(&chunk, &base, &e, false) {
            return Err(bad_grad_or_error(x, c * s + i));
        }
    }
    let cl = layout.chunk_len();
    for (c, out) in packed.chunks_mut(cl).enumerate() {
        let base = SliceBase(&x[c * s..(c + 1) * s]);
        let mut e = err_chunk(&mut err, &chunk, c);
        ef_compress_chunk(&chunk, &base, &mut e, false, ErrorRule::Plain, out);
    }
    Ok(())
}

/// Server side of two-way error feedback for one shard: `received` holds `workers` packed
/// chunks of `worker` (in rank order); `ū = fold_r(deQ_r) / workers` (rank-order fold, one
/// f32 division), `w = ū + e_s`, `Δ = Q_s(w)` with `server_bits`, `e_s <- w - deQ(Δ)`; `Δ`
/// goes to `packed` (one chunk of `worker.len` elements with `server_bits`). Errors before
/// anything is written: wrong lengths, bad scales, non-finite `w`.
pub fn ef_server_compress(
    worker: &QuantLayout,
    server_bits: Bits,
    received: &[u8],
    workers: usize,
    mut err: ErrorBuf<'_>,
    packed: &mut [u8],
) -> Result<(), QuantError> {
    let out_layout = QuantLayout {
        bits: server_bits,
        ..*worker
    };
    if workers == 0 {
        return Err(LayoutError::BadBlocks {
            len: worker.len,
            block_len: 0,
        }
        .into());
    }
    check_len(
        Buffer::Packed,
        workers * worker.packed_len(),
        received.len(),
    )?;
    check_len(Buffer::Packed, out_layout.packed_len(), packed.len())?;
    check_err(&err, worker, 1, false)?;
    check_scales(Buffer::Packed, received, worker, workers)?;
    let base = FoldBase {
        received,
        layout: *worker,
        first: 0,
        stride: 1,
        count: workers,
        divisor: Some(workers as f32),
    };
    let mut e = err_chunk(&mut err, worker, 0);
    if let Some(index) = first_bad(worker, &base, &e, false) {
        return Err(QuantError::NonFinite {
            buffer: Buffer::Packed,
            index,
        });
    }
    ef_compress_chunk(&out_layout, &base, &mut e, false, ErrorRule::Plain, packed);
    Ok(())
}

/// Decode the all-gathered server chunks (chunk `c` = shard `c`) into the whole tensor.
pub fn ef_decompress(
    layout: &ShardLayout,
    packed: &[u8],
    out: &mut [f32],
) -> Result<(), QuantError> {
    let chunk = layout.chunk();
    check_len(Buffer::Packed, layout.packed_len(), packed.len())?;
    check_len(Buffer::Grad, layout.len, out.len())?;
    check_scales(Buffer::Packed, packed, &chunk, layout.shards)?;
    let s = layout.shard_len();
    for (c, o) in out.chunks_mut(s.max(1)).enumerate().take(layout.shards) {
        let p = &packed[c * layout.chunk_len()..(c + 1) * layout.chunk_len()];
        crate::quant::dequantize(p, &chunk, o)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! The fast engine against the generic one (the module doc's order, one element at a
    //! time), bit for bit, on every rule, storage, reset and base kind.
    use super::*;
    use crate::quant::quantize;
    extern crate std;
    use std::vec;
    use std::vec::Vec;

    fn values(n: usize, seed: u64) -> Vec<f32> {
        let specials = [
            0.0f32,
            -0.0,
            f32::from_bits(1),
            -f32::MIN_POSITIVE,
            1e-30,
            0.5,
            -1.5,
            2.5,
            3.0e30,
            -7.0,
        ];
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let r = (s >> 33) as u32;
                if r % 5 == 0 {
                    specials[(r / 5) as usize % specials.len()]
                } else {
                    let m = (r % 2001) as f32 / 1000.0 - 1.0;
                    m * [1e-3f32, 1.0, 1e-20, 40.0][(r / 2001) as usize % 4]
                }
            })
            .collect()
    }

    #[test]
    fn fast_engine_equals_generic_engine() {
        let mut cases = 0;
        for (n, gl) in [
            (37usize, 5usize),
            (64, 64),
            (300, 7),
            (129, 128),
            (2049, 2048),
        ] {
            for bits in [Bits::Four, Bits::Eight] {
                for rule in [
                    ErrorRule::Plain,
                    ErrorRule::Ema {
                        err_beta: 0.8,
                        one_minus_err_beta: 0.2,
                    },
                ] {
                    for reset in [false, true] {
                        for int8 in [false, true] {
                            let l = QuantLayout::new(n, gl, bits).unwrap();
                            let l8 = QuantLayout {
                                bits: Bits::Eight,
                                ..l
                            };
                            let g = values(n, n as u64 ^ gl as u64);
                            let e0 = values(n, 99 + gl as u64);
                            // A second base: the fold of three packed chunks, divided by 3
                            // (odd groups) or not (even groups: reduce_hop's form).
                            let mut recv = vec![0u8; 3 * l.packed_len()];
                            for (r, c) in recv.chunks_mut(l.packed_len()).enumerate() {
                                quantize(&values(n, 7 + r as u64), &l, c).unwrap();
                            }
                            let fold = FoldBase {
                                received: &recv,
                                layout: l,
                                first: 0,
                                stride: 1,
                                count: 3,
                                divisor: if gl % 2 == 1 { Some(3.0) } else { None },
                            };
                            let slice = SliceBase(&g[..]);
                            for use_fold in [false, true] {
                                let mut ef = e0.clone();
                                let mut eg = e0.clone();
                                let mut e8f = vec![0u8; l8.packed_len()];
                                quantize(&e0, &l8, &mut e8f).unwrap();
                                let mut e8g = e8f.clone();
                                let mut pf = vec![0xAAu8; l.packed_len()];
                                let mut pg = vec![0x55u8; l.packed_len()];
                                let (mut cf, mut cg) = if int8 {
                                    (ErrChunk::Int8(&mut e8f), ErrChunk::Int8(&mut e8g))
                                } else {
                                    (ErrChunk::F32(&mut ef), ErrChunk::F32(&mut eg))
                                };
                                if use_fold {
                                    assert_eq!(first_bad(&l, &fold, &cf, reset), None);
                                    ef_compress_chunk(&l, &fold, &mut cf, reset, rule, &mut pf);
                                    let at = |i| fold.at(i);
                                    ef_compress_chunk_generic(
                                        &l, &at, &mut cg, reset, rule, &mut pg,
                                    );
                                } else {
                                    assert_eq!(first_bad(&l, &slice, &cf, reset), None);
                                    ef_compress_chunk(&l, &slice, &mut cf, reset, rule, &mut pf);
                                    let at = |i| slice.at(i);
                                    ef_compress_chunk_generic(
                                        &l, &at, &mut cg, reset, rule, &mut pg,
                                    );
                                }
                                assert_eq!(pf, pg, "{n} {gl} {bits:?} {rule:?} {reset} {int8}");
                                let bits_of =
                                    |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                                assert_eq!(bits_of(&ef), bits_of(&eg));
                                assert_eq!(e8f, e8g);
                                cases += 1;
                            }
                        }
                    }
                }
            }
        }
        assert_eq!(cases, 5 * 2 * 2 * 2 * 2 * 2);
    }

    #[test]
    fn screen_finds_the_first_non_finite_sum() {
        let (n, gl) = (100usize, 16usize);
        let l = QuantLayout::new(n, gl, Bits::Four).unwrap();
        let mut g = values(n, 3);
        g[40] = f32::MAX;
        g[70] = f32::INFINITY;
        let mut e = vec![0.0f32; n];
        e[40] = f32::MAX; // g + e overflows at 40
        let c = ErrChunk::F32(&mut e);
        assert_eq!(first_bad(&l, &SliceBase(&g[..]), &c, false), Some(40));
        // A reset reads the error as zero: the first bad sum is the infinite gradient.
        assert_eq!(first_bad(&l, &SliceBase(&g[..]), &c, true), Some(70));
        assert_eq!(
            bad_grad_or_error(&g, 40),
            QuantError::NonFinite {
                buffer: Buffer::Grad,
                index: 70,
            }
        );
        g[70] = 1.0;
        assert_eq!(
            bad_grad_or_error(&g, 40),
            QuantError::NonFinite {
                buffer: Buffer::ErrorFeedback,
                index: 40,
            }
        );
    }
}
