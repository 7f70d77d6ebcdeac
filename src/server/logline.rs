//! A budget of log lines for events that clients can cause at will (protocol errors, the
//! storage errors their commands meet), so a misbehaving client cannot flood the log: at most
//! [`LINES_PER_WINDOW`] lines per [`WINDOW`], lock-free; what is left out is counted and said
//! in one line with the next event of a later window. Imports nothing of the server.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Lines of one kind logged per window at most.
pub const LINES_PER_WINDOW: u64 = 10;
/// The window.
pub const WINDOW: Duration = Duration::from_secs(10);

/// One kind of event's budget (`what` names it in the line about those left out).
pub struct LogBudget {
    what: &'static str,
    started: Instant,
    window: AtomicU64,
    used: AtomicU64,
    left_out: AtomicU64,
}

/// What [`LogBudget::admit`] decided.
#[derive(Debug, PartialEq, Eq)]
pub enum Admit {
    /// Log this event; `left_out` events of earlier windows were not (say so first if > 0).
    Log { left_out: u64 },
    /// Leave it out (counted).
    LeaveOut,
}

impl LogBudget {
    pub fn new(what: &'static str) -> LogBudget {
        LogBudget {
            what,
            started: Instant::now(),
            window: AtomicU64::new(0),
            used: AtomicU64::new(0),
            left_out: AtomicU64::new(0),
        }
    }

    /// Logs the line `line` makes at `level`, if the budget allows; `line` runs only then.
    pub fn log(&self, level: log::Level, line: impl FnOnce() -> String) {
        let window = self.started.elapsed().as_secs() / WINDOW.as_secs();
        match self.admit(window) {
            Admit::LeaveOut => {}
            Admit::Log { left_out } => {
                if left_out > 0 {
                    log::warn!(
                        target: "tern",
                        "{left_out} more {} were not logged (at most {LINES_PER_WINDOW} per {WINDOW:?})",
                        self.what
                    );
                }
                log::log!(target: "tern", level, "{}", line());
            }
        }
    }

    /// Counts an event of window number `window` (time since start / [`WINDOW`]). Races at a
    /// window's turn may let a line more or fewer through; none is lost from the count.
    pub fn admit(&self, window: u64) -> Admit {
        let current = self.window.load(Ordering::Relaxed);
        let mut left_out = 0;
        if window > current
            && self
                .window
                .compare_exchange(current, window, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.used.store(0, Ordering::Relaxed);
            left_out = self.left_out.swap(0, Ordering::Relaxed);
        }
        if self.used.fetch_add(1, Ordering::Relaxed) < LINES_PER_WINDOW {
            Admit::Log { left_out }
        } else {
            self.left_out.fetch_add(1 + left_out, Ordering::Relaxed);
            Admit::LeaveOut
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_logs_its_budget_then_the_next_one_says_how_many_were_left_out() {
        let budget = LogBudget::new("test events");
        for _ in 0..LINES_PER_WINDOW {
            assert_eq!(budget.admit(0), Admit::Log { left_out: 0 });
        }
        for _ in 0..25 {
            assert_eq!(budget.admit(0), Admit::LeaveOut);
        }
        assert_eq!(budget.admit(3), Admit::Log { left_out: 25 });
        assert_eq!(budget.admit(3), Admit::Log { left_out: 0 });
        // An older window's late event counts in the current one.
        assert_eq!(budget.admit(2), Admit::Log { left_out: 0 });
    }
}
