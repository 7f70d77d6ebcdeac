//! The commit: what turns items appended in memory into packs on disk.
//!
//! Appends go to a queue's open run in memory (see `log`); a commit writes every run that
//! changed as packs, with the records of the queues it changes, in one checksummed block
//! appended to the newest segment, then records them in the index (one sled write at a time,
//! the block's mark last: see `uses`). A block is used whole or not at all (by the
//! index, or by replay after a crash), which is what makes a fanout atomic. A run grows
//! through small packs (one per commit, so a trickle of writes costs no rewrite) until it
//! holds [`PACK_BYTES`];
//! then it is written once more as full packs that replace the small ones. Packs whose items
//! are all removed are dropped from the index, and a segment is deleted once none of its
//! packs is in use, after the commit that says so is durable.

use super::index::{self, PackEntry, QueueRecord};
use super::kept::Kept;
use super::log::{ItemLog, QueueShared};
use super::pack::{encode_record, seal_block, BLOCK_HEADER};
use super::plan::Plan;
use super::segments::Segments;
use super::sync::SledSync;
use super::uses::SegmentUses;
use super::Error;
use std::collections::HashMap;
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
/// 14 MiB per GiB written; 4 GiB written as 64 KiB packs left 32.7 MiB, as 128 KiB 22.7
/// (benches/README.md, "Storage format 2").
pub(crate) const PACK_BYTES: u64 = 128 * 1024;
/// An unused segment being appended to is given up for a new one past this size.
const RETIRE_BYTES: u64 = 1024 * 1024;

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

pub(crate) struct Engine {
    pub(super) index: sled::Tree,
    pub(super) segments: Segments,
    sled_sync: Mutex<SledSync>,
    /// Queues with something to commit (held until it is: a queue's handles may all be
    /// dropped before its last appends are written).
    pub(super) dirty: Mutex<Vec<Arc<QueueShared>>>,
    /// Queues deleted since the last commit: their packs and record are removed by it.
    deleted: Mutex<Vec<u64>>,
    /// Appends hold it shared, a commit's snapshot exclusively: a fanout is in all of a
    /// commit's runs or in none.
    pub(super) appending: RwLock<()>,
    /// Bytes appended and not yet written to a segment.
    pub(super) pending: Arc<AtomicU64>,
    /// Bytes written and kept in runs, to be written again as full packs.
    pub(super) kept: Kept,
    /// Per segment, the packs in it still in use.
    pub(super) uses: SegmentUses,
    committing: Mutex<()>,
    /// A commit changed the index since the last checkpoint.
    unchecked: AtomicBool,
    pub(super) outside: OutsideWrites,
    /// Open queues by name, so that every caller shares one log per queue.
    queues: Mutex<HashMap<String, Weak<QueueShared>>>,
    next_number: AtomicU64,
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
            kept: Kept::default(),
            uses: SegmentUses::new(live),
            committing: Mutex::new(()),
            unchecked: AtomicBool::new(false),
            outside: OutsideWrites::default(),
            queues: Mutex::new(HashMap::new()),
            next_number: AtomicU64::new(next_number),
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

    /// Runs `change` unless a commit is under way: for changes to a run that a commit's plan
    /// would still count on.
    pub(super) fn between_commits(&self, change: impl FnOnce()) {
        if let Ok(_no_commit) = self.committing.try_lock() {
            change();
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
        let uses = &self.uses;
        let mut placed = placed.into_iter();
        for plan in plans {
            let number = plan.queue.number;
            // Removals first: a full pack may take the key of the small one it replaces.
            for &first_id in &plan.superseded {
                uses.set_pack(&self.index, &index::pack_key(number, first_id), None)?;
            }
            if let Some((sealed_below, floor)) = plan.sweep {
                self.sweep(number, sealed_below, floor)?;
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
                uses.set_pack(&self.index, &key, Some(entry))?;
            }
            if let Some(record) = &plan.record {
                uses.write(
                    &self.index,
                    &index::record_key(number),
                    Some(&record.encode()),
                )?;
            }
        }
        for &queue in deleted {
            uses.write(&self.index, &index::record_key(queue), None)?;
        }
        if block.len() > BLOCK_HEADER {
            // Last: replay puts back whatever of the commit a crash cut off (see `uses`).
            let end = base + block.len() as u64;
            let mark = index::encode_mark(segment, end);
            uses.write(&self.index, index::MARK, Some(&mark))?;
        }
        self.unchecked.store(true, Ordering::Relaxed);
        if depth == Depth::Checkpoint {
            self.unchecked.store(false, Ordering::Relaxed);
            // So that the next start, even one after a crash, need not count them.
            uses.save(&self.index)?;
            lock(&self.sled_sync).sync()?;
            self.delete_emptied();
        }
        Ok(())
    }

    /// Removes the packs of `queue` below id `sealed_below` whose items are all below `floor`
    /// (all removed), oldest first, stopping at the first one still in use.
    fn sweep(&self, queue: u64, sealed_below: u64, floor: u64) -> Result<(), Error> {
        let range = index::pack_key(queue, 0)..index::pack_key(queue, sealed_below);
        for entry in self.index.range(range) {
            let (key, value) = entry?;
            if PackEntry::decode(&value).end_seq() > floor {
                break;
            }
            self.uses.set_pack(&self.index, &key, None)?;
        }
        Ok(())
    }

    /// Removes every pack of a deleted queue (its name is gone already, so a crash
    /// meanwhile leaves only what the next start removes).
    fn delete_queue(&self, queue: u64) -> Result<(), Error> {
        let range = index::pack_key(queue, 0)..=index::pack_key(queue, u64::MAX);
        for key in self.index.range(range).keys() {
            self.uses.set_pack(&self.index, &key?, None)?;
        }
        Ok(())
    }

    /// Deletes the segments no pack uses. The one being appended to goes too once it is
    /// worth a new file (a drained queue's disk comes back without waiting for more writes).
    fn delete_emptied(&self) {
        let live = lock(&self.uses.live);
        let mut current = self.segments.current();
        if !live.contains_key(&current) && self.segments.retire_current(RETIRE_BYTES) {
            lock(&self.uses.emptied).insert(current);
            current = u64::MAX;
        }
        let mut emptied = lock(&self.uses.emptied);
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

pub(super) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::super::{Disk, Record};
    use super::Depth;

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
}
