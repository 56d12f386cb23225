//! IEEE subnormals for the duration of a step. XLA:CPU runs its compute threads with
//! flush-to-zero and denormals-are-zero set (MXCSR FTZ/DAZ on x86-64, FPCR.FZ on aarch64),
//! and an FFI handler runs on those threads; the numeric contract keeps subnormals, so every
//! entry point clears the flags and restores the caller's on return.

/// Clears flush-to-zero / denormals-are-zero on creation, restores the saved state on drop.
pub struct IeeeGuard {
    #[allow(dead_code)]
    saved: u64,
}

#[cfg(target_arch = "x86_64")]
const FLUSH_BITS: u64 = (1 << 15) | (1 << 6); // MXCSR.FTZ | MXCSR.DAZ

#[cfg(target_arch = "aarch64")]
const FLUSH_BITS: u64 = 1 << 24; // FPCR.FZ

#[cfg(target_arch = "x86_64")]
fn read() -> u64 {
    let mut csr: u32 = 0;
    // SAFETY: `stmxcsr` stores the 32-bit MXCSR to the given address (a local).
    unsafe {
        core::arch::asm!("stmxcsr [{}]", in(reg) &mut csr as *mut u32, options(nostack, preserves_flags));
    }
    csr as u64
}

#[cfg(target_arch = "x86_64")]
fn write(v: u64) {
    let csr = v as u32;
    // SAFETY: loads a value read from MXCSR with only the FTZ/DAZ bits changed.
    unsafe {
        core::arch::asm!("ldmxcsr [{}]", in(reg) &csr as *const u32, options(nostack, preserves_flags));
    }
}

#[cfg(target_arch = "aarch64")]
fn read() -> u64 {
    let v: u64;
    // SAFETY: reading FPCR has no side effects.
    unsafe {
        core::arch::asm!("mrs {}, fpcr", out(reg) v, options(nomem, nostack, preserves_flags))
    };
    v
}

#[cfg(target_arch = "aarch64")]
fn write(v: u64) {
    // SAFETY: writes back a value read from FPCR with only the FZ bit changed.
    unsafe {
        core::arch::asm!("msr fpcr, {}", in(reg) v, options(nomem, nostack, preserves_flags))
    };
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
impl IeeeGuard {
    /// Clear the flush flags (if set) until the guard drops.
    #[inline]
    pub fn new() -> IeeeGuard {
        let saved = read();
        if saved & FLUSH_BITS != 0 {
            write(saved & !FLUSH_BITS);
        }
        IeeeGuard { saved }
    }
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
impl Drop for IeeeGuard {
    fn drop(&mut self) {
        if self.saved & FLUSH_BITS != 0 {
            write(self.saved);
        }
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
impl IeeeGuard {
    /// No flush flags are known on this target.
    #[inline]
    pub fn new() -> IeeeGuard {
        IeeeGuard { saved: 0 }
    }
}

impl Default for IeeeGuard {
    fn default() -> Self {
        IeeeGuard::new()
    }
}

#[cfg(all(test, any(target_arch = "x86_64", target_arch = "aarch64")))]
mod tests {
    use super::*;

    #[test]
    fn spec_guard_keeps_subnormals_under_flush_mode_and_restores_it() {
        let before = read();
        write(before | FLUSH_BITS);
        let tiny = core::hint::black_box(f32::from_bits(0x0080_0000)); // smallest normal
        let flushed = core::hint::black_box(tiny) * core::hint::black_box(0.5f32);
        {
            let _g = IeeeGuard::new();
            let kept = core::hint::black_box(tiny) * core::hint::black_box(0.5f32);
            assert_eq!(kept.to_bits(), 0x0040_0000);
        }
        let after = read();
        write(before);
        assert_eq!(flushed.to_bits(), 0, "flush mode was not in effect");
        assert_eq!(
            after & FLUSH_BITS,
            FLUSH_BITS,
            "guard did not restore the caller's mode"
        );
    }
}
