//! `adamant`: the command-line entry for people evaluating the library.
//!
//! Each subcommand lives in its own module with `pub fn run(args: &[String]) -> Result<(), String>`;
//! an `Err` is printed to stderr and the process exits with status 1.

mod bench;
mod demo;
mod dp_sim;
mod memory;
mod mlp;
mod verify;

const USAGE: &str = "\
usage: adamant <command> [options]

commands:
  bench     speed of every rule per storage type, size and thread count, against an
            in-place ceiling kernel of the same memory traffic (--json, --quick; see bench --help)
  demo      train a small model with every optimizer; print losses, state bytes, hashes
  memory    optimizer state bytes of AdamW, Adam-mini and Lion for a real model
            [--json] [--model llama2-7b|llama2-13b|gpt2-124m]
  dp-sim    data-parallel training with f32, plain 4-bit and LoCo gradient exchange
  verify    every CUDA kernel against the CPU core, bit for bit, on the PTX simulator
            (and GPU 0 when present) [--json] [--ptx-dir DIR] [--quick] [--threads N]
  help      print this message
";

fn main() {
    // `adamant bench | head` should end quietly like any Unix tool, not panic on EPIPE.
    #[cfg(unix)]
    // SAFETY: restoring the default SIGPIPE disposition at start-up, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cmd, rest) = match args.split_first() {
        Some((c, r)) => (c.as_str(), r),
        None => ("demo", &[][..]),
    };
    let result = match cmd {
        "bench" => bench::run(rest),
        "demo" => demo::run(rest),
        "memory" => memory::run(rest),
        "dp-sim" => dp_sim::run(rest),
        "verify" => verify::run(rest),
        "help" | "-h" | "--help" => {
            print!("{USAGE}");
            Ok(())
        }
        other => Err(format!("unknown command `{other}`\n{USAGE}")),
    };
    if let Err(e) = result {
        eprintln!("adamant: {e}");
        std::process::exit(1);
    }
}
