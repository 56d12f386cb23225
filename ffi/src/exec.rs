//! The one place the ABI runs the update rules, on checked views.
//!
//! Everything above this module validates; everything here runs. Steps and the finite scan
//! go through `adamant-cpu`'s driver (core's slice loops compiled per instruction set and
//! chosen at run time, a long tensor split over the threads of [`crate::threads`]); the
//! square root is the hardware instruction (IEEE correctly rounded, so the bits of core's
//! `LibmSqrt` reference). Each tensor keys stochastic rounding from its own element 0, as one
//! single-tensor call would.

use crate::status::adamant_status;
use crate::tensor::{as_slice, as_slice_mut, View};
use crate::threads::driver;
use adamant_core::rules::adam::AdamScalars;
use adamant_core::rules::lion::LionScalars;
use adamant_core::rules::sgd::SgdScalars;
use adamant_core::rules::Plan;
use adamant_core::{bf16, f16, Dtype};

/// Bind `$T` to the Rust element type of any dtype.
macro_rules! with_elem {
    ($d:expr, $T:ident => $body:expr) => {
        match $d {
            Dtype::F32 => {
                type $T = f32;
                $body
            }
            Dtype::Bf16 => {
                type $T = bf16;
                $body
            }
            Dtype::F16 => {
                type $T = f16;
                $body
            }
        }
    };
}

/// Bind `$T` to the Rust element type of a state dtype (f32 or bf16).
macro_rules! with_state {
    ($d:expr, $T:ident => $body:expr) => {
        match $d {
            Dtype::F32 => {
                type $T = f32;
                $body
            }
            Dtype::Bf16 => {
                type $T = bf16;
                $body
            }
            Dtype::F16 => Err(adamant_status::UnsupportedDtype),
        }
    };
}

/// Adam/AdamW over one tensor: `[param, grad, exp_avg, exp_avg_sq]`.
pub(crate) fn adam(plan: &Plan<AdamScalars>, v: &[View; 4]) -> Result<(), adamant_status> {
    with_elem!(v[0].dtype, P => with_elem!(v[1].dtype, G => with_state!(v[2].dtype, S => {
        // SAFETY: every view passed the NULL/length/alignment checks, lengths are equal, the
        // written views overlap nothing else in the call, dtypes match the element types.
        let (p, g, m, s) = unsafe {
            (
                as_slice_mut::<P>(&v[0]),
                as_slice::<G>(&v[1]),
                as_slice_mut::<S>(&v[2]),
                as_slice_mut::<S>(&v[3]),
            )
        };
        driver().adam_planned::<P, G, S>(plan, p, g, m, s);
        Ok(())
    })))
}

/// SGD over one tensor: `[param, grad, momentum_buffer]` (the buffer is empty without momentum).
pub(crate) fn sgd(plan: &Plan<SgdScalars>, v: &[View; 3]) -> Result<(), adamant_status> {
    with_elem!(v[0].dtype, P => with_elem!(v[1].dtype, G => with_state!(v[2].dtype, S => {
        // SAFETY: as in `adam`.
        let (p, g, b) = unsafe {
            (
                as_slice_mut::<P>(&v[0]),
                as_slice::<G>(&v[1]),
                as_slice_mut::<S>(&v[2]),
            )
        };
        driver().sgd_planned::<P, G, S>(plan, p, g, b);
        Ok(())
    })))
}

/// Lion over one tensor: `[param, grad, exp_avg]`.
pub(crate) fn lion(plan: &Plan<LionScalars>, v: &[View; 3]) -> Result<(), adamant_status> {
    with_elem!(v[0].dtype, P => with_elem!(v[1].dtype, G => with_state!(v[2].dtype, S => {
        // SAFETY: as in `adam`.
        let (p, g, m) = unsafe {
            (
                as_slice_mut::<P>(&v[0]),
                as_slice::<G>(&v[1]),
                as_slice_mut::<S>(&v[2]),
            )
        };
        driver().lion_planned::<P, G, S>(plan, p, g, m);
        Ok(())
    })))
}

/// Whether every element of a checked read-only view is finite.
pub(crate) fn all_finite(v: &View) -> bool {
    with_elem!(v.dtype, G => {
        // SAFETY: checked view; nothing in the call writes it.
        let g = unsafe { as_slice::<G>(v) };
        driver().all_finite_planned(g)
    })
}

/// What a reduction sums.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Sum,
    SumSq,
}

/// Per-tile partials of a checked view into `out` (`out.len() == tile_count(v.len)`).
pub(crate) fn partials(v: &View, op: Op, out: &mut [f32]) -> Result<(), adamant_status> {
    with_elem!(v.dtype, G => {
        // SAFETY: checked view, not overlapping `out`.
        let x = unsafe { as_slice::<G>(v) };
        let r = match op {
            Op::Sum => adamant_core::reduce::partials_by(x, |a| a, out),
            Op::SumSq => adamant_core::reduce::partials_by(x, |a| a * a, out),
        };
        r.map_err(adamant_status::from)
    })
}

/// Canonical sum (or sum of squares) of a whole checked view.
pub(crate) fn sum(v: &View, op: Op) -> f32 {
    with_elem!(v.dtype, G => {
        // SAFETY: checked view.
        let x = unsafe { as_slice::<G>(v) };
        match op {
            Op::Sum => adamant_core::reduce::sum(x),
            Op::SumSq => adamant_core::reduce::sum_sq(x),
        }
    })
}

/// Max-abs of a checked view.
pub(crate) fn max_abs(v: &View) -> f32 {
    with_elem!(v.dtype, G => {
        // SAFETY: checked view.
        let x = unsafe { as_slice::<G>(v) };
        adamant_core::reduce::max_abs(x)
    })
}
