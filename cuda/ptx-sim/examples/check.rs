//! Parses PTX files with the simulator's allowlist and reports each kernel or the first refusal.
//! `cargo run -p adamant-ptx-sim --example check -- cuda/ptx/*.ptx`
use ptx_sim::{parse_module, ParseOptions};

fn main() {
    let mut failed = false;
    for path in std::env::args().skip(1) {
        let text = std::fs::read_to_string(&path).expect("readable PTX file");
        match parse_module(&text, ParseOptions::default()) {
            Ok(m) => {
                for k in &m.kernels {
                    println!(
                        "{path}: {} ({} instructions, {} registers, {} param bytes, {} shared bytes)",
                        k.name,
                        k.insts.len(),
                        k.nregs,
                        k.param_bytes,
                        k.shared_bytes
                    );
                }
            }
            Err(e) => {
                failed = true;
                println!("{path}: REFUSED {e}");
            }
        }
    }
    std::process::exit(failed as i32);
}
