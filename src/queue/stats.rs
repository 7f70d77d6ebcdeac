//! Per-queue and per-cursor counters, as `stats` reports them, and the few that only the
//! metrics export.

/// Counters of one queue, for `stats`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueStats {
    pub name: String,
    pub items: u64,
    pub bytes: u64,
    pub total_items: u64,
    pub expired_items: u64,
    pub open_transactions: u64,
    pub waiters: u64,
    pub age_ms: u64,
    pub open_timeouts: u64,
    /// Plain items taken by a `get` or confirmed by a `/close` (not in `stats`: metrics only).
    pub dequeued_items: u64,
    /// Waiting items discarded to make room under `discard_old` (metrics only).
    pub discarded_items: u64,
    /// Open reads, plain and cursor, given back by an explicit `/abort` (metrics only).
    pub aborted_reads: u64,
    /// Open reads given back because their connection closed holding them (metrics only).
    pub disconnected_reads: u64,
    pub cursors: Vec<CursorStats>,
}

/// Counters of one cursor, for `stats`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorStats {
    pub name: String,
    pub items: u64,
    pub failed_items: u64,
    pub open_transactions: u64,
    /// Age of the next item it would read (its lag in time); 0 when it has none.
    pub age_ms: u64,
}
