//! A commit's index changes in bounded sled batches, each with the packs-per-segment counts it
//! changes ([`SegmentUses`]), so that the index is consistent after every batch, whatever
//! happens between two of them.

use super::engine::lock;
use super::index::{self, PackEntry};
use super::Error;
use std::collections::{BTreeSet, HashMap};
#[cfg(test)]
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Changes past which a commit hands sled what it has so far as one batch: sled frees the
/// node copies a batch replaces only once the batch ends, so one batch for a commit that
/// touched thousands of queues held tens of MiB (benches/README.md, "Storage format 2").
pub(super) const CHUNK_CHANGES: usize = 64;

/// Index changes on their way to one sled batch, with the packs they add to or take from
/// each segment.
#[derive(Default)]
pub(super) struct IndexChanges {
    batch: sled::Batch,
    uses: HashMap<u64, i64>,
    /// Pack keys set by [`IndexChanges::set_pack`], with the segment each names once the
    /// batch is applied (`None`: removed).
    packs: HashMap<[u8; 17], Option<u64>>,
    len: usize,
}

impl IndexChanges {
    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn insert(&mut self, key: &[u8], value: Vec<u8>) {
        self.batch.insert(key, value);
        self.len += 1;
    }

    pub(super) fn remove(&mut self, key: &[u8]) {
        self.batch.remove(key);
        self.len += 1;
    }

    /// Puts `entry` at `key`, or (`None`) removes what is there, counting one pack less for
    /// the segment the index names at `key` now, if any, as replay does. A commit retried
    /// after one that failed part-way (some of its batches applied) thus finds what that one
    /// wrote and counts it out, instead of taking the pack it meant to replace out twice.
    pub(super) fn set_pack(
        &mut self,
        index: &sled::Tree,
        key: [u8; 17],
        entry: Option<PackEntry>,
    ) -> Result<(), Error> {
        let now = match self.packs.get(&key) {
            Some(&segment) => segment,
            None => index
                .get(key)?
                .map(|value| PackEntry::decode(&value).segment),
        };
        if let Some(segment) = now {
            *self.uses.entry(segment).or_default() -= 1;
        }
        match entry {
            Some(entry) => {
                self.insert(&key, entry.encode().to_vec());
                *self.uses.entry(entry.segment).or_default() += 1;
            }
            None => self.remove(&key),
        }
        self.packs.insert(key, entry.map(|entry| entry.segment));
        Ok(())
    }

    /// Removes the pack at `key`, just read from the index as being in `segment`.
    pub(super) fn remove_pack(&mut self, key: impl AsRef<[u8]>, segment: u64) {
        self.remove(key.as_ref());
        *self.uses.entry(segment).or_default() -= 1;
    }
}

/// Per segment, the packs in it still in use; and the segments no longer in use.
pub(super) struct SegmentUses {
    pub(super) live: Mutex<HashMap<u64, u64>>,
    /// Segments no longer in use, deleted once a durable commit has recorded it.
    pub(super) emptied: Mutex<BTreeSet<u64>>,
    /// Tests cut a commit short after this many sled batches, as a crash would.
    #[cfg(test)]
    pub(super) batches_until_cut: AtomicU64,
}

impl SegmentUses {
    pub(super) fn new(live: HashMap<u64, u64>) -> SegmentUses {
        SegmentUses {
            live: Mutex::new(live),
            emptied: Mutex::new(BTreeSet::new()),
            #[cfg(test)]
            batches_until_cut: AtomicU64::new(u64::MAX),
        }
    }

    /// Applies `changes` to the index in one sled batch, with the packs-per-segment counts
    /// they change, so that the index is consistent after every batch: after a crash between
    /// the batches of one commit, replay (which takes a pack it finds indexed already as
    /// moved, not new) still leaves every count exact. The counts in memory change only once
    /// sled has taken the batch.
    pub(super) fn apply(&self, index: &sled::Tree, changes: IndexChanges) -> Result<(), Error> {
        #[cfg(test)]
        if self.batches_until_cut.fetch_sub(1, Ordering::Relaxed) == 0 {
            return Err(std::io::Error::other("cut short by a test").into());
        }
        let IndexChanges {
            mut batch, uses, ..
        } = changes;
        let mut live = lock(&self.live);
        let mut counts = Vec::with_capacity(uses.len());
        for (segment, change) in uses {
            if change == 0 {
                continue;
            }
            let count = live.get(&segment).map_or(0, |&count| count as i64);
            let count = (count + change).max(0) as u64;
            match count {
                0 => batch.remove(&index::segment_key(segment)[..]),
                _ => batch.insert(&index::segment_key(segment)[..], &count.to_be_bytes()[..]),
            }
            counts.push((segment, count));
        }
        index.apply_batch(batch)?;
        for (segment, count) in counts {
            if count == 0 {
                live.remove(&segment);
                lock(&self.emptied).insert(segment);
            } else {
                live.insert(segment, count);
            }
        }
        Ok(())
    }
}

/// Packs of one segment in use, read at start-up.
pub(super) fn load_live(index: &sled::Tree) -> Result<HashMap<u64, u64>, Error> {
    let mut live = HashMap::new();
    for entry in index.scan_prefix(index::SEGMENT_PREFIX) {
        let (key, value) = entry?;
        live.insert(index::number_in(&key, 1), index::number_in(&value, 0));
    }
    Ok(live)
}

#[cfg(test)]
mod tests {
    use super::super::engine::{lock, Depth, PACK_BYTES};
    use super::super::segments::SEGMENT_BYTES;
    use super::super::{Disk, Record};
    use super::{index, PackEntry, CHUNK_CHANGES};
    use std::collections::HashMap;
    use std::sync::atomic::Ordering;

    /// Per segment: (packs the index names in it, the count the index keeps for it).
    fn pack_counts(index: &sled::Tree) -> HashMap<u64, (u64, u64)> {
        let mut counts: HashMap<u64, (u64, u64)> = HashMap::new();
        for entry in index.scan_prefix(b"p") {
            let (_, value) = entry.unwrap();
            counts
                .entry(PackEntry::decode(&value).segment)
                .or_default()
                .0 += 1;
        }
        for entry in index.scan_prefix(index::SEGMENT_PREFIX) {
            let (key, value) = entry.unwrap();
            let segment = index::number_in(&key, 1);
            counts.entry(segment).or_default().1 = index::number_in(&value, 0);
        }
        counts
    }

    fn name(i: u64) -> String {
        format!("q{i}")
    }

    /// Makes a commit of several sled batches and cuts it short after the first, as a crash
    /// or a failing disk would: a pack and a record for each of `2 * CHUNK_CHANGES` queues,
    /// and for the second queue full packs that supersede its small pack in an older segment.
    /// Returns the number of queues; queue `i` holds item `i` (the second, `queues + 1` too).
    fn cut_a_commit(disk: &Disk) -> u64 {
        let queues = 2 * CHUNK_CHANGES as u64;
        let second = disk.queue_log(&name(2)).unwrap();
        second
            .append(2, &Record::new(0, None, 2, b"small"))
            .unwrap();
        disk.engine.commit(Depth::WriteAll).unwrap();
        // Enough to fill the segment: the next block starts a new one.
        let filler = disk.queue_log("filler").unwrap();
        let megabyte = vec![7u8; 1 << 20];
        for n in 0..=SEGMENT_BYTES >> 20 {
            let id = queues + 2 + n;
            filler
                .append(id, &Record::new(0, None, id, &megabyte))
                .unwrap();
        }
        disk.engine.commit(Depth::WriteAll).unwrap();
        let big = vec![8u8; PACK_BYTES as usize];
        second
            .append(queues + 1, &Record::new(0, None, queues + 1, &big))
            .unwrap();
        for i in (1..=queues).filter(|&i| i != 2) {
            let log = disk.queue_log(&name(i)).unwrap();
            log.append(i, &Record::new(0, None, i, b"item")).unwrap();
        }
        disk.engine
            .uses
            .batches_until_cut
            .store(1, Ordering::Relaxed);
        assert!(disk.engine.commit(Depth::WriteAll).is_err());
        assert_counts_exact(disk, "after the first batch");
        let indexed = pack_counts(&disk.engine.index)
            .values()
            .map(|c| c.0)
            .sum::<u64>();
        assert!(indexed < queues, "the cut left queues out of the index");
        queues
    }

    /// Every segment's count is the packs the index names in it, in the index and in memory.
    fn assert_counts_exact(disk: &Disk, when: &str) {
        let counts = pack_counts(&disk.engine.index);
        assert!(
            counts.values().all(|(packs, count)| packs == count),
            "{when}: {counts:?}"
        );
        let live: HashMap<u64, u64> = counts.iter().map(|(&s, &(packs, _))| (s, packs)).collect();
        assert_eq!(*lock(&disk.engine.uses.live), live, "{when}: in memory");
    }

    fn assert_items(disk: &Disk, queues: u64) {
        for i in 1..=queues {
            let log = disk.queue_log(&name(i)).unwrap();
            let items: Vec<u64> = log.iter().map(|item| item.unwrap().0).collect();
            let expected = match i {
                2 => vec![2, queues + 1],
                i => vec![i],
            };
            assert_eq!(items, expected, "queue {}", name(i));
        }
    }

    /// After a crash between the batches of one commit, replay completes the index with
    /// every count exact (a segment whose count is low would be deleted under a live pack;
    /// one whose count is high, never).
    #[test]
    fn a_commit_cut_between_its_batches_is_completed_by_replay_with_exact_counts() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store-1");
        let queues = {
            let disk = Disk::open(store.clone(), 1 << 20, false).unwrap();
            let queues = cut_a_commit(&disk);
            disk.db.flush().unwrap();
            // What the failed commit left to retry holds the engine (a crash forgets it).
            lock(&disk.engine.dirty).clear();
            queues
        };
        let disk = super::super::reopen(&store);
        assert_counts_exact(&disk, "after replay");
        assert_items(&disk, queues);
    }

    /// A commit retried after one that failed part-way (a sled error between its batches)
    /// finds what the failed one wrote and keeps every count exact.
    #[test]
    fn a_commit_retried_after_one_cut_between_its_batches_keeps_counts_exact() {
        let dir = tempfile::tempdir().unwrap();
        let disk = Disk::open(dir.path().join("store-1"), 1 << 20, false).unwrap();
        let queues = cut_a_commit(&disk);
        disk.engine.commit(Depth::Checkpoint).unwrap();
        assert_counts_exact(&disk, "after the retry");
        assert_items(&disk, queues);
    }
}
