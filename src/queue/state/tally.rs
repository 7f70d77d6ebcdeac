//! A queue's counters of items that left it and of open reads given back, and its
//! [`QueueStats`]. Each is one integer increment under the queue's lock, which the change
//! being counted already holds. Only the metrics export the counters `stats` has no line for
//! (SPEC.md fixes those lines).

use super::QueueState;
use crate::queue::item::Item;
use crate::queue::QueueStats;

/// Why an open read is given back other than by its open timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GiveBack {
    /// An explicit `/abort`.
    Abort,
    /// Its connection closed while holding it.
    Disconnect,
}

/// What left the queue, and the open reads given back, since start-up.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    /// Plain items taken by a `get` or confirmed by a `/close`.
    pub(crate) dequeued: u64,
    /// Waiting items discarded to make room (`discard_old`).
    pub(crate) discarded: u64,
    /// Open reads (plain and cursor) given back by an `/abort`.
    pub(crate) aborted: u64,
    /// Open reads given back because their connection closed.
    pub(crate) disconnected: u64,
    /// Open reads given back by the open timeout (`stats`'s `open_timeouts`).
    pub(crate) timed_out: u64,
}

impl Tally {
    /// Counts an open read given back for `reason`.
    pub(crate) fn given_back(&mut self, reason: GiveBack) {
        match reason {
            GiveBack::Abort => self.aborted += 1,
            GiveBack::Disconnect => self.disconnected += 1,
        }
    }
}

impl QueueState {
    /// Items stored (waiting or held open; expired ones not yet discarded count) and cursors:
    /// what [`QueueState::stats`] counts, without reading the queue's head.
    pub(crate) fn stored(&self) -> (u64, usize) {
        (self.items + self.open.len() as u64, self.cursors.len())
    }

    pub(crate) fn stats(&self, name: &str, waiters: u64, now: u64) -> QueueStats {
        let head = self
            .log
            .range(self.head_hint, u64::MAX)
            .filter_map(Result::ok)
            .find(|(id, _)| !self.open.contains_key(id))
            .map(|(id, record)| Item::new(id, record));
        let tally = &self.tally;
        QueueStats {
            name: name.to_string(),
            items: self.items,
            bytes: self.bytes,
            total_items: self.total_items,
            expired_items: self.expired_items,
            open_timeouts: tally.timed_out,
            open_transactions: self.open.len() as u64,
            waiters,
            age_ms: head.map_or(0, |item| now.saturating_sub(item.enqueued_ms())),
            dequeued_items: tally.dequeued,
            discarded_items: tally.discarded,
            aborted_reads: tally.aborted,
            disconnected_reads: tally.disconnected,
            cursors: self
                .cursors
                .iter()
                .map(|(name, cursor)| cursor.stats(name, &self.log, self.expiry(now)))
                .collect(),
        }
    }
}
