//! Bounded memory per connection, whatever a client sends, and no idle timeout.

mod common;

use common::{wait_until, Conn, Server};
use std::time::Duration;

#[test]
fn a_block_that_never_ends_is_discarded_not_buffered() {
    let server = Server::start();
    let mut monitor = Conn::connect(&server);
    let before = monitor.stat_u64("rss_bytes");
    // Announce a 4 GB block (over --max-item-size) and stream 256 MiB of it.
    let mut conn = Conn::connect(&server);
    conn.send(b"set q 0 0 4000000000\r\n");
    conn.expect(b"SERVER_ERROR object too large for cache\r\n");
    let chunk = vec![b'x'; 1 << 20];
    for _ in 0..256 {
        conn.send(&chunk);
    }
    let during = monitor.stat_u64("rss_bytes");
    assert!(
        during < before + 32 * 1024 * 1024,
        "RSS grew from {before} to {during} bytes"
    );
    monitor.roundtrip(b"get q\r\n", b"END\r\n");
}

#[test]
fn an_endless_line_is_cut_at_the_limit() {
    let server = Server::start();
    let mut monitor = Conn::connect(&server);
    let before = monitor.stat_u64("rss_bytes");
    let mut conns: Vec<Conn> = (0..20).map(|_| Conn::connect(&server)).collect();
    for conn in &mut conns {
        conn.send_lossy(&vec![b'a'; 64 * 1024]);
    }
    for conn in &mut conns {
        conn.expect(b"CLIENT_ERROR line too long\r\n");
        conn.expect_closed();
    }
    let after = monitor.stat_u64("rss_bytes");
    assert!(
        after < before + 32 * 1024 * 1024,
        "RSS grew from {before} to {after} bytes"
    );
}

#[test]
fn incomplete_items_cost_at_most_one_item_per_connection() {
    let server = Server::start_with(&["--max-item-size", "1048576"]);
    let mut monitor = Conn::connect(&server);
    let before = monitor.stat_u64("rss_bytes");
    // 40 connections each hold an unfinished 1 MiB set: at most ~1 MiB buffered per connection.
    let mut conns: Vec<Conn> = (0..40).map(|_| Conn::connect(&server)).collect();
    let header = b"set q 0 0 1048576\r\n";
    for conn in &mut conns {
        conn.send(header);
        conn.send(&vec![b'y'; 1048576 - 1]);
    }
    // Measure once the server has read all of it (sending only filled the socket buffers).
    let sent = 40 * (header.len() + 1048576 - 1) as u64;
    wait_until("the server to read the 40 unfinished sets", || {
        monitor.stat_u64("bytes_read") >= sent
    });
    let during = monitor.stat_u64("rss_bytes");
    let bound = 40 * (1024 * 1024 + 64 * 1024) + 32 * 1024 * 1024;
    assert!(
        during < before + bound,
        "RSS grew from {before} to {during} bytes (bound {bound})"
    );
    // Each finishes its item: all 40 are stored.
    for conn in &mut conns {
        conn.send(b"y\r\n");
        conn.expect(b"STORED\r\n");
    }
    assert_eq!(monitor.stat("queue_q_items").as_deref(), Some("40"));
}

#[test]
fn idle_connections_are_not_dropped() {
    let server = Server::start();
    let mut conn = Conn::connect(&server);
    conn.roundtrip(b"set q 0 0 1\r\na\r\n", b"STORED\r\n");
    std::thread::sleep(Duration::from_secs(3));
    conn.roundtrip(b"get q\r\n", b"VALUE q 0 1\r\na\r\nEND\r\n");
}
