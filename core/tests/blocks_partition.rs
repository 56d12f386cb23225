//! The partition helper: the official v1.1.1 name rules (first match wins, weight decay off for
//! norms and biases), grouped-query K heads, explicit descriptors, typed errors with nothing
//! written.

use adamant_core::partition::{
    contains_ascii_ci, partition, BlockRule, Explicit, ModelDims, NameRules, Param, ParamBlocks,
    PartitionError,
};
use adamant_core::{BlockLayout, LayoutError, Segment};

const DIMS: ModelDims = ModelDims {
    dim: 64,
    n_heads: 4,
    n_kv_heads: 2,
};

fn blank() -> ParamBlocks<'static> {
    ParamBlocks {
        rule: BlockRule::Tensor,
        layout: BlockLayout::Element,
        weight_decay: true,
        numel: 12345,
        state_len: 12345,
    }
}

#[test]
fn spec_ascii_case_insensitive_substring() {
    assert!(contains_ascii_ci(
        "Model.Layers.0.Self_Attn.Q_PROJ.weight",
        "q_proj"
    ));
    assert!(contains_ascii_ci("abc", ""));
    assert!(!contains_ascii_ci("q_pro", "q_proj"));
    assert!(!contains_ascii_ci("qXproj", "q_proj"));
}

#[test]
fn spec_official_rules_first_match_wins() {
    type Case = (
        &'static str,
        &'static [usize],
        BlockRule,
        BlockLayout<'static>,
        bool,
        usize,
    );
    let cases: &[Case] = &[
        (
            "model.embed_tokens.weight",
            &[40, 64],
            BlockRule::Row,
            BlockLayout::Rows { row_len: 64 },
            true,
            40,
        ),
        (
            "model.layers.0.self_attn.q_proj.weight",
            &[64, 64],
            BlockRule::Head,
            BlockLayout::Heads { head_numel: 1024 },
            true,
            4,
        ),
        // Grouped-query K: n_kv_heads * head_dim rows -> 2 heads of dim*dim/n_heads.
        (
            "model.layers.0.self_attn.k_proj.weight",
            &[32, 64],
            BlockRule::Head,
            BlockLayout::Heads { head_numel: 1024 },
            true,
            2,
        ),
        (
            "model.layers.0.self_attn.v_proj.weight",
            &[32, 64],
            BlockRule::Row,
            BlockLayout::Rows { row_len: 64 },
            true,
            32,
        ),
        (
            "model.layers.0.self_attn.o_proj.weight",
            &[64, 64],
            BlockRule::Row,
            BlockLayout::Rows { row_len: 64 },
            true,
            64,
        ),
        (
            "model.layers.0.mlp.down_proj.weight",
            &[64, 96],
            BlockRule::Row,
            BlockLayout::Rows { row_len: 96 },
            true,
            64,
        ),
        // Rule 1 wins over rule 2: a q_proj bias is per-element Adam, no weight decay.
        (
            "model.layers.0.self_attn.q_proj.bias",
            &[64],
            BlockRule::Element,
            BlockLayout::Element,
            false,
            64,
        ),
        (
            "model.layers.0.input_layernorm.weight",
            &[64],
            BlockRule::Tensor,
            BlockLayout::Tensor,
            false,
            1,
        ),
        (
            "model.norm.weight",
            &[64],
            BlockRule::Tensor,
            BlockLayout::Tensor,
            false,
            1,
        ),
        (
            "lm_head.weight",
            &[40, 64],
            BlockRule::Row,
            BlockLayout::Rows { row_len: 64 },
            true,
            40,
        ),
        // GPT-2 names: ln_* (no decay), fused c_attn matches no rule -> one block per tensor.
        (
            "transformer.h.0.ln_1.weight",
            &[64],
            BlockRule::Tensor,
            BlockLayout::Tensor,
            false,
            1,
        ),
        (
            "transformer.h.0.attn.c_attn.weight",
            &[64, 192],
            BlockRule::Tensor,
            BlockLayout::Tensor,
            true,
            1,
        ),
        (
            "transformer.h.0.mlp.c_fc.weight",
            &[64, 256],
            BlockRule::Row,
            BlockLayout::Rows { row_len: 256 },
            true,
            64,
        ),
        (
            "transformer.wte.weight",
            &[50, 64],
            BlockRule::Row,
            BlockLayout::Rows { row_len: 64 },
            true,
            50,
        ),
        (
            "transformer.wpe.weight",
            &[32, 64],
            BlockRule::Tensor,
            BlockLayout::Tensor,
            true,
            1,
        ),
        // Meta-style names.
        (
            "layers.0.attention.wq.weight",
            &[64, 64],
            BlockRule::Head,
            BlockLayout::Heads { head_numel: 1024 },
            true,
            4,
        ),
        (
            "layers.0.feed_forward.w1.weight",
            &[96, 64],
            BlockRule::Row,
            BlockLayout::Rows { row_len: 64 },
            true,
            96,
        ),
    ];
    let params: Vec<Param> = cases
        .iter()
        .map(|c| Param {
            name: c.0,
            shape: c.1,
        })
        .collect();
    let mut out = vec![blank(); params.len() + 2];
    let n = partition(&params, &DIMS, &NameRules::OFFICIAL, &[], &mut out).unwrap();
    assert_eq!(n, params.len());
    for (c, d) in cases.iter().zip(&out) {
        assert_eq!(
            (d.rule, d.layout, d.weight_decay, d.state_len),
            (c.2, c.3, c.4, c.5),
            "{}",
            c.0
        );
    }
    assert_eq!(
        out[params.len()],
        blank(),
        "entries past the list are untouched"
    );
    // wv_names = {} (official advice for short runs): V becomes one block per tensor.
    let rules = NameRules {
        wv_names: &[],
        ..NameRules::OFFICIAL
    };
    let v = [Param {
        name: "model.layers.0.self_attn.v_proj.weight",
        shape: &[32, 64],
    }];
    partition(&v, &DIMS, &rules, &[], &mut out).unwrap();
    assert_eq!(out[0].layout, BlockLayout::Tensor);
}

#[test]
fn spec_explicit_descriptor_overrides_rules() {
    let segs = [
        Segment::Blocks {
            len: 4 * 1024,
            block_len: 1024,
        },
        Segment::Blocks {
            len: 2 * 1024,
            block_len: 1024,
        },
        Segment::Blocks {
            len: 32 * 64,
            block_len: 64,
        },
    ];
    let ex = [Explicit {
        name: "model.layers.0.self_attn.qkv_proj.weight",
        layout: BlockLayout::Segments(&segs),
        weight_decay: true,
    }];
    let params = [Param {
        name: "model.layers.0.self_attn.qkv_proj.weight",
        shape: &[128, 64],
    }];
    let mut out = [blank()];
    partition(&params, &DIMS, &NameRules::OFFICIAL, &ex, &mut out).unwrap();
    assert_eq!(out[0].rule, BlockRule::Explicit);
    assert_eq!(out[0].state_len, 4 + 2 + 32);
}

#[test]
fn spec_errors_are_typed_and_write_nothing() {
    let mut out = [blank(), blank()];
    // A head size that does not divide the tensor (48 rows * 64 = 3072, head_numel 1024 ok; use 40 rows).
    let params = [
        Param {
            name: "model.norm.weight",
            shape: &[64],
        },
        Param {
            name: "model.layers.0.self_attn.q_proj.weight",
            shape: &[40, 64],
        },
    ];
    let e = partition(&params, &DIMS, &NameRules::OFFICIAL, &[], &mut out).unwrap_err();
    assert_eq!(
        e,
        PartitionError::Layout {
            index: 1,
            error: LayoutError::BadBlocks {
                len: 2560,
                block_len: 1024
            }
        }
    );
    assert_eq!(
        out,
        [blank(), blank()],
        "nothing written, not even parameter 0"
    );
    // Explicit segments that do not tile.
    let segs = [Segment::Blocks {
        len: 100,
        block_len: 10,
    }];
    let ex = [Explicit {
        name: "model.norm.weight",
        layout: BlockLayout::Segments(&segs),
        weight_decay: false,
    }];
    let e = partition(&params[..1], &DIMS, &NameRules::OFFICIAL, &ex, &mut out).unwrap_err();
    assert_eq!(
        e,
        PartitionError::Layout {
            index: 0,
            error: LayoutError::BlocksDoNotTile {
                len: 64,
                covered: 100
            }
        }
    );
    // Output too short, bad dims.
    assert_eq!(
        partition(&params, &DIMS, &NameRules::OFFICIAL, &[], &mut out[..1]).unwrap_err(),
        PartitionError::OutputTooShort { needed: 2, got: 1 }
    );
    for d in [
        ModelDims { n_heads: 0, ..DIMS },
        ModelDims {
            n_kv_heads: 3,
            ..DIMS
        },
        ModelDims {
            n_kv_heads: 0,
            ..DIMS
        },
    ] {
        assert_eq!(
            partition(&params[..1], &d, &NameRules::OFFICIAL, &[], &mut out).unwrap_err(),
            PartitionError::BadDims(d)
        );
    }
    assert_eq!(out, [blank(), blank()]);
}
