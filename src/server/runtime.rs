//! The async runtime seam: the only file that names async-std.
//!
//! async-std is discontinued upstream (its successor is smol); everything else in the server
//! is written against these names and the `futures-lite` I/O traits, so moving runtimes
//! touches this file alone.

pub use async_std::net::{TcpListener, TcpStream};
pub use async_std::task::{block_on, sleep, spawn, spawn_blocking};

use std::num::NonZeroUsize;

/// Tasks per thread that [`on_every_thread`] spawns.
const TASKS_PER_THREAD: usize = 4;

/// Sets how many threads run connections (`None`: async-std's default, one per CPU). Call
/// before anything is spawned: async-std reads this when its executor starts.
pub fn set_threads(threads: Option<NonZeroUsize>) {
    if let Some(threads) = threads {
        std::env::set_var("ASYNC_STD_THREAD_COUNT", threads.to_string());
    }
}

/// Runs `f` on every thread of the runtime, as far as async-std allows: it cannot aim a task at
/// a thread, so this spawns several short tasks per thread. A woken thread that finds work
/// wakes another before running it, so idle threads all take some.
pub fn on_every_thread(f: fn()) {
    let threads = std::env::var("ASYNC_STD_THREAD_COUNT")
        .ok()
        .and_then(|n| n.parse().ok())
        .or_else(|| {
            std::thread::available_parallelism()
                .ok()
                .map(NonZeroUsize::get)
        })
        .unwrap_or(1);
    for _ in 0..threads * TASKS_PER_THREAD {
        spawn(async move { f() });
    }
}
