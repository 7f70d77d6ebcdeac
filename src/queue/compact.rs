//! Compaction: giving disk space back after queues drain.
//!
//! sled reuses freed space but its file rarely shrinks: after a deep queue drains, the data
//! directory stays at its peak size. So when the directory is many times the size of the
//! live data, the live data is copied into a fresh database and the server switches to it.
//! The switch is crash-safe: databases live in `<data>/store-<n>/`, and `<data>/CURRENT` names
//! the one in use. The new database is complete and synced before `CURRENT` is replaced (by an
//! atomic rename); at start-up, any other `store-*` directory is an unfinished or superseded
//! copy and is removed.
//!
//! Copying holds every queue's lock, so the server pauses while it runs; it only runs when
//! the live data is small ([`MAX_LIVE_BYTES`]), which keeps the pause short.

use super::state::Reopened;
use super::{directory_size, Backend, Error, Store, ID_BASE};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

const CURRENT: &str = "CURRENT";
const PREFIX: &str = "store-";
/// How often the watcher compares disk and live sizes.
const CHECK_EVERY: Duration = Duration::from_secs(10);
/// Disk use below this never triggers a compaction.
const SLACK_BYTES: u64 = 64 * 1024 * 1024;
/// Compact only when the disk holds more than this many times the live payload.
const RATIO: u64 = 4;
/// Never copy more live data than this in one pause.
const MAX_LIVE_BYTES: u64 = 64 * 1024 * 1024;
/// sled's own tree, which holds nothing of ours.
const SLED_DEFAULT_TREE: &[u8] = b"__sled__default";

/// Sizes right after the last compaction.
#[derive(Default)]
struct Last {
    disk: u64,
    live: u64,
}

/// The database directory `CURRENT` names (a fresh one if none), with leftovers removed.
pub(crate) fn current_dir(data: &Path) -> Result<PathBuf, Error> {
    let name = match fs::read_to_string(data.join(CURRENT)) {
        Ok(text) => text.trim().to_string(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let name = format!("{PREFIX}1");
            write_current(data, &name)?;
            name
        }
        Err(e) => return Err(e.into()),
    };
    if generation(&name).is_none() {
        let message = format!(
            "{} names no database: {name:?}",
            data.join(CURRENT).display()
        );
        return Err(Error::Io(std::io::Error::other(message)));
    }
    for entry in fs::read_dir(data)? {
        let entry_name = entry?.file_name();
        let entry_name = entry_name.to_string_lossy();
        if generation(&entry_name).is_some() && entry_name != name {
            log::info!("removing {entry_name}, left over from an interrupted compaction");
            fs::remove_dir_all(data.join(entry_name.as_ref()))?;
        }
    }
    Ok(data.join(name))
}

fn generation(name: &str) -> Option<u64> {
    name.strip_prefix(PREFIX)?.parse().ok()
}

/// Points `CURRENT` at `name`, atomically and durably.
fn write_current(data: &Path, name: &str) -> Result<(), Error> {
    let temporary = data.join("CURRENT.tmp");
    fs::write(&temporary, format!("{name}\n"))?;
    File::open(&temporary)?.sync_all()?;
    fs::rename(&temporary, data.join(CURRENT))?;
    File::open(data)?.sync_all()?;
    Ok(())
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
        let live: u64 = self.stats().iter().map(|queue| queue.bytes).sum();
        let dir = self.backend().dir.clone();
        let disk = directory_size(&dir);
        let wasteful = disk > SLACK_BYTES + RATIO * live && live <= MAX_LIVE_BYTES;
        let changed = disk > last.disk + SLACK_BYTES || live < last.live / 2;
        if wasteful && changed {
            self.compact()?;
            *last = Last {
                disk: directory_size(&self.backend().dir),
                live,
            };
        }
        Ok(())
    }

    /// Copies every tree into a fresh database and switches to it. Public for tests and
    /// tools; the server runs it from the watcher thread.
    pub fn compact(&self) -> Result<(), Error> {
        let started = Instant::now();
        let data = self.shared.config.path.clone();
        // Stop the world: no queue can be created, read or written meanwhile.
        let registry = self.write_registry();
        let mut states: Vec<_> = registry
            .iter()
            .map(|(name, queue)| (name, queue.lock_settled()))
            .collect();
        let old = self.backend();
        let before = directory_size(&old.dir);
        let next =
            generation(&old.dir.file_name().unwrap_or_default().to_string_lossy()).unwrap_or(0) + 1;
        let name = format!("{PREFIX}{next}");
        let dir = data.join(&name);
        if dir.exists() {
            fs::remove_dir_all(&dir)?;
        }
        let prepared = (|| {
            let mut new = Backend::open(dir.clone(), &self.shared.config)?;
            for tree in old.db.tree_names() {
                if tree != SLED_DEFAULT_TREE {
                    copy_tree(&old.db.open_tree(&tree)?, &new.db.open_tree(&tree)?)?;
                }
            }
            // Ids continue above every id the old database gave out.
            new.id_base = old.next_id()? + 1;
            new.meta.insert(ID_BASE, &new.id_base.to_be_bytes()[..])?;
            let reopened: Vec<Reopened> = states
                .iter()
                .map(|(name, state)| state.reopen(&new.db, name))
                .collect::<Result<_, _>>()?;
            let files = self.shared.durability.prepare(&new.dir)?;
            new.db.flush()?;
            sync_directory(&new.dir)?;
            Ok::<_, Error>((new, reopened, files))
        })();
        let (new, reopened, files) = match prepared {
            Ok(prepared) => prepared,
            Err(e) => {
                let _ = fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        write_current(&data, &name)?;
        // Past the point of no return: only infallible steps from here.
        for ((_, state), reopened) in states.iter_mut().zip(reopened) {
            state.install(reopened);
        }
        self.shared.durability.switch(new.db.clone(), files);
        let new = Arc::new(new);
        *self
            .shared
            .backend
            .write()
            .unwrap_or_else(|e| e.into_inner()) = new.clone();
        drop(states);
        drop(registry);
        let old_dir = old.dir.clone();
        drop(old);
        if let Err(e) = fs::remove_dir_all(&old_dir) {
            log::warn!("cannot remove {}: {}", old_dir.display(), e);
        }
        log::info!(
            "compacted the data directory from {} to {} bytes in {:?}",
            before,
            directory_size(&new.dir),
            started.elapsed()
        );
        Ok(())
    }
}

/// Copies every entry of `from` into `to`, in bounded batches.
fn copy_tree(from: &sled::Tree, to: &sled::Tree) -> Result<(), Error> {
    let mut batch = sled::Batch::default();
    let mut pending = 0;
    for entry in from.iter() {
        let (key, value) = entry?;
        batch.insert(key, value);
        pending += 1;
        if pending == 1024 {
            to.apply_batch(std::mem::take(&mut batch))?;
            pending = 0;
        }
    }
    to.apply_batch(batch)?;
    Ok(())
}

/// fsyncs every file under `dir`, and the directories themselves.
fn sync_directory(dir: &Path) -> Result<(), Error> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            sync_directory(&entry.path())?;
        } else {
            File::open(entry.path())?.sync_all()?;
        }
    }
    File::open(dir)?.sync_all()?;
    Ok(())
}
