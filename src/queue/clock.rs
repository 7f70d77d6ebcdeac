//! The store's clock: enqueue times, expiry, max age and open-read deadlines all read it.
//!
//! The system clock in production. Tests swap in a clock they move by hand ([`Clock::manual`],
//! in process) or one read from a file ([`Clock::file`], for the real binary), so a timeout
//! fires because a test said so, never because a test waited long enough: the suite then
//! behaves the same on a slow machine.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Where the store reads the time, in unix milliseconds.
#[derive(Debug, Clone, Default)]
pub enum Clock {
    #[default]
    System,
    /// Whatever the shared value says: see [`Clock::manual`].
    Manual(Arc<AtomicU64>),
    /// The decimal number in this file (re-read each time; for tests of the binary only).
    File(Arc<PathBuf>),
}

impl Clock {
    /// A clock standing at `start_ms` that moves only when the returned handle is stored to.
    pub fn manual(start_ms: u64) -> (Clock, Arc<AtomicU64>) {
        let time = Arc::new(AtomicU64::new(start_ms));
        (Clock::Manual(time.clone()), time)
    }

    /// A clock that reads the file at `path` (it must hold unix ms in decimal).
    pub fn file(path: impl Into<PathBuf>) -> Clock {
        Clock::File(Arc::new(path.into()))
    }

    /// Milliseconds since the unix epoch.
    pub fn now_ms(&self) -> u64 {
        match self {
            Clock::System => now_ms(),
            Clock::Manual(time) => time.load(Ordering::SeqCst),
            // A missing or half-written file reads as the system time: tests write it before
            // starting the server and replace it atomically.
            Clock::File(path) => std::fs::read_to_string(path.as_path())
                .ok()
                .and_then(|text| text.trim().parse().ok())
                .unwrap_or_else(now_ms),
        }
    }
}

/// Milliseconds since the unix epoch, by the system clock.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}
