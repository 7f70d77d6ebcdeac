//! `FakeClock`: the time a server started with `--clock-file` reads, moved by the test, so a
//! timer fires because the test said so, never because the test waited long enough.

use super::{config_file, Server};
use std::path::PathBuf;
use tempfile::TempDir;

/// Where the fake clock stands at first (unix ms: 2027-01-15, a round number).
pub const CLOCK_START_MS: u64 = 1_800_000_000_000;

/// A clock file for `--clock-file`, kept in its own temp dir.
pub struct FakeClock {
    _dir: TempDir,
    path: PathBuf,
    now: u64,
}

impl FakeClock {
    /// A clock standing at [`CLOCK_START_MS`].
    pub fn new() -> FakeClock {
        let dir = tempfile::Builder::new()
            .prefix("tern-test-clock")
            .tempdir()
            .unwrap();
        let path = dir.path().join("now");
        let mut clock = FakeClock {
            _dir: dir,
            path,
            now: 0,
        };
        clock.set(CLOCK_START_MS);
        clock
    }

    /// The arguments that make a server read this clock.
    pub fn args(&self) -> [String; 2] {
        ["--clock-file".into(), self.path.to_str().unwrap().into()]
    }

    pub fn now(&self) -> u64 {
        self.now
    }

    /// Moves the clock to `ms` (written to a temp file, then renamed: never read half-written).
    pub fn set(&mut self, ms: u64) {
        let tmp = self.path.with_extension("tmp");
        std::fs::write(&tmp, ms.to_string()).unwrap();
        std::fs::rename(&tmp, &self.path).unwrap();
        self.now = ms;
    }

    /// Moves the clock `ms` forward.
    pub fn advance(&mut self, ms: u64) {
        self.set(self.now + ms);
    }
}

/// Starts a server with `args` that reads `clock`.
pub fn start_with_clock(clock: &FakeClock, args: &[&str]) -> Server {
    let clock_args = clock.args();
    let mut all: Vec<&str> = args.to_vec();
    all.extend(clock_args.iter().map(String::as_str));
    Server::start_with(&all)
}

/// A `--config` file setting the timer `key` (`open_timeout_ms`, `max_age_ms`): 5000 in
/// `[defaults]`, 100 for queue `fast`, 0 (none) for queue `never`.
pub fn timer_config(key: &str) -> (TempDir, String) {
    config_file(&format!(
        "[defaults]\n{key} = 5000\n[queues.fast]\n{key} = 100\n[queues.never]\n{key} = 0\n"
    ))
}
