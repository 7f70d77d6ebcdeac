//! Waiting for a condition, never for time: a test polls what it waits for, and the bound is
//! only a safety net so that a broken server fails the test instead of hanging it.

use std::thread;
use std::time::{Duration, Instant};

/// The safety net of every wait for a condition: generous, so a slow or busy machine never
/// reaches it while the condition is merely late.
pub const CONDITION_TIMEOUT: Duration = Duration::from_secs(100);

/// Polls `condition` until it holds; panics, naming `what`, after [`CONDITION_TIMEOUT`].
#[track_caller]
pub fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + CONDITION_TIMEOUT;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "waited {CONDITION_TIMEOUT:?} for {what}"
        );
        thread::sleep(Duration::from_millis(10));
    }
}

/// Joins every thread, re-raising the first panic among them.
pub fn join_all<T>(handles: Vec<thread::JoinHandle<T>>) -> Vec<T> {
    handles
        .into_iter()
        .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
        .collect()
}
