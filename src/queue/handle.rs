//! One queue as the store shares it: its state behind a mutex, and the events its readers
//! wait on.

use super::state::QueueState;
use event_listener::Event;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::sync::{Mutex, MutexGuard};

pub(crate) struct Queue {
    pub(crate) name: String,
    state: Mutex<QueueState>,
    /// Plain readers waiting for an item; each new item wakes one more.
    pub(crate) plain_event: Event,
    /// Readers that do not take the item (cursors, peeks) waiting: each item concerns all.
    pub(crate) broadcast_event: Event,
    /// Blocked gets on this queue, for `stats`.
    pub(crate) waiters: AtomicUsize,
    /// The earliest open-read deadline of the state, checked without its lock (see `timeout`).
    pub(crate) earliest_deadline: Arc<AtomicU64>,
}

impl Queue {
    pub(crate) fn new(name: String, state: QueueState) -> Queue {
        Queue {
            earliest_deadline: state.deadlines.earliest(),
            name,
            state: Mutex::new(state),
            plain_event: Event::new(),
            broadcast_event: Event::new(),
            waiters: AtomicUsize::new(0),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, QueueState> {
        // A panic elsewhere must not wedge the queue: its state is kept consistent per call.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Wakes readers after items became available (under the queue's lock, or after it).
    ///
    /// With no reader waiting it does nothing: an `Event` allocates its list on the first
    /// notification, which 10 000 queues that only ever see writes would pay for (benches/
    /// README.md, "Many queues"). Nothing is missed: a reader counts itself in `waiters`
    /// before it looks at the queue under the same lock that made the items available, so
    /// either it finds them or this sees it.
    pub(crate) fn notify(&self, plain: usize) {
        if self.waiters.load(Ordering::SeqCst) == 0 {
            return;
        }
        if plain > 0 {
            self.plain_event.notify_additional(plain);
        }
        self.broadcast_event.notify(usize::MAX);
    }
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue").field("name", &self.name).finish()
    }
}
