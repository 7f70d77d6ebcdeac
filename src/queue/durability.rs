//! Making writes durable: group commit for `--sync always`, a periodic sync for `--sync <N>ms`.
//!
//! What a durable sync is belongs to the on-disk layout ([`Syncer`]); when to run one is
//! decided here. Syncs run on one dedicated thread, never on an executor thread; every
//! writer waiting when a sync starts shares it. [`CommitMetrics`] times them (lock-free).

use super::disk::Syncer;
use super::Error;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Histograms of the group commit, for `--metrics`: observed without a lock (a histogram's
/// buckets are atomics), read at scrape time; and whether the last sync failed (for health).
pub struct CommitMetrics {
    /// Per write that waited (`--sync always`): from asking for durability until durable.
    pub time_to_durable: prometheus::Histogram,
    /// Per group commit: how many writers shared the sync.
    pub writers: prometheus::Histogram,
    /// Per sync, of every mode: sled's flush and the `fdatasync` calls.
    pub sync: prometheus::Histogram,
    /// Whether the last sync failed, and why (locked only when that changes or is read).
    failing: AtomicBool,
    failure: Mutex<Option<String>>,
}

impl CommitMetrics {
    fn new() -> CommitMetrics {
        let histogram = |name: &str, help: &str, buckets: Vec<f64>| {
            let opts = prometheus::HistogramOpts::new(name, help).buckets(buckets);
            prometheus::Histogram::with_opts(opts).expect("valid histogram options")
        };
        let seconds = || prometheus::exponential_buckets(0.000_05, 2.0, 16).expect("buckets");
        CommitMetrics {
            time_to_durable: histogram(
                "tern_commit_wait_seconds",
                "Time a write waited to be durable (--sync always): group commit.",
                seconds(),
            ),
            writers: histogram(
                "tern_commit_writers",
                "Writers that shared one group commit (--sync always).",
                prometheus::exponential_buckets(1.0, 2.0, 12).expect("buckets"),
            ),
            sync: histogram(
                "tern_commit_sync_seconds",
                "Duration of one durable sync: sled's flush, then fdatasync of its files.",
                seconds(),
            ),
            failing: AtomicBool::new(false),
            failure: Mutex::new(None),
        }
    }

    /// Why the last sync failed; `None` while it succeeded.
    pub fn failure(&self) -> Option<String> {
        if !self.failing.load(Ordering::Relaxed) {
            return None;
        }
        self.failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Runs one sync and times it.
    fn timed_sync(&self, target: &Mutex<Syncer>) -> Result<(), Error> {
        let mut syncer = lock(target);
        let started = Instant::now();
        let result = syncer.sync();
        self.sync.observe(started.elapsed().as_secs_f64());
        if result.is_err() || self.failing.load(Ordering::Relaxed) {
            let mut failure = self.failure.lock().unwrap_or_else(|e| e.into_inner());
            *failure = result.as_ref().err().map(ToString::to_string);
            self.failing.store(failure.is_some(), Ordering::Relaxed);
        }
        result
    }
}

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
    metrics: Arc<CommitMetrics>,
}

impl Durability {
    pub(crate) fn start(syncer: Syncer, mode: SyncMode) -> Result<Durability, Error> {
        let writes = Arc::new(AtomicU64::new(0));
        let target = Arc::new(Mutex::new(syncer));
        let metrics = Arc::new(CommitMetrics::new());
        let requests = match mode {
            SyncMode::Never => None,
            SyncMode::Always | SyncMode::Every(_) => {
                let (sender, receiver) = mpsc::channel();
                let (ticker_writes, target) = (writes.clone(), target.clone());
                let metrics = metrics.clone();
                thread::Builder::new()
                    .name("tern-sync".into())
                    .spawn(move || match mode {
                        SyncMode::Every(period) => {
                            tick_loop(&target, &metrics, receiver, period, ticker_writes)
                        }
                        _ => group_commit_loop(&target, &metrics, receiver),
                    })?;
                Some(sender)
            }
        };
        Ok(Durability {
            mode,
            requests,
            writes,
            target,
            metrics,
        })
    }

    /// Flushes and syncs now, whatever the mode (start-up, shutdown, compaction).
    pub(crate) fn sync_now(&self) -> Result<(), Error> {
        self.metrics.timed_sync(&self.target)
    }

    /// The group commit's histograms.
    pub(crate) fn metrics(&self) -> &CommitMetrics {
        &self.metrics
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
        let started = Instant::now();
        let (reply, done) = async_channel::bounded(1);
        let sent = self.requests.as_ref().map(|requests| requests.send(reply));
        if !matches!(sent, Some(Ok(()))) {
            return Err(Error::Sync("the sync thread has stopped".into()));
        }
        let result = match done.recv().await {
            Ok(result) => result.map_err(Error::Sync),
            Err(_) => Err(Error::Sync("the sync thread has stopped".into())),
        };
        let waited = started.elapsed().as_secs_f64();
        self.metrics.time_to_durable.observe(waited);
        result
    }
}

fn lock(target: &Mutex<Syncer>) -> std::sync::MutexGuard<'_, Syncer> {
    target
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Waits for a request, takes every request that queued meanwhile, syncs once, answers all.
fn group_commit_loop(
    target: &Mutex<Syncer>,
    metrics: &CommitMetrics,
    requests: mpsc::Receiver<Reply>,
) {
    while let Ok(first) = requests.recv() {
        let mut batch = vec![first];
        batch.extend(requests.try_iter());
        metrics.writers.observe(batch.len() as f64);
        let result = metrics.timed_sync(target).map_err(|e| e.to_string());
        for reply in batch {
            // A writer that went away no longer needs its answer.
            let _ = reply.try_send(result.clone());
        }
    }
}

fn tick_loop(
    target: &Mutex<Syncer>,
    metrics: &CommitMetrics,
    stop: mpsc::Receiver<Reply>,
    period: Duration,
    writes: Arc<AtomicU64>,
) {
    let mut synced = 0;
    while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(period) {
        let now = writes.load(Ordering::Relaxed);
        if now != synced {
            match metrics.timed_sync(target) {
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
