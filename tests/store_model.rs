//! Model-based property tests of the storage layer (`tern::queue::Store`), against small
//! in-memory models written from SPEC.md (sections get, cursors, flush/delete).
//!
//! * `plain_queues_follow_the_model`: two queues, `set` (single and fanout), plain `get`,
//!   `/open` (several leases held at once), `/close`, `/abort`, `/peek`, `flush`, `delete`
//!   (later closes and aborts of its leases must do nothing) and restarts.
//! * `cursors_follow_the_model`: one queue, a plain reader (`get`, `/open`) and two named
//!   cursors, with cursor reads (`take`, `/open`, `/close`, `/abort`, `/peek`), rewinds and
//!   seeks, cursor and queue flushes, cursor and queue deletes, and restarts.
//! * `deep_queue_stays_in_order_past_the_head_index`: one scripted run with a queue deeper
//!   than the store's in-memory head index.
//!
//! Both run with an open timeout ([`OPEN_TIMEOUT_MS`]) and a max age ([`MAX_AGE_MS`]) on a
//! clock the test moves (`Wait` steps): an open read held longer goes back as if aborted, and
//! its lease's later close or abort does nothing; an item older than the max age is never
//! returned nor counted, unless held open (the model drops it wherever it waits).
//!
//! The two properties run again as `…_with_sync_always`.
//!
//! After every step the payload returned (or its absence) and the `stats()` counters are
//! compared with the model. Payloads and flags carry a counter, so a mismatch names the item.
//! A restart drops every lease without closing it (each open read is given back, as on a
//! disconnect), then drops the store and opens it again on the same directory.
//!
//! Each property runs in both sync modes: `Never`, and `Always`, where an item stays hidden
//! from readers until its group commit is done (`put` waits for it). And it runs once for
//! every storage format in [`FORMATS`]: a run starts on a store in that format, and each
//! restart reopens it with this build's `Store::open`, which is where an older format would be
//! migrated. Today there is one format, so the restart only reopens.
//!
//! How a second format plugs in: add a `Format` whose `create` opens a store that writes the
//! old format (for example a copy of a checked-in data directory written by the old build,
//! such as `tests/fixtures/format1`, opened with the old build's code kept for this, or a
//! `Store::open_format(config, version)` the store would offer for tests). The model needs no
//! change: what a user sees must be the same before and after the migrating restart.

use futures_lite::future::block_on;
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError};
use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tempfile::TempDir;
use tern::queue::{
    Clock, Config, Error, Item, Lease, QueueStats, ReadMode, Replay, Store, SyncMode,
};

/// Leases held at once: in all (plain property) or per cursor (cursor property).
const MAX_LEASES: usize = 3;
const MAX_STEPS: usize = 40;
const CASES: u32 = 64;
/// Every queue's open timeout; `Wait` steps move the clock by less or more than this.
const OPEN_TIMEOUT_MS: u64 = 100;
/// Every queue's max age.
const MAX_AGE_MS: u64 = 150;
/// Where the clock of a run starts (unix ms).
const CLOCK_START_MS: u64 = 1_800_000_000_000;

/// A run's clock: what the store reads, and the handle the test moves it with.
struct TestClock {
    clock: Clock,
    now: Arc<AtomicU64>,
}

impl TestClock {
    fn new() -> TestClock {
        let (clock, now) = Clock::manual(CLOCK_START_MS);
        TestClock { clock, now }
    }

    fn now(&self) -> u64 {
        self.now.load(Ordering::SeqCst)
    }

    fn advance(&self, ms: u64) -> u64 {
        self.now.fetch_add(ms, Ordering::SeqCst) + ms
    }
}

/// How far a `Wait` step moves the clock: half the open timeout, exactly it (not longer: no
/// timeout yet) or just over. Sums of these land on the max age exactly, too.
fn wait_ms() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(OPEN_TIMEOUT_MS / 2),
        Just(OPEN_TIMEOUT_MS),
        Just(OPEN_TIMEOUT_MS + 1)
    ]
}

fn proptest_config() -> ProptestConfig {
    ProptestConfig {
        // `PROPTEST_CASES=n` runs a longer search.
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|cases| cases.parse().ok())
            .unwrap_or(CASES),
        // Only this file may be written: no `proptest-regressions/` directory.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A storage format the properties run against.
struct Format {
    /// The format version the store writes into its `meta` tree.
    version: u64,
    /// Opens (creating) a store that writes this format.
    create: fn(&Config) -> Result<Store, Error>,
}

/// Every format the store supports; the properties run once for each.
const FORMATS: &[Format] = &[Format {
    version: 1,
    create: Store::open,
}];

/// What a run opens a store with: its format, and the sync mode of every open.
#[derive(Clone, Copy)]
struct Setup {
    format: &'static Format,
    sync: SyncMode,
}

impl Setup {
    /// The store a run starts on, in its format.
    fn create(&self, dir: &Path, clock: &Clock) -> Store {
        open_store(dir, self.sync, clock, self.format.create)
    }

    /// The store after a restart: this build's, which migrates an older format.
    fn reopen(&self, dir: &Path, clock: &Clock) -> Store {
        open_store(dir, self.sync, clock, Store::open)
    }

    fn describe(&self) -> String {
        format!("format {}, sync {:?}", self.format.version, self.sync)
    }
}

/// Runs `property` for every format in [`FORMATS`] with sync mode `sync`.
fn for_every_format(
    sync: SyncMode,
    mut property: impl FnMut(Setup) -> Result<(), TestCaseError>,
) -> Result<(), TestCaseError> {
    for format in FORMATS {
        let setup = Setup { format, sync };
        property(setup).map_err(|e| TestCaseError::fail(format!("{}: {e}", setup.describe())))?;
    }
    Ok(())
}

fn open_store(
    dir: &Path,
    sync: SyncMode,
    clock: &Clock,
    open: fn(&Config) -> Result<Store, Error>,
) -> Store {
    let mut config = Config::new(dir);
    config.cache_bytes = 1 << 20;
    config.sync = sync;
    config.clock = clock.clone();
    config.limits.open_timeout_ms = OPEN_TIMEOUT_MS;
    config.limits.max_age_ms = MAX_AGE_MS;
    // sled 0.34 releases its directory lock from a background thread after the last handle
    // is dropped (spacejam/sled#1234, #1289), so an immediate reopen can briefly find it
    // taken. Retry only that error; the bound is a safety net.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match open(&config) {
            Ok(store) => return store,
            Err(e) if e.to_string().contains("could not acquire lock") => {
                assert!(Instant::now() < deadline, "reopen the store: {e}");
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(e) => panic!("open the store: {e}"),
        }
    }
}

/// A distinct payload: `#<counter>` padded with dots, so lengths (and `bytes`) vary.
fn payload(counter: u64, pad: usize) -> Vec<u8> {
    let mut data = format!("#{counter}").into_bytes();
    data.resize(data.len() + pad, b'.');
    data
}

fn show(data: Option<&[u8]>) -> String {
    match data {
        Some(data) => format!("{:?}", String::from_utf8_lossy(data)),
        None => "nothing".to_string(),
    }
}

/// When each model id was pushed, to tell which have outlived [`MAX_AGE_MS`].
#[derive(Debug, Default)]
struct Ages(BTreeMap<u64, u64>);

impl Ages {
    fn pushed(&mut self, id: u64, now: u64) {
        self.0.insert(id, now);
    }

    fn expired(&self, id: u64, now: u64) -> bool {
        now - self.0[&id] > MAX_AGE_MS
    }
}

/// A model item: the model's own id (push order) and the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
struct MItem {
    id: u64,
    data: Vec<u8>,
}

/// Compares what a read returned with what the model expects (payload and flags).
fn check_item(got: Option<&Item>, want: Option<&MItem>) -> Result<(), String> {
    let got_data = got.map(Item::data);
    let want_data = want.map(|item| item.data.as_slice());
    if got_data != want_data {
        return Err(format!(
            "store returned {}, model expects {}",
            show(got_data),
            show(want_data)
        ));
    }
    if let (Some(got), Some(want)) = (got, want) {
        if u64::from(got.flags()) != want.id {
            return Err(format!(
                "flags {} returned with {}, stored as {}",
                got.flags(),
                show(Some(want.data.as_slice())),
                want.id
            ));
        }
    }
    Ok(())
}

fn find_stats<'a>(stats: &'a [QueueStats], name: &str) -> Option<&'a QueueStats> {
    stats.iter().find(|queue| queue.name == name)
}

/// Runs `steps`, calling `apply` on each; a failure reports the steps run so far.
fn run<S: std::fmt::Debug>(
    steps: &[S],
    mut apply: impl FnMut(&S) -> Result<String, String>,
) -> Result<(), TestCaseError> {
    let mut trace = String::new();
    for (index, step) in steps.iter().enumerate() {
        match apply(step) {
            Ok(outcome) => {
                let _ = writeln!(trace, "  {index:>2}: {step:?} -> {outcome}");
            }
            Err(problem) => {
                let _ = writeln!(trace, "  {index:>2}: {step:?} -> FAILED: {problem}");
                return Err(TestCaseError::fail(format!(
                    "step {index} ({step:?}) disagrees with the model\n{trace}"
                )));
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Plain queues
// ---------------------------------------------------------------------------------------------

const QUEUES: [&str; 2] = ["alpha", "beta"];

#[derive(Debug, Clone)]
enum Plain {
    Push {
        q: usize,
        pad: usize,
    },
    /// `set alpha+beta`: one item into both queues.
    PushBoth {
        pad: usize,
    },
    Pop {
        q: usize,
    },
    Open {
        q: usize,
    },
    Close(usize),
    Abort(usize),
    Peek {
        q: usize,
    },
    Flush {
        q: usize,
    },
    Delete {
        q: usize,
    },
    Restart,
    /// Time passes: open reads held longer than the timeout go back.
    Wait(u64),
}

fn plain_step() -> impl Strategy<Value = Plain> {
    let q = 0..QUEUES.len();
    prop_oneof![
        4 => (q.clone(), 0..4usize).prop_map(|(q, pad)| Plain::Push { q, pad }),
        1 => (0..4usize).prop_map(|pad| Plain::PushBoth { pad }),
        2 => q.clone().prop_map(|q| Plain::Pop { q }),
        3 => q.clone().prop_map(|q| Plain::Open { q }),
        2 => (0..MAX_LEASES).prop_map(Plain::Close),
        2 => (0..MAX_LEASES).prop_map(Plain::Abort),
        1 => q.clone().prop_map(|q| Plain::Peek { q }),
        1 => q.clone().prop_map(|q| Plain::Flush { q }),
        1 => q.prop_map(|q| Plain::Delete { q }),
        1 => Just(Plain::Restart),
        2 => wait_ms().prop_map(Plain::Wait),
    ]
}

/// One queue as SPEC describes it: items given back (by abort or restart) are served before
/// all others, oldest id first; then the rest in push order.
#[derive(Debug, Default)]
struct PlainQueue {
    /// Created (by a put or a read); `flush` never creates.
    exists: bool,
    returned: BTreeMap<u64, Vec<u8>>,
    fresh: VecDeque<MItem>,
}

impl PlainQueue {
    fn head(&self) -> Option<MItem> {
        match self.returned.iter().next() {
            Some((&id, data)) => Some(MItem {
                id,
                data: data.clone(),
            }),
            None => self.fresh.front().cloned(),
        }
    }

    fn take(&mut self) -> Option<MItem> {
        match self.returned.pop_first() {
            Some((id, data)) => Some(MItem { id, data }),
            None => self.fresh.pop_front(),
        }
    }

    fn give_back(&mut self, item: MItem) {
        self.returned.insert(item.id, item.data);
    }

    fn items(&self) -> u64 {
        (self.returned.len() + self.fresh.len()) as u64
    }

    fn bytes(&self) -> u64 {
        let returned: usize = self.returned.values().map(Vec::len).sum();
        let fresh: usize = self.fresh.iter().map(|item| item.data.len()).sum();
        (returned + fresh) as u64
    }
}

struct PlainModel {
    queues: Vec<PlainQueue>,
    /// Open reads, parallel to the harness's leases: (queue index, item). The index is `None`
    /// once the queue was deleted or the read timed out: closing or aborting that lease then
    /// does nothing.
    open: Vec<(Option<usize>, MItem)>,
    /// When each open read was opened, parallel to `open`.
    opened: Vec<u64>,
    /// Open reads timed out, per queue (in memory: back to 0 on restart and delete).
    timeouts: Vec<u64>,
    ages: Ages,
    next_id: u64,
}

impl PlainModel {
    /// Drops every waiting item past the max age (held ones wait until given back).
    fn expire(&mut self, now: u64) {
        let ages = &self.ages;
        for queue in &mut self.queues {
            queue.returned.retain(|&id, _| !ages.expired(id, now));
            queue.fresh.retain(|item| !ages.expired(item.id, now));
        }
    }
}

struct PlainHarness {
    setup: Setup,
    clock: TestClock,
    dir: TempDir,
    store: Option<Store>,
    leases: Vec<Lease>,
    model: PlainModel,
}

impl PlainHarness {
    fn new(setup: Setup) -> PlainHarness {
        let dir = tempfile::Builder::new()
            .prefix("tern-store-model")
            .tempdir()
            .expect("temp dir");
        let clock = TestClock::new();
        let store = setup.create(dir.path(), &clock.clock);
        PlainHarness {
            setup,
            clock,
            dir,
            store: Some(store),
            leases: Vec::new(),
            model: PlainModel {
                queues: QUEUES.iter().map(|_| PlainQueue::default()).collect(),
                open: Vec::new(),
                opened: Vec::new(),
                timeouts: vec![0; QUEUES.len()],
                ages: Ages::default(),
                next_id: 0,
            },
        }
    }

    fn store(&self) -> &Store {
        self.store.as_ref().expect("store is open")
    }

    fn read(&self, q: usize, mode: ReadMode) -> Result<Option<(Item, Option<Lease>)>, String> {
        self.store()
            .read(QUEUES[q], None, mode)
            .map_err(|e| format!("read failed: {e}"))
    }

    fn apply(&mut self, step: &Plain) -> Result<String, String> {
        let outcome = self.apply_step(step)?;
        self.check_stats()?;
        Ok(outcome)
    }

    fn apply_step(&mut self, step: &Plain) -> Result<String, String> {
        self.model.expire(self.clock.now());
        match *step {
            Plain::Push { q, pad } => {
                let id = self.model.next_id;
                self.model.next_id += 1;
                self.model.ages.pushed(id, self.clock.now());
                let data = payload(id, pad);
                block_on(
                    self.store()
                        .put(&[QUEUES[q].to_string()], id as u32, None, &data),
                )
                .map_err(|e| format!("put failed: {e}"))?;
                self.model.queues[q].exists = true;
                self.model.queues[q].fresh.push_back(MItem { id, data });
                Ok(format!("pushed #{id}"))
            }
            Plain::PushBoth { pad } => {
                let id = self.model.next_id;
                self.model.next_id += 1;
                self.model.ages.pushed(id, self.clock.now());
                let data = payload(id, pad);
                let names: Vec<String> = QUEUES.iter().map(|name| name.to_string()).collect();
                block_on(self.store().put(&names, id as u32, None, &data))
                    .map_err(|e| format!("put failed: {e}"))?;
                for queue in &mut self.model.queues {
                    queue.exists = true;
                    queue.fresh.push_back(MItem {
                        id,
                        data: data.clone(),
                    });
                }
                Ok(format!("pushed #{id} to both"))
            }
            Plain::Pop { q } => {
                let got = self.read(q, ReadMode::Take)?;
                let queue = &mut self.model.queues[q];
                queue.exists = true;
                let want = queue.take();
                if got.as_ref().is_some_and(|(_, lease)| lease.is_some()) {
                    return Err("a plain take came with a lease".into());
                }
                let got = got.map(|(item, _)| item);
                check_item(got.as_ref(), want.as_ref())?;
                Ok(show(got.as_ref().map(Item::data)))
            }
            Plain::Open { q } => {
                if self.leases.len() >= MAX_LEASES {
                    return Ok("skipped (enough leases held)".into());
                }
                let got = self.read(q, ReadMode::Open)?;
                let queue = &mut self.model.queues[q];
                queue.exists = true;
                let want = queue.take();
                let (item, lease) = match got {
                    Some((item, lease)) => (Some(item), lease),
                    None => (None, None),
                };
                check_item(item.as_ref(), want.as_ref())?;
                if let Some(want) = want {
                    let lease = lease.ok_or("an open read came without a lease")?;
                    self.leases.push(lease);
                    self.model.open.push((Some(q), want));
                    self.model.opened.push(self.clock.now());
                }
                Ok(format!(
                    "{} (lease {} of {})",
                    show(item.as_ref().map(Item::data)),
                    self.leases.len().saturating_sub(1),
                    self.leases.len()
                ))
            }
            Plain::Close(i) | Plain::Abort(i) => {
                if self.leases.is_empty() {
                    return Ok("skipped (no lease)".into());
                }
                let i = i % self.leases.len();
                let lease = self.leases.remove(i);
                let (q, item) = self.model.open.remove(i);
                self.model.opened.remove(i);
                let what = show(Some(item.data.as_slice()));
                let stale = if q.is_none() {
                    " (queue deleted or timed out)"
                } else {
                    ""
                };
                if matches!(step, Plain::Close(_)) {
                    lease.close().map_err(|e| format!("close failed: {e}"))?;
                    Ok(format!("closed lease {i}: {what}{stale}"))
                } else {
                    lease.abort();
                    if let Some(q) = q {
                        self.model.queues[q].give_back(item);
                    }
                    Ok(format!("aborted lease {i}: {what}{stale}"))
                }
            }
            Plain::Peek { q } => {
                let got = self.read(q, ReadMode::Peek)?;
                let queue = &mut self.model.queues[q];
                queue.exists = true;
                let want = queue.head();
                let got = got.map(|(item, _)| item);
                check_item(got.as_ref(), want.as_ref())?;
                Ok(show(got.as_ref().map(Item::data)))
            }
            Plain::Flush { q } => {
                block_on(self.store().flush(QUEUES[q], None))
                    .map_err(|e| format!("flush failed: {e}"))?;
                let queue = &mut self.model.queues[q];
                queue.returned.clear();
                queue.fresh.clear();
                Ok("flushed".into())
            }
            Plain::Delete { q } => {
                let existed = block_on(self.store().delete(QUEUES[q], None))
                    .map_err(|e| format!("delete failed: {e}"))?;
                let want = self.model.queues[q].exists;
                self.model.queues[q] = PlainQueue::default();
                self.model.timeouts[q] = 0;
                for (oq, _) in &mut self.model.open {
                    if *oq == Some(q) {
                        *oq = None;
                    }
                }
                if existed != want {
                    return Err(format!("delete said existed={existed}, model {want}"));
                }
                Ok(if existed { "DELETED" } else { "NOT_FOUND" }.into())
            }
            Plain::Restart => {
                // Every lease is lost without a close: its item is waiting again.
                self.leases.clear();
                self.model.opened.clear();
                for (q, item) in self.model.open.drain(..) {
                    if let Some(q) = q {
                        self.model.queues[q].give_back(item);
                    }
                }
                self.model.timeouts.fill(0);
                self.store = None;
                self.store = Some(self.setup.reopen(self.dir.path(), &self.clock.clock));
                Ok("restarted".into())
            }
            Plain::Wait(ms) => {
                let now = self.clock.advance(ms);
                let model = &mut self.model;
                let mut given_back = 0;
                for ((q, item), opened) in model.open.iter_mut().zip(&model.opened) {
                    if now - opened > OPEN_TIMEOUT_MS {
                        if let Some(q) = q.take() {
                            model.queues[q].give_back(item.clone());
                            model.timeouts[q] += 1;
                            given_back += 1;
                        }
                    }
                }
                Ok(format!("{ms} ms later: {given_back} open reads given back"))
            }
        }
    }

    fn check_stats(&mut self) -> Result<(), String> {
        self.model.expire(self.clock.now());
        let stats = self.store().stats();
        for (q, name) in QUEUES.iter().enumerate() {
            let queue = &self.model.queues[q];
            let open = self
                .model
                .open
                .iter()
                .filter(|(oq, _)| *oq == Some(q))
                .count() as u64;
            let want = (queue.items(), queue.bytes(), open, self.model.timeouts[q]);
            match find_stats(&stats, name) {
                Some(got) => {
                    if !queue.exists {
                        return Err(format!("stats list queue {name}, never created"));
                    }
                    let got = (
                        got.items,
                        got.bytes,
                        got.open_transactions,
                        got.open_timeouts,
                    );
                    if got != want {
                        return Err(format!(
                            "stats of {name} (items, bytes, open_transactions, \
                             open_timeouts): store {got:?}, model {want:?}"
                        ));
                    }
                }
                None => {
                    if queue.exists {
                        return Err(format!("stats miss queue {name}; model {want:?}"));
                    }
                }
            }
        }
        Ok(())
    }
}

fn run_plain(setup: Setup, steps: &[Plain]) -> Result<(), TestCaseError> {
    let mut harness = PlainHarness::new(setup);
    run(steps, |step| harness.apply(step))
}

// ---------------------------------------------------------------------------------------------
// Cursors
// ---------------------------------------------------------------------------------------------

const QUEUE: &str = "work";
const CURSORS: [&str; 2] = ["billing", "audit"];

#[derive(Debug, Clone)]
enum Cur {
    Push {
        pad: usize,
    },
    /// Plain `get q`.
    Pop,
    /// Plain `get q/open` (one plain lease at most), then `PlainEnd` closes or aborts it.
    PlainOpen,
    PlainEnd {
        close: bool,
    },
    Take(usize),
    Open(usize),
    Close(usize, usize),
    Abort(usize, usize),
    Peek(usize),
    FlushCursor(usize),
    /// `flush <queue>`: also moves every cursor to the tail.
    FlushQueue,
    DeleteCursor(usize),
    DeleteQueue,
    Restart,
    /// Time passes: open reads held longer than the timeout go back.
    Wait(u64),
    /// `get q.c/rewind`.
    Rewind(usize),
    /// `get q.c/seek=<now - ms>`.
    Seek(usize, u64),
}

fn cursor_step() -> impl Strategy<Value = Cur> {
    let c = 0..CURSORS.len();
    prop_oneof![
        5 => (0..4usize).prop_map(|pad| Cur::Push { pad }),
        2 => Just(Cur::Pop),
        1 => Just(Cur::PlainOpen),
        1 => any::<bool>().prop_map(|close| Cur::PlainEnd { close }),
        3 => c.clone().prop_map(Cur::Take),
        3 => c.clone().prop_map(Cur::Open),
        2 => (c.clone(), 0..MAX_LEASES).prop_map(|(c, i)| Cur::Close(c, i)),
        2 => (c.clone(), 0..MAX_LEASES).prop_map(|(c, i)| Cur::Abort(c, i)),
        1 => c.clone().prop_map(Cur::Peek),
        1 => c.clone().prop_map(Cur::FlushCursor),
        1 => Just(Cur::FlushQueue),
        1 => c.clone().prop_map(Cur::DeleteCursor),
        1 => Just(Cur::DeleteQueue),
        1 => Just(Cur::Restart),
        2 => wait_ms().prop_map(Cur::Wait),
        1 => c.clone().prop_map(Cur::Rewind),
        1 => (c, prop_oneof![Just(0u64), Just(50), Just(100), Just(151), Just(10_000)])
            .prop_map(|(c, back)| Cur::Seek(c, back)),
    ]
}

/// One cursor as SPEC describes it.
#[derive(Debug, Default)]
struct MCursor {
    created: bool,
    /// Next model id to read from the queue: it has read (or skipped) everything before.
    position: u64,
    /// Failed reads waiting, served first, oldest id first; copies of the items.
    failed: BTreeMap<u64, Vec<u8>>,
    /// Open reads, parallel to the harness's leases of this cursor; `false` once the cursor
    /// (or its queue) was deleted or the read timed out: closing or aborting that lease then
    /// does nothing.
    open: Vec<(MItem, bool)>,
    /// When each open read was opened, parallel to `open`.
    opened: Vec<u64>,
}

impl MCursor {
    /// Deleted: gone with its failed reads; its open reads are dropped.
    fn delete(&mut self) -> bool {
        let existed = self.created;
        let open = std::mem::take(&mut self.open);
        *self = MCursor {
            open: open.into_iter().map(|(item, _)| (item, false)).collect(),
            opened: std::mem::take(&mut self.opened),
            ..MCursor::default()
        };
        existed
    }
}

#[derive(Debug)]
struct CursorModel {
    exists: bool,
    /// Every item in the queue (waiting or held open by the plain reader), by id.
    items: BTreeMap<u64, Vec<u8>>,
    /// The plain reader's open read, if any, and when it was opened.
    plain_open: Option<MItem>,
    plain_opened: u64,
    /// Open reads timed out (in memory: back to 0 on restart and delete).
    timeouts: u64,
    ages: Ages,
    /// The clock, as of the last [`CursorModel::expire`].
    now: u64,
    /// The plain reader's open read on a queue deleted since.
    plain_stale: Option<MItem>,
    cursors: Vec<MCursor>,
    next_id: u64,
}

impl CursorModel {
    /// Drops every waiting item past the max age: from the queue (but the plain reader's
    /// open one) and from the failed reads. Cursors skip the plain reader's too.
    fn expire(&mut self, now: u64) {
        self.now = now;
        let ages = &self.ages;
        let open = self.plain_open.as_ref().map(|item| item.id);
        self.items
            .retain(|&id, _| Some(id) == open || !ages.expired(id, now));
        for cursor in &mut self.cursors {
            cursor.failed.retain(|&id, _| !ages.expired(id, now));
        }
        // Each step ends with `stats`, which peeks every cursor: one without failed reads
        // waiting moves past what a read would pass (expired, or held open by its reader).
        for c in 0..self.cursors.len() {
            let cursor = &self.cursors[c];
            if !cursor.created || !cursor.failed.is_empty() {
                continue;
            }
            let held = |id: u64| {
                cursor
                    .open
                    .iter()
                    .any(|(item, live)| *live && item.id == id)
            };
            let passed = self
                .items
                .range(cursor.position..)
                .take_while(|(&id, _)| !self.live(id) || held(id))
                .last()
                .map(|(&id, _)| id + 1);
            if let Some(position) = passed {
                self.cursors[c].position = position;
            }
        }
    }

    /// Whether item `id` (in the queue) is there for cursors to read.
    fn live(&self, id: u64) -> bool {
        !self.ages.expired(id, self.now)
    }

    /// The oldest item not held open by the plain reader.
    fn plain_head(&self) -> Option<MItem> {
        let open = self.plain_open.as_ref().map(|item| item.id);
        self.items
            .iter()
            .find(|(id, _)| Some(**id) != open)
            .map(|(&id, data)| MItem {
                id,
                data: data.clone(),
            })
    }

    fn ensure_cursor(&mut self, c: usize) {
        self.exists = true;
        let cursor = &mut self.cursors[c];
        if !cursor.created {
            // At the current head: it sees every item still in the queue.
            cursor.created = true;
            cursor.position = 0;
            cursor.failed.clear();
        }
    }

    /// What the next read of cursor `c` returns, and whether it comes from its failed reads.
    fn cursor_next(&self, c: usize) -> Option<(MItem, bool)> {
        let cursor = &self.cursors[c];
        if let Some((&id, data)) = cursor.failed.iter().next() {
            let item = MItem {
                id,
                data: data.clone(),
            };
            return Some((item, true));
        }
        self.cursor_next_in_queue(c).map(|item| (item, false))
    }

    /// What the next read of cursor `c` returns from the queue (after its failed reads). One
    /// it holds open (met again after a replay) is passed: it is the reader's already.
    fn cursor_next_in_queue(&self, c: usize) -> Option<MItem> {
        let cursor = &self.cursors[c];
        let held = |id: u64| {
            cursor
                .open
                .iter()
                .any(|(item, live)| *live && item.id == id)
        };
        self.items
            .range(cursor.position..)
            .find(|(&id, _)| self.live(id) && !held(id))
            .map(|(&id, data)| MItem {
                id,
                data: data.clone(),
            })
    }

    /// Moves cursor `c` past what it just read.
    fn cursor_consume(&mut self, c: usize, item: &MItem, from_failed: bool) {
        let cursor = &mut self.cursors[c];
        if from_failed {
            cursor.failed.remove(&item.id);
        } else {
            cursor.position = item.id + 1;
        }
    }

    /// `flush <queue>.<cursor>`: failed reads dropped (open ones stay open), to the tail.
    fn flush_cursor(&mut self, c: usize) {
        let tail = self.next_id;
        let cursor = &mut self.cursors[c];
        if cursor.created {
            cursor.failed.clear();
            cursor.position = cursor.position.max(tail);
        }
    }

    /// (items, failed_items, open_transactions) of cursor `c`.
    fn cursor_stats(&self, c: usize) -> (u64, u64, u64) {
        let cursor = &self.cursors[c];
        let unread = self
            .items
            .range(cursor.position..)
            .filter(|(&id, _)| self.live(id))
            .count();
        (
            (unread + cursor.failed.len()) as u64,
            cursor.failed.len() as u64,
            cursor.open.iter().filter(|(_, live)| *live).count() as u64,
        )
    }
}

struct CursorHarness {
    setup: Setup,
    clock: TestClock,
    dir: TempDir,
    store: Option<Store>,
    plain_lease: Option<Lease>,
    leases: Vec<Vec<Lease>>,
    model: CursorModel,
}

impl CursorHarness {
    fn new(setup: Setup) -> CursorHarness {
        let dir = tempfile::Builder::new()
            .prefix("tern-cursor-model")
            .tempdir()
            .expect("temp dir");
        let clock = TestClock::new();
        let store = setup.create(dir.path(), &clock.clock);
        CursorHarness {
            setup,
            clock,
            dir,
            store: Some(store),
            plain_lease: None,
            leases: CURSORS.iter().map(|_| Vec::new()).collect(),
            model: CursorModel {
                exists: false,
                items: BTreeMap::new(),
                plain_open: None,
                plain_opened: 0,
                timeouts: 0,
                ages: Ages::default(),
                now: CLOCK_START_MS,
                plain_stale: None,
                cursors: CURSORS.iter().map(|_| MCursor::default()).collect(),
                next_id: 0,
            },
        }
    }

    fn store(&self) -> &Store {
        self.store.as_ref().expect("store is open")
    }

    fn read(
        &self,
        cursor: Option<usize>,
        mode: ReadMode,
    ) -> Result<Option<(Item, Option<Lease>)>, String> {
        self.store()
            .read(QUEUE, cursor.map(|c| CURSORS[c]), mode)
            .map_err(|e| format!("read failed: {e}"))
    }

    fn apply(&mut self, step: &Cur) -> Result<String, String> {
        let outcome = self.apply_step(step)?;
        self.check_stats()?;
        Ok(outcome)
    }

    fn apply_step(&mut self, step: &Cur) -> Result<String, String> {
        self.model.expire(self.clock.now());
        match *step {
            Cur::Push { pad } => {
                let id = self.model.next_id;
                self.model.next_id += 1;
                self.model.ages.pushed(id, self.clock.now());
                let data = payload(id, pad);
                block_on(
                    self.store()
                        .put(&[QUEUE.to_string()], id as u32, None, &data),
                )
                .map_err(|e| format!("put failed: {e}"))?;
                self.model.exists = true;
                self.model.items.insert(id, data);
                Ok(format!("pushed #{id}"))
            }
            Cur::Pop => {
                let got = self.read(None, ReadMode::Take)?.map(|(item, _)| item);
                self.model.exists = true;
                let want = self.model.plain_head();
                if let Some(want) = &want {
                    self.model.items.remove(&want.id);
                }
                check_item(got.as_ref(), want.as_ref())?;
                Ok(show(got.as_ref().map(Item::data)))
            }
            Cur::PlainOpen => {
                if self.plain_lease.is_some() {
                    return Ok("skipped (plain lease held)".into());
                }
                let got = self.read(None, ReadMode::Open)?;
                self.model.exists = true;
                let want = self.model.plain_head();
                let (item, lease) = match got {
                    Some((item, lease)) => (Some(item), lease),
                    None => (None, None),
                };
                check_item(item.as_ref(), want.as_ref())?;
                if want.is_some() {
                    self.plain_lease = Some(lease.ok_or("an open read came without a lease")?);
                    self.model.plain_open = want;
                    self.model.plain_opened = self.clock.now();
                }
                Ok(show(item.as_ref().map(Item::data)))
            }
            Cur::PlainEnd { close } => {
                let lease = match self.plain_lease.take() {
                    Some(lease) => lease,
                    None => return Ok("skipped (no plain lease)".into()),
                };
                let (item, stale) = match self.model.plain_open.take() {
                    Some(item) => (item, ""),
                    None => {
                        let item = self.model.plain_stale.take();
                        let item = item.expect("model plain lease");
                        (item, " (queue deleted or timed out)")
                    }
                };
                let what = show(Some(item.data.as_slice()));
                if close {
                    lease.close().map_err(|e| format!("close failed: {e}"))?;
                    if stale.is_empty() {
                        self.model.items.remove(&item.id);
                    }
                    Ok(format!("closed {what}{stale}"))
                } else {
                    lease.abort();
                    Ok(format!("aborted {what}{stale}"))
                }
            }
            Cur::Take(c) | Cur::Peek(c) => {
                let mode = match step {
                    Cur::Take(_) => ReadMode::Take,
                    _ => ReadMode::Peek,
                };
                let got = self.read(Some(c), mode)?.map(|(item, _)| item);
                self.model.ensure_cursor(c);
                let next = self.model.cursor_next(c);
                if let (ReadMode::Take, Some((item, from_failed))) = (mode, &next) {
                    self.model.cursor_consume(c, item, *from_failed);
                }
                check_item(got.as_ref(), next.as_ref().map(|(item, _)| item))?;
                Ok(show(got.as_ref().map(Item::data)))
            }
            Cur::Open(c) => {
                if self.leases[c].len() >= MAX_LEASES {
                    return Ok("skipped (enough leases held)".into());
                }
                let got = self.read(Some(c), ReadMode::Open)?;
                self.model.ensure_cursor(c);
                let next = self.model.cursor_next(c);
                let (item, lease) = match got {
                    Some((item, lease)) => (Some(item), lease),
                    None => (None, None),
                };
                check_item(item.as_ref(), next.as_ref().map(|(item, _)| item))?;
                if let Some((want, from_failed)) = next {
                    self.model.cursor_consume(c, &want, from_failed);
                    self.model.cursors[c].open.push((want, true));
                    self.model.cursors[c].opened.push(self.clock.now());
                    self.leases[c].push(lease.ok_or("an open read came without a lease")?);
                }
                Ok(format!(
                    "{} (lease {} of {})",
                    show(item.as_ref().map(Item::data)),
                    self.leases[c].len().saturating_sub(1),
                    self.leases[c].len()
                ))
            }
            Cur::Close(c, i) | Cur::Abort(c, i) => {
                if self.leases[c].is_empty() {
                    return Ok("skipped (no lease)".into());
                }
                let i = i % self.leases[c].len();
                let lease = self.leases[c].remove(i);
                let (item, live) = self.model.cursors[c].open.remove(i);
                self.model.cursors[c].opened.remove(i);
                let what = show(Some(item.data.as_slice()));
                let stale = if live {
                    ""
                } else {
                    " (cursor deleted or timed out)"
                };
                if matches!(step, Cur::Close(..)) {
                    lease.close().map_err(|e| format!("close failed: {e}"))?;
                    Ok(format!("closed lease {i}: {what}{stale}"))
                } else {
                    lease.abort();
                    if live {
                        self.model.cursors[c].failed.insert(item.id, item.data);
                    }
                    Ok(format!("aborted lease {i}: {what}{stale}"))
                }
            }
            Cur::FlushCursor(c) => {
                block_on(self.store().flush(QUEUE, Some(CURSORS[c])))
                    .map_err(|e| format!("flush failed: {e}"))?;
                self.model.flush_cursor(c);
                Ok("flushed".into())
            }
            Cur::FlushQueue => {
                block_on(self.store().flush(QUEUE, None))
                    .map_err(|e| format!("flush failed: {e}"))?;
                let open = self.model.plain_open.as_ref().map(|item| item.id);
                self.model.items.retain(|id, _| Some(*id) == open);
                for c in 0..CURSORS.len() {
                    self.model.flush_cursor(c);
                }
                Ok("flushed".into())
            }
            Cur::DeleteCursor(c) => {
                let existed = block_on(self.store().delete(QUEUE, Some(CURSORS[c])))
                    .map_err(|e| format!("delete failed: {e}"))?;
                let want = self.model.cursors[c].delete();
                if existed != want {
                    return Err(format!("delete said existed={existed}, model {want}"));
                }
                Ok(if existed { "DELETED" } else { "NOT_FOUND" }.into())
            }
            Cur::DeleteQueue => {
                let existed = block_on(self.store().delete(QUEUE, None))
                    .map_err(|e| format!("delete failed: {e}"))?;
                let model = &mut self.model;
                let want = model.exists;
                model.exists = false;
                model.items.clear();
                model.timeouts = 0;
                if let Some(item) = model.plain_open.take() {
                    model.plain_stale = Some(item);
                }
                for cursor in &mut model.cursors {
                    cursor.delete();
                }
                if existed != want {
                    return Err(format!("delete said existed={existed}, model {want}"));
                }
                Ok(if existed { "DELETED" } else { "NOT_FOUND" }.into())
            }
            Cur::Restart => {
                // Every lease is lost without a close: a plain item is waiting again, a
                // cursor's open read is in its failed reads.
                self.plain_lease = None;
                self.model.plain_open = None;
                self.model.plain_stale = None;
                for leases in &mut self.leases {
                    leases.clear();
                }
                for cursor in &mut self.model.cursors {
                    cursor.opened.clear();
                    for (item, live) in std::mem::take(&mut cursor.open) {
                        if live {
                            cursor.failed.insert(item.id, item.data);
                        }
                    }
                }
                self.model.timeouts = 0;
                self.store = None;
                self.store = Some(self.setup.reopen(self.dir.path(), &self.clock.clock));
                Ok("restarted".into())
            }
            Cur::Rewind(c) | Cur::Seek(c, _) => {
                let (replay, position) = match *step {
                    Cur::Seek(_, back) => {
                        let ms = self.clock.now() - back;
                        let ages = &self.model.ages.0;
                        let first = ages.iter().find(|(_, &at)| at >= ms).map(|(&id, _)| id);
                        (Replay::Seek(ms), first.unwrap_or(self.model.next_id))
                    }
                    _ => (Replay::Rewind, 0),
                };
                block_on(self.store().replay(QUEUE, CURSORS[c], replay))
                    .map_err(|e| format!("replay failed: {e}"))?;
                self.model.ensure_cursor(c);
                self.model.cursors[c].position = position;
                Ok(format!("{replay:?}: at #{position}"))
            }
            Cur::Wait(ms) => {
                let now = self.clock.advance(ms);
                let model = &mut self.model;
                let before = model.timeouts;
                if now - model.plain_opened > OPEN_TIMEOUT_MS {
                    // Waiting again; its lease's later close or abort does nothing.
                    if let Some(item) = model.plain_open.take() {
                        model.plain_stale = Some(item);
                        model.timeouts += 1;
                    }
                }
                for cursor in &mut model.cursors {
                    for ((item, live), opened) in cursor.open.iter_mut().zip(&cursor.opened) {
                        if *live && now - opened > OPEN_TIMEOUT_MS {
                            *live = false;
                            cursor.failed.insert(item.id, item.data.clone());
                            model.timeouts += 1;
                        }
                    }
                }
                let given_back = model.timeouts - before;
                Ok(format!("{ms} ms later: {given_back} open reads given back"))
            }
        }
    }

    fn check_stats(&mut self) -> Result<(), String> {
        self.model.expire(self.clock.now());
        let stats = self.store().stats();
        let model = &self.model;
        let got = match find_stats(&stats, QUEUE) {
            Some(got) => got,
            None if model.exists => return Err(format!("stats miss queue {QUEUE}")),
            None => return Ok(()),
        };
        if !model.exists {
            return Err(format!("stats list queue {QUEUE}, never created"));
        }
        let plain_open = model.plain_open.as_ref();
        let waiting: Vec<&Vec<u8>> = model
            .items
            .iter()
            .filter(|(id, _)| Some(**id) != plain_open.map(|item| item.id))
            .map(|(_, data)| data)
            .collect();
        let want = (
            waiting.len() as u64,
            waiting.iter().map(|data| data.len() as u64).sum::<u64>(),
            u64::from(plain_open.is_some()),
            model.timeouts,
        );
        let have = (
            got.items,
            got.bytes,
            got.open_transactions,
            got.open_timeouts,
        );
        if have != want {
            return Err(format!(
                "stats of {QUEUE} (items, bytes, open_transactions, open_timeouts): \
                 store {have:?}, model {want:?}"
            ));
        }
        let created: Vec<&str> = CURSORS
            .iter()
            .enumerate()
            .filter(|(c, _)| model.cursors[*c].created)
            .map(|(_, name)| *name)
            .collect();
        let mut listed: Vec<&str> = got.cursors.iter().map(|c| c.name.as_str()).collect();
        listed.sort_unstable();
        let mut expected = created.clone();
        expected.sort_unstable();
        if listed != expected {
            return Err(format!("stats list cursors {listed:?}, model {expected:?}"));
        }
        for (c, name) in CURSORS.iter().enumerate() {
            if let Some(cursor) = got.cursors.iter().find(|cursor| cursor.name == *name) {
                let have = (cursor.items, cursor.failed_items, cursor.open_transactions);
                let want = model.cursor_stats(c);
                if have != want {
                    return Err(format!(
                        "stats of cursor {name} (items, failed_items, open_transactions): \
                         store {have:?}, model {want:?}"
                    ));
                }
            }
        }
        Ok(())
    }
}

fn run_cursors(setup: Setup, steps: &[Cur]) -> Result<(), TestCaseError> {
    let mut harness = CursorHarness::new(setup);
    run(steps, |step| harness.apply(step))
}

proptest! {
    #![proptest_config(proptest_config())]

    #[test]
    fn plain_queues_follow_the_model(steps in prop::collection::vec(plain_step(), 1..=MAX_STEPS)) {
        for_every_format(SyncMode::Never, |setup| run_plain(setup, &steps))?;
    }

    #[test]
    fn plain_queues_follow_the_model_with_sync_always(
        steps in prop::collection::vec(plain_step(), 1..=MAX_STEPS)
    ) {
        for_every_format(SyncMode::Always, |setup| run_plain(setup, &steps))?;
    }

    #[test]
    fn cursors_follow_the_model(steps in prop::collection::vec(cursor_step(), 1..=MAX_STEPS)) {
        for_every_format(SyncMode::Never, |setup| run_cursors(setup, &steps))?;
    }

    #[test]
    fn cursors_follow_the_model_with_sync_always(
        steps in prop::collection::vec(cursor_step(), 1..=MAX_STEPS)
    ) {
        for_every_format(SyncMode::Always, |setup| run_cursors(setup, &steps))?;
    }
}

/// A queue deeper than the store's in-memory head index (1 024 ids) keeps strict FIFO order
/// through index rebuilds: reads with aborts (an item put back), peeks, sets arriving while it
/// drains, another queue's sets taking ids in between, a flush and a restart.
#[test]
fn deep_queue_stays_in_order_past_the_head_index() {
    let dir = tempfile::Builder::new()
        .prefix("tern-store-deep")
        .tempdir()
        .expect("temp dir");
    let setup = Setup {
        format: &FORMATS[0],
        sync: SyncMode::Never,
    };
    let clock = TestClock::new();
    let mut store = setup.create(dir.path(), &clock.clock);
    let (q, other) = ("deep".to_string(), "other".to_string());
    let mut expected: VecDeque<u64> = VecDeque::new();
    let mut next = 0u64;
    let mut push = |store: &Store, expected: &mut VecDeque<u64>| {
        block_on(store.put(std::slice::from_ref(&q), 0, None, &next.to_be_bytes())).unwrap();
        block_on(store.put(std::slice::from_ref(&other), 0, None, b"x")).unwrap();
        expected.push_back(next);
        next += 1;
    };
    let number = |item: &Item| u64::from_be_bytes(item.data().try_into().unwrap());
    for _ in 0..2500 {
        push(&store, &mut expected);
    }
    let mut reads = 0;
    while let Some(want) = expected.front().copied() {
        reads += 1;
        if reads % 97 == 0 {
            let (item, lease) = store.read("deep", None, ReadMode::Open).unwrap().unwrap();
            assert_eq!(number(&item), want, "open read {reads}");
            lease.unwrap().abort();
        }
        if reads % 89 == 0 {
            let (item, _) = store.read("deep", None, ReadMode::Peek).unwrap().unwrap();
            assert_eq!(number(&item), want, "peek {reads}");
        }
        if reads % 7 == 0 {
            push(&store, &mut expected);
        }
        if reads == 1800 {
            drop(store);
            store = setup.reopen(dir.path(), &clock.clock);
        }
        let (item, _) = store.read("deep", None, ReadMode::Take).unwrap().unwrap();
        assert_eq!(number(&item), want, "read {reads}");
        expected.pop_front();
    }
    assert!(store.read("deep", None, ReadMode::Take).unwrap().is_none());
    // After a flush the queue is empty, and new sets are read in order again.
    for _ in 0..3 {
        push(&store, &mut expected);
    }
    block_on(store.flush("deep", None)).unwrap();
    assert!(store.read("deep", None, ReadMode::Take).unwrap().is_none());
    expected.clear();
    for _ in 0..1100 {
        push(&store, &mut expected);
    }
    for want in expected {
        let (item, _) = store.read("deep", None, ReadMode::Take).unwrap().unwrap();
        assert_eq!(number(&item), want);
    }
    assert!(store.read("deep", None, ReadMode::Take).unwrap().is_none());
}
