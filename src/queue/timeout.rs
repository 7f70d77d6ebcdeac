//! Open timeouts: an open read held longer than its queue's `open_timeout_ms` is given back
//! as if its reader had aborted it, while the reader stays connected.
//!
//! Each queue keeps its open reads' deadlines in a `BTreeMap` ordered by (deadline, serial),
//! and publishes the earliest one in an atomic. Checking is then O(1) when nothing is due (one
//! atomic load, no lock) and O(log n) per read that is due, whatever the number of open reads
//! or the depth of the queue: no tick ever scans. A queue is checked whenever it is touched
//! (a read, a close, an abort, `stats`), so what a client sees never depends on when the
//! checker last ran, and by one background thread every [`CHECK_EVERY`] that only compares
//! each queue's atomic with the clock (for waiting readers nobody else would wake). A
//! heap would do as well for firing, but a close must remove its deadline, which a `BTreeMap`
//! does in O(log n) and a heap cannot.
//!
//! Max age needs no timer of its own: ids grow with time, so the items expired by age are
//! always the oldest, at the head of the queue (and of each cursor and failed-read queue).
//! Readers discard them there as they meet them, `stats` before it counts, and the same
//! thread every second for queues with a max age, one lookup per queue and cursor plus one
//! per item discarded: never a scan of what has not expired.
//!
//! Every open read has a serial, unique in the process: a timed-out read may be opened again
//! by another reader under the same item id, and only the serial tells the late `/close` of
//! the first holder (a no-op) from the second holder's.

use super::handle::Queue;
use super::state::Held;
use super::Store;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// How often the background checker looks at the earliest deadline of each queue.
const CHECK_EVERY: Duration = Duration::from_millis(50);
/// Every this many checks, it also discards what has expired by age at the heads of the
/// queues that have a max age, so a queue nobody reads still gives its space back.
const EXPIRE_EVERY: u32 = 20;
/// How often the same thread gives back the read caches of queues not read meanwhile
/// (`Store::release_idle`), in ms of the store's clock.
const RELEASE_IDLE_EVERY_MS: u64 = 1000;

/// No deadline.
const NEVER: u64 = u64::MAX;

/// The identity and deadline of one open read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Hold {
    pub(crate) serial: u64,
    /// Unix ms after which it is given back (held *longer* than the timeout: at `due + 1`);
    /// [`NEVER`] without an open timeout.
    due: u64,
}

impl Hold {
    /// A new open read at `now`, due after `timeout_ms` (0: never).
    pub(crate) fn new(now: u64, timeout_ms: u64) -> Hold {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Hold {
            serial: NEXT.fetch_add(1, Ordering::Relaxed),
            due: if timeout_ms == 0 {
                NEVER
            } else {
                now.saturating_add(timeout_ms)
            },
        }
    }
}

/// One queue's open reads that have a deadline, by deadline.
pub(crate) struct Deadlines {
    due: BTreeMap<(u64, u64), (Held, u64)>,
    /// The earliest deadline ([`NEVER`] for none), readable without the queue's lock.
    earliest: Arc<AtomicU64>,
}

impl Default for Deadlines {
    fn default() -> Deadlines {
        Deadlines {
            due: BTreeMap::new(),
            earliest: Arc::new(AtomicU64::new(NEVER)),
        }
    }
}

impl Deadlines {
    /// The shared earliest deadline, for [`Queue`] to check without locking.
    pub(crate) fn earliest(&self) -> Arc<AtomicU64> {
        self.earliest.clone()
    }

    /// Remembers the open read `held` of item `id` (if it has a deadline).
    pub(crate) fn add(&mut self, held: &Held, id: u64) {
        let hold = held.hold();
        if hold.due != NEVER {
            self.due.insert((hold.due, hold.serial), (held.clone(), id));
            self.publish();
        }
    }

    /// Forgets the open read `held` (closed or aborted).
    pub(crate) fn remove(&mut self, held: &Held) {
        let hold = held.hold();
        if hold.due != NEVER && self.due.remove(&(hold.due, hold.serial)).is_some() {
            self.publish();
        }
    }

    /// Removes and returns the open reads past their deadline at `now`, oldest first.
    pub(crate) fn take_due(&mut self, now: u64) -> Vec<(Held, u64)> {
        let later = self.due.split_off(&(now, 0));
        let due = std::mem::replace(&mut self.due, later);
        if !due.is_empty() {
            self.publish();
        }
        due.into_values().collect()
    }

    /// Forgets everything (the queue is deleted).
    pub(crate) fn clear(&mut self) {
        self.due.clear();
        self.publish();
    }

    fn publish(&self) {
        let earliest = self.due.keys().next().map_or(NEVER, |&(due, _)| due);
        self.earliest.store(earliest, Ordering::Release);
    }
}

impl Queue {
    /// Gives back the open reads of this queue that are due at `now`, and wakes their readers.
    /// Costs one atomic load when none is due. Logs one line per check that gave any back.
    pub(crate) fn time_out(&self, now: u64) {
        if self.earliest_deadline.load(Ordering::Acquire) >= now {
            return;
        }
        let (wake, given_back) = self.lock().time_out(now);
        self.notify(wake);
        if given_back > 0 {
            log::info!(
                "queue {}: {} open read(s) given back by the open timeout",
                self.name,
                given_back
            );
        }
    }
}

impl Store {
    /// Gives back every open read that has outlived its queue's open timeout, now. The
    /// background checker does this every [`CHECK_EVERY`]; tests call it after moving the clock.
    pub fn time_out_now(&self) {
        let now = self.now_ms();
        for queue in self.queues() {
            queue.time_out(now);
        }
    }
}

impl Store {
    /// Discards the items expired by age at the heads of the queues (see
    /// `QueueState::expire_heads`).
    fn expire_by_age(&self) {
        let now = self.now_ms();
        for queue in self.queues() {
            let mut state = queue.lock();
            if state.has_max_age() {
                if let Err(e) = state.expire_heads(now) {
                    log::error!("cannot discard expired items of {}: {}", queue.name, e);
                }
            }
        }
    }
}

/// Starts the thread that checks open timeouts; it ends with the store.
pub(crate) fn start_checking(store: &Store) {
    let shared = Arc::downgrade(&store.shared);
    let spawned = thread::Builder::new()
        .name("tern-timeouts".into())
        .spawn(move || {
            let mut released_at = None;
            for check in 1u32.. {
                thread::sleep(CHECK_EVERY);
                let Some(shared) = shared.upgrade() else {
                    return;
                };
                let store = Store { shared };
                store.time_out_now();
                if check % EXPIRE_EVERY == 0 {
                    store.expire_by_age();
                }
                // By the store's clock, so that a test's own clock decides (see `clock`).
                let now = store.now_ms();
                match released_at {
                    Some(at) if now.saturating_sub(at) < RELEASE_IDLE_EVERY_MS => {}
                    Some(_) => {
                        store.release_idle();
                        released_at = Some(now);
                    }
                    None => released_at = Some(now),
                }
            }
        });
    if let Err(e) = spawned {
        log::error!("cannot start the open-timeout thread: {}", e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(hold: Hold) -> Held {
        Held::Plain { len: 1, hold }
    }

    #[test]
    fn only_what_is_due_fires_and_a_removed_read_never_does() {
        let mut deadlines = Deadlines::default();
        let earliest = deadlines.earliest();
        let (a, b, c) = (Hold::new(100, 10), Hold::new(100, 20), Hold::new(100, 0));
        deadlines.add(&plain(a), 1);
        deadlines.add(&plain(b), 2);
        deadlines.add(&plain(c), 3);
        assert_eq!(earliest.load(Ordering::SeqCst), 110);
        assert!(
            deadlines.take_due(110).is_empty(),
            "held 10 ms is not longer than 10"
        );
        let due = deadlines.take_due(111);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].1, 1);
        assert_eq!(earliest.load(Ordering::SeqCst), 120);
        deadlines.remove(&plain(b));
        assert_eq!(earliest.load(Ordering::SeqCst), NEVER);
        assert!(deadlines.take_due(u64::MAX - 1).is_empty());
    }
}
