//! Yardstick kernels for `adamant bench`: the memory traffic of a rule with no arithmetic.
//!
//! A rule's speed is judged against the speed of a kernel that reads every buffer the rule
//! reads and writes in place every buffer it writes, with the same element types and the same
//! thread split, measured in the same run. For AdamW that is 4 streams read and 3 written
//! ([`rw4x3`]); for Lion and SGD with momentum 3 read and 2 written ([`rw3x2`]). [`triad`] is
//! STREAM's triad, reported for reference. The kernels run on the widest instruction set the
//! CPU has ([`crate::detected_isa`]), whatever the driver's setting.

use crate::driver::{partition, run_groups, Piece, TriplePiece};
use crate::isa::detected_isa;
use crate::kernels;
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
