//! Core's slice kernels compiled once per instruction set.
//!
//! Core's `*_slice` functions and `all_finite` are `#[inline(always)]`, so a wrapper with
//! `#[target_feature]` gets its own copy of the loop compiled for that instruction set. The
//! operations are the same IEEE `+ - * / sqrt` in the same order in every copy (Rust never
//! fuses multiply-add, and `target_feature` does not change that), so the copies differ only
//! in vector width.

use crate::isa::{has_avx2, has_avx512, Isa};
use crate::HwSqrt;
use adamant_core::reduce::{lane_tree, LANES, TILE};
use adamant_core::rules::adam::{adam_slice_hooked, AdamScalars};
use adamant_core::rules::adam_mini::{
    adam_mini_slice, adam_mini_slice_hooked, block_scale, block_second_moment, AdamMiniScalars,
};
use adamant_core::rules::lion::{lion_slice_hooked, LionScalars};
use adamant_core::rules::sgd::{sgd_slice_hooked, SgdScalars};
use adamant_core::rules::{ChunkHook, NoHook};
use adamant_core::step::GradPrep;
use adamant_core::store::{canonicalize_f32, Element, StateElement};
use adamant_core::Plan;

/// Define `pub(crate) fn $name<..>(isa: Isa, args..)` that runs `$body` compiled for `isa`
/// (re-checking the CPU, so a wrong `isa` can only make it fall back to the baseline).
macro_rules! per_isa {
    (
        $(#[$doc:meta])*
        fn $name:ident<$($g:ident: $b:ident),*>($($a:ident: $t:ty),*) $(-> $r:ty)? $body:block
    ) => {
        $(#[$doc])*
        #[inline]
        pub(crate) fn $name<$($g: $b),*>(isa: Isa, $($a: $t),*) $(-> $r)? {
            #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
            #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
            unsafe fn avx512<$($g: $b),*>($($a: $t),*) $(-> $r)? $body

            #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
            #[target_feature(enable = "avx2")]
            unsafe fn avx2<$($g: $b),*>($($a: $t),*) $(-> $r)? $body

            fn baseline<$($g: $b),*>($($a: $t),*) $(-> $r)? $body

            #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
            {
                if isa == Isa::Avx512 && has_avx512() {
                    // SAFETY: `has_avx512` just confirmed that the CPU supports every feature
                    // `avx512` is compiled with (avx512f, bw, vl, dq).
                    return unsafe { avx512::<$($g),*>($($a),*) };
                }
                if isa >= Isa::Avx2 && has_avx2() {
                    // SAFETY: `has_avx2` just confirmed that the CPU supports AVX2, the only
                    // feature `avx2` is compiled with.
                    return unsafe { avx2::<$($g),*>($($a),*) };
                }
            }
            let _ = (has_avx2, has_avx512, isa);
            baseline::<$($g),*>($($a),*)
        }
    };
}

/// How far ahead of the chunk being computed its lines are requested, in bytes of the state
/// stream: about 2 KiB per stream is near enough that the lines are still in L1 when used and
/// far enough to cover the memory latency (16 KiB per stream measured slower for f32).
/// Why prefetch at all: with the update's arithmetic between the loads, the out-of-order
/// window no longer covers the memory latency and the hardware prefetcher alone leaves the
/// loop waiting on loads (AdamW f32 at 1 thread: 0.88 of its ceiling without, 0.97-1.0 with).
const AHEAD_BYTES: usize = 2048;
/// Elements per chunk for Adam's and Adam-mini's loops: small chunks spread the prefetches
/// between the arithmetic (a burst of them stalls once the fill buffers are full).
const CHUNK_ADAM: usize = 64;
/// Elements per chunk for SGD and Lion, whose lighter arithmetic makes the per-chunk overhead
/// count more (measured best at 512 bytes of f32 against 256 and 1024).
const CHUNK_LIGHT: usize = 128;

/// One buffer a [`ChunkHook`] prefetches from: its address and length in bytes.
#[derive(Clone, Copy)]
struct Stream {
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    base: *const i8,
    bytes: usize,
    elem: usize,
    /// Elements between a chunk and the lines requested for it.
    ahead: usize,
}

impl Stream {
    /// `s` (whose element 0 is the hooked loop's element 0), requested `ahead` elements on.
    fn of<T>(s: &[T], ahead: usize) -> Stream {
        Stream {
            base: s.as_ptr().cast::<i8>(),
            bytes: core::mem::size_of_val(s),
            elem: size_of::<T>(),
            ahead,
        }
    }
}

/// Before each chunk of `CHUNK` elements, request the lines of each of the `K` streams its
/// own `ahead` elements further on (nothing past a buffer's end).
struct Ahead<const CHUNK: usize, const K: usize> {
    streams: [Stream; K],
}

impl<const CHUNK: usize, const K: usize> ChunkHook for Ahead<CHUNK, K> {
    const CHUNK: usize = CHUNK;
    #[inline(always)]
    fn before(&mut self, start: usize) {
        for s in &self.streams {
            let lo = ((start + s.ahead) * s.elem).min(s.bytes);
            let hi = ((start + s.ahead + CHUNK) * s.elem).min(s.bytes);
            let mut off = lo;
            while off < hi {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: `off < hi <= s.bytes`, so the address lies inside the buffer `s`
                // was made from, which outlives the hooked loop; a prefetch is no memory
                // access (it only hints the cache, never faults, reads into a register or
                // writes), so it cannot conflict with the loop's `&mut` borrows.
                unsafe {
                    core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(
                        s.base.add(off),
                    )
                };
                off += 64;
            }
        }
    }
}

per_isa! {
    /// Core's `adam_slice` with the hardware square root, prefetching ahead ([`Ahead`]).
    fn adam<P: Element, G: Element, S: StateElement>(
        param: &mut [P],
        grad: &[G],
        exp_avg: &mut [S],
        exp_avg_sq: &mut [S],
        plan: &Plan<AdamScalars>
    ) {
        let ahead = AHEAD_BYTES / size_of::<S>();
        let mut hook = Ahead::<CHUNK_ADAM, 4> {
            streams: [
                Stream::of(param, ahead),
                Stream::of(grad, ahead),
                Stream::of(exp_avg, ahead),
                Stream::of(exp_avg_sq, ahead),
            ],
        };
        adam_slice_hooked::<P, G, S, HwSqrt, _>(param, grad, exp_avg, exp_avg_sq, plan, &mut hook)
    }
}

per_isa! {
    /// Core's `sgd_slice`, prefetching ahead ([`Ahead`]).
    fn sgd<P: Element, G: Element, S: StateElement>(
        param: &mut [P],
        grad: &[G],
        momentum_buffer: &mut [S],
        plan: &Plan<SgdScalars>
    ) {
        let ahead = AHEAD_BYTES / size_of::<S>();
        let mut hook = Ahead::<CHUNK_LIGHT, 3> {
            streams: [
                Stream::of(param, ahead),
                Stream::of(grad, ahead),
                Stream::of(momentum_buffer, ahead),
            ],
        };
        sgd_slice_hooked::<P, G, S, _>(param, grad, momentum_buffer, plan, &mut hook)
    }
}

per_isa! {
    /// Core's `lion_slice`, prefetching ahead ([`Ahead`]).
    fn lion<P: Element, G: Element, S: StateElement>(
        param: &mut [P],
        grad: &[G],
        exp_avg: &mut [S],
        plan: &Plan<LionScalars>
    ) {
        let ahead = AHEAD_BYTES / size_of::<S>();
        let mut hook = Ahead::<CHUNK_LIGHT, 3> {
            streams: [
                Stream::of(param, ahead),
                Stream::of(grad, ahead),
                Stream::of(exp_avg, ahead),
            ],
        };
        lion_slice_hooked::<P, G, S, _>(param, grad, exp_avg, plan, &mut hook)
    }
}

per_isa! {
    /// Core's `adam_mini_slice`: one block's element pass with its scale, prefetching ahead
    /// ([`Ahead`]) like Lion's, whose streams it has.
    fn adam_mini<P: Element, G: Element, S: StateElement>(
        param: &mut [P],
        grad: &[G],
        exp_avg: &mut [S],
        block_scale: f32,
        plan: &Plan<AdamMiniScalars>
    ) {
        let ahead = AHEAD_BYTES / size_of::<S>();
        let mut hook = Ahead::<CHUNK_ADAM, 3> {
            streams: [
                Stream::of(param, ahead),
                Stream::of(grad, ahead),
                Stream::of(exp_avg, ahead),
            ],
        };
        adam_mini_slice_hooked::<P, G, S, _>(param, grad, exp_avg, block_scale, plan, &mut hook)
    }
}

per_isa! {
    /// Consecutive Adam-mini blocks of `block_len <= BLOCK_SUM_MAX` elements (`exp_avg_sq`
    /// holds one entry per block), software-pipelined so that every memory stream moves at
    /// once: while block `j` is updated (core's `adam_mini_slice` with its scale, its gradient
    /// already in cache), the canonical sum of block `j+1`'s prepared squares is accumulated
    /// from memory, row by row of 256 lanes; then core's `block_update` gives block `j+1`'s
    /// scale. Each block's sum has core's canonical tile order, so the bits are those of
    /// core's `apply_tensor`. `plan.sr` names `param[0]`.
    fn adam_mini_blocks<P: Element, G: Element, S: StateElement>(
        param: &mut [P],
        grad: &[G],
        exp_avg: &mut [S],
        exp_avg_sq: &mut [S],
        block_len: usize,
        plan: &Plan<AdamMiniScalars>
    ) {
        if plan.prep.is_identity() {
            blocks_loop::<P, G, S, false>(param, grad, exp_avg, exp_avg_sq, block_len, plan)
        } else {
            blocks_loop::<P, G, S, true>(param, grad, exp_avg, exp_avg_sq, block_len, plan)
        }
    }
}

#[inline(always)]
fn blocks_loop<P: Element, G: Element, S: StateElement, const PREP: bool>(
    param: &mut [P],
    grad: &[G],
    exp_avg: &mut [S],
    exp_avg_sq: &mut [S],
    block_len: usize,
    plan: &Plan<AdamMiniScalars>,
) {
    let l = block_len;
    let nb = exp_avg_sq.len();
    if nb == 0 || l == 0 {
        return;
    }
    let prep = plan.prep;
    let at = |offset: usize| Plan {
        sr: plan.sr.map(|k| k.offset_by(offset)),
        ..*plan
    };
    let mut sum = block_sum_sq(&grad[..l], prep);
    let mut partials = [0.0f32; BLOCK_SUM_MAX / TILE];
    // Rows of the element pass request the lines `ahead` elements on (in this block or the
    // next) through the same [`Ahead`] hook as the other rules.
    let ahead = AHEAD_BYTES / size_of::<S>();
    for (j, v) in exp_avg_sq.iter_mut().enumerate() {
        let block_scale = block_update_hw(v, sum, l as u64, &plan.scalars);
        let start = j * l;
        if j + 1 == nb {
            let cur = start..start + l;
            adam_mini_slice::<P, G, S>(
                &mut param[cur.clone()],
                &grad[cur.clone()],
                &mut exp_avg[cur],
                block_scale,
                &at(start),
            );
            break;
        }
        let mut acc = [0.0f32; LANES];
        let mut tiles = 0;
        let mut a = start;
        let mut r = 0;
        while a < start + l {
            let b = (a + LANES).min(start + l);
            let mut hook = Ahead::<CHUNK_ADAM, 4> {
                streams: [
                    Stream::of(&param[a..], ahead),
                    Stream::of(&exp_avg[a..], ahead),
                    Stream::of(&grad[a + l..], ahead),
                    // This block's gradient comes back from L2 (it was summed a block ago).
                    Stream::of(&grad[a..], CHUNK_ADAM),
                ],
            };
            adam_mini_slice_hooked::<P, G, S, _>(
                &mut param[a..b],
                &grad[a..b],
                &mut exp_avg[a..b],
                block_scale,
                &at(a),
                &mut hook,
            );
            add_row_sq::<G, PREP>(&mut acc, &grad[a + l..b + l], prep);
            if r % (TILE / LANES) == TILE / LANES - 1 || b == start + l {
                partials[tiles] = canonicalize_f32(lane_tree(acc));
                acc = [0.0f32; LANES];
                tiles += 1;
            }
            a = b;
            r += 1;
        }
        sum = adamant_core::reduce::combine(&partials[..tiles]);
    }
}

/// Core's `block_update` with the hardware square root (the same bits as its `LibmSqrt`).
#[inline(always)]
fn block_update_hw<S: StateElement>(
    exp_avg_sq: &mut S,
    sum_sq: f32,
    count: u64,
    k: &AdamMiniScalars,
) -> f32 {
    let v = block_second_moment(exp_avg_sq.widen(), sum_sq, count as f32, k);
    *exp_avg_sq = S::narrow(v);
    block_scale::<HwSqrt>(exp_avg_sq.widen(), k)
}

/// Lane `l` of `acc` adds the prepared square of `row[l]` (a row of at most 256 values).
#[inline(always)]
fn add_row_sq<G: Element, const PREP: bool>(acc: &mut [f32; LANES], row: &[G], prep: GradPrep) {
    if let Ok(row) = <&[G; LANES]>::try_from(row) {
        for (a, v) in acc.iter_mut().zip(row) {
            let g = if PREP {
                prep.apply(v.widen())
            } else {
                v.widen()
            };
            *a += g * g;
        }
    } else {
        for (a, v) in acc.iter_mut().zip(row) {
            let g = if PREP {
                prep.apply(v.widen())
            } else {
                v.widen()
            };
            *a += g * g;
        }
    }
}

per_isa! {
    /// Per-tile partials of the prepared squares `((g/grad_scale)*clip_coef)^2` of `grad`
    /// into `out` (one per 4096 elements; the caller sizes `out`), core's canonical tile
    /// order.
    fn sq_partials<G: Element>(grad: &[G], prep: GradPrep, out: &mut [f32]) {
        let ahead = AHEAD_BYTES / size_of::<G>();
        let mut hook = Ahead::<LANES, 1> {
            streams: [Stream::of(grad, ahead)],
        };
        if prep.is_identity() {
            for (k, (o, t)) in out.iter_mut().zip(grad.chunks(TILE)).enumerate() {
                *o = tile_sq::<G, false>(t, prep, &mut hook, k * TILE);
            }
        } else {
            for (k, (o, t)) in out.iter_mut().zip(grad.chunks(TILE)).enumerate() {
                *o = tile_sq::<G, true>(t, prep, &mut hook, k * TILE);
            }
        }
    }
}

/// Largest block [`block_sum_sq`] takes: 16 tiles (256 KiB of f32 gradient, which stays in
/// L2 between the statistic and the update; its partials live on the stack).
pub(crate) const BLOCK_SUM_MAX: usize = 16 * TILE;

/// The canonical sum of prepared squares of one block of at most [`BLOCK_SUM_MAX`] elements:
/// its tiles' results combined as core's `reduce::combine` does (equal to core's
/// `grad_sq_sum` of the block).
#[inline(always)]
fn block_sum_sq<G: Element>(grad: &[G], prep: GradPrep) -> f32 {
    if grad.len() <= TILE {
        return if prep.is_identity() {
            tile_sq::<G, false>(grad, prep, &mut NoHook, 0)
        } else {
            tile_sq::<G, true>(grad, prep, &mut NoHook, 0)
        };
    }
    let mut partials = [0.0f32; BLOCK_SUM_MAX / TILE];
    let k = adamant_core::reduce::tile_count(grad.len()).min(partials.len());
    for (o, t) in partials[..k].iter_mut().zip(grad.chunks(TILE)) {
        *o = if prep.is_identity() {
            tile_sq::<G, false>(t, prep, &mut NoHook, 0)
        } else {
            tile_sq::<G, true>(t, prep, &mut NoHook, 0)
        };
    }
    adamant_core::reduce::combine(&partials[..k])
}

/// One tile of the canonical reduction of `g*g` (`g` prepared when `PREP`): lane `l` adds the
/// squares of elements `l, l+256, ...` in order from `+0.0`, then core's `lane_tree`; a NaN
/// result is stored canonical. Whole rows of 256 go through fixed-size arrays so the 256
/// independent lane sums vectorize. Without `PREP` the preparation is the identity, which
/// changes no bit of a non-NaN value (and any NaN sum becomes the canonical NaN).
/// `hook.before(base + r*256)` runs before whole row `r` (the statistics pass prefetches
/// through it; [`NoHook`] where the tile is already in cache).
#[inline(always)]
fn tile_sq<G: Element, const PREP: bool>(
    x: &[G],
    prep: GradPrep,
    hook: &mut impl ChunkHook,
    base: usize,
) -> f32 {
    let mut acc = [0.0f32; LANES];
    let mut rows = x.chunks_exact(LANES);
    for (r, row) in (&mut rows).enumerate() {
        hook.before(base + r * LANES);
        let row: &[G; LANES] = row.try_into().expect("chunks_exact gives whole rows");
        for (a, v) in acc.iter_mut().zip(row) {
            let g = if PREP {
                prep.apply(v.widen())
            } else {
                v.widen()
            };
            *a += g * g;
        }
    }
    for (a, v) in acc.iter_mut().zip(rows.remainder()) {
        let g = if PREP {
            prep.apply(v.widen())
        } else {
            v.widen()
        };
        *a += g * g;
    }
    canonicalize_f32(lane_tree(acc))
}

per_isa! {
    /// Core's `all_finite`.
    fn all_finite<G: Element>(grad: &[G]) -> bool {
        adamant_core::step::all_finite(grad)
    }
}

per_isa! {
    /// Ceiling kernel with Adam's traffic: read four streams, write three in place. Each written
    /// element becomes `x ^ (g & mask)` on the raw bits (mask 0 leaves every value unchanged;
    /// the caller hides the 0 from the compiler).
    fn rw4x3<P: Element, G: Element, S: Element>(
        a: &mut [P],
        g: &[G],
        b: &mut [S],
        c: &mut [S],
        mask: u32
    ) {
        let it = a.iter_mut().zip(g).zip(b.iter_mut().zip(c.iter_mut()));
        for ((a, g), (b, c)) in it {
            let x = g.to_bits_u32() & mask;
            *a = P::from_bits_u32(a.to_bits_u32() ^ x);
            *b = S::from_bits_u32(b.to_bits_u32() ^ x);
            *c = S::from_bits_u32(c.to_bits_u32() ^ x);
        }
    }
}

per_isa! {
    /// Ceiling kernel with Lion's and SGD-momentum's traffic: read three streams, write two in
    /// place (`x ^ (g & mask)` on the raw bits).
    fn rw3x2<P: Element, G: Element, S: Element>(a: &mut [P], g: &[G], b: &mut [S], mask: u32) {
        for ((a, g), b) in a.iter_mut().zip(g).zip(b.iter_mut()) {
            let x = g.to_bits_u32() & mask;
            *a = P::from_bits_u32(a.to_bits_u32() ^ x);
            *b = S::from_bits_u32(b.to_bits_u32() ^ x);
        }
    }
}

per_isa! {
    /// Ceiling kernel of Adam-mini's pipelined pass over blocks of `block_len` ([`adam_mini_blocks`]):
    /// [`rw3x2`]'s traffic plus the gradient's second read. Block 0's gradient is or-ed into
    /// 256 lanes alone; then, row by row of 256, row `r` of block `j` is xor-ed in place with
    /// `g & mask` (the update, its gradient back from cache) and row `r` of block `j+1` is or-ed
    /// into the lanes (the next statistic, from memory). No floating-point work; returns the or
    /// of the lanes so no read can be left out.
    fn rw3x2_reread<P: Element, G: Element, S: Element>(
        a: &mut [P],
        g: &[G],
        b: &mut [S],
        block_len: usize,
        mask: u32
    ) -> u32 {
        let n = a.len().min(g.len()).min(b.len());
        let l = block_len.max(1);
        let mut acc = [0u32; LANES];
        for row in g[..l.min(n)].chunks(LANES) {
            or_row(&mut acc, row);
        }
        let mut start = 0;
        while start < n {
            let end = (start + l).min(n);
            let mut i = start;
            while i < end {
                let e = (i + LANES).min(end);
                for ((a, g), b) in a[i..e].iter_mut().zip(&g[i..e]).zip(b[i..e].iter_mut()) {
                    let x = g.to_bits_u32() & mask;
                    *a = P::from_bits_u32(a.to_bits_u32() ^ x);
                    *b = S::from_bits_u32(b.to_bits_u32() ^ x);
                }
                if end < n {
                    or_row(&mut acc, &g[(i + l).min(n)..(e + l).min(n)]);
                }
                i = e;
            }
            start = end;
        }
        acc.iter().fold(0u32, |s, a| s | *a)
    }
}

/// Lane `k` of `acc` ors in the bits of `row[k]` (a row of at most 256 values).
#[inline(always)]
fn or_row<G: Element>(acc: &mut [u32; LANES], row: &[G]) {
    if let Ok(row) = <&[G; LANES]>::try_from(row) {
        for (x, v) in acc.iter_mut().zip(row) {
            *x |= v.to_bits_u32();
        }
    } else {
        for (x, v) in acc.iter_mut().zip(row) {
            *x |= v.to_bits_u32();
        }
    }
}

per_isa! {
    /// Ceiling kernel of Adam-mini's statistics pass: read one stream (the gradient), sum its
    /// raw bits with wrapping integer adds in 256 lanes (no floating-point work, nothing
    /// written). Returns the sum so the reads cannot be left out.
    fn read1<G: Element>(g: &[G]) -> u32 {
        let mut acc = [0u32; LANES];
        for row in g.chunks(LANES) {
            for (a, v) in acc.iter_mut().zip(row) {
                *a = a.wrapping_add(v.to_bits_u32());
            }
        }
        acc.iter().fold(0u32, |s, a| s.wrapping_add(*a))
    }
}

per_isa! {
    /// STREAM triad: `a = b + scalar*c`.
    fn triad<>(a: &mut [f32], b: &[f32], c: &[f32], scalar: f32) {
        for ((a, b), c) in a.iter_mut().zip(b).zip(c) {
            *a = *b + scalar * *c;
        }
    }
}
