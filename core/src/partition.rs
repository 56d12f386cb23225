//! Adam-mini's partition: which block layout and whether weight decay applies, for each named
//! parameter, by the official v1.1.1 name rules (lower-cased substring match, first matching
//! rule wins), plus explicit descriptors for what names cannot express.
//!
//! | # | name contains (ASCII case-insensitive) | layout |
//! |---|---|---|
//! | 1 | `bias` | [`BlockLayout::Element`] (per-element AdamW) |
//! | 2 | `k_proj q_proj wq wk query key` | [`BlockLayout::Heads`], `head_numel = dim*dim / n_heads` |
//! | 3 | `embed embd wte` / `lm_head output final_layer` / `v_proj wv value` / `feed_forward linear mlp` / `o_proj wo attn.proj` | [`BlockLayout::Rows`], `row_len = numel / shape[0]` |
//! | 4 | anything else (norms, and V when `wv_names` is empty) | [`BlockLayout::Tensor`] |
//!
//! Weight decay is off when the name contains `norm`, `ln` or `bias`. Grouped-query K works by
//! the head rule because `k_proj`'s element count is `n_kv_heads * head_numel`.
//! An explicit descriptor (exact name) overrides the rules, e.g. a fused QKV projection with
//! grouped-query heads: Q heads, K heads, V rows as [`crate::rules::adam_mini::Segment`]s.
//!
//! No allocation: descriptors go into a caller-provided slice of `params.len()` entries, and
//! nothing is written unless every parameter partitions without error.

use crate::error::LayoutError;
use crate::rules::adam_mini::BlockLayout;
use core::fmt;

/// Model dimensions the head rule needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelDims {
    /// Hidden size (`dim`).
    pub dim: usize,
    /// Attention heads.
    pub n_heads: usize,
    /// Key/value heads (grouped-query attention); equal to `n_heads` without GQA.
    pub n_kv_heads: usize,
}

impl ModelDims {
    /// The official per-head block: `dim*dim / n_heads` (integer division, as `//`).
    pub fn head_numel(&self) -> usize {
        self.dim * self.dim / self.n_heads
    }
}

/// The substring sets of the official code (all lower case). Replace a set to change a rule,
/// e.g. `wv_names: &[]` as the official Llama example does for short runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NameRules<'a> {
    /// Rule 1: per-element AdamW.
    pub adam_block_names: &'a [&'a str],
    /// Rule 2: per-head blocks.
    pub wqk_names: &'a [&'a str],
    /// Rule 3: per-row blocks (embedding).
    pub embd_names: &'a [&'a str],
    /// Rule 3: per-row blocks (output head).
    pub output_names: &'a [&'a str],
    /// Rule 3: per-row blocks (value projection).
    pub wv_names: &'a [&'a str],
    /// Rule 3: per-row blocks (MLP).
    pub mlp_names: &'a [&'a str],
    /// Rule 3: per-row blocks (attention output projection).
    pub attn_proj_names: &'a [&'a str],
    /// Weight decay off when the name contains one of these.
    pub no_decay_names: &'a [&'a str],
}

impl NameRules<'static> {
    /// The official v1.1.1 sets.
    pub const OFFICIAL: NameRules<'static> = NameRules {
        adam_block_names: &["bias"],
        wqk_names: &["k_proj", "q_proj", "wq", "wk", "query", "key"],
        embd_names: &["embed", "embd", "wte"],
        output_names: &["lm_head", "output", "final_layer"],
        wv_names: &["v_proj", "wv", "value"],
        mlp_names: &["feed_forward", "linear", "mlp"],
        attn_proj_names: &["o_proj", "wo", "attn.proj"],
        no_decay_names: &["norm", "ln", "bias"],
    };
}

impl Default for NameRules<'static> {
    fn default() -> Self {
        NameRules::OFFICIAL
    }
}

/// Whether `haystack` contains `needle`, comparing ASCII letters case-insensitively.
pub fn contains_ascii_ci(haystack: &str, needle: &str) -> bool {
    let (h, n) = (haystack.as_bytes(), needle.as_bytes());
    if n.is_empty() {
        return true;
    }
    if n.len() > h.len() {
        return false;
    }
    h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
}

fn any_in(name: &str, set: &[&str]) -> bool {
    set.iter().any(|s| contains_ascii_ci(name, s))
}

/// Which rule placed a parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockRule {
    /// Rule 1 (biases): per-element AdamW.
    Element,
    /// Rule 2: per head.
    Head,
    /// Rule 3: per row.
    Row,
    /// Rule 4: one block per tensor.
    Tensor,
    /// An explicit descriptor.
    Explicit,
}

/// A named parameter: name and shape (row-major, dim 0 first).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Param<'a> {
    /// Name as the framework spells it (`model.layers.0.self_attn.q_proj.weight`).
    pub name: &'a str,
    /// Shape.
    pub shape: &'a [usize],
}

impl Param<'_> {
    /// Element count (product of the shape; 1 for a scalar).
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// An explicit descriptor: the parameter with exactly this name uses this layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Explicit<'a> {
    /// Exact parameter name.
    pub name: &'a str,
    /// Its block layout.
    pub layout: BlockLayout<'a>,
    /// Whether weight decay applies.
    pub weight_decay: bool,
}

/// What the partition decided for one parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParamBlocks<'a> {
    /// The rule that matched.
    pub rule: BlockRule,
    /// The block layout.
    pub layout: BlockLayout<'a>,
    /// Whether weight decay applies.
    pub weight_decay: bool,
    /// Element count.
    pub numel: usize,
    /// Length of its `exp_avg_sq` buffer.
    pub state_len: usize,
}

/// Why a partition failed (nothing was written).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartitionError {
    /// `n_heads` or `n_kv_heads` is zero, `n_kv_heads` does not divide `n_heads`, or
    /// `dim*dim/n_heads` is zero.
    BadDims(ModelDims),
    /// The descriptor slice is shorter than the parameter list.
    OutputTooShort {
        /// Entries needed (`params.len()`).
        needed: usize,
        /// Entries given.
        got: usize,
    },
    /// Parameter `index`'s blocks do not tile it.
    Layout {
        /// Index into the parameter list.
        index: usize,
        /// What is wrong.
        error: LayoutError,
    },
}

impl fmt::Display for PartitionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            PartitionError::BadDims(d) => write!(
                f,
                "bad model dims: dim {}, n_heads {}, n_kv_heads {}",
                d.dim, d.n_heads, d.n_kv_heads
            ),
            PartitionError::OutputTooShort { needed, got } => {
                write!(f, "descriptor slice has {} entries, {} needed", got, needed)
            }
            PartitionError::Layout { index, error } => write!(f, "parameter {}: {}", index, error),
        }
    }
}

impl core::error::Error for PartitionError {}

/// The descriptor of one parameter by the rules (or an explicit descriptor), validated.
pub fn classify<'a>(
    param: &Param<'_>,
    dims: &ModelDims,
    rules: &NameRules<'_>,
    explicit: &[Explicit<'a>],
) -> Result<ParamBlocks<'a>, LayoutError> {
    let numel = param.numel();
    let name = param.name;
    let (rule, layout, weight_decay) = if let Some(e) = explicit.iter().find(|e| e.name == name) {
        (BlockRule::Explicit, e.layout, e.weight_decay)
    } else {
        let weight_decay = !any_in(name, rules.no_decay_names);
        let (rule, layout) = if any_in(name, rules.adam_block_names) {
            (BlockRule::Element, BlockLayout::Element)
        } else if any_in(name, rules.wqk_names) {
            (
                BlockRule::Head,
                BlockLayout::Heads {
                    head_numel: dims.head_numel(),
                },
            )
        } else if any_in(name, rules.embd_names)
            || any_in(name, rules.output_names)
            || any_in(name, rules.wv_names)
            || any_in(name, rules.mlp_names)
            || any_in(name, rules.attn_proj_names)
        {
            let rows = param.shape.first().copied().unwrap_or(1);
            let row_len = numel.checked_div(rows).unwrap_or(0);
            (BlockRule::Row, BlockLayout::Rows { row_len })
        } else {
            (BlockRule::Tensor, BlockLayout::Tensor)
        };
        (rule, layout, weight_decay)
    };
    let state_len = layout.state_len(numel)?;
    Ok(ParamBlocks {
        rule,
        layout,
        weight_decay,
        numel,
        state_len,
    })
}

/// Partition a model: one descriptor per parameter into `out[..params.len()]`, returning the
/// number written. Explicit descriptors (matched by exact name) win over the rules. Checks the
/// dims, the output length and every parameter before writing anything.
pub fn partition<'a>(
    params: &[Param<'_>],
    dims: &ModelDims,
    rules: &NameRules<'_>,
    explicit: &[Explicit<'a>],
    out: &mut [ParamBlocks<'a>],
) -> Result<usize, PartitionError> {
    if dims.n_heads == 0
        || dims.n_kv_heads == 0
        || dims.n_heads % dims.n_kv_heads != 0
        || dims.head_numel() == 0
    {
        return Err(PartitionError::BadDims(*dims));
    }
    if out.len() < params.len() {
        return Err(PartitionError::OutputTooShort {
            needed: params.len(),
            got: out.len(),
        });
    }
    for (index, p) in params.iter().enumerate() {
        classify(p, dims, rules, explicit)
            .map_err(|error| PartitionError::Layout { index, error })?;
    }
    for (o, p) in out.iter_mut().zip(params) {
        // Already validated above.
        if let Ok(d) = classify(p, dims, rules, explicit) {
            *o = d;
        }
    }
    Ok(params.len())
}
