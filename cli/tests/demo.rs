//! `adamant demo` is reproducible (same bits on a second run), its losses decrease, its
//! skipped step writes nothing, Adam-mini's state is the size its blocks imply, and in the
//! gradient-spike scenario AdaGC's loss jump is under half of global clipping's.

use std::process::Command;
use std::sync::OnceLock;

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

/// `adamant demo --steps 60 --json`, run once and shared by the tests (each run trains every
/// row and the spike scenario, seconds in a debug build).
fn json60() -> &'static str {
    static OUT: OnceLock<String> = OnceLock::new();
    OUT.get_or_init(|| demo(&["--steps", "60", "--json"]))
}

#[test]
fn demo_is_reproducible_and_learns() {
    let a = json60();
    let b = demo(&["--steps", "60", "--json"]);
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
    assert!(t.contains("Gradient spike"), "{t}");
    assert!(
        t.contains("Verdict: the spike shows under global clipping ("),
        "{t}"
    );
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

/// The spike line of the JSON output for clipper `clip`.
fn spike_run(json: &'static str, clip: &str) -> &'static str {
    json.lines()
        .find(|l| l.contains(&format!("\"clip\": \"{clip}\"")))
        .unwrap_or_else(|| panic!("no spike run {clip}:\n{json}"))
}

fn num(line: &str, key: &str) -> f32 {
    field(line, key)
        .parse()
        .unwrap_or_else(|_| panic!("{key} in {line}"))
}

#[test]
fn adam_mini_keeps_fewer_second_moments() {
    let a = json60();
    let bytes = |name: &str| -> usize {
        let row = a
            .lines()
            .find(|l| l.contains(&format!("\"name\": \"{name}\"")))
            .unwrap_or_else(|| panic!("no row {name}:\n{a}"));
        field(row, "state_bytes").parse().unwrap()
    };
    // exp_avg for all 1348 parameters; exp_avg_sq per row of each weight (64 + 4) and per
    // element of each bias (64 + 4), all f32.
    assert_eq!(bytes("Adam-mini"), (1348 + 64 + 64 + 4 + 4) * 4);
    assert_eq!(bytes("AdamW"), 2 * 1348 * 4);
    // AdaGC adds one f32 threshold per tensor.
    assert_eq!(bytes("AdamW + AdaGC"), 2 * 1348 * 4 + 4 * 4);
}

#[test]
fn adagc_absorbs_the_gradient_spike_that_global_clipping_lets_through() {
    let a = json60();
    let off = spike_run(a, "no clipping");
    let global = spike_run(a, "global clip");
    let adagc = spike_run(a, "AdaGC");
    let (j_off, j_global, j_adagc) = (num(off, "jump"), num(global, "jump"), num(adagc, "jump"));
    // The 100x batch wrecks unclipped AdamW, global clipping leaves a visible bump, AdaGC
    // (per tensor) cuts it to less than half.
    assert!(j_off > 0.5, "no clipping: jump {j_off}\n{off}");
    assert!(j_global > 0.01, "global clip: jump {j_global}\n{global}");
    assert!(j_global < j_off, "global {j_global} vs none {j_off}");
    assert!(
        j_adagc < 0.5 * j_global,
        "AdaGC jump {j_adagc} vs global clip {j_global}\n{adagc}\n{global}"
    );
    // The peak is after the spike, and the jump is computed from the printed figures.
    for line in [off, global, adagc] {
        let (before, peak) = (num(line, "before"), num(line, "peak"));
        assert!(field(line, "peak_step").parse::<u64>().unwrap() > 80);
        let jump = ((peak - before) / before).max(0.0);
        assert!((jump - num(line, "jump")).abs() <= 1e-6, "{line}");
    }
    // Global clipping brings the spiked gradient's norm down to max_norm exactly (f32).
    let coef: f32 = field(global, "spike_coefs")
        .trim_matches(|c| c == '[' || c == ']')
        .split(", ")
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let clipped = num(global, "spike_norm") * coef;
    assert!((clipped - 1.0).abs() < 1e-5, "clipped norm {clipped}");
    // AdaGC clips every tensor harder than the global coefficient.
    for c in field(adagc, "spike_coefs")
        .trim_matches(|c| c == '[' || c == ']')
        .split(", ")
    {
        let c: f32 = c.parse().unwrap();
        assert!(
            c > 0.0 && c < coef,
            "AdaGC coefficient {c} vs global {coef}"
        );
    }
}
