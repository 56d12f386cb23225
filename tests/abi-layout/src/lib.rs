//! The C view of `include/adamant.h`, as bindgen reads it. Tests compare it with
//! `adamant_ffi`'s Rust definitions.
#![allow(
    non_camel_case_types,
    non_upper_case_globals,
    non_snake_case,
    dead_code,
    missing_docs
)]
#![allow(clippy::all)]

/// bindgen's translation of the committed header.
pub mod c {
    include!(concat!(env!("OUT_DIR"), "/adamant_h.rs"));
}
