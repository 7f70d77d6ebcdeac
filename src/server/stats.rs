//! Server-wide counters and latency histograms, and the `stats` and `dump_stats` replies,
//! which show the same per-queue and per-cursor figures from one list (`--metrics` reads the
//! same list). Imports nothing of the server but `logline`.

use super::logline::LogBudget;
use crate::protocol::Reply;
use crate::queue::{now_ms, CursorStats, QueueStats};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Counters shared by every connection; relaxed atomics (histograms: atomic buckets), read
/// only by `stats` and the metrics scrape.
pub struct Counters {
    pub started: Instant,
    pub curr_connections: AtomicU64,
    pub total_connections: AtomicU64,
    pub cmd_get: AtomicU64,
    pub cmd_set: AtomicU64,
    pub cmd_peek: AtomicU64,
    pub get_hits: AtomicU64,
    pub get_misses: AtomicU64,
    pub total_items: AtomicU64,
    pub bytes_read: AtomicU64,
    pub bytes_written: AtomicU64,
    /// Connections turned away at `--max-connections`.
    pub refused_connections: AtomicU64,
    /// Error replies sent, by their first word.
    pub errors: ErrorCounts,
    pub latency: Latency,
    /// Log lines of protocol errors (a client's doing).
    pub client_errors_log: LogBudget,
    /// Log lines of storage failures met by commands (one failure fails every command).
    pub storage_errors_log: LogBudget,
}

/// Error replies sent, by their first word (see `protocol::Error::reply_kind`).
#[derive(Default)]
pub struct ErrorCounts {
    pub error: AtomicU64,
    pub client_error: AtomicU64,
    pub server_error: AtomicU64,
}

impl ErrorCounts {
    /// Counts one error reply whose first word is `kind`.
    pub fn count(&self, kind: &str) {
        let counter = match kind {
            "ERROR" => &self.error,
            "CLIENT_ERROR" => &self.client_error,
            _ => &self.server_error,
        };
        bump(counter, 1);
    }

    /// `(first word, count)` of each kind.
    pub fn by_kind(&self) -> [(&'static str, u64); 3] {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        [
            ("ERROR", get(&self.error)),
            ("CLIENT_ERROR", get(&self.client_error)),
            ("SERVER_ERROR", get(&self.server_error)),
        ]
    }
}

/// Command latency, from the command's start to its reply being ready (a `set` under
/// `--sync always`: until durable; a read that waits (`/t=`): the wait included).
pub struct Latency {
    /// By command: `set`, `get` (plain and peek keys), `open`, `close`.
    pub by_command: prometheus::HistogramVec,
    pub set: prometheus::Histogram,
    pub get: prometheus::Histogram,
    pub open: prometheus::Histogram,
    pub close: prometheus::Histogram,
}

impl Latency {
    fn new() -> Latency {
        let opts = prometheus::HistogramOpts::new(
            "tern_command_duration_seconds",
            "Time from a command's start until its reply is ready, by command.",
        )
        .buckets(prometheus::exponential_buckets(0.000_01, 2.0, 20).expect("buckets"));
        let by_command =
            prometheus::HistogramVec::new(opts, &["command"]).expect("valid histogram options");
        // The children are looked up once here, so observing takes no lock.
        let child = |command: &str| by_command.with_label_values(&[command]);
        Latency {
            set: child("set"),
            get: child("get"),
            open: child("open"),
            close: child("close"),
            by_command,
        }
    }
}

impl Counters {
    pub fn new() -> Counters {
        let zero = || AtomicU64::new(0);
        Counters {
            started: Instant::now(),
            curr_connections: zero(),
            total_connections: zero(),
            cmd_get: zero(),
            cmd_set: zero(),
            cmd_peek: zero(),
            get_hits: zero(),
            get_misses: zero(),
            total_items: zero(),
            bytes_read: zero(),
            bytes_written: zero(),
            refused_connections: zero(),
            errors: ErrorCounts::default(),
            latency: Latency::new(),
            client_errors_log: LogBudget::new("client protocol errors"),
            storage_errors_log: LogBudget::new("storage errors"),
        }
    }
}

/// Adds one to a counter.
pub fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

/// Hands the whole `stats` reply to `emit` line by line, `END` included, in SPEC.md's order.
pub fn encode(
    mut emit: impl FnMut(Reply),
    counters: &Counters,
    queues: &[QueueStats],
    disk_bytes: u64,
) {
    let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    let items: u64 = queues.iter().map(|q| q.items).sum();
    let bytes: u64 = queues.iter().map(|q| q.bytes).sum();
    let version = crate::VERSION;
    let globals: [(&str, &dyn std::fmt::Display); 18] = [
        ("uptime", &counters.started.elapsed().as_secs()),
        ("time", &(now_ms() / 1000)),
        ("version", &version),
        ("pid", &std::process::id()),
        ("curr_connections", &get(&counters.curr_connections)),
        ("total_connections", &get(&counters.total_connections)),
        ("cmd_get", &get(&counters.cmd_get)),
        ("cmd_set", &get(&counters.cmd_set)),
        ("cmd_peek", &get(&counters.cmd_peek)),
        ("get_hits", &get(&counters.get_hits)),
        ("get_misses", &get(&counters.get_misses)),
        ("curr_items", &items),
        ("total_items", &get(&counters.total_items)),
        ("bytes", &bytes),
        ("bytes_read", &get(&counters.bytes_read)),
        ("bytes_written", &get(&counters.bytes_written)),
        ("disk_bytes", &disk_bytes),
        ("rss_bytes", &rss_bytes()),
    ];
    for (name, value) in globals {
        emit(Reply::Stat(name, value));
    }
    for queue in queues {
        let q = &queue.name;
        for (name, value) in queue_fields(queue) {
            emit(Reply::Stat(&format!("queue_{q}_{name}"), &value));
        }
        for cursor in &queue.cursors {
            let c = &cursor.name;
            for (name, value) in cursor_fields(cursor) {
                emit(Reply::Stat(&format!("queue_{q}.{c}_{name}"), &value));
            }
        }
    }
    emit(Reply::End);
}

/// Hands the whole `dump_stats` reply to `emit`, `END` included: the figures of `stats`, in
/// the same order, one Kestrel-style block per queue and per cursor.
pub fn encode_dump(mut emit: impl FnMut(Reply), queues: &[QueueStats]) {
    for queue in queues {
        let q = &queue.name;
        emit(Reply::StatBlock {
            name: q,
            fields: &queue_fields(queue),
        });
        for cursor in &queue.cursors {
            emit(Reply::StatBlock {
                name: &format!("{q}.{}", cursor.name),
                fields: &cursor_fields(cursor),
            });
        }
    }
    emit(Reply::End);
}

/// A queue's figures, in SPEC.md's order.
pub fn queue_fields(queue: &QueueStats) -> [(&'static str, u64); 8] {
    [
        ("items", queue.items),
        ("bytes", queue.bytes),
        ("total_items", queue.total_items),
        ("expired_items", queue.expired_items),
        ("open_transactions", queue.open_transactions),
        ("waiters", queue.waiters),
        ("age_ms", queue.age_ms),
        ("open_timeouts", queue.open_timeouts),
    ]
}

/// A cursor's figures, in SPEC.md's order.
pub fn cursor_fields(cursor: &CursorStats) -> [(&'static str, u64); 4] {
    [
        ("items", cursor.items),
        ("failed_items", cursor.failed_items),
        ("open_transactions", cursor.open_transactions),
        ("age_ms", cursor.age_ms),
    ]
}

/// Resident memory of this process (Linux; 0 elsewhere).
pub fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|field| field.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf only reads a constant of the system.
    let page_size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * u64::try_from(page_size).unwrap_or(4096)
}
