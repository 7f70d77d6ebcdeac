//! One queue and its cursors: what is waiting, what is held open, where each cursor stands.
//!
//! Everything here runs under the queue's mutex, so one queue's reads and writes are
//! serialised. A producer takes its id under that lock and marks it hidden before it inserts
//! outside the lock; readers never go at or past the oldest hidden id, which is what keeps a
//! cursor from passing an item that is not yet in the tree. Only short, non-blocking sled calls
//! happen under the lock; waiting happens outside.

use super::head::{HeadIndex, MAX_KNOWN};
use super::item::{self, Item};
use super::{names, CursorStats, Error, Limits, QueueStats, ReadMode};
use event_listener::Event;
use sled::Transactional;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

/// A cursor's position is written every this many moves (and whenever it reaches the tail, or
/// the server stops): a write per read would double a cursor read's cost. After a crash a
/// cursor may repeat up to this many items (at-least-once); it never skips one, as a saved
/// position is never ahead of the real one.
const SAVE_POSITION_EVERY: u32 = 32;

/// Keys removed per sled batch when flushing, so a deep queue never needs one huge batch.
const FLUSH_CHUNK: usize = 4096;

pub(crate) struct Queue {
    pub(crate) name: String,
    state: Mutex<QueueState>,
    /// Plain readers waiting for an item; each new item wakes one more.
    pub(crate) plain_event: Event,
    /// Readers that do not take the item (cursors, peeks) waiting: each item concerns all.
    pub(crate) broadcast_event: Event,
    /// Blocked gets on this queue, for `stats`.
    pub(crate) waiters: AtomicUsize,
    /// Inserts running outside the lock; see [`Queue::lock_settled`].
    pub(crate) inserting: AtomicUsize,
}

impl Queue {
    pub(crate) fn new(name: String, state: QueueState) -> Queue {
        Queue {
            name,
            state: Mutex::new(state),
            plain_event: Event::new(),
            broadcast_event: Event::new(),
            waiters: AtomicUsize::new(0),
            inserting: AtomicUsize::new(0),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, QueueState> {
        // A panic elsewhere must not wedge the queue: its state is kept consistent per call.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The lock, once no insert is in flight: for whatever needs every reserved item in the
    /// tree (flush, delete, compaction, the final snapshot). No insert can start while the lock
    /// is held, and one in flight never waits for anything, so this spins only briefly.
    pub(crate) fn lock_settled(&self) -> MutexGuard<'_, QueueState> {
        let guard = self.lock();
        while self.inserting.load(Ordering::Acquire) > 0 {
            std::thread::yield_now();
        }
        guard
    }

    /// Wakes readers after items became available.
    pub(crate) fn notify(&self, plain: usize) {
        if plain > 0 {
            self.plain_event.notify_additional(plain);
        }
        self.broadcast_event.notify(usize::MAX);
    }
}

/// Storage handles a queue needs beyond its own trees.
pub(crate) struct Storage<'a> {
    pub(crate) db: &'a sled::Db,
    pub(crate) meta: &'a sled::Tree,
}

pub(crate) struct QueueState {
    /// Set once the queue is deleted: late closes and aborts on it do nothing.
    pub(crate) deleted: bool,
    pub(crate) tree: sled::Tree,
    limits: Limits,
    /// Hidden items: reserved and still being inserted, or (`--sync always`) inserted but not
    /// yet durable. No reader goes at or past the oldest of them, so nothing is served out of
    /// order or that a crash could still undo.
    hidden: BTreeSet<u64>,
    /// Every id below this is either gone or held open: plain reads start here.
    head_hint: u64,
    /// The next waiting ids, so a plain read needs no range scan.
    head: HeadIndex,
    /// Plain reads held open: id → payload length.
    open: HashMap<u64, u64>,
    /// Items waiting (in the tree, not open), and their payload bytes.
    items: u64,
    bytes: u64,
    total_items: u64,
    expired_items: u64,
    cursors: BTreeMap<String, CursorState>,
}

pub(crate) struct CursorState {
    /// Tells a cursor apart from a later one of the same name, so a late close or abort of a
    /// deleted cursor's read never touches its successor.
    generation: u64,
    /// The next id to read from the queue's tree.
    position: u64,
    /// Items in the queue's tree at or after `position` (plain open ones included).
    remaining: u64,
    /// Failed reads (and this cursor's open reads), copies keyed by their original id.
    failed: sled::Tree,
    failed_open: HashSet<u64>,
    /// Failed reads waiting (not open).
    failed_items: u64,
    /// Moves of `position` not yet written to `meta`; see [`SAVE_POSITION_EVERY`].
    unsaved: u32,
}

/// A queue's counters, kept across a clean restart so start-up needs no scan.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) items: u64,
    pub(crate) bytes: u64,
    /// Per cursor: items at or after its position.
    pub(crate) remaining: HashMap<String, u64>,
}

impl Counts {
    /// Counts by reading every item (after a crash).
    fn scan(tree: &sled::Tree, cursors: &[(&str, u64)]) -> Result<Counts, Error> {
        let mut counts = Counts::default();
        let mut positions: Vec<u64> = cursors.iter().map(|c| c.1).collect();
        positions.sort_unstable();
        let mut remaining = vec![0u64; positions.len()];
        for entry in tree.iter() {
            let (key, value) = entry?;
            counts.items += 1;
            counts.bytes += item::payload_len(&value);
            // Cursors at or before this id still have it to read.
            let behind = positions.partition_point(|&p| p <= item::id_of(&key));
            for count in &mut remaining[..behind] {
                *count += 1;
            }
        }
        for (name, position) in cursors {
            let index = positions.partition_point(|&p| p < *position);
            counts.remaining.insert(name.to_string(), remaining[index]);
        }
        Ok(counts)
    }
}

/// A queue's trees opened in another database, ready to be installed by compaction.
pub(crate) struct Reopened {
    tree: sled::Tree,
    failed: Vec<sled::Tree>,
}

/// What a lease refers to, so it can be closed or aborted later.
#[derive(Debug, Clone)]
pub(crate) enum Held {
    Plain { len: u64 },
    Cursor { name: String, generation: u64 },
}

impl QueueState {
    /// Rebuilds a queue's state from its trees (at start-up, or for a new queue). `counts`
    /// come from a clean shutdown's snapshot; without them the tree is scanned.
    pub(crate) fn recover(
        tree: sled::Tree,
        limits: Limits,
        cursors: Vec<(String, u64, sled::Tree, u64)>,
        counts: Option<&Counts>,
    ) -> Result<QueueState, Error> {
        let mut state = QueueState {
            deleted: false,
            tree,
            limits,
            hidden: BTreeSet::new(),
            head_hint: 0,
            head: HeadIndex::default(),
            open: HashMap::new(),
            items: 0,
            bytes: 0,
            total_items: 0,
            expired_items: 0,
            cursors: BTreeMap::new(),
        };
        let scanned;
        let counts = match counts {
            Some(counts) => counts,
            None => {
                let positions: Vec<(&str, u64)> =
                    cursors.iter().map(|c| (c.0.as_str(), c.1)).collect();
                scanned = Counts::scan(&state.tree, &positions)?;
                &scanned
            }
        };
        state.items = counts.items;
        state.bytes = counts.bytes;
        for (name, position, failed, generation) in cursors {
            let cursor = CursorState {
                generation,
                position,
                remaining: counts.remaining.get(&name).copied().unwrap_or(0),
                failed_items: failed.len() as u64,
                failed,
                failed_open: HashSet::new(),
                unsaved: 0,
            };
            state.cursors.insert(name, cursor);
        }
        Ok(state)
    }

    /// Writes every cursor position not saved yet (on a graceful stop).
    pub(crate) fn save_cursors(&mut self, storage: &Storage<'_>, queue: &str) -> Result<(), Error> {
        for (name, cursor) in &mut self.cursors {
            cursor.save_position(storage, &names::cursor_key(queue, name), 1)?;
        }
        Ok(())
    }

    /// What a restart will find: open reads count as waiting again.
    pub(crate) fn counts(&self) -> Counts {
        Counts {
            items: self.items + self.open.len() as u64,
            bytes: self.bytes + self.open.values().sum::<u64>(),
            remaining: self
                .cursors
                .iter()
                .map(|(name, cursor)| (name.clone(), cursor.remaining))
                .collect(),
        }
    }

    /// The same trees in `db` (a compacted copy of the current database).
    pub(crate) fn reopen(&self, db: &sled::Db, queue: &str) -> Result<Reopened, Error> {
        let failed = self
            .cursors
            .keys()
            .map(|cursor| db.open_tree(names::failed_tree(queue, cursor)))
            .collect::<Result<_, _>>()?;
        Ok(Reopened {
            tree: db.open_tree(names::queue_tree(queue))?,
            failed,
        })
    }

    /// Switches to the trees of [`QueueState::reopen`]; cannot fail.
    pub(crate) fn install(&mut self, reopened: Reopened) {
        self.tree = reopened.tree;
        self.head.forget();
        for (cursor, failed) in self.cursors.values_mut().zip(reopened.failed) {
            cursor.failed = failed;
        }
    }

    /// Whether an item of `len` payload bytes may be added, discarding old items if the
    /// queue's limits allow that. Changes nothing: see [`QueueState::make_room`].
    pub(crate) fn fits(&self, len: u64) -> bool {
        let open_bytes: u64 = self.open.values().sum();
        let open_items = self.open.len() as u64;
        // Waiting items can be discarded, open ones cannot.
        let (items, bytes) = if self.limits.discard_old {
            (open_items, open_bytes)
        } else {
            (open_items + self.items, open_bytes + self.bytes)
        };
        self.limits.max_items.is_none_or(|max| items < max)
            && self.limits.max_bytes.is_none_or(|max| bytes + len <= max)
    }

    /// Discards the oldest waiting items until an item of `len` bytes is within the limits.
    /// Call only after [`QueueState::fits`] said yes.
    pub(crate) fn make_room(&mut self, len: u64) -> Result<(), Error> {
        let over = |state: &QueueState| {
            let items = state.items + state.open.len() as u64;
            let bytes = state.bytes + state.open.values().sum::<u64>();
            state.limits.max_items.is_some_and(|max| items >= max)
                || state.limits.max_bytes.is_some_and(|max| bytes + len > max)
        };
        while self.limits.discard_old && over(self) {
            if self.read_plain(ReadMode::Take, item::now_ms())?.is_none() {
                break;
            }
        }
        Ok(())
    }

    /// Accounts for an item about to be inserted, hidden until [`QueueState::synced`].
    pub(crate) fn reserve(&mut self, id: u64, len: u64) {
        self.hidden.insert(id);
        self.head.reserved(id);
        self.items += 1;
        self.bytes += len;
        self.total_items += 1;
        for cursor in self.cursors.values_mut() {
            cursor.remaining += 1;
        }
    }

    /// Undoes [`QueueState::reserve`] after a failed insert (unless a flush dropped it first).
    pub(crate) fn unreserve(&mut self, id: u64, len: u64) {
        if !self.hidden.remove(&id) {
            return;
        }
        self.head.forget();
        self.items -= 1;
        self.bytes -= len;
        self.total_items -= 1;
        for cursor in self.cursors.values_mut() {
            if cursor.position <= id {
                cursor.remaining = cursor.remaining.saturating_sub(1);
            }
        }
    }

    /// The write of `id` is in the tree and as durable as the sync mode promises (or failed
    /// for good): readers may now see it.
    pub(crate) fn synced(&mut self, id: u64) {
        self.hidden.remove(&id);
    }

    /// Readers see ids below this only.
    fn visible_end(&self) -> u64 {
        self.hidden.first().copied().unwrap_or(u64::MAX)
    }

    /// A plain read: the head item that is not held open, skipping and discarding expired ones.
    pub(crate) fn read_plain(
        &mut self,
        mode: ReadMode,
        now: u64,
    ) -> Result<Option<(Item, Option<Held>)>, Error> {
        let mut rebuilt = false;
        loop {
            if self.head.is_unknown() {
                self.rebuild_head()?;
                rebuilt = true;
            }
            let id = match self.head.front() {
                Some(id) if id < self.visible_end() => id,
                // Nothing waits, or the oldest is still hidden.
                _ => return Ok(None),
            };
            let key = item::key(id);
            let value = match mode {
                ReadMode::Take => self.tree.remove(key)?,
                ReadMode::Peek | ReadMode::Open => self.tree.get(key)?,
            };
            let Some(value) = value else {
                // The index broke its rule (a bug): look in the tree instead, once.
                log::warn!("queue head index out of date at id {}", id);
                self.head.forget();
                if rebuilt {
                    return Ok(None);
                }
                continue;
            };
            let item = Item::new(id, value);
            let len = item::payload_len(item.stored());
            if item.is_expired(now) {
                if mode != ReadMode::Take {
                    self.tree.remove(key)?;
                }
                self.expired_items += 1;
                self.removed(id, len, false);
                self.passed_head(id);
                continue;
            }
            let held = match mode {
                ReadMode::Peek => return Ok(Some((item, None))),
                ReadMode::Take => {
                    self.removed(id, len, false);
                    None
                }
                ReadMode::Open => {
                    self.open.insert(id, len);
                    self.items -= 1;
                    self.bytes -= len;
                    Some(Held::Plain { len })
                }
            };
            self.passed_head(id);
            return Ok(Some((item, held)));
        }
    }

    /// The head item `id` was taken, held open or discarded: the head moves past it.
    fn passed_head(&mut self, id: u64) {
        self.head.pop_front();
        self.head_hint = id + 1;
    }

    /// Rebuilds the head index: the first waiting ids in the tree, with the reserved ones not
    /// inserted yet among them (hidden ids are never in the tree's scan alone).
    fn rebuild_head(&mut self) -> Result<(), Error> {
        let mut ids = Vec::new();
        let mut complete = true;
        for key in self.tree.range(item::key(self.head_hint)..).keys() {
            let id = item::id_of(&key?);
            if self.open.contains_key(&id) {
                continue;
            }
            if ids.len() == MAX_KNOWN {
                complete = false;
                break;
            }
            ids.push(id);
        }
        // Past the last id seen, a hidden one could leave a gap: only the complete list takes them.
        let last = match ids.last() {
            Some(&last) if !complete => last,
            _ => u64::MAX,
        };
        ids.extend(self.hidden.range(self.head_hint..=last));
        ids.sort_unstable();
        ids.dedup();
        if ids.len() > MAX_KNOWN {
            ids.truncate(MAX_KNOWN);
            complete = false;
        }
        self.head.rebuild(ids, complete);
        Ok(())
    }

    /// Bookkeeping for an item removed from the tree (`was_open`: it was a plain open read).
    fn removed(&mut self, id: u64, len: u64, was_open: bool) {
        if !was_open {
            self.items -= 1;
            self.bytes -= len;
        }
        for cursor in self.cursors.values_mut() {
            if cursor.position <= id {
                cursor.remaining -= 1;
            }
        }
    }

    /// A cursor read: its failed reads first, then the queue from its position.
    pub(crate) fn read_cursor(
        &mut self,
        storage: &Storage<'_>,
        queue: &str,
        name: &str,
        mode: ReadMode,
        now: u64,
    ) -> Result<Option<(Item, Option<Held>)>, Error> {
        self.ensure_cursor(storage, queue, name)?;
        let visible_end = self.visible_end();
        let tree = &self.tree;
        let cursor = match self.cursors.get_mut(name) {
            Some(cursor) => cursor,
            None => return Ok(None),
        };
        let held = Held::Cursor {
            name: name.to_string(),
            generation: cursor.generation,
        };
        if let Some(item) = cursor.first_failed(now)? {
            let held = match mode {
                ReadMode::Peek => None,
                ReadMode::Take => {
                    cursor.failed.remove(item::key(item.id()))?;
                    cursor.failed_items -= 1;
                    None
                }
                ReadMode::Open => {
                    cursor.failed_open.insert(item.id());
                    cursor.failed_items -= 1;
                    Some(held)
                }
            };
            return Ok(Some((item, held)));
        }
        let start = cursor.position;
        let mut found = None;
        for entry in tree.range(item::key(cursor.position)..item::key(visible_end)) {
            let (key, value) = entry?;
            let item = Item::new(item::id_of(&key), value);
            if item.is_expired(now) {
                // Passed for good: an expired item is never returned.
                cursor.position = item.id() + 1;
                cursor.remaining -= 1;
                continue;
            }
            found = Some(item);
            break;
        }
        if cursor.position != start {
            cursor.unsaved += 1;
        }
        let position_key = names::cursor_key(queue, name);
        let item = match found {
            Some(item) => item,
            None => {
                // At the tail, about to wait or idle: a good moment to save the position.
                cursor.save_position(storage, &position_key, 1)?;
                return Ok(None);
            }
        };
        if mode == ReadMode::Peek {
            cursor.save_position(storage, &position_key, SAVE_POSITION_EVERY)?;
            return Ok(Some((item, None)));
        }
        let position = item.id() + 1;
        if mode == ReadMode::Take {
            cursor.position = position;
            cursor.remaining -= 1;
            cursor.unsaved += 1;
            cursor.save_position(storage, &position_key, SAVE_POSITION_EVERY)?;
            return Ok(Some((item, None)));
        }
        // An open cursor read must survive a crash: the move and the in-flight copy in the
        // failed tree commit together, so after a crash the item is either unread or failed.
        let id_key = item::key(item.id());
        (storage.meta, &cursor.failed)
            .transaction(|(meta, failed)| {
                meta.insert(position_key.as_slice(), &position.to_be_bytes())?;
                failed.insert(&id_key, item.stored().clone())?;
                Ok(())
            })
            .map_err(Error::from)?;
        cursor.position = position;
        cursor.remaining -= 1;
        cursor.unsaved = 0;
        cursor.failed_open.insert(item.id());
        Ok(Some((item, Some(held))))
    }

    /// Creates the cursor on first use, at the head: it sees every item still in the queue.
    fn ensure_cursor(
        &mut self,
        storage: &Storage<'_>,
        queue: &str,
        name: &str,
    ) -> Result<(), Error> {
        if self.cursors.contains_key(name) {
            return Ok(());
        }
        let failed = storage.db.open_tree(names::failed_tree(queue, name))?;
        storage
            .meta
            .insert(names::cursor_key(queue, name), &0u64.to_be_bytes())?;
        let cursor = CursorState {
            generation: names::next_generation(),
            position: 0,
            remaining: self.items + self.open.len() as u64,
            failed_items: failed.len() as u64,
            failed,
            failed_open: HashSet::new(),
            unsaved: 0,
        };
        self.cursors.insert(name.to_string(), cursor);
        Ok(())
    }

    /// Confirms a read: the item is gone for good.
    pub(crate) fn close(&mut self, held: &Held, id: u64) -> Result<(), Error> {
        if self.deleted {
            return Ok(());
        }
        match held {
            Held::Plain { len } => {
                if self.open.remove(&id).is_some() {
                    if let Err(e) = self.tree.remove(item::key(id)) {
                        // Not removed, so not confirmed: back to the queue.
                        self.open.insert(id, *len);
                        return Err(e.into());
                    }
                    self.removed(id, *len, true);
                }
            }
            Held::Cursor { name, generation } => {
                if let Some(cursor) = self.cursor_of(name, *generation) {
                    if cursor.failed_open.contains(&id) {
                        cursor.failed.remove(item::key(id))?;
                        cursor.failed_open.remove(&id);
                    }
                }
            }
        }
        Ok(())
    }

    /// Cancels a read: a plain item goes back to the head, a cursor's to its failed reads.
    /// Returns how many plain readers to wake.
    pub(crate) fn abort(&mut self, held: &Held, id: u64) -> usize {
        if self.deleted {
            return 0;
        }
        match held {
            Held::Plain { len } => {
                if self.open.remove(&id).is_some() {
                    self.items += 1;
                    self.bytes += len;
                    self.head_hint = self.head_hint.min(id);
                    self.head.forget();
                    return 1;
                }
            }
            Held::Cursor { name, generation } => {
                if let Some(cursor) = self.cursor_of(name, *generation) {
                    if cursor.failed_open.remove(&id) {
                        cursor.failed_items += 1;
                    }
                }
            }
        }
        0
    }

    pub(crate) fn is_stale(&mut self, held: &Held) -> bool {
        self.deleted
            || match held {
                Held::Plain { .. } => false,
                Held::Cursor { name, generation } => self.cursor_of(name, *generation).is_none(),
            }
    }

    fn cursor_of(&mut self, name: &str, generation: u64) -> Option<&mut CursorState> {
        self.cursors
            .get_mut(name)
            .filter(|cursor| cursor.generation == generation)
    }

    /// `flush <queue>`: drops every item not held open; cursors move to the tail and lose
    /// their failed reads (their open reads stay open).
    pub(crate) fn flush(&mut self, storage: &Storage<'_>, queue: &str) -> Result<(), Error> {
        let open = &self.open;
        remove_all_but(&self.tree, |id| open.contains_key(&id))?;
        self.items = 0;
        self.bytes = 0;
        self.head_hint = 0;
        self.head.forget();
        // Whatever was hidden is gone now.
        self.hidden.clear();
        let names: Vec<String> = self.cursors.keys().cloned().collect();
        for name in names {
            self.flush_cursor(storage, queue, &name)?;
        }
        Ok(())
    }

    /// `flush <queue>.<cursor>`: empties its failed reads and moves it to the tail.
    /// Returns whether the cursor exists.
    pub(crate) fn flush_cursor(
        &mut self,
        storage: &Storage<'_>,
        queue: &str,
        name: &str,
    ) -> Result<bool, Error> {
        let tail = match self.tree.last()? {
            Some((key, _)) => item::id_of(&key) + 1,
            None => 0,
        };
        let cursor = match self.cursors.get_mut(name) {
            Some(cursor) => cursor,
            None => return Ok(false),
        };
        let open = &cursor.failed_open;
        remove_all_but(&cursor.failed, |id| open.contains(&id))?;
        cursor.failed_items = 0;
        cursor.position = cursor.position.max(tail);
        cursor.remaining = 0;
        cursor.unsaved = 0;
        storage.meta.insert(
            names::cursor_key(queue, name),
            &cursor.position.to_be_bytes(),
        )?;
        Ok(true)
    }

    /// `delete <queue>`: drops its tree and all its cursors.
    pub(crate) fn delete(&mut self, storage: &Storage<'_>, queue: &str) -> Result<(), Error> {
        self.deleted = true;
        let names: Vec<String> = self.cursors.keys().cloned().collect();
        for name in names {
            self.delete_cursor(storage, queue, &name)?;
        }
        storage.db.drop_tree(names::queue_tree(queue))?;
        Ok(())
    }

    /// `delete <queue>.<cursor>`; returns whether it existed.
    pub(crate) fn delete_cursor(
        &mut self,
        storage: &Storage<'_>,
        queue: &str,
        name: &str,
    ) -> Result<bool, Error> {
        if self.cursors.remove(name).is_none() {
            return Ok(false);
        }
        storage.meta.remove(names::cursor_key(queue, name))?;
        storage.db.drop_tree(names::failed_tree(queue, name))?;
        Ok(true)
    }

    pub(crate) fn stats(&self, queue: &Queue, now: u64) -> QueueStats {
        let head = self
            .tree
            .range(item::key(self.head_hint)..)
            .filter_map(Result::ok)
            .map(|(key, value)| Item::new(item::id_of(&key), value))
            .find(|item| !self.open.contains_key(&item.id()));
        QueueStats {
            name: queue.name.clone(),
            items: self.items,
            bytes: self.bytes,
            total_items: self.total_items,
            expired_items: self.expired_items,
            open_transactions: self.open.len() as u64,
            waiters: queue.waiters.load(Ordering::Relaxed) as u64,
            age_ms: head.map_or(0, |item| now.saturating_sub(item.enqueued_ms())),
            cursors: self
                .cursors
                .iter()
                .map(|(name, cursor)| CursorStats {
                    name: name.clone(),
                    items: cursor.remaining + cursor.failed_items,
                    failed_items: cursor.failed_items,
                    open_transactions: cursor.failed_open.len() as u64,
                })
                .collect(),
        }
    }
}

impl CursorState {
    /// Writes the position if at least `threshold` moves are unsaved.
    fn save_position(
        &mut self,
        storage: &Storage<'_>,
        key: &[u8],
        threshold: u32,
    ) -> Result<(), Error> {
        if self.unsaved >= threshold.max(1) {
            storage.meta.insert(key, &self.position.to_be_bytes())?;
            self.unsaved = 0;
        }
        Ok(())
    }

    /// The oldest failed read not held open, discarding expired ones.
    fn first_failed(&mut self, now: u64) -> Result<Option<Item>, Error> {
        if self.failed_items == 0 {
            return Ok(None);
        }
        for entry in self.failed.iter() {
            let (key, value) = entry?;
            let item = Item::new(item::id_of(&key), value);
            if self.failed_open.contains(&item.id()) {
                continue;
            }
            if item.is_expired(now) {
                self.failed.remove(key)?;
                self.failed_items -= 1;
                continue;
            }
            return Ok(Some(item));
        }
        Ok(None)
    }
}

/// Removes every key of `tree` whose id `keep` rejects, in bounded batches.
fn remove_all_but(tree: &sled::Tree, keep: impl Fn(u64) -> bool) -> Result<(), Error> {
    let mut batch = sled::Batch::default();
    let mut pending = 0;
    for key in tree.iter().keys() {
        let key = key?;
        if keep(item::id_of(&key)) {
            continue;
        }
        batch.remove(key);
        pending += 1;
        if pending == FLUSH_CHUNK {
            tree.apply_batch(std::mem::take(&mut batch))?;
            pending = 0;
        }
    }
    tree.apply_batch(batch)?;
    Ok(())
}
