//! Making writes durable: group commit for `--sync always`, a periodic flush for `--sync <N>ms`.
//!
//! sled's `flush()` ends in `sync_file_range` on its log, which writes no metadata and promises
//! nothing across a machine crash, and it never syncs the blob files it writes for large
//! values. So a durable flush here is: sled's flush, then `fdatasync` of the log file, of every
//! blob file not synced yet, and of the blob directory. That runs on one dedicated thread,
//! never on an executor thread; every writer waiting when a flush starts shares it.

use super::Error;
use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::Duration;

/// When acknowledged writes reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// Before the write is acknowledged (group commit).
    Always,
    /// Every so often: a crash loses at most this much of acknowledged writes.
    Every(Duration),
    /// When sled and the operating system decide.
    Never,
}

type Reply = async_channel::Sender<Result<(), String>>;

pub(crate) struct Durability {
    mode: SyncMode,
    /// Group-commit requests (`Always`) or the ticker's stop signal (`Every`, dropped on drop).
    requests: Option<mpsc::Sender<Reply>>,
    /// Writes since start, so the ticker can skip idle periods.
    writes: Arc<AtomicU64>,
    /// What a flush flushes; replaced when compaction switches databases.
    target: Arc<Mutex<Target>>,
}

/// The database being made durable, and its files.
struct Target {
    db: sled::Db,
    files: SyncedFiles,
}

impl Target {
    fn flush(&mut self) -> Result<(), Error> {
        self.db.flush()?;
        self.files.sync()
    }
}

impl Durability {
    pub(crate) fn start(db: sled::Db, dir: &Path, mode: SyncMode) -> Result<Durability, Error> {
        let writes = Arc::new(AtomicU64::new(0));
        let target = Arc::new(Mutex::new(Target {
            db,
            files: SyncedFiles::open(dir)?,
        }));
        let requests = match mode {
            SyncMode::Never => None,
            SyncMode::Always | SyncMode::Every(_) => {
                let (sender, receiver) = mpsc::channel();
                let (ticker_writes, target) = (writes.clone(), target.clone());
                thread::Builder::new()
                    .name("tern-sync".into())
                    .spawn(move || match mode {
                        SyncMode::Every(period) => {
                            tick_loop(&target, receiver, period, ticker_writes)
                        }
                        _ => group_commit_loop(&target, receiver),
                    })?;
                Some(sender)
            }
        };
        Ok(Durability {
            mode,
            requests,
            writes,
            target,
        })
    }

    /// Flushes and syncs now, whatever the mode (start-up, shutdown, compaction).
    pub(crate) fn flush_now(&self) -> Result<(), Error> {
        lock(&self.target).flush()
    }

    /// Opens the files of a database in `dir`, for [`Durability::switch`].
    pub(crate) fn prepare(&self, dir: &Path) -> Result<SyncedFiles, Error> {
        SyncedFiles::open(dir)
    }

    /// From now on, flushes go to `db` (after compaction switched databases). Waits for a
    /// flush in progress on the old one.
    pub(crate) fn switch(&self, db: sled::Db, files: SyncedFiles) {
        *lock(&self.target) = Target { db, files };
    }

    /// Whether a write must wait for [`Durability::written`] before it counts as done.
    pub(crate) fn waits(&self) -> bool {
        self.mode == SyncMode::Always
    }

    /// Call after a write; returns once it is as durable as the mode promises.
    pub(crate) async fn written(&self) -> Result<(), Error> {
        self.note_write();
        self.wait().await
    }

    /// Counts a write, for the periodic flush.
    pub(crate) fn note_write(&self) {
        self.writes.fetch_add(1, Ordering::Relaxed);
    }

    /// With `--sync always`, returns once every write made before the call is durable: one
    /// flush serves all the writes that waited for it. Otherwise returns at once.
    pub(crate) async fn wait(&self) -> Result<(), Error> {
        if self.mode != SyncMode::Always {
            return Ok(());
        }
        let (reply, done) = async_channel::bounded(1);
        let sent = self.requests.as_ref().map(|requests| requests.send(reply));
        if !matches!(sent, Some(Ok(()))) {
            return Err(Error::Sync("the sync thread has stopped".into()));
        }
        match done.recv().await {
            Ok(result) => result.map_err(Error::Sync),
            Err(_) => Err(Error::Sync("the sync thread has stopped".into())),
        }
    }
}

fn lock(target: &Mutex<Target>) -> std::sync::MutexGuard<'_, Target> {
    target
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Waits for a request, takes every request that queued meanwhile, flushes once, answers all.
fn group_commit_loop(target: &Mutex<Target>, requests: mpsc::Receiver<Reply>) {
    while let Ok(first) = requests.recv() {
        let mut batch = vec![first];
        batch.extend(requests.try_iter());
        let result = lock(target).flush().map_err(|e| e.to_string());
        for reply in batch {
            // A writer that went away no longer needs its answer.
            let _ = reply.try_send(result.clone());
        }
    }
}

fn tick_loop(
    target: &Mutex<Target>,
    stop: mpsc::Receiver<Reply>,
    period: Duration,
    writes: Arc<AtomicU64>,
) {
    let mut flushed = 0;
    while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(period) {
        let now = writes.load(Ordering::Relaxed);
        if now != flushed {
            flushed = now;
            if let Err(e) = lock(target).flush() {
                log::error!("periodic flush failed: {}", e);
            }
        }
    }
}

/// The files sled writes, and which blob files are already synced.
pub(crate) struct SyncedFiles {
    log: File,
    blob_dir: PathBuf,
    synced_blobs: HashSet<std::ffi::OsString>,
}

impl SyncedFiles {
    fn open(dir: &Path) -> Result<SyncedFiles, Error> {
        let files = SyncedFiles {
            log: File::open(dir.join("db"))?,
            blob_dir: dir.join("blobs"),
            synced_blobs: HashSet::new(),
        };
        // The log's and the blob directory's own entries must be durable too.
        File::open(dir)?.sync_all()?;
        Ok(files)
    }

    fn sync(&mut self) -> Result<(), Error> {
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
