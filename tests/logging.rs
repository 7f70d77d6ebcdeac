//! The log: protocol errors are logged with the client's address, within a budget (at most 10
//! lines per 10 s), so a client sending garbage cannot flood the log.

mod common;

use common::*;
use std::time::Instant;

#[test]
fn protocol_errors_are_logged_within_a_budget() {
    let server = Server::start();
    let started = Instant::now();
    let mut c = Conn::connect(&server);
    let sent = 100;
    c.send(b"bogus\r\n".repeat(sent).as_slice());
    for _ in 0..sent {
        assert_eq!(c.read_line(), b"ERROR\r\n");
    }
    // The lines are written before the replies they come with.
    let logged = server
        .log()
        .matches(": protocol error, replied ERROR")
        .count();
    let windows = started.elapsed().as_secs() / 10 + 2;
    assert!(logged >= 10, "only {logged} lines:\n{}", server.log());
    assert!(
        logged as u64 <= 10 * windows && logged < sent,
        "{logged} lines for {sent} errors in {windows} windows of 10 s:\n{}",
        server.log()
    );
    let peer = c.stream().local_addr().unwrap().to_string();
    assert!(
        server
            .log()
            .contains(&format!("client {peer}: protocol error, replied ERROR")),
        "{}",
        server.log()
    );
}
