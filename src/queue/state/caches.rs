//! What speeds up a queue's reads (its head index, and the packs its log caches) and when it
//! is given back: a queue not read for a while, or read only by `stats`, holds none of it.

use super::QueueState;

impl QueueState {
    /// Gives back what speeds up the reads of a queue that no read used since the last call:
    /// its head index and its cached packs (the next read rebuilds them). Without this, memory
    /// grew by up to 8 KiB of ids and two packs per queue ever read, `stats` reading them all.
    pub(crate) fn release_if_idle(&mut self) {
        if !std::mem::take(&mut self.read_lately) {
            self.head.release();
        }
        self.log.release_unused_cache();
        self.log.release_idle_run();
    }

    /// Whether the queue holds a head index or cached packs.
    pub(crate) fn holds_read_caches(&self) -> bool {
        !self.head.is_unknown() || self.log.cached_packs() > 0
    }

    /// Runs `look` (what `stats` reads), then gives back the head index and packs it loaded
    /// if the queue held none before: `stats` over many deep queues would otherwise hold a
    /// pack or two of each at once until the next [`QueueState::release_if_idle`].
    pub(crate) fn looking<T>(&mut self, look: impl FnOnce(&mut Self) -> T) -> T {
        let cold = !self.holds_read_caches();
        let read_lately = self.read_lately;
        let seen = look(self);
        if cold {
            self.head.release();
            self.log.drop_cache();
            self.read_lately = read_lately;
        }
        seen
    }
}
