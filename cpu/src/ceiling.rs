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

use crate::driver::{partition, run_groups, Piece, TriplePiece};
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
    let piece = TriplePiece {
        a: &mut a[..n],
        g: &g[..n],
        b: &mut b[..n],
        c: &mut c[..n],
    };
    let groups = partition(vec![piece], driver.threads(), driver.grain());
    run_groups(groups, &|group: Vec<TriplePiece<'_, P, G, S>>| {
        for p in group {
            kernels::rw4x3(isa, p.a, p.g, p.b, p.c, mask);
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
    let piece = TriplePiece::<P, G, S> {
        a: &mut a[..n],
        g: &g[..n],
        b: &mut b[..n],
        c: &mut [],
    };
    let groups = partition(vec![piece], driver.threads(), driver.grain());
    run_groups(groups, &|group: Vec<TriplePiece<'_, P, G, S>>| {
        for p in group {
            kernels::rw3x2(isa, p.a, p.g, p.b, mask);
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
    let piece = RereadPiece {
        a: &mut a[..n],
        g: &g[..n],
        b: &mut b[..n],
        block_len: block_len.max(1),
    };
    let groups = partition(vec![piece], driver.threads(), driver.grain());
    run_groups(groups, &|group: Vec<RereadPiece<'_, P, G, S>>| {
        group.into_iter().fold(0u32, |s, p| {
            s | kernels::rw3x2_reread(isa, p.a, p.g, p.b, p.block_len, mask)
        })
    })
    .into_iter()
    .fold(0u32, |s, x| s | x)
}

struct RereadPiece<'a, P, G, S> {
    a: &'a mut [P],
    g: &'a [G],
    b: &'a mut [S],
    block_len: usize,
}

impl<P: Element, G: Element, S: Element> Piece for RereadPiece<'_, P, G, S> {
    fn len(&self) -> usize {
        self.a.len()
    }
    fn align(&self) -> usize {
        blocks_align(self.block_len)
    }
    fn split_at(self, mid: usize) -> (Self, Self) {
        let (a0, a1) = self.a.split_at_mut(mid);
        let (g0, g1) = self.g.split_at(mid);
        let (b0, b1) = self.b.split_at_mut(mid);
        let block_len = self.block_len;
        (
            RereadPiece {
                a: a0,
                g: g0,
                b: b0,
                block_len,
            },
            RereadPiece {
                a: a1,
                g: g1,
                b: b1,
                block_len,
            },
        )
    }
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
    let piece = WholeBlocks(RereadPiece {
        a: &mut a[..n],
        g: &g[..n],
        b: &mut b[..n],
        block_len,
    });
    let groups = partition(vec![piece], driver.threads(), driver.grain());
    run_groups(groups, &|group: Vec<WholeBlocks<'_, P, G, S>>| {
        let mut sum = 0u32;
        for WholeBlocks(p) in group {
            let blocks = p.a.chunks_mut(block_len).zip(p.g.chunks(block_len));
            for ((a, g), b) in blocks.zip(p.b.chunks_mut(block_len)) {
                sum = sum.wrapping_add(kernels::read1(isa, g));
                kernels::rw3x2(isa, a, g, b, mask);
            }
        }
        sum
    })
    .into_iter()
    .fold(0u32, u32::wrapping_add)
}

/// A run of whole blocks: cut only at multiples of the block length.
struct WholeBlocks<'a, P, G, S>(RereadPiece<'a, P, G, S>);

impl<P: Element, G: Element, S: Element> Piece for WholeBlocks<'_, P, G, S> {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn align(&self) -> usize {
        self.0.block_len
    }
    fn split_at(self, mid: usize) -> (Self, Self) {
        let (head, tail) = self.0.split_at(mid);
        (WholeBlocks(head), WholeBlocks(tail))
    }
}

/// STREAM triad `a = b + scalar*c` over the common length, split over `driver`'s threads.
/// STREAM counts 12 bytes per element (it leaves out the write-allocate read of `a`).
pub fn triad(driver: &Driver, a: &mut [f32], b: &[f32], c: &[f32], scalar: f32) {
    let n = a.len().min(b.len()).min(c.len());
    let isa = detected_isa();
    let piece = TriadPiece {
        a: &mut a[..n],
        b: &b[..n],
        c: &c[..n],
    };
    let groups = partition(vec![piece], driver.threads(), driver.grain());
    run_groups(groups, &|group: Vec<TriadPiece<'_>>| {
        for p in group {
            kernels::triad(isa, p.a, p.b, p.c, scalar);
        }
    });
}

struct TriadPiece<'a> {
    a: &'a mut [f32],
    b: &'a [f32],
    c: &'a [f32],
}

impl Piece for TriadPiece<'_> {
    fn len(&self) -> usize {
        self.a.len()
    }
    fn split_at(self, mid: usize) -> (Self, Self) {
        let (a0, a1) = self.a.split_at_mut(mid);
        let (b0, b1) = self.b.split_at(mid);
        let (c0, c1) = self.c.split_at(mid);
        (
            TriadPiece {
                a: a0,
                b: b0,
                c: c0,
            },
            TriadPiece {
                a: a1,
                b: b1,
                c: c1,
            },
        )
    }
}

/// Read `g` once and write nothing: the traffic of Adam-mini's separate statistics pass over a
/// block too large to stay in cache (the two-pass pattern is [`read1`] then [`rw3x2`]). Sums
/// the raw bits with wrapping integer adds (no floating-point work) and returns the sum so no
/// load can be left out. Split over `driver`'s threads.
pub fn read1<G: Element>(driver: &Driver, g: &[G]) -> u32 {
    let isa = detected_isa();
    let groups = partition(vec![ReadPiece(g)], driver.threads(), driver.grain());
    run_groups(groups, &|group: Vec<ReadPiece<'_, G>>| {
        group
            .iter()
            .fold(0u32, |s, p| s.wrapping_add(kernels::read1(isa, p.0)))
    })
    .into_iter()
    .fold(0u32, u32::wrapping_add)
}

struct ReadPiece<'a, G>(&'a [G]);

impl<G: Element> Piece for ReadPiece<'_, G> {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn split_at(self, mid: usize) -> (Self, Self) {
        let (a, b) = self.0.split_at(mid);
        (ReadPiece(a), ReadPiece(b))
    }
}
