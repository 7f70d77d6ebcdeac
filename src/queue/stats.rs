//! Per-queue and per-cursor counters, as `stats` reports them.

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
