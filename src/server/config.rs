//! The server's settings (the store has its own). Imports nothing of the server.

use std::time::Duration;

/// Server settings (the store has its own).
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: String,
    /// Where to serve `GET /metrics` and `GET /healthz` over HTTP (`None`: nowhere).
    pub metrics: Option<String>,
    pub max_item_size: u32,
    pub max_connections: u64,
    /// Whether the `shutdown` command stops the server.
    pub allow_shutdown: bool,
    /// Threads serving connections; `None`: one per CPU.
    pub threads: Option<std::num::NonZeroUsize>,
    /// How the allocator gives freed memory back to the system (main.rs alone knows the
    /// allocator). An allocator with per-thread heaps returns a thread's free pages only while
    /// that thread allocates, so the threads serving connections would keep what a drained
    /// backlog used for as long as the server idles.
    pub release_memory: Option<WhenIdle>,
}

/// A function to run on every thread that serves connections every `after` in which no client
/// sent anything: never under load, where it could only add latency.
#[derive(Debug, Clone, Copy)]
pub struct WhenIdle {
    pub after: Duration,
    pub run: fn(),
}
