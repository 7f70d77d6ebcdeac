//! The server's stop signal: a one-way flag that any number of tasks can wait for, and the
//! handle by which code outside the server (main.rs's signal handling, a test) pulls it.
//!
//! Imports nothing of the server: everything else waits on it.

use event_listener::Event;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A one-way "stop now" signal that any number of tasks can wait for.
pub(crate) struct Shutdown {
    stopping: AtomicBool,
    event: Event,
}

impl Shutdown {
    pub(crate) fn new() -> Shutdown {
        Shutdown {
            stopping: AtomicBool::new(false),
            event: Event::new(),
        }
    }

    pub(crate) fn trigger(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.event.notify(usize::MAX);
    }

    pub(crate) fn is_triggered(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    pub(crate) async fn wait(&self) {
        loop {
            if self.is_triggered() {
                return;
            }
            // Listen before the second look, so a trigger in between still wakes us.
            let listener = self.event.listen();
            if self.is_triggered() {
                return;
            }
            listener.await;
        }
    }
}

/// Tells a running server to stop gracefully, as the `shutdown` command does: it stops
/// accepting, lets connections finish their current command, returns their open reads and
/// flushes the store. Cheap to clone; usable from any thread, before or during `run`.
#[derive(Clone)]
pub struct ShutdownHandle(pub(crate) Arc<Shutdown>);

impl ShutdownHandle {
    /// Starts the graceful stop (again: no effect).
    pub fn shutdown(&self) {
        self.0.trigger();
    }

    /// Whether a stop has been asked for, by this handle or by a `shutdown` command.
    pub fn is_shutting_down(&self) -> bool {
        self.0.is_triggered()
    }
}
