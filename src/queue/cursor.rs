//! One cursor of a queue: where it stands, how much it has left, its failed reads.
//!
//! The durable part (position, failed-read copies) is the cursor's own [`CursorLog`]; this
//! keeps the in-memory rest and decides what a read returns. Runs under the queue's lock.

use super::disk::{CursorLog, ItemLog};
use super::item::{Expiry, Item};
use super::{CursorStats, Error, ReadMode};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// A cursor's position is written every this many moves (and whenever it reaches the tail, or
/// the server stops): a write per read would double a cursor read's cost. After a crash a
/// cursor may repeat up to this many items (at-least-once); it never skips one, as a saved
/// position is never ahead of the real one.
const SAVE_POSITION_EVERY: u32 = 32;

pub(crate) struct CursorState {
    /// Tells a cursor apart from a later one of the same name, so a late close or abort of a
    /// deleted cursor's read never touches its successor.
    pub(crate) generation: u64,
    /// The next id to read from the queue.
    position: u64,
    /// Items in the queue at or after `position` (plain open ones included); `None` after a
    /// seek, until [`CursorState::count_remaining`] counts them (a seek stays O(log n)).
    remaining: Option<u64>,
    log: CursorLog,
    /// Failed reads held open by a reader: id → the open read's serial.
    failed_open: HashMap<u64, u64>,
    /// Failed reads waiting (not open).
    failed_items: u64,
    /// Moves of `position` not yet saved; see [`SAVE_POSITION_EVERY`].
    unsaved: u32,
    /// Failed reads discarded as expired since the queue last collected them (it counts
    /// them in its `expired_items`).
    pub(crate) expired: u64,
}

impl CursorState {
    /// A cursor found on disk at `position`, with `remaining` items still to read there.
    pub(crate) fn recovered(log: CursorLog, position: u64, remaining: u64) -> CursorState {
        CursorState {
            generation: next_generation(),
            position,
            remaining: Some(remaining),
            failed_items: log.failed.len(),
            log,
            failed_open: HashMap::new(),
            unsaved: 0,
            expired: 0,
        }
    }

    /// A new cursor, at the head: it sees all `remaining` items still in the queue.
    pub(crate) fn create(log: CursorLog, remaining: u64) -> Result<CursorState, Error> {
        log.save_position(0)?;
        Ok(CursorState::recovered(log, 0, remaining))
    }

    /// The same cursor in another database (after compaction); cannot fail.
    pub(crate) fn install(&mut self, log: CursorLog) {
        self.log = log;
    }

    /// Its failed reads first, then `items` from its position up to `visible_end`. Returns
    /// the item and whether it is now held open by the reader (as open read `serial`).
    pub(crate) fn read(
        &mut self,
        items: &ItemLog,
        visible_end: u64,
        mode: ReadMode,
        expiry: Expiry,
        serial: u64,
    ) -> Result<Option<(Item, bool)>, Error> {
        if let Some(item) = self.first_failed(expiry)? {
            match mode {
                ReadMode::Peek => {}
                ReadMode::Take => {
                    self.log.failed.remove(item.id())?;
                    self.failed_items -= 1;
                }
                ReadMode::Open => {
                    self.failed_open.insert(item.id(), serial);
                    self.failed_items -= 1;
                }
            }
            return Ok(Some((item, mode == ReadMode::Open)));
        }
        let start = self.position;
        let mut found = None;
        for entry in items.range(self.position, visible_end) {
            let (id, record) = entry?;
            let item = Item::new(id, record);
            // Expired: passed for good, never returned. Held open by this cursor's reader
            // (met again after a rewind or seek): it is theirs already, and comes back
            // through the failed reads if they give it up; never held twice under one id.
            if item.is_expired(expiry) || self.failed_open.contains_key(&id) {
                self.position = id + 1;
                self.less();
                continue;
            }
            found = Some(item);
            break;
        }
        if self.position != start {
            self.unsaved += 1;
        }
        let Some(item) = found else {
            // At the tail, about to wait or idle: a good moment to save the position.
            self.save_position(1)?;
            return Ok(None);
        };
        let position = item.id() + 1;
        match mode {
            ReadMode::Peek => self.save_position(SAVE_POSITION_EVERY)?,
            ReadMode::Take => {
                self.position = position;
                self.less();
                self.unsaved += 1;
                self.save_position(SAVE_POSITION_EVERY)?;
            }
            ReadMode::Open => {
                self.log.open_read(position, item.id(), item.record())?;
                self.position = position;
                self.less();
                self.unsaved = 0;
                self.failed_open.insert(item.id(), serial);
            }
        }
        Ok(Some((item, mode == ReadMode::Open)))
    }

    /// Item `id` left the queue: one less to read if the cursor had not passed it.
    pub(crate) fn removed(&mut self, id: u64) {
        if self.position <= id {
            self.less();
        }
    }

    /// Item `id` was added to the queue (always past the cursor).
    pub(crate) fn added(&mut self) {
        if let Some(remaining) = &mut self.remaining {
            *remaining += 1;
        }
    }

    /// One item less at or after the position.
    fn less(&mut self) {
        if let Some(remaining) = &mut self.remaining {
            *remaining = remaining.saturating_sub(1);
        }
    }

    /// Items at or after the position (after a seek, counted from the index: no item is
    /// read, whatever the depth).
    pub(crate) fn remaining(&self, items: &ItemLog) -> u64 {
        match self.remaining {
            Some(remaining) => remaining,
            None => items.count_from(self.position).unwrap_or_else(|e| {
                log::error!("cannot count the items left to a cursor: {}", e);
                0
            }),
        }
    }

    /// Counts the items left after a seek, if not done yet (see `remaining`).
    pub(crate) fn count_remaining(&mut self, items: &ItemLog) {
        if self.remaining.is_none() {
            self.remaining = Some(self.remaining(items));
        }
    }

    /// Moves to `position` (a rewind or a seek), durably: `remaining` items are there
    /// (`None`: count them when asked). Open and failed reads stay as they are.
    pub(crate) fn move_to(&mut self, position: u64, remaining: Option<u64>) -> Result<(), Error> {
        self.log.save_position(position)?;
        self.position = position;
        self.remaining = remaining;
        self.unsaved = 0;
        Ok(())
    }

    /// Whether open read `serial` still holds `id`.
    pub(crate) fn holds(&self, id: u64, serial: u64) -> bool {
        self.failed_open.get(&id) == Some(&serial)
    }

    /// Confirms the open read `serial` of `id`: its copy is dropped.
    pub(crate) fn close(&mut self, id: u64, serial: u64) -> Result<(), Error> {
        if self.holds(id, serial) {
            self.log.failed.remove(id)?;
            self.failed_open.remove(&id);
        }
        Ok(())
    }

    /// Cancels the open read `serial` of `id`: it waits among the failed reads. Returns
    /// whether it was still held.
    pub(crate) fn abort(&mut self, id: u64, serial: u64) -> bool {
        let held = self.holds(id, serial);
        if held {
            self.failed_open.remove(&id);
            self.failed_items += 1;
        }
        held
    }

    /// Empties the failed reads (open ones stay open) and moves to `tail` if it is behind.
    pub(crate) fn flush(&mut self, tail: u64) -> Result<(), Error> {
        let open = &self.failed_open;
        self.log.failed.retain(|id| open.contains_key(&id))?;
        self.failed_items = 0;
        self.position = self.position.max(tail);
        self.remaining = Some(0);
        self.unsaved = 0;
        self.log.save_position(self.position)
    }

    /// Writes the position if any move is unsaved (on a graceful stop).
    pub(crate) fn save(&mut self) -> Result<(), Error> {
        self.save_position(1)
    }

    /// Deletes the cursor's position and failed reads.
    pub(crate) fn destroy(self) -> Result<(), Error> {
        self.log.destroy()
    }

    pub(crate) fn stats(&self, name: &str, items: &ItemLog, expiry: Expiry) -> CursorStats {
        let failed = self.log.failed.iter();
        let waiting = items.range(self.position, u64::MAX);
        let next = failed
            .filter_map(Result::ok)
            .filter(|(id, _)| !self.failed_open.contains_key(id))
            .chain(waiting.filter_map(Result::ok))
            .map(|(id, record)| Item::new(id, record))
            .find(|item| !item.is_expired(expiry));
        CursorStats {
            age_ms: next.map_or(0, |item| expiry.now.saturating_sub(item.enqueued_ms())),
            name: name.to_string(),
            items: self.remaining.unwrap_or(0) + self.failed_items,
            failed_items: self.failed_items,
            open_transactions: self.failed_open.len() as u64,
        }
    }

    /// Writes the position if at least `threshold` moves are unsaved.
    fn save_position(&mut self, threshold: u32) -> Result<(), Error> {
        if self.unsaved >= threshold.max(1) {
            self.log.save_position(self.position)?;
            self.unsaved = 0;
        }
        Ok(())
    }

    /// The oldest failed read not held open, discarding expired ones.
    fn first_failed(&mut self, expiry: Expiry) -> Result<Option<Item>, Error> {
        if self.failed_items == 0 {
            return Ok(None);
        }
        for entry in self.log.failed.iter() {
            let (id, record) = entry?;
            let item = Item::new(id, record);
            if self.failed_open.contains_key(&id) {
                continue;
            }
            if item.is_expired(expiry) {
                self.log.failed.remove(id)?;
                self.failed_items -= 1;
                self.expired += 1;
                continue;
            }
            return Ok(Some(item));
        }
        Ok(None)
    }
}

/// A process-wide counter distinguishing cursors that share a name over time.
fn next_generation() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
