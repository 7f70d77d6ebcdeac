//! `tern top --once` against a live server prints its queues, deepest first, each with its
//! cursors under it and their figures.

mod common;

use common::*;
use std::process::Command;

#[test]
fn top_once_prints_queues_and_cursors_with_their_figures() {
    let server = Server::start();
    let mut c = Conn::connect(&server);
    c.set("small", b"x");
    for data in ["a", "b", "c"] {
        c.set("jobs", data.as_bytes());
    }
    expect_item(&mut c, "jobs.billing", b"a");
    expect_item(&mut c, "jobs.billing/open", b"b");
    let out = Command::new(env!("CARGO_BIN_EXE_tern"))
        .args(["top", "--once", "--addr", &server.addr().to_string()])
        .output()
        .expect("run tern top");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}: {text}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(text.starts_with("tern-"), "{text}");
    assert!(
        text.lines().next().unwrap().contains("2 queues, 4 items"),
        "{text}"
    );
    assert_eq!(
        rows[1],
        ["QUEUE", "ITEMS", "IN/S", "OUT/S", "AGE", "OPEN", "FAILED", "WAITERS"]
    );
    // jobs: 3 waiting (a cursor takes nothing), no plain open read, no waiter; rates measured
    // over a second in which nothing came or went.
    assert_eq!(rows[2][..4], ["jobs", "3", "0.0", "0.0"], "{text}");
    assert_eq!(rows[2][5..], ["0", "0"], "{text}");
    // Its cursor: 1 left to read (c), 1 held open (b), no failed read.
    assert_eq!(rows[3][..2], [".billing", "1"], "{text}");
    assert_eq!(rows[3][rows[3].len() - 2..], ["1", "0"], "{text}");
    assert_eq!(rows[4][..4], ["small", "1", "0.0", "0.0"], "{text}");
    assert_eq!(rows.len(), 5, "{text}");
}
