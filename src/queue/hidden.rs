//! [`Hidden`]: the ids of one queue that readers must not see yet, because their write is still
//! in flight or not yet durable, and the stored ids waiting behind an older hidden one.
//!
//! Readers never go at or past the oldest hidden id. So an item whose write completes while an
//! older one is still hidden becomes readable only when that older one does: the wake-up for it
//! must come then, or a waiting reader sleeps while it waits in the queue (writes of concurrent
//! producers complete out of order all the time).

use std::collections::BTreeSet;

#[derive(Debug, Default)]
pub(crate) struct Hidden {
    /// Reserved, not yet shown.
    ids: BTreeSet<u64>,
    /// Shown, but behind an older hidden id: readable once that one is shown.
    blocked: BTreeSet<u64>,
}

impl Hidden {
    pub(crate) fn insert(&mut self, id: u64) {
        self.ids.insert(id);
    }

    /// Shows `id` to readers; returns how many items became readable (0 while an older id is
    /// still hidden). `None`: `id` was not hidden.
    pub(crate) fn show(&mut self, id: u64) -> Option<usize> {
        let oldest = self.first();
        if !self.ids.remove(&id) {
            return None;
        }
        if id != oldest {
            self.blocked.insert(id);
            return Some(0);
        }
        // The oldest went: what waited behind it, up to the next hidden id, is readable now.
        let still_blocked = self.blocked.split_off(&self.first());
        let readable = 1 + self.blocked.len();
        self.blocked = still_blocked;
        if self.ids.is_empty() {
            // An emptied BTreeSet keeps its root node: about 100 bytes for each idle queue,
            // 1 MB for 10 000 of them.
            self.ids = BTreeSet::new();
        }
        Some(readable)
    }

    /// The oldest hidden id: readers see ids below it only.
    pub(crate) fn first(&self) -> u64 {
        self.ids.first().copied().unwrap_or(u64::MAX)
    }

    pub(crate) fn range(&self, range: std::ops::RangeInclusive<u64>) -> impl Iterator<Item = &u64> {
        self.ids.range(range)
    }

    pub(crate) fn clear(&mut self) {
        self.ids.clear();
        self.blocked.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::Hidden;

    #[test]
    fn a_write_that_completes_behind_an_older_one_shows_with_it() {
        let mut hidden = Hidden::default();
        for id in [10, 11, 12] {
            hidden.insert(id);
        }
        assert_eq!(hidden.show(11), Some(0), "10 is still hidden");
        assert_eq!(hidden.first(), 10);
        assert_eq!(hidden.show(10), Some(2), "10 and 11 are readable now");
        assert_eq!(hidden.first(), 12);
        assert_eq!(hidden.show(12), Some(1));
        assert_eq!(hidden.first(), u64::MAX);
        assert_eq!(hidden.show(12), None, "shown already");
    }

    #[test]
    fn only_the_blocked_ids_below_the_next_hidden_one_show() {
        let mut hidden = Hidden::default();
        for id in [1, 2, 3, 4, 5] {
            hidden.insert(id);
        }
        assert_eq!(hidden.show(2), Some(0));
        assert_eq!(hidden.show(4), Some(0));
        assert_eq!(hidden.show(5), Some(0));
        // 1 shows with 2; 4 and 5 still wait behind 3.
        assert_eq!(hidden.show(1), Some(2));
        assert_eq!(hidden.first(), 3);
        assert_eq!(hidden.show(3), Some(3));
    }

    #[test]
    fn clearing_forgets_the_blocked_ones_too() {
        let mut hidden = Hidden::default();
        hidden.insert(1);
        hidden.insert(2);
        assert_eq!(hidden.show(2), Some(0));
        hidden.clear();
        hidden.insert(3);
        assert_eq!(hidden.show(3), Some(1), "2 went with the clear");
    }
}
