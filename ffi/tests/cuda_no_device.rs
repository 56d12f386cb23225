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
            assert_eq!(
                adamant_cuda_adamw_step(&adam, &args, pv, gv, mv, vv, stream()),
                NO_DEVICE
            );
            assert_eq!(
                adamant_cuda_adam_step(&adam, &args, pv, gv, mv, vv, stream()),
                NO_DEVICE
            );
            assert_eq!(
                adamant_cuda_sgd_step(&sgd, &args, pv, gv, mv, stream()),
                NO_DEVICE
            );
            assert_eq!(
                adamant_cuda_lion_step(&lion, &args, pv, gv, mv, stream()),
                NO_DEVICE
            );
            let (ps, gs, ms, vs) = ([pv], [gv], [mv], [vv]);
            for count in [0usize, 1] {
                assert_eq!(
                    adamant_cuda_adamw_step_multi(
                        &adam,
                        &args,
                        ps.as_ptr(),
                        gs.as_ptr(),
                        ms.as_ptr(),
                        vs.as_ptr(),
                        count,
                        stream()
                    ),
                    NO_DEVICE,
                    "count {count}"
                );
                assert_eq!(
                    adamant_cuda_adam_step_multi(
                        &adam,
                        &args,
                        ps.as_ptr(),
                        gs.as_ptr(),
                        ms.as_ptr(),
                        vs.as_ptr(),
                        count,
                        stream()
                    ),
                    NO_DEVICE
                );
                assert_eq!(
                    adamant_cuda_sgd_step_multi(
                        &sgd,
                        &args,
                        ps.as_ptr(),
                        gs.as_ptr(),
                        ms.as_ptr(),
                        count,
                        stream()
                    ),
                    NO_DEVICE
                );
                assert_eq!(
                    adamant_cuda_lion_step_multi(
                        &lion,
                        &args,
                        ps.as_ptr(),
                        gs.as_ptr(),
                        ms.as_ptr(),
                        count,
                        stream()
                    ),
                    NO_DEVICE
                );
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
        assert_eq!(
            adamant_cuda_nonfinite_check(null(), 0, &mut sc.found_inf, stream()),
            NO_DEVICE
        );
        assert_eq!(
            adamant_cuda_step_commit(&mut sc.step, &sc.found_inf, stream()),
            NO_DEVICE
        );
        assert_eq!(
            adamant_cuda_step_commit(&mut sc.step, null(), stream()),
            NO_DEVICE
        );
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
    assert_eq!(
        call(&adam, &good, pv, gv, f16_state, vv),
        S::UnsupportedDtype
    );
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
    // SAFETY: arrays of two views each (or NULL, checked first).
    unsafe {
        assert_eq!(
            adamant_cuda_adamw_step_multi(
                &adam,
                &good,
                null(),
                gs.as_ptr(),
                ms.as_ptr(),
                vs.as_ptr(),
                1,
                stream()
            ),
            S::NullPointer
        );
        assert_eq!(
            adamant_cuda_adamw_step_multi(
                &adam,
                &good,
                ps.as_ptr(),
                gs.as_ptr(),
                ms.as_ptr(),
                vs.as_ptr(),
                2,
                stream()
            ),
            S::InvalidEnum
        );
        // The same buffers in two tensors overlap.
        let ps2 = [pv, pv];
        assert_eq!(
            adamant_cuda_adamw_step_multi(
                &adam,
                &good,
                ps2.as_ptr(),
                gs.as_ptr(),
                ms.as_ptr(),
                vs.as_ptr(),
                2,
                stream()
            ),
            S::Overlap
        );
        // SGD: with momentum the buffer must be as long as the parameters; without it, empty.
        let sgd = adamant_sgd_config {
            momentum: 0.9,
            ..adamant_sgd_config_default()
        };
        let plain = adamant_sgd_config_default();
        let empty = adamant_tensor { len: 0, ..mv };
        assert_eq!(
            adamant_cuda_sgd_step(&sgd, &good, pv, gv, empty, stream()),
            S::LengthMismatch
        );
        assert_eq!(
            adamant_cuda_sgd_step(&plain, &good, pv, gv, mv, stream()),
            S::LengthMismatch
        );
        assert_eq!(
            adamant_cuda_sgd_step(&plain, &good, pv, gv, empty, stream()),
            NO_DEVICE
        );
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
        assert_eq!(
            adamant_cuda_step_commit(null_mut(), null(), stream()),
            S::NullPointer
        );
        let mut parts = vec![0.0f32; 1];
        assert_eq!(
            adamant_cuda_reduce_partials(2, gv, view(&mut parts), stream()),
            S::InvalidEnum
        );
        let bf_parts = adamant_tensor {
            dtype: 1,
            ..view(&mut parts)
        };
        assert_eq!(
            adamant_cuda_reduce_partials(0, gv, bf_parts, stream()),
            S::UnsupportedDtype
        );
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
        assert_eq!(
            adamant_cuda_reduce_partials(0, gv, in_place, stream()),
            S::Overlap
        );
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
    // SAFETY: host structs; the "device" pointers are host memory nothing dereferences
    // without a driver (checked below).
    unsafe {
        assert_eq!(
            adamant_cuda_adamw_step_table(&adamw, &clip_args, &adam, t, stream()),
            NO_DEVICE
        );
        assert_eq!(
            adamant_cuda_adam_step_table(&adamw, &clip_args, &adam, t, stream()),
            NO_DEVICE
        );
        assert_eq!(
            adamant_cuda_lion_step_table(&lion_cfg, &args, &lion, t, stream()),
            NO_DEVICE
        );
        assert_eq!(
            adamant_cuda_sgd_step_table(&sgd, &args, &sgd_m, t, stream()),
            NO_DEVICE
        );
        assert_eq!(
            adamant_cuda_sgd_step_table(&plain, &args, &sgd_plain, t, stream()),
            NO_DEVICE
        );
        // Argument errors first, in the documented order.
        assert_eq!(
            adamant_cuda_adamw_step_table(null(), &clip_args, &adam, t, stream()),
            S::NullPointer
        );
        assert_eq!(
            adamant_cuda_adamw_step_table(&adamw, null(), &adam, t, stream()),
            S::NullPointer
        );
        assert_eq!(
            adamant_cuda_adamw_step_table(&adamw, &clip_args, null(), t, stream()),
            S::NullPointer
        );
        let bad_beta = adamant_adam_config {
            beta2: 1.0,
            ..adamw
        };
        assert_eq!(
            adamant_cuda_adamw_step_table(&bad_beta, &clip_args, &adam, t, stream()),
            S::InvalidConfig
        );
        // A descriptor of another rule, or a clip address the table was not encoded with.
        assert_eq!(
            adamant_cuda_adamw_step_table(&adamw, &clip_args, &lion, t, stream()),
            S::InvalidConfig
        );
        assert_eq!(
            adamant_cuda_lion_step_table(&lion_cfg, &args, &adam, t, stream()),
            S::InvalidConfig
        );
        assert_eq!(
            adamant_cuda_adamw_step_table(&adamw, &args, &adam, t, stream()),
            S::InvalidConfig
        );
        // SGD: momentum step over a table without buffers and the other way round.
        assert_eq!(
            adamant_cuda_sgd_step_table(&sgd, &args, &sgd_plain, t, stream()),
            S::LengthMismatch
        );
        assert_eq!(
            adamant_cuda_sgd_step_table(&plain, &args, &sgd_m, t, stream()),
            S::LengthMismatch
        );
        assert_eq!(
            adamant_cuda_adamw_step_table(&adamw, &clip_args, &adam, null(), stream()),
            S::NullPointer
        );
        assert_eq!(
            adamant_cuda_adamw_step_table(
                &adamw,
                &clip_args,
                &adam,
                t.wrapping_byte_add(4),
                stream()
            ),
            S::Misaligned
        );
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
