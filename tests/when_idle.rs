//! The server's idle task (main.rs hands the allocator's memory release to it): it runs on the
//! connection threads once no client has sent anything for a while, and never while clients
//! keep sending. Runs `tern::server::run` in this process, so the task can be observed.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};
use tern::queue::{Config as StoreConfig, Store, SyncMode};
use tern::server::{self, WhenIdle};

const IDLE_AFTER: Duration = Duration::from_millis(300);

static RUNS: AtomicUsize = AtomicUsize::new(0);
static THREADS: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn count_run() {
    RUNS.fetch_add(1, Ordering::SeqCst);
    let name = std::thread::current().name().unwrap_or("").to_string();
    THREADS.lock().unwrap().push(name);
}

fn wait_for_runs(more_than: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    while RUNS.load(Ordering::SeqCst) <= more_than && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
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
        max_item_size: 1 << 20,
        max_connections: 100,
        allow_shutdown: true,
        threads: None,
        release_memory: Some(WhenIdle {
            after: IDLE_AFTER,
            run: count_run,
        }),
    };
    let (ready, address) = mpsc::channel();
    let server = std::thread::spawn(move || {
        server::run(config, store, |bound| ready.send(bound).unwrap()).unwrap();
    });
    let address = address.recv().unwrap();

    // Nobody has sent anything: the task runs, on the runtime's threads.
    let idle_runs = wait_for_runs(0);
    assert!(idle_runs > 0, "the idle task never ran");
    let names = THREADS.lock().unwrap().clone();
    assert!(
        names.iter().all(|name| name.starts_with("async-std")),
        "ran on {names:?}"
    );

    // A client that never stops sending: not once in several idle periods.
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
    // From the first request on, every idle period sees input; runs spawned before it finish
    // well within the pause.
    roundtrip();
    std::thread::sleep(Duration::from_millis(50));
    let before = RUNS.load(Ordering::SeqCst);
    let busy_until = Instant::now() + 4 * IDLE_AFTER;
    while Instant::now() < busy_until {
        roundtrip();
    }
    assert_eq!(RUNS.load(Ordering::SeqCst), before, "ran under load");

    // Idle again: it runs again.
    assert!(wait_for_runs(before) > before, "did not run after the load");

    let mut conn = reader.get_ref().try_clone().unwrap();
    conn.write_all(b"shutdown\r\n").unwrap();
    let mut rest = Vec::new();
    let _ = reader.read_to_end(&mut rest);
    server.join().unwrap();
}
