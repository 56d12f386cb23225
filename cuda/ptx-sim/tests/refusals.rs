//! Everything outside the allowlist is refused at registration, with the PTX line and text.

mod common;
use common::*;
use ptx_sim::{parse_module, ParseOptions};

/// Replaces line `line` (1-based) of `src` with `with` (may be several lines).
fn replace_line(src: &str, line: usize, with: &str) -> String {
    src.lines()
        .enumerate()
        .map(|(i, l)| {
            if i + 1 == line {
                with.to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn first_line(src: &str, needle: &str) -> usize {
    src.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("`{needle}` not found"))
        + 1
}

/// Asserts that parsing `src` fails at `line` with a message containing `msg`.
fn refused_at(src: &str, line: usize, msg: &str) {
    let e = parse_module(src, ParseOptions::default()).expect_err("must be refused");
    assert_eq!(e.line as usize, line, "{e}");
    assert!(e.msg.contains(msg), "`{}` does not mention `{msg}`", e.msg);
    let text = src
        .lines()
        .nth(line - 1)
        .unwrap()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        text.contains(&e.text) || e.text.contains(text.trim_end_matches(';')),
        "{e} vs `{text}`"
    );
}

#[test]
fn the_committed_test_ptx_is_accepted() {
    let multi = include_str!("kernels/multi.ptx");
    for src in [ELEMENTWISE, REDUCE, SHUFFLES, INTOPS, FLOATOPS, multi] {
        parse_module(src, ParseOptions::default()).unwrap();
    }
}

#[test]
fn f32_arithmetic_without_rn_is_refused() {
    let l = first_line(ELEMENTWISE, "add.rn.f32");
    let t = ELEMENTWISE.lines().nth(l - 1).unwrap();
    for repl in ["add.f32", "add.rz.f32", "add.rm.f32", "add.rp.f32"] {
        refused_at(
            &replace_line(ELEMENTWISE, l, &t.replace("add.rn.f32", repl)),
            l,
            "must be .rn",
        );
    }
    let l = first_line(ELEMENTWISE, "mul.rn.f32");
    let t = ELEMENTWISE.lines().nth(l - 1).unwrap();
    refused_at(
        &replace_line(ELEMENTWISE, l, &t.replace("mul.rn.f32", "mul.f32")),
        l,
        "must be .rn",
    );
    let l = first_line(ELEMENTWISE, "sqrt.rn.f32");
    let t = ELEMENTWISE.lines().nth(l - 1).unwrap();
    refused_at(
        &replace_line(ELEMENTWISE, l, &t.replace("sqrt.rn.f32", "sqrt.approx.f32")),
        l,
        "approximate",
    );
    let l = first_line(ELEMENTWISE, "div.rn.f32");
    let t = ELEMENTWISE.lines().nth(l - 1).unwrap();
    refused_at(
        &replace_line(ELEMENTWISE, l, &t.replace("div.rn.f32", "div.full.f32")),
        l,
        "approximate",
    );
    refused_at(
        &replace_line(
            ELEMENTWISE,
            l,
            &t.replace("div.rn.f32", "div.approx.ftz.f32"),
        ),
        l,
        "approximate",
    );
    refused_at(
        &replace_line(ELEMENTWISE, l, &t.replace("div.rn.f32", "div.rn.ftz.f32")),
        l,
        ".ftz is refused",
    );
    let l = first_line(FLOATOPS, "mul.rn.f64");
    let t = FLOATOPS.lines().nth(l - 1).unwrap();
    refused_at(
        &replace_line(FLOATOPS, l, &t.replace("mul.rn.f64", "mul.f64")),
        l,
        "must be .rn",
    );
    let l = first_line(FLOATOPS, "fma.rn.f32");
    let t = FLOATOPS.lines().nth(l - 1).unwrap();
    refused_at(
        &replace_line(FLOATOPS, l, &t.replace("fma.rn.f32", "mad.f32")),
        l,
        "mad.f32",
    );
}

#[test]
fn atomics_local_calls_and_unknown_opcodes_are_refused() {
    let l = first_line(ELEMENTWISE, "st.global.f32");
    let cases = [
        ("\tatom.global.add.f32 \t%f1, [%rd9], %f2;", "float atomics"),
        ("\tred.global.add.f32 \t[%rd9], %f2;", "float atomics"),
        (
            "\tatom.global.add.u32 \t%r1, [%rd9], 1;",
            "atomics are not supported",
        ),
        ("\tex2.approx.f32 \t%f1, %f2;", "approximate"),
        ("\tbrkpt;", "not in the allowlist"),
        ("\tcall.uni \tfoo, (%f1);", "calls are not supported"),
        ("\tld.local.f32 \t%f1, [%rd9];", ".local"),
        ("\tld.global.f32 \t%f1, [%rd9+%rd10];", "two base registers"),
        (
            "\tshfl.sync.down.b32 \t%r1, %r2, 1, 31;",
            "expected 5 operands",
        ),
        ("\tbar.sync \t1;", "bar.sync 0"),
        ("\tmov.f32 \t%f1, %nosuchreg;", "unknown operand"),
    ];
    for (inst, msg) in cases {
        refused_at(&replace_line(ELEMENTWISE, l, inst), l, msg);
    }
    // A `.local` declaration in a kernel body.
    let l = first_line(REDUCE, ".shared .align 4");
    refused_at(
        &replace_line(REDUCE, l, "\t.local .align 4 .b8 \t__local_depot0[16];"),
        l,
        ".local",
    );
}

#[test]
fn device_functions_and_newer_isa_are_refused() {
    let l = first_line(INTOPS, ".visible .entry");
    let src = replace_line(
        INTOPS,
        l,
        ".func (.reg .b32 r) helper(.reg .b32 a)\n{\n\tret;\n}\n.visible .entry intops(",
    );
    refused_at(&src, l, "device functions");
    let l = first_line(INTOPS, ".version");
    refused_at(&replace_line(INTOPS, l, ".version 8.0"), l, "7.8");
}
