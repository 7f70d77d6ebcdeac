//! Making writes durable: group commit for `--sync always`, a periodic sync for `--sync <N>ms`.
//!
//! What a durable sync is belongs to the on-disk layout ([`Syncer`]); when to run one is
//! decided here. Syncs run on one dedicated thread, never on an executor thread; every
//! writer waiting when a sync starts shares it.

use super::disk::Syncer;
use super::Error;
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
    /// What a sync syncs; replaced when compaction switches databases.
    target: Arc<Mutex<Syncer>>,
}

impl Durability {
    pub(crate) fn start(syncer: Syncer, mode: SyncMode) -> Result<Durability, Error> {
        let writes = Arc::new(AtomicU64::new(0));
        let target = Arc::new(Mutex::new(syncer));
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
    pub(crate) fn sync_now(&self) -> Result<(), Error> {
        lock(&self.target).sync()
    }

    /// From now on, syncs go to another database (after compaction switched databases).
    /// Waits for a sync in progress on the old one.
    pub(crate) fn switch(&self, syncer: Syncer) {
        *lock(&self.target) = syncer;
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

    /// Counts a write, for the periodic sync.
    pub(crate) fn note_write(&self) {
        self.writes.fetch_add(1, Ordering::Relaxed);
    }

    /// With `--sync always`, returns once every write made before the call is durable: one
    /// sync serves all the writes that waited for it. Otherwise returns at once.
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

fn lock(target: &Mutex<Syncer>) -> std::sync::MutexGuard<'_, Syncer> {
    target
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Waits for a request, takes every request that queued meanwhile, syncs once, answers all.
fn group_commit_loop(target: &Mutex<Syncer>, requests: mpsc::Receiver<Reply>) {
    while let Ok(first) = requests.recv() {
        let mut batch = vec![first];
        batch.extend(requests.try_iter());
        let result = lock(target).sync().map_err(|e| e.to_string());
        for reply in batch {
            // A writer that went away no longer needs its answer.
            let _ = reply.try_send(result.clone());
        }
    }
}

fn tick_loop(
    target: &Mutex<Syncer>,
    stop: mpsc::Receiver<Reply>,
    period: Duration,
    writes: Arc<AtomicU64>,
) {
    let mut synced = 0;
    while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(period) {
        let now = writes.load(Ordering::Relaxed);
        if now != synced {
            match lock(target).sync() {
                Ok(()) => {
                    synced = now;
                    // Tests wait for this line instead of guessing when the timer has fired.
                    log::debug!("periodic sync: writes 1 to {now} since start are on disk");
                }
                // Tried again at the next tick.
                Err(e) => log::error!("periodic sync failed: {}", e),
            }
        }
    }
}
