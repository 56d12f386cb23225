//! Lint of the embedded PTX (numeric contract item 1): only audited opcodes, every f32/f64
//! arithmetic operation rounds to nearest even (`.rn`), no fused multiply-add, no flush to
//! zero, no approximate or "full" division, no local memory, no atomics; PTX ISA <= 7.8 for
//! sm_70. Plus: every kernel the launcher can name exists in the committed PTX.

use adamant_core::Dtype;
use adamant_cuda::args::{self, Reduction, Rule};
use adamant_cuda::ptx::{self, MODULES};

/// Every opcode-with-modifiers string the committed kernels may use (audited: integer, bit,
/// predicate, move, memory, warp and control operations, and the exactly rounded float ops).
const ALLOWED: &[&str] = &[
    "add.rn.f32",
    "sub.rn.f32",
    "mul.rn.f32",
    "div.rn.f32",
    "sqrt.rn.f32",
    "add.rn.f64",
    "sub.rn.f64",
    "mul.rn.f64",
    "div.rn.f64",
    "sqrt.rn.f64",
    "cvt.rn.f32.f64",
    "cvt.f64.f32",
    "add.s32",
    "add.s64",
    "sub.s32",
    "sub.s64",
    "mul.lo.s64",
    "mul.lo.s32",
    "mul.wide.u32",
    "and.b16",
    "and.b32",
    "and.b64",
    "or.b32",
    "or.b64",
    "xor.b32",
    "xor.b64",
    "not.b32",
    "shl.b32",
    "shl.b64",
    "shr.u32",
    "shr.u64",
    "clz.b32",
    "clz.b64",
    "max.s32",
    "max.u32",
    "min.u64",
    "min.u32",
    "cvt.s32.s8",
    "cvt.u16.u32",
    "cvt.u32.u16",
    "cvt.u32.u64",
    "cvt.u64.u32",
    "and.pred",
    "or.pred",
    "not.pred",
    "selp.b32",
    "selp.f32",
    "selp.u16",
    "selp.u32",
    "selp.b64",
    "setp.eq.b32",
    "setp.eq.f32",
    "setp.eq.s16",
    "setp.eq.s32",
    "setp.eq.s64",
    "setp.ge.u64",
    "setp.gt.f32",
    "setp.gt.s32",
    "setp.gt.u32",
    "setp.le.u64",
    "setp.lt.f32",
    "setp.lt.s32",
    "setp.lt.u32",
    "setp.lt.u64",
    "setp.ne.s32",
    "setp.ne.s64",
    "setp.neu.f32",
    "setp.gt.u64",
    "mov.b32",
    "mov.f32",
    "mov.f64",
    "mov.u16",
    "mov.u32",
    "mov.u64",
    "ld.global.ca.f32",
    "ld.global.ca.u16",
    "ld.global.ca.u32",
    "ld.global.ca.u64",
    "ld.global.ca.v4.u32",
    "ld.global.nc.u16",
    "ld.global.nc.u32",
    "ld.global.nc.u64",
    "ld.global.nc.v4.u32",
    "ld.param.f64",
    "ld.param.u32",
    "ld.param.u64",
    "ld.param.v2.u32",
    "ld.shared.f32",
    "ld.shared.u32",
    "st.global.wb.u16",
    "st.global.wb.u32",
    "st.global.wb.u64",
    "st.global.wb.v4.u32",
    "st.shared.f32",
    "st.shared.u32",
    "shfl.sync.down.b32",
    "bar.sync",
    "bra",
    "bra.uni",
    "ret",
    // quant.ptx: byte codes, exact int -> f32 conversion of codes in [-128, 127], integer
    // division for the group geometry, unordered compares of the scale checks.
    "cvt.rn.f32.s32",
    "st.global.wb.u8",
    "st.global.wb.f32",
    "ld.global.nc.f32",
    "ld.global.nc.u8",
    "ld.global.ca.u8",
    "shr.s32",
    "div.u32",
    "div.u64",
    "neg.s32",
    "neg.s64",
    "min.s32",
    "not.b64",
    "ld.param.v2.f32",
    "ld.param.f32",
    "setp.leu.f32",
    "setp.gtu.f32",
    "bfi.b32",
    "setp.ge.u32",
    "setp.eq.b64",
    "selp.f64",
    "setp.ge.f64",
    // adam_mini / clip: exact integer ops (block index of an element, u64 count to f32 with
    // round-to-nearest-even as core's `count as f32`) and exact compares.
    "cvt.rn.f32.u64",
    "div.u32",
    "div.u64",
    "setp.ge.u32",
    "setp.geu.f32",
    "setp.ne.s16",
    // Only as `c < 1 ? c : 1` in threshold_coef (clip.cu): PTX min returns the non-NaN
    // operand, so NaN gives 1 as the comparison does; the zero-sign case cannot arise with 1.
    "min.f32",
];

/// Float arithmetic opcodes that must carry `.rn`.
const ROUNDED: &[&str] = &[
    "add", "sub", "mul", "div", "sqrt", "rcp", "fma", "mad", "cvt",
];

fn instructions(ptx: &str) -> impl Iterator<Item = (usize, &str)> {
    ptx.lines().enumerate().filter_map(|(i, l)| {
        let t = l.trim();
        if t.is_empty()
            || t.starts_with("//")
            || t.starts_with('.')
            || t.starts_with('{')
            || t.starts_with('}')
            || t.starts_with(')')
            || t.starts_with('$')
        {
            return None;
        }
        let t = if t.starts_with('@') {
            t.split_once(' ').map(|x| x.1).unwrap_or(t)
        } else {
            t
        };
        let op = t
            .split(|c: char| c.is_whitespace() || c == ';')
            .next()
            .unwrap_or("");
        Some((i + 1, op))
    })
}

#[test]
fn spec_every_module_is_ptx_7_8_or_older_for_sm_70() {
    for m in MODULES {
        let version = m
            .ptx
            .lines()
            .find_map(|l| l.strip_prefix(".version "))
            .expect("version");
        let (maj, min) = version.trim().split_once('.').expect("major.minor");
        let v: (u32, u32) = (maj.parse().unwrap(), min.parse().unwrap());
        assert!(v <= (7, 8), "{}: .version {version}", m.name);
        assert!(
            m.ptx.lines().any(|l| l.trim() == ".target sm_70"),
            "{}: target",
            m.name
        );
        assert!(
            m.ptx.lines().any(|l| l.trim() == ".address_size 64"),
            "{}",
            m.name
        );
        assert!(m.ptx_nul.ends_with('\0') && m.ptx_nul.len() == m.ptx.len() + 1);
    }
}

#[test]
fn spec_only_audited_opcodes() {
    let mut seen = 0;
    for m in MODULES {
        for (line, op) in instructions(m.ptx) {
            assert!(
                ALLOWED.contains(&op),
                "{}.ptx:{line}: opcode {op:?} is not audited",
                m.name
            );
            seen += 1;
        }
    }
    assert!(
        seen > 10_000,
        "only {seen} instructions found: the parser is broken"
    );
}

#[test]
fn spec_float_arithmetic_rounds_to_nearest_and_never_fuses() {
    for m in MODULES {
        for (line, op) in instructions(m.ptx) {
            let parts: Vec<&str> = op.split('.').collect();
            let float = parts.iter().any(|p| *p == "f32" || *p == "f64");
            if float && ROUNDED.contains(&parts[0]) {
                // cvt.f64.f32 widens exactly and takes no rounding modifier.
                let exact_widen = op == "cvt.f64.f32";
                assert!(
                    exact_widen || parts.contains(&"rn"),
                    "{}.ptx:{line}: {op} without .rn",
                    m.name
                );
            }
            assert!(
                parts[0] != "fma" && parts[0] != "mad" || !float,
                "{}.ptx:{line}: fused {op}",
                m.name
            );
            for bad in ["ftz", "approx", "full", "sat", "rz", "rm", "rp", "local"] {
                assert!(
                    !parts.contains(&bad),
                    "{}.ptx:{line}: {op} has .{bad}",
                    m.name
                );
            }
            assert!(
                !op.starts_with("atom") && !op.starts_with("red"),
                "{}.ptx:{line}: atomic {op}",
                m.name
            );
        }
        for bad in [".local", "fma.", ".ftz", ".approx", ".full"] {
            assert!(!m.ptx.contains(bad), "{}.ptx contains {bad}", m.name);
        }
    }
}

#[test]
fn negative_control_the_lint_rejects_what_it_should() {
    let bad = "\tfma.rn.f32 %f1, %f2, %f3, %f4;\n\tadd.f32 %f1, %f2, %f3;\n\tmul.rn.ftz.f32 %f1, %f1, %f1;\n";
    let ops: Vec<&str> = instructions(bad).map(|(_, o)| o).collect();
    assert_eq!(ops, ["fma.rn.f32", "add.f32", "mul.rn.ftz.f32"]);
    for op in ops {
        assert!(!ALLOWED.contains(&op), "{op} must not be allowed");
    }
}

#[test]
fn spec_every_kernel_the_launcher_names_is_in_the_ptx() {
    let has = |module: &str, entry: &str| {
        ptx::entries(ptx::module(module).unwrap().ptx).any(|e| e == entry)
    };
    let mut n = 0;
    for rule in [Rule::Adam, Rule::Sgd, Rule::Lion] {
        for p in Dtype::ALL {
            for g in Dtype::ALL {
                for s in Dtype::ALL {
                    match args::update_entry(rule, p, g, s) {
                        Some(e) => {
                            assert!(has(rule.name(), e), "{e} missing");
                            n += 1;
                        }
                        None => assert_eq!(s, Dtype::F16),
                    }
                }
            }
        }
        assert_eq!(
            ptx::entries(ptx::module(rule.name()).unwrap().ptx).count(),
            18
        );
    }
    for t in Dtype::ALL {
        for k in [Reduction::Sum, Reduction::SumSq, Reduction::MaxAbs] {
            assert!(has("reduce", args::reduce_entry(k, t)));
            n += 1;
        }
        assert!(has("step", args::nonfinite_entry(t)));
        n += 1;
    }
    assert!(has("step", args::COMMIT_ENTRY));
    assert_eq!(n + 1, 54 + 9 + 3 + 1);
    let mut q = 0;
    for src in [
        args::QuantSource::Grad(Dtype::F32),
        args::QuantSource::Grad(Dtype::Bf16),
        args::QuantSource::Grad(Dtype::F16),
        args::QuantSource::Packed,
    ] {
        assert!(has(args::QUANT_MODULE, args::quant_check_entry(src)));
        assert!(has(args::QUANT_MODULE, args::quant_compress_entry(src)));
        q += 2;
    }
    assert!(has(args::QUANT_MODULE, args::QUANT_DECOMPRESS_CHECK_ENTRY));
    assert!(has(args::QUANT_MODULE, args::QUANT_DECOMPRESS_ENTRY));
    assert_eq!(
        ptx::entries(ptx::module(args::QUANT_MODULE).unwrap().ptx).count(),
        q + 2
    );
    let mut mini = 0;
    for p in Dtype::ALL {
        for g in Dtype::ALL {
            for s in Dtype::ALL {
                match args::mini_entry(p, g, s) {
                    Some(e) => {
                        assert!(has("adam_mini", e), "{e} missing");
                        mini += 1;
                    }
                    None => assert_eq!(s, Dtype::F16),
                }
            }
        }
        assert!(has("adam_mini", args::mini_sumsq_entry(p)));
        assert!(has("clip", args::clip_sumsq_entry(p)));
        match args::mini_block_entry(p) {
            Some(e) => assert!(has("adam_mini", e)),
            None => assert_eq!(p, Dtype::F16),
        }
    }
    assert_eq!(mini, 18);
    assert_eq!(
        ptx::entries(ptx::module("adam_mini").unwrap().ptx).count(),
        18 + 3 + 2
    );
    for e in [
        args::CLIP_TENSOR_SUMS_ENTRY,
        args::CLIP_COEFS_ENTRY,
        args::CLIP_COMMIT_ENTRY,
    ] {
        assert!(has("clip", e), "{e} missing");
    }
    assert_eq!(ptx::entries(ptx::module("clip").unwrap().ptx).count(), 6);
}
