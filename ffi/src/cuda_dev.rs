//! Shared pieces of the CUDA entry points (`cuda`, `cuda_table`, `cuda_mini`, `cuda_clip`,
//! `cuda_loco`): the stream launcher, device-range checks and the simulator of the tests.
//!
//! Every entry point there is a thin `extern "C"` shell over a `checked_*` function that
//! takes the launcher as a closure: the shell passes [`on_stream`] (the driver check comes
//! after every argument check), the unit tests pass the PTX simulator, so the validation and
//! launch code the tests run is the code the library runs.

use crate::cuda::status_of;
use crate::status::adamant_status;
use crate::tensor::Range;
use adamant_cuda::driver::StreamLauncher;
use adamant_cuda::ops::{Launcher, OpError};
use core::ffi::c_void;

/// The launcher of a caller's stream, made only when called (after the argument checks).
///
/// # Safety
/// `stream` is NULL or a live `CUstream` of the current context (the entry points' contract).
pub(crate) unsafe fn on_stream(
    stream: *mut c_void,
) -> impl FnOnce() -> Result<StreamLauncher, adamant_status> {
    move || {
        // SAFETY: the caller's contract above.
        unsafe { StreamLauncher::new(stream) }.map_err(|e| status_of(OpError::from(e)))
    }
}

/// Get the launcher (the driver check, after every argument check) and queue `queue` on it;
/// a launch error becomes its status.
pub(crate) fn launch<L: Launcher>(
    launcher: impl FnOnce() -> Result<L, adamant_status>,
    queue: impl FnOnce(&mut L) -> Result<(), OpError>,
) -> Result<(), adamant_status> {
    let mut l = launcher()?;
    queue(&mut l).map_err(status_of)
}

/// The kernels take group lengths, chunk and tensor counts as 32-bit values
/// (`ADAMANT_STATUS_INVALID_CONFIG` when one does not fit).
pub(crate) fn fits_u32(values: &[usize]) -> Result<(), adamant_status> {
    if values.iter().all(|&v| u32::try_from(v).is_ok()) {
        Ok(())
    } else {
        Err(adamant_status::InvalidConfig)
    }
}

/// An empty range (overlaps nothing).
pub(crate) const NO_RANGE: Range = Range {
    start: 0,
    end: 0,
    written: false,
};

/// A device array of `n` values of `size` bytes at `p` that the kernels access with
/// `align`-byte alignment: its address (0 when empty) and byte range. Checks, in the CPU
/// ABI's order: NULL with `n > 0`, alignment, byte length.
pub(crate) fn dev_array<T>(
    p: *const T,
    n: usize,
    size: usize,
    align: usize,
    written: bool,
) -> Result<(u64, Range), adamant_status> {
    if n == 0 {
        return Ok((0, NO_RANGE));
    }
    if p.is_null() {
        return Err(adamant_status::NullPointer);
    }
    if p.addr() % align != 0 {
        return Err(adamant_status::Misaligned);
    }
    let end = n
        .checked_mul(size)
        .filter(|&b| b <= isize::MAX as usize)
        .and_then(|b| p.addr().checked_add(b))
        .ok_or(adamant_status::LengthTooLarge)?;
    Ok((
        p.addr() as u64,
        Range {
            start: p.addr(),
            end,
            written,
        },
    ))
}

/// The device status word of a compression call (required, 4-byte aligned, written).
pub(crate) fn status_word(p: *mut f32) -> Result<(u64, Range), adamant_status> {
    if p.is_null() {
        return Err(adamant_status::NullPointer);
    }
    dev_array(p.cast_const(), 1, 4, 4, true)
}

/// A device scalar of `T` read or written by a call (required unless `optional`).
pub(crate) fn dev_scalar<T>(
    p: *const T,
    optional: bool,
    written: bool,
) -> Result<(u64, Range), adamant_status> {
    if p.is_null() {
        return if optional {
            Ok((0, NO_RANGE))
        } else {
            Err(adamant_status::NullPointer)
        };
    }
    let size = core::mem::size_of::<T>();
    dev_array(p, 1, size, core::mem::align_of::<T>(), written)
}

#[cfg(test)]
pub(crate) mod sim {
    //! The PTX simulator as the device of the unit tests (the committed kernels executed on
    //! the CPU), with host-side upload and download helpers.
    use adamant_cuda::backend::{Backend, BackendError, LaunchShape, ParamValue};
    use adamant_cuda::ops::Launcher;
    use ptx_sim::Simulator;

    /// The simulator, borrowed as a launcher (the test reads its memory afterwards).
    pub struct Borrowed<'a>(pub &'a mut Simulator);

    impl Launcher for Borrowed<'_> {
        fn launch_kernel(
            &mut self,
            module: &str,
            entry: &str,
            shape: LaunchShape,
            params: &[ParamValue],
        ) -> Result<(), BackendError> {
            self.0.launch(module, entry, shape, params)
        }
    }

    /// A simulator with every embedded module registered.
    pub fn sim() -> Simulator {
        let mut s = Simulator::new();
        s.register_modules(adamant_cuda::ptx::MODULES.iter().map(|m| (m.name, m.ptx)))
            .unwrap();
        s
    }

    /// Upload `bytes` (at least 4 bytes are allocated); returns the device address.
    pub fn put_bytes(s: &mut Simulator, bytes: &[u8]) -> u64 {
        let a = s.alloc(bytes.len().max(16)).unwrap();
        s.upload(a, bytes).unwrap();
        a
    }

    /// Download `n` bytes at `a`.
    pub fn get_bytes(s: &mut Simulator, a: u64, n: usize) -> Vec<u8> {
        let mut b = vec![0u8; n];
        if n > 0 {
            s.download(a, &mut b).unwrap();
        }
        b
    }

    /// Little-endian bytes of a slice of plain values (f32, u16 bits, u64, ...).
    pub fn le<T: Copy>(v: &[T]) -> Vec<u8> {
        let n = core::mem::size_of_val(v);
        // SAFETY: plain-old-data values (integers and floats) viewed as bytes; the test
        // machine is little-endian, as the device.
        unsafe { core::slice::from_raw_parts(v.as_ptr().cast::<u8>(), n) }.to_vec()
    }

    /// A device address as a typed pointer (never dereferenced on the host).
    pub fn dptr<T>(a: u64) -> *mut T {
        core::ptr::without_provenance_mut(a as usize)
    }

    /// Bytes of `vals` stored as dtype `d` (`0` f32, `1` bf16, `2` f16), rounded to nearest
    /// even; `raw` overrides elements with exact bit patterns (NaN payloads, infinities).
    pub fn elem_bytes(d: u32, vals: &[f32], raw: &[(usize, u32)]) -> Vec<u8> {
        use adamant_core::{bf16, f16, Element};
        fn conv<T: Element>(vals: &[f32], raw: &[(usize, u32)]) -> Vec<u8> {
            let size = core::mem::size_of::<T>();
            let mut bits: Vec<u32> = vals.iter().map(|&x| T::narrow(x).to_bits_u32()).collect();
            for &(i, b) in raw {
                bits[i] = b;
            }
            bits.iter()
                .flat_map(|b| b.to_le_bytes()[..size].to_vec())
                .collect()
        }
        match d {
            0 => conv::<f32>(vals, raw),
            1 => conv::<bf16>(vals, raw),
            _ => conv::<f16>(vals, raw),
        }
    }

    /// Finite adversarial values: +-0, the smallest and largest f32 subnormals, `+-huge`,
    /// tiny normals and a spread of ordinary values, in a seeded order.
    pub fn adversarial(n: usize, seed: u64, huge: f32) -> Vec<f32> {
        let mut z = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|i| {
                z ^= z << 13;
                z ^= z >> 7;
                z ^= z << 17;
                let r = (z >> 40) as f32 / (1u64 << 24) as f32; // [0, 1)
                match i % 11 {
                    0 => 0.0,
                    1 => -0.0,
                    2 => f32::from_bits(1),
                    3 => -f32::from_bits(0x007F_FFFF),
                    4 if i % 3 == 0 => huge * (r - 0.5).signum(),
                    5 => 1e-30 * (r - 0.25),
                    _ => (r - 0.5) * 8.0,
                }
            })
            .collect()
    }

    /// A NaN with a payload in dtype `d`.
    pub fn nan_payload(d: u32) -> u32 {
        [0x7FC0_1234, 0x7F81, 0x7E01][d as usize]
    }

    /// Negative infinity in dtype `d`.
    pub fn neg_inf(d: u32) -> u32 {
        [0xFF80_0000, 0xFF80, 0xFC00][d as usize]
    }

    /// `b` in 4-byte aligned host storage (zero padded), for host views of any dtype.
    pub fn words(b: &[u8]) -> Vec<u32> {
        b.chunks(4)
            .map(|c| {
                let mut w = [0u8; 4];
                w[..c.len()].copy_from_slice(c);
                u32::from_le_bytes(w)
            })
            .collect()
    }

    /// The 32-bit words at `a` (`n` of them).
    pub fn get_words(s: &mut Simulator, a: u64, n: usize) -> Vec<u32> {
        words(&get_bytes(s, a, 4 * n))
    }

    /// Overwrite device memory at `a` with `bytes`.
    pub fn put_at(s: &mut Simulator, a: u64, bytes: &[u8]) {
        if !bytes.is_empty() {
            s.upload(a, bytes).unwrap();
        }
    }
}
