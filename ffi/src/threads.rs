//! How many threads a CPU step uses: `adamant_set_num_threads`, else the environment variable
//! `ADAMANT_NUM_THREADS`, else every core the process may use.
//!
//! The CPU entry points validate a whole call first, then hand each tensor to `adamant-cpu`'s
//! driver (run-time ISA dispatch, the tensor split over threads at fixed element boundaries).
//! Every thread count and instruction set gives the same bits. A tensor shorter than two
//! grains (2 * 65536 elements), or any tensor with one thread, runs on the calling thread and
//! allocates nothing; a longer one with several threads starts scoped threads for the call,
//! which allocates their stacks. The first call of the process reads the environment, the CPU
//! features and the core count once (that first read allocates).

use crate::status::adamant_status;
use adamant_cpu::Driver;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// Name of the environment variable read once per process: a positive integer thread count.
/// Unset, empty, zero or unparsable: every core (`std::thread::available_parallelism`).
pub const ADAMANT_NUM_THREADS_ENV: &str = "ADAMANT_NUM_THREADS";

/// The caller's choice (`adamant_set_num_threads`); 0 = not set.
static REQUESTED: AtomicUsize = AtomicUsize::new(0);

/// The environment's choice, read once; 0 = not set.
fn from_env() -> usize {
    static ENV: OnceLock<usize> = OnceLock::new();
    *ENV.get_or_init(|| {
        std::env::var(ADAMANT_NUM_THREADS_ENV)
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
            .unwrap_or(0)
    })
}

/// The driver a CPU step runs on (process-wide thread count, process ISA).
pub(crate) fn driver() -> Driver {
    let n = match REQUESTED.load(Ordering::Relaxed) {
        0 => from_env(),
        n => n,
    };
    Driver::new().with_threads(n)
}

/// Set the number of threads CPU steps use from now on, for the whole process: `n > 0` uses
/// `n` threads; 0 returns to the default (`ADAMANT_NUM_THREADS`, else every core). Results do
/// not depend on it: every thread count gives the same bits. Safe to call from any thread;
/// calls already running keep their count.
#[no_mangle]
pub extern "C" fn adamant_set_num_threads(n: usize) -> adamant_status {
    REQUESTED.store(n, Ordering::Relaxed);
    adamant_status::Ok
}

/// The number of threads CPU steps use (at least 1). The first call reads
/// `ADAMANT_NUM_THREADS` and the core count.
#[no_mangle]
pub extern "C" fn adamant_num_threads() -> usize {
    driver().threads()
}
