//! Links adamant-core into a binary without std or alloc. If any crate in core's dependency
//! tree linked `std`, the panic handler below would be a duplicate lang item; if any linked
//! `alloc`, the link would fail for want of a global allocator.
#![no_std]
#![no_main]

use adamant_core::{bf16, Adam, AdamConfig, StepOptions};

// The C library provides `memcpy` and the start files (`__libc_start_main` calls `main`); it
// is not Rust's std.
#[link(name = "c")]
extern "C" {}

// The precompiled `core` of a hosted target refers to the unwinding personality routine even
// under `panic = "abort"`; nothing calls it here, so an empty definition satisfies the linker.
#[no_mangle]
pub extern "C" fn rust_eh_personality() {}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}

/// Entry point called by the C runtime: one AdamW step over stack buffers. Returns 0 when
/// the step applied and moved the parameters.
#[no_mangle]
pub extern "C" fn main(_argc: i32, _argv: *const *const u8) -> i32 {
    let mut opt = match Adam::new(AdamConfig::adamw()) {
        Ok(o) => o,
        Err(_) => return 2,
    };
    let mut p = [bf16::from_f32(1.0); 8];
    let g = [0.5f32; 8];
    let (mut m, mut v) = ([0.0f32; 8], [0.0f32; 8]);
    match opt.step(&mut p, &g, &mut m, &mut v, &StepOptions::new(1e-2)) {
        Ok(out) if out.applied() && p[0].to_f32() < 1.0 => 0,
        _ => 1,
    }
}
