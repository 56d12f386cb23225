//! `adamant memory [--json] [--model llama2-7b|llama2-13b|gpt2-124m]`: optimizer state bytes
//! of AdamW, Adam-mini and Lion (f32 states) for a model's real parameter names and shapes.
//!
//! Adam-mini's blocks come from the official v1.1.1 name rules
//! ([`adamant_core::partition`]). GPT-2's fused `attn.c_attn` matches no rule and gets one
//! block per tensor, as in the official code: HF GPT-2 stores it as a `Conv1D` weight of shape
//! `[in, 3*out]`, so its heads are strided column groups, which contiguous block descriptors
//! cannot name (and one scalar vs 36 per layer changes nothing measurable).

use adamant_core::partition::{partition, ModelDims, NameRules, Param, ParamBlocks};
use adamant_core::BlockLayout;

/// A model's parameters (HF names, row-major shapes) and the dims Adam-mini's head rule needs.
pub struct Model {
    /// Name on the command line.
    pub name: &'static str,
    /// Dims.
    pub dims: ModelDims,
    /// `(name, shape)` in the checkpoint's order; tied weights listed once.
    pub params: Vec<(String, Vec<usize>)>,
}

fn llama(name: &'static str, dim: usize, layers: usize, heads: usize, ffn: usize) -> Model {
    let vocab = 32000;
    let mut p = vec![("model.embed_tokens.weight".to_string(), vec![vocab, dim])];
    for l in 0..layers {
        let pre = format!("model.layers.{l}");
        for proj in ["q_proj", "k_proj", "v_proj", "o_proj"] {
            p.push((format!("{pre}.self_attn.{proj}.weight"), vec![dim, dim]));
        }
        p.push((format!("{pre}.mlp.gate_proj.weight"), vec![ffn, dim]));
        p.push((format!("{pre}.mlp.up_proj.weight"), vec![ffn, dim]));
        p.push((format!("{pre}.mlp.down_proj.weight"), vec![dim, ffn]));
        p.push((format!("{pre}.input_layernorm.weight"), vec![dim]));
        p.push((format!("{pre}.post_attention_layernorm.weight"), vec![dim]));
    }
    p.push(("model.norm.weight".to_string(), vec![dim]));
    p.push(("lm_head.weight".to_string(), vec![vocab, dim]));
    Model {
        name,
        dims: ModelDims {
            dim,
            n_heads: heads,
            n_kv_heads: heads,
        },
        params: p,
    }
}

fn gpt2_124m() -> Model {
    let (dim, layers, vocab, ctx) = (768, 12, 50257, 1024);
    let mut p = vec![
        ("transformer.wte.weight".to_string(), vec![vocab, dim]),
        ("transformer.wpe.weight".to_string(), vec![ctx, dim]),
    ];
    for l in 0..layers {
        let pre = format!("transformer.h.{l}");
        let mut push = |n: &str, s: Vec<usize>| p.push((format!("{pre}.{n}"), s));
        push("ln_1.weight", vec![dim]);
        push("ln_1.bias", vec![dim]);
        push("attn.c_attn.weight", vec![dim, 3 * dim]);
        push("attn.c_attn.bias", vec![3 * dim]);
        push("attn.c_proj.weight", vec![dim, dim]);
        push("attn.c_proj.bias", vec![dim]);
        push("ln_2.weight", vec![dim]);
        push("ln_2.bias", vec![dim]);
        push("mlp.c_fc.weight", vec![dim, 4 * dim]);
        push("mlp.c_fc.bias", vec![4 * dim]);
        push("mlp.c_proj.weight", vec![4 * dim, dim]);
        push("mlp.c_proj.bias", vec![dim]);
    }
    p.push(("transformer.ln_f.weight".to_string(), vec![dim]));
    p.push(("transformer.ln_f.bias".to_string(), vec![dim]));
    // lm_head.weight is tied to wte: counted once.
    Model {
        name: "gpt2-124m",
        dims: ModelDims {
            dim,
            n_heads: 12,
            n_kv_heads: 12,
        },
        params: p,
    }
}

/// The models `adamant memory` knows.
pub const MODELS: [&str; 3] = ["llama2-7b", "llama2-13b", "gpt2-124m"];

/// Build a model by name.
pub fn model(name: &str) -> Option<Model> {
    match name {
        "llama2-7b" => Some(llama("llama2-7b", 4096, 32, 32, 11008)),
        "llama2-13b" => Some(llama("llama2-13b", 5120, 40, 40, 13824)),
        "gpt2-124m" => Some(gpt2_124m()),
        _ => None,
    }
}

/// One output row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Model name.
    pub model: &'static str,
    /// `adamw`, `adam-mini` or `lion`.
    pub optimizer: &'static str,
    /// Optimizer state bytes (f32 states).
    pub state_bytes: u64,
    /// Parameters.
    pub param_count: u64,
}

/// State bytes of the three optimizers for `m` (f32 states: 4 bytes per entry).
pub fn rows(m: &Model) -> Result<Vec<Row>, String> {
    let params: Vec<Param> = m
        .params
        .iter()
        .map(|(n, s)| Param { name: n, shape: s })
        .collect();
    let mut out = vec![
        ParamBlocks {
            rule: adamant_core::partition::BlockRule::Tensor,
            layout: BlockLayout::Tensor,
            weight_decay: false,
            numel: 0,
            state_len: 0,
        };
        params.len()
    ];
    partition(&params, &m.dims, &NameRules::OFFICIAL, &[], &mut out)
        .map_err(|e| format!("{}: {e}", m.name))?;
    let numel: u64 = out.iter().map(|d| d.numel as u64).sum();
    let mini_v: u64 = out.iter().map(|d| d.state_len as u64).sum();
    let row = |optimizer, entries: u64| Row {
        model: m.name,
        optimizer,
        state_bytes: 4 * entries,
        param_count: numel,
    };
    Ok(vec![
        row("adamw", 2 * numel),
        row("adam-mini", numel + mini_v),
        row("lion", numel),
    ])
}

/// Entry point.
pub fn run(args: &[String]) -> Result<(), String> {
    let mut json = false;
    let mut models: Vec<String> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--json" => json = true,
            "--model" => models.push(it.next().ok_or("--model needs a value")?.clone()),
            other => return Err(format!("memory: unknown option `{other}`")),
        }
    }
    if models.is_empty() {
        models = MODELS.iter().map(|s| s.to_string()).collect();
    }
    if !json {
        println!(
            "{:<12} {:<10} {:>16} {:>10} {:>14} {:>9}",
            "model", "optimizer", "state_bytes", "GiB", "param_count", "vs adamw"
        );
    }
    for name in &models {
        let m = model(name).ok_or_else(|| {
            format!(
                "memory: unknown model `{name}` (known: {})",
                MODELS.join(", ")
            )
        })?;
        let rows = rows(&m)?;
        let adamw = rows[0].state_bytes as f64;
        for r in &rows {
            if json {
                println!(
                    "{{\"model\":\"{}\",\"optimizer\":\"{}\",\"state_bytes\":{},\"param_count\":{}}}",
                    r.model, r.optimizer, r.state_bytes, r.param_count
                );
            } else {
                println!(
                    "{:<12} {:<10} {:>16} {:>10.3} {:>14} {:>9.4}",
                    r.model,
                    r.optimizer,
                    r.state_bytes,
                    r.state_bytes as f64 / (1u64 << 30) as f64,
                    r.param_count,
                    r.state_bytes as f64 / adamw
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(rows: &[Row], o: &str) -> u64 {
        rows.iter().find(|r| r.optimizer == o).unwrap().state_bytes
    }

    #[test]
    fn spec_llama2_7b_adam_mini_at_most_051_of_adamw() {
        let r = rows(&model("llama2-7b").unwrap()).unwrap();
        // 6,738,415,616 parameters in the released checkpoint.
        assert_eq!(r[0].param_count, 6_738_415_616);
        let (adamw, mini) = (get(&r, "adamw"), get(&r, "adam-mini"));
        assert!(mini as f64 <= 0.51 * adamw as f64, "{mini} vs {adamw}");
        assert!(mini as f64 >= 0.5 * adamw as f64);
        assert_eq!(get(&r, "lion") * 2, adamw);
    }

    #[test]
    fn spec_param_counts_match_the_released_models() {
        let c = |n| rows(&model(n).unwrap()).unwrap()[0].param_count;
        assert_eq!(c("llama2-13b"), 13_015_864_320);
        assert_eq!(c("gpt2-124m"), 124_439_808);
    }

    #[test]
    fn spec_unknown_model_is_an_error() {
        assert!(run(&["--model".into(), "gpt5".into()]).is_err());
    }
}
