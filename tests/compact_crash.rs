//! kill -9 while compaction copies the database or switches to the copy: after the restart
//! every live item is there, in order, only one database is left, and the server works.
//! The compaction is started with SIGUSR1, so the test never waits for a background timer.

mod common;

use common::{Conn, Server};
use std::time::{Duration, Instant};

const ITEM: usize = 1024;

/// Sends `count` sets (pipelined) and checks every reply.
fn fill(conn: &mut Conn, queue: &str, count: usize, tag: &str) {
    let mut sent = 0;
    while sent < count {
        let batch = (count - sent).min(256);
        let mut request = Vec::with_capacity(batch * (ITEM + 32));
        for i in sent..sent + batch {
            let mut payload = format!("{tag}-{i:08}-").into_bytes();
            payload.resize(ITEM, b'.');
            request.extend_from_slice(format!("set {queue} 0 0 {ITEM}\r\n").as_bytes());
            request.extend_from_slice(&payload);
            request.extend_from_slice(b"\r\n");
        }
        conn.send(&request);
        for _ in 0..batch {
            assert_eq!(conn.read_line(), b"STORED\r\n");
        }
        sent += batch;
    }
}

/// Takes one item; `None` on an empty queue.
fn take(conn: &mut Conn, queue: &str) -> Option<Vec<u8>> {
    conn.send(format!("get {queue}\r\n").as_bytes());
    let line = conn.read_line();
    if line == b"END\r\n" {
        return None;
    }
    assert!(line.starts_with(b"VALUE"), "{}", common::esc(&line));
    let data = conn.read_exact(ITEM + 2);
    assert_eq!(conn.read_line(), b"END\r\n");
    Some(data)
}

/// Takes `count` items (pipelined).
fn drain(conn: &mut Conn, queue: &str, count: usize) {
    let mut taken = 0;
    while taken < count {
        let batch = (count - taken).min(256);
        conn.send(format!("get {queue}\r\n").repeat(batch).as_bytes());
        for _ in 0..batch {
            let line = conn.read_line();
            if line.starts_with(b"VALUE") {
                conn.read_exact(ITEM + 2);
                assert_eq!(conn.read_line(), b"END\r\n");
            } else {
                assert_eq!(line, b"END\r\n");
            }
        }
        taken += batch;
    }
}

fn store_dirs(server: &Server) -> Vec<String> {
    let mut dirs: Vec<String> = std::fs::read_dir(server.data_dir())
        .unwrap()
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("store-"))
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn kill9_during_compaction_loses_nothing() {
    let mut server = Server::start_with(&["--sync", "always"]);
    for (round, delay_ms) in [0u64, 150].into_iter().enumerate() {
        let mut conn = Conn::connect(&server);
        // Live data that must survive, then 80 MiB that is drained, so the copy has work.
        let tag = format!("r{round}");
        fill(&mut conn, "keep", 200, &tag);
        fill(&mut conn, "bulk", 80 * 1024, &tag);
        drain(&mut conn, "bulk", 80 * 1024);
        let before = store_dirs(&server);
        // SIGUSR1 compacts now (no waiting for the watcher's timer and thresholds). Wait for
        // the copy to start (a new store directory), then kill at once or a bit later.
        server.signal(libc::SIGUSR1);
        let deadline = Instant::now() + Duration::from_secs(60);
        while store_dirs(&server) == before {
            assert!(
                Instant::now() < deadline,
                "compaction never started ({before:?})"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(delay_ms));
        server.kill9();
        server.start_again();
        assert_eq!(
            store_dirs(&server).len(),
            1,
            "leftovers: {:?}",
            store_dirs(&server)
        );
        let mut conn = Conn::connect(&server);
        for i in 0..200 {
            let want = format!("{tag}-{i:08}-");
            let data = take(&mut conn, "keep").unwrap_or_else(|| panic!("{want} lost"));
            assert!(
                data.starts_with(want.as_bytes()),
                "expected {want}, got {}",
                common::esc(&data[..24])
            );
        }
        assert_eq!(take(&mut conn, "keep"), None);
        // Removals are at-least-once across a crash: drained items may be back; take them.
        while take(&mut conn, "bulk").is_some() {}
    }
}
