//! [`Kept`]: the memory budget of the items runs keep to write again.
//!
//! A queue's open run keeps the items it has written as small packs, to write them again as
//! one full pack once [`PACK_BYTES`] gathered, so that a trickle of writes ends up in few, full
//! packs (see `engine`). Per queue that is up to a pack of memory for every queue written to
//! lately: 2 000 queues filled round-robin kept 229 MiB (benches/README.md, "Many deep
//! queues"). Past [`KEPT_BUDGET`] in all, a run keeping at least its share (the total over the
//! runs keeping any) is written as the full pack it has become, whatever its size. With many
//! queues the packs get smaller (about the budget over the number of queues written to), and
//! the memory stays within the budget.

use super::engine::PACK_BYTES;
use std::sync::atomic::{AtomicU64, Ordering};

/// The bytes all runs may keep before the largest are sealed.
pub(crate) const KEPT_BUDGET: u64 = 8 * 1024 * 1024;

/// What the runs keep, in all (stored bytes) and how many runs keep anything.
#[derive(Default)]
pub(crate) struct Kept {
    bytes: AtomicU64,
    runs: AtomicU64,
}

impl Kept {
    /// A run that kept `before` bytes keeps `added` more.
    pub(super) fn add(&self, before: u64, added: u64) {
        if added == 0 {
            return;
        }
        if before == 0 {
            self.runs.fetch_add(1, Ordering::Relaxed);
        }
        self.bytes.fetch_add(added, Ordering::Relaxed);
    }

    /// A run keeps its `bytes` no longer (written as full packs, or its queue deleted).
    pub(super) fn forget(&self, bytes: u64) {
        if bytes == 0 {
            return;
        }
        self.runs.fetch_sub(1, Ordering::Relaxed);
        self.bytes.fetch_sub(bytes, Ordering::Relaxed);
    }

    /// Whether a run keeping `bytes` is to be written as full packs now (see the module doc).
    pub(super) fn crowded_by(&self, bytes: u64) -> bool {
        let total = self.bytes.load(Ordering::Relaxed);
        let runs = self.runs.load(Ordering::Relaxed);
        bytes > 0 && total > KEPT_BUDGET && bytes.saturating_mul(runs) >= total
    }

    /// The bytes kept, in all.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

/// A run never keeps more than a pack: the budget is what bounds many runs together.
const _: () = assert!(KEPT_BUDGET > PACK_BYTES);

#[cfg(test)]
mod tests {
    use super::super::engine::{Depth, PACK_BYTES};
    use super::super::{Disk, Record};
    use super::KEPT_BUDGET;

    /// 300 queues written one item each per commit would keep 300 runs of up to a pack
    /// (19 MiB); they keep at most the budget and one commit's items more, every item reads
    /// back in order, and the packs written are larger than one commit's item.
    #[test]
    fn many_trickled_runs_keep_at_most_the_budget() {
        let dir = tempfile::tempdir().unwrap();
        let disk = Disk::open(dir.path().join("store-1"), 1 << 20, false).unwrap();
        let queues: Vec<_> = (0..300)
            .map(|q| disk.queue_log(&format!("q{q}")).unwrap())
            .collect();
        let item = |id: u64| Record::new(0, None, id, &[id as u8; 1000]);
        let rounds = 60;
        let mut most = 0;
        for id in 1..=rounds {
            for queue in &queues {
                queue.append(id, &item(id)).unwrap();
            }
            disk.engine.commit(Depth::Durable).unwrap();
            most = most.max(disk.engine.kept.bytes());
        }
        let one_commit = 300 * 1020;
        assert!(
            most <= KEPT_BUDGET + one_commit,
            "kept {most} bytes, over the budget of {KEPT_BUDGET}"
        );
        assert!(
            most > KEPT_BUDGET - PACK_BYTES,
            "kept {most} bytes: the budget was never reached, nothing was tested"
        );
        for queue in &queues {
            let ids: Vec<u64> = queue.iter().map(|item| item.unwrap().0).collect();
            assert_eq!(ids, (1..=rounds).collect::<Vec<_>>());
            assert_eq!(queue.get(7).unwrap().unwrap().data(), &[7u8; 1000][..]);
        }
        let entries = disk
            .engine
            .index
            .scan_prefix(super::super::index::PACK_PREFIX)
            .count();
        assert!(
            entries < 300 * rounds as usize / 4,
            "{entries} packs for {} items: sealed too small",
            300 * rounds
        );
    }
}
