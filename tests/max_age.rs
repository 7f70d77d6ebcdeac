//! Max age (`--max-age`, `max_age_ms` in `--config`): items older than that expire as if their
//! exptime had passed, in the queue and in cursors' failed reads, but not while held open.
//! Time is a `FakeClock` the tests move, so no test waits for a timer.

mod common;

use common::{start_with_clock, timer_config, value_reply, Conn, FakeClock, Server};

/// A server with `--max-age 1000` on a fake clock, and a client that has `set` `a` into
/// queue `q`, then `b` 500 ms later.
fn a_then_b() -> (FakeClock, Server, Conn) {
    let mut clock = FakeClock::new();
    let server = start_with_clock(&clock, &["--max-age", "1000"]);
    let mut c = Conn::connect(&server);
    c.set("q", b"a");
    clock.advance(500);
    c.set("q", b"b");
    (clock, server, c)
}

#[test]
fn an_item_older_than_the_max_age_is_never_returned_nor_counted() {
    let (mut clock, _server, mut c) = a_then_b();
    // a is exactly 1000 ms old: not older than the max age.
    clock.advance(500);
    c.roundtrip(b"get q/peek\r\n", &value_reply("q/peek", 0, b"a"));
    assert_eq!(c.stat_u64("queue_q_items"), 2);
    clock.advance(1);
    c.expect_stats(&[
        ("q_items", 1),
        ("q_bytes", 1),
        ("q_expired_items", 1),
        ("q_age_ms", 501),
    ]);
    c.roundtrip(b"get q\r\n", &value_reply("q", 0, b"b"));
    c.roundtrip(b"get q\r\n", b"END\r\n");
    c.expect_stats(&[("q_expired_items", 1), ("q_age_ms", 0)]);
}

#[test]
fn an_item_held_open_does_not_expire_until_given_back() {
    let (mut clock, _server, mut c) = a_then_b();
    c.roundtrip(b"get q/open\r\n", &value_reply("q/open", 0, b"a"));
    c.roundtrip(b"get q.c/open\r\n", &value_reply("q.c/open", 0, b"a"));
    clock.advance(5000);
    c.expect_stats(&[("q_open_transactions", 1), ("q.c_open_transactions", 1)]);
    // b has expired meanwhile; the held ones are still there to close or give back.
    assert_eq!(c.stat_u64("queue_q_expired_items"), 1);
    c.roundtrip(b"get q.c/close\r\n", b"END\r\n");
    c.roundtrip(b"get q/abort\r\n", b"END\r\n");
    // Given back, a is as old as it is: expired at once.
    c.roundtrip(b"get q\r\n", b"END\r\n");
    assert_eq!(c.stat_u64("queue_q_expired_items"), 2);
}

#[test]
fn a_cursor_skips_expired_items_and_drops_expired_failed_reads() {
    let (mut clock, mut server, mut c) = a_then_b();
    c.roundtrip(b"get q.c/open\r\n", &value_reply("q.c/open", 0, b"a"));
    c.roundtrip(b"get q.c/abort\r\n", b"END\r\n");
    clock.advance(200);
    // The cursor's lag in time: its next item is a (failed read), 700 ms old.
    c.expect_stats(&[
        ("q.c_age_ms", 700),
        ("q.c_items", 2),
        ("q.c_failed_items", 1),
    ]);
    clock.advance(301);
    // a has expired both in the queue and in the failed reads: each copy counts.
    c.expect_stats(&[
        ("q.c_items", 1),
        ("q.c_failed_items", 0),
        ("q.c_age_ms", 501),
        ("q_expired_items", 2),
    ]);
    // A new cursor starts at the head: past a, too.
    c.roundtrip(b"get q.d/peek\r\n", &value_reply("q.d/peek", 0, b"b"));
    c.roundtrip(b"get q.c\r\n", &value_reply("q.c", 0, b"b"));

    // Enqueue times are stored with the items: a restart, even a crash, changes nothing.
    c.set("q", b"c");
    drop(c);
    server.kill9();
    server.restart();
    let mut c = Conn::connect(&server);
    c.roundtrip(b"get q.d/peek\r\n", &value_reply("q.d/peek", 0, b"b"));
    clock.advance(1001);
    c.roundtrip(b"get q.d\r\n", b"END\r\n");
    c.roundtrip(b"get q\r\n", b"END\r\n");
}

#[test]
fn a_queues_own_max_age_wins_then_the_command_line_then_defaults() {
    let (_dir, config) = timer_config("max_age_ms");
    let mut clock = FakeClock::new();
    let server = start_with_clock(&clock, &["--config", &config, "--max-age", "1000"]);
    let mut c = Conn::connect(&server);
    for q in ["fast", "q", "never"] {
        c.set(q, b"x");
    }
    clock.advance(101);
    c.roundtrip(b"get fast\r\n", b"END\r\n");
    c.roundtrip(b"get q/peek\r\n", &value_reply("q/peek", 0, b"x"));
    clock.advance(900);
    c.roundtrip(b"get q\r\n", b"END\r\n");
    clock.advance(1_000_000_000);
    c.roundtrip(b"get never\r\n", &value_reply("never", 0, b"x"));

    drop(server);
    let server = start_with_clock(&clock, &["--config", &config]);
    let mut c = Conn::connect(&server);
    c.set("q", b"y");
    clock.advance(5000);
    c.roundtrip(b"get q/peek\r\n", &value_reply("q/peek", 0, b"y"));
    clock.advance(1);
    c.roundtrip(b"get q\r\n", b"END\r\n");
}
