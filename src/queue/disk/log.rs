//! [`ItemLog`]: the items of one queue, addressed by id, in format 2.
//!
//! New items join the queue's open run in memory, in id order (they are appended under the
//! queue's lock); the commit ([`super::engine`]) writes runs out as packs. Older items are
//! in packs, found through the index by id and read back a pack at a time (`packs`; the last packs
//! read stay cached, so a reader walking the queue reads each pack once). A removed item is
//! only a number in the queue's [`Removed`] ranges until its whole pack can go.

use super::engine::{lock, Engine};
use super::index::QueueRecord;
use super::pack::Pack;
use super::packs::cached;
use super::ranges::Removed;
use super::record::Record;
use super::snapshot::Counts;
use super::Error;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

/// One queue's items; cheap to clone (clones share them).
#[derive(Clone)]
pub(crate) struct ItemLog(pub(super) Arc<QueueShared>);

pub(crate) struct QueueShared {
    /// The queue's number in the index, and its name.
    pub(super) number: u64,
    pub(super) name: String,
    pub(super) engine: Arc<Engine>,
    pub(super) state: Mutex<LogState>,
}

pub(super) struct LogState {
    /// The open run: the newest items, in id order, from sequence number `run_first_seq`.
    pub(super) run: Vec<(u64, Record)>,
    pub(super) run_first_seq: u64,
    /// Stored bytes of the run's items.
    pub(super) run_bytes: u64,
    /// How many of the run's items are in packs already (kept to be written again as full
    /// packs), their stored bytes, and those packs' first ids.
    pub(super) run_written: usize,
    pub(super) kept_bytes: u64,
    pub(super) run_packs: Vec<u64>,
    pub(super) removed: Removed,
    pub(super) appended_bytes: u64,
    pub(super) removed_bytes: u64,
    pub(super) last_id: u64,
    pub(super) last_enqueued_ms: u64,
    /// Packs ending at or below this sequence number have been dropped from the index.
    pub(super) swept: u64,
    /// Waiting in the engine's list of queues to commit.
    pub(super) dirty: bool,
    /// The record changed since the last commit.
    pub(super) changed: bool,
    /// Items were appended since the last plan.
    pub(super) growing: bool,
    pub(super) deleted: bool,
    /// Packs read: first id, where the pack is (segment, offset), the pack.
    pub(super) cache: Vec<(u64, (u64, u64), Arc<Pack>)>,
    /// The cache served a read since [`ItemLog::release_unused_cache`] last looked.
    pub(super) cache_used: bool,
    /// Items were appended since [`ItemLog::release_idle_run`] last looked.
    pub(super) appended_lately: bool,
}

impl QueueShared {
    pub(super) fn new(
        number: u64,
        name: &str,
        engine: Arc<Engine>,
        record: QueueRecord,
    ) -> QueueShared {
        QueueShared {
            number,
            name: name.to_string(),
            engine,
            state: Mutex::new(LogState {
                run: Vec::new(),
                run_first_seq: record.next_seq,
                run_bytes: 0,
                run_written: 0,
                kept_bytes: 0,
                run_packs: Vec::new(),
                removed: record.removed,
                appended_bytes: record.appended_bytes,
                removed_bytes: record.removed_bytes,
                last_id: record.last_id,
                last_enqueued_ms: record.last_enqueued_ms,
                swept: 0,
                dirty: false,
                changed: false,
                growing: false,
                deleted: false,
                cache: Vec::new(),
                cache_used: false,
                appended_lately: false,
            }),
        }
    }

    pub(super) fn mark_dirty(self: &Arc<Self>, state: &mut LogState, engine: &Engine) {
        if !state.dirty {
            state.dirty = true;
            engine.mark_dirty(self.clone());
        }
    }
}

pub(super) fn stored_len(record: &Record) -> u64 {
    record.stored().len() as u64
}

impl ItemLog {
    pub(super) fn new(shared: Arc<QueueShared>) -> ItemLog {
        ItemLog(shared)
    }

    pub(super) fn state(&self) -> std::sync::MutexGuard<'_, LogState> {
        lock(&self.0.state)
    }

    /// Adds item `id`, which must be newer than every item of the queue (the server gives
    /// ids out in order and appends under the queue's lock; a tool copying items checks).
    pub(crate) fn append(&self, id: u64, record: &Record) -> Result<(), Error> {
        let _appending = self.0.engine.appending.read();
        if self.last_id()?.is_some_and(|last| id <= last) {
            return Err(Error::Corrupt(format!(
                "item {id} of queue {} comes after a newer one",
                self.0.name
            )));
        }
        self.append_locked(id, record);
        Ok(())
    }

    fn append_locked(&self, id: u64, record: &Record) {
        let engine = &self.0.engine;
        let mut state = self.state();
        if state.deleted {
            return;
        }
        if state.run.capacity() == 0 {
            // Most runs of many queues hold an item or two: room for one, not four.
            state.run.reserve_exact(1);
        }
        state.run.push((id, record.clone()));
        state.run_bytes += stored_len(record);
        state.appended_bytes += record.payload_len();
        state.last_id = id;
        state.last_enqueued_ms = record.enqueued_ms();
        state.changed = true;
        state.growing = true;
        state.appended_lately = true;
        engine
            .pending
            .fetch_add(stored_len(record), Ordering::Relaxed);
        self.0.mark_dirty(&mut state, engine);
    }

    /// Adds item `id` to every log: one commit writes it to all of them or to none.
    pub(crate) fn append_to_all(logs: &[ItemLog], id: u64, record: &Record) -> Result<(), Error> {
        let Some(first) = logs.first() else {
            return Ok(());
        };
        let _appending = first.0.engine.appending.read();
        for log in logs {
            log.append_locked(id, record);
        }
        Ok(())
    }

    pub(crate) fn get(&self, id: u64) -> Result<Option<Record>, Error> {
        let mut state = self.state();
        Ok(self.find(&mut state, id)?.map(|(_, record)| record))
    }

    /// Removes item `id` and returns it.
    pub(crate) fn take(&self, id: u64) -> Result<Option<Record>, Error> {
        let mut state = self.state();
        let Some((seq, record)) = self.find(&mut state, id)? else {
            return Ok(None);
        };
        self.removed(&mut state, seq, record.payload_len());
        Ok(Some(record))
    }

    pub(crate) fn remove(&self, id: u64) -> Result<(), Error> {
        self.take(id).map(drop)
    }

    fn removed(&self, state: &mut LogState, seq: u64, len: u64) {
        if state.removed.insert(seq) {
            state.removed_bytes += len;
            state.changed = true;
            self.0.mark_dirty(state, &self.0.engine);
        }
    }

    /// Removes every item but those with the ids given (a flush that keeps open reads).
    pub(crate) fn retain_only(&self, keep: impl Iterator<Item = u64>) -> Result<(), Error> {
        let mut state = self.state();
        let mut kept = Vec::new();
        let mut kept_bytes = 0;
        for id in keep {
            if let Some((seq, record)) = self.find(&mut state, id)? {
                kept.push(seq);
                kept_bytes += record.payload_len();
            }
        }
        kept.sort_unstable();
        let next_seq = state.run_first_seq + state.run.len() as u64;
        let mut ranges = Vec::new();
        let mut from = 0;
        for seq in kept {
            ranges.push((from, seq));
            from = seq + 1;
        }
        ranges.push((from, next_seq));
        state.removed = Removed::from_ranges(ranges);
        state.removed_bytes = state.appended_bytes - kept_bytes;
        state.changed = true;
        self.0.mark_dirty(&mut state, &self.0.engine);
        Ok(())
    }

    /// Items with ids in `from..to`, in order.
    pub(crate) fn range(&self, from: u64, to: u64) -> Items {
        Items {
            log: self.clone(),
            next: from,
            to,
            reads_left: usize::MAX,
            paused: false,
        }
    }

    /// Every item, in order.
    pub(crate) fn iter(&self) -> Items {
        self.range(0, u64::MAX)
    }

    /// The newest id ever appended, if any.
    pub(crate) fn last_id(&self) -> Result<Option<u64>, Error> {
        let state = self.state();
        let any = state.run_first_seq + state.run.len() as u64 > 0;
        Ok(any.then_some(state.last_id))
    }

    /// The enqueue time of the newest item appended; 0 if none.
    pub(crate) fn last_enqueued_ms(&self) -> Result<u64, Error> {
        Ok(self.state().last_enqueued_ms)
    }

    pub(crate) fn len(&self) -> u64 {
        let state = self.state();
        state.run_first_seq + state.run.len() as u64 - state.removed.len()
    }

    /// Items stored at or after id `from`.
    pub(crate) fn count_from(&self, from: u64) -> Result<u64, Error> {
        let mut state = self.state();
        let next_seq = state.run_first_seq + state.run.len() as u64;
        let seq = self.seq_at(&mut state, from)?.unwrap_or(next_seq);
        Ok(next_seq - seq - state.removed.count_from(seq))
    }

    /// The queue's counters, and for each cursor position the items at or after it.
    pub(crate) fn count(&self, cursors: &[(&str, u64)]) -> Result<Counts, Error> {
        let mut counts = Counts {
            items: self.len(),
            ..Counts::default()
        };
        {
            let state = self.state();
            counts.bytes = state.appended_bytes.saturating_sub(state.removed_bytes);
        }
        for (name, position) in cursors {
            counts
                .remaining
                .insert(name.to_string(), self.count_from(*position)?);
        }
        Ok(counts)
    }

    /// Deletes the queue and everything in it (the next commit drops its packs).
    pub(crate) fn destroy(self) -> Result<(), Error> {
        let mut state = self.state();
        state.deleted = true;
        // What no commit will write now (a commit in progress skips a deleted queue's counts).
        let engine = &self.0.engine;
        let unwritten: u64 = state.run[state.run_written..]
            .iter()
            .map(|(_, r)| stored_len(r))
            .sum();
        engine.pending.fetch_sub(unwritten, Ordering::Relaxed);
        engine.kept.forget(std::mem::take(&mut state.kept_bytes));
        state.run.clear();
        state.cache.clear();
        drop(state);
        self.0.engine.forget(&self.0)
    }

    /// Item `id` with its sequence number, unless absent or removed.
    fn find(&self, state: &mut LogState, id: u64) -> Result<Option<(u64, Record)>, Error> {
        let found = match state.run.first() {
            Some(&(first, _)) if id >= first => state
                .run
                .binary_search_by_key(&id, |item| item.0)
                .ok()
                .map(|i| (state.run_first_seq + i as u64, state.run[i].1.clone())),
            _ => match self.pack_holding(state, id)? {
                Some(pack) => pack
                    .ids
                    .binary_search(&id)
                    .ok()
                    .map(|i| (pack.first_seq + i as u64, pack.records[i].clone())),
                None => None,
            },
        };
        Ok(found.filter(|(seq, _)| !state.removed.contains(*seq)))
    }

    /// The sequence number of the first item with an id at or after `id`, removed or not;
    /// `None` if there is none.
    fn seq_at(&self, state: &mut LogState, id: u64) -> Result<Option<u64>, Error> {
        if let Some(&(first, _)) = state.run.first() {
            if id >= first {
                let i = state.run.partition_point(|item| item.0 < id);
                return Ok((i < state.run.len()).then(|| state.run_first_seq + i as u64));
            }
        }
        let found = match self.entry_at_or_before(id)? {
            Some(found) if found.1.last_id >= id => Some(found),
            _ => self.entry_after(id)?,
        };
        match found {
            Some((first_id, entry)) if id <= first_id => Ok(Some(entry.first_seq)),
            Some((first_id, entry)) => {
                let pack = self.load(state, first_id, entry)?;
                let i = pack.ids.partition_point(|&x| x < id);
                Ok(Some(pack.first_seq + i as u64))
            }
            None => Ok(state.run.first().map(|_| state.run_first_seq)),
        }
    }

    /// The next item at or after `from` and before `to`; a pack not cached is read only while
    /// `reads_left` allows (and counted).
    fn next_from(&self, mut from: u64, to: u64, reads_left: &mut usize) -> Result<Step, Error> {
        let mut state = self.state();
        loop {
            if from >= to {
                return Ok(Step::End);
            }
            if let Some(&(first, _)) = state.run.first() {
                if from >= first {
                    let start = state.run.partition_point(|item| item.0 < from);
                    for i in start..state.run.len() {
                        let (id, record) = &state.run[i];
                        if *id >= to {
                            return Ok(Step::End);
                        }
                        if !state.removed.contains(state.run_first_seq + i as u64) {
                            return Ok(Step::Item(*id, record.clone()));
                        }
                    }
                    return Ok(Step::End);
                }
            }
            // A walk through a pack finds it in the cache: no index lookup per item (sled's
            // reverse range lookup costs microseconds, and rebuilding a head walks 1000 ids).
            let (pack, next) = match cached(&mut state, from) {
                Some(pack) => {
                    let next = pack.last_id() + 1;
                    (Some(pack), next)
                }
                None => {
                    let entry = match self.entry_at_or_before(from)? {
                        Some(found) if found.1.last_id >= from => Some(found),
                        _ => self.entry_after(from)?,
                    };
                    let Some((first_id, entry)) = entry else {
                        match state.run.first() {
                            Some(&(first, _)) => {
                                from = first;
                                continue;
                            }
                            None => return Ok(Step::End),
                        }
                    };
                    if first_id >= to {
                        return Ok(Step::End);
                    }
                    let pack = match state.removed.covers(entry.first_seq, entry.end_seq()) {
                        true => None,
                        false if *reads_left == 0 => return Ok(Step::Paused),
                        false => {
                            *reads_left -= 1;
                            Some(self.load(&mut state, first_id, entry)?)
                        }
                    };
                    (pack, entry.last_id + 1)
                }
            };
            if let Some(pack) = pack {
                let start = pack.ids.partition_point(|&id| id < from);
                for i in start..pack.ids.len() {
                    if pack.ids[i] >= to {
                        return Ok(Step::End);
                    }
                    if !state.removed.contains(pack.first_seq + i as u64) {
                        return Ok(Step::Item(pack.ids[i], pack.records[i].clone()));
                    }
                }
            }
            from = next;
        }
    }
}

/// What [`ItemLog::next_from`] found.
enum Step {
    Item(u64, Record),
    End,
    /// The next item is in a pack the walk may not read.
    Paused,
}

/// Iterator over a range of a queue's items; each step locks the queue's log briefly.
pub(crate) struct Items {
    log: ItemLog,
    next: u64,
    to: u64,
    /// Packs it may still read that are not cached (`usize::MAX`: any number).
    reads_left: usize,
    paused: bool,
}

impl Items {
    /// Stops (see [`Items::paused`]) rather than read more than `packs` packs not cached.
    pub(crate) fn reading_at_most(mut self, packs: usize) -> Items {
        self.reads_left = packs;
        self
    }

    /// The walk ended at a pack it may not read, not at the end of the range.
    pub(crate) fn paused(&self) -> bool {
        self.paused
    }

    /// Lets a paused walk read `packs` more packs.
    pub(crate) fn read_more(&mut self, packs: usize) {
        self.reads_left = packs;
        self.paused = false;
    }
}

impl Iterator for Items {
    type Item = Result<(u64, Record), Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.paused {
            return None;
        }
        match self.log.next_from(self.next, self.to, &mut self.reads_left) {
            Ok(Step::Item(id, record)) => {
                self.next = id.saturating_add(1);
                if id == u64::MAX {
                    self.to = 0;
                }
                Some(Ok((id, record)))
            }
            Ok(Step::Paused) => {
                self.paused = true;
                None
            }
            Ok(Step::End) => {
                self.to = 0;
                None
            }
            Err(e) => {
                self.to = 0;
                Some(Err(e))
            }
        }
    }
}
