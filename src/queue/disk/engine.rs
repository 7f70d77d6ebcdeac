//! The commit: what turns items appended in memory into packs on disk.
//!
//! Appends go to a queue's open run in memory (see `log`); a commit writes every run that
//! changed as packs, with the records of the queues it changes, in one checksummed block
//! appended to the newest segment, then records them in the index in one sled batch. A block
//! is used whole or not at all (by the index, or by replay after a crash), which is what
//! makes a fanout atomic. A run grows through small packs
//! (one per commit, so a trickle of writes costs no rewrite) until it holds [`PACK_BYTES`];
//! then it is written once more as full packs that replace the small ones. Packs whose items
//! are all removed are dropped from the index, and a segment is deleted once none of its
//! packs is in use, after the commit that says so is durable.

use super::index::{self, PackEntry, QueueRecord};
use super::log::{ItemLog, QueueShared};
use super::pack::{encode_record, seal_block, BLOCK_HEADER};
use super::plan::Plan;
use super::segments::Segments;
use super::sync::SledSync;
use super::Error;
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};

/// How far a commit goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Depth {
    /// Into the files, for the operating system to write when it likes; a queue's run that
    /// is still growing and smaller than a pack waits for the next commit.
    WriteOut,
    /// As `WriteOut`, every run included. The index may lag behind the segments then: at
    /// start-up, blocks past its mark are replayed (see `replay`).
    WriteAll,
    /// Onto the disk: `fdatasync` of the segments written; the index is updated but synced
    /// only at checkpoints, as replay restores it from the blocks. A checkpoint instead when
    /// sled was written outside the blocks since its last sync (see [`OutsideWrites`]).
    Durable,
    /// Onto the disk: `fdatasync` of the segments written, then of the index; then segments
    /// no longer in use are deleted.
    Checkpoint,
}

/// A run is written as full packs once it holds this many bytes. Each pack costs an index
/// entry in sled, and sled keeps the entries it wrote in memory: at 16 KiB, RSS grew by about
/// 14 MiB per GiB written (benches/README.md, "Storage format 2").
pub(crate) const PACK_BYTES: u64 = 64 * 1024;
/// An unused segment being appended to is given up for a new one past this size.
const RETIRE_BYTES: u64 = 1024 * 1024;
/// Changes past which a commit hands sled what it has so far as one batch: sled frees the
/// node copies a batch replaces only once the batch ends, so one batch for a commit that
/// touched thousands of queues held tens of MiB (benches/README.md, "Storage format 2").
const CHUNK_CHANGES: usize = 64;

/// Set when sled is written outside the commit's blocks (a cursor's position or failed
/// reads, a queue made or deleted): replay cannot restore those, so the next durable commit
/// syncs sled as well as the segments. Noted after the write and before its client is
/// answered; taken by a commit after its snapshot, before it syncs.
#[derive(Clone, Default)]
pub(crate) struct OutsideWrites(Arc<AtomicBool>);

impl OutsideWrites {
    pub(super) fn note(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    fn take(&self) -> bool {
        self.0.swap(false, Ordering::SeqCst)
    }

    fn is_noted(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Index changes on their way to one sled batch, with the packs they add to or take from
/// each segment.
#[derive(Default)]
struct IndexChanges {
    batch: sled::Batch,
    uses: HashMap<u64, i64>,
    /// Pack keys set by [`IndexChanges::set_pack`], with the segment each names once the
    /// batch is applied (`None`: removed).
    packs: HashMap<[u8; 17], Option<u64>>,
    len: usize,
}

impl IndexChanges {
    fn insert(&mut self, key: &[u8], value: Vec<u8>) {
        self.batch.insert(key, value);
        self.len += 1;
    }

    fn remove(&mut self, key: &[u8]) {
        self.batch.remove(key);
        self.len += 1;
    }

    /// Puts `entry` at `key`, or (`None`) removes what is there, counting one pack less for
    /// the segment the index names at `key` now, if any, as replay does. A commit retried
    /// after one that failed part-way (some of its batches applied) thus finds what that one
    /// wrote and counts it out, instead of taking the pack it meant to replace out twice.
    fn set_pack(
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
    fn remove_pack(&mut self, key: impl AsRef<[u8]>, segment: u64) {
        self.remove(key.as_ref());
        *self.uses.entry(segment).or_default() -= 1;
    }
}

pub(crate) struct Engine {
    pub(super) index: sled::Tree,
    pub(super) segments: Segments,
    sled_sync: Mutex<SledSync>,
    /// Queues with something to commit (held until it is: a queue's handles may all be
    /// dropped before its last appends are written).
    dirty: Mutex<Vec<Arc<QueueShared>>>,
    /// Queues deleted since the last commit: their packs and record are removed by it.
    deleted: Mutex<Vec<u64>>,
    /// Appends hold it shared, a commit's snapshot exclusively: a fanout is in all of a
    /// commit's runs or in none.
    pub(super) appending: RwLock<()>,
    /// Bytes appended and not yet written to a segment.
    pub(super) pending: Arc<AtomicU64>,
    /// Per segment, the packs in it still in use.
    live: Mutex<HashMap<u64, u64>>,
    /// Segments no longer in use, deleted once a durable commit has recorded it.
    emptied: Mutex<BTreeSet<u64>>,
    committing: Mutex<()>,
    /// A commit changed the index since the last checkpoint.
    unchecked: AtomicBool,
    pub(super) outside: OutsideWrites,
    /// Open queues by name, so that every caller shares one log per queue.
    queues: Mutex<HashMap<String, Weak<QueueShared>>>,
    next_number: AtomicU64,
    /// Tests cut a commit short after this many sled batches, as a crash would.
    #[cfg(test)]
    batches_until_cut: AtomicU64,
}

impl Engine {
    pub(super) fn new(
        index: sled::Tree,
        segments: Segments,
        sled_sync: SledSync,
        live: HashMap<u64, u64>,
        deleted: Vec<u64>,
        next_number: u64,
    ) -> Engine {
        Engine {
            index,
            segments,
            sled_sync: Mutex::new(sled_sync),
            dirty: Mutex::new(Vec::new()),
            deleted: Mutex::new(deleted),
            appending: RwLock::new(()),
            pending: Arc::new(AtomicU64::new(0)),
            live: Mutex::new(live),
            emptied: Mutex::new(BTreeSet::new()),
            committing: Mutex::new(()),
            unchecked: AtomicBool::new(false),
            outside: OutsideWrites::default(),
            queues: Mutex::new(HashMap::new()),
            next_number: AtomicU64::new(next_number),
            #[cfg(test)]
            batches_until_cut: AtomicU64::new(u64::MAX),
        }
    }

    /// The log of queue `name`, created (empty) if missing.
    pub(super) fn open_queue(self: &Arc<Self>, name: &str) -> Result<ItemLog, Error> {
        let mut queues = lock(&self.queues);
        if let Some(shared) = queues.get(name).and_then(Weak::upgrade) {
            return Ok(ItemLog::new(shared));
        }
        let key = index::name_key(name);
        let number = match self.index.get(&key)? {
            Some(number) => index::number_in(&number, 0),
            None => {
                let number = self.next_number.fetch_add(1, Ordering::Relaxed);
                self.index.insert(key, &number.to_be_bytes()[..])?;
                self.outside.note();
                number
            }
        };
        let record = self
            .index
            .get(index::record_key(number))?
            .map(|record| QueueRecord::decode(&record))
            .unwrap_or_default();
        let shared = Arc::new(QueueShared::new(number, name, self.clone(), record));
        queues.insert(name.to_string(), Arc::downgrade(&shared));
        Ok(ItemLog::new(shared))
    }

    /// A queue is deleted: its name is free at once (a queue made under it again gets a new
    /// number), and the next commit drops its packs.
    pub(super) fn forget(&self, queue: &Arc<QueueShared>) -> Result<(), Error> {
        let mut queues = lock(&self.queues);
        if let Some(current) = queues.get(&queue.name).and_then(Weak::upgrade) {
            if Arc::ptr_eq(&current, queue) {
                queues.remove(&queue.name);
            }
        }
        self.index.remove(index::name_key(&queue.name))?;
        self.outside.note();
        lock(&self.deleted).push(queue.number);
        Ok(())
    }

    /// The names of the queues, in order.
    pub(super) fn queue_names(&self) -> Result<Vec<String>, Error> {
        self.index
            .scan_prefix(index::NAME_PREFIX)
            .keys()
            .map(|key| {
                let key = key?;
                Ok(String::from_utf8_lossy(&key[1..]).into_owned())
            })
            .collect()
    }

    pub(super) fn mark_dirty(&self, queue: Arc<QueueShared>) {
        lock(&self.dirty).push(queue);
    }

    /// Whether anything waits to be committed.
    pub(crate) fn has_changes(&self) -> bool {
        !lock(&self.dirty).is_empty() || !lock(&self.deleted).is_empty()
    }

    /// Whether a checkpoint would do anything: something to commit, an index not synced
    /// since the last commit, or sled written outside the blocks (a cursor moved).
    pub(crate) fn needs_checkpoint(&self) -> bool {
        self.has_changes() || self.unchecked.load(Ordering::Relaxed) || self.outside.is_noted()
    }

    /// Bytes appended and not yet written.
    pub(crate) fn pending_bytes(&self) -> u64 {
        self.pending.load(Ordering::Relaxed)
    }

    /// Writes everything appended or removed so far, as far as `depth` says.
    pub(crate) fn commit(&self, depth: Depth) -> Result<(), Error> {
        let _one_at_a_time = lock(&self.committing);
        let (plans, deleted) = {
            let _no_appends = self.appending.write().unwrap_or_else(|e| e.into_inner());
            let dirty = std::mem::take(&mut *lock(&self.dirty));
            let plans: Vec<Plan> = dirty
                .iter()
                .filter_map(|queue| QueueShared::plan(queue, depth, self))
                .collect();
            (plans, std::mem::take(&mut *lock(&self.deleted)))
        };
        let outside = match depth {
            Depth::Durable | Depth::Checkpoint => self.outside.take(),
            Depth::WriteOut | Depth::WriteAll => false,
        };
        let depth = match depth {
            Depth::Durable if outside => Depth::Checkpoint,
            depth => depth,
        };
        match self.write(&plans, &deleted, depth) {
            Ok(()) => {
                for plan in plans {
                    plan.committed(self);
                }
                Ok(())
            }
            Err(e) => {
                // Nothing counts as written: the next commit tries all of it again.
                for plan in plans {
                    plan.retry(self);
                }
                lock(&self.deleted).extend(deleted);
                if outside {
                    self.outside.note();
                }
                Err(e)
            }
        }
    }

    /// Writes the plans' packs and records.
    fn write(&self, plans: &[Plan], deleted: &[u64], depth: Depth) -> Result<(), Error> {
        let mut block = vec![0u8; BLOCK_HEADER];
        let mut placed = Vec::new();
        for plan in plans {
            // The record first: replay learns a new queue's name from it.
            if let Some(record) = &plan.record {
                let (number, name) = (plan.queue.number, &plan.queue.name);
                encode_record(number, name, &record.encode(), &mut block);
            }
            for pack in &plan.packs {
                let offset = block.len() as u64;
                let len = pack.encode(plan.queue.number, &mut block) as u32;
                placed.push((offset, len));
            }
        }
        let (segment, base) = match block.len() == BLOCK_HEADER {
            true => (self.segments.current(), 0),
            false => {
                seal_block(&mut block);
                self.segments.append(&block)?
            }
        };
        if matches!(depth, Depth::Durable | Depth::Checkpoint) {
            // Packs first: once the index names them, they must be on disk.
            self.segments.sync()?;
        }
        for &queue in deleted {
            self.delete_queue(queue)?;
        }
        let mut changes = IndexChanges::default();
        let mut placed = placed.into_iter();
        for plan in plans {
            let number = plan.queue.number;
            // Removals first: a full pack may take the key of the small one it replaces.
            for &first_id in &plan.superseded {
                changes.set_pack(&self.index, index::pack_key(number, first_id), None)?;
            }
            if let Some((sealed_below, floor)) = plan.sweep {
                self.sweep(number, sealed_below, floor, &mut changes)?;
            }
            for pack in &plan.packs {
                let (offset, len) = placed.next().unwrap_or_default();
                let entry = PackEntry {
                    segment,
                    offset: base + offset,
                    len,
                    count: pack.items.len() as u32,
                    first_seq: pack.first_seq,
                    last_id: pack.last_id(),
                };
                let key = index::pack_key(number, pack.first_id());
                changes.set_pack(&self.index, key, Some(entry))?;
            }
            if let Some(record) = &plan.record {
                changes.insert(&index::record_key(number), record.encode());
            }
            // A queue's changes go to sled together; a long commit goes in several batches,
            // the mark in the last.
            if changes.len >= CHUNK_CHANGES {
                self.apply(std::mem::take(&mut changes))?;
            }
        }
        for &queue in deleted {
            changes.remove(&index::record_key(queue));
        }
        if block.len() > BLOCK_HEADER {
            let end = base + block.len() as u64;
            changes.insert(index::MARK, index::encode_mark(segment, end).to_vec());
        }
        self.apply(changes)?;
        self.unchecked.store(true, Ordering::Relaxed);
        if depth == Depth::Checkpoint {
            self.unchecked.store(false, Ordering::Relaxed);
            lock(&self.sled_sync).sync()?;
            self.delete_emptied();
        }
        Ok(())
    }

    /// Removes the packs of `queue` below id `sealed_below` whose items are all below `floor`
    /// (all removed), oldest first, stopping at the first one still in use.
    fn sweep(
        &self,
        queue: u64,
        sealed_below: u64,
        floor: u64,
        changes: &mut IndexChanges,
    ) -> Result<(), Error> {
        let range = index::pack_key(queue, 0)..index::pack_key(queue, sealed_below);
        for entry in self.index.range(range) {
            let (key, value) = entry?;
            let pack = PackEntry::decode(&value);
            if pack.end_seq() > floor {
                break;
            }
            changes.remove_pack(key, pack.segment);
        }
        Ok(())
    }

    /// Removes every pack of a deleted queue, in bounded batches (the queue's name is gone
    /// already, so a crash meanwhile leaves only what the next start removes).
    fn delete_queue(&self, queue: u64) -> Result<(), Error> {
        loop {
            let range = index::pack_key(queue, 0)..=index::pack_key(queue, u64::MAX);
            let mut changes = IndexChanges::default();
            for entry in self.index.range(range).take(CHUNK_CHANGES) {
                let (key, value) = entry?;
                changes.remove_pack(key, PackEntry::decode(&value).segment);
            }
            if changes.len == 0 {
                return Ok(());
            }
            self.apply(changes)?;
        }
    }

    /// Applies `changes` to the index in one sled batch, with the packs-per-segment counts
    /// they change, so that the index is consistent after every batch: after a crash between
    /// the batches of one commit, replay (which takes a pack it finds indexed already as
    /// moved, not new) still leaves every count exact. The counts in memory change only once
    /// sled has taken the batch.
    fn apply(&self, changes: IndexChanges) -> Result<(), Error> {
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
        self.index.apply_batch(batch)?;
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

    /// Deletes the segments no pack uses. The one being appended to goes too once it is
    /// worth a new file (a drained queue's disk comes back without waiting for more writes).
    fn delete_emptied(&self) {
        let live = lock(&self.live);
        let mut current = self.segments.current();
        if !live.contains_key(&current) && self.segments.retire_current(RETIRE_BYTES) {
            lock(&self.emptied).insert(current);
            current = u64::MAX;
        }
        let mut emptied = lock(&self.emptied);
        emptied.retain(|&segment| {
            if live.contains_key(&segment) {
                return false;
            }
            if segment == current {
                return true;
            }
            self.segments.delete(segment);
            false
        });
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

pub(super) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::super::segments::SEGMENT_BYTES;
    use super::super::{Disk, Record};
    use super::{index, lock, Depth, PackEntry, CHUNK_CHANGES, PACK_BYTES};
    use std::collections::HashMap;
    use std::sync::atomic::Ordering;

    /// A durable commit syncs sled only when sled was written outside the blocks: after
    /// appends alone the index waits for the next checkpoint (replay restores it from the
    /// blocks); after a failed read, which only sled holds, the commit is a checkpoint.
    #[test]
    fn a_durable_commit_syncs_sled_only_after_writes_outside_the_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let disk = Disk::open(dir.path().join("store-1"), 1 << 20, false).unwrap();
        let queue = disk.queue_log("q").unwrap();
        let cursor = disk.cursor_log("q", "c").unwrap();
        disk.engine.commit(Depth::Checkpoint).unwrap();
        assert!(!disk.engine.needs_checkpoint());
        let record = |id| Record::new(0, None, id, b"item");
        queue.append(1, &record(1)).unwrap();
        disk.engine.commit(Depth::Durable).unwrap();
        assert!(
            disk.engine.needs_checkpoint(),
            "appends alone: the index is not synced"
        );
        queue.append(2, &record(2)).unwrap();
        cursor.failed.append(1, &record(1)).unwrap();
        disk.engine.commit(Depth::Durable).unwrap();
        assert!(
            !disk.engine.needs_checkpoint(),
            "a failed read: the commit synced the index too"
        );
        // A cursor that moved, with no write since: only a checkpoint makes that durable
        // (sled flushes nothing by itself under `--sync always`).
        cursor.save_position(2).unwrap();
        assert!(
            disk.engine.needs_checkpoint(),
            "a cursor moved: the next checkpoint must sync it"
        );
        disk.engine.commit(Depth::Checkpoint).unwrap();
        assert!(!disk.engine.needs_checkpoint());
    }

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
        disk.engine.batches_until_cut.store(1, Ordering::Relaxed);
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
        assert_eq!(*lock(&disk.engine.live), live, "{when}: in memory");
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
