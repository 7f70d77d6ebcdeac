//! Verification: `Out`, what workers saw (counts, latencies, acknowledged and read ids, order and
//! corruption), merged across workers; `check`, what was read against what was acknowledged.

use std::time::Instant;

use crate::hist::Hist;
use crate::payload::{decode, pack};

#[derive(Default)]
pub struct Out {
    pub ops: u64,
    pub misses: u64,
    /// Blocking reads (`/t=`) that ended empty: their wait ran out.
    pub wait_timeouts: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub hist: Hist,
    /// Acknowledged sets, packed (conn, seq).
    pub acked: Vec<u64>,
    /// Items read, packed (conn, seq).
    pub got: Vec<u64>,
    pub corrupt: u64,
    pub order: u64,
    /// Per producer connection: last sequence read + 1 (0 = none yet).
    pub last: Vec<u64>,
    pub start: Option<Instant>,
    pub end: Option<Instant>,
}

impl Out {
    /// Operations per second over this worker's run, if it ran.
    pub fn rate(&self) -> Option<f64> {
        let (start, end) = (self.start?, self.end?);
        Some(self.ops as f64 / end.duration_since(start).as_secs_f64().max(1e-9))
    }

    pub fn error(&mut self, e: String) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(e);
        }
    }

    pub fn take_item(&mut self, data: &[u8], size: usize) {
        match decode(data, size) {
            Some((c, s)) => {
                let ci = c as usize;
                if ci < 1 << 20 {
                    if self.last.len() <= ci {
                        self.last.resize(ci + 1, 0);
                    }
                    if s + 1 < self.last[ci] {
                        self.order += 1;
                    }
                    self.last[ci] = self.last[ci].max(s + 1);
                }
                self.got.push(pack(c, s));
            }
            None => self.corrupt += 1,
        }
    }

    /// The results of several workers as one.
    pub fn merged(outs: impl IntoIterator<Item = Out>) -> Out {
        let mut all = Out::default();
        for o in outs {
            all.absorb(o);
        }
        all
    }

    /// Counts the faults another pass found (a drain, a fill, a read-back): corrupt items and
    /// errors, keeping the first error message. Not its order count: callers add it where a
    /// reordering is a fault.
    pub fn absorb_faults(&mut self, o: &Out) {
        self.corrupt += o.corrupt;
        self.errors += o.errors;
        if self.first_error.is_none() {
            self.first_error.clone_from(&o.first_error);
        }
    }

    /// Adds another worker's results to these.
    pub fn absorb(&mut self, o: Out) {
        self.ops += o.ops;
        self.misses += o.misses;
        self.wait_timeouts += o.wait_timeouts;
        self.errors += o.errors;
        if self.first_error.is_none() {
            self.first_error = o.first_error;
        }
        self.hist.merge(&o.hist);
        self.acked.extend(o.acked);
        self.got.extend(o.got);
        self.corrupt += o.corrupt;
        self.order += o.order;
        self.start = match (self.start, o.start) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.end = match (self.end, o.end) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
}

#[derive(Default, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Check {
    pub lost: u64,
    pub dup: u64,
    /// Read but never acknowledged (e.g. the set got an error reply yet was stored).
    pub unexpected: u64,
}

impl std::ops::AddAssign for Check {
    fn add_assign(&mut self, o: Check) {
        self.lost += o.lost;
        self.dup += o.dup;
        self.unexpected += o.unexpected;
    }
}

/// Compares what was read with what was acknowledged.
pub fn check(acked: &[u64], got: &[u64]) -> Check {
    let mut a = acked.to_vec();
    let mut g = got.to_vec();
    a.sort_unstable();
    g.sort_unstable();
    let mut c = Check::default();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < g.len() {
        if j < g.len() && j > 0 && g[j] == g[j - 1] {
            c.dup += 1;
            j += 1;
        } else if i < a.len() && (j >= g.len() || a[i] < g[j]) {
            c.lost += 1;
            i += 1;
        } else if i >= a.len() || g[j] < a[i] {
            c.unexpected += 1;
            j += 1;
        } else {
            i += 1;
            j += 1;
        }
    }
    c
}

/// `check` of a reader that may have stopped early (a time limit): a missing tail is not lost.
pub fn check_read(acked: &[u64], got: &[u64], time_limited: bool) -> Check {
    let c = check(acked, got);
    if time_limited {
        Check { lost: 0, ..c }
    } else {
        c
    }
}
