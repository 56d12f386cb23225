//! Core's slice kernels compiled once per instruction set.
//!
//! Core's `*_slice` functions and `all_finite` are `#[inline(always)]`, so a wrapper with
//! `#[target_feature]` gets its own copy of the loop compiled for that instruction set. The
//! operations are the same IEEE `+ - * / sqrt` in the same order in every copy (Rust never
//! fuses multiply-add, and `target_feature` does not change that), so the copies differ only
//! in vector width.

use crate::isa::{has_avx2, has_avx512, Isa};
use crate::HwSqrt;
use adamant_core::rules::adam::{adam_slice, AdamScalars};
use adamant_core::rules::lion::{lion_slice, LionScalars};
use adamant_core::rules::sgd::{sgd_slice, SgdScalars};
use adamant_core::store::{Element, StateElement};
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

per_isa! {
    /// Core's `adam_slice` with the hardware square root.
    fn adam<P: Element, G: Element, S: StateElement>(
        param: &mut [P],
        grad: &[G],
        exp_avg: &mut [S],
        exp_avg_sq: &mut [S],
        plan: &Plan<AdamScalars>
    ) {
        adam_slice::<P, G, S, HwSqrt>(param, grad, exp_avg, exp_avg_sq, plan)
    }
}

per_isa! {
    /// Core's `sgd_slice`.
    fn sgd<P: Element, G: Element, S: StateElement>(
        param: &mut [P],
        grad: &[G],
        momentum_buffer: &mut [S],
        plan: &Plan<SgdScalars>
    ) {
        sgd_slice::<P, G, S>(param, grad, momentum_buffer, plan)
    }
}

per_isa! {
    /// Core's `lion_slice`.
    fn lion<P: Element, G: Element, S: StateElement>(
        param: &mut [P],
        grad: &[G],
        exp_avg: &mut [S],
        plan: &Plan<LionScalars>
    ) {
        lion_slice::<P, G, S>(param, grad, exp_avg, plan)
    }
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
    /// STREAM triad: `a = b + scalar*c`.
    fn triad<>(a: &mut [f32], b: &[f32], c: &[f32], scalar: f32) {
        for ((a, b), c) in a.iter_mut().zip(b).zip(c) {
            *a = *b + scalar * *c;
        }
    }
}
