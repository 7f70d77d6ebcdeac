//! The async runtime seam: the only file that names async-std.
//!
//! async-std is discontinued upstream (its successor is smol); everything else in the server
//! is written against these names and the `futures-lite` I/O traits, so moving runtimes
//! touches this file alone.

pub use async_std::net::{TcpListener, TcpStream};
pub use async_std::task::{block_on, sleep, spawn};

use std::num::NonZeroUsize;

/// Sets how many threads run connections (`None`: async-std's default, one per CPU). Call
/// before anything is spawned: async-std reads this when its executor starts.
pub fn set_threads(threads: Option<NonZeroUsize>) {
    if let Some(threads) = threads {
        std::env::set_var("ASYNC_STD_THREAD_COUNT", threads.to_string());
    }
}
