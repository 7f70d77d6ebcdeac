//! Compaction gives disk space back after a drain, keeps everything that is live (items,
//! order, cursor positions, failed reads, open reads), keeps ids increasing, and survives a
//! restart; leftovers of an interrupted compaction are removed at start-up.

use futures_lite::future::block_on;
use std::path::Path;
use tern::queue::{Config, ReadMode, Store, SyncMode};

fn config(dir: &Path) -> Config {
    let mut config = Config::new(dir);
    config.sync = SyncMode::Never;
    config.cache_bytes = 4 * 1024 * 1024;
    config
}

fn size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                size(&entry.path())
            } else {
                meta.len()
            }
        })
        .sum()
}

fn take(store: &Store, queue: &str, cursor: Option<&str>) -> Option<Vec<u8>> {
    let read = store.read(queue, cursor, ReadMode::Take).unwrap();
    read.map(|(item, _)| item.data().to_vec())
}

fn put(store: &Store, queue: &str, data: &[u8]) {
    block_on(store.put(&[queue.to_string()], 0, None, data)).unwrap();
}

#[test]
fn compaction_returns_space_and_keeps_live_state() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&config(dir.path())).unwrap();
    let payload = vec![b'x'; 1024];
    // The live items first: the segment they are in stays in use after the drain.
    put(&store, "keep", b"one");
    put(&store, "keep", b"two");
    put(&store, "keep", b"three");
    store.sync_now().unwrap();
    for _ in 0..60_000 {
        put(&store, "deep", &payload);
    }
    // A cursor that read one item, one failed read, one plain open read held through it all.
    assert_eq!(
        take(&store, "keep", Some("c")).as_deref(),
        Some(&b"one"[..])
    );
    let (item, lease) = store
        .read("keep", Some("c"), ReadMode::Open)
        .unwrap()
        .unwrap();
    assert_eq!(item.data(), b"two");
    lease.unwrap().abort();
    let (item, open) = store.read("keep", None, ReadMode::Open).unwrap().unwrap();
    assert_eq!(item.data(), b"one");
    while take(&store, "deep", None).is_some() {}
    // What sled still buffers would be missing from the size: measure what is on disk.
    store.sync_now().unwrap();
    let drained = size(dir.path());

    // Segments the drain emptied are gone already; the first one, where the live items
    // are, stays until compaction copies them out.
    let segments = |dir: &Path| -> Vec<String> {
        let current = std::fs::read_to_string(dir.join("CURRENT")).unwrap();
        let mut names: Vec<String> = std::fs::read_dir(dir.join(current.trim()).join("segments"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".seg"))
            .collect();
        names.sort();
        names
    };
    assert_eq!(
        segments(dir.path()),
        ["000000000001.seg"],
        "after the drain"
    );
    store.compact().unwrap();
    let compacted = size(dir.path());
    assert!(
        compacted + 16 * 1024 * 1024 < drained,
        "compaction did not give space back: {drained} -> {compacted} bytes"
    );

    // Everything live is still there and works: the open read, the cursor, its failed read.
    open.unwrap().abort();
    assert_eq!(
        take(&store, "keep", Some("c")).as_deref(),
        Some(&b"two"[..])
    );
    assert_eq!(
        take(&store, "keep", Some("c")).as_deref(),
        Some(&b"three"[..])
    );
    assert_eq!(take(&store, "keep", Some("c")), None);
    // New ids continue above the old ones: the cursor sees a new item, in order.
    put(&store, "keep", b"four");
    assert_eq!(
        take(&store, "keep", Some("c")).as_deref(),
        Some(&b"four"[..])
    );
    assert_eq!(take(&store, "keep", None).as_deref(), Some(&b"one"[..]));

    // And after a restart.
    store.close().unwrap();
    drop(store);
    let store = reopen(dir.path());
    for expected in [&b"two"[..], b"three", b"four"] {
        assert_eq!(take(&store, "keep", None).as_deref(), Some(expected));
    }
    put(&store, "keep", b"five");
    assert_eq!(
        take(&store, "keep", Some("c")).as_deref(),
        Some(&b"five"[..])
    );
    assert_eq!(take(&store, "deep", None), None);
}

#[test]
fn leftovers_of_an_interrupted_compaction_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&config(dir.path())).unwrap();
    put(&store, "q", b"kept");
    store.close().unwrap();
    drop(store);
    // A copy that crashed before CURRENT was switched to it.
    std::fs::create_dir(dir.path().join("store-2")).unwrap();
    std::fs::write(dir.path().join("store-2").join("db"), b"half a database").unwrap();
    let store = reopen(dir.path());
    assert!(!dir.path().join("store-2").exists());
    assert_eq!(take(&store, "q", None).as_deref(), Some(&b"kept"[..]));
}

/// Reopens, waiting for sled to release its lock of the previous instance (it does so from
/// a background thread).
fn reopen(dir: &Path) -> Store {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match Store::open(&config(dir)) {
            Ok(store) => return store,
            Err(e) if std::time::Instant::now() < deadline => {
                eprintln!("reopen: {e}; retrying");
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(e) => panic!("cannot reopen: {e}"),
        }
    }
}
