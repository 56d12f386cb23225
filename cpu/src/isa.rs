//! Instruction-set selection: detected once at run time, overridable by an environment
//! variable for tests and benchmarks.

use std::fmt;
use std::sync::OnceLock;

/// Environment variable that caps the instruction set (`sse2`/`baseline`, `avx2`, `avx512`).
/// A value naming an instruction set the CPU lacks falls back to the widest one it has.
pub const ISA_ENV: &str = "ADAMANT_CPU_ISA";

/// An instruction set the slice kernels are compiled for. Ordered from narrowest to widest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    /// The target's baseline (SSE2 on x86-64; whatever the target enables elsewhere).
    Baseline,
    /// AVX2 (256-bit vectors).
    Avx2,
    /// AVX-512 F/BW/VL/DQ (512-bit vectors).
    Avx512,
}

impl Isa {
    /// Every instruction set, narrowest first.
    pub const ALL: [Isa; 3] = [Isa::Baseline, Isa::Avx2, Isa::Avx512];

    /// Short name: `sse2` (x86 baseline) or `generic`, `avx2`, `avx512`.
    pub const fn name(self) -> &'static str {
        match self {
            Isa::Baseline => {
                if cfg!(any(target_arch = "x86", target_arch = "x86_64")) {
                    "sse2"
                } else {
                    "generic"
                }
            }
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }

    /// Parse a name as [`Isa::name`] prints it (`baseline` and `generic` also name the baseline).
    pub fn parse(s: &str) -> Option<Isa> {
        match s.trim().to_ascii_lowercase().as_str() {
            "sse2" | "baseline" | "generic" => Some(Isa::Baseline),
            "avx2" => Some(Isa::Avx2),
            "avx512" => Some(Isa::Avx512),
            _ => None,
        }
    }

    /// Whether this CPU can run the kernels compiled for `self`.
    pub fn is_available(self) -> bool {
        match self {
            Isa::Baseline => true,
            Isa::Avx2 => has_avx2(),
            Isa::Avx512 => has_avx512(),
        }
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Asked for an instruction set this CPU does not have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IsaUnavailable(pub Isa);

impl fmt::Display for IsaUnavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "this CPU cannot run the {} kernels", self.0)
    }
}

impl std::error::Error for IsaUnavailable {}

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
#[inline]
pub(crate) fn has_avx2() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
}

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
#[inline]
pub(crate) fn has_avx512() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bw")
        && std::arch::is_x86_feature_detected!("avx512vl")
        && std::arch::is_x86_feature_detected!("avx512dq")
}

#[cfg(not(any(target_arch = "x86", target_arch = "x86_64")))]
#[inline]
pub(crate) fn has_avx2() -> bool {
    false
}

#[cfg(not(any(target_arch = "x86", target_arch = "x86_64")))]
#[inline]
pub(crate) fn has_avx512() -> bool {
    false
}

/// The widest instruction set this CPU has (ignores [`ISA_ENV`]).
pub fn detected_isa() -> Isa {
    *Isa::ALL
        .iter()
        .rev()
        .find(|i| i.is_available())
        .unwrap_or(&Isa::Baseline)
}

/// The instruction set the driver uses by default: [`detected_isa`], capped by [`ISA_ENV`]
/// when it is set. Read once per process.
pub fn isa() -> Isa {
    static CHOSEN: OnceLock<Isa> = OnceLock::new();
    *CHOSEN.get_or_init(|| {
        let best = detected_isa();
        match std::env::var(ISA_ENV).ok().as_deref().and_then(Isa::parse) {
            Some(want) => want.min(best),
            None => best,
        }
    })
}
