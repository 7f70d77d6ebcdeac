//! Making writes durable: group commit for `--sync always`, a periodic sync for `--sync <N>ms`;
//! and in every mode, writing what writers appended in memory out to the files.
//!
//! With `--sync always` each group commit writes and syncs. Otherwise a ticker writes out
//! appended items every [`WRITE_EVERY`] and syncs, removals included, every period (`<N>ms`)
//! or every [`NEVER_SYNC_EVERY`] (`never`: that sync is what gives the disk of drained queues
//! back); a writer that finds more than [`PENDING_LIMIT`] bytes waiting asks for a write-out
//! and waits for it, which bounds the memory a fast producer can fill.
//!
//! What a durable sync is belongs to the on-disk layout ([`Syncer`]); when to run one is
//! decided here. Syncs run on one dedicated thread, never on an executor thread; every
//! writer waiting when a sync starts shares it. [`CommitMetrics`] times them (lock-free).

use super::disk::Syncer;
use super::Error;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, RwLock};
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
                "Duration of one commit: its block written and fdatasynced, then the index updated (a checkpoint: and synced).",
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

    /// Runs one checkpoint (see [`Syncer::checkpoint`]) and times it.
    fn timed_sync(&self, target: &Mutex<Syncer>) -> Result<(), Error> {
        self.timed_sync_to(target, true)
    }

    /// Runs one sync ([`Syncer::sync`], or [`Syncer::checkpoint`] when `checkpoint`) and times it.
    fn timed_sync_to(&self, target: &Mutex<Syncer>, checkpoint: bool) -> Result<(), Error> {
        let mut syncer = lock(target);
        let started = Instant::now();
        let result = match checkpoint {
            true => syncer.checkpoint(),
            false => syncer.sync(),
        };
        self.sync.observe(started.elapsed().as_secs_f64());
        self.note_result(&result);
        result
    }

    /// Records whether the last sync failed, and why.
    fn note_result(&self, result: &Result<(), Error>) {
        if result.is_err() || self.failing.load(Ordering::Relaxed) {
            let mut failure = self.failure.lock().unwrap_or_else(|e| e.into_inner());
            *failure = result.as_ref().err().map(ToString::to_string);
            self.failing.store(failure.is_some(), Ordering::Relaxed);
        }
    }
}

/// When acknowledged writes reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// Before the write is acknowledged (group commit).
    Always,
    /// Every so often: a crash loses at most this much of acknowledged writes.
    Every(Duration),
    /// When the operating system decides (tern syncs about once a second regardless).
    Never,
}

/// How often appended items are written out when writes do not wait for a sync (what readers
/// removed waits for the next sync).
const WRITE_EVERY: Duration = Duration::from_millis(10);
/// How often `--sync always` checkpoints while no writer asks (what readers removed: it gives
/// unused segments back).
const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);
/// How often `--sync never` syncs anyway.
const NEVER_SYNC_EVERY: Duration = Duration::from_secs(1);
/// Bytes appended and not written out above which a writer waits for a write-out.
const PENDING_LIMIT: u64 = 4 * 1024 * 1024;

type Reply = async_channel::Sender<Result<(), String>>;
/// To the sync thread: a writer that waits for its answer, or (`None`) a wake-up for a ticker
/// asleep until its next sync.
type Request = Option<Reply>;

pub(crate) struct Durability {
    mode: SyncMode,
    /// Group-commit requests (`Always`) or write-out requests to the ticker; dropping it
    /// stops the thread.
    requests: Option<mpsc::Sender<Request>>,
    /// Bytes waiting to be written out (the commit's count; replaced with the database).
    pending: RwLock<Arc<AtomicU64>>,
    /// Writes since start, so the ticker can skip idle periods.
    writes: Arc<AtomicU64>,
    /// Set by a ticker that found nothing to write out and sleeps until its next sync; the
    /// next write wakes it (so an idle server's ticker wakes once a period, not every tick).
    ticker_asleep: Arc<AtomicBool>,
    /// What a sync syncs; replaced when compaction switches databases.
    target: Arc<Mutex<Syncer>>,
    metrics: Arc<CommitMetrics>,
}

impl Durability {
    pub(crate) fn start(
        syncer: Syncer,
        mode: SyncMode,
        release_memory: Option<fn()>,
    ) -> Result<Durability, Error> {
        let writes = Arc::new(AtomicU64::new(0));
        // A ticker starts with nothing to write out.
        let ticker_asleep = Arc::new(AtomicBool::new(mode != SyncMode::Always));
        let pending = syncer.pending();
        let target = Arc::new(Mutex::new(syncer));
        let metrics = Arc::new(CommitMetrics::new());
        let (sender, receiver) = mpsc::channel();
        let (ticker_writes, thread_target) = (writes.clone(), target.clone());
        let asleep = ticker_asleep.clone();
        let thread_metrics = metrics.clone();
        thread::Builder::new()
            .name("tern-sync".into())
            .spawn(move || {
                if mode == SyncMode::Always {
                    super::sharing::yield_on_wakeup();
                }
                let (target, metrics) = (&thread_target, &thread_metrics);
                let release = Release::new(release_memory);
                let ticker = |period| Ticker {
                    period,
                    writes: ticker_writes,
                    asleep,
                };
                match mode {
                    SyncMode::Always => group_commit_loop(target, metrics, receiver, release),
                    SyncMode::Every(period) => {
                        tick_loop(target, metrics, receiver, ticker(period), release)
                    }
                    SyncMode::Never => {
                        tick_loop(target, metrics, receiver, ticker(NEVER_SYNC_EVERY), release)
                    }
                }
            })?;
        Ok(Durability {
            mode,
            requests: Some(sender),
            pending: RwLock::new(pending),
            writes,
            ticker_asleep,
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
        *self.pending.write().unwrap_or_else(|e| e.into_inner()) = syncer.pending();
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

    /// Counts a write, for the periodic sync, and wakes a ticker asleep until its next sync
    /// (what was appended is written out at the next tick, as while writes keep coming).
    pub(crate) fn note_write(&self) {
        // SeqCst with the ticker's going to sleep: it sees this write, or this sees it asleep.
        self.writes.fetch_add(1, Ordering::SeqCst);
        if self.ticker_asleep.load(Ordering::SeqCst)
            && self.ticker_asleep.swap(false, Ordering::SeqCst)
        {
            if let Some(requests) = &self.requests {
                let _ = requests.send(None);
            }
        }
    }

    /// With `--sync always`, returns once every write made before the call is durable: one
    /// sync serves all the writes that waited for it. Otherwise returns at once.
    pub(crate) async fn wait(&self) -> Result<(), Error> {
        if self.mode != SyncMode::Always {
            if self.pending_bytes() <= PENDING_LIMIT {
                return Ok(());
            }
            return self.ask().await;
        }
        self.ask().await
    }

    fn pending_bytes(&self) -> u64 {
        let pending = self.pending.read().unwrap_or_else(|e| e.into_inner());
        pending.load(Ordering::Relaxed)
    }

    /// Sends a request to the sync thread and waits for its answer.
    async fn ask(&self) -> Result<(), Error> {
        let started = Instant::now();
        let (reply, done) = async_channel::bounded(1);
        let sent = self
            .requests
            .as_ref()
            .map(|requests| requests.send(Some(reply)));
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

/// The commit thread's memory release (`Config::release_memory`): once per idle spell.
struct Release {
    run: Option<fn()>,
    done: bool,
}

impl Release {
    fn new(run: Option<fn()>) -> Release {
        Release { run, done: true }
    }

    fn busy(&mut self) {
        self.done = false;
    }

    fn idle(&mut self) {
        if let (false, Some(run)) = (self.done, self.run) {
            run();
        }
        self.done = true;
    }
}

fn lock(target: &Mutex<Syncer>) -> std::sync::MutexGuard<'_, Syncer> {
    target
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Waits up to `wait` for a request, then takes every one that queued meanwhile: the writers
/// among them (a wake-up only ends the wait). `None` once the sender is gone.
fn receive(requests: &mpsc::Receiver<Request>, wait: Duration) -> Option<Vec<Reply>> {
    match requests.recv_timeout(wait) {
        Ok(first) => Some(
            std::iter::once(first)
                .chain(requests.try_iter())
                .flatten()
                .collect(),
        ),
        Err(mpsc::RecvTimeoutError::Timeout) => Some(Vec::new()),
        Err(mpsc::RecvTimeoutError::Disconnected) => None,
    }
}

/// Waits for a request, takes every request that queued meanwhile, syncs once, answers all.
/// A sync is one `fdatasync` of the segments (sled's too only when it was written outside the
/// blocks: a cursor moved, a failed read, a deletion); a checkpoint, which syncs the index too
/// and so bounds what start-up replays, runs when the last one is [`CHECKPOINT_EVERY`] old,
/// and then between requests too if anything changed (what readers removed, say).
fn group_commit_loop(
    target: &Mutex<Syncer>,
    metrics: &CommitMetrics,
    requests: mpsc::Receiver<Request>,
    mut release: Release,
) {
    let mut last_checkpoint = Instant::now();
    loop {
        let Some(batch) = receive(&requests, CHECKPOINT_EVERY) else {
            return;
        };
        if batch.is_empty() && !lock(target).needs_checkpoint() {
            release.idle();
            continue;
        }
        release.busy();
        if !batch.is_empty() {
            metrics.writers.observe(batch.len() as f64);
        }
        let checkpoint = batch.is_empty() || last_checkpoint.elapsed() >= CHECKPOINT_EVERY;
        if checkpoint {
            last_checkpoint = Instant::now();
        }
        let result = metrics
            .timed_sync_to(target, checkpoint)
            .map_err(|e| e.to_string());
        if let Err(e) = &result {
            log::error!("sync failed: {}", e);
        }
        for reply in batch {
            // A writer that went away no longer needs its answer.
            let _ = reply.try_send(result.clone());
        }
    }
}

/// The ticker's side of [`Durability`]: its sync period, the writes it counts, and whether
/// it sleeps until its next sync.
struct Ticker {
    period: Duration,
    writes: Arc<AtomicU64>,
    asleep: Arc<AtomicBool>,
}

/// Writes out every [`WRITE_EVERY`] (and at once when asked), syncs every `period`. With
/// nothing to write out it sleeps until the next sync, unless a write wakes it.
fn tick_loop(
    target: &Mutex<Syncer>,
    metrics: &CommitMetrics,
    requests: mpsc::Receiver<Request>,
    ticker: Ticker,
    mut release: Release,
) {
    let Ticker {
        period,
        writes,
        asleep,
    } = ticker;
    let mut synced = 0;
    let mut written_since_sync = false;
    let mut last_sync = Instant::now();
    // What `asleep` said when the ticker last set it: a writer that clears it sends a
    // wake-up. It starts set (see `Durability::start`).
    let mut sleeping = true;
    loop {
        let wait = match sleeping {
            true => period.saturating_sub(last_sync.elapsed()).max(WRITE_EVERY),
            false => WRITE_EVERY,
        };
        // Writers here only ask for memory to be written out (see `Durability::wait`).
        let Some(asked) = receive(&requests, wait) else {
            return;
        };
        asleep.store(false, Ordering::SeqCst);
        let now = writes.load(Ordering::SeqCst);
        if last_sync.elapsed() >= period {
            last_sync = Instant::now();
            // Whatever a checkpoint would write counts too: what readers removed (the
            // checkpoint gives emptied segments back), a cursor that moved with nothing
            // written since (sled holds its position and does not flush by itself here).
            let due = now != synced
                || std::mem::take(&mut written_since_sync)
                || lock(target).needs_checkpoint();
            if due {
                release.busy();
                match metrics.timed_sync(target) {
                    Ok(()) => {
                        synced = now;
                        // Tests wait for this line instead of guessing when the timer has
                        // fired; not said while what changed during the sync (a cursor
                        // that moved meanwhile, say) waits for the next one.
                        if !lock(target).needs_checkpoint() {
                            log::debug!("periodic sync: writes 1 to {now} since start are on disk");
                        }
                    }
                    // Tried again at the next tick.
                    Err(e) => log::error!("periodic sync failed: {}", e),
                }
            } else {
                release.idle();
            }
        }
        // Only appends are written out between syncs: they hold memory until written.
        // Removals wait for the sync, as a crash may lose them anyway until then; writing
        // them every tick cost a busy reader's core about 6% (benches/README.md).
        let mut syncer = lock(target);
        let appended = syncer.has_appends();
        let written = match appended {
            true => {
                written_since_sync = true;
                // Writers that asked wait for memory to be freed: everything goes.
                syncer
                    .write_out(!asked.is_empty())
                    .map_err(|e| e.to_string())
            }
            false => Ok(()),
        };
        drop(syncer);
        if let Err(e) = &written {
            log::error!("writing out failed: {}", e);
        }
        for reply in asked {
            let _ = reply.try_send(written.clone());
        }
        if !appended {
            // Asleep only if no write came since `now`: a later one sees the flag.
            asleep.store(true, Ordering::SeqCst);
            sleeping = writes.load(Ordering::SeqCst) == now;
            if !sleeping {
                asleep.store(false, Ordering::SeqCst);
            }
        } else {
            sleeping = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::disk::{Disk, Record};
    use super::{Durability, SyncMode};
    use std::time::{Duration, Instant};

    /// A ticker with nothing to write out sleeps until its next sync (an hour here); a write
    /// wakes it, and what was appended is written out without waiting for that sync.
    #[test]
    fn a_write_wakes_a_ticker_asleep_until_its_next_sync() {
        let dir = tempfile::tempdir().unwrap();
        let disk = Disk::open(dir.path().join("store-1"), 1 << 20, true).unwrap();
        let hour = Duration::from_secs(3600);
        let durability =
            Durability::start(disk.syncer().unwrap(), SyncMode::Every(hour), None).unwrap();
        let queue = disk.queue_log("q").unwrap();
        queue.append(1, &Record::new(0, None, 1, b"item")).unwrap();
        assert!(durability.pending_bytes() > 0);
        durability.note_write();
        // A bound for a failure only: the ticker answers within a tick.
        let began = Instant::now();
        while durability.pending_bytes() > 0 {
            assert!(
                began.elapsed() < Duration::from_secs(30),
                "the write was not written out: the ticker slept on"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
