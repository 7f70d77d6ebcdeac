//! Open timeouts (`--open-timeout`, `open_timeout_ms` in `--config`): an open read held longer
//! is given back as if aborted, while its connection stays; the holder's later `/close` is a
//! no-op. Time is a `FakeClock` the tests move, so no test waits for a timer.

mod common;

use common::{start_with_clock, timer_config, value_reply, Conn, FakeClock, Server};

/// A worker and another client of `server`, with items `a` and `b` in queue `q`.
fn worker_and_other(server: &Server) -> (Conn, Conn) {
    let mut worker = Conn::connect(server);
    worker.set("q", b"a");
    worker.set("q", b"b");
    (worker, Conn::connect(server))
}

#[test]
fn a_plain_read_held_too_long_goes_back_to_the_head_and_its_close_deletes_nothing() {
    let mut clock = FakeClock::new();
    let mut server = start_with_clock(&clock, &["--open-timeout", "1000"]);
    let (mut worker, mut other) = worker_and_other(&server);
    worker.roundtrip(b"get q/open\r\n", &value_reply("q/open", 0, b"a"));

    // Held exactly the timeout: not longer, still the worker's.
    clock.advance(1000);
    other.roundtrip(b"get q/peek\r\n", &value_reply("q/peek", 0, b"b"));
    other.expect_stats(&[("q_open_timeouts", 0), ("q_open_transactions", 1)]);

    // One ms more: back at the head, served before b, and counted.
    clock.advance(1);
    other.roundtrip(b"get q/peek\r\n", &value_reply("q/peek", 0, b"a"));
    other.expect_stats(&[
        ("q_open_timeouts", 1),
        ("q_open_transactions", 0),
        ("q_items", 2),
    ]);

    // Another reader opens it; the first holder's late close must not delete it.
    other.roundtrip(b"get q/open\r\n", &value_reply("q/open", 0, b"a"));
    worker.roundtrip(b"get q/close\r\n", b"END\r\n");
    worker.roundtrip(b"get q/abort\r\n", b"END\r\n");
    assert_eq!(worker.stat_u64("queue_q_open_transactions"), 1);
    other.roundtrip(b"get q/abort\r\n", b"END\r\n");

    // The worker is still connected and may open again (and close for real).
    worker.roundtrip(b"get q/open\r\n", &value_reply("q/open", 0, b"a"));
    clock.advance(500);
    worker.roundtrip(
        b"get q/close/open\r\n",
        &value_reply("q/close/open", 0, b"b"),
    );
    clock.advance(1001);
    // A timed-out read in `/close/open`: the close is a no-op, the open serves the head.
    worker.roundtrip(
        b"get q/close/open\r\n",
        &value_reply("q/close/open", 0, b"b"),
    );
    assert_eq!(worker.stat_u64("queue_q_open_timeouts"), 2);

    // Given back, its late close a no-op, then a crash: b is still there, once (a's removal
    // by its real close may not have reached the disk: at-least-once, so a may be back too).
    clock.advance(1001);
    assert_eq!(worker.stat_u64("queue_q_open_timeouts"), 3);
    worker.roundtrip(b"get q/close\r\n", b"END\r\n");
    drop(worker);
    drop(other);
    server.kill9();
    server.restart();
    let mut c = Conn::connect(&server);
    let left = c.drain_strings("q");
    assert!(left == ["b"] || left == ["a", "b"], "{left:?}");
}

#[test]
fn a_cursor_read_held_too_long_goes_to_its_failed_reads() {
    let mut clock = FakeClock::new();
    let server = start_with_clock(&clock, &["--open-timeout", "1000"]);
    let (mut worker, mut other) = worker_and_other(&server);
    worker.roundtrip(b"get q.c/open\r\n", &value_reply("q.c/open", 0, b"a"));
    clock.advance(1001);
    other.roundtrip(b"get q.c\r\n", &value_reply("q.c", 0, b"a"));
    worker.roundtrip(b"get q.c/close\r\n", b"END\r\n");
    other.roundtrip(b"get q.c\r\n", &value_reply("q.c", 0, b"b"));
    other.roundtrip(b"get q.c\r\n", b"END\r\n");
    other.expect_stats(&[
        ("q_open_timeouts", 1),
        ("q.c_open_transactions", 0),
        ("q.c_failed_items", 0),
    ]);
    // The source items stay for plain readers.
    other.roundtrip(b"get q\r\n", &value_reply("q", 0, b"a"));

    // A timed-out cursor read opened again by another reader is theirs alone.
    worker.roundtrip(b"get q.d/open\r\n", &value_reply("q.d/open", 0, b"b"));
    clock.advance(1001);
    other.roundtrip(b"get q.d/open\r\n", &value_reply("q.d/open", 0, b"b"));
    worker.roundtrip(b"get q.d/close\r\n", b"END\r\n");
    assert_eq!(other.stat_u64("queue_q.d_open_transactions"), 1);
    other.roundtrip(b"get q.d/close\r\n", b"END\r\n");
    other.roundtrip(b"get q.d\r\n", b"END\r\n");
    assert_eq!(other.stat_u64("queue_q_open_timeouts"), 2);
}

#[test]
fn a_timeout_wakes_a_waiting_reader_when_the_queue_is_touched() {
    let mut clock = FakeClock::new();
    let server = start_with_clock(&clock, &["--open-timeout", "1000"]);
    let mut worker = Conn::connect(&server);
    let mut waiter = Conn::connect(&server);
    worker.set("q", b"a");
    worker.roundtrip(b"get q/open\r\n", &value_reply("q/open", 0, b"a"));
    waiter.send(b"get q/t=600000\r\n");
    worker.wait_stat("queue_q_waiters", "1");
    clock.advance(1001);
    // Any touch of the queue (here `stats`) gives the read back and wakes the waiter.
    assert_eq!(worker.stat_u64("queue_q_open_timeouts"), 1);
    waiter.expect(&value_reply("q/t=600000", 0, b"a"));
}

#[test]
fn a_queues_own_timeout_wins_then_the_command_line_then_defaults() {
    let (_dir, config) = timer_config("open_timeout_ms");
    let mut clock = FakeClock::new();
    let server = start_with_clock(&clock, &["--config", &config, "--open-timeout", "1000"]);
    let mut worker = Conn::connect(&server);
    let mut other = Conn::connect(&server);
    for q in ["fast", "q", "never"] {
        worker.set(q, b"x");
        let key = format!("{q}/open");
        worker.roundtrip(
            format!("get {key}\r\n").as_bytes(),
            &value_reply(&key, 0, b"x"),
        );
    }
    clock.advance(101);
    other.expect_stats(&[("fast_open_timeouts", 1), ("q_open_timeouts", 0)]);
    clock.advance(900);
    assert_eq!(other.stat_u64("queue_q_open_timeouts"), 1);
    clock.advance(1_000_000_000);
    other.expect_stats(&[("never_open_timeouts", 0), ("never_open_transactions", 1)]);
    worker.roundtrip(b"get never/close\r\n", b"END\r\n");
    other.roundtrip(b"get never\r\n", b"END\r\n");

    // Without the command line, `[defaults]` applies.
    drop(server);
    let server = start_with_clock(&clock, &["--config", &config]);
    let mut worker = Conn::connect(&server);
    worker.set("q", b"y");
    worker.roundtrip(b"get q/open\r\n", &value_reply("q/open", 0, b"y"));
    clock.advance(5000);
    assert_eq!(worker.stat_u64("queue_q_open_timeouts"), 0);
    clock.advance(1);
    assert_eq!(worker.stat_u64("queue_q_open_timeouts"), 1);
}

#[test]
fn a_check_that_gives_reads_back_logs_one_line_with_the_queue_and_the_count() {
    let mut clock = FakeClock::new();
    let server = start_with_clock(&clock, &["--open-timeout", "1000"]);
    let (mut worker, mut other) = worker_and_other(&server);
    worker.roundtrip(b"get q/open\r\n", &value_reply("q/open", 0, b"a"));
    other.roundtrip(b"get q/open\r\n", &value_reply("q/open", 0, b"b"));
    // Both are due at the same instant, so the first check after it gives both back.
    clock.advance(1001);
    other.expect_stats(&[("q_open_timeouts", 2), ("q_open_transactions", 0)]);
    let line = "queue q: 2 open read(s) given back by the open timeout";
    // The line is written just after the check that counted them.
    common::wait_until("the open-timeout line", || server.log().contains(line));
    let log = server.log();
    assert_eq!(
        log.matches("given back by the open timeout").count(),
        1,
        "{log}"
    );
}
