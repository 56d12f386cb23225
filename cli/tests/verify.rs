//! `adamant verify`: the embedded PTX passes; copies of `cuda/ptx/` mutated here by plain text
//! edits (independently of `ptx_sim::mutate`) fail; bad `--ptx-dir` contents are refused.

use std::path::{Path, PathBuf};
use std::process::Command;

fn ptx_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../cuda/ptx")
}

/// A fresh copy of `cuda/ptx/` in a temporary directory named `tag`.
fn copy(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("adamant-verify-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for f in std::fs::read_dir(ptx_dir()).unwrap() {
        let p = f.unwrap().path();
        if p.extension().is_some_and(|e| e == "ptx") {
            std::fs::copy(&p, dir.join(p.file_name().unwrap())).unwrap();
        }
    }
    dir
}

fn verify(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_adamant"))
        .arg("verify")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// (kernel, cases, identical) of each JSON line.
fn parse_json(stdout: &str) -> Vec<(String, u64, u64)> {
    stdout
        .lines()
        .map(|l| {
            let field = |k: &str| {
                let at = l.find(&format!("\"{k}\":")).unwrap() + k.len() + 3;
                l[at..]
                    .split([',', '}'])
                    .next()
                    .unwrap()
                    .trim_matches('"')
                    .to_string()
            };
            assert_eq!(field("backend"), "ptx-sim", "{l}");
            (
                field("kernel"),
                field("cases").parse().unwrap(),
                field("identical").parse().unwrap(),
            )
        })
        .collect()
}

#[test]
fn embedded_ptx_is_identical_for_every_kernel() {
    let (code, out, err) = verify(&["--quick", "--json"]);
    assert_eq!(code, 0, "{err}");
    let rows = parse_json(&out);
    // Every entry of every file in cuda/ptx is reported.
    let mut want = Vec::new();
    for f in std::fs::read_dir(ptx_dir()).unwrap() {
        let p = f.unwrap().path();
        if p.extension().is_some_and(|e| e == "ptx") {
            let text = std::fs::read_to_string(&p).unwrap();
            want.extend(adamant_entries(&text));
        }
    }
    assert!(want.len() >= 67);
    for e in &want {
        let row = rows.iter().find(|r| &r.0 == e);
        let Some((_, cases, identical)) = row else {
            panic!("{e} missing from the report")
        };
        assert!(*cases > 0 && cases == identical, "{e}: {identical}/{cases}");
    }
    assert!(err.contains("no GPU") || out.contains("cuda:"), "{err}");
}

fn adamant_entries(ptx: &str) -> Vec<String> {
    ptx.lines()
        .filter_map(|l| l.strip_prefix(".visible .entry "))
        .map(|r| r.split('(').next().unwrap().trim().to_string())
        .collect()
}

/// Contract the first `mul.rn.f32 a, x, y` whose result the very next line adds
/// (`add.rn.f32 d, a, z` or `d, z, a`) into `fma.rn.f32 d, x, y, z`.
fn contract_first_pair(ptx: &str) -> String {
    let lines: Vec<&str> = ptx.lines().collect();
    let ops = |l: &str, op: &str| -> Option<Vec<String>> {
        let r = l.trim().strip_prefix(op)?;
        Some(
            r.trim()
                .trim_end_matches(';')
                .split(',')
                .map(|s| s.trim().to_string())
                .collect(),
        )
    };
    for i in 0..lines.len() - 1 {
        let (Some(m), Some(a)) = (ops(lines[i], "mul.rn.f32"), ops(lines[i + 1], "add.rn.f32"))
        else {
            continue;
        };
        let z = if a[1] == m[0] {
            &a[2]
        } else if a[2] == m[0] {
            &a[1]
        } else {
            continue;
        };
        let mut out: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
        out[i + 1] = format!("\tfma.rn.f32 \t{}, {}, {}, {};", a[0], m[1], m[2], z);
        return out.join("\n") + "\n";
    }
    panic!("no mul/add pair");
}

#[test]
fn a_contracted_multiply_add_fails() {
    let dir = copy("fma");
    let adam = std::fs::read_to_string(dir.join("adam.ptx")).unwrap();
    let mutated = contract_first_pair(&adam);
    assert_ne!(mutated, adam);
    std::fs::write(dir.join("adam.ptx"), mutated).unwrap();
    let (code, out, err) = verify(&["--quick", "--json", "--ptx-dir", dir.to_str().unwrap()]);
    assert_ne!(code, 0, "{out}");
    let rows = parse_json(&out);
    let bad: Vec<_> = rows.iter().filter(|r| r.1 != r.2).collect();
    // Only the mutated kernel (the first of adam.ptx) fails; the rest stays identical.
    assert_eq!(bad.len(), 1, "{bad:?}\n{err}");
    assert_eq!(bad[0].0, "adamant_adam_f32_f32_f32");
    assert!(err.contains("mismatch"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn an_ftz_op_fails() {
    let dir = copy("ftz");
    let reduce = std::fs::read_to_string(dir.join("reduce.ptx")).unwrap();
    let mutated = reduce.replacen("add.rn.f32", "add.rn.ftz.f32", 1);
    std::fs::write(dir.join("reduce.ptx"), mutated).unwrap();
    let (code, out, err) = verify(&["--quick", "--ptx-dir", dir.to_str().unwrap()]);
    assert_ne!(code, 0, "{out}");
    assert!(err.contains(".ftz"), "{err}");
    assert!(
        out.contains("adamant_reduce_sum_f32") && out.contains("FAIL"),
        "{out}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn unknown_and_missing_modules_are_refused() {
    let dir = copy("names");
    std::fs::write(dir.join("mine.ptx"), ".version 7.8\n").unwrap();
    let (code, _, err) = verify(&["--ptx-dir", dir.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(
        err.contains("unknown module") && err.contains("mine.ptx"),
        "{err}"
    );
    std::fs::remove_file(dir.join("mine.ptx")).unwrap();
    std::fs::remove_file(dir.join("lion.ptx")).unwrap();
    let (code, _, err) = verify(&["--ptx-dir", dir.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(err.contains("missing lion.ptx"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}
