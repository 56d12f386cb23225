//! Property test of the whole ABI surface for steps and reductions: random rules, tensor
//! counts, lengths, dtypes, placements, and at most one injected fault per case (invalid enum
//! integers, unsupported dtypes, NULLs, misaligned pointers, overlapping buffers, length
//! mismatches, huge lengths, invalid configurations, `found_inf`, non-finite gradients, step
//! overflow, bad `out_*` pointers). Every case asserts the exact status; on error, that no byte
//! of the arena holding every buffer (and `out_step`) changed; on success, that no byte outside
//! the written buffers changed.
//!
//! Cases: `ADAMANT_FUZZ_CASES` (default 120000), seed `ADAMANT_FUZZ_SEED` (printed).

mod common;
use adamant::*;
use adamant_core::{bf16, f16, Element};
use common::Rng;

const ARENA: usize = 8192;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Rule {
    AdamW,
    Adam,
    Sgd,
    Lion,
    Reduce,
}

#[derive(Clone, Copy, Debug)]
struct Buf {
    off: usize,
    dtype: u32,
    len: usize,
    written: bool,
    null: bool,
}

impl Buf {
    fn size(&self) -> usize {
        match self.dtype {
            0 => 4,
            1 | 2 => 2,
            _ => 4,
        }
    }
    fn bytes(&self) -> usize {
        self.len.saturating_mul(self.size())
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    None,
    BadDtype,
    BadFlag,
    Unsupported,
    NullData,
    NullStruct,
    NullArray,
    LenMismatch,
    Misalign,
    Overlap,
    TooLarge,
    Config,
    FoundInf,
    NonFinite,
    StepOverflow,
    OutNull,
    OutMisaligned,
    OutOverlap,
    BadOp,
}

const FAULTS: [Fault; 19] = [
    Fault::None,
    Fault::BadDtype,
    Fault::BadFlag,
    Fault::Unsupported,
    Fault::NullData,
    Fault::NullStruct,
    Fault::NullArray,
    Fault::LenMismatch,
    Fault::Misalign,
    Fault::Overlap,
    Fault::TooLarge,
    Fault::Config,
    Fault::FoundInf,
    Fault::NonFinite,
    Fault::StepOverflow,
    Fault::OutNull,
    Fault::OutMisaligned,
    Fault::OutOverlap,
    Fault::BadOp,
];

struct Case {
    rule: Rule,
    multi: bool,
    tensors: Vec<Vec<Buf>>,
    out: Buf,
    out_null: bool,
    adam: adamant_adam_config,
    sgd: adamant_sgd_config,
    lion: adamant_lion_config,
    opt: adamant_step_options,
    step: u64,
    null_struct: bool,
    null_array: bool,
    op: u32,
    partials_len: usize,
}

/// Write a finite value of `dtype` at byte `off`.
fn put_finite(arena: &mut [u8], off: usize, dtype: u32, x: f32) {
    match dtype {
        0 => arena[off..off + 4].copy_from_slice(&x.to_bits().to_ne_bytes()),
        1 => arena[off..off + 2].copy_from_slice(&bf16::narrow(x).to_bits().to_ne_bytes()),
        _ => arena[off..off + 2].copy_from_slice(&f16::narrow(x).to_bits().to_ne_bytes()),
    }
}

fn valid_dtype(rng: &mut Rng, state: bool) -> u32 {
    if state {
        rng.below(2) as u32
    } else {
        rng.below(3) as u32
    }
}

fn bad_enum(rng: &mut Rng) -> u32 {
    [
        3,
        4,
        7,
        255,
        0x8000_0000,
        u32::MAX,
        3 + rng.below(1 << 30) as u32,
    ][rng.below(7) as usize]
}

/// Generate a case and the status it must produce; fills the arena.
fn generate(rng: &mut Rng, arena: &mut [u8]) -> (Case, adamant_status) {
    use adamant_status as S;
    let rule =
        [Rule::AdamW, Rule::Adam, Rule::Sgd, Rule::Lion, Rule::Reduce][rng.below(5) as usize];
    let multi = rng.chance(1, 2);
    let count = if multi { rng.below(4) as usize } else { 1 };
    let momentum = if rng.chance(1, 2) { 0.9 } else { 0.0 };
    // Buffers per tensor: (written, state).
    let shape: &[(bool, bool)] = match rule {
        Rule::AdamW | Rule::Adam => &[(true, false), (false, false), (true, true), (true, true)],
        Rule::Sgd | Rule::Lion => &[(true, false), (false, false), (true, true)],
        Rule::Reduce => &[(false, false)],
    };
    let mut at = 8 * (1 + rng.below(4) as usize);
    let mut alloc = |rng: &mut Rng, bytes: usize| {
        let off = at;
        at += (bytes + 8 + 8 * rng.below(4) as usize + 7) & !7;
        off
    };
    let mut tensors = Vec::new();
    for _ in 0..count {
        let n = if rng.chance(1, 8) {
            0
        } else {
            1 + rng.below(24) as usize
        };
        let mut bufs = Vec::new();
        let state_dtype = valid_dtype(rng, true);
        for (b, &(written, state)) in shape.iter().enumerate() {
            let dtype = if state {
                state_dtype
            } else {
                valid_dtype(rng, false)
            };
            let len = if rule == Rule::Sgd && b == 2 && momentum == 0.0 {
                0
            } else {
                n
            };
            let mut buf = Buf {
                off: 0,
                dtype,
                len,
                written,
                null: false,
            };
            buf.off = alloc(rng, len * 4);
            for i in 0..len {
                let x = rng.float(if state && b == 3 { 0.0 } else { 1.0 }).abs()
                    * if b == 3 { 1.0 } else { rng.float(1.0).signum() };
                put_finite(arena, buf.off + i * buf.size(), dtype, x);
            }
            bufs.push(buf);
        }
        tensors.push(bufs);
    }
    let partials_len = tensors
        .iter()
        .map(|t| adamant_reduce_tile_count(t[0].len))
        .sum();
    let out_bytes = if rule == Rule::Reduce {
        partials_len * 4
    } else {
        8
    };
    let out = Buf {
        off: alloc(rng, out_bytes),
        dtype: 0,
        len: out_bytes / 4,
        written: true,
        null: false,
    };
    assert!(at + 512 < ARENA);

    let mut c = Case {
        rule,
        multi,
        tensors,
        out,
        out_null: false,
        adam: if rule == Rule::Adam {
            adamant_adam_config_default()
        } else {
            adamant_adamw_config_default()
        },
        sgd: adamant_sgd_config_default(),
        lion: adamant_lion_config_default(),
        opt: adamant_step_options_default(),
        step: rng.below(1000),
        null_struct: false,
        null_array: false,
        op: rng.below(2) as u32,
        partials_len,
    };
    c.sgd.momentum = momentum;
    if rng.chance(1, 3) {
        c.opt.has_grad_scale = 1;
        c.opt.grad_scale = [1.0, 0.5, 1024.0, 65536.0][rng.below(4) as usize];
    }
    if rng.chance(1, 3) {
        c.opt.has_clip_coef = 1;
        c.opt.clip_coef = rng.float(1.0).abs();
    }
    c.opt.check_finite = rng.below(2) as u32;
    if rng.chance(1, 4) {
        c.adam.stochastic_rounding = 1;
        c.sgd.stochastic_rounding = 1;
        c.lion.stochastic_rounding = 1;
    }

    // Views with len > 0, as (tensor, buffer).
    let nonempty: Vec<(usize, usize)> = (0..c.tensors.len())
        .flat_map(|i| (0..shape.len()).map(move |b| (i, b)))
        .filter(|&(i, b)| c.tensors[i][b].len > 0)
        .collect();
    let pick = |rng: &mut Rng, v: &[(usize, usize)]| v[rng.below(v.len() as u64) as usize];
    let step_rule = rule != Rule::Reduce;
    let fault = FAULTS[rng.below(FAULTS.len() as u64) as usize];
    let want = match fault {
        Fault::None => S::Ok,
        Fault::BadDtype if !c.tensors.is_empty() => {
            let i = rng.below(c.tensors.len() as u64) as usize;
            let b = rng.below(shape.len() as u64) as usize;
            c.tensors[i][b].dtype = bad_enum(rng);
            S::InvalidEnum
        }
        Fault::BadFlag if step_rule => {
            let v = 2 + rng.below(1 << 31) as u32;
            match rng.below(4) {
                0 => c.opt.has_grad_scale = v,
                1 => c.opt.has_clip_coef = v,
                2 => c.opt.check_finite = v,
                _ => {
                    c.adam.stochastic_rounding = v;
                    c.sgd.stochastic_rounding = v;
                    c.lion.stochastic_rounding = v;
                }
            }
            S::InvalidEnum
        }
        Fault::Unsupported if step_rule && !c.tensors.is_empty() => {
            let i = rng.below(c.tensors.len() as u64) as usize;
            let b = 2 + rng.below(shape.len() as u64 - 2) as usize;
            if shape.len() == 4 && rng.chance(1, 2) {
                // The two Adam moments with different (valid) dtypes.
                c.tensors[i][3].dtype = 1 - c.tensors[i][2].dtype;
            } else {
                c.tensors[i][b].dtype = adamant_dtype::F16 as u32;
            }
            S::UnsupportedDtype
        }
        Fault::NullData if !nonempty.is_empty() => {
            let (i, b) = pick(rng, &nonempty);
            c.tensors[i][b].null = true;
            S::NullPointer
        }
        Fault::NullStruct if step_rule => {
            c.null_struct = true;
            S::NullPointer
        }
        Fault::NullArray if c.multi && !c.tensors.is_empty() => {
            c.null_array = true;
            S::NullPointer
        }
        Fault::LenMismatch if !c.tensors.is_empty() => {
            if rule == Rule::Reduce {
                c.partials_len += 1 + rng.below(3) as usize;
            } else {
                let i = rng.below(c.tensors.len() as u64) as usize;
                let b = rng.below(shape.len() as u64) as usize;
                c.tensors[i][b].len += 1 + rng.below(3) as usize;
            }
            S::LengthMismatch
        }
        Fault::Misalign if !nonempty.is_empty() => {
            let (i, b) = pick(rng, &nonempty);
            let buf = &mut c.tensors[i][b];
            buf.off += if buf.size() == 4 {
                1 + rng.below(3) as usize
            } else {
                [1, 3][rng.below(2) as usize]
            };
            S::Misaligned
        }
        Fault::Overlap if nonempty.len() >= 2 => {
            let (i, b) = pick(rng, &nonempty);
            let (j, e) = pick(rng, &nonempty);
            let (x, y) = (c.tensors[i][b], c.tensors[j][e]);
            if (i, b) == (j, e) || !(x.written || y.written) {
                return generate(rng, arena);
            }
            let k = rng.below(y.bytes().div_ceil(4) as u64) as usize;
            c.tensors[i][b].off = y.off + 4 * k;
            S::Overlap
        }
        Fault::TooLarge if !c.tensors.is_empty() => {
            let i = rng.below(c.tensors.len() as u64) as usize;
            let b = rng.below(shape.len() as u64) as usize;
            c.tensors[i][b].len =
                [usize::MAX, usize::MAX / 2 + 1, isize::MAX as usize][rng.below(3) as usize];
            S::LengthTooLarge
        }
        Fault::Config if step_rule => {
            match rng.below(6) {
                0 => c.opt.lr = [-1e-3, f64::NAN, f64::INFINITY][rng.below(3) as usize],
                1 => {
                    c.adam.beta1 = 1.0;
                    c.lion.beta1 = 1.5;
                    c.sgd.dampening = 2.0;
                }
                2 => {
                    c.adam.eps = 0.0;
                    c.lion.beta2 = -0.5;
                    c.sgd.momentum = -1.0;
                }
                3 => {
                    c.opt.has_grad_scale = 1;
                    c.opt.grad_scale = [0.0, -1.0, f32::INFINITY, f32::NAN][rng.below(4) as usize];
                }
                4 => {
                    c.opt.has_clip_coef = 1;
                    c.opt.clip_coef = [-0.5, f32::NAN, f32::INFINITY][rng.below(3) as usize];
                }
                _ => {
                    c.adam.weight_decay = f64::NAN;
                    c.lion.weight_decay = -1.0;
                    c.sgd.weight_decay = f64::NEG_INFINITY;
                }
            }
            S::InvalidConfig
        }
        Fault::FoundInf if step_rule => {
            c.opt.found_inf = 1 + rng.below(u32::MAX as u64) as u32;
            S::SkippedFoundInf
        }
        Fault::NonFinite if step_rule => {
            let grads: Vec<(usize, usize)> =
                nonempty.iter().copied().filter(|&(_, b)| b == 1).collect();
            if grads.is_empty() {
                return generate(rng, arena);
            }
            let (i, _) = pick(rng, &grads);
            let g = c.tensors[i][1];
            let k = rng.below(g.len as u64) as usize;
            let x = [f32::INFINITY, f32::NEG_INFINITY, f32::NAN][rng.below(3) as usize];
            let off = g.off + k * g.size();
            match g.dtype {
                0 => arena[off..off + 4].copy_from_slice(&x.to_bits().to_ne_bytes()),
                1 => {
                    arena[off..off + 2].copy_from_slice(&bf16::from_f32(x).to_bits().to_ne_bytes())
                }
                _ => arena[off..off + 2].copy_from_slice(&f16::from_f32(x).to_bits().to_ne_bytes()),
            }
            if c.opt.has_grad_scale == 0 {
                c.opt.check_finite = 1;
            }
            S::SkippedNonFinite
        }
        Fault::StepOverflow if step_rule => {
            c.step = u64::MAX;
            S::StepOverflow
        }
        Fault::OutNull if step_rule || c.partials_len > 0 => {
            c.out_null = true;
            S::NullPointer
        }
        Fault::OutMisaligned if step_rule || c.partials_len > 0 => {
            c.out.off += if step_rule {
                4 * rng.below(2) as usize + [1, 2, 3, 4][rng.below(4) as usize] % 8
            } else {
                1 + rng.below(3) as usize
            };
            if step_rule && c.out.off % 8 == 0 {
                c.out.off += 4;
            }
            S::Misaligned
        }
        Fault::OutOverlap if !nonempty.is_empty() && (step_rule || c.partials_len > 0) => {
            let (i, b) = pick(rng, &nonempty);
            let y = c.tensors[i][b];
            let k = rng.below(y.bytes().div_ceil(8) as u64) as usize;
            c.out.off = (y.off + 8 * k) & !7;
            S::Overlap
        }
        Fault::BadOp if rule == Rule::Reduce => {
            c.op = bad_enum(rng);
            S::InvalidEnum
        }
        _ => S::Ok,
    };
    (c, want)
}

fn tensor_view(base: *mut u8, b: &Buf) -> adamant_tensor {
    adamant_tensor {
        data: if b.null {
            core::ptr::null_mut()
        } else {
            base.wrapping_add(b.off).cast()
        },
        dtype: b.dtype,
        len: b.len,
    }
}

fn const_view(base: *mut u8, b: &Buf) -> adamant_const_tensor {
    let t = tensor_view(base, b);
    adamant_const_tensor {
        data: t.data,
        dtype: t.dtype,
        len: t.len,
    }
}

/// Run the case; returns the status.
fn run(c: &Case, base: *mut u8) -> adamant_status {
    let col = |b: usize| -> Vec<adamant_tensor> {
        c.tensors.iter().map(|t| tensor_view(base, &t[b])).collect()
    };
    let ccol = |b: usize| -> Vec<adamant_const_tensor> {
        c.tensors.iter().map(|t| const_view(base, &t[b])).collect()
    };
    let out_step: *mut u64 = if c.out_null {
        core::ptr::null_mut()
    } else {
        base.wrapping_add(c.out.off).cast()
    };
    let arr = |v: &Vec<adamant_tensor>| {
        if c.null_array {
            core::ptr::null()
        } else {
            v.as_ptr()
        }
    };
    let carr = |v: &Vec<adamant_const_tensor>| {
        if c.null_array {
            core::ptr::null()
        } else {
            v.as_ptr()
        }
    };
    let opt: *const adamant_step_options = &c.opt;
    let n = c.tensors.len();
    // SAFETY: every pointer is into the arena (in bounds, or deliberately invalid in a way the
    // ABI must reject before dereferencing) or NULL; arrays hold `n` views.
    unsafe {
        match c.rule {
            Rule::AdamW | Rule::Adam => {
                let cfg: *const adamant_adam_config = if c.null_struct {
                    core::ptr::null()
                } else {
                    &c.adam
                };
                let (p, g, m, v) = (col(0), ccol(1), col(2), col(3));
                match (c.multi, c.rule) {
                    (true, Rule::AdamW) => adamant_adamw_step_multi(
                        cfg,
                        opt,
                        c.step,
                        arr(&p),
                        carr(&g),
                        arr(&m),
                        arr(&v),
                        n,
                        out_step,
                    ),
                    (true, _) => adamant_adam_step_multi(
                        cfg,
                        opt,
                        c.step,
                        arr(&p),
                        carr(&g),
                        arr(&m),
                        arr(&v),
                        n,
                        out_step,
                    ),
                    (false, Rule::AdamW) => {
                        adamant_adamw_step(cfg, opt, c.step, p[0], g[0], m[0], v[0], out_step)
                    }
                    (false, _) => {
                        adamant_adam_step(cfg, opt, c.step, p[0], g[0], m[0], v[0], out_step)
                    }
                }
            }
            Rule::Sgd => {
                let cfg: *const adamant_sgd_config = if c.null_struct {
                    core::ptr::null()
                } else {
                    &c.sgd
                };
                let (p, g, b) = (col(0), ccol(1), col(2));
                if c.multi {
                    adamant_sgd_step_multi(
                        cfg,
                        opt,
                        c.step,
                        arr(&p),
                        carr(&g),
                        arr(&b),
                        n,
                        out_step,
                    )
                } else {
                    adamant_sgd_step(cfg, opt, c.step, p[0], g[0], b[0], out_step)
                }
            }
            Rule::Lion => {
                let cfg: *const adamant_lion_config = if c.null_struct {
                    core::ptr::null()
                } else {
                    &c.lion
                };
                let (p, g, m) = (col(0), ccol(1), col(2));
                if c.multi {
                    adamant_lion_step_multi(
                        cfg,
                        opt,
                        c.step,
                        arr(&p),
                        carr(&g),
                        arr(&m),
                        n,
                        out_step,
                    )
                } else {
                    adamant_lion_step(cfg, opt, c.step, p[0], g[0], m[0], out_step)
                }
            }
            Rule::Reduce => {
                let x = ccol(0);
                let out: *mut f32 = if c.out_null {
                    core::ptr::null_mut()
                } else {
                    base.wrapping_add(c.out.off).cast()
                };
                if c.multi {
                    adamant_reduce_partials_multi(carr(&x), n, c.op, out, c.partials_len)
                } else {
                    adamant_reduce_partials(x[0], c.op, out, c.partials_len)
                }
            }
        }
    }
}

#[test]
fn fuzz_abi_statuses_and_no_write_on_error() {
    let cases: usize = std::env::var("ADAMANT_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(120_000);
    let seed: u64 = std::env::var("ADAMANT_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_ADA3);
    println!("fuzz: {cases} cases, seed {seed} (ADAMANT_FUZZ_SEED)");
    let mut rng = Rng(seed);
    let mut mem = vec![0u64; ARENA / 8];
    let mut seen = std::collections::HashMap::new();
    for case in 0..cases {
        // SAFETY: viewing the u64 arena as bytes (u8 has no alignment or validity needs).
        let arena: &mut [u8] =
            unsafe { core::slice::from_raw_parts_mut(mem.as_mut_ptr().cast(), ARENA) };
        for w in arena.chunks_mut(8) {
            w.copy_from_slice(&rng.next().to_ne_bytes());
        }
        let (c, want) = generate(&mut rng, arena);
        let before = arena.to_vec();
        let base = mem.as_mut_ptr().cast::<u8>();
        let got = run(&c, base);
        // SAFETY: as above; the ABI call has returned.
        let arena: &[u8] = unsafe { core::slice::from_raw_parts(mem.as_ptr().cast(), ARENA) };
        let ctx = || {
            format!(
                "case {case} seed {seed}: rule {:?} multi {} want {want:?} got {got:?}",
                c.rule, c.multi
            )
        };
        assert_eq!(got, want, "{}", ctx());
        *seen
            .entry(format!("{:?}/{:?}", c.rule, got))
            .or_insert(0usize) += 1;
        if got != adamant_status::Ok {
            assert!(arena == &before[..], "{}: bytes written on error", ctx());
            continue;
        }
        // Success: only the written buffers (and out) may differ.
        let mut may = vec![false; ARENA];
        let mut mark = |b: &Buf| {
            if b.written {
                for m in &mut may[b.off..b.off + b.bytes()] {
                    *m = true;
                }
            }
        };
        for t in &c.tensors {
            for b in t {
                mark(b);
            }
        }
        let out_bytes = if c.rule == Rule::Reduce {
            c.partials_len * 4
        } else {
            8
        };
        for m in &mut may[c.out.off..c.out.off + out_bytes] {
            *m = true;
        }
        for i in 0..ARENA {
            assert!(
                may[i] || arena[i] == before[i],
                "{}: byte {i} outside the written buffers changed",
                ctx()
            );
        }
        if c.rule != Rule::Reduce {
            let out = u64::from_ne_bytes(arena[c.out.off..c.out.off + 8].try_into().unwrap());
            assert_eq!(out, c.step + 1, "{}", ctx());
        }
    }
    // Every status the generator can produce was produced for every rule.
    let mut keys: Vec<_> = seen.iter().collect();
    keys.sort();
    println!("{keys:?}");
    for rule in ["AdamW", "Adam", "Sgd", "Lion"] {
        for s in [
            "Ok",
            "NullPointer",
            "LengthMismatch",
            "Misaligned",
            "Overlap",
            "InvalidEnum",
            "InvalidConfig",
            "UnsupportedDtype",
            "SkippedFoundInf",
            "SkippedNonFinite",
            "StepOverflow",
            "LengthTooLarge",
        ] {
            if cases >= 50_000 {
                assert!(
                    seen.contains_key(&format!("{rule}/{s}")),
                    "{rule}/{s} never produced"
                );
            }
        }
    }
}
