//! The update rules. Each module holds one rule's hyper-parameters, its per-step scalars,
//! its per-element formula (one `#[inline]` function, the single definition that the slice
//! kernels and the CUDA mirror follow), a reference path and a fast slice path.

pub mod adam;
pub mod adam_mini;
pub mod lion;
pub mod sgd;

use crate::error::{Buffer, LayoutError, SkipReason, StepError};
use crate::step::{GradPrep, StepOptions, StochasticRounding};

/// A callback the fast paths run before every `CHUNK` elements (with the chunk's first index
/// within the slice), for example to request the memory of a chunk further on. It sees no
/// values and changes no bits; [`NoHook`] (no chunks) is the plain loop.
pub trait ChunkHook {
    /// Elements per chunk (0: no chunks, one plain loop).
    const CHUNK: usize;
    /// Runs before the chunk starting at element `start`.
    fn before(&mut self, start: usize);
}

/// The [`ChunkHook`] that does nothing: one plain loop over the slices.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoHook;

impl ChunkHook for NoHook {
    const CHUNK: usize = 0;
    #[inline(always)]
    fn before(&mut self, _start: usize) {}
}

/// Run `f(i, ..)` over the common length of three buffers: whole chunks of `H::CHUNK`
/// elements (each after `hook.before(start)`; the inner loop's trip count is a constant), then
/// the rest. `i` is the index within the slices, in order.
#[inline(always)]
pub(crate) fn chunked3<A, B, C, H: ChunkHook>(
    a: &mut [A],
    b: &[B],
    c: &mut [C],
    hook: &mut H,
    mut f: impl FnMut(usize, &mut A, &B, &mut C),
) {
    let n = a.len().min(b.len()).min(c.len());
    let full = if H::CHUNK == 0 { 0 } else { n - n % H::CHUNK };
    let (a, a_rest) = a[..n].split_at_mut(full);
    let (b, b_rest) = b[..n].split_at(full);
    let (c, c_rest) = c[..n].split_at_mut(full);
    if H::CHUNK > 0 {
        let chunks = a
            .chunks_exact_mut(H::CHUNK)
            .zip(b.chunks_exact(H::CHUNK))
            .zip(c.chunks_exact_mut(H::CHUNK));
        for (k, ((ac, bc), cc)) in chunks.enumerate() {
            let start = k * H::CHUNK;
            hook.before(start);
            let it = ac.iter_mut().zip(bc).zip(cc.iter_mut());
            for (j, ((x, y), z)) in it.enumerate() {
                f(start + j, x, y, z);
            }
        }
    }
    let it = a_rest.iter_mut().zip(b_rest).zip(c_rest.iter_mut());
    for (j, ((x, y), z)) in it.enumerate() {
        f(full + j, x, y, z);
    }
}

/// [`chunked3`] over four buffers (Adam's parameter, gradient and two states).
#[inline(always)]
pub(crate) fn chunked4<A, B, C, D, H: ChunkHook>(
    a: &mut [A],
    b: &[B],
    c: &mut [C],
    d: &mut [D],
    hook: &mut H,
    mut f: impl FnMut(usize, &mut A, &B, &mut C, &mut D),
) {
    let n = a.len().min(b.len()).min(c.len()).min(d.len());
    let full = if H::CHUNK == 0 { 0 } else { n - n % H::CHUNK };
    let (a, a_rest) = a[..n].split_at_mut(full);
    let (b, b_rest) = b[..n].split_at(full);
    let (c, c_rest) = c[..n].split_at_mut(full);
    let (d, d_rest) = d[..n].split_at_mut(full);
    if H::CHUNK > 0 {
        let chunks = a
            .chunks_exact_mut(H::CHUNK)
            .zip(b.chunks_exact(H::CHUNK))
            .zip(
                c.chunks_exact_mut(H::CHUNK)
                    .zip(d.chunks_exact_mut(H::CHUNK)),
            );
        for (k, ((ac, bc), (cc, dc))) in chunks.enumerate() {
            let start = k * H::CHUNK;
            hook.before(start);
            let it = ac.iter_mut().zip(bc).zip(cc.iter_mut().zip(dc.iter_mut()));
            for (j, ((x, y), (z, w))) in it.enumerate() {
                f(start + j, x, y, z, w);
            }
        }
    }
    let it = a_rest
        .iter_mut()
        .zip(b_rest)
        .zip(c_rest.iter_mut().zip(d_rest.iter_mut()));
    for (j, ((x, y), (z, w))) in it.enumerate() {
        f(full + j, x, y, z, w);
    }
}

/// Everything a per-element pass needs for one step, decided before anything is written:
/// the step being applied, the rule's per-step scalars, gradient preparation and the
/// stochastic-rounding key. A driver may split the pass over threads or shards in any way
/// and then call the rule's `commit`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Plan<K> {
    /// The step being applied (the counter's value after commit).
    pub step: u64,
    /// The rule's per-step scalars.
    pub scalars: K,
    /// Gradient preparation (loss scale, clip coefficient).
    pub prep: GradPrep,
    /// Stochastic rounding of bf16 parameters, keyed for element 0 of the tensor.
    pub sr: Option<StochasticRounding>,
}

/// A step either goes ahead with a plan or is skipped.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Begin<K> {
    /// Apply this plan, then commit.
    Apply(Plan<K>),
    /// Write nothing.
    Skip(SkipReason),
}

/// Check that every buffer has `expected` elements.
pub fn check_lens(expected: usize, bufs: &[(Buffer, usize)]) -> Result<(), LayoutError> {
    for &(buffer, got) in bufs {
        if got != expected {
            return Err(LayoutError::LenMismatch {
                buffer,
                expected,
                got,
            });
        }
    }
    Ok(())
}

/// Shared prologue: validate options, decide the skip, compute the next step number.
pub(crate) fn begin_common<'a, G: crate::store::Element, I>(
    step: u64,
    opts: &StepOptions,
    grads: I,
) -> Result<Result<u64, SkipReason>, StepError>
where
    I: IntoIterator<Item = &'a [G]>,
{
    opts.validate()?;
    let t = crate::step::next_step(step)?;
    if let Some(r) = crate::step::skip_reason(opts, grads) {
        return Ok(Err(r));
    }
    Ok(Ok(t))
}

#[cfg(test)]
mod hook_tests {
    use super::{ChunkHook, NoHook};
    use crate::rules::adam::{adam_slice_hooked, AdamConfig};
    use crate::rules::adam_mini::{adam_mini_slice_hooked, AdamMiniConfig};
    use crate::rules::lion::{lion_slice_hooked, LionConfig};
    use crate::rules::sgd::{sgd_slice_hooked, SgdConfig};
    use crate::rules::Plan;
    use crate::scalars::LibmSqrt;
    use crate::step::{GradPrep, StochasticRounding};
    use crate::store::Element;
    use half::bf16;

    /// Records the chunk starts it is called with.
    struct Record<const C: usize> {
        starts: [usize; 64],
        calls: usize,
    }

    impl<const C: usize> ChunkHook for Record<C> {
        const CHUNK: usize = C;
        fn before(&mut self, start: usize) {
            self.starts[self.calls] = start;
            self.calls += 1;
        }
    }

    fn values(n: usize, k: u32) -> [f32; 200] {
        let mut v = [0.0f32; 200];
        for (i, x) in v.iter_mut().enumerate().take(n) {
            let b = (i as u32).wrapping_mul(2_654_435_761).wrapping_add(k) >> 7;
            *x = match i % 11 {
                0 => f32::from_bits(0x7FA0_0000 | b), // NaN with payload
                1 => -0.0,
                2 => f32::from_bits(b & 0x7F_FFFF), // subnormal
                3 => f32::INFINITY,
                _ => (b % 2000) as f32 * 1e-3 - 1.0,
            };
        }
        v
    }

    fn bits<T: Element>(v: &[T]) -> [u32; 200] {
        let mut o = [0u32; 200];
        for (o, x) in o.iter_mut().zip(v) {
            *o = x.to_bits_u32();
        }
        o
    }

    /// Every rule's hooked loop: chunk starts 0, C, 2C, ... for the whole chunks only, and
    /// the same bits as the plain loop (odd lengths, bf16 parameters with stochastic
    /// rounding, gradient preparation on).
    #[test]
    fn spec_hooks_see_every_whole_chunk_and_change_no_bit() {
        let sr = Some(StochasticRounding {
            seed: 7,
            step: 3,
            index_offset: 5,
        });
        let prep = GradPrep {
            grad_scale: 3.0,
            clip_coef: 0.5,
        };
        for n in [0usize, 1, 6, 7, 13, 14, 199] {
            let p0 = values(n, 1).map(bf16::from_f32);
            let g0 = values(n, 2);
            let m0 = values(n, 3);
            let v0 = values(n, 4).map(f32::abs);
            let whole = n / 7;
            let check = |rec: &Record<7>| {
                assert_eq!(rec.calls, whole, "n = {n}");
                for (c, s) in rec.starts[..whole].iter().enumerate() {
                    assert_eq!(*s, 7 * c);
                }
            };

            let plan = Plan {
                step: 3,
                scalars: AdamConfig::adamw().scalars(1e-2, 3),
                prep,
                sr,
            };
            let (mut p1, mut m1, mut v1) = (p0, m0, v0);
            let (mut p2, mut m2, mut v2) = (p0, m0, v0);
            let mut rec = Record::<7> {
                starts: [0; 64],
                calls: 0,
            };
            adam_slice_hooked::<bf16, f32, f32, LibmSqrt, _>(
                &mut p1[..n],
                &g0[..n],
                &mut m1[..n],
                &mut v1[..n],
                &plan,
                &mut NoHook,
            );
            adam_slice_hooked::<bf16, f32, f32, LibmSqrt, _>(
                &mut p2[..n],
                &g0[..n],
                &mut m2[..n],
                &mut v2[..n],
                &plan,
                &mut rec,
            );
            check(&rec);
            assert_eq!(
                (bits(&p1), bits(&m1), bits(&v1)),
                (bits(&p2), bits(&m2), bits(&v2))
            );

            // The one-state rules: `$rule(param, grad, state, $extra.., plan, hook)`, once with
            // no hook and once recording, must give the same bits.
            macro_rules! one_state_rule_matches {
                ($rule:ident, $scalars:expr $(, $extra:expr)*) => {{
                    let plan = Plan {
                        step: 3,
                        scalars: $scalars,
                        prep,
                        sr,
                    };
                    let (mut p1, mut m1, mut p2, mut m2) = (p0, m0, p0, m0);
                    let mut rec = Record::<7> {
                        starts: [0; 64],
                        calls: 0,
                    };
                    let (g, plain) = (&g0[..n], &mut NoHook);
                    $rule::<bf16, f32, f32, _>(&mut p1[..n], g, &mut m1[..n], $($extra,)* &plan, plain);
                    $rule::<bf16, f32, f32, _>(&mut p2[..n], g, &mut m2[..n], $($extra,)* &plan, &mut rec);
                    check(&rec);
                    assert_eq!((bits(&p1), bits(&m1)), (bits(&p2), bits(&m2)));
                }};
            }
            let sgd = SgdConfig {
                momentum: 0.9,
                nesterov: true,
                weight_decay: 1e-2,
                ..SgdConfig::new(1e-2)
            };
            one_state_rule_matches!(sgd_slice_hooked, sgd.scalars(1e-2, 3));
            one_state_rule_matches!(lion_slice_hooked, LionConfig::official().scalars(1e-2));
            one_state_rule_matches!(
                adam_mini_slice_hooked,
                AdamMiniConfig::default().scalars(1e-2, 3),
                0.37
            );
        }
    }
}
