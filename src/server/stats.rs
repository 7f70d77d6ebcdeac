//! Server-wide counters, and the `stats` and `dump_stats` replies, which show the same
//! per-queue and per-cursor figures from one list. Imports nothing of the server.

use crate::protocol::Reply;
use crate::queue::{now_ms, CursorStats, QueueStats};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Counters shared by every connection; relaxed atomics, read only by `stats`.
pub struct Counters {
    started: Instant,
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
fn queue_fields(queue: &QueueStats) -> [(&'static str, u64); 8] {
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
fn cursor_fields(cursor: &CursorStats) -> [(&'static str, u64); 4] {
    [
        ("items", cursor.items),
        ("failed_items", cursor.failed_items),
        ("open_transactions", cursor.open_transactions),
        ("age_ms", cursor.age_ms),
    ]
}

/// Resident memory of this process (Linux; 0 elsewhere).
fn rss_bytes() -> u64 {
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
