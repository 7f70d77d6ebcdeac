//! The commands a client can send, already validated: names are legal, options are a legal
//! combination, numbers are in range.

use super::meta::{MetaDelete, MetaGet, MetaSet};
use super::Error;

/// One parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `set <queue>[+<queue>…] <flags> <exptime> <bytes> [noreply]` + data block.
    Set(Set),
    /// `get <key> [<key>…]` (also `gets`).
    Get(Get),
    /// `delete <queue>[.<cursor>] [noreply]`.
    Delete { target: Target, noreply: bool },
    /// `flush <queue>[.<cursor>] [noreply]`.
    Flush { target: Target, noreply: bool },
    /// `flush_all [delay] [noreply]`; the delay is accepted and ignored.
    FlushAll { noreply: bool },
    /// `version`.
    Version,
    /// `stats`.
    Stats,
    /// `dump_stats`: the per-queue figures of `stats` in Kestrel's format.
    DumpStats,
    /// `quit`.
    Quit,
    /// `shutdown`.
    Shutdown,
    /// `ms <key> <datalen> <flag>*` + data block: a `set` in meta syntax.
    MetaSet(MetaSet),
    /// `mg <key> <flag>*`: a `get` of one key in meta syntax.
    MetaGet(MetaGet),
    /// `md <key> <flag>*`: a `delete` in meta syntax.
    MetaDelete(MetaDelete),
    /// `mn`: marks the end of a batch of quiet meta commands.
    MetaNoop,
}

/// A `set`: one item for one or more queues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Set {
    /// Target queues, duplicates removed, in the order first listed; never empty.
    pub queues: Vec<String>,
    /// Opaque client flags, returned by `get`.
    pub flags: u32,
    /// memcached's rule: 0 never, ≤ 30 days relative seconds, larger absolute unix time,
    /// negative already expired.
    pub exptime: i64,
    pub data: Vec<u8>,
    pub noreply: bool,
}

/// A `get` of one or more keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Get {
    /// The keys that parsed, left to right; a key repeated verbatim appears once.
    pub keys: Vec<Key>,
    /// The error of the first key that did not parse: it is sent after the replies of `keys`,
    /// instead of `END`.
    pub error: Option<Error>,
}

/// One key of a `get`: `<queue>[.<cursor>][/<option>…]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    /// The key exactly as the client sent it, echoed in `VALUE` lines.
    pub raw: Vec<u8>,
    pub target: Target,
    pub options: GetOptions,
}

/// What a command reads or administers: a queue, or one cursor of it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Target {
    pub queue: String,
    pub cursor: Option<String>,
}

/// The options of one `get` key; only legal combinations are ever built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GetOptions {
    /// `/t=<ms>`: wait up to this long for an item.
    pub timeout_ms: Option<u64>,
    pub open: bool,
    pub close: bool,
    pub abort: bool,
    pub peek: bool,
    /// `/rewind` or `/seek=<unix-ms>`: only on a cursor, and alone.
    pub replay: Option<Replay>,
}

/// Where `/rewind` and `/seek=` move a cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    /// Back to the oldest item still in the queue.
    Rewind,
    /// To the oldest item stored at or after this unix time in ms (the tail if none).
    Seek(u64),
}

impl Set {
    /// When the item expires, in unix milliseconds, by memcached's rule; `None`: never.
    pub fn expires_at_ms(&self, now_ms: u64) -> Option<u64> {
        /// Up to 30 days, `exptime` counts seconds from now; beyond, it is a unix time.
        const MAX_RELATIVE_SECONDS: i64 = 30 * 24 * 60 * 60;
        let seconds = self.exptime;
        match seconds {
            0 => None,
            _ if seconds < 0 => Some(0),
            _ if seconds <= MAX_RELATIVE_SECONDS => {
                Some(now_ms.saturating_add(seconds as u64 * 1000))
            }
            _ => Some((seconds as u64).saturating_mul(1000)),
        }
    }
}
