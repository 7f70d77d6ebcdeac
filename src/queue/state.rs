//! One queue's in-memory state: what is waiting, what is hidden, what is held open, its
//! counters and limits, and its cursors. Its items live in its [`ItemLog`]; this decides
//! which to serve.
//!
//! Everything here runs under the queue's mutex, so one queue's reads and writes are
//! serialised. A producer takes its id under that lock and marks it hidden before it inserts
//! outside the lock; readers never go at or past the oldest hidden id, which is what keeps a
//! cursor from passing an item that is not yet stored. Only short, non-blocking storage calls
//! happen under the lock; waiting happens outside.

use super::cursor::CursorState;
use super::disk::{Counts, CursorLog, Disk, ItemLog};
use super::head::{HeadIndex, MAX_KNOWN};
use super::hidden::Hidden;
use super::item::{Expiry, Item};
use super::timeout::{Deadlines, Hold};

mod caches;
mod held;
mod tally;
use super::{Error, Limits, ReadMode};
pub(crate) use held::Held;
use std::collections::{BTreeMap, HashMap};
pub(crate) use tally::GiveBack;
use tally::Tally;

pub(crate) struct QueueState {
    /// Set once the queue is deleted: late closes and aborts on it do nothing.
    pub(crate) deleted: bool,
    pub(crate) log: ItemLog,
    limits: Limits,
    /// Hidden items: reserved and still being inserted, or (`--sync always`) inserted but not
    /// yet durable. No reader goes at or past the oldest of them, so nothing is served out of
    /// order or that a crash could still undo.
    hidden: Hidden,
    /// Every id below this is either gone or held open: plain reads start here.
    head_hint: u64,
    /// The next waiting ids, so a plain read needs no range scan.
    head: HeadIndex,
    /// A plain read looked at the head since [`QueueState::release_if_idle`] last ran.
    read_lately: bool,
    /// Plain reads held open: id → payload length and the open read's serial.
    open: HashMap<u64, (u64, u64)>,
    /// Deadlines of the open reads, plain and cursor, when the queue has an open timeout.
    pub(crate) deadlines: Deadlines,
    /// What left the queue and the open reads given back, counted.
    tally: Tally,
    /// Items waiting (stored, not open), and their payload bytes.
    items: u64,
    bytes: u64,
    total_items: u64,
    expired_items: u64,
    cursors: BTreeMap<String, CursorState>,
    /// The enqueue time of the newest item (stored at start-up, or since): the next is never
    /// older, even if the clock stepped back across a restart.
    pub(crate) last_enqueued_ms: u64,
}

/// A queue's handles opened in another database, ready to be installed by compaction.
pub(crate) struct Reopened {
    log: ItemLog,
    cursors: Vec<CursorLog>,
}

impl QueueState {
    /// A queue's state from what is stored (at start-up, or for a new queue). `counts` come
    /// from a clean shutdown's snapshot; without them the log is scanned.
    pub(crate) fn recover(
        log: ItemLog,
        limits: Limits,
        cursors: Vec<(String, u64, CursorLog)>,
        counts: Option<&Counts>,
    ) -> Result<QueueState, Error> {
        let scanned;
        let counts = match counts {
            Some(counts) => counts,
            None => {
                let positions: Vec<(&str, u64)> =
                    cursors.iter().map(|c| (c.0.as_str(), c.1)).collect();
                scanned = log.count(&positions)?;
                &scanned
            }
        };
        let cursors = cursors
            .into_iter()
            .map(|(name, position, log)| {
                let remaining = counts.remaining.get(&name).copied().unwrap_or(0);
                (name, CursorState::recovered(log, position, remaining))
            })
            .collect();
        let last_enqueued_ms = log.last_enqueued_ms()?;
        Ok(QueueState {
            deleted: false,
            log,
            limits,
            hidden: Hidden::default(),
            head_hint: 0,
            head: HeadIndex::default(),
            read_lately: false,
            open: HashMap::new(),
            deadlines: Deadlines::default(),
            tally: Tally::default(),
            items: counts.items,
            bytes: counts.bytes,
            total_items: 0,
            expired_items: 0,
            cursors,
            last_enqueued_ms,
        })
    }

    /// Writes every cursor position not saved yet (on a graceful stop).
    pub(crate) fn save_cursors(&mut self) -> Result<(), Error> {
        self.cursors.values_mut().try_for_each(CursorState::save)
    }

    /// What a restart will find: open reads count as waiting again.
    pub(crate) fn counts(&self) -> Counts {
        Counts {
            items: self.items + self.open.len() as u64,
            bytes: self.bytes + self.open_bytes(),
            remaining: self
                .cursors
                .iter()
                .map(|(name, cursor)| (name.clone(), cursor.remaining(&self.log)))
                .collect(),
        }
    }

    /// Payload bytes stored: waiting and held open.
    pub(crate) fn live_bytes(&self) -> u64 {
        self.bytes + self.open_bytes()
    }

    /// Payload bytes of the plain reads held open.
    fn open_bytes(&self) -> u64 {
        self.open.values().map(|&(len, _)| len).sum()
    }

    /// The same queue and cursors in `disk` (a compacted copy of the current database).
    pub(crate) fn reopen(&self, disk: &Disk, queue: &str) -> Result<Reopened, Error> {
        let cursors = self
            .cursors
            .keys()
            .map(|cursor| disk.cursor_log(queue, cursor))
            .collect::<Result<_, _>>()?;
        Ok(Reopened {
            log: disk.queue_log(queue)?,
            cursors,
        })
    }

    /// Switches to the handles of [`QueueState::reopen`]; cannot fail.
    pub(crate) fn install(&mut self, reopened: Reopened) {
        self.log = reopened.log;
        self.head.forget();
        for (cursor, log) in self.cursors.values_mut().zip(reopened.cursors) {
            cursor.install(log);
        }
    }

    /// Whether an item of `len` payload bytes may be added, discarding old items if the
    /// queue's limits allow that. Changes nothing: see [`QueueState::make_room`].
    pub(crate) fn fits(&self, len: u64) -> bool {
        let open_bytes = self.open_bytes();
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
    pub(crate) fn make_room(&mut self, len: u64, now: u64) -> Result<(), Error> {
        let over = |state: &QueueState| {
            let items = state.items + state.open.len() as u64;
            let bytes = state.bytes + state.open_bytes();
            state.limits.max_items.is_some_and(|max| items >= max)
                || state.limits.max_bytes.is_some_and(|max| bytes + len > max)
        };
        while self.limits.discard_old && over(self) {
            if self.head_item(ReadMode::Take, now)?.is_none() {
                break;
            }
            self.tally.discarded += 1;
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
        self.cursors.values_mut().for_each(CursorState::added);
    }

    /// The write of `id` is stored and as durable as the sync mode promises (or failed for
    /// good): readers may now see it. Returns how many items became readable, so that as many
    /// plain readers are woken (see [`Hidden::show`]).
    pub(crate) fn synced(&mut self, id: u64) -> usize {
        self.hidden.show(id).unwrap_or(0)
    }

    /// Whether items of this queue expire by age.
    pub(crate) fn has_max_age(&self) -> bool {
        self.limits.max_age_ms > 0
    }

    /// What expires this queue's items at `now`.
    fn expiry(&self, now: u64) -> Expiry {
        Expiry {
            now,
            max_age_ms: self.limits.max_age_ms,
        }
    }

    /// Discards what has expired at the head of the queue and at each cursor's (age-expired
    /// items are always a prefix, as ids grow with time), so that counts and ages leave them
    /// out. Costs a lookup per cursor plus one per item discarded, each item discarded once.
    pub(crate) fn expire_heads(&mut self, now: u64) -> Result<(), Error> {
        if self.deleted {
            return Ok(());
        }
        self.read_plain(ReadMode::Peek, now)?;
        let names: Vec<String> = self.cursors.keys().cloned().collect();
        for name in names {
            self.read_cursor(&name, ReadMode::Peek, now)?;
        }
        Ok(())
    }

    /// Counts what is left to each cursor moved by a seek.
    pub(crate) fn count_cursors(&mut self) {
        for cursor in self.cursors.values_mut() {
            cursor.count_remaining(&self.log);
        }
    }

    /// Every item stored, waiting or held open: what a new cursor has to read.
    pub(crate) fn stored_items(&self) -> u64 {
        self.items + self.open.len() as u64
    }

    /// Readers see ids below this only.
    pub(crate) fn visible_end(&self) -> u64 {
        self.hidden.first()
    }

    /// A plain read: the head item that is not held open, skipping and discarding expired ones.
    /// An item taken counts as dequeued.
    pub(crate) fn read_plain(
        &mut self,
        mode: ReadMode,
        now: u64,
    ) -> Result<Option<(Item, Option<Held>)>, Error> {
        let read = self.head_item(mode, now)?;
        if mode == ReadMode::Take && read.is_some() {
            self.tally.dequeued += 1;
        }
        Ok(read)
    }

    /// What [`QueueState::read_plain`] reads, uncounted: a take may also be a discard.
    fn head_item(
        &mut self,
        mode: ReadMode,
        now: u64,
    ) -> Result<Option<(Item, Option<Held>)>, Error> {
        let mut rebuilt = false;
        self.read_lately = true;
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
            let record = match mode {
                ReadMode::Take => self.log.take(id)?,
                ReadMode::Peek | ReadMode::Open => self.log.get(id)?,
            };
            let Some(record) = record else {
                // The index broke its rule (a bug): look in the log instead, once.
                log::warn!("queue head index out of date at id {}", id);
                self.head.forget();
                if rebuilt {
                    return Ok(None);
                }
                continue;
            };
            let item = Item::new(id, record);
            let len = item.len();
            if item.is_expired(self.expiry(now)) {
                if mode != ReadMode::Take {
                    self.log.remove(id)?;
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
                    let hold = Hold::new(now, self.limits.open_timeout_ms);
                    self.open.insert(id, (len, hold.serial));
                    self.items -= 1;
                    self.bytes -= len;
                    let held = Held::Plain { len, hold };
                    self.deadlines.add(&held, id);
                    Some(held)
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

    /// Rebuilds the head index: the first waiting ids in the log, with the reserved ones not
    /// inserted yet among them (hidden ids are never in the log's scan alone).
    fn rebuild_head(&mut self) -> Result<(), Error> {
        let mut ids = Vec::new();
        let mut complete = true;
        // One pack read past those cached, while ids are found: the cache keeps two packs, so
        // the reads that follow find each pack this walk read. Listing 1 024 ids of 1 KiB
        // items read eight packs, of which the reads then read six again (benches/README.md).
        let mut walk = self.log.range(self.head_hint, u64::MAX).reading_at_most(1);
        loop {
            let Some(entry) = walk.next() else {
                if walk.paused() && ids.is_empty() {
                    walk.read_more(1);
                    continue;
                }
                complete &= !walk.paused();
                break;
            };
            let id = entry?.0;
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

    /// Bookkeeping for an item removed from the log (`was_open`: it was a plain open read).
    fn removed(&mut self, id: u64, len: u64, was_open: bool) {
        if !was_open {
            self.items -= 1;
            self.bytes -= len;
        }
        for cursor in self.cursors.values_mut() {
            cursor.removed(id);
        }
    }

    pub(crate) fn has_cursor(&self, name: &str) -> bool {
        self.cursors.contains_key(name)
    }

    /// Creates a cursor at the head: it sees every item still in the queue.
    pub(crate) fn add_cursor(&mut self, name: &str, log: CursorLog) -> Result<(), Error> {
        let cursor = CursorState::create(log, self.stored_items())?;
        self.cursors.insert(name.to_string(), cursor);
        Ok(())
    }

    /// A cursor read: its failed reads first, then the queue from its position.
    pub(crate) fn read_cursor(
        &mut self,
        name: &str,
        mode: ReadMode,
        now: u64,
    ) -> Result<Option<(Item, Option<Held>)>, Error> {
        let visible_end = self.visible_end();
        let Some(cursor) = self.cursors.get_mut(name) else {
            return Ok(None);
        };
        let generation = cursor.generation;
        let hold = Hold::new(now, self.limits.open_timeout_ms);
        let expiry = Expiry {
            now,
            max_age_ms: self.limits.max_age_ms,
        };
        let read = cursor.read(&self.log, visible_end, mode, expiry, hold.serial);
        self.expired_items += std::mem::take(&mut cursor.expired);
        let read = read?;
        Ok(read.map(|(item, open)| {
            let held = open.then(|| Held::Cursor {
                name: name.to_string(),
                generation,
                hold,
            });
            if let Some(held) = &held {
                self.deadlines.add(held, item.id());
            }
            (item, held)
        }))
    }

    /// `flush <queue>`: drops every item not held open; cursors move to the tail and lose
    /// their failed reads (their open reads stay open).
    pub(crate) fn flush(&mut self) -> Result<(), Error> {
        let open = &self.open;
        self.log.retain_only(open.keys().copied())?;
        self.items = 0;
        self.bytes = 0;
        self.head_hint = 0;
        self.head.forget();
        // Whatever was hidden is gone now.
        self.hidden.clear();
        let names: Vec<String> = self.cursors.keys().cloned().collect();
        for name in names {
            self.flush_cursor(&name)?;
        }
        Ok(())
    }

    /// `flush <queue>.<cursor>`: empties its failed reads and moves it to the tail.
    pub(crate) fn flush_cursor(&mut self, name: &str) -> Result<(), Error> {
        let tail = self.log.last_id()?.map_or(0, |id| id + 1);
        match self.cursors.get_mut(name) {
            Some(cursor) => cursor.flush(tail),
            None => Ok(()),
        }
    }

    /// `delete <queue>`: drops its items and all its cursors.
    pub(crate) fn delete(&mut self) -> Result<(), Error> {
        self.deleted = true;
        self.deadlines.clear();
        for cursor in std::mem::take(&mut self.cursors).into_values() {
            cursor.destroy()?;
        }
        self.log.clone().destroy()
    }

    /// `delete <queue>.<cursor>`; returns whether it existed.
    pub(crate) fn delete_cursor(&mut self, name: &str) -> Result<bool, Error> {
        match self.cursors.remove(name) {
            Some(cursor) => cursor.destroy().map(|()| true),
            None => Ok(false),
        }
    }
}
