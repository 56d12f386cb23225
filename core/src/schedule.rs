//! Learning-rate schedules as pure functions of the step count (f64, host side). Each has
//! a linear warm-up from `init_lr` to `peak_lr` over `warmup_steps`, then its decay over the
//! remaining `total_steps - warmup_steps`. `count` is the number of steps already applied
//! (0 for the first step), as optax's schedules take it.
//!
//! Cosine uses `libm::cos`, a deterministic software implementation, so a schedule gives
//! the same `lr` on every machine; the rules then see that `lr` as a per-step input.

use crate::error::{non_negative, ConfigError, Hyper};

/// The decay after warm-up.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Decay {
    /// Stay at `peak_lr`.
    Constant,
    /// Linear from `peak_lr` to `final_lr` at `total_steps`.
    Linear,
    /// `final + (peak - final) * (1 + cos(pi * frac)) / 2`, `frac` from 0 to 1 at `total_steps`.
    Cosine,
    /// Warmup-stable-decay: `peak_lr` until `total_steps - decay_steps`, then linear to
    /// `final_lr` at `total_steps`.
    WarmupStableDecay {
        /// Length of the final decay.
        decay_steps: u64,
    },
}

/// A learning-rate schedule.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Schedule {
    /// Learning rate at `count = 0` (start of warm-up).
    pub init_lr: f64,
    /// Learning rate at the end of warm-up.
    pub peak_lr: f64,
    /// Learning rate at and after `total_steps`.
    pub final_lr: f64,
    /// Warm-up length (0: start at `peak_lr`).
    pub warmup_steps: u64,
    /// Total schedule length, `>= warmup_steps`.
    pub total_steps: u64,
    /// Decay shape.
    pub decay: Decay,
}

impl Schedule {
    /// A constant `lr` (no warm-up).
    pub const fn constant(lr: f64) -> Schedule {
        Schedule {
            init_lr: lr,
            peak_lr: lr,
            final_lr: lr,
            warmup_steps: 0,
            total_steps: 0,
            decay: Decay::Constant,
        }
    }

    /// optax `warmup_cosine_decay_schedule(init_value, peak_value, warmup_steps,
    /// decay_steps = total_steps, end_value)`.
    pub const fn warmup_cosine(
        init_lr: f64,
        peak_lr: f64,
        warmup_steps: u64,
        total_steps: u64,
        final_lr: f64,
    ) -> Schedule {
        Schedule {
            init_lr,
            peak_lr,
            final_lr,
            warmup_steps,
            total_steps,
            decay: Decay::Cosine,
        }
    }

    /// Typed errors: learning rates finite and `>= 0`, `warmup_steps <= total_steps` (unless
    /// constant), WSD's `decay_steps <= total_steps - warmup_steps`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        non_negative(Hyper::Lr, self.init_lr)?;
        non_negative(Hyper::Lr, self.peak_lr)?;
        non_negative(Hyper::Lr, self.final_lr)?;
        let bad = |v: u64| ConfigError::OutOfRange {
            which: Hyper::Schedule,
            value: v as f64,
        };
        if self.decay != Decay::Constant && self.warmup_steps > self.total_steps {
            return Err(bad(self.warmup_steps));
        }
        if let Decay::WarmupStableDecay { decay_steps } = self.decay {
            if decay_steps > self.total_steps - self.warmup_steps {
                return Err(bad(decay_steps));
            }
        }
        Ok(())
    }

    /// The learning rate for the step after `count` applied steps.
    ///
    /// Warm-up (`count < warmup_steps`): `init + (peak - init) * count / warmup_steps`.
    /// Then, with `d = count - warmup_steps` and `D = total_steps - warmup_steps`:
    /// constant `peak`; linear `peak + (final - peak) * min(d/D, 1)`; cosine
    /// `final + (peak - final) * (1 + cos(pi * min(d/D, 1))) / 2`; WSD `peak` while
    /// `count < total - decay_steps`, then linear to `final` over `decay_steps`.
    pub fn lr_at(&self, count: u64) -> f64 {
        if count < self.warmup_steps {
            let frac = count as f64 / self.warmup_steps as f64;
            return self.init_lr + (self.peak_lr - self.init_lr) * frac;
        }
        let d = (count - self.warmup_steps) as f64;
        let span = self.total_steps.saturating_sub(self.warmup_steps);
        let frac = if span == 0 {
            1.0
        } else {
            (d / span as f64).min(1.0)
        };
        match self.decay {
            Decay::Constant => self.peak_lr,
            Decay::Linear => self.peak_lr + (self.final_lr - self.peak_lr) * frac,
            Decay::Cosine => {
                let c = 0.5 * (1.0 + libm::cos(core::f64::consts::PI * frac));
                self.final_lr + (self.peak_lr - self.final_lr) * c
            }
            Decay::WarmupStableDecay { decay_steps } => {
                let start = self.total_steps - decay_steps;
                if count < start {
                    self.peak_lr
                } else if decay_steps == 0 {
                    self.final_lr
                } else {
                    let f = (((count - start) as f64) / decay_steps as f64).min(1.0);
                    self.peak_lr + (self.final_lr - self.peak_lr) * f
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanity_warmup_then_cosine() {
        let s = Schedule::warmup_cosine(0.0, 1e-3, 10, 110, 1e-5);
        s.validate().unwrap();
        assert_eq!(s.lr_at(0), 0.0);
        assert!((s.lr_at(5) - 5e-4).abs() < 1e-15);
        assert_eq!(s.lr_at(10), 1e-3);
        assert!((s.lr_at(60) - (1e-5 + (1e-3 - 1e-5) * 0.5)).abs() < 1e-12);
        assert!((s.lr_at(110) - 1e-5).abs() < 1e-18);
        assert!((s.lr_at(10_000) - 1e-5).abs() < 1e-18);
    }

    #[test]
    fn sanity_linear_and_wsd() {
        let mut s = Schedule {
            init_lr: 0.0,
            peak_lr: 1.0,
            final_lr: 0.0,
            warmup_steps: 0,
            total_steps: 100,
            decay: Decay::Linear,
        };
        assert_eq!(s.lr_at(25), 0.75);
        s.decay = Decay::WarmupStableDecay { decay_steps: 20 };
        s.validate().unwrap();
        assert_eq!(s.lr_at(79), 1.0);
        assert_eq!(s.lr_at(80), 1.0);
        assert_eq!(s.lr_at(90), 0.5);
        assert_eq!(s.lr_at(100), 0.0);
        assert_eq!(Schedule::constant(3e-4).lr_at(12345), 3e-4);
    }

    #[test]
    fn spec_bad_schedules_are_typed_errors() {
        let mut s = Schedule::warmup_cosine(0.0, 1e-3, 200, 100, 0.0);
        assert!(s.validate().is_err());
        s.warmup_steps = 10;
        s.peak_lr = f64::NAN;
        assert!(s.validate().is_err());
        s.peak_lr = 1e-3;
        s.decay = Decay::WarmupStableDecay { decay_steps: 95 };
        assert!(s.validate().is_err());
    }
}
