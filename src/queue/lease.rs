//! Reads held open: a [`Lease`] is closed to confirm the read, or aborted (or dropped) to give
//! the item back.

use super::handle::Queue;
use super::state::Held;
use super::Error;
use std::sync::Arc;

/// One read held open: close it to confirm, abort it (or drop it) to give the item back.
#[derive(Debug)]
pub struct Lease {
    queue: Arc<Queue>,
    held: Held,
    id: u64,
    done: bool,
}

impl Lease {
    pub(crate) fn new(queue: Arc<Queue>, held: Held, id: u64) -> Lease {
        Lease {
            queue,
            held,
            id,
            done: false,
        }
    }

    /// Confirms the read: a plain item is deleted, a cursor's copy is dropped.
    pub fn close(mut self) -> Result<(), Error> {
        self.done = true;
        let result = self.queue.lock().close(&self.held, self.id);
        if result.is_err() {
            // Not confirmed: the item must not stay held by nobody.
            self.done = false;
        }
        result
    }

    /// Whether the queue or cursor this read came from has been deleted since.
    pub fn is_stale(&self) -> bool {
        self.queue.lock().is_stale(&self.held)
    }

    /// Gives the item back: a plain item to the head of its queue, a cursor's to its
    /// failed reads. Both are served before anything newer.
    pub fn abort(mut self) {
        self.give_back();
    }

    fn give_back(&mut self) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let wake = self.queue.lock().abort(&self.held, self.id);
        self.queue.notify(wake);
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.give_back();
    }
}
