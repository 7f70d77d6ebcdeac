//! Closing, aborting and timing out one queue's open reads, plain and cursor: a read is
//! given back or confirmed only by the open read that holds it (matched by its serial), so
//! a late close from a holder whose read timed out never touches the item's next holder.

use super::{CursorState, Error, GiveBack, QueueState};
use crate::queue::timeout::Hold;

/// What a lease refers to, so it can be closed or aborted later.
#[derive(Debug, Clone)]
pub(crate) enum Held {
    Plain {
        len: u64,
        hold: Hold,
    },
    Cursor {
        name: String,
        generation: u64,
        hold: Hold,
    },
}

impl Held {
    pub(crate) fn hold(&self) -> Hold {
        match self {
            Held::Plain { hold, .. } | Held::Cursor { hold, .. } => *hold,
        }
    }
}

impl QueueState {
    /// Confirms a read: the item is gone for good.
    pub(crate) fn close(&mut self, held: &Held, id: u64) -> Result<(), Error> {
        if self.deleted {
            return Ok(());
        }
        match held {
            Held::Plain { len, hold } => {
                if self.holds_plain(id, hold) {
                    self.log.remove(id)?;
                    self.open.remove(&id);
                    self.removed(id, *len, true);
                    self.tally.dequeued += 1;
                }
            }
            Held::Cursor {
                name,
                generation,
                hold,
            } => {
                if let Some(cursor) = self.cursor_of(name, *generation) {
                    cursor.close(id, hold.serial)?;
                }
            }
        }
        self.deadlines.remove(held);
        Ok(())
    }

    /// Cancels a read: a plain item goes back to the head, a cursor's to its failed reads.
    /// Counted under `reason` if it was still held. Returns how many plain readers to wake.
    pub(crate) fn abort(&mut self, held: &Held, id: u64, reason: GiveBack) -> usize {
        self.deadlines.remove(held);
        let given_back = self.give_back(held, id);
        if given_back.is_some() {
            self.tally.given_back(reason);
        }
        usize::from(given_back == Some(true))
    }

    /// Gives back every open read due at `now` (see `timeout`), counting them. Returns how
    /// many plain readers to wake, and how many reads were given back.
    pub(crate) fn time_out(&mut self, now: u64) -> (usize, u64) {
        let (mut wake, mut given_back) = (0, 0);
        for (held, id) in self.deadlines.take_due(now) {
            if let Some(plain) = self.give_back(&held, id) {
                given_back += 1;
                wake += usize::from(plain);
            }
        }
        self.tally.timed_out += given_back;
        (wake, given_back)
    }

    /// An open read goes back: `Some(true)` to the queue's head, `Some(false)` to its
    /// cursor's failed reads, `None` if it was no longer held (closed, timed out, deleted).
    fn give_back(&mut self, held: &Held, id: u64) -> Option<bool> {
        if self.deleted {
            return None;
        }
        match held {
            Held::Plain { len, hold } => {
                if !self.holds_plain(id, hold) {
                    return None;
                }
                self.open.remove(&id);
                self.items += 1;
                self.bytes += len;
                self.head_hint = self.head_hint.min(id);
                self.head.forget();
                Some(true)
            }
            Held::Cursor {
                name,
                generation,
                hold,
            } => {
                let cursor = self.cursor_of(name, *generation)?;
                cursor.abort(id, hold.serial).then_some(false)
            }
        }
    }

    /// Whether this very open read (not a later one of the same item) still holds `id`.
    fn holds_plain(&self, id: u64, hold: &Hold) -> bool {
        self.open
            .get(&id)
            .is_some_and(|&(_, serial)| serial == hold.serial)
    }

    /// Whether the read `held` is over for its holder: its queue or cursor was deleted, or
    /// it timed out.
    pub(crate) fn is_stale(&mut self, held: &Held, id: u64) -> bool {
        self.deleted
            || match held {
                Held::Plain { hold, .. } => !self.holds_plain(id, hold),
                Held::Cursor {
                    name,
                    generation,
                    hold,
                } => !self
                    .cursor_of(name, *generation)
                    .is_some_and(|cursor| cursor.holds(id, hold.serial)),
            }
    }

    pub(crate) fn cursor_mut(&mut self, name: &str) -> Option<&mut CursorState> {
        self.cursors.get_mut(name)
    }

    fn cursor_of(&mut self, name: &str, generation: u64) -> Option<&mut CursorState> {
        self.cursors
            .get_mut(name)
            .filter(|cursor| cursor.generation == generation)
    }
}
