//! Soak test, ignored by default (it runs for 10 minutes):
//!
//! ```sh
//! cargo test --release --test soak -- --ignored --nocapture
//! TERN_SOAK_SECS=60 cargo test --release --test soak -- --ignored --nocapture   # shorter
//! ```
//!
//! 100 connections of mixed work (plain, fanout, reliable and cursor reads, peeks, waits,
//! stats) against one server. Every 10 s it samples the server's RSS and data-directory size;
//! at the end it asserts they stayed bounded and that the server still answers, and prints the
//! figures (recorded in benches/README.md).

mod common;

use common::{Conn, Server};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

const CONNECTIONS: usize = 100;
const QUEUES: usize = 4;

fn stat(conn: &mut Conn, name: &str) -> u64 {
    conn.stat(name).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// One connection's loop: a fixed mix of commands chosen by its index and a counter.
fn worker(
    index: usize,
    server_addr: std::net::SocketAddr,
    stop: Arc<AtomicBool>,
    ops: Arc<AtomicU64>,
) {
    let mut conn = Conn::connect_addr(server_addr);
    let payload = vec![b'x'; 100 + (index % 8) * 120];
    let mut n = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let q = format!("soak{}", (index + n) % QUEUES);
        let reply_ok = match (index + n) % 10 {
            0..=2 => {
                let mut request = format!("set {q} 0 0 {}\r\n", payload.len()).into_bytes();
                request.extend_from_slice(&payload);
                request.extend_from_slice(b"\r\n");
                conn.send(&request);
                let line = conn.read_line();
                line == b"STORED\r\n" || line == b"SERVER_ERROR queue full\r\n"
            }
            3 => {
                let other = format!("soak{}", (index + n + 1) % QUEUES);
                let mut request = format!("set {q}+{other} 0 0 {}\r\n", payload.len()).into_bytes();
                request.extend_from_slice(&payload);
                request.extend_from_slice(b"\r\n");
                conn.send(&request);
                let line = conn.read_line();
                line == b"STORED\r\n" || line == b"SERVER_ERROR queue full\r\n"
            }
            4 | 5 => {
                conn.get(&q);
                true
            }
            6 => {
                let got = conn.get(&format!("{q}/open")).is_some();
                if got {
                    conn.roundtrip(format!("get {q}/close\r\n").as_bytes(), b"END\r\n");
                }
                true
            }
            7 => {
                conn.get(&format!("{q}.c{}", index % 3));
                true
            }
            8 => {
                conn.get(&format!("{q}/t=20"));
                true
            }
            _ => {
                if n.is_multiple_of(50) {
                    stat(&mut conn, "curr_items");
                } else {
                    conn.get(&format!("{q}/peek"));
                }
                true
            }
        };
        assert!(reply_ok, "unexpected reply on connection {index}");
        ops.fetch_add(1, Ordering::Relaxed);
        n += 1;
    }
}

#[test]
#[ignore = "soak test: 10 minutes; run explicitly"]
fn soak_100_connections_mixed_work() {
    let seconds: u64 = std::env::var("TERN_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    // Queues are bounded as production ones would be, so depth (and disk) cannot run away
    // when producers outpace consumers.
    let server = Server::start_with(&[
        "--sync",
        "always",
        "--max-items",
        "20000",
        "--max-connections",
        "200",
    ]);
    let stop = Arc::new(AtomicBool::new(false));
    let ops = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..CONNECTIONS)
        .map(|i| {
            let (stop, ops, addr) = (stop.clone(), ops.clone(), server.addr());
            thread::spawn(move || worker(i, addr, stop, ops))
        })
        .collect();
    let mut monitor = Conn::connect(&server);
    let started = Instant::now();
    let mut samples = Vec::new();
    while started.elapsed() < Duration::from_secs(seconds) {
        thread::sleep(Duration::from_secs(10).min(Duration::from_secs(seconds)));
        let sample = (
            started.elapsed().as_secs(),
            stat(&mut monitor, "rss_bytes"),
            stat(&mut monitor, "disk_bytes"),
            stat(&mut monitor, "curr_items"),
            ops.load(Ordering::Relaxed),
        );
        println!(
            "soak t={}s rss={:.1}MiB disk={:.1}MiB items={} ops={}",
            sample.0,
            sample.1 as f64 / 1048576.0,
            sample.2 as f64 / 1048576.0,
            sample.3,
            sample.4
        );
        samples.push(sample);
    }
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.join().expect("a worker failed");
    }
    let max_rss = samples.iter().map(|s| s.1).max().unwrap_or(0);
    let max_disk = samples.iter().map(|s| s.2).max().unwrap_or(0);
    let total = ops.load(Ordering::Relaxed);
    println!(
        "soak summary: {seconds}s, {CONNECTIONS} connections, {total} ops ({:.0}/s), max rss {:.1} MiB, max disk {:.1} MiB",
        total as f64 / seconds as f64,
        max_rss as f64 / 1048576.0,
        max_disk as f64 / 1048576.0
    );
    // Bounded: RSS well under what 100 connections and a 16 MiB cache justify; the disk no
    // larger than a few times the bounded live data (4 queues × 20000 items × ≤ 1 KiB).
    assert!(max_rss < 256 * 1024 * 1024, "RSS grew to {max_rss}");
    assert!(
        max_disk < 2 * 1024 * 1024 * 1024,
        "data directory grew to {max_disk}"
    );
    monitor.roundtrip(b"version\r\n", &common::version_reply());
}
