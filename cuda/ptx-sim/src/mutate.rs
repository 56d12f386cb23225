//! Negative controls: mutated copies of PTX text that a bit-exact comparison must reject,
//! either because the simulator refuses them or because they run and produce other bits.
//! Each function returns `None` when the text has no `nth` (0-based) site of its kind.

/// One instruction line split into (indent, opcode, operands), if it is one.
fn split(line: &str) -> Option<(&str, &str, Vec<String>)> {
    let t = line.trim_start();
    if t.starts_with('@') || t.starts_with('.') || t.starts_with("//") || !t.ends_with(';') {
        return None;
    }
    let indent = &line[..line.len() - t.len()];
    let (op, rest) = t.split_once(char::is_whitespace)?;
    let ops = rest
        .trim()
        .trim_end_matches(';')
        .split(',')
        .map(|s| s.trim().to_string())
        .collect();
    Some((indent, op, ops))
}

fn writes(line: &str, reg: &str) -> bool {
    match split(line) {
        Some((_, _, ops)) => ops.first().is_some_and(|d| d == reg),
        None => line.trim_start().starts_with('@') && line.contains(&format!(" {reg},")),
    }
}

/// (a) Contracts the `nth` `mul.rn.f32 t, a, b` followed (within 8 lines, same basic block,
/// `a`/`b` unchanged) by `add.rn.f32 e, t, c` (or `e, c, t`) into `fma.rn.f32 e, a, b, c`.
/// The `mul` stays, so the program remains valid.
pub fn fuse_mul_add(ptx: &str, nth: usize) -> Option<String> {
    let lines: Vec<&str> = ptx.lines().collect();
    let mut seen = 0;
    for i in 0..lines.len() {
        let Some((_, "mul.rn.f32", m)) = split(lines[i]) else {
            continue;
        };
        if m.len() != 3 {
            continue;
        }
        for j in i + 1..(i + 9).min(lines.len()) {
            let t = lines[j].trim();
            if t.ends_with(':') || t.contains("bra") || t.starts_with('}') {
                break;
            }
            if let Some((ind, "add.rn.f32", a)) = split(lines[j]) {
                if a.len() == 3 && (a[1] == m[0] || a[2] == m[0]) {
                    let c = if a[1] == m[0] { &a[2] } else { &a[1] };
                    if seen == nth {
                        let mut out: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
                        out[j] = format!("{ind}fma.rn.f32 \t{}, {}, {}, {};", a[0], m[1], m[2], c);
                        return Some(out.join("\n") + "\n");
                    }
                    seen += 1;
                    break;
                }
            }
            if writes(lines[j], &m[0]) || writes(lines[j], &m[1]) || writes(lines[j], &m[2]) {
                break;
            }
        }
    }
    None
}

/// (b) Adds `.ftz` to the `nth` f32 arithmetic instruction (`add sub mul div sqrt fma .rn.f32`).
pub fn add_ftz(ptx: &str, nth: usize) -> Option<String> {
    let mut seen = 0;
    let mut out = String::with_capacity(ptx.len() + 8);
    let mut done = false;
    for line in ptx.lines() {
        let t = line.trim_start();
        let op = t.split_whitespace().next().unwrap_or("");
        let arith = ["add", "sub", "mul", "div", "sqrt", "fma"]
            .iter()
            .any(|p| op == format!("{p}.rn.f32"));
        if !done && arith {
            if seen == nth {
                out.push_str(&line.replacen(".rn.f32", ".rn.ftz.f32", 1));
                out.push('\n');
                done = true;
                continue;
            }
            seen += 1;
        }
        out.push_str(line);
        out.push('\n');
    }
    done.then_some(out)
}

/// (c) Reassociates a reduction: for the `nth` pair `add.rn.f32 t, a, b` ... `add.rn.f32 e, t, c`
/// (or `e, c, t`; within 12 lines, no label or branch in between, `t` not rewritten) makes the
/// second add compute `(a + c) + b` instead of `(a + b) + c`. `a` and `b` are saved in two new
/// registers `%mut_a`, `%mut_b` at the first add, which stays (other uses of `t` are unchanged).
pub fn swap_reduction_operands(ptx: &str, nth: usize) -> Option<String> {
    let lines: Vec<&str> = ptx.lines().collect();
    let mut seen = 0;
    for i in 0..lines.len() {
        let Some((ind1, "add.rn.f32", x)) = split(lines[i]) else {
            continue;
        };
        if x.len() != 3 {
            continue;
        }
        for j in i + 1..(i + 13).min(lines.len()) {
            let t = lines[j].trim();
            if t.ends_with(':') || t.contains("bra") || t.starts_with('}') {
                break;
            }
            if let Some((ind2, "add.rn.f32", y)) = split(lines[j]) {
                if y.len() == 3 && (y[1] == x[0] || y[2] == x[0]) && y[1] != y[2] {
                    if seen == nth {
                        let c = if y[1] == x[0] { &y[2] } else { &y[1] };
                        // Declare the two registers right after the kernel's first `.reg .f32`.
                        let decl = lines[..i]
                            .iter()
                            .rposition(|l| l.trim_start().starts_with(".reg .f32"))?;
                        let mut out: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
                        out[decl] = format!("{}\n\t.reg .f32 \t%mut_a, %mut_b;", lines[decl]);
                        out[i] = format!(
                            "{ind1}mov.f32 \t%mut_a, {};\n{ind1}mov.f32 \t%mut_b, {};\n{}",
                            x[1], x[2], lines[i]
                        );
                        out[j] = format!(
                            "{ind2}add.rn.f32 \t%mut_a, %mut_a, {c};\n{ind2}add.rn.f32 \t{}, %mut_a, %mut_b;",
                            y[0]
                        );
                        return Some(out.join("\n") + "\n");
                    }
                    seen += 1;
                    break;
                }
            }
            if writes(lines[j], &x[0]) {
                break;
            }
        }
    }
    None
}

/// (c') Swaps the offset operands of the `nth` and `nth + 1` `shfl.sync` instructions of the text,
/// changing a shuffle tree's pairing.
pub fn swap_shfl_offsets(ptx: &str, nth: usize) -> Option<String> {
    let lines: Vec<&str> = ptx.lines().collect();
    let idx: Vec<usize> = (0..lines.len())
        .filter(|&i| split(lines[i]).is_some_and(|(_, op, _)| op.starts_with("shfl.sync")))
        .collect();
    let (&i, &j) = (idx.get(nth)?, idx.get(nth + 1)?);
    let (ind1, op1, mut a) = split(lines[i])?;
    let (ind2, op2, mut b) = split(lines[j])?;
    if a.len() != 5 || b.len() != 5 || a[2] == b[2] {
        return None;
    }
    std::mem::swap(&mut a[2], &mut b[2]);
    let mut out: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
    out[i] = format!("{ind1}{op1} \t{};", a.join(", "));
    out[j] = format!("{ind2}{op2} \t{};", b.join(", "));
    Some(out.join("\n") + "\n")
}
