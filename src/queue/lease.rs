//! Reads held open: a [`Lease`] is closed to confirm the read, or aborted (or dropped) to give
//! the item back. Each use first gives back whatever open read of its queue is past its
//! deadline, this one included, so the holder of a timed-out read sees it timed out however
//! late the background checker runs.

use super::handle::Queue;
use super::state::{GiveBack, Held};
use super::{Clock, Error};
use std::sync::Arc;

/// One read held open: close it to confirm, abort it (or drop it) to give the item back.
#[derive(Debug)]
pub struct Lease {
    queue: Arc<Queue>,
    held: Held,
    id: u64,
    clock: Clock,
    done: bool,
}

impl Lease {
    pub(crate) fn new(queue: Arc<Queue>, held: Held, id: u64, clock: Clock) -> Lease {
        Lease {
            queue,
            held,
            id,
            clock,
            done: false,
        }
    }

    /// Gives back the queue's open reads that are due (see `timeout`).
    fn time_out(&self) {
        self.queue.time_out(self.clock.now_ms());
    }

    /// Confirms the read: a plain item is deleted, a cursor's copy is dropped. A no-op if
    /// the read timed out: the item is no longer this reader's.
    pub fn close(mut self) -> Result<(), Error> {
        self.time_out();
        self.done = true;
        let result = self.queue.lock().close(&self.held, self.id);
        if result.is_err() {
            // Not confirmed: the item must not stay held by nobody.
            self.done = false;
        }
        result
    }

    /// Whether the read is over for its holder: it timed out, or the queue or cursor it
    /// came from has been deleted since.
    pub fn is_stale(&self) -> bool {
        self.time_out();
        self.queue.lock().is_stale(&self.held, self.id)
    }

    /// Gives the item back: a plain item to the head of its queue, a cursor's to its
    /// failed reads. Both are served before anything newer.
    pub fn abort(mut self) {
        self.give_back(GiveBack::Abort);
    }

    fn give_back(&mut self, reason: GiveBack) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        self.time_out();
        let wake = self.queue.lock().abort(&self.held, self.id, reason);
        self.queue.notify(wake);
    }
}

/// A lease dropped without a close or an abort is one its connection held when it closed.
impl Drop for Lease {
    fn drop(&mut self) {
        self.give_back(GiveBack::Disconnect);
    }
}
