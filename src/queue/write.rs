//! The write path: reserve an id under the queues' locks, append outside them, then show the
//! item to readers once it is as durable as the sync mode promises.
//!
//! Reserving under the lock and hiding the id until [`Pending`] is dropped is what keeps a
//! cursor from passing an item that is not stored yet; appending outside the lock keeps the
//! producers of one queue from waiting on each other's storage call.

use super::disk::{ItemLog, Record};
use super::handle::Queue;
use super::{Error, Store};
use std::sync::atomic::Ordering;
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
        let len = data.len() as u64;
        let Reserved {
            queues,
            id,
            logs,
            enqueued_ms,
        } = self.reserve(&names, len)?;
        let record = Record::new(flags, expires_ms, enqueued_ms, data);
        let appended = {
            let _inserting = Inserting(&queues);
            ItemLog::append_to_all(&logs, id, &record)
        };
        if let Err(e) = appended {
            for queue in &queues {
                let readable = queue.lock().unreserve(id, len);
                if readable > 0 {
                    queue.notify(readable);
                }
            }
            return Err(e);
        }
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

    /// Takes an id for a new item of `len` bytes in every named queue (sorted, distinct),
    /// hidden from readers and counted as in flight: all or none, if they all have room.
    /// The enqueue time is read under the locks too, and never goes back within a queue, so
    /// that times grow with ids (what a seek relies on).
    fn reserve(&self, names: &[&str], len: u64) -> Result<Reserved, Error> {
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
            for guard in &mut guards {
                guard.reserve(id, len);
                guard.last_enqueued_ms = now;
            }
            let logs = guards.iter().map(|guard| guard.log.clone()).collect();
            for queue in &queues {
                queue.inserting.fetch_add(1, Ordering::Relaxed);
            }
            drop(guards);
            return Ok(Reserved {
                queues,
                id,
                logs,
                enqueued_ms: now,
            });
        }
    }

    /// Returns once every write made so far is as durable as the sync mode promises.
    pub async fn sync(&self) -> Result<(), Error> {
        self.shared.durability.wait().await
    }
}

/// An id taken in some queues, and where to append its item.
struct Reserved {
    queues: Vec<Arc<Queue>>,
    id: u64,
    logs: Vec<ItemLog>,
    enqueued_ms: u64,
}

/// Marks inserts in flight on these queues until dropped; see [`Queue::lock_settled`].
struct Inserting<'a>(&'a [Arc<Queue>]);

impl Drop for Inserting<'_> {
    fn drop(&mut self) {
        for queue in self.0 {
            queue.inserting.fetch_sub(1, Ordering::Release);
        }
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
