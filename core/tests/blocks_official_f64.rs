//! Agreement with float64 evaluations of the official code, written here from
//! reference/algorithms.md sections 2 (Adam-mini v1.1.1) and 3 (AdaGC), not from core:
//! - Adam-mini on a small Llama-like named parameter set with grouped-query heads and biases,
//!   partitioned by core's name rules, 100 steps: every parameter within 2e-6 absolute
//!   (parameters of magnitude <= 1, lr 1e-3).
//! - AdaGC on gradient sequences with spikes: clip coefficients and thresholds within 2e-5
//!   relative of the f64 official rule, at every step (per-tensor and global modes).

// The f64 references spell the official code's indexed loops and argument lists.
#![allow(clippy::too_many_arguments, clippy::needless_range_loop)]

use adamant_core::clip::{self, AdaGc, AdaGcConfig, AdaGcMode};
use adamant_core::partition::{partition, BlockRule, ModelDims, NameRules, Param, ParamBlocks};
use adamant_core::rules::adam_mini::{apply_tensor, Path};
use adamant_core::{AdamMini, AdamMiniConfig, Begin, BlockLayout, StepOptions};

fn lcg(s: &mut u64) -> f64 {
    *s = s
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    ((*s >> 11) as f64 / (1u64 << 53) as f64) - 0.5
}

fn llama_like() -> (ModelDims, Vec<(String, Vec<usize>)>) {
    let (dim, nh, nkv, vocab, ffn) = (64usize, 4usize, 2usize, 40usize, 96usize);
    let hd = dim / nh;
    let mut p = vec![("model.embed_tokens.weight".to_string(), vec![vocab, dim])];
    for l in 0..2 {
        let a = format!("model.layers.{l}.self_attn");
        p.push((format!("{a}.q_proj.weight"), vec![nh * hd, dim]));
        p.push((format!("{a}.q_proj.bias"), vec![nh * hd]));
        p.push((format!("{a}.k_proj.weight"), vec![nkv * hd, dim]));
        p.push((format!("{a}.k_proj.bias"), vec![nkv * hd]));
        p.push((format!("{a}.v_proj.weight"), vec![nkv * hd, dim]));
        p.push((format!("{a}.v_proj.bias"), vec![nkv * hd]));
        p.push((format!("{a}.o_proj.weight"), vec![dim, nh * hd]));
        let m = format!("model.layers.{l}.mlp");
        p.push((format!("{m}.gate_proj.weight"), vec![ffn, dim]));
        p.push((format!("{m}.up_proj.weight"), vec![ffn, dim]));
        p.push((format!("{m}.down_proj.weight"), vec![dim, ffn]));
        p.push((
            format!("model.layers.{l}.input_layernorm.weight"),
            vec![dim],
        ));
        p.push((
            format!("model.layers.{l}.post_attention_layernorm.weight"),
            vec![dim],
        ));
    }
    p.push(("model.norm.weight".to_string(), vec![dim]));
    p.push(("lm_head.weight".to_string(), vec![vocab, dim]));
    (
        ModelDims {
            dim,
            n_heads: nh,
            n_kv_heads: nkv,
        },
        p,
    )
}

/// The official partition, restated: (block length or 0 for per-element, weight decay on).
fn official_block(name: &str, shape: &[usize], dim: usize, n_heads: usize) -> (usize, bool) {
    let n = name.to_lowercase();
    let has = |set: &[&str]| set.iter().any(|s| n.contains(s));
    let numel: usize = shape.iter().product();
    let wd = !has(&["norm", "ln", "bias"]);
    let bl = if has(&["bias"]) {
        0
    } else if has(&["k_proj", "q_proj", "wq", "wk", "query", "key"]) {
        dim * dim / n_heads
    } else if has(&[
        "embed",
        "embd",
        "wte",
        "lm_head",
        "output",
        "final_layer",
        "v_proj",
        "wv",
        "value",
        "feed_forward",
        "linear",
        "mlp",
        "o_proj",
        "wo",
        "attn.proj",
    ]) {
        numel / shape[0]
    } else {
        numel
    };
    (bl, wd)
}

struct Ref64 {
    p: Vec<f64>,
    m: Vec<f64>,
    v: Vec<f64>,
    block: usize,
    wd: bool,
}

/// One official Adam-mini step in f64 (code order of algorithms.md section 2).
fn official_step(r: &mut Ref64, g: &[f64], t: u64, lr: f64, b1: f64, b2: f64, eps: f64, wd: f64) {
    let bc1 = 1.0 - b1.powi(t as i32);
    let bc2 = 1.0 - b2.powi(t as i32);
    if r.block == 0 {
        for i in 0..g.len() {
            r.v[i] = r.v[i] * b2 + (1.0 - b2) * g[i] * g[i];
            if r.wd && wd > 0.0 {
                r.p[i] *= 1.0 - lr * wd;
            }
            r.m[i] += (1.0 - b1) * (g[i] - r.m[i]);
            let h = r.v[i].sqrt() / bc2.sqrt() + eps;
            r.p[i] -= lr / bc1 * r.m[i] / h;
        }
        return;
    }
    for (b, chunk) in g.chunks(r.block).enumerate() {
        let s: f64 = chunk.iter().map(|x| x * x).sum::<f64>() / chunk.len() as f64;
        r.v[b] = r.v[b] * b2 + (1.0 - b2) * s;
        let h = r.v[b].sqrt() / bc2.sqrt() + eps;
        let k = (1.0 / bc1) / h;
        for j in 0..chunk.len() {
            let i = b * r.block + j;
            if r.wd && wd > 0.0 {
                r.p[i] *= 1.0 - lr * wd;
            }
            r.m[i] += (1.0 - b1) * (g[i] - r.m[i]);
            r.p[i] -= r.m[i] * k * lr;
        }
    }
}

#[test]
fn agreement_adam_mini_with_official_f64_over_100_steps() {
    let (dims, named) = llama_like();
    let params: Vec<Param> = named
        .iter()
        .map(|(n, s)| Param { name: n, shape: s })
        .collect();
    let blank = ParamBlocks {
        rule: BlockRule::Tensor,
        layout: BlockLayout::Tensor,
        weight_decay: false,
        numel: 0,
        state_len: 0,
    };
    let mut desc = vec![blank; params.len()];
    partition(&params, &dims, &NameRules::OFFICIAL, &[], &mut desc).unwrap();
    let (lr, b1, b2, eps, wd) = (1e-3, 0.9, 0.95, 1e-8, 0.1);
    let cfg = AdamMiniConfig {
        lr,
        beta1: b1,
        beta2: b2,
        eps,
        weight_decay: wd,
        stochastic_rounding_seed: None,
    };
    let mut opt = AdamMini::new(cfg).unwrap();
    let mut seed = 42u64;
    let mut p32: Vec<Vec<f32>> = Vec::new();
    let mut m32: Vec<Vec<f32>> = Vec::new();
    let mut v32: Vec<Vec<f32>> = Vec::new();
    let mut refs: Vec<Ref64> = Vec::new();
    for (d, (name, shape)) in desc.iter().zip(&named) {
        let p: Vec<f32> = (0..d.numel).map(|_| lcg(&mut seed) as f32).collect();
        let (bl, w) = official_block(name, shape, dims.dim, dims.n_heads);
        assert_eq!(w, d.weight_decay, "{name}");
        let nv = d.numel.checked_div(bl).unwrap_or(d.numel);
        assert_eq!(nv, d.state_len, "{name}");
        refs.push(Ref64 {
            p: p.iter().map(|&x| x as f64).collect(),
            m: vec![0.0; d.numel],
            v: vec![0.0; nv],
            block: bl,
            wd: w,
        });
        p32.push(p);
        m32.push(vec![0.0; d.numel]);
        v32.push(vec![0.0; d.state_len]);
    }
    let mut worst = 0.0f64;
    for t in 1..=100u64 {
        // Gradients with per-row and per-tensor scale structure, identical f32 inputs for both.
        let grads: Vec<Vec<f32>> = desc
            .iter()
            .enumerate()
            .map(|(ti, d)| {
                let tensor_scale = 0.01 * (1 + ti % 5) as f64;
                (0..d.numel)
                    .map(|i| (lcg(&mut seed) * tensor_scale * (1.0 + (i / 64 % 7) as f64)) as f32)
                    .collect()
            })
            .collect();
        let plan = match opt
            .begin(&StepOptions::new(lr), grads.iter().map(|g| g.as_slice()))
            .unwrap()
        {
            Begin::Apply(p) => p,
            Begin::Skip(_) => unreachable!("no skip without found_inf or non-finite grads"),
        };
        for (i, d) in desc.iter().enumerate() {
            apply_tensor(
                &mut p32[i],
                &grads[i],
                &mut m32[i],
                &mut v32[i],
                &d.layout,
                d.weight_decay,
                &plan,
                Path::Fast,
            )
            .unwrap();
            let g64: Vec<f64> = grads[i].iter().map(|&x| x as f64).collect();
            official_step(&mut refs[i], &g64, t, lr, b1, b2, eps, wd);
        }
        opt.commit(&plan);
    }
    for (i, r) in refs.iter().enumerate() {
        for (a, b) in p32[i].iter().zip(&r.p) {
            worst = worst.max((*a as f64 - b).abs());
        }
        // The trajectories moved: the test compares something.
        let moved = p32[i].iter().zip(&named[i].1).count();
        assert!(moved > 0);
    }
    eprintln!("adam-mini: max |p32 - p64| = {worst:e}");
    assert!(worst <= 2e-6, "max |p32 - p64| = {worst:e}");
    assert!(
        worst > 0.0,
        "f32 and f64 cannot agree exactly over 100 steps"
    );
}

/// The official AdaGC rule in f64 with the warm-up's second norm over the clipped gradient.
struct AdaGc64 {
    gamma: Vec<f64>,
    k: u64,
}

impl AdaGc64 {
    /// Returns each tensor's coefficient.
    fn step(&mut self, g: &[Vec<f64>], c: &AdaGcConfig) -> Vec<f64> {
        self.k += 1;
        let sums: Vec<f64> = g.iter().map(|t| t.iter().map(|x| x * x).sum()).collect();
        let gnorm = sums.iter().sum::<f64>().sqrt();
        let first = self.k == 1;
        let global = c.mode == AdaGcMode::Global;
        let norms: Vec<f64> = if global {
            vec![gnorm]
        } else {
            sums.iter().map(|s| s.sqrt()).collect()
        };
        let mut coefs = vec![1.0; norms.len()];
        if self.k <= c.t_start {
            let cc = c.max_norm / (gnorm + c.eps);
            let cc = if cc < 1.0 { cc } else { 1.0 };
            for (i, n) in norms.iter().enumerate() {
                let clipped = n * cc; // norm of the clipped gradient
                self.gamma[i] = if first {
                    clipped
                } else {
                    self.gamma[i].min(clipped)
                };
                coefs[i] = cc;
            }
        } else {
            for (i, &n) in norms.iter().enumerate() {
                if first {
                    self.gamma[i] = n;
                }
                let mut clipped = n;
                if n > c.lambda_rel * self.gamma[i] {
                    coefs[i] = c.lambda_rel * self.gamma[i] / (n + c.eps);
                    clipped = c.lambda_rel * self.gamma[i];
                }
                self.gamma[i] = c.beta * self.gamma[i] + (1.0 - c.beta) * clipped;
            }
        }
        if global {
            vec![coefs[0]; g.len()]
        } else {
            coefs
        }
    }
}

fn spiky_grads(step: u64, sizes: &[usize], seed: &mut u64) -> Vec<Vec<f32>> {
    sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            let mut scale = 0.003 * (1 + i) as f64 * (1.0 + 0.3 * ((step as f64) * 0.1).sin());
            if (step == 30 || step == 31) && i == 1 {
                scale *= 50.0;
            }
            if step == 120 && i == 2 {
                scale *= 1000.0;
            }
            if step == 150 {
                scale *= 20.0;
            }
            (0..n).map(|_| (lcg(seed) * scale) as f32).collect()
        })
        .collect()
}

fn run_adagc(cfg: AdaGcConfig, steps: u64) -> (f64, usize, usize) {
    let sizes = [5000usize, 300, 10000, 64];
    let mut ours = AdaGc::new(cfg).unwrap();
    let mut gamma = vec![0.0f32; ours.gamma_len(sizes.len())];
    let mut r64 = AdaGc64 {
        gamma: vec![0.0; gamma.len()],
        k: 0,
    };
    let mut seed = 7u64;
    let mut worst = 0.0f64;
    let mut clipped_steps = 0;
    let mut unclipped = 0;
    for step in 1..=steps {
        let g = spiky_grads(step, &sizes, &mut seed);
        let sums: Vec<f32> = g.iter().map(|t| clip::tensor_sum_sq(t, 1.0)).collect();
        let mut coefs = vec![0.0f32; sizes.len()];
        let plan = ours.plan(&sums, &gamma, &mut coefs).unwrap();
        assert!(ours.commit(&sums, &mut gamma, &plan).unwrap());
        let g64: Vec<Vec<f64>> = g
            .iter()
            .map(|t| t.iter().map(|&x| x as f64).collect())
            .collect();
        let want = r64.step(&g64, &cfg);
        for (a, b) in coefs.iter().zip(&want) {
            worst = worst.max((*a as f64 - b).abs() / b.abs());
            if *b < 1.0 {
                clipped_steps += 1;
            } else {
                unclipped += 1;
            }
        }
        for (a, b) in gamma.iter().zip(&r64.gamma) {
            worst = worst.max((*a as f64 - b).abs() / b.abs());
        }
    }
    (worst, clipped_steps, unclipped)
}

#[test]
fn agreement_adagc_with_official_f64_on_spiky_gradients() {
    let short = AdaGcConfig {
        t_start: 20,
        ..AdaGcConfig::default()
    };
    for (cfg, steps) in [
        (short, 100),
        (AdaGcConfig::default(), 200),
        (
            AdaGcConfig {
                mode: AdaGcMode::Global,
                ..short
            },
            100,
        ),
        (
            AdaGcConfig {
                mode: AdaGcMode::Global,
                ..AdaGcConfig::default()
            },
            200,
        ),
    ] {
        let (worst, clipped, unclipped) = run_adagc(cfg, steps);
        eprintln!("adagc {:?} t_start {}: worst rel {worst:e}, clipped coefs {clipped}, unclipped {unclipped}", cfg.mode, cfg.t_start);
        assert!(
            worst <= 2e-5,
            "{cfg:?}: worst relative difference {worst:e}"
        );
        assert!(clipped > 0, "{cfg:?}: the spikes must be clipped");
        assert!(unclipped > 0, "{cfg:?}: both branches must run");
    }
}
