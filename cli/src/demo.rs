//! `adamant demo` (placeholder until the demo lands).

pub fn run(_args: &[String]) -> Result<(), String> {
    Err("demo is not built yet".into())
}
