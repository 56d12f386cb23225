//! Learning-rate schedules (`adamant_core::schedule`) as a plain struct and one query.

use crate::status::adamant_status;
use adamant_core::schedule::{Decay, Schedule};

/// The decay after warm-up. Crosses the ABI as a `uint32_t`, checked on entry.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum adamant_decay {
    /// Stay at `peak_lr`.
    Constant = 0,
    /// Linear from `peak_lr` to `final_lr` at `total_steps`.
    Linear = 1,
    /// `final + (peak - final) * (1 + cos(pi * frac)) / 2` (optax `warmup_cosine_decay_schedule`).
    Cosine = 2,
    /// Warmup-stable-decay: `peak_lr` until `total_steps - decay_steps`, then linear to
    /// `final_lr` at `total_steps`.
    WarmupStableDecay = 3,
}

/// A learning-rate schedule: linear warm-up from `init_lr` to `peak_lr` over
/// `warmup_steps`, then the `decay` shape until `total_steps`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct adamant_schedule {
    /// Learning rate at `count = 0`.
    pub init_lr: f64,
    /// Learning rate at the end of warm-up.
    pub peak_lr: f64,
    /// Learning rate at and after `total_steps`.
    pub final_lr: f64,
    /// Warm-up length (0: start at `peak_lr`).
    pub warmup_steps: u64,
    /// Total schedule length, `>= warmup_steps`.
    pub total_steps: u64,
    /// Length of the final decay (`ADAMANT_DECAY_WARMUP_STABLE_DECAY` only).
    pub decay_steps: u64,
    /// An `adamant_decay` value.
    pub decay: u32,
}

/// A constant learning rate of 1e-3.
#[no_mangle]
pub extern "C" fn adamant_schedule_default() -> adamant_schedule {
    adamant_schedule {
        init_lr: 1e-3,
        peak_lr: 1e-3,
        final_lr: 1e-3,
        warmup_steps: 0,
        total_steps: 0,
        decay_steps: 0,
        decay: adamant_decay::Constant as u32,
    }
}

impl adamant_schedule {
    pub(crate) fn to_core(self) -> Result<Schedule, adamant_status> {
        let decay = match self.decay {
            0 => Decay::Constant,
            1 => Decay::Linear,
            2 => Decay::Cosine,
            3 => Decay::WarmupStableDecay {
                decay_steps: self.decay_steps,
            },
            _ => return Err(adamant_status::InvalidEnum),
        };
        let s = Schedule {
            init_lr: self.init_lr,
            peak_lr: self.peak_lr,
            final_lr: self.final_lr,
            warmup_steps: self.warmup_steps,
            total_steps: self.total_steps,
            decay,
        };
        s.validate()?;
        Ok(s)
    }
}

/// The learning rate for the step after `count` applied steps (`count = 0` for the first
/// step), in f64, the same on every machine (`libm` cosine). Pass it as
/// `adamant_step_options.lr`.
///
/// # Safety
/// `schedule` points to a valid struct; `out_lr` to a writable `double`.
#[no_mangle]
pub unsafe extern "C" fn adamant_schedule_lr(
    schedule: *const adamant_schedule,
    count: u64,
    out_lr: *mut f64,
) -> adamant_status {
    ffi_boundary!({
        let s = *try_ref!(schedule);
        let out = try_out!(out_lr);
        let lr = s.to_core()?.lr_at(count);
        // SAFETY: non-NULL and aligned (try_out!); the schedule was copied before.
        unsafe { out.write(lr) };
        Ok(())
    })
}
