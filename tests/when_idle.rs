//! The server's idle task (main.rs hands the allocator's memory release to it): it runs on the
//! connection threads once no client has sent anything since the last check (once per idle
//! spell), and never while clients keep sending. Runs `tern::server` in this process, so the
//! task can be observed, and drives the checks through `IdleCheck` rather than the timer, so
//! the machine's speed does not matter.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::Duration;
use tern::queue::{Config as StoreConfig, Store, SyncMode};
use tern::server::{self, WhenIdle};

mod common;
use common::wait_until;

/// Threads serving connections; each check that runs the task spawns 4 runs per thread.
const THREADS: usize = 2;
const RUNS_PER_CHECK: usize = 4 * THREADS;

static RUNS: AtomicUsize = AtomicUsize::new(0);
static THREAD_NAMES: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn count_run() {
    let name = std::thread::current().name().unwrap_or("").to_string();
    THREAD_NAMES.lock().unwrap().push(name);
    RUNS.fetch_add(1, Ordering::SeqCst);
}

fn runs() -> usize {
    RUNS.load(Ordering::SeqCst)
}

#[test]
fn runs_on_connection_threads_when_idle_and_never_under_load() {
    let dir = tempfile::tempdir().unwrap();
    let mut store_config = StoreConfig::new(dir.path().join("data"));
    store_config.sync = SyncMode::Never;
    let store = Store::open(&store_config).unwrap();
    let config = server::Config {
        listen: "127.0.0.1:0".into(),
        metrics: None,
        max_item_size: 1 << 20,
        max_connections: 100,
        allow_shutdown: true,
        threads: NonZeroUsize::new(THREADS),
        release_memory: Some(WhenIdle {
            // Never by itself during the test: the checks below are asked for.
            after: Duration::from_secs(3600),
            run: count_run,
        }),
    };
    let server = server::Server::new(config, store);
    let idle = server.idle_check();
    let (ready, address) = mpsc::channel();
    let running = std::thread::spawn(move || {
        server.run(|bound| ready.send(bound).unwrap()).unwrap();
    });
    let address = address.recv().unwrap();

    // Nobody has sent anything: the task runs, on the runtime's threads.
    assert!(idle.check_now(), "idle, but the task was not started");
    wait_until("the task's runs", || runs() == RUNS_PER_CHECK);
    // Still idle: once per idle spell is enough.
    assert!(!idle.check_now(), "started twice in one idle spell");
    let names = THREAD_NAMES.lock().unwrap().clone();
    assert!(
        names.iter().all(|name| name.starts_with("async-std")),
        "ran on {names:?}"
    );

    // A client that sends between every two checks: the task is not started.
    let mut conn = TcpStream::connect(address).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut roundtrip = || {
        conn.write_all(b"set q 0 0 1\r\nx\r\nget q\r\n").unwrap();
        let mut line = String::new();
        for expected in ["STORED\r\n", "VALUE q 0 1\r\n", "x\r\n", "END\r\n"] {
            line.clear();
            reader.read_line(&mut line).unwrap();
            assert_eq!(line, expected);
        }
    };
    for _ in 0..5 {
        roundtrip();
        assert!(!idle.check_now(), "started under load");
    }
    assert_eq!(runs(), RUNS_PER_CHECK, "ran under load");

    // Idle again: it runs again.
    assert!(idle.check_now(), "idle after the load, but not started");
    wait_until("the second check's runs", || runs() == 2 * RUNS_PER_CHECK);

    let mut conn = reader.get_ref().try_clone().unwrap();
    conn.write_all(b"shutdown\r\n").unwrap();
    let mut rest = Vec::new();
    let _ = reader.read_to_end(&mut rest);
    running.join().unwrap();
}
