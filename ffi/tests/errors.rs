//! Every status code, triggered through the C ABI; after every error, every byte of every
//! buffer the call could touch (and the `out_*` values) is unchanged.

mod common;
use adamant::*;
use core::ffi::c_void;

const N: usize = 8;
/// Bytes per region of the arena (room for N f32 plus slack for misaligned views).
const REGION: usize = 64;
const REGIONS: usize = 8;

/// One arena holding every buffer of a call, so one snapshot covers all of them.
struct Arena {
    mem: Vec<u64>,
}

impl Arena {
    fn new() -> Arena {
        let mut rng = common::Rng(42);
        let mut mem = vec![0u64; REGION * REGIONS / 8];
        // Finite f32 pairs in every word, so a plain step would change them.
        for w in mem.iter_mut() {
            let a = (rng.float(1.0)).to_bits() as u64;
            let b = (rng.float(1.0)).to_bits() as u64;
            *w = a | (b << 32);
        }
        Arena { mem }
    }
    /// Address of byte `off` of region `r`.
    fn at(&mut self, r: usize, off: usize) -> *mut c_void {
        // SAFETY: in bounds (r < REGIONS, off < REGION - N*4 in every use).
        unsafe {
            (self.mem.as_mut_ptr() as *mut u8)
                .add(r * REGION + off)
                .cast()
        }
    }
    fn f32(&mut self, r: usize) -> adamant_tensor {
        adamant_tensor {
            data: self.at(r, 0),
            dtype: adamant_dtype::F32 as u32,
            len: N,
        }
    }
    fn snapshot(&self) -> Vec<u64> {
        self.mem.clone()
    }
}

fn c(t: adamant_tensor) -> adamant_const_tensor {
    adamant_const_tensor {
        data: t.data,
        dtype: t.dtype,
        len: t.len,
    }
}

/// An AdamW call on views from the arena: param 0, grad 1, exp_avg 2, exp_avg_sq 3.
struct Call {
    cfg: adamant_adam_config,
    opt: adamant_step_options,
    step: u64,
    p: adamant_tensor,
    g: adamant_const_tensor,
    m: adamant_tensor,
    v: adamant_tensor,
}

fn call(a: &mut Arena) -> Call {
    Call {
        cfg: adamant_adamw_config_default(),
        opt: adamant_step_options_default(),
        step: 0,
        p: a.f32(0),
        g: c(a.f32(1)),
        m: a.f32(2),
        v: a.f32(3),
    }
}

/// Run AdamW and check the status; on error, that nothing in the arena or `out_step` changed.
fn adamw(a: &mut Arena, k: &Call, want: adamant_status) {
    adamw_out(a, k, None, want)
}

fn adamw_out(a: &mut Arena, k: &Call, out: Option<*mut u64>, want: adamant_status) {
    let before = a.snapshot();
    let mut local = 0xABCD_u64;
    let out = out.unwrap_or(&mut local);
    // SAFETY: every view points into the arena (or is deliberately invalid in a way the ABI
    // detects before dereferencing); `out` is a local or in the arena.
    let s = unsafe { adamant_adamw_step(&k.cfg, &k.opt, k.step, k.p, k.g, k.m, k.v, out) };
    assert_eq!(s, want);
    if want != adamant_status::Ok {
        assert!(a.mem == before, "buffers written on {want:?}");
        assert_eq!(local, 0xABCD, "out_step written on {want:?}");
    } else {
        assert!(a.mem != before, "a valid step must write");
    }
}

#[test]
fn sanity_valid_call_writes() {
    let mut a = Arena::new();
    let k = call(&mut a);
    adamw(&mut a, &k, adamant_status::Ok);
}

#[test]
fn null_pointer() {
    let mut a = Arena::new();
    let k = call(&mut a);
    let before = a.snapshot();
    let mut out = 5u64;
    // SAFETY: NULL struct pointers are detected before any read.
    unsafe {
        let s = adamant_adamw_step(core::ptr::null(), &k.opt, 0, k.p, k.g, k.m, k.v, &mut out);
        assert_eq!(s, adamant_status::NullPointer);
        let s = adamant_adamw_step(&k.cfg, core::ptr::null(), 0, k.p, k.g, k.m, k.v, &mut out);
        assert_eq!(s, adamant_status::NullPointer);
        let s = adamant_adamw_step(&k.cfg, &k.opt, 0, k.p, k.g, k.m, k.v, core::ptr::null_mut());
        assert_eq!(s, adamant_status::NullPointer);
        // Arrays NULL with count > 0.
        let s = adamant_adamw_step_multi(
            &k.cfg,
            &k.opt,
            0,
            core::ptr::null(),
            core::ptr::null(),
            core::ptr::null(),
            core::ptr::null(),
            2,
            &mut out,
        );
        assert_eq!(s, adamant_status::NullPointer);
        let mut r = 1.0f32;
        assert_eq!(
            adamant_reduce(k.g, 0, core::ptr::null_mut()),
            adamant_status::NullPointer
        );
        assert_eq!(
            adamant_reduce_combine(core::ptr::null(), 3, &mut r),
            adamant_status::NullPointer
        );
        assert_eq!(r, 1.0);
    }
    assert_eq!(out, 5);
    assert!(a.mem == before);
    for which in 0..4 {
        let mut k = call(&mut a);
        match which {
            0 => k.p.data = core::ptr::null_mut(),
            1 => k.g.data = core::ptr::null(),
            2 => k.m.data = core::ptr::null_mut(),
            _ => k.v.data = core::ptr::null_mut(),
        }
        adamw(&mut a, &k, adamant_status::NullPointer);
    }
    // NULL with len 0 is an empty view, not an error.
    let mut k = call(&mut a);
    for t in [&mut k.p, &mut k.m, &mut k.v] {
        t.data = core::ptr::null_mut();
        t.len = 0;
    }
    k.g.data = core::ptr::null();
    k.g.len = 0;
    let mut out = 0;
    // SAFETY: empty views are never dereferenced.
    let s = unsafe { adamant_adamw_step(&k.cfg, &k.opt, 0, k.p, k.g, k.m, k.v, &mut out) };
    assert_eq!(s, adamant_status::Ok);
    assert_eq!(out, 1);
}

#[test]
fn length_mismatch() {
    let mut a = Arena::new();
    for which in 0..4 {
        let mut k = call(&mut a);
        match which {
            0 => k.p.len -= 1,
            1 => k.g.len += 1,
            2 => k.m.len = 0,
            _ => k.v.len = 3,
        }
        adamw(&mut a, &k, adamant_status::LengthMismatch);
    }
    // SGD without momentum takes an empty buffer: a full one is a mismatch.
    let k = call(&mut a);
    let cfg = adamant_sgd_config_default();
    let before = a.snapshot();
    let mut out = 9;
    // SAFETY: views into the arena.
    let s = unsafe { adamant_sgd_step(&cfg, &k.opt, 0, k.p, k.g, k.m, &mut out) };
    assert_eq!(s, adamant_status::LengthMismatch);
    // Partials of the wrong count.
    let mut parts = [7.0f32; 2];
    // SAFETY: parts holds 2 floats.
    let s = unsafe { adamant_reduce_partials(k.g, 1, parts.as_mut_ptr(), 2) };
    assert_eq!(s, adamant_status::LengthMismatch);
    assert_eq!(parts, [7.0; 2]);
    assert!(a.mem == before && out == 9);
}

#[test]
fn length_mismatch_in_a_later_tensor_writes_no_earlier_one() {
    let mut a = Arena::new();
    let k = call(&mut a);
    let p = [k.p, a.f32(4)];
    let g = [k.g, c(a.f32(5))];
    let m = [k.m, a.f32(6)];
    let mut v = [k.v, a.f32(7)];
    v[1].len = N - 1;
    let before = a.snapshot();
    let mut out = 3;
    // SAFETY: arrays of views into the arena.
    let s = unsafe {
        adamant_adamw_step_multi(
            &k.cfg,
            &k.opt,
            0,
            p.as_ptr(),
            g.as_ptr(),
            m.as_ptr(),
            v.as_ptr(),
            2,
            &mut out,
        )
    };
    assert_eq!(s, adamant_status::LengthMismatch);
    assert!(a.mem == before && out == 3);
}

#[test]
fn misaligned() {
    let mut a = Arena::new();
    for (which, off) in [(0, 1), (1, 2), (2, 3), (3, 2)] {
        let mut k = call(&mut a);
        match which {
            0 => k.p.data = a.at(0, off),
            1 => k.g.data = a.at(1, off),
            2 => k.m.data = a.at(2, off),
            _ => k.v.data = a.at(3, off),
        }
        adamw(&mut a, &k, adamant_status::Misaligned);
    }
    // bf16 at an odd address.
    let mut k = call(&mut a);
    k.p.dtype = adamant_dtype::Bf16 as u32;
    k.p.data = a.at(0, 1);
    adamw(&mut a, &k, adamant_status::Misaligned);
    // bf16 at an even, non-multiple-of-4 address is fine.
    let mut k = call(&mut a);
    k.p.dtype = adamant_dtype::Bf16 as u32;
    k.p.data = a.at(0, 2);
    adamw(&mut a, &k, adamant_status::Ok);
    // A misaligned out_step (inside region 5, unused by the call).
    let k = call(&mut a);
    let out = a.at(5, 4) as *mut u64;
    adamw_out(&mut a, &k, Some(out), adamant_status::Misaligned);
}

#[test]
fn overlap() {
    let mut a = Arena::new();
    // The two moments share memory.
    let mut k = call(&mut a);
    k.v = k.m;
    adamw(&mut a, &k, adamant_status::Overlap);
    // The gradient starts inside the parameter.
    let mut k = call(&mut a);
    k.g.data = a.at(0, 8);
    adamw(&mut a, &k, adamant_status::Overlap);
    // In place: param and grad are the same buffer (param is written).
    let mut k = call(&mut a);
    k.g = c(k.p);
    adamw(&mut a, &k, adamant_status::Overlap);
    // out_step inside exp_avg.
    let k = call(&mut a);
    let out = a.at(2, 8) as *mut u64;
    adamw_out(&mut a, &k, Some(out), adamant_status::Overlap);
    // Multi: tensor 1's parameter is tensor 0's exp_avg.
    let k = call(&mut a);
    let p = [k.p, k.m];
    let g = [k.g, c(a.f32(5))];
    let m = [k.m, a.f32(6)];
    let v = [k.v, a.f32(7)];
    let before = a.snapshot();
    let mut out = 1;
    // SAFETY: arrays of views into the arena.
    let s = unsafe {
        adamant_adamw_step_multi(
            &k.cfg,
            &k.opt,
            0,
            p.as_ptr(),
            g.as_ptr(),
            m.as_ptr(),
            v.as_ptr(),
            2,
            &mut out,
        )
    };
    assert_eq!(s, adamant_status::Overlap);
    assert!(a.mem == before && out == 1);
    // Two read-only views may overlap (the same gradient twice is harmless).
    let x = c(a.f32(1));
    let xs = [x, x];
    let mut flag = 9;
    // SAFETY: array of two valid views.
    assert_eq!(
        unsafe { adamant_all_finite(xs.as_ptr(), 2, &mut flag) },
        adamant_status::Ok
    );
    assert_eq!(flag, 1);
    // A reduction's output inside its input.
    let before = a.snapshot();
    let out = a.at(1, 4) as *mut f32;
    // SAFETY: valid view and aligned out pointer.
    assert_eq!(
        unsafe { adamant_reduce(x, 1, out) },
        adamant_status::Overlap
    );
    assert!(a.mem == before);
}

#[test]
fn invalid_enum() {
    let mut a = Arena::new();
    for bad in [3u32, 4, 255, u32::MAX] {
        let mut k = call(&mut a);
        k.p.dtype = bad;
        adamw(&mut a, &k, adamant_status::InvalidEnum);
        let mut k = call(&mut a);
        k.g.dtype = bad;
        adamw(&mut a, &k, adamant_status::InvalidEnum);
    }
    let flags: [fn(&mut Call); 4] = [
        |k| k.opt.has_grad_scale = 2,
        |k| k.opt.has_clip_coef = u32::MAX,
        |k| k.opt.check_finite = 7,
        |k| k.cfg.stochastic_rounding = 2,
    ];
    for f in flags {
        let mut k = call(&mut a);
        f(&mut k);
        adamw(&mut a, &k, adamant_status::InvalidEnum);
    }
    let mut sgd = adamant_sgd_config_default();
    sgd.nesterov = 3;
    let k = call(&mut a);
    let mut out = 4;
    // SAFETY: valid views.
    let s = unsafe { adamant_sgd_step(&sgd, &k.opt, 0, k.p, k.g, common::empty_view(), &mut out) };
    assert_eq!(s, adamant_status::InvalidEnum);
    let mut r = 2.0f32;
    // SAFETY: valid view and out pointer.
    assert_eq!(
        unsafe { adamant_reduce(k.g, 2, &mut r) },
        adamant_status::InvalidEnum
    );
    let mut parts = [5.0f32; 1];
    // SAFETY: parts holds 1 float.
    assert_eq!(
        unsafe { adamant_reduce_partials(k.g, 9, parts.as_mut_ptr(), 1) },
        adamant_status::InvalidEnum
    );
    let mut s = adamant_schedule_default();
    s.decay = 4;
    let mut lr = -1.0;
    // SAFETY: valid pointers.
    assert_eq!(
        unsafe { adamant_schedule_lr(&s, 0, &mut lr) },
        adamant_status::InvalidEnum
    );
    assert_eq!((out, r, parts[0], lr), (4, 2.0, 5.0, -1.0));
}

#[test]
fn invalid_config() {
    let mut a = Arena::new();
    let bad: [fn(&mut Call); 10] = [
        |k| k.cfg.beta1 = 1.0,
        |k| k.cfg.beta2 = -0.1,
        |k| k.cfg.eps = 0.0,
        |k| k.cfg.weight_decay = f64::NAN,
        |k| k.opt.lr = -1.0,
        |k| k.opt.lr = f64::INFINITY,
        |k| {
            k.opt.has_grad_scale = 1;
            k.opt.grad_scale = 0.0
        },
        |k| {
            k.opt.has_clip_coef = 1;
            k.opt.clip_coef = -1.0
        },
        |k| {
            k.opt.has_clip_coef = 1;
            k.opt.clip_coef = f32::NAN
        },
        |k| k.cfg.beta1 = f64::NAN,
    ];
    for f in bad {
        let mut k = call(&mut a);
        f(&mut k);
        adamw(&mut a, &k, adamant_status::InvalidConfig);
    }
    // Nesterov without momentum.
    let mut sgd = adamant_sgd_config_default();
    sgd.nesterov = 1;
    let k = call(&mut a);
    let before = a.snapshot();
    let mut out = 4;
    // SAFETY: valid views.
    let s = unsafe { adamant_sgd_step(&sgd, &k.opt, 0, k.p, k.g, common::empty_view(), &mut out) };
    assert_eq!(s, adamant_status::InvalidConfig);
    assert!(a.mem == before && out == 4);
    // A schedule whose warm-up outlasts it; step scalars for t = 0.
    let mut sch = adamant_schedule_default();
    sch.decay = adamant_decay::Cosine as u32;
    sch.warmup_steps = 10;
    sch.total_steps = 5;
    let mut lr = -1.0;
    // SAFETY: valid pointers.
    assert_eq!(
        unsafe { adamant_schedule_lr(&sch, 0, &mut lr) },
        adamant_status::InvalidConfig
    );
    assert_eq!(lr, -1.0);
    let mut ks = std::mem::MaybeUninit::<adamant_adam_scalars>::zeroed();
    // SAFETY: writable struct.
    let s = unsafe { adamant_adamw_step_scalars(&k.cfg, 1e-3, 0, ks.as_mut_ptr()) };
    assert_eq!(s, adamant_status::InvalidConfig);
    let (mut cc, mut nn) = (3.0f32, 3.0f32);
    // SAFETY: distinct locals.
    let s = unsafe { adamant_clip_coef_global_norm(1.0, 0.0, 1e-6, &mut cc, &mut nn) };
    assert_eq!(s, adamant_status::InvalidConfig);
    assert_eq!((cc, nn), (3.0, 3.0));
}

#[test]
fn unsupported_dtype() {
    let mut a = Arena::new();
    // f16 states are not allowed.
    let mut k = call(&mut a);
    k.m.dtype = adamant_dtype::F16 as u32;
    k.v.dtype = adamant_dtype::F16 as u32;
    adamw(&mut a, &k, adamant_status::UnsupportedDtype);
    // The two moments must share a dtype.
    let mut k = call(&mut a);
    k.v.dtype = adamant_dtype::Bf16 as u32;
    adamw(&mut a, &k, adamant_status::UnsupportedDtype);
}

#[test]
fn skipped_found_inf() {
    let mut a = Arena::new();
    let mut k = call(&mut a);
    k.opt.found_inf = 1;
    adamw(&mut a, &k, adamant_status::SkippedFoundInf);
    k.opt.found_inf = 0x8000_0000;
    adamw(&mut a, &k, adamant_status::SkippedFoundInf);
}

#[test]
fn skipped_non_finite() {
    let mut a = Arena::new();
    // One infinite gradient element in the last tensor of a multi call: nothing anywhere is
    // written, with finite-checking asked for or implied by a loss scale.
    let inf = f32::INFINITY.to_bits() as u64;
    a.mem[(5 * REGION) / 8 + 3] = inf | (inf << 32);
    for implied in [false, true] {
        let mut k = call(&mut a);
        if implied {
            k.opt.has_grad_scale = 1;
            k.opt.grad_scale = 512.0;
        } else {
            k.opt.check_finite = 1;
        }
        let p = [k.p, a.f32(4)];
        let g = [k.g, c(a.f32(5))];
        let m = [k.m, a.f32(6)];
        let v = [k.v, a.f32(7)];
        let before = a.snapshot();
        let mut out = 77;
        // SAFETY: arrays of views into the arena.
        let s = unsafe {
            adamant_adamw_step_multi(
                &k.cfg,
                &k.opt,
                0,
                p.as_ptr(),
                g.as_ptr(),
                m.as_ptr(),
                v.as_ptr(),
                2,
                &mut out,
            )
        };
        assert_eq!(s, adamant_status::SkippedNonFinite);
        assert!(a.mem == before && out == 77);
    }
    // Without checking the step goes ahead (and the NaNs propagate, canonical).
    let k = call(&mut a);
    let p = [k.p, a.f32(4)];
    let g = [k.g, c(a.f32(5))];
    let m = [k.m, a.f32(6)];
    let v = [k.v, a.f32(7)];
    let mut out = 77;
    // SAFETY: as above.
    let s = unsafe {
        adamant_adamw_step_multi(
            &k.cfg,
            &k.opt,
            0,
            p.as_ptr(),
            g.as_ptr(),
            m.as_ptr(),
            v.as_ptr(),
            2,
            &mut out,
        )
    };
    assert_eq!(s, adamant_status::Ok);
    // Global-norm clipping of a non-finite norm.
    let (mut cc, mut nn) = (3.0f32, 3.0f32);
    // SAFETY: distinct locals.
    let s = unsafe { adamant_clip_coef_global_norm(f32::INFINITY, 1.0, 1e-6, &mut cc, &mut nn) };
    assert_eq!(s, adamant_status::SkippedNonFinite);
    assert_eq!((cc, nn), (3.0, 3.0));
}

#[test]
fn step_overflow() {
    let mut a = Arena::new();
    let mut k = call(&mut a);
    k.step = u64::MAX;
    adamw(&mut a, &k, adamant_status::StepOverflow);
    k.step = u64::MAX - 1;
    adamw(&mut a, &k, adamant_status::Ok);
}

#[test]
fn length_too_large() {
    let mut a = Arena::new();
    for len in [usize::MAX, usize::MAX / 4 + 1, isize::MAX as usize] {
        let mut k = call(&mut a);
        for t in [&mut k.p, &mut k.m, &mut k.v] {
            t.len = len;
        }
        k.g.len = len;
        adamw(&mut a, &k, adamant_status::LengthTooLarge);
    }
}

#[test]
fn status_strings_are_static_and_distinct() {
    let mut seen = std::collections::HashSet::new();
    for s in adamant_status::ALL {
        // SAFETY: static NUL-terminated strings.
        let m = unsafe { std::ffi::CStr::from_ptr(adamant_status_string(s as u32)) };
        assert!(!m.to_bytes().is_empty());
        assert!(seen.insert(m.to_owned()), "duplicate message {m:?}");
    }
    for v in [15u32, 1000, u32::MAX] {
        // SAFETY: static NUL-terminated string.
        let m = unsafe { std::ffi::CStr::from_ptr(adamant_status_string(v)) };
        assert_eq!(m.to_str().unwrap(), "unknown status code");
    }
}
