//! Every error path of the Adam-mini and AdaGC entry points, through the C ABI: each returns
//! its status and leaves every byte of every buffer the call could touch (and its `out_*`
//! values, which live in the same arena) unchanged.

mod common;
use adamant::*;
use core::ffi::c_void;

const N: usize = 8;
const REGION: usize = 64;
const REGIONS: usize = 8;

/// One arena for every buffer of a call: region 0 param, 1 grad, 2 exp_avg, 3 exp_avg_sq,
/// 4 outputs (`out_step` at byte 0, floats from byte 8), 5 sums, 6 gamma, 7 spare.
struct Arena {
    mem: Vec<u64>,
}

impl Arena {
    fn new() -> Arena {
        let mut rng = common::Rng(7);
        let mem = (0..REGION * REGIONS / 8)
            .map(|_| {
                let a = rng.float(1.0).abs().to_bits() as u64;
                let b = rng.float(1.0).abs().to_bits() as u64;
                a | (b << 32)
            })
            .collect();
        Arena { mem }
    }
    fn at(&mut self, r: usize, off: usize) -> *mut c_void {
        // SAFETY: in bounds for every use (r < REGIONS, off + 32 < REGION).
        unsafe {
            (self.mem.as_mut_ptr() as *mut u8)
                .add(r * REGION + off)
                .cast()
        }
    }
    fn t(&mut self, r: usize, len: usize) -> adamant_tensor {
        adamant_tensor {
            data: self.at(r, 0),
            dtype: adamant_dtype::F32 as u32,
            len,
        }
    }
}

fn c(t: adamant_tensor) -> adamant_const_tensor {
    adamant_const_tensor {
        data: t.data,
        dtype: t.dtype,
        len: t.len,
    }
}

/// The arguments of an Adam-mini call, each tweakable.
#[derive(Clone, Copy)]
struct Mini {
    config: adamant_adam_mini_config,
    options: adamant_step_options,
    layout: adamant_block_layout,
    step: u64,
    p: adamant_tensor,
    g: adamant_tensor,
    m: adamant_tensor,
    v: adamant_tensor,
    out: *mut u64,
    null_config: bool,
    null_options: bool,
    null_layout: bool,
}

fn mini(a: &mut Arena) -> Mini {
    Mini {
        config: adamant_adam_mini_config_default(),
        options: adamant_step_options_default(),
        layout: adamant_block_layout {
            kind: adamant_block_kind::Rows as u32,
            block_len: 4,
            segments: core::ptr::null(),
            segment_count: 0,
            weight_decay: 1,
        },
        step: 3,
        p: a.t(0, N),
        g: a.t(1, N),
        m: a.t(2, N),
        v: a.t(3, 2),
        out: a.at(4, 0).cast(),
        null_config: false,
        null_options: false,
        null_layout: false,
    }
}

/// Run the single-tensor call and the one-element `_multi` call (each with its own clip
/// coefficient array) and check the status and that nothing changed.
fn check_mini(a: &mut Arena, k: &Mini, want: adamant_status) {
    let before = a.mem.clone();
    let cfg: *const _ = if k.null_config {
        core::ptr::null()
    } else {
        &k.config
    };
    let opt: *const _ = if k.null_options {
        core::ptr::null()
    } else {
        &k.options
    };
    let lay: *const _ = if k.null_layout {
        core::ptr::null()
    } else {
        &k.layout
    };
    // SAFETY: every non-NULL pointer is valid; the arena holds every view.
    let got =
        unsafe { adamant_adam_mini_step(cfg, opt, k.step, lay, k.p, c(k.g), k.m, k.v, k.out) };
    assert_eq!(got, want, "single");
    assert!(a.mem == before, "single call wrote on {want:?}");
    let (p, g, m, v) = ([k.p], [c(k.g)], [k.m], [k.v]);
    let coefs = [1.0f32];
    // SAFETY: as above; arrays of one element.
    let got = unsafe {
        adamant_adam_mini_step_multi(
            cfg,
            opt,
            k.step,
            lay,
            p.as_ptr(),
            g.as_ptr(),
            m.as_ptr(),
            v.as_ptr(),
            coefs.as_ptr(),
            1,
            k.out,
        )
    };
    assert_eq!(got, want, "multi");
    assert!(a.mem == before, "multi call wrote on {want:?}");
}

#[test]
fn adam_mini_valid_call_writes() {
    let mut a = Arena::new();
    let k = mini(&mut a);
    let before = a.mem.clone();
    // SAFETY: valid arena views.
    let st = unsafe {
        adamant_adam_mini_step(
            &k.config,
            &k.options,
            k.step,
            &k.layout,
            k.p,
            c(k.g),
            k.m,
            k.v,
            k.out,
        )
    };
    assert_eq!(st, adamant_status::Ok);
    assert!(a.mem != before);
    assert_eq!(a.mem[REGION * 4 / 8], 4);
}

#[test]
fn adam_mini_every_error_writes_nothing() {
    use adamant_status as S;
    let mut a = Arena::new();
    let base = mini(&mut a);
    let mut cases: Vec<(Mini, S)> = Vec::new();
    let mut add = |f: &dyn Fn(&mut Mini), s: S| {
        let mut k = base;
        f(&mut k);
        cases.push((k, s));
    };
    add(&|k| k.null_config = true, S::NullPointer);
    add(&|k| k.null_options = true, S::NullPointer);
    add(&|k| k.null_layout = true, S::NullPointer);
    add(&|k| k.out = core::ptr::null_mut(), S::NullPointer);
    add(&|k| k.p.data = core::ptr::null_mut(), S::NullPointer);
    add(
        &|k| {
            k.layout.kind = 4;
            k.layout.segment_count = 1;
        },
        S::NullPointer,
    );
    add(&|k| k.layout.kind = 5, S::InvalidEnum);
    add(&|k| k.layout.weight_decay = 2, S::InvalidEnum);
    add(&|k| k.config.stochastic_rounding = 2, S::InvalidEnum);
    add(&|k| k.options.has_clip_coef = 7, S::InvalidEnum);
    add(&|k| k.g.dtype = 9, S::InvalidEnum);
    add(&|k| k.layout.block_len = 3, S::LengthMismatch);
    add(&|k| k.layout.block_len = 0, S::LengthMismatch);
    add(&|k| k.v.len = 3, S::LengthMismatch);
    add(&|k| k.g.len = 7, S::LengthMismatch);
    add(&|k| k.m.len = 9, S::LengthMismatch);
    add(&|k| k.p.data = k.p.data.wrapping_byte_add(2), S::Misaligned);
    add(&|k| k.out = k.out.wrapping_byte_add(4), S::Misaligned);
    add(&|k| k.m.data = k.p.data, S::Overlap);
    add(&|k| k.v.data = k.m.data.wrapping_byte_add(4), S::Overlap);
    add(&|k| k.out = k.v.data.cast(), S::Overlap);
    add(&|k| k.config.beta1 = 1.0, S::InvalidConfig);
    add(&|k| k.config.eps = 0.0, S::InvalidConfig);
    add(&|k| k.config.weight_decay = -1.0, S::InvalidConfig);
    add(&|k| k.options.lr = f64::NAN, S::InvalidConfig);
    add(
        &|k| {
            k.options.has_grad_scale = 1;
            k.options.grad_scale = 0.0;
        },
        S::InvalidConfig,
    );
    add(
        &|k| k.m.dtype = adamant_dtype::F16 as u32,
        S::UnsupportedDtype,
    );
    add(
        &|k| k.m.dtype = adamant_dtype::Bf16 as u32,
        S::UnsupportedDtype,
    );
    add(&|k| k.options.found_inf = 1, S::SkippedFoundInf);
    add(&|k| k.step = u64::MAX, S::StepOverflow);
    add(&|k| k.p.len = usize::MAX / 2, S::LengthTooLarge);
    for (k, s) in &cases {
        check_mini(&mut a, k, *s);
    }
    // Segments that do not cover the tensor, or whose block length does not divide.
    for segs in [
        [
            adamant_block_segment {
                len: 4,
                block_len: 4,
            },
            adamant_block_segment {
                len: 3,
                block_len: 0,
            },
        ],
        [
            adamant_block_segment {
                len: 6,
                block_len: 4,
            },
            adamant_block_segment {
                len: 2,
                block_len: 0,
            },
        ],
        [
            adamant_block_segment {
                len: 8,
                block_len: 4,
            },
            adamant_block_segment {
                len: 0,
                block_len: 0,
            },
        ],
    ] {
        let mut k = base;
        k.layout.kind = 4;
        k.layout.segments = segs.as_ptr();
        k.layout.segment_count = 2;
        check_mini(&mut a, &k, S::LengthMismatch);
    }
    // A non-finite gradient with finite-checking on.
    let mut k = base;
    k.options.check_finite = 1;
    // SAFETY: region 1 byte 8 is inside the gradient view.
    unsafe { a.at(1, 8).cast::<f32>().write(f32::NAN) };
    check_mini(&mut a, &k, S::SkippedNonFinite);
    assert_eq!(cases.len(), 31);
}

#[test]
fn adam_mini_multi_bad_clip_coefs_and_arrays() {
    let mut a = Arena::new();
    let k = mini(&mut a);
    let (p, g, m, v) = ([k.p], [c(k.g)], [k.m], [k.v]);
    let l = [k.layout];
    for (coef, want) in [
        (f32::NAN, adamant_status::InvalidConfig),
        (-0.5, adamant_status::InvalidConfig),
        (f32::INFINITY, adamant_status::InvalidConfig),
    ] {
        let before = a.mem.clone();
        let coefs = [coef];
        // SAFETY: valid arrays of one element.
        let st = unsafe {
            adamant_adam_mini_step_multi(
                &k.config,
                &k.options,
                0,
                l.as_ptr(),
                p.as_ptr(),
                g.as_ptr(),
                m.as_ptr(),
                v.as_ptr(),
                coefs.as_ptr(),
                1,
                k.out,
            )
        };
        assert_eq!(st, want);
        assert!(a.mem == before);
    }
    let before = a.mem.clone();
    // SAFETY: NULL arrays with count 1 are rejected before any read.
    let st = unsafe {
        adamant_adam_mini_step_multi(
            &k.config,
            &k.options,
            0,
            core::ptr::null(),
            p.as_ptr(),
            g.as_ptr(),
            m.as_ptr(),
            v.as_ptr(),
            core::ptr::null(),
            1,
            k.out,
        )
    };
    assert_eq!(st, adamant_status::NullPointer);
    assert!(a.mem == before);
}

#[test]
fn adam_mini_sharded_phase_errors() {
    use adamant_status as S;
    let mut a = Arena::new();
    let k = mini(&mut a);
    let parts: *mut f32 = a.at(4, 8).cast();
    let before = a.mem.clone();
    // SAFETY: every pointer is valid or deliberately NULL/misaligned/overlapping.
    unsafe {
        assert_eq!(
            adamant_adam_mini_partials(core::ptr::null(), c(k.g), parts, 1),
            S::NullPointer
        );
        assert_eq!(
            adamant_adam_mini_partials(&k.options, c(k.g), parts, 2),
            S::LengthMismatch
        );
        assert_eq!(
            adamant_adam_mini_partials(&k.options, c(k.g), parts.wrapping_byte_add(1), 1),
            S::Misaligned
        );
        assert_eq!(
            adamant_adam_mini_partials(&k.options, c(k.g), k.g.data.cast(), 1),
            S::Overlap
        );
        let mut bad = k.options;
        bad.has_grad_scale = 3;
        assert_eq!(
            adamant_adam_mini_partials(&bad, c(k.g), parts, 1),
            S::InvalidEnum
        );
    }
    assert!(a.mem == before);
    let v1 = a.t(3, 1);
    let step = |a: &Arena, sum: f32, count: u64, wd: u32, v: adamant_tensor, s: u64, want: S| {
        let before = a.mem.clone();
        // SAFETY: valid arena views.
        let got = unsafe {
            adamant_adam_mini_block_step(
                &k.config,
                &k.options,
                s,
                sum,
                count,
                0,
                wd,
                k.p,
                c(k.g),
                k.m,
                v,
                k.out,
            )
        };
        assert_eq!(got, want);
        assert!(a.mem == before);
    };
    step(&a, 1.0, 8, 1, k.v, 0, S::LengthMismatch); // exp_avg_sq holds 2, not 1
    step(&a, 1.0, 7, 1, v1, 0, S::LengthMismatch); // piece longer than the block
    step(&a, 1.0, 0, 1, v1, 0, S::InvalidConfig);
    step(&a, 1.0, 8, 2, v1, 0, S::InvalidEnum);
    step(&a, 1.0, 8, 1, v1, u64::MAX, S::StepOverflow);
    // Sanity: the same call with valid arguments writes.
    let before = a.mem.clone();
    // SAFETY: valid arena views.
    let got = unsafe {
        adamant_adam_mini_block_step(
            &k.config,
            &k.options,
            0,
            1.0,
            8,
            0,
            1,
            k.p,
            c(k.g),
            k.m,
            v1,
            k.out,
        )
    };
    assert_eq!(got, S::Ok);
    assert!(a.mem != before);
}

#[test]
fn adagc_every_error_writes_nothing() {
    use adamant_status as S;
    let mut a = Arena::new();
    let sums: *mut f32 = a.at(5, 0).cast();
    let gamma: *mut f32 = a.at(6, 0).cast();
    let coefs: *mut f32 = a.at(4, 8).cast();
    let norm: *mut f32 = a.at(4, 48).cast();
    let out_step: *mut u64 = a.at(4, 0).cast();
    let cfg = adamant_adagc_config_default();
    let n = 4usize;
    #[derive(Clone, Copy)]
    struct K {
        cfg: adamant_adagc_config,
        step: u64,
        sums: *mut f32,
        count: usize,
        gamma: *mut f32,
        gamma_len: usize,
        coefs: *mut f32,
        norm: *mut f32,
        out_step: *mut u64,
    }
    let base = K {
        cfg,
        step: 5,
        sums,
        count: n,
        gamma,
        gamma_len: n,
        coefs,
        norm,
        out_step,
    };
    let run = |a: &Arena, k: K, want_coefs: S, want_commit: S| {
        let before = a.mem.clone();
        // SAFETY: arena pointers or deliberately bad ones, rejected before use.
        unsafe {
            let s = adamant_adagc_coefs(
                &k.cfg,
                k.step,
                k.sums,
                k.count,
                k.gamma,
                k.gamma_len,
                k.coefs,
                k.norm,
            );
            assert_eq!(s, want_coefs, "coefs");
            assert!(a.mem == before);
            let s = adamant_adagc_commit(
                &k.cfg,
                k.step,
                k.sums,
                k.count,
                k.gamma,
                k.gamma_len,
                k.out_step,
            );
            assert_eq!(s, want_commit, "commit");
            assert!(a.mem == before);
        }
    };
    let mut k = base;
    k.cfg.mode = 2;
    run(&a, k, S::InvalidEnum, S::InvalidEnum);
    let mut k = base;
    k.cfg.lambda_rel = 0.0;
    run(&a, k, S::InvalidConfig, S::InvalidConfig);
    let mut k = base;
    k.cfg.beta = 1.0;
    run(&a, k, S::InvalidConfig, S::InvalidConfig);
    let mut k = base;
    k.gamma_len = 3;
    run(&a, k, S::LengthMismatch, S::LengthMismatch);
    let mut k = base;
    k.cfg.mode = adamant_adagc_mode::Global as u32;
    run(&a, k, S::LengthMismatch, S::LengthMismatch);
    let mut k = base;
    k.step = u64::MAX;
    run(&a, k, S::StepOverflow, S::StepOverflow);
    let mut k = base;
    k.sums = core::ptr::null_mut();
    run(&a, k, S::NullPointer, S::NullPointer);
    let mut k = base;
    k.gamma = gamma.wrapping_byte_add(2);
    run(&a, k, S::Misaligned, S::Misaligned);
    let mut k = base;
    k.norm = norm.wrapping_byte_add(1);
    k.out_step = out_step.wrapping_byte_add(4);
    run(&a, k, S::Misaligned, S::Misaligned);
    let mut k = base;
    k.coefs = sums;
    k.out_step = gamma.cast();
    run(&a, k, S::Overlap, S::Overlap);
    // The written gamma of `commit` may not overlap the sums.
    let before = a.mem.clone();
    // SAFETY: arena pointers.
    let s = unsafe { adamant_adagc_commit(&cfg, 5, sums, n, sums.wrapping_add(2), n, out_step) };
    assert_eq!(s, S::Overlap);
    assert!(a.mem == before);
    let mut k = base;
    // SAFETY: inside region 5.
    unsafe { sums.add(1).write(f32::NAN) };
    k.step = 0;
    run(&a, k, S::SkippedNonFinite, S::SkippedNonFinite);
}
