//! Compaction: giving disk space back that the segments cannot.
//!
//! A segment file is deleted once none of its packs is in use, so a drained queue gives its
//! disk back by itself. A segment pinned by a few live packs among dead ones (an item nobody
//! takes, a long open read) is not; nor is the space sled's own files grew to. So when the
//! directory is many times the size of the live data, the live data is copied into a fresh
//! database and the server switches to it, through the crash-safe switch of [`generation`].
//!
//! Copying holds every queue's lock, so the server pauses while it runs; it only runs when
//! the live data is small ([`MAX_LIVE_BYTES`]), which keeps the pause short.

use super::disk::{self, generation};
use super::{Error, Store};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// How often the watcher compares disk and live sizes.
const CHECK_EVERY: Duration = Duration::from_secs(10);
/// Disk use below this never triggers a compaction.
const SLACK_BYTES: u64 = 64 * 1024 * 1024;
/// Compact only when the disk holds more than this many times the live payload.
const RATIO: u64 = 4;
/// Never copy more live data than this in one pause.
const MAX_LIVE_BYTES: u64 = 64 * 1024 * 1024;

/// Sizes right after the last compaction.
#[derive(Default)]
struct Last {
    disk: u64,
    live: u64,
}

/// Starts the thread that compacts when it is worth it; it ends with the store.
pub(crate) fn start_watching(store: &Store) {
    let shared = Arc::downgrade(&store.shared);
    let spawned = thread::Builder::new()
        .name("tern-compact".into())
        .spawn(move || {
            // Disk use and live data right after the last compaction: copying again only
            // helps once the disk has grown past that or the live data has shrunk well below.
            let mut last = Last::default();
            loop {
                thread::sleep(CHECK_EVERY);
                let store = match shared.upgrade() {
                    Some(shared) => Store { shared },
                    None => return,
                };
                if let Err(e) = store.compact_if_worth_it(&mut last) {
                    log::error!(
                        "compaction failed (the current database stays in use): {}",
                        e
                    );
                }
            }
        });
    if let Err(e) = spawned {
        log::error!("cannot start the compaction thread: {}", e);
    }
}

impl Store {
    fn compact_if_worth_it(&self, last: &mut Last) -> Result<(), Error> {
        // Not `stats()`: every 10 s over every queue, that pass (heads, ages, cursors) left
        // megabytes behind with 10 000 queues (benches/README.md, target 9).
        let live: u64 = self
            .queues()
            .iter()
            .map(|queue| queue.lock().live_bytes())
            .sum();
        let disk = self.disk().compactable_bytes();
        let wasteful = disk > SLACK_BYTES + RATIO * live && live <= MAX_LIVE_BYTES;
        let changed = disk > last.disk + SLACK_BYTES || live < last.live / 2;
        if wasteful && changed {
            self.compact()?;
            *last = Last {
                disk: self.disk().compactable_bytes(),
                live,
            };
        }
        Ok(())
    }

    /// Copies the live data into a fresh database and switches to it. Public for operators
    /// (the server runs it on SIGUSR1), tests and tools; the watcher thread runs it when
    /// the disk holds far more than the live data.
    pub fn compact(&self) -> Result<(), Error> {
        let started = Instant::now();
        // Stop the world: no queue can be created, read or written meanwhile.
        let registry = self.write_registry();
        let mut states: Vec<_> = registry
            .iter()
            .map(|(name, queue)| (name, queue.lock()))
            .collect();
        let old = self.disk();
        let before = disk::directory_size(old.dir());
        let next = generation::Next::after(old.dir())?;
        let config = &self.shared.config;
        let prepared = (|| {
            let new = old.copy_into(&next, config.cache_bytes, config.sled_flushes())?;
            if config.keeps_spare_ready() {
                new.keep_spare_ready();
            }
            let reopened: Vec<_> = states
                .iter()
                .map(|(name, state)| state.reopen(&new, name))
                .collect::<Result<_, _>>()?;
            let syncer = new.syncer()?;
            Ok::<_, Error>((new, reopened, syncer))
        })();
        let (new, reopened, syncer) = match prepared {
            Ok(prepared) => prepared,
            Err(e) => {
                next.abandon();
                return Err(e);
            }
        };
        // Left behind if this fails, the copy is removed at the next start.
        next.commit()?;
        // Past the point of no return: only infallible steps from here.
        for ((_, state), reopened) in states.iter_mut().zip(reopened) {
            state.install(reopened);
        }
        self.shared.durability.switch(syncer);
        let new = Arc::new(new);
        *self.shared.disk.write().unwrap_or_else(|e| e.into_inner()) = new.clone();
        drop(states);
        drop(registry);
        let old_dir = old.dir().to_path_buf();
        drop(old);
        generation::remove(&old_dir);
        log::info!(
            "compacted the data directory from {} to {} bytes in {:?}",
            before,
            disk::directory_size(new.dir()),
            started.elapsed()
        );
        Ok(())
    }
}
