//! kill -9 while compaction copies the database or switches to the copy: after the restart
//! every live item is there, in order, only one database is left, and the server works.
//! The compaction is started with SIGUSR1, so the test never waits for a background timer.

mod common;

use common::{get_pipelined, set_pipelined, Conn, Server};
use std::time::{Duration, Instant};

const ITEM: usize = 1024;

/// Sets `count` items of `ITEM` bytes, tagged `<tag>-<i>-`, pipelined.
fn fill(conn: &mut Conn, queue: &str, count: usize, tag: &str) {
    let payloads = (0..count).map(|i| {
        let mut payload = format!("{tag}-{i:08}-").into_bytes();
        payload.resize(ITEM, b'.');
        payload
    });
    set_pipelined(conn, queue, payloads, 256);
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
        get_pipelined(&mut conn, "bulk", 80 * 1024, 256);
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
            let data = conn
                .get_data("keep")
                .unwrap_or_else(|| panic!("{want} lost"));
            assert!(
                data.starts_with(want.as_bytes()),
                "expected {want}, got {}",
                common::esc(&data[..24])
            );
        }
        assert_eq!(conn.get_data("keep"), None);
        // Removals are at-least-once across a crash: drained items may be back; take them.
        while conn.get_data("bulk").is_some() {}
    }
}
