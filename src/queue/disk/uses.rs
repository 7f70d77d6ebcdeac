//! Which segments are in use: [`SegmentUses`] writes a commit's index changes to sled one
//! at a time and keeps, in memory only, how many packs each segment holds that the index
//! names. Each checkpoint saves them in the index ([`SegmentUses::save`]) and the first pack
//! change after it takes them out, so a start finds them valid if no pack changed since the
//! last checkpoint; otherwise it counts them again from the index ([`count_live`]), which
//! costs a read of every pack entry.
//!
//! One write at a time, not one sled batch per commit: sled writes its log out at every batch
//! (it seals its buffer before and after the batch's manifest), two log writes per commit that
//! cost a `--sync always` server a third of its rate (benches/README.md, "Storage format 2").
//! A crash may then leave the index with any prefix of a commit's writes (sled recovers its
//! log in order, up to the first write it lacks); the mark goes last, so replay puts the whole
//! commit back from its block, and counts made from the index after replay are exact.

use super::engine::lock;
use super::index::{self, PackEntry};
use super::Error;
use std::collections::{BTreeSet, HashMap};
#[cfg(test)]
use std::sync::atomic::AtomicU64;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// Per segment, the packs in it still in use; and the segments no longer in use.
pub(super) struct SegmentUses {
    pub(super) live: Mutex<HashMap<u64, u64>>,
    /// Segments no longer in use, deleted once a durable commit has recorded it.
    pub(super) emptied: Mutex<BTreeSet<u64>>,
    /// The counts are saved in the index: the next pack change takes them out first.
    saved: AtomicBool,
    /// Tests cut a commit short after this many index writes, as a crash would.
    #[cfg(test)]
    pub(super) writes_until_cut: AtomicU64,
}

impl SegmentUses {
    pub(super) fn new(live: HashMap<u64, u64>) -> SegmentUses {
        SegmentUses {
            live: Mutex::new(live),
            emptied: Mutex::new(BTreeSet::new()),
            saved: AtomicBool::new(false),
            #[cfg(test)]
            writes_until_cut: AtomicU64::new(u64::MAX),
        }
    }

    /// Puts `value` at `key` of the index, or (`None`) removes what is there.
    pub(super) fn write(
        &self,
        index: &sled::Tree,
        key: &[u8],
        value: Option<&[u8]>,
    ) -> Result<Option<sled::IVec>, Error> {
        #[cfg(test)]
        if self.writes_until_cut.fetch_sub(1, Ordering::Relaxed) == 0 {
            return Err(std::io::Error::other("cut short by a test").into());
        }
        Ok(match value {
            Some(value) => index.insert(key, value)?,
            None => index.remove(key)?,
        })
    }

    /// Puts `entry` at the pack key `key`, or (`None`) removes the pack there, and counts
    /// the pack the index named at `key` out of its segment. What sled hands back is what
    /// was there, so a commit retried after one that failed part-way counts out what that
    /// one wrote, never the same pack twice.
    pub(super) fn set_pack(
        &self,
        index: &sled::Tree,
        key: &[u8],
        entry: Option<PackEntry>,
    ) -> Result<(), Error> {
        if self.saved.swap(false, Ordering::SeqCst) {
            self.write(index, index::SAVED_COUNTS, None)?;
        }
        let encoded = entry.map(|entry| entry.encode());
        let was = self.write(index, key, encoded.as_ref().map(|e| &e[..]))?;
        let mut live = lock(&self.live);
        if let Some(was) = was {
            let segment = PackEntry::decode(&was).segment;
            let count = live.entry(segment).or_default();
            *count = count.saturating_sub(1);
            if *count == 0 {
                live.remove(&segment);
                lock(&self.emptied).insert(segment);
            }
        }
        if let Some(entry) = entry {
            *live.entry(entry.segment).or_default() += 1;
        }
        Ok(())
    }

    /// Saves the counts in the index, for the next start, unless they are saved and no
    /// pack changed since (the caller syncs it).
    pub(super) fn save(&self, index: &sled::Tree) -> Result<(), Error> {
        if self.saved.load(Ordering::SeqCst) {
            return Ok(());
        }
        let live = lock(&self.live);
        let mut saved = Vec::with_capacity(live.len() * 16);
        for (segment, count) in live.iter() {
            saved.extend_from_slice(&segment.to_be_bytes());
            saved.extend_from_slice(&count.to_be_bytes());
        }
        self.write(index, index::SAVED_COUNTS, Some(&saved))?;
        self.saved.store(true, Ordering::SeqCst);
        Ok(())
    }
}

/// Takes the counts the last checkpoint saved out of the index, if they are there; removes
/// the counts that builds before this module kept.
pub(super) fn take_saved(index: &sled::Tree) -> Result<Option<HashMap<u64, u64>>, Error> {
    for key in index.scan_prefix(index::OLD_SEGMENT_PREFIX).keys() {
        index.remove(key?)?;
    }
    Ok(index.remove(index::SAVED_COUNTS)?.map(|saved| {
        saved
            .chunks_exact(16)
            .map(|pair| (index::number_in(pair, 0), index::number_in(pair, 8)))
            .collect()
    }))
}

/// Per segment, the packs the index names in it (at start-up, once replay is done).
pub(super) fn count_live(index: &sled::Tree) -> Result<HashMap<u64, u64>, Error> {
    let mut live = HashMap::new();
    for value in index.scan_prefix(index::PACK_PREFIX).values() {
        *live.entry(PackEntry::decode(&value?).segment).or_default() += 1;
    }
    Ok(live)
}

#[cfg(test)]
mod tests {
    use super::super::engine::{lock, Depth, PACK_BYTES};
    use super::super::{reopen, Disk, Record};
    use super::{index, PackEntry};
    use std::collections::HashMap;
    use std::path::Path;
    use std::sync::atomic::Ordering;

    const QUEUES: u64 = 4;

    fn name(i: u64) -> String {
        format!("q{i}")
    }

    /// Per segment, the packs the index names in it.
    fn pack_counts(index: &sled::Tree) -> HashMap<u64, u64> {
        let mut counts = HashMap::new();
        for value in index.scan_prefix(index::PACK_PREFIX).values() {
            *counts
                .entry(PackEntry::decode(&value.unwrap()).segment)
                .or_default() += 1;
        }
        counts
    }

    /// Makes a commit that writes a pack and a record for each of [`QUEUES`] queues, and for
    /// the second one full packs that supersede its small pack in an older segment, and cuts
    /// it short after `cut` index writes, as a crash or a failing disk would. Returns whether
    /// it was cut (`cut` at least the commit's writes: it was not). Queue `i` holds item `i`
    /// (the second, `QUEUES + 1` too).
    fn cut_a_commit(store: &Path, cut: u64) -> (Disk, bool) {
        {
            let disk = Disk::open(store.to_path_buf(), 1 << 20, false).unwrap();
            let second = disk.queue_log(&name(2)).unwrap();
            second
                .append(2, &Record::new(0, None, 2, b"small"))
                .unwrap();
            disk.engine.commit(Depth::Checkpoint).unwrap();
        }
        // A new start appends to a new segment.
        let disk = reopen(store);
        let big = vec![8u8; PACK_BYTES as usize];
        let second = disk.queue_log(&name(2)).unwrap();
        second
            .append(QUEUES + 1, &Record::new(0, None, QUEUES + 1, &big))
            .unwrap();
        for i in (1..=QUEUES).filter(|&i| i != 2) {
            let log = disk.queue_log(&name(i)).unwrap();
            log.append(i, &Record::new(0, None, i, b"item")).unwrap();
        }
        disk.engine
            .uses
            .writes_until_cut
            .store(cut, Ordering::Relaxed);
        let cut = disk.engine.commit(Depth::WriteAll).is_err();
        disk.engine
            .uses
            .writes_until_cut
            .store(u64::MAX, Ordering::Relaxed);
        (disk, cut)
    }

    /// The counts in memory are the packs the index names, segment by segment.
    fn assert_counts_exact(disk: &Disk, when: &str) {
        let counts = pack_counts(&disk.engine.index);
        assert_eq!(*lock(&disk.engine.uses.live), counts, "{when}");
    }

    fn assert_items(disk: &Disk, when: &str) {
        for i in 1..=QUEUES {
            let log = disk.queue_log(&name(i)).unwrap();
            let items: Vec<u64> = log.iter().map(|item| item.unwrap().0).collect();
            let expected = match i {
                2 => vec![2, QUEUES + 1],
                i => vec![i],
            };
            assert_eq!(items, expected, "{when}: queue {}", name(i));
        }
    }

    /// After a crash that cut a commit after any of its index writes, replay completes the
    /// index and start-up counts every segment's packs exactly (a segment counted low would
    /// be deleted under a live pack; one counted high, never).
    #[test]
    fn a_commit_cut_after_any_of_its_index_writes_is_completed_by_replay() {
        for cut in 0.. {
            let dir = tempfile::tempdir().unwrap();
            let store = dir.path().join("store-1");
            let was_cut = {
                let (disk, was_cut) = cut_a_commit(&store, cut);
                disk.db.flush().unwrap();
                // What the failed commit left to retry holds the engine (a crash forgets it).
                lock(&disk.engine.dirty).clear();
                was_cut
            };
            let disk = reopen(&store);
            let when = format!("cut after {cut} writes, reopened");
            assert_counts_exact(&disk, &when);
            assert_items(&disk, &when);
            if !was_cut {
                assert!(cut > QUEUES * 2, "the commit wrote only {cut} times");
                break;
            }
        }
    }

    /// A commit retried after one that failed part-way (a sled error after any of its index
    /// writes) finds what the failed one wrote and keeps every count exact.
    #[test]
    fn a_commit_retried_after_one_cut_short_keeps_counts_exact() {
        for cut in 0.. {
            let dir = tempfile::tempdir().unwrap();
            let (disk, was_cut) = cut_a_commit(&dir.path().join("store-1"), cut);
            disk.engine.commit(Depth::Checkpoint).unwrap();
            let when = format!("cut after {cut} writes, retried");
            assert_counts_exact(&disk, &when);
            assert_items(&disk, &when);
            if !was_cut {
                break;
            }
        }
    }

    /// Counts that an earlier build kept in the index are dropped at start-up: what the
    /// engine counts comes from the pack entries alone.
    #[test]
    fn counts_an_earlier_build_kept_are_removed_at_start_up() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store-1");
        let (disk, _) = cut_a_commit(&store, u64::MAX);
        disk.engine.commit(Depth::Checkpoint).unwrap();
        let old_count = |segment: u64| {
            let mut key = index::OLD_SEGMENT_PREFIX.to_vec();
            key.extend_from_slice(&segment.to_be_bytes());
            key
        };
        for segment in pack_counts(&disk.engine.index).keys() {
            disk.engine
                .index
                .insert(old_count(*segment), &[0, 0, 0, 0, 0, 0, 0, 9])
                .unwrap();
        }
        disk.db.flush().unwrap();
        drop(disk);
        let disk = reopen(&store);
        let left = disk
            .engine
            .index
            .scan_prefix(index::OLD_SEGMENT_PREFIX)
            .count();
        assert_eq!(left, 0, "the old counts are gone");
        assert_counts_exact(&disk, "reopened");
        assert_items(&disk, "reopened");
    }

    /// A checkpoint saves the counts, and the next start uses them instead of reading every
    /// pack entry, once: they are gone from the index as soon as it starts, and the first
    /// pack changed after they were saved takes them out too.
    #[test]
    fn counts_saved_by_a_checkpoint_serve_the_next_start_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store-1");
        let (disk, _) = cut_a_commit(&store, u64::MAX);
        disk.engine.commit(Depth::Checkpoint).unwrap();
        let saved = |disk: &Disk| disk.engine.index.get(index::SAVED_COUNTS).unwrap();
        assert!(saved(&disk).is_some());
        drop(disk);
        let disk = reopen(&store);
        assert!(saved(&disk).is_none(), "taken at start-up");
        assert_counts_exact(&disk, "from the saved counts");
        assert_items(&disk, "from the saved counts");
        disk.engine.commit(Depth::Checkpoint).unwrap();
        assert!(saved(&disk).is_some());
        let log = disk.queue_log(&name(1)).unwrap();
        log.append(QUEUES + 2, &Record::new(0, None, QUEUES + 2, b"more"))
            .unwrap();
        disk.engine.commit(Depth::WriteAll).unwrap();
        assert!(saved(&disk).is_none(), "a new pack takes them out");
        assert_counts_exact(&disk, "after a new pack");
    }
}
