//! The ids next in line at a queue's head, kept in memory so that a plain read goes straight
//! to its item instead of walking the queue's log (its packs and their index) from the head.
//!
//! The index is a hint with one hard rule: when it is known, `ids` are, in order, the first
//! waiting ids of the queue (in the log or reserved, not held open, at or after the head),
//! with none left out in between. `complete` says they are all of them, so a new reservation
//! (always the newest id) can simply be appended. Anything that could break the rule (an abort
//! putting an item back, a failed insert, a flush, a compaction) makes it unknown, and the next
//! read rebuilds it from the log. It never grows beyond [`MAX_KNOWN`] ids, whatever the depth,
//! and a rebuild stops short of that at a second pack it would have to read from disk.

use std::collections::VecDeque;

/// Most ids kept per queue (8 KiB).
pub(crate) const MAX_KNOWN: usize = 1024;

#[derive(Default)]
pub(crate) struct HeadIndex {
    ids: VecDeque<u64>,
    complete: bool,
}

impl HeadIndex {
    /// True when the index must be rebuilt before it can answer.
    pub(crate) fn is_unknown(&self) -> bool {
        self.ids.is_empty() && !self.complete
    }

    /// Forgets everything: the next read rebuilds the index.
    pub(crate) fn forget(&mut self) {
        self.ids.clear();
        self.complete = false;
    }

    /// As [`HeadIndex::forget`], and gives the memory back (a queue not read for a while).
    pub(crate) fn release(&mut self) {
        self.ids = VecDeque::new();
        self.complete = false;
    }

    /// Installs the first waiting ids, in order; `complete`: they are all of them.
    pub(crate) fn rebuild(&mut self, ids: impl IntoIterator<Item = u64>, complete: bool) {
        self.ids.clear();
        self.ids.extend(ids);
        self.complete = complete;
    }

    /// A new id was reserved: it is the newest, so it goes last (if the index has room).
    pub(crate) fn reserved(&mut self, id: u64) {
        if !self.complete {
            return;
        }
        if self.ids.len() < MAX_KNOWN {
            self.ids.push_back(id);
        } else {
            self.complete = false;
        }
    }

    /// The oldest waiting id; `None` with a known index: nothing is waiting.
    pub(crate) fn front(&self) -> Option<u64> {
        self.ids.front().copied()
    }

    /// The oldest waiting id was taken, held open or discarded.
    pub(crate) fn pop_front(&mut self) {
        self.ids.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_only_while_complete_and_under_the_cap() {
        let mut head = HeadIndex::default();
        assert!(head.is_unknown());
        head.reserved(1);
        assert!(
            head.is_unknown(),
            "an unknown index learns nothing from one id"
        );
        head.rebuild([3, 5], true);
        head.reserved(8);
        assert_eq!(head.front(), Some(3));
        head.pop_front();
        head.pop_front();
        assert_eq!(head.front(), Some(8));
        head.pop_front();
        assert_eq!(head.front(), None);
        assert!(!head.is_unknown(), "complete and empty: nothing waits");
        head.rebuild(0..MAX_KNOWN as u64, true);
        head.reserved(MAX_KNOWN as u64);
        for _ in 0..MAX_KNOWN {
            head.pop_front();
        }
        assert!(
            head.is_unknown(),
            "the id past the cap was not kept, so it must be looked up"
        );
        head.rebuild([4], false);
        head.forget();
        assert!(head.is_unknown());
    }
}
