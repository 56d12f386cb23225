//! Versions, status messages and dtype sizes.

use crate::status::message_ptr;
use core::ffi::c_char;

/// Major version of this library (also `ADAMANT_VERSION_MAJOR` in the header).
pub const VERSION_MAJOR: u32 = parse_u32(env!("CARGO_PKG_VERSION_MAJOR"));
/// Minor version.
pub const VERSION_MINOR: u32 = parse_u32(env!("CARGO_PKG_VERSION_MINOR"));
/// Patch version.
pub const VERSION_PATCH: u32 = parse_u32(env!("CARGO_PKG_VERSION_PATCH"));

const fn parse_u32(s: &str) -> u32 {
    let b = s.as_bytes();
    let mut i = 0;
    let mut v = 0u32;
    while i < b.len() {
        v = v * 10 + (b[i] - b'0') as u32;
        i += 1;
    }
    v
}

static VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");

/// The library's version as a static NUL-terminated string, e.g. `"0.1.0"`. Compare with
/// the header's `ADAMANT_VERSION_*` macros to detect a header/library mismatch.
#[no_mangle]
pub extern "C" fn adamant_version() -> *const c_char {
    VERSION.as_ptr().cast()
}

/// The numeric contract version the library implements (`ADAMANT_NUMERIC_CONTRACT_VERSION`
/// in the header): equal versions give bit-identical updates for equal inputs.
#[no_mangle]
pub extern "C" fn adamant_numeric_contract_version() -> u32 {
    adamant_core::NUMERIC_CONTRACT_VERSION
}

/// A static NUL-terminated description of a status code; never NULL. Unknown codes give
/// `"unknown status code"`.
#[no_mangle]
pub extern "C" fn adamant_status_string(status: u32) -> *const c_char {
    message_ptr(status)
}

/// Bytes per element of an `adamant_dtype` value (4, 2, 2), or 0 for an unknown value.
#[no_mangle]
pub extern "C" fn adamant_dtype_size(dtype: u32) -> usize {
    adamant_core::Dtype::from_u32(dtype).map_or(0, |d| d.size())
}
