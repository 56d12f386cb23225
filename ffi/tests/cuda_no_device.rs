//! The `adamant_cuda_*` entry points on a machine without an NVIDIA driver (this machine and
//! CI): valid calls return `ADAMANT_STATUS_NO_CUDA_DRIVER` and touch nothing; invalid
//! arguments return their own status first, exactly as the CPU ABI would.
//!
//! The "device" buffers here are host vectors: nothing may read or write them without a
//! driver, which the tests check by comparing their bits before and after each call. On a
//! machine with a GPU these tests fail on purpose (the first assertion says so): they are the
//! no-device contract, not a GPU test.

mod common;
use adamant::*;
use common::{cview, view};
use core::ffi::c_void;
use core::ptr::{null, null_mut};

/// `call` returns `status` (one line per checked call).
macro_rules! returns {
    ($call:expr => $status:expr) => {
        assert_eq!($call, $status, "{}", stringify!($call))
    };
}

const NO_DEVICE: adamant_status = adamant_status::NoCudaDriver;

/// Device-side scalars of a step, as host memory the tests can watch.
struct Scalars {
    lr: f32,
    step: u64,
    grad_scale: f32,
    clip: f32,
    found_inf: f32,
}

impl Scalars {
    fn new() -> Scalars {
        Scalars {
            lr: 1e-3,
            step: 7,
            grad_scale: 1024.0,
            clip: 0.5,
            found_inf: 0.0,
        }
    }
    fn args(&mut self, scale: bool, clip: bool, check: u32) -> adamant_cuda_step_args {
        adamant_cuda_step_args {
            lr: &self.lr,
            step: &mut self.step,
            grad_scale: if scale { &self.grad_scale } else { null() },
            clip_coef: if clip { &self.clip } else { null() },
            found_inf: &mut self.found_inf,
            check_finite: check,
        }
    }
    fn untouched(&self) {
        assert_eq!(self.lr.to_bits(), 1e-3f32.to_bits());
        assert_eq!(self.step, 7);
        assert_eq!(self.grad_scale, 1024.0);
        assert_eq!(self.clip, 0.5);
        assert_eq!(self.found_inf.to_bits(), 0);
    }
}

/// Four f32 buffers of `n` elements (param, grad, exp_avg, exp_avg_sq) with distinct bits.
fn bufs(n: usize) -> [Vec<f32>; 4] {
    let f = |k: f32| (0..n).map(|i| k + i as f32 * 0.25).collect::<Vec<f32>>();
    [f(1.0), f(-2.0), f(0.125), f(3.0)]
}

fn same(a: &[Vec<f32>], b: &[Vec<f32>]) {
    for (x, y) in a.iter().zip(b) {
        let xb: Vec<u32> = x.iter().map(|v| v.to_bits()).collect();
        let yb: Vec<u32> = y.iter().map(|v| v.to_bits()).collect();
        assert_eq!(xb, yb, "a buffer was written");
    }
}

/// A non-NULL stream handle that would be invalid if anything used it (nothing may without a
/// driver: the driver check comes before the stream is touched).
fn stream() -> *mut c_void {
    null_mut()
}

#[test]
fn spec_no_driver_here_and_probe_says_so() {
    assert_eq!(
        adamant_cuda_available(),
        NO_DEVICE,
        "these tests describe a machine without an NVIDIA driver; this one has one"
    );
    // The probe result is cached and stable.
    assert_eq!(adamant_cuda_available(), NO_DEVICE);
}

#[test]
fn spec_every_step_entry_point_returns_no_device_and_writes_nothing() {
    let mut sc = Scalars::new();
    let mut b = bufs(1000);
    let orig = b.clone();
    let adam = adamant_adamw_config_default();
    let sgd = adamant_sgd_config {
        momentum: 0.9,
        ..adamant_sgd_config_default()
    };
    let lion = adamant_lion_config_default();
    for (scale, clip, check) in [(false, false, 0), (true, true, 1), (false, true, 1)] {
        let args = sc.args(scale, clip, check);
        let [p, g, m, v] = &mut b;
        let (pv, gv, mv, vv) = (view(p), cview(g), view(m), view(v));
        // SAFETY: valid host views standing in for device memory; nothing dereferences them
        // without a driver (checked below).
        unsafe {
            returns!(adamant_cuda_adamw_step(&adam, &args, pv, gv, mv, vv, stream()) => NO_DEVICE);
            returns!(adamant_cuda_adam_step(&adam, &args, pv, gv, mv, vv, stream()) => NO_DEVICE);
            returns!(adamant_cuda_sgd_step(&sgd, &args, pv, gv, mv, stream()) => NO_DEVICE);
            returns!(adamant_cuda_lion_step(&lion, &args, pv, gv, mv, stream()) => NO_DEVICE);
            let (ps, gs, ms, vs) = ([pv], [gv], [mv], [vv]);
            let (ps, gs, ms, vs) = (ps.as_ptr(), gs.as_ptr(), ms.as_ptr(), vs.as_ptr());
            let st = stream();
            for n in [0usize, 1] {
                let adamw = adamant_cuda_adamw_step_multi(&adam, &args, ps, gs, ms, vs, n, st);
                let adam_l2 = adamant_cuda_adam_step_multi(&adam, &args, ps, gs, ms, vs, n, st);
                let sgd_s = adamant_cuda_sgd_step_multi(&sgd, &args, ps, gs, ms, n, st);
                let lion_s = adamant_cuda_lion_step_multi(&lion, &args, ps, gs, ms, n, st);
                assert_eq!([adamw, adam_l2, sgd_s, lion_s], [NO_DEVICE; 4], "count {n}");
            }
        }
    }
    // Two tensors of mixed dtypes in one multi call.
    let mut p16 = vec![adamant_core::bf16::from_f32(1.5); 33];
    let g16 = vec![adamant_core::f16::from_f32(0.5); 33];
    let mut m16 = vec![adamant_core::bf16::ZERO; 33];
    let mut v16 = vec![adamant_core::bf16::ZERO; 33];
    let args = sc.args(true, false, 0);
    let [p, g, m, v] = &mut b;
    let ps = [view(p), view(&mut p16)];
    let gs = [cview(g), cview(&g16)];
    let ms = [view(m), view(&mut m16)];
    let vs = [view(v), view(&mut v16)];
    // SAFETY: as above.
    let s = unsafe {
        adamant_cuda_adamw_step_multi(
            &adam,
            &args,
            ps.as_ptr(),
            gs.as_ptr(),
            ms.as_ptr(),
            vs.as_ptr(),
            2,
            stream(),
        )
    };
    assert_eq!(s, NO_DEVICE);
    assert!(p16
        .iter()
        .all(|x| x.to_bits() == adamant_core::bf16::from_f32(1.5).to_bits()));
    assert!(m16.iter().chain(&v16).all(|x| x.to_bits() == 0));
    same(&b, &orig);
    sc.untouched();
}

#[test]
fn spec_scan_commit_and_reductions_return_no_device() {
    let mut sc = Scalars::new();
    let mut b = bufs(9000);
    let orig = b.clone();
    let mut parts = vec![0.0f32; adamant_reduce_tile_count(9000)];
    let mut scratch = vec![0.0f32; adamant_cuda_reduce_combine_scratch_len(parts.len()) + 1];
    let sentinel: *const f32 = core::ptr::without_provenance(0x1234);
    let mut out = sentinel;
    let [p, g, ..] = &mut b;
    let grads = [cview(g), cview(p)];
    // SAFETY: valid host views standing in for device memory; nothing is dereferenced.
    unsafe {
        assert_eq!(
            adamant_cuda_nonfinite_check(grads.as_ptr(), 2, &mut sc.found_inf, stream()),
            NO_DEVICE
        );
        returns!(adamant_cuda_nonfinite_check(null(), 0, &mut sc.found_inf, stream()) => NO_DEVICE);
        returns!(adamant_cuda_step_commit(&mut sc.step, &sc.found_inf, stream()) => NO_DEVICE);
        returns!(adamant_cuda_step_commit(&mut sc.step, null(), stream()) => NO_DEVICE);
        for op in [0u32, 1] {
            assert_eq!(
                adamant_cuda_reduce_partials(op, cview(g), view(&mut parts), stream()),
                NO_DEVICE
            );
        }
        assert_eq!(
            adamant_cuda_reduce_combine(cview(&parts), view(&mut scratch), &mut out, stream()),
            NO_DEVICE
        );
    }
    assert_eq!(out, sentinel, "out_result written on failure");
    assert!(parts.iter().chain(&scratch).all(|x| x.to_bits() == 0));
    same(&b, &orig);
    sc.untouched();
}

#[test]
fn spec_invalid_arguments_return_their_own_status_before_the_driver_check() {
    use adamant_status as S;
    let mut sc = Scalars::new();
    let mut b = bufs(64);
    let orig = b.clone();
    let adam = adamant_adamw_config_default();
    let [p, g, m, v] = &mut b;
    let (pv, gv, mv, vv) = (view(p), cview(g), view(m), view(v));
    let good = sc.args(false, false, 0);
    let call = |cfg: &adamant_adam_config,
                args: *const adamant_cuda_step_args,
                pv: adamant_tensor,
                gv: adamant_const_tensor,
                mv: adamant_tensor,
                vv: adamant_tensor| {
        // SAFETY: host views standing in for device memory; nothing is dereferenced.
        unsafe { adamant_cuda_adamw_step(cfg, args, pv, gv, mv, vv, stream()) }
    };
    // NULL structs and device scalars.
    // SAFETY: NULL config is checked before use.
    let s = unsafe { adamant_cuda_adamw_step(null(), &good, pv, gv, mv, vv, stream()) };
    assert_eq!(s, S::NullPointer);
    assert_eq!(call(&adam, null(), pv, gv, mv, vv), S::NullPointer);
    let no_lr = adamant_cuda_step_args { lr: null(), ..good };
    assert_eq!(call(&adam, &no_lr, pv, gv, mv, vv), S::NullPointer);
    let no_step = adamant_cuda_step_args {
        step: null_mut(),
        ..good
    };
    assert_eq!(call(&adam, &no_step, pv, gv, mv, vv), S::NullPointer);
    // A scan (asked for, or implied by a loss scale) needs the found_inf flag.
    let scan_no_flag = adamant_cuda_step_args {
        found_inf: null_mut(),
        check_finite: 1,
        ..good
    };
    assert_eq!(call(&adam, &scan_no_flag, pv, gv, mv, vv), S::NullPointer);
    let scale_no_flag = adamant_cuda_step_args {
        found_inf: null_mut(),
        grad_scale: &1.0f32,
        ..good
    };
    assert_eq!(call(&adam, &scale_no_flag, pv, gv, mv, vv), S::NullPointer);
    // Without a scan the flag may be NULL: then only the driver is missing.
    let no_flag = adamant_cuda_step_args {
        found_inf: null_mut(),
        ..good
    };
    assert_eq!(call(&adam, &no_flag, pv, gv, mv, vv), NO_DEVICE);
    // Misaligned device scalars.
    let words = [0u64; 4];
    let odd_lr = adamant_cuda_step_args {
        lr: words.as_ptr().cast::<u8>().wrapping_add(2).cast(),
        ..good
    };
    assert_eq!(call(&adam, &odd_lr, pv, gv, mv, vv), S::Misaligned);
    let odd_step = adamant_cuda_step_args {
        step: words
            .as_ptr()
            .cast::<u8>()
            .wrapping_add(4)
            .cast_mut()
            .cast(),
        ..good
    };
    assert_eq!(call(&adam, &odd_step, pv, gv, mv, vv), S::Misaligned);
    // Flags and configuration.
    let bad_flag = adamant_cuda_step_args {
        check_finite: 2,
        ..good
    };
    assert_eq!(call(&adam, &bad_flag, pv, gv, mv, vv), S::InvalidEnum);
    let bad_beta = adamant_adam_config { beta1: 1.5, ..adam };
    assert_eq!(call(&bad_beta, &good, pv, gv, mv, vv), S::InvalidConfig);
    let bad_sr = adamant_adam_config {
        stochastic_rounding: 3,
        ..adam
    };
    assert_eq!(call(&bad_sr, &good, pv, gv, mv, vv), S::InvalidEnum);
    // Views: enum, dtype, NULL, length, alignment, overlap.
    let bad_enum = adamant_tensor { dtype: 9, ..pv };
    assert_eq!(call(&adam, &good, bad_enum, gv, mv, vv), S::InvalidEnum);
    let f16_state = adamant_tensor { dtype: 2, ..mv };
    returns!(call(&adam, &good, pv, gv, f16_state, vv) => S::UnsupportedDtype);
    let bf16_sq = adamant_tensor { dtype: 1, ..vv };
    assert_eq!(call(&adam, &good, pv, gv, mv, bf16_sq), S::UnsupportedDtype);
    let null_param = adamant_tensor {
        data: null_mut(),
        ..pv
    };
    assert_eq!(call(&adam, &good, null_param, gv, mv, vv), S::NullPointer);
    let short = adamant_tensor { len: 63, ..mv };
    assert_eq!(call(&adam, &good, pv, gv, short, vv), S::LengthMismatch);
    let huge = adamant_tensor {
        len: usize::MAX / 2,
        ..pv
    };
    assert_eq!(call(&adam, &good, huge, gv, mv, vv), S::LengthTooLarge);
    let odd = adamant_tensor {
        data: pv.data.cast::<u8>().wrapping_add(2).cast(),
        ..pv
    };
    assert_eq!(call(&adam, &good, odd, gv, mv, vv), S::Misaligned);
    // A bf16 view needs only 2-byte alignment.
    let bf16_odd = adamant_tensor {
        data: pv.data.cast::<u8>().wrapping_add(2).cast(),
        dtype: 1,
        len: 10,
    };
    let g10 = adamant_const_tensor { len: 10, ..gv };
    let m10 = adamant_tensor { len: 10, ..mv };
    let v10 = adamant_tensor { len: 10, ..vv };
    assert_eq!(call(&adam, &good, bf16_odd, g10, m10, v10), NO_DEVICE);
    let alias = adamant_tensor { ..pv };
    assert_eq!(call(&adam, &good, pv, gv, alias, vv), S::Overlap);
    // List forms: NULL arrays with count > 0; a bad view in the second tensor.
    let (ps, gs, ms, vs) = ([pv, bad_enum], [gv, gv], [mv, mv], [vv, vv]);
    let (gs, ms, vs) = (gs.as_ptr(), ms.as_ptr(), vs.as_ptr());
    // SAFETY: arrays of two views each (or NULL, checked first).
    let multi =
        |ps, n| unsafe { adamant_cuda_adamw_step_multi(&adam, &good, ps, gs, ms, vs, n, stream()) };
    assert_eq!(multi(null(), 1), S::NullPointer);
    assert_eq!(multi(ps.as_ptr(), 2), S::InvalidEnum);
    // The same buffers in two tensors overlap.
    let ps2 = [pv, pv];
    assert_eq!(multi(ps2.as_ptr(), 2), S::Overlap);
    // SAFETY: valid host views (or NULL, checked first) standing in for device memory.
    unsafe {
        // SGD: with momentum the buffer must be as long as the parameters; without it, empty.
        let sgd = adamant_sgd_config {
            momentum: 0.9,
            ..adamant_sgd_config_default()
        };
        let plain = adamant_sgd_config_default();
        let empty = adamant_tensor { len: 0, ..mv };
        returns!(adamant_cuda_sgd_step(&sgd, &good, pv, gv, empty, stream()) => S::LengthMismatch);
        returns!(adamant_cuda_sgd_step(&plain, &good, pv, gv, mv, stream()) => S::LengthMismatch);
        returns!(adamant_cuda_sgd_step(&plain, &good, pv, gv, empty, stream()) => NO_DEVICE);
        let bad_lion = adamant_lion_config {
            beta2: -0.5,
            ..adamant_lion_config_default()
        };
        assert_eq!(
            adamant_cuda_lion_step(&bad_lion, &good, pv, gv, mv, stream()),
            S::InvalidConfig
        );
        // Scan, commit, reductions.
        assert_eq!(
            adamant_cuda_nonfinite_check(null(), 1, &mut sc.found_inf, stream()),
            S::NullPointer
        );
        let gs1 = [gv];
        assert_eq!(
            adamant_cuda_nonfinite_check(gs1.as_ptr(), 1, null_mut(), stream()),
            S::NullPointer
        );
        let bad_g = [adamant_const_tensor { dtype: 7, ..gv }];
        assert_eq!(
            adamant_cuda_nonfinite_check(bad_g.as_ptr(), 1, &mut sc.found_inf, stream()),
            S::InvalidEnum
        );
        returns!(adamant_cuda_step_commit(null_mut(), null(), stream()) => S::NullPointer);
        let mut parts = vec![0.0f32; 1];
        returns!(adamant_cuda_reduce_partials(2, gv, view(&mut parts), stream()) => S::InvalidEnum);
        let bf_parts = adamant_tensor {
            dtype: 1,
            ..view(&mut parts)
        };
        returns!(adamant_cuda_reduce_partials(0, gv, bf_parts, stream()) => S::UnsupportedDtype);
        let mut two = vec![0.0f32; 2];
        assert_eq!(
            adamant_cuda_reduce_partials(0, gv, view(&mut two), stream()),
            S::LengthMismatch
        );
        let in_place = adamant_tensor {
            data: gv.data.cast_mut(),
            dtype: 0,
            len: 1,
        };
        returns!(adamant_cuda_reduce_partials(0, gv, in_place, stream()) => S::Overlap);
        let mut out: *const f32 = null();
        let many = vec![0.0f32; 5000];
        let mut small = vec![0.0f32; 1];
        assert_eq!(
            adamant_cuda_reduce_combine(cview(&many), view(&mut small), &mut out, stream()),
            S::LengthMismatch
        );
        assert_eq!(
            adamant_cuda_reduce_combine(cview(&many[..0]), view(&mut small), &mut out, stream()),
            S::LengthMismatch
        );
        assert_eq!(
            adamant_cuda_reduce_combine(cview(&many), view(&mut small), null_mut(), stream()),
            S::NullPointer
        );
        assert!(out.is_null());
    }
    same(&b, &orig);
    sc.untouched();
}

#[test]
fn spec_scratch_len_matches_the_combine_levels() {
    assert_eq!(adamant_cuda_reduce_combine_scratch_len(0), 0);
    assert_eq!(adamant_cuda_reduce_combine_scratch_len(1), 0);
    assert_eq!(adamant_cuda_reduce_combine_scratch_len(2), 1);
    assert_eq!(adamant_cuda_reduce_combine_scratch_len(4096), 1);
    assert_eq!(adamant_cuda_reduce_combine_scratch_len(4097), 3);
}

/// Encoding a tensor table is host work (no driver needed): it succeeds here and writes the
/// table bytes and the descriptor. Every `_step_table` entry point then checks its
/// arguments and returns `ADAMANT_STATUS_NO_CUDA_DRIVER`, touching nothing.
#[test]
fn spec_table_entry_points_encode_here_and_steps_return_no_device() {
    use adamant_status as S;
    let mut sc = Scalars::new();
    let mut b0 = bufs(1000);
    let mut b1 = bufs(37);
    let orig = [b0.clone(), b1.clone()];
    let [p0, g0, m0, v0] = &mut b0;
    let [p1, g1, m1, v1] = &mut b1;
    let ps = [view(p0), view(p1)];
    let gs = [cview(g0), cview(g1)];
    let ms = [view(m0), view(m1)];
    let vs = [view(v0), view(v1)];
    let empties = [adamant_tensor {
        data: null_mut(),
        dtype: 0,
        len: 0,
    }; 2];
    let bytes = adamant_cuda_tensor_table_bytes(2);
    assert_eq!(bytes, 128);
    let blank = adamant_cuda_tensor_table {
        count: 0,
        total_chunks: 0,
        clip_coef: null(),
        rule: 0,
        param_dtype: 0,
        grad_dtype: 0,
        state_dtype: 0,
        state_count: 0,
    };
    let encode = |rule: adamant_cuda_rule,
                  clip: *const f32,
                  s0: &[adamant_tensor; 2],
                  s1: *const adamant_tensor|
     -> (adamant_status, Vec<u8>, adamant_cuda_tensor_table) {
        let mut table = vec![0u8; bytes];
        let mut desc = blank;
        // SAFETY: arrays of two views each (states1 unread for SGD and Lion); `table` has
        // the bytes asked for.
        let s = unsafe {
            adamant_cuda_tensor_table_encode(
                rule as u32,
                clip,
                ps.as_ptr(),
                gs.as_ptr(),
                s0.as_ptr(),
                s1,
                2,
                table.as_mut_ptr(),
                table.len(),
                &mut desc,
            )
        };
        (s, table, desc)
    };
    let (s, adam_table, adam) = encode(adamant_cuda_rule::Adam, &sc.clip, &ms, vs.as_ptr());
    assert_eq!(s, S::Ok);
    assert!(adam_table.iter().any(|&b| b != 0));
    assert_eq!((adam.count, adam.total_chunks, adam.state_count), (2, 2, 2));
    assert_eq!(adam.clip_coef, &sc.clip as *const f32);
    let (s, _, lion) = encode(adamant_cuda_rule::Lion, null(), &ms, null());
    assert_eq!((s, lion.state_count), (S::Ok, 1));
    let (s, _, sgd_m) = encode(adamant_cuda_rule::Sgd, null(), &ms, null());
    assert_eq!((s, sgd_m.state_count), (S::Ok, 1));
    let (s, _, sgd_plain) = encode(adamant_cuda_rule::Sgd, null(), &empties, null());
    assert_eq!((s, sgd_plain.state_count), (S::Ok, 0));

    // A stand-in for the device copy of the table (8-byte aligned).
    let dev_table = [0u64; 16];
    let t: *const c_void = dev_table.as_ptr().cast();
    let adamw = adamant_adamw_config_default();
    let sgd = adamant_sgd_config {
        momentum: 0.9,
        ..adamant_sgd_config_default()
    };
    let plain = adamant_sgd_config_default();
    let lion_cfg = adamant_lion_config_default();
    let clip_args = sc.args(true, true, 1);
    let args = sc.args(true, false, 1);
    use adamant_cuda_adam_step_table as adam_t;
    use adamant_cuda_adamw_step_table as adamw_t;
    use adamant_cuda_lion_step_table as lion_t;
    use adamant_cuda_sgd_step_table as sgd_t;
    let st = stream();
    // SAFETY: host structs; the "device" pointers are host memory nothing dereferences
    // without a driver (checked below).
    unsafe {
        assert_eq!(adamw_t(&adamw, &clip_args, &adam, t, st), NO_DEVICE);
        assert_eq!(adam_t(&adamw, &clip_args, &adam, t, st), NO_DEVICE);
        assert_eq!(lion_t(&lion_cfg, &args, &lion, t, st), NO_DEVICE);
        assert_eq!(sgd_t(&sgd, &args, &sgd_m, t, st), NO_DEVICE);
        assert_eq!(sgd_t(&plain, &args, &sgd_plain, t, st), NO_DEVICE);
        // Argument errors first, in the documented order.
        assert_eq!(adamw_t(null(), &clip_args, &adam, t, st), S::NullPointer);
        assert_eq!(adamw_t(&adamw, null(), &adam, t, st), S::NullPointer);
        assert_eq!(adamw_t(&adamw, &clip_args, null(), t, st), S::NullPointer);
        let bad_beta = adamant_adam_config {
            beta2: 1.0,
            ..adamw
        };
        assert_eq!(
            adamw_t(&bad_beta, &clip_args, &adam, t, st),
            S::InvalidConfig
        );
        // A descriptor of another rule, or a clip address the table was not encoded with.
        assert_eq!(adamw_t(&adamw, &clip_args, &lion, t, st), S::InvalidConfig);
        assert_eq!(lion_t(&lion_cfg, &args, &adam, t, st), S::InvalidConfig);
        assert_eq!(adamw_t(&adamw, &args, &adam, t, st), S::InvalidConfig);
        // SGD: momentum step over a table without buffers and the other way round.
        assert_eq!(sgd_t(&sgd, &args, &sgd_plain, t, st), S::LengthMismatch);
        assert_eq!(sgd_t(&plain, &args, &sgd_m, t, st), S::LengthMismatch);
        assert_eq!(
            adamw_t(&adamw, &clip_args, &adam, null(), st),
            S::NullPointer
        );
        let odd = t.wrapping_byte_add(4);
        assert_eq!(adamw_t(&adamw, &clip_args, &adam, odd, st), S::Misaligned);
    }
    // Encoding errors write nothing: mixed state dtypes, a short buffer.
    let mut mixed = ms;
    mixed[1].dtype = 1;
    let (s, table, desc) = encode(adamant_cuda_rule::Lion, null(), &mixed, null());
    assert_eq!(s, S::UnsupportedDtype);
    assert!(table.iter().all(|&b| b == 0));
    assert_eq!((desc.count, desc.total_chunks), (0, 0));
    let mut short = vec![0u8; bytes - 1];
    let mut desc = blank;
    // SAFETY: arrays of two views; `short` has `bytes - 1` bytes.
    let s = unsafe {
        adamant_cuda_tensor_table_encode(
            adamant_cuda_rule::Adam as u32,
            null(),
            ps.as_ptr(),
            gs.as_ptr(),
            ms.as_ptr(),
            vs.as_ptr(),
            2,
            short.as_mut_ptr(),
            short.len(),
            &mut desc,
        )
    };
    assert_eq!(s, S::LengthMismatch);
    assert!(short.iter().all(|&b| b == 0));
    assert_eq!(desc.count, 0);
    assert!(dev_table.iter().all(|&w| w == 0));
    same(&b0, &orig[0]);
    same(&b1, &orig[1]);
    sc.untouched();
}
// ---------------------------------------------------------------------------------------------
// Adam-mini, clipping and compression (`cuda_mini`, `cuda_clip`, `cuda_loco`).

/// A small Adam-mini model over host vectors standing in for device memory: rows (3 x 40),
/// a bias, explicit segments; f32 everywhere.
struct Mini {
    segs: Vec<adamant_block_segment>,
    p: Vec<Vec<f32>>,
    g: Vec<Vec<f32>>,
    m: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
}

impl Mini {
    fn new() -> Mini {
        let lens = [120usize, 7, 26];
        let state = [3usize, 7, 1 + 10];
        let f = |k: f32, n: usize| (0..n).map(|i| k + i as f32 * 0.5).collect::<Vec<f32>>();
        Mini {
            segs: vec![
                adamant_block_segment {
                    len: 16,
                    block_len: 16,
                },
                adamant_block_segment {
                    len: 10,
                    block_len: 0,
                },
            ],
            p: lens.iter().map(|&n| f(1.0, n)).collect(),
            g: lens.iter().map(|&n| f(-1.0, n)).collect(),
            m: lens.iter().map(|&n| f(0.25, n)).collect(),
            v: state.iter().map(|&n| f(2.0, n)).collect(),
        }
    }
    fn layouts(&self) -> [adamant_block_layout; 3] {
        let l = |kind, block_len, wd| adamant_block_layout {
            kind,
            block_len,
            segments: null(),
            segment_count: 0,
            weight_decay: wd,
        };
        [
            l(1, 40, 1),
            l(0, 0, 0),
            adamant_block_layout {
                segments: self.segs.as_ptr(),
                segment_count: 2,
                ..l(4, 0, 1)
            },
        ]
    }
    #[allow(clippy::type_complexity)]
    fn views(
        &mut self,
    ) -> (
        Vec<adamant_tensor>,
        Vec<adamant_const_tensor>,
        Vec<adamant_tensor>,
        Vec<adamant_tensor>,
    ) {
        (
            self.p.iter_mut().map(|x| view(x)).collect(),
            self.g.iter().map(|x| cview(x)).collect(),
            self.m.iter_mut().map(|x| view(x)).collect(),
            self.v.iter_mut().map(|x| view(x)).collect(),
        )
    }
    fn snapshot(&self) -> Vec<Vec<f32>> {
        [&self.p, &self.g, &self.m, &self.v]
            .into_iter()
            .flatten()
            .cloned()
            .collect()
    }
}

/// Encode through the ABI (host-only: works without a driver); returns the table bytes,
/// the descriptor and the scratch.
fn mini_encode(
    mm: &mut Mini,
    clip: *const f32,
) -> (Vec<u64>, adamant_cuda_adam_mini_table, Vec<f32>) {
    let l = mm.layouts();
    let (p, g, m, v) = mm.views();
    let (mut tb, mut sl) = (0usize, 0usize);
    let mut desc = adamant_cuda_adam_mini_table::default();
    // SAFETY: live host arrays; the views' data are never dereferenced by the encode.
    unsafe {
        assert_eq!(
            adamant_cuda_adam_mini_table_bytes(l.as_ptr(), p.as_ptr(), 3, &mut tb),
            adamant_status::Ok
        );
        assert_eq!(
            adamant_cuda_adam_mini_scratch_len(l.as_ptr(), p.as_ptr(), 3, &mut sl),
            adamant_status::Ok
        );
        let mut table = vec![0u64; tb / 8];
        let mut scratch = vec![0.0f32; sl];
        assert_eq!(
            adamant_cuda_adam_mini_table_encode(
                l.as_ptr(),
                p.as_ptr(),
                g.as_ptr(),
                m.as_ptr(),
                v.as_ptr(),
                clip,
                3,
                scratch.as_mut_ptr(),
                sl,
                table.as_mut_ptr().cast(),
                tb,
                &mut desc,
            ),
            adamant_status::Ok
        );
        assert!(table.iter().any(|&w| w != 0), "the encode wrote the table");
        (table, desc, scratch)
    }
}

/// A clip table over two f32 gradients (host stand-ins).
fn clip_encode(g: &[Vec<f32>]) -> (Vec<u64>, adamant_cuda_clip_table, Vec<f32>) {
    let views: Vec<adamant_const_tensor> = g.iter().map(|x| cview(x)).collect();
    let (mut tb, mut sl) = (0usize, 0usize);
    // SAFETY: live host arrays; the views' data are never dereferenced.
    unsafe {
        returns!(adamant_cuda_clip_table_bytes(views.len(), &mut tb) => adamant_status::Ok);
        assert_eq!(
            adamant_cuda_clip_scratch_len(views.as_ptr(), views.len(), &mut sl),
            adamant_status::Ok
        );
        assert_eq!(tb, 32 * views.len());
        let mut table = vec![0u64; tb / 8];
        let mut scratch = vec![0.0f32; sl];
        let mut desc = core::mem::MaybeUninit::<adamant_cuda_clip_table>::uninit();
        assert_eq!(
            adamant_cuda_clip_table_encode(
                views.as_ptr(),
                views.len(),
                scratch.as_mut_ptr(),
                sl,
                table.as_mut_ptr().cast(),
                tb,
                desc.as_mut_ptr(),
            ),
            adamant_status::Ok
        );
        (table, desc.assume_init(), scratch)
    }
}

/// Bit patterns of a slice of f32 (for "nothing written" checks).
fn bits_of(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn spec_mini_clip_and_compression_entry_points_return_no_device_and_write_nothing() {
    let mut sc = Scalars::new();
    // Adam-mini: the encode is host work and succeeds; the step needs the driver.
    let mut mm = Mini::new();
    let before = mm.snapshot();
    let coefs = [0.5f32; 3];
    let (table, desc, scratch) = mini_encode(&mut mm, coefs.as_ptr());
    assert_eq!(desc.scan_count, 3);
    let cfg = adamant_adam_mini_config_default();
    let args = sc.args(true, false, 1);
    // SAFETY: host stand-ins for device memory; nothing is dereferenced without a driver.
    unsafe {
        assert_eq!(
            adamant_cuda_adam_mini_step_table(&cfg, &args, &desc, table.as_ptr().cast(), stream()),
            NO_DEVICE
        );
    }
    assert_eq!(mm.snapshot(), before);
    assert!(scratch.iter().all(|x| x.to_bits() == 0));
    // Clipping.
    let grads = vec![vec![1.5f32; 5000], vec![-2.0f32; 3]];
    let (ctable, cdesc, cscratch) = clip_encode(&grads);
    let acfg = adamant_adagc_config_default();
    let mut gamma = vec![1.0f32; 2];
    let mut clip_step = 5u64;
    let mut out_coefs = vec![0.0f32; 2];
    let mut record = vec![0.0f32; 4];
    let scale = 8.0f32;
    // SAFETY: as above.
    unsafe {
        assert_eq!(
            adamant_cuda_adagc_coefs(
                &acfg,
                &cdesc,
                ctable.as_ptr().cast(),
                &scale,
                gamma.as_ptr(),
                2,
                &clip_step,
                out_coefs.as_mut_ptr(),
                record.as_mut_ptr(),
                stream()
            ),
            NO_DEVICE
        );
        assert_eq!(
            adamant_cuda_adagc_commit(
                &acfg,
                &cdesc,
                gamma.as_mut_ptr(),
                2,
                &mut clip_step,
                record.as_ptr(),
                &sc.found_inf,
                stream()
            ),
            NO_DEVICE
        );
        assert_eq!(
            adamant_cuda_clip_coef_global_norm(
                1.0,
                1e-6,
                &cdesc,
                ctable.as_ptr().cast(),
                null(),
                out_coefs.as_mut_ptr(),
                record.as_mut_ptr(),
                stream()
            ),
            NO_DEVICE
        );
    }
    assert_eq!((bits_of(&gamma), clip_step), (bits_of(&[1.0, 1.0]), 5));
    assert!(out_coefs
        .iter()
        .chain(&record)
        .chain(&cscratch)
        .all(|x| x.to_bits() == 0));
    // Compression.
    let x = vec![0.75f32; 1000];
    let mut packed = vec![0xA5A5_A5A5u32; 1024];
    let mut out = vec![0.0f32; 1000];
    let mut err = vec![0.0f32; 1000];
    let mut err2 = vec![0.0f32; 1000];
    let mut status = 0.0f32;
    let mut out_step = 99u64;
    let pl = |n: usize, g: usize, bits: u32| {
        let mut l = 0usize;
        // SAFETY: a live out pointer.
        returns!(unsafe { adamant_quant_packed_len(n, g, bits, &mut l) } => adamant_status::Ok);
        l
    };
    let lcfg = adamant_loco_config {
        error_int8: 0,
        group_len: 32,
        ..adamant_loco_config_default()
    };
    let mut z = adamant_loco_sizes::default();
    // SAFETY: live pointers.
    returns!(unsafe { adamant_loco_layout_sizes(&lcfg, 1000, 4, 2, &mut z) } => adamant_status::Ok);
    let pk = packed.as_mut_ptr().cast::<u8>();
    // SAFETY: host stand-ins for device memory; nothing is dereferenced without a driver.
    unsafe {
        let st = &mut status as *mut f32;
        assert_eq!(
            adamant_cuda_quantize(cview(&x), 64, 4, pk, pl(1000, 64, 4), st, stream()),
            NO_DEVICE
        );
        assert_eq!(
            adamant_cuda_dequantize(
                pk,
                pl(1000, 64, 8),
                64,
                8,
                out.as_mut_ptr(),
                1000,
                st,
                stream()
            ),
            NO_DEVICE
        );
        assert_eq!(
            adamant_cuda_loco_compress(
                &lcfg,
                0,
                4,
                2,
                cview(&x),
                err.as_mut_ptr().cast(),
                z.error_len,
                pk,
                z.compress_len,
                &mut out_step,
                st,
                stream()
            ),
            NO_DEVICE
        );
        assert_eq!(
            adamant_cuda_loco_reduce_hop(
                &lcfg,
                0,
                1000,
                4,
                2,
                x.as_ptr().cast(),
                z.compress_len,
                err2.as_mut_ptr().cast(),
                z.inter_error_len,
                pk,
                z.hop_len,
                st,
                stream()
            ),
            NO_DEVICE
        );
        assert_eq!(
            adamant_cuda_loco_decompress_reduce(
                &lcfg,
                1000,
                4,
                2,
                pk,
                z.received_len,
                out.as_mut_ptr(),
                z.shard_len,
                st,
                stream()
            ),
            NO_DEVICE
        );
        let wl = 4 * pl(250, 32, 4);
        assert_eq!(
            adamant_cuda_ef_worker_compress(
                cview(&x),
                4,
                32,
                4,
                0,
                err.as_mut_ptr().cast(),
                1000,
                pk,
                wl,
                st,
                stream()
            ),
            NO_DEVICE
        );
        assert_eq!(
            adamant_cuda_ef_server_compress(
                250,
                32,
                4,
                8,
                2,
                x.as_ptr().cast(),
                wl / 2,
                0,
                err.as_mut_ptr().cast(),
                250,
                pk,
                pl(250, 32, 8),
                st,
                stream()
            ),
            NO_DEVICE
        );
        assert_eq!(
            adamant_cuda_ef_decompress(
                x.as_ptr().cast(),
                4 * pl(250, 32, 8),
                4,
                32,
                8,
                out.as_mut_ptr(),
                1000,
                st,
                stream()
            ),
            NO_DEVICE
        );
    }
    assert_eq!(out_step, 99, "out_step written without a driver");
    assert_eq!(status.to_bits(), 0);
    assert!(packed.iter().all(|&w| w == 0xA5A5_A5A5));
    assert!(out
        .iter()
        .chain(&err)
        .chain(&err2)
        .all(|x| x.to_bits() == 0));
    sc.untouched();
}

#[test]
fn spec_mini_clip_and_compression_argument_errors_come_first_and_write_nothing() {
    use adamant_status as S;
    let mut sc = Scalars::new();
    // --- Adam-mini encode.
    let mut mm = Mini::new();
    let before = mm.snapshot();
    let l = mm.layouts();
    let (p, g, m, v) = mm.views();
    let (mut tb, mut sl) = (0usize, 0usize);
    // SAFETY: live host arrays.
    unsafe {
        adamant_cuda_adam_mini_table_bytes(l.as_ptr(), p.as_ptr(), 3, &mut tb);
        adamant_cuda_adam_mini_scratch_len(l.as_ptr(), p.as_ptr(), 3, &mut sl);
    }
    let mut table = vec![0xEEEE_EEEE_EEEE_EEEEu64; tb / 8 + 1];
    let mut scratch = vec![0.0f32; sl + 1];
    let mut desc = adamant_cuda_adam_mini_table {
        table_bytes: 77,
        ..Default::default()
    };
    /// The arguments of one encode call that change between the cases.
    #[derive(Clone)]
    struct Enc {
        l: [adamant_block_layout; 3],
        p: Vec<adamant_tensor>,
        g: Vec<adamant_const_tensor>,
        v: Vec<adamant_tensor>,
        sl: usize,
        tb: usize,
        desc: bool,
    }
    static G16: [u16; 7] = [0; 7];
    type Edit = fn(&mut Enc);
    let cases: [(&str, Edit, S); 13] = [
        ("out_desc NULL", |e| e.desc = false, S::NullPointer),
        ("scratch_len", |e| e.sl += 1, S::LengthMismatch),
        ("table_bytes", |e| e.tb += 8, S::LengthMismatch),
        ("exp_avg_sq length", |e| e.v[0].len = 4, S::LengthMismatch),
        ("f16 state", |e| e.v[1].dtype = 2, S::UnsupportedDtype),
        (
            "mixed grad dtypes",
            |e| {
                e.g[1] = adamant_const_tensor {
                    data: G16.as_ptr().cast(),
                    dtype: 1,
                    len: 7,
                }
            },
            S::UnsupportedDtype,
        ),
        ("grad length", |e| e.g[2].len = 25, S::LengthMismatch),
        ("layout kind", |e| e.l[0].kind = 9, S::InvalidEnum),
        (
            "rows that do not divide",
            |e| e.l[0].block_len = 7,
            S::LengthMismatch,
        ),
        (
            "weight_decay flag",
            |e| e.l[0].weight_decay = 2,
            S::InvalidEnum,
        ),
        (
            "overlapping params",
            |e| e.p[1].data = e.p[0].data,
            S::Overlap,
        ),
        ("NULL grad data", |e| e.g[0].data = null(), S::NullPointer),
        (
            "misaligned exp_avg_sq",
            |e| e.v[0].data = e.v[0].data.wrapping_byte_add(2),
            S::Misaligned,
        ),
    ];
    let base = Enc {
        l,
        p: p.clone(),
        g,
        v,
        sl,
        tb,
        desc: true,
    };
    for (what, edit, want) in cases {
        let mut e = base.clone();
        edit(&mut e);
        let d: *mut adamant_cuda_adam_mini_table = if e.desc { &mut desc } else { null_mut() };
        // SAFETY: live host arrays and buffers.
        let st = unsafe {
            adamant_cuda_adam_mini_table_encode(
                e.l.as_ptr(),
                e.p.as_ptr(),
                e.g.as_ptr(),
                m.as_ptr(),
                e.v.as_ptr(),
                null(),
                3,
                scratch.as_mut_ptr(),
                e.sl,
                table.as_mut_ptr().cast(),
                e.tb,
                d,
            )
        };
        assert_eq!(st, want, "{what}");
        assert!(table.iter().all(|&w| w == 0xEEEE_EEEE_EEEE_EEEE), "{what}");
    }
    assert_eq!(desc.table_bytes, 77, "descriptor written on failure");
    // SAFETY: a NULL layout array with count 3.
    assert_eq!(
        unsafe { adamant_cuda_adam_mini_table_bytes(null(), p.as_ptr(), 3, &mut tb) },
        S::NullPointer
    );
    // --- Adam-mini step.
    let (table, good, _scratch) = mini_encode(&mut mm, null());
    let cfg = adamant_adam_mini_config_default();
    let args = sc.args(false, false, 0);
    let step = |c: *const adamant_adam_mini_config,
                a: &adamant_cuda_step_args,
                d: &adamant_cuda_adam_mini_table,
                t: *const c_void| {
        // SAFETY: host stand-ins; nothing is dereferenced on these paths.
        unsafe { adamant_cuda_adam_mini_step_table(c, a, d, t, stream()) }
    };
    let tp: *const c_void = table.as_ptr().cast();
    assert_eq!(step(null(), &args, &good, tp), S::NullPointer);
    let with_clip = sc.args(false, true, 0);
    assert_eq!(step(&cfg, &with_clip, &good, tp), S::InvalidConfig);
    let bad_cfg = adamant_adam_mini_config { beta1: 1.5, ..cfg };
    assert_eq!(step(&bad_cfg, &args, &good, tp), S::InvalidConfig);
    assert_eq!(step(&cfg, &args, &good, null()), S::NullPointer);
    returns!(step(&cfg, &args, &good, tp.wrapping_byte_add(4)) => S::Misaligned);
    let f16_state = adamant_cuda_adam_mini_table {
        state_dtype: 2,
        ..good
    };
    assert_eq!(step(&cfg, &args, &f16_state, tp), S::UnsupportedDtype);
    let bad_dtype = adamant_cuda_adam_mini_table {
        param_dtype: 9,
        ..good
    };
    assert_eq!(step(&cfg, &args, &bad_dtype, tp), S::InvalidEnum);
    let bad_bytes = adamant_cuda_adam_mini_table {
        table_bytes: good.table_bytes + 64,
        ..good
    };
    assert_eq!(step(&cfg, &args, &bad_bytes, tp), S::LengthMismatch);
    let no_flag = adamant_cuda_step_args {
        found_inf: null_mut(),
        ..sc.args(false, false, 1)
    };
    assert_eq!(step(&cfg, &no_flag, &good, tp), S::NullPointer);
    assert_eq!(mm.snapshot(), before);

    // --- Clipping.
    let grads = vec![vec![1.5f32; 5000], vec![-2.0f32; 3]];
    let (ctable, cdesc, _cs) = clip_encode(&grads);
    let ctp: *const c_void = ctable.as_ptr().cast();
    let acfg = adamant_adagc_config_default();
    let gamma = vec![1.0f32; 2];
    let clip_step = 5u64;
    let mut coefs = vec![0.0f32; 2];
    let mut record = vec![0.0f32; 4];
    let coefs_call = |c: &adamant_adagc_config,
                      d: &adamant_cuda_clip_table,
                      t: *const c_void,
                      gamma: *const f32,
                      glen: usize,
                      coefs: *mut f32,
                      record: *mut f32| {
        // SAFETY: host stand-ins.
        unsafe {
            adamant_cuda_adagc_coefs(
                c,
                d,
                t,
                null(),
                gamma,
                glen,
                &clip_step,
                coefs,
                record,
                stream(),
            )
        }
    };
    let (cp, rp) = (coefs.as_mut_ptr(), record.as_mut_ptr());
    returns!(coefs_call(&acfg, &cdesc, ctp, gamma.as_ptr(), 1, cp, rp) => S::LengthMismatch);
    let bad_mode = adamant_adagc_config { mode: 5, ..acfg };
    returns!(coefs_call(&bad_mode, &cdesc, ctp, gamma.as_ptr(), 2, cp, rp) => S::InvalidEnum);
    let bad_beta = adamant_adagc_config { beta: 1.0, ..acfg };
    returns!(coefs_call(&bad_beta, &cdesc, ctp, gamma.as_ptr(), 2, cp, rp) => S::InvalidConfig);
    returns!(coefs_call(&acfg, &cdesc, null(), gamma.as_ptr(), 2, cp, rp) => S::NullPointer);
    returns!(coefs_call(&acfg, &cdesc, ctp, gamma.as_ptr(), 2, cp, null_mut()) => S::NullPointer);
    assert_eq!(
        coefs_call(
            &acfg,
            &cdesc,
            ctp,
            gamma.as_ptr(),
            2,
            gamma.as_ptr().cast_mut(),
            rp
        ),
        S::Overlap
    );
    let bad_desc = adamant_cuda_clip_table {
        grad_dtype: 8,
        ..cdesc
    };
    returns!(coefs_call(&acfg, &bad_desc, ctp, gamma.as_ptr(), 2, cp, rp) => S::InvalidEnum);
    let short = adamant_cuda_clip_table {
        scratch_len: 3,
        ..cdesc
    };
    returns!(coefs_call(&acfg, &short, ctp, gamma.as_ptr(), 2, cp, rp) => S::LengthMismatch);
    // SAFETY: host stand-ins.
    unsafe {
        assert_eq!(
            adamant_cuda_adagc_commit(
                &acfg,
                &cdesc,
                gamma.as_ptr().cast_mut(),
                2,
                null_mut(),
                rp,
                null(),
                stream()
            ),
            S::NullPointer
        );
        for (max_norm, eps) in [(1.0f32, 1e-5f32), (0.0, 1e-6), (f32::NAN, 1e-6)] {
            assert_eq!(
                adamant_cuda_clip_coef_global_norm(
                    max_norm,
                    eps,
                    &cdesc,
                    ctp,
                    null(),
                    cp,
                    rp,
                    stream()
                ),
                S::InvalidConfig
            );
        }
        // The encode: no tensors, mixed dtypes, a wrong scratch length.
        let mut t = vec![0u64; 8];
        let mut s = vec![0.0f32; 64];
        let mut d = cdesc;
        let b16: Vec<u16> = vec![0; 3];
        let mixed = [
            cview(&grads[0]),
            adamant_const_tensor {
                data: b16.as_ptr().cast(),
                dtype: 1,
                len: 3,
            },
        ];
        let two = [cview(&grads[0]), cview(&grads[1])];
        assert_eq!(
            adamant_cuda_clip_table_encode(
                two.as_ptr(),
                0,
                s.as_mut_ptr(),
                0,
                t.as_mut_ptr().cast(),
                0,
                &mut d
            ),
            S::LengthMismatch
        );
        assert_eq!(
            adamant_cuda_clip_table_encode(
                mixed.as_ptr(),
                2,
                s.as_mut_ptr(),
                8,
                t.as_mut_ptr().cast(),
                64,
                &mut d
            ),
            S::UnsupportedDtype
        );
        assert_eq!(
            adamant_cuda_clip_table_encode(
                two.as_ptr(),
                2,
                s.as_mut_ptr(),
                64,
                t.as_mut_ptr().cast(),
                64,
                &mut d
            ),
            S::LengthMismatch
        );
        assert!(t.iter().all(|&w| w == 0));
    }
    assert!(coefs.iter().chain(&record).all(|x| x.to_bits() == 0));
    assert_eq!((bits_of(&gamma), clip_step), (bits_of(&[1.0, 1.0]), 5));

    // --- Compression.
    let x = vec![0.75f32; 1000];
    let mut packed = vec![0xA5A5_A5A5u32; 1024];
    let mut out = vec![0.0f32; 1000];
    let mut err = vec![0.0f32; 1000];
    let mut status = 0.0f32;
    let mut out_step = 99u64;
    let pk = packed.as_mut_ptr().cast::<u8>();
    let ep: *mut c_void = err.as_mut_ptr().cast();
    let st = &mut status as *mut f32;
    let ok_len = {
        let mut l = 0usize;
        // SAFETY: a live out pointer.
        unsafe { adamant_quant_packed_len(1000, 64, 4, &mut l) };
        l
    };
    let lcfg = adamant_loco_config {
        error_int8: 0,
        group_len: 32,
        ..adamant_loco_config_default()
    };
    // SAFETY: host stand-ins; every call fails its argument checks.
    unsafe {
        let q =
            |x: adamant_const_tensor, g: usize, bits: u32, p: *mut u8, n: usize, s: *mut f32| {
                adamant_cuda_quantize(x, g, bits, p, n, s, stream())
            };
        assert_eq!(q(cview(&x), 64, 5, pk, ok_len, st), S::InvalidEnum);
        assert_eq!(q(cview(&x), 0, 4, pk, ok_len, st), S::InvalidConfig);
        assert_eq!(q(cview(&x), 64, 4, pk, ok_len + 4, st), S::LengthMismatch);
        assert_eq!(q(cview(&x), 64, 4, pk, ok_len, null_mut()), S::NullPointer);
        returns!(q(cview(&x), 64, 4, pk.wrapping_add(2), ok_len, st) => S::Misaligned);
        let bad_enum = adamant_const_tensor {
            dtype: 7,
            ..cview(&x)
        };
        assert_eq!(q(bad_enum, 64, 4, pk, ok_len, st), S::InvalidEnum);
        returns!(q(cview(&x), 64, 4, x.as_ptr().cast_mut().cast(), ok_len, st) => S::Overlap);
        assert_eq!(
            adamant_cuda_dequantize(pk, ok_len, 64, 4, pk.cast(), 1000, st, stream()),
            S::Overlap
        );
        assert_eq!(
            adamant_cuda_dequantize(pk, ok_len - 4, 64, 4, out.as_mut_ptr(), 1000, st, stream()),
            S::LengthMismatch
        );
        let lc = |c: &adamant_loco_config, world: usize, err_len: usize, os: *mut u64| {
            adamant_cuda_loco_compress(
                c,
                0,
                world,
                1,
                cview(&x),
                ep,
                err_len,
                pk,
                4096,
                os,
                st,
                stream(),
            )
        };
        assert_eq!(lc(&lcfg, 3, 1000, &mut out_step), S::LengthMismatch);
        assert_eq!(lc(&lcfg, 4, 1000, null_mut()), S::NullPointer);
        assert_eq!(
            lc(
                &adamant_loco_config { bits: 3, ..lcfg },
                4,
                1000,
                &mut out_step
            ),
            S::InvalidEnum
        );
        assert_eq!(lc(&lcfg, 4, 999, &mut out_step), S::LengthMismatch);
        assert_eq!(
            adamant_cuda_loco_reduce_hop(
                &lcfg,
                0,
                1000,
                4,
                1,
                x.as_ptr().cast(),
                16,
                ep,
                0,
                pk,
                0,
                st,
                stream()
            ),
            S::LengthMismatch
        );
        assert_eq!(
            adamant_cuda_loco_decompress_reduce(
                &lcfg,
                1000,
                4,
                1,
                pk,
                4096,
                out.as_mut_ptr(),
                999,
                st,
                stream()
            ),
            S::LengthMismatch
        );
        let ew = |shards: usize, error_int8: u32| {
            adamant_cuda_ef_worker_compress(
                cview(&x),
                shards,
                32,
                4,
                error_int8,
                ep,
                1000,
                pk,
                4096,
                st,
                stream(),
            )
        };
        assert_eq!(ew(4, 2), S::InvalidEnum);
        assert_eq!(ew(3, 0), S::LengthMismatch);
        assert_eq!(
            adamant_cuda_ef_server_compress(
                250,
                32,
                4,
                8,
                0,
                x.as_ptr().cast(),
                0,
                0,
                ep,
                250,
                pk,
                16,
                st,
                stream()
            ),
            S::InvalidConfig
        );
        let o = out.as_mut_ptr();
        let ed = |shards: usize, s: *mut f32| {
            adamant_cuda_ef_decompress(pk, 4096, shards, 32, 8, o, 1000, s, stream())
        };
        assert_eq!(ed(3, st), S::LengthMismatch);
        assert_eq!(ed(4, null_mut()), S::NullPointer);
    }
    assert_eq!((out_step, status.to_bits()), (99, 0));
    assert!(packed.iter().all(|&w| w == 0xA5A5_A5A5));
    assert!(out.iter().chain(&err).all(|x| x.to_bits() == 0));
    sc.untouched();
}
