//! Lint of the CUDA sources: device formula code (between `// formula:begin` and
//! `// formula:end`) spells every float operation with an explicit-rounding intrinsic, never
//! with `+ - * /`; every kernel source names the core function it mirrors.

use std::fs;
use std::path::Path;

fn sources() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("kernels");
    let mut v: Vec<(String, String)> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("cu" | "cuh")))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

/// Binary arithmetic operators in a line of code (comments removed), ignoring `->`, unary
/// minus on literals, and integer index arithmetic inside `[...]`.
fn operators(code: &str) -> Vec<char> {
    let code = code.split("//").next().unwrap_or("");
    let b: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let mut depth = 0;
    for (i, &c) in b.iter().enumerate() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            _ if depth > 0 => {}
            '+' | '*' | '/' => out.push(c),
            '-' => {
                let next = b.get(i + 1).copied().unwrap_or(' ');
                let prev = b[..i]
                    .iter()
                    .rev()
                    .find(|c| !c.is_whitespace())
                    .copied()
                    .unwrap_or('(');
                let unary_literal =
                    next.is_ascii_digit() && matches!(prev, '(' | ',' | '?' | ':' | '=');
                if next != '>' && !unary_literal {
                    out.push(c);
                }
            }
            _ => {}
        }
    }
    out
}

fn formula_lines(src: &str) -> Vec<(usize, &str)> {
    let mut inside = false;
    let mut v = Vec::new();
    for (i, l) in src.lines().enumerate() {
        let t = l.trim();
        if t == "// formula:begin" {
            assert!(!inside, "nested formula:begin at line {}", i + 1);
            inside = true;
        } else if t == "// formula:end" {
            assert!(inside, "formula:end without begin at line {}", i + 1);
            inside = false;
        } else if inside {
            v.push((i + 1, l));
        }
    }
    assert!(!inside, "unterminated formula region");
    v
}

#[test]
fn spec_formula_code_uses_only_rounding_intrinsics() {
    let mut regions = 0;
    for (name, src) in sources() {
        let lines = formula_lines(&src);
        regions += src.matches("// formula:begin").count();
        for (n, l) in lines {
            let ops = operators(l);
            assert!(
                ops.is_empty(),
                "{name}:{n}: plain operator(s) {ops:?} in formula code: {l}"
            );
            for forbidden in [
                "fmaf",
                "__fmaf",
                "__fma",
                "sqrtf(",
                "rsqrt",
                "__expf",
                "powf",
                "__frcp",
                "__fdividef",
            ] {
                assert!(
                    !l.contains(forbidden),
                    "{name}:{n}: {forbidden} in formula code"
                );
            }
        }
    }
    assert!(
        regions >= 11,
        "only {regions} formula regions: markers lost?"
    );
}

#[test]
fn spec_every_element_function_names_its_core_original() {
    for (name, src) in sources() {
        for (k, f) in ["adam_elem", "sgd_elem", "lion_elem"].iter().enumerate() {
            let file = ["adam.cu", "sgd.cu", "lion.cu"][k];
            if name == file {
                let tag = format!(
                    "// mirrors adamant_core::rules::{}::{f} (numeric contract v1)",
                    &f[..f.len() - 5]
                );
                assert!(src.contains(&tag), "{name} lacks {tag:?}");
            }
        }
        // multi_tensor.cuh only maps blocks to elements: it has no formula to mirror.
        if name != "multi_tensor.cuh" {
            assert!(
                src.contains("mirrors adamant_core::"),
                "{name} names no core function"
            );
        }
    }
}

#[test]
fn negative_control_the_operator_scan() {
    assert_eq!(operators("g = g + k.weight_decay * p;"), ['+', '*']);
    assert_eq!(operators("x = e->n; y = f(-1.0f);"), Vec::<char>::new());
    assert_eq!(operators("a = b - c; // a - b in a comment"), ['-']);
    assert_eq!(operators("q = __fdiv_rn(m, denom);"), Vec::<char>::new());
    assert_eq!(
        operators("sh[l] = __fadd_rn(sh[l], sh[l + 128]) * 2;"),
        ['*']
    );
}
