//! How to open the store: data directory, cache, sync mode, limits and timers, clock. Defaults live here once;
//! the command line shows the same values.

use super::{Clock, SyncMode};
use std::collections::HashMap;
use std::path::PathBuf;

/// sled's page cache unless told otherwise, in MiB (text, as the command line shows it). sled
/// holds only the index, read once per pack; its cache costs several times what it is set to
/// (16 MiB of it held about 20 MiB more after a fill than 1 MiB did: benches/README.md).
pub const DEFAULT_CACHE_MB: &str = "1";
/// Free space kept in reserve on the data directory's filesystem unless told otherwise, in
/// MiB (text, as the command line shows it).
pub const DEFAULT_MIN_FREE_MB: &str = "64";

/// Bytes in `mib` MiB, where `mib` is one of the decimal defaults above.
const fn mib(mib: &str) -> u64 {
    let digits = mib.as_bytes();
    let mut value = 0;
    let mut i = 0;
    while i < digits.len() {
        value = value * 10 + (digits[i] - b'0') as u64;
        i += 1;
    }
    value * 1024 * 1024
}

/// How to open the store.
#[derive(Debug, Clone)]
pub struct Config {
    /// The data directory (created if missing).
    pub path: PathBuf,
    /// sled's page cache, in bytes.
    pub cache_bytes: u64,
    pub sync: SyncMode,
    /// Limits of every queue without its own entry in `queue_limits`.
    pub limits: Limits,
    pub queue_limits: HashMap<String, Limits>,
    /// New items are refused while the filesystem has less free space than this (0: never).
    pub min_free_bytes: u64,
    /// Where the store reads the time (the system clock but in tests).
    pub clock: Clock,
    /// Run by the commit thread once it has nothing left to do (a sync period without writes):
    /// it built the commits' blocks, and the allocator keeps their pages until told.
    pub release_memory: Option<fn()>,
}

impl Config {
    /// The limits of queue `name`: its own entry, or the server-wide ones.
    pub fn limits_of(&self, name: &str) -> Limits {
        self.queue_limits.get(name).copied().unwrap_or(self.limits)
    }

    /// Defaults: [`DEFAULT_CACHE_MB`], `--sync always`, no limits, [`DEFAULT_MIN_FREE_MB`].
    pub fn new(path: impl Into<PathBuf>) -> Config {
        Config {
            path: path.into(),
            cache_bytes: mib(DEFAULT_CACHE_MB),
            sync: SyncMode::Always,
            limits: Limits::default(),
            queue_limits: HashMap::new(),
            min_free_bytes: mib(DEFAULT_MIN_FREE_MB),
            clock: Clock::System,
            release_memory: None,
        }
    }

    /// Whether sled should flush by itself: only under `--sync never`, whose ticker skips idle
    /// spells. Under `always` the commit thread checkpoints within 200 ms of any change, a
    /// moved cursor included; under `<N>ms` the sync thread flushes every period. Memory
    /// sled's flusher thread uses is never given back: it kept about 4 MiB after 10 000 queues
    /// were made (benches/README.md, target 9), where the commit thread hands its pages back.
    pub(crate) fn sled_flushes(&self) -> bool {
        matches!(self.sync, SyncMode::Never)
    }

    /// Whether to keep a segment made ahead ready (see `disk::segments`): where every commit
    /// syncs, a sync that overwrites zeros costs about half one that appends.
    pub(crate) fn keeps_spare_ready(&self) -> bool {
        matches!(self.sync, SyncMode::Always)
    }
}

/// How full one queue may get; `None`: no limit. Items held open count too, as they are
/// still stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    pub max_items: Option<u64>,
    pub max_bytes: Option<u64>,
    /// When full, drop the oldest waiting items instead of refusing new ones.
    pub discard_old: bool,
    /// An open read held longer than this many ms is given back as if aborted (0: never).
    pub open_timeout_ms: u64,
    /// Items older than this many ms expire as if their exptime had passed (0: never).
    pub max_age_ms: u64,
}
