//! The write path: take an id and append the item under the queues' locks, then show it to
//! readers once it is as durable as the sync mode promises.
//!
//! Hiding the id until [`Pending`] is dropped is what keeps a reader from taking an item that
//! a crash could still undo; appending is a copy into memory (the commit writes it out), so
//! producers of one queue wait on each other only for that copy.

use super::disk::{ItemLog, Record};
use super::handle::Queue;
use super::{Error, Store};
use std::sync::Arc;

impl Store {
    /// Appends one item to each named queue, atomically across them, and returns once it is
    /// as durable as the sync mode promises. `expires_ms`: unix ms, `None` for never.
    pub async fn put(
        &self,
        names: &[String],
        flags: u32,
        expires_ms: Option<u64>,
        data: &[u8],
    ) -> Result<(), Error> {
        let pending = self.put_pending(names, flags, expires_ms, data)?;
        let synced = self.sync().await;
        drop(pending);
        synced
    }

    /// [`Store::put`] without the wait: the item is stored, but with `--sync always` it is
    /// neither durable nor visible to readers until [`Store::sync`] has returned and the
    /// [`Pending`] is dropped. A connection runs a pipeline of sets this way, so they all
    /// share one flush.
    pub fn put_pending(
        &self,
        names: &[String],
        flags: u32,
        expires_ms: Option<u64>,
        data: &[u8],
    ) -> Result<Pending, Error> {
        let mut names: Vec<&str> = names.iter().map(String::as_str).collect();
        // Locks are always taken in name order, so two fanouts can never deadlock.
        names.sort_unstable();
        names.dedup();
        self.shared.space.check(self.now_ms())?;
        let (queues, id) = self.reserve(&names, flags, expires_ms, data)?;
        let durability = &self.shared.durability;
        durability.note_write();
        if durability.waits() {
            return Ok(Pending { queues, id });
        }
        for queue in &queues {
            show(queue, id);
        }
        Ok(Pending {
            queues: Vec::new(),
            id,
        })
    }

    /// Takes an id for the new item in every named queue (sorted, distinct) and appends it
    /// there, hidden from readers until shown: all or none, if they all have room. The
    /// enqueue time is read under the locks too, and never goes back within a queue, so that
    /// times grow with ids (what a seek relies on). Appending is a copy into memory (the
    /// commit writes it out), so it happens under the locks, which keeps each queue's items
    /// in id order.
    fn reserve(
        &self,
        names: &[&str],
        flags: u32,
        expires_ms: Option<u64>,
        data: &[u8],
    ) -> Result<(Vec<Arc<Queue>>, u64), Error> {
        let len = data.len() as u64;
        loop {
            let queues = names
                .iter()
                .map(|name| self.queue(name))
                .collect::<Result<Vec<_>, _>>()?;
            let mut guards: Vec<_> = queues.iter().map(|queue| queue.lock()).collect();
            // A queue deleted since we looked it up: look again, it will be created anew.
            if guards.iter().any(|guard| guard.deleted) {
                continue;
            }
            // All or none: a fanout that would overfill any target stores in none.
            if !guards.iter().all(|guard| guard.fits(len)) {
                return Err(Error::QueueFull);
            }
            let now = guards
                .iter()
                .map(|guard| guard.last_enqueued_ms)
                .fold(self.now_ms(), u64::max);
            for guard in &mut guards {
                guard.make_room(len, now)?;
            }
            let id = self.disk().next_id()?;
            let record = Record::new(flags, expires_ms, now, data);
            let logs: Vec<ItemLog> = guards.iter().map(|guard| guard.log.clone()).collect();
            ItemLog::append_to_all(&logs, id, &record)?;
            for guard in &mut guards {
                guard.reserve(id, len);
                guard.last_enqueued_ms = now;
            }
            drop(guards);
            return Ok((queues, id));
        }
    }

    /// Returns once every write made so far is as durable as the sync mode promises.
    pub async fn sync(&self) -> Result<(), Error> {
        self.shared.durability.wait().await
    }
}

/// A write not yet known to be durable; readers see it once this is dropped, which must happen
/// after [`Store::sync`] (or when giving up: it is served then rather than held forever).
#[must_use = "a pending write stays invisible to readers until it is dropped"]
#[derive(Debug)]
pub struct Pending {
    /// Empty when the sync mode does not wait: the item was visible at once.
    queues: Vec<Arc<Queue>>,
    id: u64,
}

impl Drop for Pending {
    fn drop(&mut self) {
        for queue in &self.queues {
            show(queue, self.id);
        }
    }
}

/// Shows item `id` of `queue` to readers, and wakes as many as can now read (none while an
/// older write is still hidden: they are woken when it shows).
fn show(queue: &Queue, id: u64) {
    let readable = queue.lock().synced(id);
    if readable > 0 {
        queue.notify(readable);
    }
}
