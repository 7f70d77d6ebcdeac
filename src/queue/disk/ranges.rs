//! [`Removed`]: which of a queue's items are gone, as ranges of its sequence numbers.
//!
//! A queue numbers its items 0, 1, 2, … in the order they arrive (their ids are global and
//! sparse: a fanout shares one id across queues). Items mostly leave in order, so the set of
//! removed numbers is a handful of ranges however deep the queue, and it is what a commit
//! stores for the queue instead of a deletion per item.

use std::collections::BTreeMap;

/// Removed sequence numbers, as disjoint half-open ranges `start..end`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Removed {
    ranges: BTreeMap<u64, u64>,
    total: u64,
}

impl Removed {
    pub(crate) fn contains(&self, seq: u64) -> bool {
        self.ranges
            .range(..=seq)
            .next_back()
            .is_some_and(|(_, &end)| seq < end)
    }

    /// Marks `seq` removed; false if it already was.
    pub(crate) fn insert(&mut self, seq: u64) -> bool {
        if self.contains(seq) {
            return false;
        }
        let mut start = seq;
        let mut end = seq + 1;
        if let Some((&before, &before_end)) = self.ranges.range(..seq).next_back() {
            if before_end == seq {
                start = before;
            }
        }
        if let Some(after_end) = self.ranges.remove(&end) {
            end = after_end;
        }
        self.ranges.insert(start, end);
        self.total += 1;
        true
    }

    /// Marks every number of `start..end` removed.
    pub(crate) fn insert_range(&mut self, start: u64, end: u64) {
        // Few ranges ever exist: rebuilding them is simpler than merging in place.
        let mut all: Vec<(u64, u64)> = self.ranges.iter().map(|(&s, &e)| (s, e)).collect();
        all.push((start, end));
        *self = Removed::from_ranges(all);
    }

    /// How many numbers are removed.
    pub(crate) fn len(&self) -> u64 {
        self.total
    }

    /// How many numbers at or above `from` are removed.
    pub(crate) fn count_from(&self, from: u64) -> u64 {
        let mut count = 0;
        if let Some((_, &end)) = self.ranges.range(..from).next_back() {
            count += end.saturating_sub(from);
        }
        for (&start, &end) in self.ranges.range(from..) {
            count += end - start;
        }
        count
    }

    /// Whether every number of `start..end` is removed.
    pub(crate) fn covers(&self, start: u64, end: u64) -> bool {
        start >= end
            || self
                .ranges
                .range(..=start)
                .next_back()
                .is_some_and(|(_, &e)| e >= end)
    }

    /// The end of the range that starts at 0: every number below it is removed.
    pub(crate) fn floor(&self) -> u64 {
        self.ranges.get(&0).copied().unwrap_or(0)
    }

    /// The ranges, in order.
    pub(crate) fn ranges(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.ranges.iter().map(|(&s, &e)| (s, e))
    }

    /// From ranges in any order, overlapping or not.
    pub(crate) fn from_ranges(mut list: Vec<(u64, u64)>) -> Removed {
        list.retain(|&(s, e)| s < e);
        list.sort_unstable();
        let mut removed = Removed::default();
        for (start, end) in list {
            match removed.ranges.iter_mut().next_back() {
                Some((_, last_end)) if start <= *last_end => *last_end = (*last_end).max(end),
                _ => {
                    removed.ranges.insert(start, end);
                }
            }
        }
        removed.total = removed.ranges.iter().map(|(s, e)| e - s).sum();
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_removals_stay_one_range() {
        let mut removed = Removed::default();
        for seq in 0..1000 {
            assert!(removed.insert(seq));
        }
        assert_eq!(removed.ranges().collect::<Vec<_>>(), vec![(0, 1000)]);
        assert_eq!(removed.floor(), 1000);
        assert!(!removed.insert(5));
        assert_eq!(removed.len(), 1000);
    }

    #[test]
    fn holes_merge_when_filled() {
        let mut removed = Removed::default();
        removed.insert(0);
        removed.insert(2);
        removed.insert(4);
        assert_eq!(removed.len(), 3);
        assert_eq!(removed.floor(), 1);
        assert!(removed.contains(2) && !removed.contains(3));
        assert_eq!(removed.count_from(2), 2);
        assert_eq!(removed.count_from(3), 1);
        removed.insert(3);
        removed.insert(1);
        assert_eq!(removed.ranges().collect::<Vec<_>>(), vec![(0, 5)]);
        assert!(removed.covers(1, 5) && !removed.covers(1, 6));
        removed.insert_range(3, 9);
        assert_eq!(removed.ranges().collect::<Vec<_>>(), vec![(0, 9)]);
        assert_eq!(removed.len(), 9);
        assert_eq!(Removed::from_ranges(vec![(5, 7), (0, 2), (1, 3)]).len(), 5);
    }
}
