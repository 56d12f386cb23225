//! The C and C++ examples (examples/c/llmc_adamw.c, examples/cpp/multi_tensor.cpp) print one
//! line per step with hashes of every buffer. This test computes the same lines with
//! adamant's Rust API (`adamant_core`'s optimizer values and reductions) on the same inputs
//! and compares them with the outputs of the builds that `scripts/test-c.sh` made: the C
//! example against libadamant.a and libadamant.so, the C++ one through CMake's
//! `find_package(adamant)` against both.
//!
//! It needs those outputs, so it is `#[ignore]`d in a plain `cargo test`; the script runs
//! it with `--ignored` and `ADAMANT_EXAMPLE_OUTPUTS=<dir>`.

use adamant_core::reduce::{combine, partials_by, tile_count};
use adamant_core::rules::adam::AdamConfig;
use adamant_core::rules::lion::LionConfig;
use adamant_core::schedule::Schedule;
use adamant_core::{bf16, Adam, Element, Lion, StepOptions, StepOutcome};
use std::fmt::Write;

struct Lcg(u64);
impl Lcg {
    fn next_value(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let k = (self.0 >> 40) as u32;
        ((k as f32) / 16777216.0) * 2.0 - 1.0
    }
}

fn fnv1a<T: Element>(v: &[T]) -> u64 {
    let mut h = 0xcbf29ce484222325u64;
    for x in v {
        let b = x.to_bits_u32();
        let bytes: Vec<u8> = match std::mem::size_of::<T>() {
            4 => b.to_ne_bytes().to_vec(),
            _ => (b as u16).to_ne_bytes().to_vec(),
        };
        for byte in bytes {
            h ^= byte as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
    }
    h
}

/// Appends one tensor's partials to the gathered list.
type Partials<'a> = &'a dyn Fn(&mut Vec<f32>);

/// `(sum of squares over all tensors by partials + combine)`.
fn global_sum_sq(parts_of: &[Partials<'_>]) -> f32 {
    let mut all = Vec::new();
    for f in parts_of {
        f(&mut all);
    }
    combine(&all)
}

fn partials<T: Element>(g: &[T]) -> impl Fn(&mut Vec<f32>) + '_ {
    move |all: &mut Vec<f32>| {
        let mut p = vec![0.0f32; tile_count(g.len())];
        partials_by(g, |v| v * v, &mut p).unwrap();
        all.extend(p);
    }
}

/// The clip coefficient of `adamant_clip_coef_global_norm`: `(coef, norm)` or None when
/// `sum_sq` is not finite. f32 operations in the documented order.
fn clip(sum_sq: f32, max_norm: f32, eps: f32) -> Option<(f32, f32)> {
    if !sum_sq.is_finite() {
        return None;
    }
    let norm = sum_sq.sqrt();
    Some(((max_norm / (norm + eps)).min(1.0), norm))
}

fn expected_c() -> String {
    let n = 3 * 4096 + 123;
    let mut rng = Lcg(0x2545F4914F6CDD1D);
    let mut params: Vec<f32> = (0..n).map(|_| rng.next_value() * 0.02).collect();
    let mut grads = vec![0.0f32; n];
    let (mut m, mut v) = (vec![0.0f32; n], vec![0.0f32; n]);
    let mut adam = Adam::new(AdamConfig {
        beta1: 0.9,
        beta2: 0.95,
        eps: 1e-8,
        weight_decay: 0.1,
        ..AdamConfig::adamw()
    })
    .unwrap();
    let schedule = Schedule::warmup_cosine(0.0, 6e-4, 2, 10, 6e-5);
    let mut out = String::new();
    for iter in 0..6 {
        for g in grads.iter_mut() {
            *g = rng.next_value();
        }
        if iter == 1 {
            grads[0] = -0.0;
            grads[1] = 1e-45;
            grads[2] = 1.0e18;
            grads[n - 1] = -1.0e18;
        }
        if iter == 3 {
            grads[7] = f32::NAN;
        }
        let lr = schedule.lr_at(adam.state.step);
        let sum_sq = global_sum_sq(&[&partials(&grads)]);
        let Some((coef, norm)) = clip(sum_sq, 1.0, 1e-6) else {
            writeln!(out, "iter {iter} skipped non-finite norm").unwrap();
            continue;
        };
        let mut opts = StepOptions::new(lr);
        opts.clip_coef = Some(coef);
        let r = adam
            .step(&mut params, &grads, &mut m, &mut v, &opts)
            .unwrap();
        assert!(matches!(r, StepOutcome::Applied { .. }));
        writeln!(
            out,
            "iter {iter} step {} norm {:08x} param {:016x} exp_avg {:016x} exp_avg_sq {:016x}",
            adam.state.step,
            norm.to_bits(),
            fnv1a(&params),
            fnv1a(&m),
            fnv1a(&v)
        )
        .unwrap();
    }
    out
}

fn expected_cpp() -> String {
    let (wte_n, ln_n, mlp_n, head_n) = (5000usize, 64usize, 4097usize, 3000usize);
    let mut rng = Lcg(0x9E3779B97F4A7C15);
    let mut wte: Vec<f32> = (0..wte_n).map(|_| rng.next_value() * 0.02).collect();
    let mut ln = vec![1.0f32; ln_n];
    let mut mlp: Vec<bf16> = (0..mlp_n)
        .map(|_| bf16::narrow(rng.next_value() * 0.05))
        .collect();
    let mut head: Vec<f32> = (0..head_n).map(|_| rng.next_value() * 0.02).collect();
    let (mut g_wte, mut g_ln, mut g_head) = (
        vec![0.0f32; wte_n],
        vec![0.0f32; ln_n],
        vec![0.0f32; head_n],
    );
    let mut g_mlp = vec![bf16::ZERO; mlp_n];
    let (mut m_wte, mut v_wte) = (vec![0.0f32; wte_n], vec![0.0f32; wte_n]);
    let (mut m_ln, mut v_ln) = (vec![0.0f32; ln_n], vec![0.0f32; ln_n]);
    let (mut m_mlp, mut v_mlp) = (vec![0.0f32; mlp_n], vec![0.0f32; mlp_n]);
    let mut m_head = vec![0.0f32; head_n];
    let cfg = AdamConfig {
        beta2: 0.95,
        weight_decay: 0.1,
        ..AdamConfig::adamw()
    };
    // One optimizer value per tensor, stepping in lockstep: the multi-tensor call shares one
    // counter, so every tensor sees the same per-step scalars.
    let (mut a_wte, mut a_ln, mut a_mlp) = (
        Adam::new(cfg).unwrap(),
        Adam::new(cfg).unwrap(),
        Adam::new(cfg).unwrap(),
    );
    let mut lion = Lion::new(LionConfig {
        weight_decay: 0.01,
        ..LionConfig::official()
    })
    .unwrap();
    let mut out = String::new();
    for iter in 0..5 {
        for g in g_wte.iter_mut() {
            *g = rng.next_value();
        }
        for g in g_ln.iter_mut() {
            *g = rng.next_value() * 0.1;
        }
        for g in g_mlp.iter_mut() {
            *g = bf16::narrow(rng.next_value() * 3.0);
        }
        for g in g_head.iter_mut() {
            *g = rng.next_value();
        }
        let sum_sq = global_sum_sq(&[
            &partials(&g_wte),
            &partials(&g_ln),
            &partials(&g_mlp),
            &partials(&g_head),
        ]);
        let (coef, norm) = clip(sum_sq, 1.0, 1e-6).unwrap();
        let mut opts = StepOptions::new(1e-3);
        opts.clip_coef = Some(coef);
        a_wte
            .step(&mut wte, &g_wte, &mut m_wte, &mut v_wte, &opts)
            .unwrap();
        a_ln.step(&mut ln, &g_ln, &mut m_ln, &mut v_ln, &opts)
            .unwrap();
        a_mlp
            .step(&mut mlp, &g_mlp, &mut m_mlp, &mut v_mlp, &opts)
            .unwrap();
        opts.lr = 1e-4;
        lion.step(&mut head, &g_head, &mut m_head, &opts).unwrap();
        writeln!(
            out,
            "iter {iter} steps {} {} norm {:08x} wte {:016x} ln {:016x} mlp {:016x} head {:016x} m {:016x} {:016x} {:016x} {:016x} v {:016x} {:016x} {:016x}",
            a_wte.state.step,
            lion.state.step,
            norm.to_bits(),
            fnv1a(&wte),
            fnv1a(&ln),
            fnv1a(&mlp),
            fnv1a(&head),
            fnv1a(&m_wte),
            fnv1a(&m_ln),
            fnv1a(&m_mlp),
            fnv1a(&m_head),
            fnv1a(&v_wte),
            fnv1a(&v_ln),
            fnv1a(&v_mlp)
        )
        .unwrap();
    }
    expected_mini(&mut rng, &mut out);
    expected_loco(&mut rng, &mut out);
    writeln!(
        out,
        "error buffer lengths do not match wte {:016x}",
        fnv1a(&wte)
    )
    .unwrap();
    out
}

/// The C++ example's second model: Adam-mini over four tensors with AdaGC per-tensor clipping
/// (`AdaGc::plan` before the step, `AdaGc::commit` after it), through the Rust API.
fn expected_mini(rng: &mut Lcg, out: &mut String) {
    use adamant_core::clip::{AdaGc, AdaGcConfig};
    use adamant_core::rules::adam_mini::{apply_tensor, Path};
    use adamant_core::{AdamMini, AdamMiniConfig, Begin, BlockLayout, Segment};
    let (q_n, mlp_n, ln_n, fused_n) = (4608usize, 4800usize, 64usize, 160usize);
    let mut q: Vec<f32> = (0..q_n).map(|_| rng.next_value() * 0.02).collect();
    let mut mlp: Vec<bf16> = (0..mlp_n)
        .map(|_| bf16::narrow(rng.next_value() * 0.05))
        .collect();
    let mut ln = vec![1.0f32; ln_n];
    let mut fused: Vec<f32> = (0..fused_n).map(|_| rng.next_value() * 0.02).collect();
    let segs = [
        Segment::Blocks {
            len: 128,
            block_len: 64,
        },
        Segment::Element { len: 32 },
    ];
    let layouts = [
        (BlockLayout::Heads { head_numel: 512 }, true),
        (BlockLayout::Rows { row_len: 96 }, true),
        (BlockLayout::Element, false),
        (BlockLayout::Segments(&segs), true),
    ];
    let numel = [q_n, mlp_n, ln_n, fused_n];
    let sl: Vec<usize> = (0..4)
        .map(|i| layouts[i].0.state_len(numel[i]).unwrap())
        .collect();
    let (mut g_q, mut g_ln, mut g_fused) =
        (vec![0.0f32; q_n], vec![0.0f32; ln_n], vec![0.0f32; fused_n]);
    let mut g_mlp = vec![bf16::ZERO; mlp_n];
    let (mut m_q, mut m_mlp, mut m_ln, mut m_fused) = (
        vec![0.0f32; q_n],
        vec![0.0f32; mlp_n],
        vec![0.0f32; ln_n],
        vec![0.0f32; fused_n],
    );
    let (mut v_q, mut v_mlp, mut v_ln, mut v_fused) = (
        vec![0.0f32; sl[0]],
        vec![0.0f32; sl[1]],
        vec![0.0f32; sl[2]],
        vec![0.0f32; sl[3]],
    );
    let mut mini = AdamMini::new(AdamMiniConfig {
        beta2: 0.95,
        weight_decay: 0.1,
        ..AdamMiniConfig::default()
    })
    .unwrap();
    let mut adagc = AdaGc::new(AdaGcConfig {
        t_start: 2,
        ..AdaGcConfig::default()
    })
    .unwrap();
    let mut gamma = vec![0.0f32; adagc.gamma_len(4)];
    for iter in 0..6 {
        for g in g_q.iter_mut() {
            *g = rng.next_value();
        }
        let scale = if iter == 4 { 40.0 } else { 2.0 };
        for g in g_mlp.iter_mut() {
            *g = bf16::narrow(rng.next_value() * scale);
        }
        for g in g_ln.iter_mut() {
            *g = rng.next_value() * 0.1;
        }
        for g in g_fused.iter_mut() {
            *g = rng.next_value() * 0.5;
        }
        let sums = [
            adamant_core::reduce::sum_sq(&g_q),
            adamant_core::reduce::sum_sq(&g_mlp),
            adamant_core::reduce::sum_sq(&g_ln),
            adamant_core::reduce::sum_sq(&g_fused),
        ];
        let mut coefs = vec![0.0f32; 4];
        let clip = adagc.plan(&sums, &gamma, &mut coefs).unwrap();
        let opts = StepOptions::new(1e-3);
        let Begin::Apply(plan) = mini.begin(&opts, std::iter::empty::<&[f32]>()).unwrap() else {
            unreachable!()
        };
        let with = |i: usize| {
            let mut p = plan;
            p.prep.clip_coef = coefs[i];
            p
        };
        let (l, wd) = layouts[0];
        apply_tensor(
            &mut q,
            &g_q,
            &mut m_q,
            &mut v_q,
            &l,
            wd,
            &with(0),
            Path::Fast,
        )
        .unwrap();
        let (l, wd) = layouts[1];
        apply_tensor(
            &mut mlp,
            &g_mlp,
            &mut m_mlp,
            &mut v_mlp,
            &l,
            wd,
            &with(1),
            Path::Fast,
        )
        .unwrap();
        let (l, wd) = layouts[2];
        apply_tensor(
            &mut ln,
            &g_ln,
            &mut m_ln,
            &mut v_ln,
            &l,
            wd,
            &with(2),
            Path::Fast,
        )
        .unwrap();
        let (l, wd) = layouts[3];
        apply_tensor(
            &mut fused,
            &g_fused,
            &mut m_fused,
            &mut v_fused,
            &l,
            wd,
            &with(3),
            Path::Fast,
        )
        .unwrap();
        mini.commit(&plan);
        assert!(adagc.commit(&sums, &mut gamma, &clip).unwrap());
        writeln!(
            out,
            "mini {iter} steps {} {} norm {:08x} coefs {:016x} gamma {:016x} p {:016x} {:016x} {:016x} {:016x} m {:016x} {:016x} {:016x} {:016x} v {:016x} {:016x} {:016x} {:016x}",
            mini.state.step,
            adagc.state.step,
            clip.global_norm.to_bits(),
            fnv1a(&coefs),
            fnv1a(&gamma),
            fnv1a(&q),
            fnv1a(&mlp),
            fnv1a(&ln),
            fnv1a(&fused),
            fnv1a(&m_q),
            fnv1a(&m_mlp),
            fnv1a(&m_ln),
            fnv1a(&m_fused),
            fnv1a(&v_q),
            fnv1a(&v_mlp),
            fnv1a(&v_ln),
            fnv1a(&v_fused)
        )
        .unwrap();
    }
}

/// The C++ example's LoCo section through `adamant_core::loco` (compress, then the final
/// reduction of `world` copies of chunk 0).
fn expected_loco(rng: &mut Lcg, out: &mut String) {
    use adamant_core::feedback::ErrorBuf;
    use adamant_core::loco::{compress, decompress_reduce, Loco, LocoConfig};
    let mut loco = Loco::new(LocoConfig {
        group_len: 64,
        ..LocoConfig::deepspeed()
    })
    .unwrap();
    let (len, world) = (4 * 300usize, 4usize);
    let layout = loco.layout(len, world, 1).unwrap();
    let mut grad = vec![0.0f32; len];
    let mut err = vec![0u8; layout.error_len(loco.config.error_storage)];
    let mut packed = vec![0u8; layout.compress_len()];
    let mut avg = vec![0.0f32; layout.shard_len()];
    let bytes_hash = |v: &[u8]| {
        let mut h = 0xcbf29ce484222325u64;
        for &b in v {
            h ^= b as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
        h
    };
    for iter in 0..3 {
        for g in grad.iter_mut() {
            *g = rng.next_value() * 0.5;
        }
        let plan = loco.begin().unwrap();
        compress(&plan, &layout, &grad, ErrorBuf::Int8(&mut err), &mut packed).unwrap();
        loco.commit(&plan);
        let received = packed[..layout.chunk_len()].repeat(world);
        decompress_reduce(&layout, &received, &mut avg).unwrap();
        writeln!(
            out,
            "loco {iter} step {} packed {:016x} err {:016x} avg {:016x}",
            loco.state.step,
            bytes_hash(&packed),
            bytes_hash(&err),
            fnv1a(&avg)
        )
        .unwrap();
    }
}

#[test]
#[ignore = "needs the C/C++ example outputs: run scripts/test-c.sh"]
fn c_and_cpp_examples_match_rust_api_bit_for_bit() {
    let dir = std::env::var("ADAMANT_EXAMPLE_OUTPUTS")
        .expect("set ADAMANT_EXAMPLE_OUTPUTS to the directory scripts/test-c.sh writes");
    let c = expected_c();
    let cpp = expected_cpp();
    assert_eq!(c.lines().count(), 6);
    assert!(c.contains("skipped"));
    for (file, want) in [
        ("c_static.txt", &c),
        ("c_shared.txt", &c),
        ("cpp_static.txt", &cpp),
        ("cpp_shared.txt", &cpp),
    ] {
        let path = std::path::Path::new(&dir).join(file);
        let got =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(&got, want, "{file} differs from the Rust API");
    }
}
