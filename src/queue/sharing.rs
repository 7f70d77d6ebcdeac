//! How the sync thread shares a core with the connections.
//!
//! Under `--sync always` the sync thread runs under Linux's `SCHED_BATCH`: the same share of
//! the CPU as any thread, but its wake-ups do not preempt the thread that is running. The
//! first writer of a burst wakes it; preempting the connections then would start a commit
//! with that one writer while the rest of the burst, already read from the sockets, waited a
//! whole `fdatasync` for the next. Left to run when the connections' thread has handled what
//! arrived, it takes the whole burst (benches/README.md, "Storage format 2": 32 writers on
//! one core, 10–17 % more sets per second; a higher priority instead, or `nice`, served fewer).
//! The ticker of the other modes keeps the default: its write-outs are not commits, and sets
//! at 32 connections came out a few per cent slower with it in the same A/B.

/// Lets the calling thread's wake-ups wait for the running thread (see the module doc).
/// Elsewhere than Linux, or if refused, the thread keeps the default policy.
pub(super) fn yield_on_wakeup() {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: plain system call on the calling thread (0), with a valid parameter.
        if unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) } != 0 {
            let error = std::io::Error::last_os_error();
            log::debug!("the sync thread keeps the default scheduling: {}", error);
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::super::disk::Disk;
    use super::super::durability::{Durability, SyncMode};

    /// The scheduling policy of this process's thread named `name`.
    fn policy_of(name: &str) -> Option<i32> {
        for task in std::fs::read_dir("/proc/self/task").unwrap() {
            let task = task.unwrap();
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            if comm.trim_end() == name {
                let tid: i32 = task.file_name().to_string_lossy().parse().unwrap();
                // SAFETY: plain system call reading another thread's policy.
                return Some(unsafe { libc::sched_getscheduler(tid) });
            }
        }
        None
    }

    #[test]
    fn the_sync_thread_does_not_preempt_on_wakeup() {
        let dir = tempfile::tempdir().unwrap();
        let disk = Disk::open(dir.path().join("store-1"), 1 << 20, true).unwrap();
        let durability = Durability::start(disk.syncer().unwrap(), SyncMode::Always, None);
        let _durability = durability.unwrap();
        // The thread sets its policy first thing; a bound for a failure only.
        let began = std::time::Instant::now();
        while policy_of("tern-sync") != Some(libc::SCHED_BATCH) {
            let policy = policy_of("tern-sync");
            assert!(
                began.elapsed() < std::time::Duration::from_secs(30),
                "the sync thread runs under policy {:?}, not SCHED_BATCH",
                policy
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}
