//! Yardstick kernels for `adamant bench`: the memory traffic of a rule with no arithmetic.
//!
//! A rule's speed is judged against the speed of a kernel that reads every buffer the rule
//! reads and writes in place every buffer it writes, with the same element types and the same
//! thread split, measured in the same run. For AdamW that is 4 streams read and 3 written
//! ([`rw4x3`]); for Lion and SGD with momentum 3 read and 2 written ([`rw3x2`]); for Adam-mini
//! on blocks that fit in cache, [`rw3x2`] plus a second read of the gradient from cache
//! ([`rw3x2_reread`]). [`triad`] is STREAM's triad, reported for reference. The kernels run
//! on the widest instruction set the CPU has ([`crate::detected_isa`]), whatever the
//! driver's setting.

use crate::driver::{partition, run_groups, Piece};
use crate::isa::detected_isa;
use crate::kernels;
use crate::mini::blocks_align;
use crate::Driver;
use adamant_core::store::Element;

/// Read `a, g, b, c`, write `a, b, c` in place: each becomes `x ^ (g & mask)` on the raw bits.
/// Pass a mask of 0 hidden from the optimizer (`std::hint::black_box(0)`) to leave the values
/// unchanged. Operates on the common length; split over `driver`'s threads.
pub fn rw4x3<P: Element, G: Element, S: Element>(
    driver: &Driver,
    a: &mut [P],
    g: &[G],
    b: &mut [S],
    c: &mut [S],
    mask: u32,
) {
    let n = a.len().min(g.len()).min(b.len()).min(c.len());
    let isa = detected_isa();
    let piece = (&mut a[..n], &g[..n], &mut b[..n], &mut c[..n]);
    let groups = partition(vec![piece], driver.threads(), driver.grain());
    run_groups(groups, &|group| {
        for (a, g, b, c) in group {
            kernels::rw4x3(isa, a, g, b, c, mask);
        }
    });
}

/// Read `a, g, b`, write `a, b` in place (`x ^ (g & mask)` on the raw bits). See [`rw4x3`].
pub fn rw3x2<P: Element, G: Element, S: Element>(
    driver: &Driver,
    a: &mut [P],
    g: &[G],
    b: &mut [S],
    mask: u32,
) {
    let n = a.len().min(g.len()).min(b.len());
    let isa = detected_isa();
    let piece = (&mut a[..n], &g[..n], &mut b[..n]);
    let groups = partition(vec![piece], driver.threads(), driver.grain());
    run_groups(groups, &|group| {
        for (a, g, b) in group {
            kernels::rw3x2(isa, a, g, b, mask);
        }
    });
}

/// The traffic of Adam-mini over consecutive blocks of `block_len` elements that fit in cache
/// (its per-row and per-head blocks): read `a, g, b`, write `a, b` in place, and read `g` a
/// second time. A block's statistic must be complete before any element of the block is
/// updated, so the driver reads block `j+1`'s gradient from memory for its statistic while it
/// updates block `j` with that block's gradient back from cache; this kernel does the same
/// with no arithmetic (`x ^ (g & mask)` on the raw bits of `a, b`, an integer or of the
/// second read, returned so no load can be left out). Split over `driver`'s threads at the
/// cuts the rule uses (multiples of the block length), so no thread reads across its cut.
/// `a.len()` should be a multiple of `block_len`.
pub fn rw3x2_reread<P: Element, G: Element, S: Element>(
    driver: &Driver,
    a: &mut [P],
    g: &[G],
    b: &mut [S],
    block_len: usize,
    mask: u32,
) -> u32 {
    let n = a.len().min(g.len()).min(b.len());
    let isa = detected_isa();
    let block_len = block_len.max(1);
    let piece = Aligned {
        bufs: (&mut a[..n], &g[..n], &mut b[..n]),
        align: blocks_align(block_len),
    };
    let groups = partition(vec![piece], driver.threads(), driver.grain());
    run_groups(groups, &|group| {
        group.into_iter().fold(0u32, |s, p| {
            let (a, g, b) = p.bufs;
            s | kernels::rw3x2_reread(isa, a, g, b, block_len, mask)
        })
    })
    .into_iter()
    .fold(0u32, |s, x| s | x)
}

/// The traffic of Adam-mini over consecutive blocks of `block_len` elements too large for
/// cache (per-head blocks of a large model, whole tensors): per block, read `g` once for the
/// statistic ([`read1`]'s pattern), then read `a, g, b` and write `a, b` in place
/// ([`rw3x2`]'s pattern). Each thread takes whole blocks, so the split costs one round of
/// threads per call. Returns the wrapping sum of the statistic reads so none can be left out.
/// `a.len()` should be a multiple of `block_len`.
pub fn read1_rw3x2_blocks<P: Element, G: Element, S: Element>(
    driver: &Driver,
    a: &mut [P],
    g: &[G],
    b: &mut [S],
    block_len: usize,
    mask: u32,
) -> u32 {
    let n = a.len().min(g.len()).min(b.len());
    let isa = detected_isa();
    let block_len = block_len.max(1);
    let piece = Aligned {
        bufs: (&mut a[..n], &g[..n], &mut b[..n]),
        align: block_len,
    };
    let groups = partition(vec![piece], driver.threads(), driver.grain());
    run_groups(groups, &|group| {
        let mut sum = 0u32;
        for p in group {
            let (a, g, b) = p.bufs;
            let blocks = a.chunks_mut(block_len).zip(g.chunks(block_len));
            for ((a, g), b) in blocks.zip(b.chunks_mut(block_len)) {
                sum = sum.wrapping_add(kernels::read1(isa, g));
                kernels::rw3x2(isa, a, g, b, mask);
            }
        }
        sum
    })
    .into_iter()
    .fold(0u32, u32::wrapping_add)
}

/// Buffers cut only at multiples of `align` (a rule's block cuts).
struct Aligned<B> {
    bufs: B,
    align: usize,
}

impl<B: Piece> Piece for Aligned<B> {
    fn len(&self) -> usize {
        self.bufs.len()
    }
    fn align(&self) -> usize {
        self.align
    }
    fn split_at(self, mid: usize) -> (Self, Self) {
        let (head, tail) = self.bufs.split_at(mid);
        let align = self.align;
        (Aligned { bufs: head, align }, Aligned { bufs: tail, align })
    }
}

/// STREAM triad `a = b + scalar*c` over the common length, split over `driver`'s threads.
/// STREAM counts 12 bytes per element (it leaves out the write-allocate read of `a`).
pub fn triad(driver: &Driver, a: &mut [f32], b: &[f32], c: &[f32], scalar: f32) {
    let n = a.len().min(b.len()).min(c.len());
    let isa = detected_isa();
    let piece = (&mut a[..n], &b[..n], &c[..n]);
    let groups = partition(vec![piece], driver.threads(), driver.grain());
    run_groups(groups, &|group| {
        for (a, b, c) in group {
            kernels::triad(isa, a, b, c, scalar);
        }
    });
}

/// Read `g` once and write nothing: the traffic of Adam-mini's separate statistics pass over a
/// block too large to stay in cache (the two-pass pattern is [`read1`] then [`rw3x2`]). Sums
/// the raw bits with wrapping integer adds (no floating-point work) and returns the sum so no
/// load can be left out. Split over `driver`'s threads.
pub fn read1<G: Element>(driver: &Driver, g: &[G]) -> u32 {
    let isa = detected_isa();
    let groups = partition(vec![g], driver.threads(), driver.grain());
    run_groups(groups, &|group| {
        group
            .iter()
            .fold(0u32, |s, g| s.wrapping_add(kernels::read1(isa, g)))
    })
    .into_iter()
    .fold(0u32, u32::wrapping_add)
}
