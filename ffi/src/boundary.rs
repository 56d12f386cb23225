//! The guards every `extern "C"` body goes through: a panic boundary and pointer checks.
//!
//! `ffi_boundary!` runs the body under `catch_unwind` and turns a panic into
//! `ADAMANT_STATUS_PANIC` (the crate is built with `panic = "unwind"`; under `abort` the
//! boundary could not catch anything). The `try_*!` macros return early with
//! `ADAMANT_STATUS_NULL_POINTER` or `ADAMANT_STATUS_MISALIGNED`, before anything is written.
//! None of them dereferences a misaligned or NULL pointer.

/// Run `$body` (a block evaluating to `Result<(), adamant_status>`) and return its status;
/// a panic becomes `adamant_status::Panic`.
macro_rules! ffi_boundary {
    ($body:block) => {{
        let r = ::std::panic::catch_unwind(::std::panic::AssertUnwindSafe(
            || -> ::core::result::Result<(), $crate::status::adamant_status> { $body },
        ));
        match r {
            Ok(Ok(())) => $crate::status::adamant_status::Ok,
            Ok(Err(s)) => s,
            Err(_) => $crate::status::adamant_status::Panic,
        }
    }};
}

/// `&T` from a `*const T`, or return `Err(NullPointer)` / `Err(Misaligned)`.
macro_rules! try_ref {
    ($p:expr) => {{
        let p = $p;
        if p.is_null() {
            return Err($crate::status::adamant_status::NullPointer);
        }
        if !p.is_aligned() {
            return Err($crate::status::adamant_status::Misaligned);
        }
        // SAFETY: non-NULL and aligned (checked above); the caller promises it points to a
        // live, initialised value that nothing writes during the call (documented on every
        // entry point).
        unsafe { &*p }
    }};
}

/// A slice from `(ptr, len)`, or return the status of [`slice_from`]'s checks.
macro_rules! try_slice {
    ($p:expr, $len:expr) => {{
        // SAFETY: the caller of the entry point promises `len` readable elements at `p`.
        unsafe { $crate::boundary::slice_from($p, $len) }?
    }};
}

/// A shared slice from a C `(ptr, len)` pair: empty when `len == 0` (any pointer), else
/// `NullPointer` for NULL, `Misaligned` when `ptr` is not aligned for `T`, `LengthTooLarge`
/// when the byte length passes `isize::MAX`.
///
/// # Safety
/// When the checks pass, `ptr` must point to `len` initialised `T` that nothing writes while
/// the returned slice lives.
pub(crate) unsafe fn slice_from<'a, T>(
    ptr: *const T,
    len: usize,
) -> Result<&'a [T], crate::status::adamant_status> {
    use crate::status::adamant_status as S;
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(S::NullPointer);
    }
    if !ptr.is_aligned() {
        return Err(S::Misaligned);
    }
    let size = core::mem::size_of::<T>().max(1);
    if len > (isize::MAX as usize) / size || ptr.addr().checked_add(len * size).is_none() {
        return Err(S::LengthTooLarge);
    }
    // SAFETY: non-NULL, aligned, byte length within isize and the address space (checked);
    // validity of the memory is the caller's promise.
    Ok(unsafe { core::slice::from_raw_parts(ptr, len) })
}

/// Check that an `out_*` pointer is non-NULL and aligned for its type, without writing it.
macro_rules! try_out {
    ($p:expr) => {{
        let p = $p;
        if p.is_null() {
            return Err($crate::status::adamant_status::NullPointer);
        }
        if !p.is_aligned() {
            return Err($crate::status::adamant_status::Misaligned);
        }
        p
    }};
}

#[cfg(test)]
mod tests {
    use crate::status::adamant_status;

    /// An entry point shaped like the real ones whose body panics after its checks.
    extern "C" fn panics_inside(out: *mut u32) -> adamant_status {
        ffi_boundary!({
            let out = try_out!(out);
            let v: Vec<u32> = Vec::new();
            // An out-of-bounds index: the kind of bug the boundary exists for.
            let x = v[usize::from(out.is_null()) + 3];
            // SAFETY: not reached.
            unsafe { out.write(x) };
            Ok(())
        })
    }

    #[test]
    fn spec_panic_becomes_status_and_writes_nothing() {
        let mut out = 7u32;
        assert_eq!(panics_inside(&mut out), adamant_status::Panic);
        assert_eq!(out, 7);
        assert_eq!(
            panics_inside(core::ptr::null_mut()),
            adamant_status::NullPointer
        );
    }
}
