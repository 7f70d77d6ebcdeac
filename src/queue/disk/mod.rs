//! The on-disk layout: the only place that names `sled`. Everything else in `queue` asks it
//! for items by id and knows nothing of packs, segments, trees or keys.
//!
//! Format 2, in `<data>/store-<n>/` (see [`generation`]): items are packed several to a
//! frame in append-only segment files (`segments/`, see [`segments`] and [`pack`]), written
//! by the commit ([`engine`]); one sled `Db` beside them keeps only what is small: the
//! `index` tree (which queues exist, where each pack is, each queue's counters and removed
//! ranges, see [`index`]), a tree per cursor for its failed reads (`f.<queue>.<cursor>`, see
//! [`failed`]), and a `meta` tree with the format version, the id base, cursor positions
//! (`c.<queue>.<cursor>` → next id to read) and the clean-shutdown [`snapshot`]. sled's log
//! thus stays small, which keeps start-up short and memory flat at any depth.
//!
//! Ids come from sled's `generate_id` plus a base: monotonic across restarts, crashes and
//! database switches, never reused, so a cursor stays right after its queue drains. A
//! directory of format 1 (a sled tree per queue, an item per key) is migrated on start
//! ([`v1`]).

mod engine;
mod failed;
pub(crate) mod generation;
mod index;
mod kept;
mod log;
mod names;
mod pack;
mod packs;
mod plan;
mod ranges;
mod record;
mod recover;
mod replay;
mod segments;
pub(crate) mod snapshot;
mod sync;
mod uses;
mod v1;

pub(crate) use self::failed::CursorLog;
pub(crate) use self::log::ItemLog;
pub(crate) use record::Record;
pub(crate) use snapshot::Counts;
pub(crate) use sync::Syncer;

use super::Error;
use engine::{Depth, Engine};
use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Items in id order, as an export reads them.
pub(crate) type ItemIter = Box<dyn Iterator<Item = Result<(u64, Record), Error>>>;

/// One queue as an export reads it: its items, and its cursors (name, position, failed reads).
pub(crate) struct Exported {
    pub(crate) name: String,
    pub(crate) items: ItemIter,
    pub(crate) cursors: Vec<(String, u64, ItemIter)>,
}

/// Everything in the data directory `data`, for an export: read as it is, a directory of
/// format 1 included (an export changes no data).
pub(crate) fn exported(data: &Path, cache_bytes: u64) -> Result<Vec<Exported>, Error> {
    let dir = generation::current(data)?;
    let disk = match Disk::open(dir.clone(), cache_bytes, true) {
        Err(Error::Format { found: 1, .. }) => return v1::exported(&dir, cache_bytes),
        opened => opened?,
    };
    let queues = disk.queues()?.into_iter().map(|queue| {
        let cursors = queue.cursors.into_iter().map(|cursor| {
            let failed: ItemIter = Box::new(cursor.log.failed.iter());
            (cursor.name, cursor.position, failed)
        });
        Exported {
            name: queue.name,
            items: Box::new(queue.log.iter()),
            cursors: cursors.collect(),
        }
    });
    Ok(queues.collect())
}

/// The on-disk format this build reads and writes.
pub(crate) const FORMAT_VERSION: u64 = 2;

/// A failure inside the storage engine.
#[derive(Debug)]
pub struct StorageError(sled::Error);

impl std::fmt::Display for StorageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for StorageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl From<sled::Error> for Error {
    fn from(error: sled::Error) -> Error {
        match error {
            sled::Error::Corruption { .. } => Error::Corrupt(error.to_string()),
            error => Error::Storage(StorageError(error)),
        }
    }
}

impl From<sled::transaction::TransactionError<()>> for Error {
    fn from(error: sled::transaction::TransactionError<()>) -> Error {
        match error {
            sled::transaction::TransactionError::Storage(e) => e.into(),
            // tern's transactions never abort themselves.
            sled::transaction::TransactionError::Abort(()) => Error::Storage(StorageError(
                sled::Error::ReportableBug("transaction aborted".into()),
            )),
        }
    }
}

/// One database: `<data>/store-<n>/`.
pub(crate) struct Disk {
    db: sled::Db,
    meta: sled::Tree,
    dir: PathBuf,
    /// Added to sled's generated ids: a new database's counter starts again at 0, and ids
    /// must never go back.
    id_base: u64,
    engine: Arc<Engine>,
}

impl Disk {
    /// Opens the database in use under the data directory `data` (a fresh one if none),
    /// migrating it first if an earlier build wrote it in format 1.
    pub(crate) fn open_current(
        data: &Path,
        cache_bytes: u64,
        sled_flushes: bool,
    ) -> Result<Disk, Error> {
        let dir = generation::current(data)?;
        match Disk::open(dir.clone(), cache_bytes, sled_flushes) {
            Err(Error::Format { found: 1, .. }) => {
                let migrated = v1::migrate(&dir, cache_bytes)?;
                Disk::open(migrated, cache_bytes, sled_flushes)
            }
            opened => opened,
        }
    }

    /// Opens (or creates) the database in `dir`. `cache_bytes`: sled's page cache.
    /// `sled_flushes`: whether sled flushes by itself every 500 ms (also bounds how much read
    /// progress a crash can undo); off where the caller flushes periodically anyway.
    pub(crate) fn open(dir: PathBuf, cache_bytes: u64, sled_flushes: bool) -> Result<Disk, Error> {
        let db = sled::Config::new()
            .path(&dir)
            .cache_capacity(cache_bytes)
            .flush_every_ms(sled_flushes.then_some(500))
            .open()?;
        let meta = db.open_tree("meta")?;
        check_format(&db, &meta, &dir)?;
        let id_base = meta
            .get(names::ID_BASE)?
            .map_or(0, |base| record::id_of(&base));
        let index = db.open_tree("index")?;
        let segments = segments::Segments::open(&dir)?;
        let mut sled_sync = sync::SledSync::open(db.clone(), &dir)?;
        let replayed = replay::replay(&index, &segments)?;
        if replayed > 0 {
            ::log::info!("recovered {replayed} commits past the index's last checkpoint");
            sled_sync.sync()?;
        }
        // Counts the last checkpoint saved are valid for this start only: taken out durably
        // before anything changes, and used only if nothing was replayed since.
        let saved = uses::take_saved(&index)?;
        if saved.is_some() {
            sled_sync.sync()?;
        }
        let live = match saved {
            Some(saved) if replayed == 0 => saved,
            _ => uses::count_live(&index)?,
        };
        segments.remove_unused(|segment| live.contains_key(&segment))?;
        let named: HashSet<u64> = index::queue_numbers(&index)?;
        let mut deleted = Vec::new();
        let mut highest = named.iter().copied().max().unwrap_or(0);
        for key in index.scan_prefix(index::RECORD_PREFIX).keys() {
            let number = index::number_in(&key?, 1);
            highest = highest.max(number);
            if !named.contains(&number) {
                deleted.push(number);
            }
        }
        let engine = Arc::new(Engine::new(
            index,
            segments,
            sled_sync,
            live,
            deleted,
            highest + 1,
        ));
        Ok(Disk {
            db,
            meta,
            dir,
            id_base,
            engine,
        })
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Bytes compaction could give back: the directory but the segment being written and
    /// the one made ahead, which no compaction makes smaller.
    pub(crate) fn compactable_bytes(&self) -> u64 {
        directory_size(&self.dir).saturating_sub(self.engine.segments.working_bytes())
    }

    /// Keeps a segment made ahead ready from the next write on (see `segments`): for a
    /// server whose every commit syncs.
    pub(crate) fn keep_spare_ready(&self) {
        self.engine.segments.keep_spare_ready();
    }

    /// The next item id: unique and increasing, across restarts, crashes and switches.
    pub(crate) fn next_id(&self) -> Result<u64, Error> {
        Ok(self.id_base + self.db.generate_id()?)
    }

    /// Makes every id given out from now on higher than `floor`.
    pub(crate) fn raise_ids_above(&mut self, floor: u64) -> Result<(), Error> {
        self.id_base = self.id_base.max(floor.saturating_add(1));
        self.meta
            .insert(names::ID_BASE, &self.id_base.to_be_bytes()[..])?;
        self.engine.outside.note();
        Ok(())
    }

    /// The items of queue `name` (created empty if missing).
    pub(crate) fn queue_log(&self, queue: &str) -> Result<ItemLog, Error> {
        self.engine.open_queue(queue)
    }

    /// The durable part of a cursor (its failed reads created empty if missing; its position
    /// is saved only by [`CursorLog::save_position`]).
    pub(crate) fn cursor_log(&self, queue: &str, cursor: &str) -> Result<CursorLog, Error> {
        let failed = failed::FailedLog::open(
            &self.db,
            &names::failed_tree(queue, cursor),
            self.engine.outside.clone(),
        )?;
        Ok(CursorLog::new(
            &self.meta,
            names::cursor_key(queue, cursor),
            failed,
        ))
    }

    /// Whether any queue exists.
    pub(crate) fn has_queues(&self) -> Result<bool, Error> {
        Ok(!self.engine.queue_names()?.is_empty())
    }

    /// What makes this database durable, for the group commit.
    pub(crate) fn syncer(&self) -> Result<Syncer, Error> {
        Ok(Syncer(self.engine.clone()))
    }

    /// Writes everything in memory out, durably (for tools and tests; the server commits
    /// through a [`Syncer`]).
    pub(crate) fn write_out(&self) -> Result<(), Error> {
        self.engine.commit(Depth::Checkpoint)
    }

    /// Writes what is in memory out once enough has gathered (for tools appending many items
    /// without a group commit).
    pub(crate) fn write_out_if_large(&self) -> Result<(), Error> {
        if self.engine.pending_bytes() >= WRITE_OUT_BYTES {
            self.engine.commit(Depth::WriteOut)?;
        }
        Ok(())
    }

    /// Takes the clean-shutdown snapshot out of the database, durably, before anything else
    /// changes: it is valid for this start only.
    pub(crate) fn take_snapshot(&self) -> Result<Option<HashMap<String, Counts>>, Error> {
        let Some(text) = self.meta.remove(names::SNAPSHOT)? else {
            return Ok(None);
        };
        self.db.flush()?;
        File::open(self.dir.join("db"))?.sync_data()?;
        Ok(snapshot::decode(&text))
    }

    /// Stores every queue's counters for the next start (the last act of a graceful stop).
    pub(crate) fn put_snapshot<'a>(
        &self,
        queues: impl IntoIterator<Item = (&'a str, Counts)>,
    ) -> Result<(), Error> {
        let text = snapshot::encode(queues);
        self.meta.insert(names::SNAPSHOT, text.as_bytes())?;
        Ok(())
    }

    /// Copies everything into a fresh database in `next` (compaction): the items still in
    /// use, rewritten into new segments, the cursors and their failed reads; ids continue
    /// above every id this one gave out.
    pub(crate) fn copy_into(
        &self,
        next: &generation::Next,
        cache_bytes: u64,
        sled_flushes: bool,
    ) -> Result<Disk, Error> {
        self.engine.commit(Depth::WriteAll)?;
        let mut new = Disk::open(next.dir.clone(), cache_bytes, sled_flushes)?;
        for name in self.engine.queue_names()? {
            let to = new.queue_log(&name)?;
            for item in self.queue_log(&name)?.iter() {
                let (id, record) = item?;
                to.append(id, &record)?;
                new.write_out_if_large()?;
            }
        }
        for entry in self.meta.scan_prefix(names::CURSOR_PREFIX) {
            let (key, value) = entry?;
            new.meta.insert(key, value)?;
        }
        for tree in self.db.tree_names() {
            if names::parse_failed_tree(&tree).is_some() {
                copy_tree(&self.db.open_tree(&tree)?, &new.db.open_tree(&tree)?)?;
            }
        }
        new.raise_ids_above(self.next_id()?)?;
        new.write_out()?;
        Ok(new)
    }
}

/// Bytes gathered in memory before a tool writes them out.
const WRITE_OUT_BYTES: u64 = 8 * 1024 * 1024;

fn check_format(db: &sled::Db, meta: &sled::Tree, path: &Path) -> Result<(), Error> {
    match meta.get(names::FORMAT)? {
        // A database this build just created, or one of format 1 older than the format key.
        None if db
            .tree_names()
            .iter()
            .any(|t| names::parse_queue_tree(t).is_some()) =>
        {
            Err(Error::Format {
                path: path.to_path_buf(),
                found: 1,
                expected: FORMAT_VERSION,
            })
        }
        None => {
            meta.insert(names::FORMAT, &FORMAT_VERSION.to_be_bytes()[..])?;
            Ok(())
        }
        Some(found) if record::id_of(&found) == FORMAT_VERSION => Ok(()),
        Some(found) => Err(Error::Format {
            path: path.to_path_buf(),
            found: record::id_of(&found),
            expected: FORMAT_VERSION,
        }),
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

/// Opens a store again once a test dropped it (sled's own threads may hold the old
/// database's lock a moment after it is dropped).
#[cfg(test)]
fn reopen(store: &Path) -> Disk {
    (0..100)
        .find_map(|_| {
            let opened = Disk::open(store.to_path_buf(), 1 << 20, false).ok();
            if opened.is_none() {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            opened
        })
        .expect("the store reopens")
}

/// Size of a directory and everything in it, in bytes.
pub(crate) fn directory_size(path: &Path) -> u64 {
    let entries = match fs::read_dir(path) {
        Ok(entries) => entries,
        Err(_) => return 0,
    };
    entries
        .filter_map(Result::ok)
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => directory_size(&entry.path()),
            Ok(meta) => meta.len(),
            Err(_) => 0,
        })
        .sum()
}

/// fsyncs every file under `dir`, and the directories themselves.
fn sync_tree(dir: &Path) -> Result<(), Error> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            sync_tree(&entry.path())?;
        } else {
            File::open(entry.path())?.sync_all()?;
        }
    }
    File::open(dir)?.sync_all()?;
    Ok(())
}
