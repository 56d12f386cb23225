//! Negative controls: run one kernel's cases on a mutated copy of its module and report
//! whether the matrix catches the mutation (a mismatch, or a refusal).

use crate::{entry_cases, run_cases, Level};
use ptx_sim::{ParseOptions, Simulator};

/// The outcome of one mutant.
#[derive(Clone, Debug)]
pub struct Verdict {
    /// The kernel the mutation landed in.
    pub entry: String,
    /// Caught: a case failed (or the module was refused).
    pub killed: bool,
    /// The failure that caught it, or why it survived.
    pub how: String,
    /// Cases run before the verdict.
    pub cases_run: usize,
}

/// The entry whose body contains line `idx` (0-based) of `ptx`.
pub fn entry_at(ptx: &str, idx: usize) -> Option<String> {
    let lines: Vec<&str> = ptx.lines().collect();
    let start = (0..=idx.min(lines.len().saturating_sub(1)))
        .rev()
        .find(|&i| lines[i].starts_with(".visible .entry "))?;
    let end = (start..lines.len()).find(|&i| lines[i].starts_with('}'))?;
    if idx > end {
        return None;
    }
    adamant_cuda::ptx::entries(lines[start])
        .next()
        .map(str::to_string)
}

/// `ptx` reduced to its header (`.version`, `.target`, `.address_size`) and kernel `entry`:
/// parses in a fraction of the time of the whole module.
pub fn isolate(ptx: &str, entry: &str) -> Option<String> {
    let lines: Vec<&str> = ptx.lines().collect();
    let header = format!(".visible .entry {entry}(");
    let start = lines.iter().position(|l| l.starts_with(&header))?;
    let end = (start..lines.len()).find(|&i| lines[i].starts_with('}'))?;
    let mut out: Vec<&str> = lines
        .iter()
        .take(start)
        .filter(|l| {
            l.starts_with(".version") || l.starts_with(".target") || l.starts_with(".address_size")
        })
        .copied()
        .collect();
    out.extend(&lines[start..=end]);
    Some(out.join("\n") + "\n")
}

/// The kernel a mutation touched: the entries around the first and the last differing line
/// must be the same.
pub fn mutated_entry(original: &str, mutated: &str) -> Option<String> {
    let a: Vec<&str> = original.lines().collect();
    let b: Vec<&str> = mutated.lines().collect();
    let first = (0..a.len().min(b.len())).find(|&i| a[i] != b[i])?;
    let mut k = 0;
    while k < a.len() && k < b.len() && a[a.len() - 1 - k] == b[b.len() - 1 - k] {
        k += 1;
    }
    let last = b.len() - 1 - k;
    let e = entry_at(mutated, first)?;
    (entry_at(mutated, last.max(first))? == e).then_some(e)
}

/// Run the cases of the mutated kernel (module `module`) on `mutated` with parse options
/// `opts`, stopping at the first failing case.
pub fn judge(
    module: &str,
    original: &str,
    mutated: &str,
    opts: ParseOptions,
    level: Level,
    threads: usize,
) -> Result<Verdict, String> {
    let entry =
        mutated_entry(original, mutated).ok_or("the mutation spans several kernels or none")?;
    let text = isolate(mutated, &entry).ok_or("entry not found")?;
    let mut base = Simulator::with_options(opts);
    if let Err(e) = base.register_module(module, &text) {
        return Ok(Verdict {
            entry,
            killed: true,
            how: format!("refused: {e}"),
            cases_run: 0,
        });
    }
    let cases = entry_cases(module, &entry, level).ok_or("no cases for the entry")?;
    let out = run_cases(|| Ok(base.fresh()), &cases, threads, true)?;
    let failed = out.iter().find(|o| o.result.is_err());
    Ok(match failed {
        Some(o) => Verdict {
            entry,
            killed: true,
            how: format!(
                "{}: {}",
                cases[o.index].label,
                o.result.as_ref().unwrap_err()
            ),
            cases_run: out.len(),
        },
        None => Verdict {
            entry,
            killed: false,
            how: "every case identical".into(),
            cases_run: out.len(),
        },
    })
}
