//! Replay: `/rewind` moves a cursor back to the oldest item still in the queue, `/seek=<ms>`
//! to the oldest item stored at or after a time. Both are durable once answered and leave the
//! cursor's open and failed reads as they are.
//!
//! A seek never scans: ids grow with time within a queue (an item's enqueue time is read
//! under the queue's lock, with its id), so it binary-searches the id space, each probe one
//! ordered lookup of the first item at or after an id: at most 64 probes, about log2 of the
//! queue's id span in practice, whatever the depth. It never lands past an item not yet
//! visible (an insert in flight), so it cannot skip one. How many items are left after a
//! seek is counted only when `stats` or a graceful stop asks, which is what keeps it fast.

use super::disk::ItemLog;
use super::state::QueueState;
use super::{Error, Store};

/// Where a replay moves a cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    /// Back to the oldest item still in the queue, where a new cursor starts.
    Rewind,
    /// To the oldest item stored at or after this unix time in ms; the tail if none.
    Seek(u64),
}

impl Store {
    /// Moves cursor `cursor` of `queue` (created if new) as `replay` says; returns once the
    /// move is as durable as the sync mode promises.
    pub async fn replay(&self, queue: &str, cursor: &str, replay: Replay) -> Result<(), Error> {
        loop {
            let handle = self.queue(queue)?;
            let mut state = handle.lock();
            if state.deleted {
                continue;
            }
            if !state.has_cursor(cursor) {
                state.add_cursor(cursor, self.disk().cursor_log(queue, cursor)?)?;
            }
            state.replay(cursor, replay)?;
            break;
        }
        self.shared.durability.written().await
    }
}

impl QueueState {
    /// Moves cursor `name` (which exists) as `replay` says.
    pub(crate) fn replay(&mut self, name: &str, replay: Replay) -> Result<(), Error> {
        let (position, remaining) = match replay {
            Replay::Rewind => (0, Some(self.stored_items())),
            Replay::Seek(ms) => (seek(&self.log, ms)?.min(self.visible_end()), None),
        };
        match self.cursor_mut(name) {
            Some(cursor) => cursor.move_to(position, remaining),
            None => Ok(()),
        }
    }
}

/// The smallest id stored at or after `ms`, or the id after the last one.
fn seek(log: &ItemLog, ms: u64) -> Result<u64, Error> {
    let tail = log.last_id()?.map_or(0, |id| id + 1);
    let mut best = tail;
    // Ids stored in `lo..hi` are the candidates; every one below `lo` is older than `ms`.
    let (mut lo, mut hi) = (0, tail);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match log.range(mid, hi).next().transpose()? {
            None => hi = mid,
            Some((id, record)) if record.enqueued_ms() >= ms => {
                best = id;
                hi = mid;
            }
            Some((id, _)) => lo = id + 1,
        }
    }
    Ok(best)
}
