//! The canonical reduction (numeric contract item 6): one summation tree for every backend,
//! thread split and shard layout.
//!
//! A block of `n` values is cut into tiles of [`TILE`] = 4096. In a tile, lane `l`
//! (`0..256`) adds, in increasing `i`, the values at `tile_start + 256*i + l` for `i` in
//! `0..16` that are `< n`, starting from `+0.0`; then, for `s` in `128, 64, ..., 1`,
//! `acc[l] = acc[l] + acc[l + s]` for `l < s`; the tile's result is `acc[0]`. With one tile
//! the block's result is that tile's result; with several, the array of tile results is
//! reduced by the same procedure, recursively. An empty block sums to `+0.0`.
//!
//! Sharded statistics use two phases: [`partials_by`] gives one result per local tile, the
//! caller gathers them in global tile order, and [`combine`] reduces them identically on
//! every rank. Shards cut at tile boundaries reproduce the unsharded bits.
//!
//! Max-abs ([`max_abs`]) is order-free; any NaN makes it the canonical NaN.
//! This module does not scale, clip or divide: callers do that with the result.

use crate::error::{Buffer, LayoutError};
use crate::store::{canonicalize_f32, Element};

/// Values per tile.
pub const TILE: usize = 4096;
/// Lanes per tile (one GPU thread block of 256 threads).
pub const LANES: usize = 256;
/// Values each lane adds (`TILE / LANES`).
pub const PER_LANE: usize = TILE / LANES;

/// Number of tiles (and so of partials) for `n` values: `ceil(n / 4096)`.
pub const fn tile_count(n: usize) -> usize {
    n.div_ceil(TILE)
}

/// The in-tile tree over 256 lane accumulators: `s = 128, 64, ..., 1`,
/// `acc[l] = acc[l] + acc[l + s]` for `l < s`; returns `acc[0]`.
#[inline]
pub fn lane_tree(mut acc: [f32; LANES]) -> f32 {
    let mut s = LANES / 2;
    while s >= 1 {
        for l in 0..s {
            acc[l] = acc[l] + acc[l + s];
        }
        s /= 2;
    }
    acc[0]
}

/// One tile (`x.len() <= 4096`): the sum of `f(x[j])` in the canonical order.
#[inline]
pub fn tile_by<G: Element, F: Fn(f32) -> f32>(x: &[G], f: &F) -> f32 {
    let mut acc = [0.0f32; LANES];
    for row in x.chunks(LANES) {
        for (a, v) in acc.iter_mut().zip(row) {
            *a = *a + f(v.widen());
        }
    }
    // A NaN sum is stored canonical, as the GPU's f32 adds produce it.
    canonicalize_f32(lane_tree(acc))
}

/// Levels of the tree for `n` values: 1 up to 4096 values, 2 up to 4096^2, and so on.
fn levels(mut n: usize) -> u32 {
    let mut l = 1;
    while n > TILE {
        n = n.div_ceil(TILE);
        l += 1;
    }
    l
}

/// Values covered by one node of level `level` (4096^level), saturating.
fn span(level: u32) -> usize {
    let mut s: usize = 1;
    for _ in 0..level {
        s = s.saturating_mul(TILE);
    }
    s
}

fn node<G: Element, F: Fn(f32) -> f32>(x: &[G], level: u32, f: &F) -> f32 {
    if level <= 1 {
        return tile_by(x, f);
    }
    let child = span(level - 1);
    let mut results = [0.0f32; TILE];
    let mut k = 0;
    for part in x.chunks(child) {
        results[k] = node(part, level - 1, f);
        k += 1;
    }
    tile_by(&results[..k], &|v| v)
}

/// The canonical sum of `f(x[j])` over a whole block (recursion depth `log_4096(n)`, 16 KiB of
/// stack per level above the first).
pub fn sum_by<G: Element, F: Fn(f32) -> f32>(x: &[G], f: F) -> f32 {
    node(x, levels(x.len()), &f)
}

/// Canonical sum of the values.
pub fn sum<G: Element>(x: &[G]) -> f32 {
    sum_by(x, |v| v)
}

/// Canonical sum of squares (`v*v` rounded, then added).
pub fn sum_sq<G: Element>(x: &[G]) -> f32 {
    sum_by(x, |v| v * v)
}

/// Phase one: the result of every tile of `x`, in order, into `out`
/// (`out.len() == tile_count(x.len())`, checked before anything is written).
pub fn partials_by<G: Element, F: Fn(f32) -> f32>(
    x: &[G],
    f: F,
    out: &mut [f32],
) -> Result<(), LayoutError> {
    let want = tile_count(x.len());
    if out.len() != want {
        return Err(LayoutError::LenMismatch {
            buffer: Buffer::Partials,
            expected: want,
            got: out.len(),
        });
    }
    for (o, t) in out.iter_mut().zip(x.chunks(TILE)) {
        *o = tile_by(t, &f);
    }
    Ok(())
}

/// Phase two: reduce tile results gathered in global tile order. No partials give `+0.0`,
/// one gives itself, several are reduced by the tile procedure, recursively.
pub fn combine(partials: &[f32]) -> f32 {
    match partials.len() {
        0 => 0.0,
        1 => partials[0],
        n => node(partials, levels(n), &|v| v),
    }
}

/// `max |x_j|` over the block; `+0.0` when empty; the canonical NaN if any value is NaN.
/// Order-free, so every split gives the same bits.
pub fn max_abs<G: Element>(x: &[G]) -> f32 {
    let mut m = 0u32;
    let mut nan = false;
    for v in x {
        let b = v.widen().to_bits() & 0x7FFF_FFFF;
        nan |= b > 0x7F80_0000;
        // Non-negative floats order like their bit patterns.
        m = m.max(b);
    }
    if nan {
        canonicalize_f32(f32::NAN)
    } else {
        f32::from_bits(m)
    }
}

/// Combine per-shard max-abs results (any order): NaN if any is NaN, else the largest.
pub fn combine_max_abs(parts: &[f32]) -> f32 {
    max_abs(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The contract's procedure written out independently (allocation allowed in tests).
    fn spec_sum(x: &[f32]) -> f32 {
        fn tile(t: &[f32]) -> f32 {
            let mut acc = vec![0.0f32; 256];
            for i in 0..16 {
                for (l, a) in acc.iter_mut().enumerate() {
                    if let Some(v) = t.get(256 * i + l) {
                        *a += *v;
                    }
                }
            }
            for s in [128, 64, 32, 16, 8, 4, 2, 1] {
                for l in 0..s {
                    acc[l] = acc[l] + acc[l + s];
                }
            }
            acc[0]
        }
        let mut vals: Vec<f32> = x.to_vec();
        if vals.is_empty() {
            return 0.0;
        }
        loop {
            let tiles: Vec<f32> = vals.chunks(4096).map(tile).collect();
            if tiles.len() == 1 {
                return tiles[0];
            }
            vals = tiles;
        }
    }

    fn lcg(seed: &mut u64) -> u32 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (*seed >> 32) as u32
    }

    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                let r = lcg(&mut s);
                // Wide exponent range so rounding depends on order.
                let e = (r % 40) as i32 - 20;
                let m = (lcg(&mut s) as f32 / u32::MAX as f32) - 0.5;
                m * (2.0f32).powi(e)
            })
            .collect()
    }

    #[test]
    fn conformance_sum_matches_the_written_procedure() {
        for n in [0usize, 1, 3, 255, 256, 257, 4095, 4096, 4097, 8192, 100_003] {
            let x = values(n, n as u64 + 1);
            assert_eq!(sum(&x).to_bits(), spec_sum(&x).to_bits(), "n = {n}");
        }
    }

    #[test]
    fn conformance_other_orders_give_other_bits() {
        let x = values(100_003, 7);
        let ours = sum(&x);
        let sequential: f32 = x.iter().fold(0.0, |a, v| a + v);
        let reversed: f32 = x.iter().rev().fold(0.0, |a, v| a + v);
        let mut pairwise = x.clone();
        while pairwise.len() > 1 {
            pairwise = pairwise
                .chunks(2)
                .map(|c| if c.len() == 2 { c[0] + c[1] } else { c[0] })
                .collect();
        }
        assert_ne!(ours.to_bits(), sequential.to_bits());
        assert_ne!(ours.to_bits(), reversed.to_bits());
        assert_ne!(ours.to_bits(), pairwise[0].to_bits());
        // Swapping the tree's operands order within a tile: lanes added top-down.
        let t = &x[..4096];
        let mut acc = [0.0f32; 256];
        for (j, v) in t.iter().enumerate() {
            acc[j % 256] += v;
        }
        let mut s = 1;
        while s < 256 {
            for l in (0..256).step_by(2 * s) {
                acc[l] = acc[l] + acc[l + s];
            }
            s *= 2;
        }
        assert_ne!(tile_by(t, &|v| v).to_bits(), acc[0].to_bits());
    }

    #[test]
    fn spec_tile_aligned_shards_reproduce_unsharded_bits() {
        let x = values(3 * 4096 + 17, 11);
        let whole = sum_sq(&x);
        for cut in [4096usize, 8192, 12288] {
            let (a, b) = x.split_at(cut);
            let mut pa = vec![0.0; tile_count(a.len())];
            let mut pb = vec![0.0; tile_count(b.len())];
            partials_by(a, |v| v * v, &mut pa).unwrap();
            partials_by(b, |v| v * v, &mut pb).unwrap();
            pa.extend(pb);
            assert_eq!(combine(&pa).to_bits(), whole.to_bits(), "cut {cut}");
        }
    }

    #[test]
    fn spec_partials_check_length_before_writing() {
        let x = vec![1.0f32; 5000];
        let mut out = [7.0f32; 1];
        assert!(partials_by(&x, |v| v, &mut out).is_err());
        assert_eq!(out, [7.0]);
    }

    #[test]
    fn spec_empty_and_signed_zero() {
        assert_eq!(sum::<f32>(&[]).to_bits(), 0);
        assert_eq!(combine(&[]).to_bits(), 0);
        assert_eq!(combine(&[-0.0]).to_bits(), (-0.0f32).to_bits());
        // Lanes start at +0.0: a block of -0.0 sums to +0.0.
        assert_eq!(sum(&[-0.0f32, -0.0]).to_bits(), 0);
    }

    #[test]
    fn spec_nan_sums_are_canonical() {
        let x = [1.0f32, f32::from_bits(0xFFC0_1234), 2.0];
        assert_eq!(sum(&x).to_bits(), 0x7FFF_FFFF);
        let mut out = [0.0f32; 1];
        partials_by(&x, |v| v * v, &mut out).unwrap();
        assert_eq!(out[0].to_bits(), 0x7FFF_FFFF);
        let y = [f32::INFINITY, f32::NEG_INFINITY];
        assert_eq!(sum(&y).to_bits(), 0x7FFF_FFFF);
    }

    #[test]
    fn spec_max_abs_nan_and_zero() {
        assert_eq!(max_abs::<f32>(&[]).to_bits(), 0);
        assert_eq!(max_abs(&[-0.0f32]).to_bits(), 0);
        assert_eq!(max_abs(&[1.0f32, -3.0, 2.0]), 3.0);
        assert_eq!(max_abs(&[1.0f32, f32::NEG_INFINITY]), f32::INFINITY);
        assert_eq!(
            max_abs(&[1.0f32, f32::from_bits(0xFFC0_0001), 5.0]).to_bits(),
            0x7FFF_FFFF
        );
    }
}
