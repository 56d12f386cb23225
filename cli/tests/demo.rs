//! `adamant demo` is reproducible (same bits on a second run), its losses decrease, and its
//! skipped step writes nothing.

use std::process::Command;

fn demo(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_adamant"))
        .arg("demo")
        .args(args)
        .output()
        .expect("run adamant demo");
    assert!(
        out.status.success(),
        "adamant demo {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// The value after `"key": ` on a line (up to the next `,` or `}` outside brackets).
fn field<'a>(line: &'a str, key: &str) -> &'a str {
    let pat = format!("\"{key}\": ");
    let start = line
        .find(&pat)
        .unwrap_or_else(|| panic!("no {key} in {line}"))
        + pat.len();
    let rest = &line[start..];
    let mut depth = 0;
    for (i, c) in rest.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ',' | '}' if depth == 0 => return rest[..i].trim_matches('"'),
            _ => {}
        }
    }
    rest
}

#[test]
fn demo_is_reproducible_and_learns() {
    let steps = "60";
    let a = demo(&["--steps", steps, "--json"]);
    let b = demo(&["--steps", steps, "--json"]);
    assert_eq!(a, b, "two runs of the demo printed different output");

    let rows: Vec<&str> = a.lines().filter(|l| l.contains("\"losses\"")).collect();
    assert!(rows.len() >= 5, "expected at least 5 optimizer rows:\n{a}");
    let mut hashes = Vec::new();
    for row in &rows {
        let name = field(row, "name");
        let losses: Vec<f32> = field(row, "losses")
            .trim_matches(|c| c == '[' || c == ']')
            .split("], [")
            .map(|pair| pair.split(", ").nth(1).unwrap().parse().unwrap())
            .collect();
        assert!(losses.len() >= 4, "{name}: {losses:?}");
        let (first, last) = (losses[0], *losses.last().unwrap());
        assert!(
            last < 0.75 * first,
            "{name}: loss did not decrease enough: {losses:?}"
        );
        let hash = field(row, "hash");
        assert_eq!(hash.len(), 16, "{name}: hash {hash}");
        assert!(field(row, "state_bytes").parse::<usize>().unwrap() > 0);
        hashes.push(hash.to_owned());
    }
    // Different optimizers end at different bits.
    let mut unique = hashes.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), hashes.len(), "{hashes:?}");

    let skip = a.lines().find(|l| l.contains("\"skip\"")).unwrap();
    assert_eq!(field(skip, "applied"), "false");
    assert_eq!(field(skip, "hash_before"), field(skip, "hash_after"));
    assert_eq!(field(skip, "step_before"), field(skip, "step_after"));
    assert_eq!(field(skip, "retry_applied"), "true");

    let bf = a.lines().find(|l| l.contains("\"bf16\"")).unwrap();
    let l: f32 = field(bf, "loss_stochastic").parse().unwrap();
    assert!(
        l.is_finite() && l < 1.3,
        "bf16 stochastic rounding loss {l}"
    );
}

#[test]
fn demo_text_explains_the_hash_and_rejects_bad_flags() {
    let t = demo(&["--steps", "12"]);
    assert!(t.contains("final params hash"), "{t}");
    assert!(t.contains("Run it twice and compare"), "{t}");
    assert!(t.contains("skipped"), "{t}");
    let out = Command::new(env!("CARGO_BIN_EXE_adamant"))
        .args(["demo", "--steps", "x"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--steps"));
}
