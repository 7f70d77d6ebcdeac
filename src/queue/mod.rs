//! The durable queues: items, open reads, cursors, waiting readers, per-queue counters.
//!
//! Knows nothing of sockets or the wire. Layers, each depending only on those below it:
//! - [`Store`] (`store`, `write`, `wait`, `compact`, `replay`, `timeout`): the registry of
//!   queues and the operations clients ask for, cursor rewinds and seeks, open timeouts and
//!   max age; [`Lease`] and [`Pending`] hold reads and writes in progress; [`Clock`] is the
//!   time all of them read (a test's own in tests);
//! - `handle` and `state`, `cursor`, `head`: one queue's in-memory state (what is waiting,
//!   hidden, held open, where each cursor stands), which decides what a read returns;
//! - `durability`, `sharing` and `space`: when writes reach the disk, how its thread shares a
//!   core, and the low-disk guard;
//! - `disk`: the on-disk layout, the only module that names `sled`; the rest asks it for
//!   items by id.
//!
//! Promises: an item is in exactly one state (waiting, held open by one reader, or gone);
//! a plain open read is just an id the queue skips, so after a crash it is simply waiting
//! again; an open cursor read is a copy in the cursor's failed reads, stored together with
//! the cursor's move.

mod clock;
mod compact;
mod config;
mod cursor;
mod disk;
mod dump;
mod durability;
mod error;
mod handle;
mod head;
mod hidden;
mod item;
mod lease;
mod replay;
mod sharing;
mod space;
mod state;
mod stats;
mod store;
mod timeout;
mod wait;
mod write;

pub use clock::{now_ms, Clock};
pub use config::{Config, Limits, DEFAULT_CACHE_MB, DEFAULT_MIN_FREE_MB};
pub use dump::{export, import, Summary};
pub use durability::{CommitMetrics, SyncMode};
pub use error::{Error, StorageError};
pub use item::Item;
pub use lease::Lease;
pub use replay::Replay;
pub use stats::{CursorStats, QueueStats};
pub use store::Store;
pub use write::Pending;

/// What a read does to the item it finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadMode {
    /// Remove it (plain) or move past it (cursor).
    Take,
    /// Leave everything as it is.
    Peek,
    /// Hold it open for this reader until the [`Lease`] is closed or aborted.
    Open,
}
