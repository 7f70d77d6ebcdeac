//! What a durable sync of one database is: [`Syncer`] commits what is in memory (see
//! `engine`); [`SledSync`] makes sled's part durable.
//!
//! sled's `flush()` ends in `sync_file_range` on its log, which writes no metadata and promises
//! nothing across a machine crash, and it never syncs the blob files it writes for large
//! values. So a durable sync here is: sled's flush, then `fdatasync` of the log file, of every
//! blob file not synced yet, and of the blob directory.

use super::engine::{Depth, Engine};
use super::Error;
use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

/// Syncs sled's files to disk; see the module doc.
pub(crate) struct SledSync {
    db: sled::Db,
    log: File,
    blob_dir: PathBuf,
    synced_blobs: HashSet<OsString>,
}

impl SledSync {
    pub(super) fn open(db: sled::Db, dir: &Path) -> Result<SledSync, Error> {
        let syncer = SledSync {
            db,
            log: File::open(dir.join("db"))?,
            blob_dir: dir.join("blobs"),
            synced_blobs: HashSet::new(),
        };
        // The log's and the blob directory's own entries must be durable too.
        File::open(dir)?.sync_all()?;
        Ok(syncer)
    }

    /// Returns once every write made to the database before the call is on disk.
    pub(crate) fn sync(&mut self) -> Result<(), Error> {
        self.db.flush()?;
        self.log.sync_data()?;
        let mut present = HashSet::new();
        let mut new_blobs = false;
        for entry in std::fs::read_dir(&self.blob_dir)? {
            let name = entry?.file_name();
            if !self.synced_blobs.contains(&name) {
                // A blob removed meanwhile by sled's garbage collection needs no sync.
                if let Ok(file) = File::open(self.blob_dir.join(&name)) {
                    file.sync_data()?;
                    new_blobs = true;
                }
            }
            present.insert(name);
        }
        if new_blobs {
            File::open(&self.blob_dir)?.sync_all()?;
        }
        // Forget blobs that are gone, so the set stays as small as the directory.
        self.synced_blobs = present;
        Ok(())
    }
}

/// What the group commit and the periodic writer call: one database's commit.
pub(crate) struct Syncer(pub(super) Arc<Engine>);

impl Syncer {
    /// The count of bytes appended and not written out, which writers watch.
    pub(crate) fn pending(&self) -> Arc<AtomicU64> {
        self.0.pending.clone()
    }
}

impl Syncer {
    /// Returns once every write made to the database before the call is on disk, index
    /// included; then gives unused segments back.
    pub(crate) fn checkpoint(&mut self) -> Result<(), Error> {
        self.0.commit(Depth::Checkpoint)
    }

    /// Returns once every write made to the database before the call is on disk: the
    /// segments, and sled too if it was written outside the blocks (else replay restores it).
    pub(crate) fn sync(&mut self) -> Result<(), Error> {
        self.0.commit(Depth::Durable)
    }

    /// Whether appended items wait in memory to be written out (removals and deletions,
    /// which cost no memory while they wait, are not counted).
    pub(crate) fn has_appends(&self) -> bool {
        self.0.pending_bytes() > 0
    }

    /// Whether a checkpoint would do anything.
    pub(crate) fn needs_checkpoint(&self) -> bool {
        self.0.needs_checkpoint()
    }

    /// Writes what is in memory out to the files, without waiting for the disk; `all`: runs
    /// still growing too (see `Depth`).
    pub(crate) fn write_out(&mut self, all: bool) -> Result<(), Error> {
        let depth = if all {
            Depth::WriteAll
        } else {
            Depth::WriteOut
        };
        self.0.commit(depth)
    }
}
