//! Cursors (`get <queue>.<cursor>[/options]`), their failed-read queues,
//! `delete`/`flush` of queues and cursors, per-cursor stats, persistence across
//! restarts and `kill -9`, and concurrent producers — against the real binary,
//! in exact bytes (see SPEC.md, "Cursors").

mod common;

use common::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------- helpers

/// `set` each item (flags 0) into `queue`.
#[track_caller]
fn set_all(c: &mut Conn, queue: &str, items: &[&str]) {
    for i in items {
        c.set(queue, i.as_bytes());
    }
}

/// The `queue_…` part of `stats`, in order.
#[track_caller]
fn queue_stats(c: &mut Conn) -> Vec<(String, String)> {
    c.stats()
        .into_iter()
        .filter(|(n, _)| n.starts_with("queue_"))
        .collect()
}

/// Names of the stats lines expected for queue `q` followed by its cursors.
fn expected_names(queues: &[(&str, &[&str])]) -> Vec<String> {
    let mut out = Vec::new();
    for (q, cursors) in queues {
        for k in [
            "items",
            "bytes",
            "total_items",
            "expired_items",
            "open_transactions",
            "waiters",
            "age_ms",
            "open_timeouts",
        ] {
            out.push(format!("queue_{q}_{k}"));
        }
        for c in cursors.iter() {
            for k in ["items", "failed_items", "open_transactions", "age_ms"] {
                out.push(format!("queue_{q}.{c}_{k}"));
            }
        }
    }
    out
}

/// Assert the three per-cursor stats of `q.c`: items, failed_items, open_transactions.
#[track_caller]
fn assert_cursor_stats(stats: &[(String, String)], qc: &str, want: [u64; 3]) {
    let get = |k: &str| -> u64 {
        let name = format!("queue_{qc}_{k}");
        let v = stats
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("stat {name} missing in {stats:?}"));
        v.1.parse()
            .unwrap_or_else(|_| panic!("stat {name} not a number: {:?}", v.1))
    };
    let got = [get("items"), get("failed_items"), get("open_transactions")];
    assert_eq!(
        got, want,
        "stats of cursor {qc}: [items, failed_items, open_transactions]"
    );
}

#[track_caller]
fn stat_of(stats: &[(String, String)], name: &str) -> String {
    stats
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("stat {name} missing in {stats:?}"))
        .1
        .clone()
}

/// `get key` without panicking on a broken connection.
/// None = the connection failed; Some(None) = END; Some(Some(data)) = an item.
fn try_get(c: &mut Conn, key: &str) -> Option<Option<Vec<u8>>> {
    c.stream_write(format!("get {key}\r\n").as_bytes()).ok()?;
    let line = c.try_read_line()?;
    if line == b"END\r\n" {
        return Some(None);
    }
    let text = String::from_utf8_lossy(&line).into_owned();
    let parts: Vec<&str> = text.trim_end_matches("\r\n").split(' ').collect();
    assert!(
        parts.len() == 4 && parts[0] == "VALUE" && parts[1] == key,
        "bad reply to get {key}: {}",
        esc(&line)
    );
    let len: usize = parts[3].parse().unwrap();
    let data = c.try_read_exact(len)?;
    let end = c.try_read_exact(7)?;
    assert_eq!(end, b"\r\nEND\r\n", "bad end of VALUE block for {key}");
    Some(Some(data))
}

/// `set` without panicking on a broken connection. true = STORED received.
fn try_set(c: &mut Conn, queue: &str, data: &[u8]) -> bool {
    if c.stream_write(&set_req(queue, 0, 0, data)).is_err() {
        return false;
    }
    match c.try_read_line() {
        Some(l) if l == b"STORED\r\n" => true,
        Some(l) => panic!("set {queue}: unexpected reply {}", esc(&l)),
        None => false,
    }
}

// ---------------------------------------------------------------- basics

#[test]
fn cursor_is_created_at_head_and_sees_items_held_open() {
    let s = Server::start();
    let mut plain = Conn::connect(&s);
    set_all(&mut plain, "q", &["a", "b", "c"]);
    // A plain reader holds the head item open.
    expect_item(&mut plain, "q/open", b"a");
    let mut cur = Conn::connect(&s);
    expect_item(&mut cur, "q.c", b"a");
    expect_item(&mut cur, "q.c", b"b");
    expect_item(&mut cur, "q.c", b"c");
    expect_end(&mut cur, "q.c");
    // The plain reader's open read is untouched by the cursor.
    plain.roundtrip(b"get q/close\r\n", b"END\r\n");
    expect_item(&mut plain, "q", b"b");
}

#[test]
fn cursor_created_on_empty_queue_sees_later_items() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    expect_end(&mut c, "q.c");
    expect_end(&mut c, "q.c/peek");
    c.set("q", b"x");
    expect_item(&mut c, "q.c", b"x");
    expect_end(&mut c, "q.c");
    c.set("q", b"y");
    expect_item(&mut c, "q.c", b"y");
}

#[test]
fn cursor_advances_without_removing_items() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    set_all(&mut c, "q", &["1", "2", "3"]);
    expect_item(&mut c, "q.c1", b"1");
    expect_item(&mut c, "q.c2", b"1");
    expect_item(&mut c, "q.c1", b"2");
    expect_item(&mut c, "q.c1", b"3");
    expect_end(&mut c, "q.c1");
    // The other cursor is at its own position.
    expect_item(&mut c, "q.c2", b"2");
    // Plain readers still get everything.
    let mut p = Conn::connect(&s);
    assert_eq!(p.drain_strings("q"), ["1", "2", "3"]);
    // c2 was behind: it continues from the (now empty) head.
    expect_end(&mut c, "q.c2");
}

#[test]
fn cursor_behind_the_head_continues_from_the_head() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    set_all(&mut c, "q", &["1", "2", "3", "4", "5"]);
    expect_item(&mut c, "q.c", b"1");
    expect_item(&mut c, "q", b"1");
    expect_item(&mut c, "q", b"2");
    expect_item(&mut c, "q", b"3");
    expect_item(&mut c, "q.c/peek", b"4");
    expect_item(&mut c, "q.c", b"4");
    expect_item(&mut c, "q.c", b"5");
    expect_end(&mut c, "q.c");
    // A brand new cursor starts at the current head.
    expect_item(&mut c, "q.new", b"4");
}

#[test]
fn value_line_echoes_the_cursor_key_with_every_option() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    c.set_flags("q", 7, b"hello");
    c.set("q", b"world");
    c.set("q", b"third");
    c.roundtrip(
        b"get q.c/peek\r\n",
        b"VALUE q.c/peek 7 5\r\nhello\r\nEND\r\n",
    );
    c.roundtrip(
        b"get q.c/open\r\n",
        b"VALUE q.c/open 7 5\r\nhello\r\nEND\r\n",
    );
    c.roundtrip(b"get q.c/close\r\n", b"END\r\n");
    c.roundtrip(
        b"get q.c/close/open\r\n",
        b"VALUE q.c/close/open 0 5\r\nworld\r\nEND\r\n",
    );
    c.roundtrip(b"get q.c/abort\r\n", b"END\r\n");
    // The aborted item is served first again.
    c.roundtrip(
        b"get q.c/t=2000\r\n",
        b"VALUE q.c/t=2000 0 5\r\nworld\r\nEND\r\n",
    );
    c.roundtrip(
        b"get q.c/open/close\r\n",
        b"VALUE q.c/open/close 0 5\r\nthird\r\nEND\r\n",
    );
    c.roundtrip(b"get q.c/close/t=10\r\n", b"END\r\n");
    c.roundtrip(b"get q.c/peek/t=10\r\n", b"END\r\n");
    c.roundtrip(b"get q.c/t=10/open\r\n", b"END\r\n");
    // Case is preserved in the echo; names are case-sensitive.
    c.roundtrip(
        b"GET q.Cur_1-x:y/peek\r\n",
        b"VALUE q.Cur_1-x:y/peek 7 5\r\nhello\r\nEND\r\n",
    );
    // Multi-key get with cursors, each key handled as if alone; `q.m` repeated verbatim
    // is served once, so the cursor moved past one item only.
    c.roundtrip(
        b"get q.m q.m/peek q.n/open q.m\r\n",
        b"VALUE q.m 7 5\r\nhello\r\nVALUE q.m/peek 0 5\r\nworld\r\n\
          VALUE q.n/open 7 5\r\nhello\r\nEND\r\n",
    );
    c.roundtrip(b"get q.m\r\n", b"VALUE q.m 0 5\r\nworld\r\nEND\r\n");
}

#[test]
fn cursor_get_option_errors() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    c.set("q", b"x");
    for bad in [
        "q.c/peek/open",
        "q.c/open/peek",
        "q.c/peek/close",
        "q.c/peek/abort",
        "q.c/abort/open",
        "q.c/abort/close",
        "q.c/open/open",
        "q.c/t=1/t=1",
        "q.c/t=-1",
        "q.c/t=x",
        "q.c/bogus",
    ] {
        c.roundtrip(
            format!("get {bad}\r\n").as_bytes(),
            b"CLIENT_ERROR bad get options\r\n",
        );
    }
    for bad in ["q.", ".c", "q.c.d", "q.c!", "q+r.c"] {
        c.roundtrip(
            format!("get {bad}\r\n").as_bytes(),
            b"CLIENT_ERROR bad queue name\r\n",
        );
    }
    // None of these moved the cursor.
    expect_item(&mut c, "q.c", b"x");
}

#[test]
fn one_open_read_per_cursor_per_connection() {
    let s = Server::start();
    let mut a = Conn::connect(&s);
    set_all(&mut a, "q", &["1", "2", "3"]);
    expect_item(&mut a, "q.c/open", b"1");
    a.roundtrip(
        b"get q.c/open\r\n",
        b"CLIENT_ERROR close current item first\r\n",
    );
    a.roundtrip(b"get q.c\r\n", b"CLIENT_ERROR close current item first\r\n");
    // Other cursors and the queue itself are independent open slots.
    expect_item(&mut a, "q.d/open", b"1");
    expect_item(&mut a, "q/open", b"1");
    // Another connection reads the same cursor in parallel.
    let mut b = Conn::connect(&s);
    expect_item(&mut b, "q.c/open", b"2");
    a.roundtrip(b"get q.c/close\r\n", b"END\r\n");
    expect_item(&mut a, "q.c", b"3");
    b.roundtrip(b"get q.c/close\r\n", b"END\r\n");
    expect_end(&mut b, "q.c");
}

#[test]
fn close_confirms_without_removing_from_the_queue() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    set_all(&mut c, "q", &["1", "2"]);
    c.roundtrip(b"get q.c/close\r\n", b"END\r\n"); // nothing open: no-op
    c.roundtrip(b"get q.c/abort\r\n", b"END\r\n"); // nothing open: no-op
    expect_item(&mut c, "q.c/open", b"1");
    c.roundtrip(b"get q.c/close\r\n", b"END\r\n");
    c.roundtrip(b"get q.c/close\r\n", b"END\r\n");
    expect_item(&mut c, "q.c/close/open", b"2");
    c.roundtrip(b"get q.c/close\r\n", b"END\r\n");
    expect_end(&mut c, "q.c");
    // Closing a cursor read confirms it for the cursor only: plain readers and
    // other cursors still get both items.
    expect_item(&mut c, "q.other", b"1");
    let mut p = Conn::connect(&s);
    assert_eq!(p.drain_strings("q"), ["1", "2"]);
}

// ---------------------------------------------------------------- failed-read queue

#[test]
fn aborted_cursor_reads_are_served_first_oldest_id_first() {
    let s = Server::start();
    let mut a = Conn::connect(&s);
    let mut b = Conn::connect(&s);
    set_all(&mut a, "q", &["1", "2", "3", "4"]);
    expect_item(&mut a, "q.c/open", b"1");
    expect_item(&mut b, "q.c/open", b"2");
    // Abort the younger one first: the failed-read queue is still served oldest id first.
    b.roundtrip(b"get q.c/abort\r\n", b"END\r\n");
    a.roundtrip(b"get q.c/abort\r\n", b"END\r\n");
    let mut r = Conn::connect(&s);
    expect_item(&mut r, "q.c/peek", b"1");
    expect_item(&mut r, "q.c/peek", b"1");
    expect_item(&mut r, "q.c", b"1");
    expect_item(&mut r, "q.c/peek", b"2");
    expect_item(&mut r, "q.c/open", b"2");
    r.roundtrip(b"get q.c/close\r\n", b"END\r\n");
    expect_item(&mut r, "q.c/peek", b"3");
    expect_item(&mut r, "q.c", b"3");
    expect_item(&mut r, "q.c", b"4");
    expect_end(&mut r, "q.c");
    expect_end(&mut r, "q.c/peek");
    // Other cursors were never affected.
    expect_item(&mut r, "q.d", b"1");
}

#[test]
fn disconnect_puts_open_cursor_reads_into_the_failed_read_queue() {
    let s = Server::start();
    let mut m = Conn::connect(&s);
    set_all(&mut m, "q", &["1", "2", "3"]);
    let mut a = Conn::connect(&s);
    expect_item(&mut a, "q.c/open", b"1");
    expect_item(&mut a, "q.d/open", b"1");
    let mut b = Conn::connect(&s);
    expect_item(&mut b, "q.c/open", b"2");
    b.close();
    a.close();
    m.wait_stat("queue_q.c_open_transactions", "0");
    m.wait_stat("queue_q.d_open_transactions", "0");
    m.wait_stat("queue_q.c_failed_items", "2");
    expect_item(&mut m, "q.c", b"1");
    expect_item(&mut m, "q.c", b"2");
    expect_item(&mut m, "q.c", b"3");
    expect_end(&mut m, "q.c");
    expect_item(&mut m, "q.d", b"1");
    expect_item(&mut m, "q.d", b"2");
    // `quit` returns open reads the same way.
    let mut q = Conn::connect(&s);
    expect_item(&mut q, "q.e/open", b"1");
    q.send(b"quit\r\n");
    q.expect_closed();
    m.wait_stat("queue_q.e_open_transactions", "0");
    expect_item(&mut m, "q.e", b"1");
    expect_item(&mut m, "q.e", b"2");
}

#[test]
fn failed_read_copy_survives_plain_readers_consuming_the_source() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    set_all(&mut c, "q", &["x", "y"]);
    // Failed read via /abort.
    expect_item(&mut c, "q.c/open", b"x");
    c.roundtrip(b"get q.c/abort\r\n", b"END\r\n");
    // Failed read via disconnect, on another cursor.
    let mut d = Conn::connect(&s);
    expect_item(&mut d, "q.d/open", b"x");
    // Plain readers consume everything meanwhile (also the open one's source item).
    let mut p = Conn::connect(&s);
    assert_eq!(p.drain_strings("q"), ["x", "y"]);
    d.close();
    p.wait_stat("queue_q.d_failed_items", "1");
    // The cursor still gets its failed read, then continues from the (empty) head.
    expect_item(&mut c, "q.c/peek", b"x");
    expect_item(&mut c, "q.c", b"x");
    expect_end(&mut c, "q.c");
    expect_item(&mut c, "q.d", b"x");
    expect_end(&mut c, "q.d");
    // New items still reach the cursor afterwards.
    c.set("q", b"z");
    expect_item(&mut c, "q.c", b"z");
    expect_end(&mut c, "q.c");
}

// ---------------------------------------------------------------- blocking reads

// A plain waiter that *removes* the item can legitimately make a cursor waiter
// miss it (SPEC: a cursor behind the head skips consumed items). Where the test
// needs the cursor to see a given item, the plain waiters use `/open`, which
// keeps the item in the queue.

fn waiting_conn(s: &Server, req: &[u8]) -> Conn {
    let mut c = Conn::connect(s);
    c.set_timeout(Duration::from_secs(30));
    c.send(req);
    c
}

#[test]
fn blocking_cursor_read_woken_while_a_plain_waiter_waits_too() {
    let s = Server::start();
    let mut m = Conn::connect(&s);
    let mut pw = waiting_conn(&s, b"get q/open/t=20000\r\n");
    m.wait_stat("queue_q_waiters", "1");
    let mut cw = waiting_conn(&s, b"get q.c/t=2000\r\n");
    m.wait_stat("queue_q_waiters", "2");
    let mut prod = Conn::connect(&s);
    prod.set("q", b"one");
    cw.expect(b"VALUE q.c/t=2000 0 3\r\none\r\nEND\r\n");
    prod.set("q", b"two");
    pw.expect(b"VALUE q/open/t=20000 0 3\r\none\r\nEND\r\n");
    pw.roundtrip(b"get q/close\r\n", b"END\r\n");
    expect_item(&mut m, "q.c", b"two");
    expect_item(&mut m, "q", b"two");
}

#[test]
fn cursor_waiter_does_not_steal_wake_ups_from_plain_waiters() {
    let s = Server::start();
    let mut m = Conn::connect(&s);
    let mut cw = waiting_conn(&s, b"get q.c/t=20000\r\n");
    m.wait_stat("queue_q_waiters", "1");
    let mut p1 = waiting_conn(&s, b"get q/open/t=20000\r\n");
    let mut p2 = waiting_conn(&s, b"get q/open/t=20000\r\n");
    m.wait_stat("queue_q_waiters", "3");
    m.set("q", b"one");
    cw.expect(b"VALUE q.c/t=20000 0 3\r\none\r\nEND\r\n");
    m.set("q", b"two");
    let mut got = vec![
        p1.read_get_reply("q/open/t=20000")
            .expect("plain waiter 1 woken"),
        p2.read_get_reply("q/open/t=20000")
            .expect("plain waiter 2 woken"),
    ];
    got.sort();
    assert_eq!(got, [(0, b"one".to_vec()), (0, b"two".to_vec())]);
    expect_item(&mut m, "q.c", b"two");
    expect_end(&mut m, "q.c");
}

#[test]
fn plain_consumer_and_cursor_waiters_are_both_served() {
    let s = Server::start();
    let mut m = Conn::connect(&s);
    let mut cw = waiting_conn(&s, b"get q.c/t=20000\r\n");
    m.wait_stat("queue_q_waiters", "1");
    let mut pw = waiting_conn(&s, b"get q/t=20000\r\n");
    m.wait_stat("queue_q_waiters", "2");
    m.set("q", b"a");
    // The consuming plain waiter must get the item, whoever was woken first.
    pw.expect(b"VALUE q/t=20000 0 1\r\na\r\nEND\r\n");
    // The cursor saw "a" if it read before the plain waiter removed it;
    // otherwise it skipped it (SPEC) and is still waiting for the next one.
    m.set("q", b"b");
    let (_, d) = cw
        .read_get_reply("q.c/t=20000")
        .expect("cursor waiter woken");
    assert!(d == b"a" || d == b"b", "cursor got {}", esc(&d));
    if d == b"a" {
        expect_item(&mut m, "q.c", b"b");
    }
    expect_end(&mut m, "q.c");
    expect_item(&mut m, "q", b"b");
}

#[test]
fn blocking_cursor_read_waits_when_the_cursor_is_at_the_tail() {
    let s = Server::start();
    let mut m = Conn::connect(&s);
    m.set("q", b"old");
    expect_item(&mut m, "q.c", b"old");
    // The queue is not empty, but the cursor has nothing left: it must wait.
    let mut w = Conn::connect(&s);
    w.set_timeout(Duration::from_secs(30));
    w.send(b"get q.c/open/t=20000\r\n");
    m.wait_stat("queue_q_waiters", "1");
    w.expect_silence(Duration::from_millis(200));
    m.set("q", b"new");
    w.expect(b"VALUE q.c/open/t=20000 0 3\r\nnew\r\nEND\r\n");
    w.roundtrip(b"get q.c/close\r\n", b"END\r\n");
    // A timed-out cursor wait returns END and moves nothing.
    let t0 = Instant::now();
    w.roundtrip(b"get q.c/t=300\r\n", b"END\r\n");
    assert!(t0.elapsed() >= Duration::from_millis(250), "did not wait");
    expect_item(&mut m, "q", b"old");
    expect_item(&mut m, "q", b"new");
}

#[test]
fn disconnected_cursor_waiter_does_not_advance_the_cursor() {
    let s = Server::start();
    let mut w = Conn::connect(&s);
    w.send(b"get q.c/t=20000\r\n");
    let mut m = Conn::connect(&s);
    m.wait_stat("queue_q_waiters", "1");
    w.close();
    m.wait_stat("queue_q_waiters", "0");
    m.set("q", b"a");
    expect_item(&mut m, "q.c", b"a");
}

// ---------------------------------------------------------------- persistence

/// Common set-up of the persistence tests: q = 1..5; c1 read 1,2; c2 has a
/// failed read of 1; c3 holds 1 open on the returned connection (never closed).
fn persistence_setup(s: &Server) -> Conn {
    let mut m = Conn::connect(s);
    set_all(&mut m, "q", &["1", "2", "3", "4", "5"]);
    expect_item(&mut m, "q.c1", b"1");
    expect_item(&mut m, "q.c1", b"2");
    expect_item(&mut m, "q.c2/open", b"1");
    m.roundtrip(b"get q.c2/abort\r\n", b"END\r\n");
    expect_item(&mut m, "q.c4/open", b"1");
    m.roundtrip(b"get q.c4/close\r\n", b"END\r\n");
    let mut holder = Conn::connect(s);
    expect_item(&mut holder, "q.c3/open", b"1");
    holder
}

/// `crashed`: plain cursor reads save their position lazily (every 32 moves), so after a kill -9
/// c1 may repeat its two reads (at-least-once, SPEC); it must never skip one.
fn persistence_check(s: &Server, crashed: bool) {
    let mut m = Conn::connect(s);
    // The never-closed read of c3 is a failed read now, like c2's aborted one.
    let stats = queue_stats(&mut m);
    assert_eq!(stat_of(&stats, "queue_q_items"), "5");
    if crashed && stat_of(&stats, "queue_q.c1_items") == "5" {
        expect_item(&mut m, "q.c1", b"1");
        expect_item(&mut m, "q.c1", b"2");
    } else {
        assert_cursor_stats(&stats, "q.c1", [3, 0, 0]);
    }
    assert_cursor_stats(&stats, "q.c2", [5, 1, 0]);
    assert_cursor_stats(&stats, "q.c3", [5, 1, 0]);
    assert_cursor_stats(&stats, "q.c4", [4, 0, 0]);
    expect_item(&mut m, "q.c1", b"3");
    expect_item(&mut m, "q.c2", b"1");
    expect_item(&mut m, "q.c2", b"2");
    expect_item(&mut m, "q.c3/open", b"1"); // the never-closed read, delivered again
    m.roundtrip(b"get q.c3/close\r\n", b"END\r\n");
    expect_item(&mut m, "q.c3", b"2");
    expect_item(&mut m, "q.c4", b"2");
    // Plain readers still have every item.
    assert_eq!(m.drain_strings("q"), ["1", "2", "3", "4", "5"]);
    // Cursors continue after the drained head, and see new items.
    m.set("q", b"6");
    expect_item(&mut m, "q.c1", b"6");
    expect_end(&mut m, "q.c1");
}

#[test]
fn cursor_state_survives_graceful_restart() {
    let mut s = Server::start();
    let holder = persistence_setup(&s);
    s.restart();
    drop(holder);
    persistence_check(&s, false);
}

#[test]
fn cursor_state_survives_kill9() {
    let mut s = Server::start();
    let holder = persistence_setup(&s);
    // Removals and cursor moves are only at-least-once across a crash; a
    // STORED in `--sync always` (the default) means everything written before
    // it is on disk, so this set makes the cursor state above durable (but
    // plain cursor reads save their position lazily: see persistence_check).
    let mut m = Conn::connect(&s);
    m.set("barrier", b"b");
    s.kill9();
    drop(holder);
    drop(m);
    s.start_again();
    persistence_check(&s, true);
}

#[test]
fn sync_interval_makes_a_cursor_position_durable_without_any_write() {
    // Under `--sync <N>ms` the periodic sync also covers a cursor that moved while nothing was
    // written: its position lives in the index, which sled does not flush by itself there.
    let mut s = Server::start_with(&["--sync", "20ms", "--log-level", "debug"]);
    let mut c = Conn::connect(&s);
    let items: Vec<String> = (0..40).map(|i| i.to_string()).collect();
    let items: Vec<&str> = items.iter().map(String::as_str).collect();
    set_all(&mut c, "q", &items);
    let syncs = |s: &Server| s.log().matches("periodic sync: writes 1 to 40 ").count();
    wait_until("a periodic sync of the 40 writes", || syncs(&s) > 0);
    for item in &items {
        expect_item(&mut c, "q.c", item.as_bytes());
    }
    // At the end of the queue the cursor saves its position.
    c.roundtrip(b"get q.c\r\n", b"END\r\n");
    let before = syncs(&s);
    wait_until("a periodic sync after the cursor moved", || {
        syncs(&s) > before
    });
    s.kill9();
    s.start_again();
    let mut c = Conn::connect(&s);
    c.roundtrip(b"get q.c\r\n", b"END\r\n");
    expect_item(&mut c, "q", b"0");
}

#[test]
fn open_cursor_read_is_redelivered_after_kill9_without_barrier() {
    // No barrier: whatever reached the disk, the open item must come back.
    let mut s = Server::start();
    let mut m = Conn::connect(&s);
    set_all(&mut m, "q", &["1", "2"]);
    expect_item(&mut m, "q.c/open", b"1");
    s.kill9();
    s.start_again();
    let mut m = Conn::connect(&s);
    expect_item(&mut m, "q.c", b"1");
    expect_item(&mut m, "q.c", b"2");
    expect_end(&mut m, "q.c");
}

fn ids_never_reused(crash: bool) {
    let mut s = Server::start();
    let mut m = Conn::connect(&s);
    set_all(&mut m, "q", &["a", "b", "c"]);
    assert_eq!(m.drain_strings("q.c"), ["a", "b", "c"]);
    assert_eq!(m.drain_strings("q"), ["a", "b", "c"]);
    if crash {
        m.set("barrier", b"b");
        s.kill9();
        s.start_again();
    } else {
        s.restart();
    }
    let mut m = Conn::connect(&s);
    expect_end(&mut m, "q.c");
    set_all(&mut m, "q", &["d", "e"]);
    expect_item(&mut m, "q.c", b"d");
    expect_item(&mut m, "q.c", b"e");
    expect_end(&mut m, "q.c");
    assert_eq!(m.drain_strings("q"), ["d", "e"]);
    // Again, without a cursor read before the restart.
    set_all(&mut m, "q", &["f"]);
    assert_eq!(m.drain_strings("q"), ["f"]);
    if crash {
        m.set("barrier", b"b");
        s.kill9();
        s.start_again();
    } else {
        s.restart();
    }
    let mut m = Conn::connect(&s);
    m.set("q", b"g");
    expect_item(&mut m, "q.c", b"g");
}

#[test]
fn item_ids_are_never_reused_after_drain_and_restart() {
    ids_never_reused(false);
}

#[test]
fn item_ids_are_never_reused_after_drain_and_kill9() {
    ids_never_reused(true);
}

// ---------------------------------------------------------------- concurrency

/// Producers in this test. Items per producer: see `PER_PRODUCER`.
const PRODUCERS: usize = 4;
/// 5000 per producer (20000 items, each read by 3 cursors) stays well under
/// the time budget in a debug build thanks to pipelining.
const PER_PRODUCER: u64 = 5000;
const CURSORS: usize = 3;
const BATCH: usize = 50;

#[test]
fn concurrent_producers_and_cursors_see_each_item_exactly_once_in_order() {
    let s = Server::start_with(&["--sync", "never"]);
    let addr = s.addr();
    {
        // Create the cursors before anything is written.
        let mut m = Conn::connect(&s);
        for k in 0..CURSORS {
            expect_end(&mut m, &format!("q.c{k}"));
        }
    }
    let mut handles = Vec::new();
    for p in 0..PRODUCERS {
        handles.push(thread::spawn(move || {
            let mut c = Conn::connect_addr(addr);
            produce(&mut c, "q", p, 0..PER_PRODUCER, BATCH);
            Vec::new()
        }));
    }
    let total = PRODUCERS * PER_PRODUCER as usize;
    for k in 0..CURSORS {
        handles.push(thread::spawn(move || {
            let key = format!("q.c{k}");
            let mut c = Conn::connect_addr(addr);
            // Nothing more than the items written.
            read_until(&mut c, &key, total, 32)
        }));
    }
    let results = join_all(handles);
    for (k, seen) in results.into_iter().skip(PRODUCERS).enumerate() {
        assert_eq!(seen.len(), total, "cursor c{k}: item count");
        let mut per: Vec<Vec<u64>> = vec![Vec::new(); PRODUCERS];
        for d in &seen {
            let (p, n) = parse_item(d);
            per[p].push(n);
        }
        for (p, ns) in per.iter().enumerate() {
            let want: Vec<u64> = (0..PER_PRODUCER).collect();
            if *ns != want {
                let first = ns
                    .iter()
                    .zip(&want)
                    .position(|(a, b)| a != b)
                    .unwrap_or(ns.len().min(want.len()));
                panic!(
                    "cursor c{k}, producer {p}: {} items, first difference at index {first}: \
                     got {:?}, expected {:?}",
                    ns.len(),
                    &ns[first..(first + 5).min(ns.len())],
                    &want[first..(first + 5).min(want.len())]
                );
            }
        }
    }
    // The queue itself still holds every item.
    let mut m = Conn::connect(&s);
    assert_eq!(m.stat_u64("queue_q_items"), total as u64);
}

/// How a cursor reader in the crash test reads.
#[derive(Clone, Copy, Debug)]
enum Mode {
    /// `get q.c`
    Plain,
    /// `get q.c/close/open`
    CloseOpen,
    /// `get q.c/open` then `get q.c/close`
    OpenThenClose,
}

/// Read one item with `mode`, handing it to `sink` as soon as it arrives.
/// None: connection broken. Some(true): an item. Some(false): nothing.
fn mode_read(
    c: &mut Conn,
    cursor: &str,
    mode: Mode,
    sink: &mut dyn FnMut(Vec<u8>),
) -> Option<bool> {
    let key = match mode {
        Mode::Plain => cursor.to_string(),
        Mode::CloseOpen => format!("{cursor}/close/open"),
        Mode::OpenThenClose => format!("{cursor}/open"),
    };
    let Some(d) = try_get(c, &key)? else {
        return Some(false);
    };
    sink(d);
    if let Mode::OpenThenClose = mode {
        if let Some(d) = try_get(c, &format!("{cursor}/close"))? {
            panic!("/close returned an item {}", esc(&d));
        }
    }
    Some(true)
}

#[test]
fn kill9_during_cursor_reads_skips_nothing() {
    const PRODS: usize = 3;
    const CRASHES: usize = 2;
    let modes = [Mode::Plain, Mode::CloseOpen, Mode::OpenThenClose];
    let mut s = Server::start(); // --sync always: every STORED item survives the crash
    let addr = s.addr();
    {
        let mut m = Conn::connect(&s);
        for k in 0..modes.len() {
            expect_end(&mut m, &format!("q.c{k}"));
        }
    }
    // acked[p] = sequence numbers acknowledged with STORED; next[p] = next to send.
    let acked: Arc<Mutex<Vec<Vec<u64>>>> = Arc::new(Mutex::new(vec![Vec::new(); PRODS]));
    let next: Arc<Mutex<Vec<u64>>> = Arc::new(Mutex::new(vec![0; PRODS]));
    let seen: Arc<Mutex<Vec<Vec<Vec<u8>>>>> = Arc::new(Mutex::new(vec![Vec::new(); modes.len()]));

    // Phase 1 runs until the crash (`limit` = None); phase 2 produces `limit`
    // more items per producer, then the readers drain.
    let run = |limit: Option<u64>| {
        let done = Arc::new(AtomicBool::new(false));
        let mut producers = Vec::new();
        for p in 0..PRODS {
            let (acked, next) = (acked.clone(), next.clone());
            producers.push(thread::spawn(move || {
                let mut c = Conn::connect_addr(addr);
                let stop_at = limit.map(|l| next.lock().unwrap()[p] + l);
                loop {
                    let n = next.lock().unwrap()[p];
                    if Some(n) == stop_at {
                        return;
                    }
                    next.lock().unwrap()[p] = n + 1;
                    if !try_set(&mut c, "q", format!("p{p}-{n}").as_bytes()) {
                        return; // the server died
                    }
                    acked.lock().unwrap()[p].push(n);
                }
            }));
        }
        let mut readers = Vec::new();
        for (k, mode) in modes.iter().copied().enumerate() {
            let (seen, done) = (seen.clone(), done.clone());
            readers.push(thread::spawn(move || {
                let cursor = format!("q.c{k}");
                let mut c = Conn::connect_addr(addr);
                let mut empties_after_done = 0;
                loop {
                    let finished = done.load(Ordering::SeqCst);
                    let mut sink = |d| seen.lock().unwrap()[k].push(d);
                    match mode_read(&mut c, &cursor, mode, &mut sink) {
                        None => return, // the server died
                        Some(true) => {}
                        Some(false) if finished => {
                            empties_after_done += 1;
                            if empties_after_done >= 2 {
                                if let Mode::CloseOpen = mode {
                                    let _ = try_get(&mut c, &format!("{cursor}/close"));
                                }
                                return;
                            }
                        }
                        Some(false) => thread::sleep(Duration::from_millis(2)),
                    }
                }
            }));
        }
        (producers, readers, done)
    };

    // Phase 1, twice: write and read, then crash in the middle, restart.
    let mut seen_before = Vec::new();
    for round in 1..=CRASHES {
        let (producers, readers, _done) = run(None);
        // Crash once every reader has read a good number; a slow machine settles for less
        // after 8 s, but never for nothing.
        let t0 = Instant::now();
        wait_until("every cursor reader to read before the crash", || {
            let min_seen = seen.lock().unwrap().iter().map(|v| v.len()).min().unwrap();
            min_seen >= 600 * round || (min_seen > 0 && t0.elapsed() > Duration::from_secs(8))
        });
        s.kill9();
        join_all(producers);
        join_all(readers);
        seen_before = seen.lock().unwrap().iter().map(|v| v.len()).collect();
        assert!(
            seen_before.iter().all(|&n| n > 0),
            "readers read nothing before crash {round}: {seen_before:?}"
        );
        s.start_again();
    }

    // Phase 2: write some more while reading, then drain.
    let (producers, readers, done) = run(Some(200));
    join_all(producers);
    done.store(true, Ordering::SeqCst);
    join_all(readers);

    let acked = acked.lock().unwrap();
    let next = next.lock().unwrap();
    let seen = seen.lock().unwrap();
    for (k, mode) in modes.iter().enumerate() {
        let mut count: HashMap<(usize, u64), usize> = HashMap::new();
        for d in &seen[k] {
            let (p, n) = parse_item(d);
            assert!(
                p < PRODS && n < next[p],
                "cursor c{k} read a phantom item p{p}-{n}"
            );
            *count.entry((p, n)).or_default() += 1;
        }
        let missing: Vec<String> = acked
            .iter()
            .enumerate()
            .flat_map(|(p, ns)| ns.iter().map(move |&n| (p, n)))
            .filter(|key| !count.contains_key(key))
            .map(|(p, n)| format!("p{p}-{n}"))
            .collect();
        let dups: usize = count.values().map(|&c| c - 1).sum();
        eprintln!(
            "cursor c{k} ({mode:?}): {} reads ({} before the last crash), {} distinct, {dups} duplicates, missing {missing:?}",
            seen[k].len(),
            seen_before[k],
            count.len()
        );
        match mode {
            // A plain cursor get is not acknowledged by the client: the one
            // reply in flight when the server died may be lost with it.
            Mode::Plain => assert!(
                missing.len() <= CRASHES,
                "cursor c{k} ({mode:?}) skipped acknowledged items: {missing:?}"
            ),
            _ => assert!(
                missing.is_empty(),
                "cursor c{k} ({mode:?}) skipped acknowledged items: {missing:?}"
            ),
        }
    }
}

// ---------------------------------------------------------------- delete and flush

#[test]
fn delete_cursor() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    set_all(&mut c, "q", &["x", "y", "z"]);
    expect_item(&mut c, "q.c", b"x");
    expect_item(&mut c, "q.c/open", b"y");
    c.roundtrip(b"get q.c/abort\r\n", b"END\r\n");
    expect_item(&mut c, "q.keep", b"x");
    c.roundtrip(b"delete q.c\r\n", b"DELETED\r\n");
    c.roundtrip(b"delete q.c\r\n", b"NOT_FOUND\r\n");
    c.roundtrip(b"delete q.never\r\n", b"NOT_FOUND\r\n");
    c.roundtrip(b"delete nosuch.c\r\n", b"NOT_FOUND\r\n");
    c.roundtrip(
        b"delete q.keep noreply\r\ndelete q.keep\r\n",
        b"NOT_FOUND\r\n",
    );
    // Deleting a cursor neither created the unknown queue nor touched q's items.
    let stats = queue_stats(&mut c);
    assert!(
        !stats.iter().any(|(n, _)| n.starts_with("queue_nosuch")),
        "delete of nosuch.c created the queue: {stats:?}"
    );
    assert!(
        !stats.iter().any(|(n, _)| n.starts_with("queue_q.")),
        "deleted cursors still in stats: {stats:?}"
    );
    assert_eq!(stat_of(&stats, "queue_q_items"), "3");
    // A new cursor of the same name starts at the head, with no failed reads.
    assert_eq!(c.drain_strings("q.c"), ["x", "y", "z"]);
    assert_eq!(c.drain_strings("q"), ["x", "y", "z"]);
}

#[test]
fn flush_cursor_empties_failed_reads_and_moves_to_the_tail() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    set_all(&mut c, "q", &["1", "2", "3", "4"]);
    expect_item(&mut c, "q.c/open", b"1");
    c.roundtrip(b"get q.c/abort\r\n", b"END\r\n");
    expect_item(&mut c, "q.c/peek", b"1");
    expect_item(&mut c, "q.d", b"1");
    c.roundtrip(b"flush q.c\r\n", b"END\r\n");
    expect_end(&mut c, "q.c/peek");
    expect_end(&mut c, "q.c");
    c.roundtrip(b"flush q.c noreply\r\nflush q.c\r\n", b"END\r\n");
    let stats = queue_stats(&mut c);
    assert_cursor_stats(&stats, "q.c", [0, 0, 0]);
    assert_cursor_stats(&stats, "q.d", [3, 0, 0]);
    c.set("q", b"5");
    expect_item(&mut c, "q.c", b"5");
    expect_end(&mut c, "q.c");
    // The queue and the other cursor are untouched.
    expect_item(&mut c, "q.d", b"2");
    assert_eq!(c.drain_strings("q"), ["1", "2", "3", "4", "5"]);
}

#[test]
fn flush_queue_with_cursors_and_open_reads() {
    let s = Server::start();
    let mut m = Conn::connect(&s);
    set_all(&mut m, "q", &["1", "2", "3"]);
    set_all(&mut m, "other", &["o"]);
    // c2 has a failed read; c is held open on `a`; a plain read is held open on `p`.
    expect_item(&mut m, "q.c2/open", b"1");
    m.roundtrip(b"get q.c2/abort\r\n", b"END\r\n");
    let mut a = Conn::connect(&s);
    expect_item(&mut a, "q.c/open", b"1");
    let mut ac = Conn::connect(&s);
    expect_item(&mut ac, "q.cc/open", b"1");
    let mut p = Conn::connect(&s);
    expect_item(&mut p, "q/open", b"1");
    expect_item(&mut m, "q.c3", b"1");

    m.roundtrip(b"flush q\r\n", b"END\r\n");

    // Items not held open are gone; cursors are at the tail, failed reads emptied.
    expect_end(&mut m, "q");
    expect_end(&mut m, "q.c2");
    expect_end(&mut m, "q.c3");
    let stats = queue_stats(&mut m);
    assert_cursor_stats(&stats, "q.c", [0, 0, 1]);
    assert_cursor_stats(&stats, "q.c2", [0, 0, 0]);
    assert_cursor_stats(&stats, "q.c3", [0, 0, 0]);
    // Open reads stay open: abort puts the cursor item into its failed reads...
    a.roundtrip(b"get q.c/abort\r\n", b"END\r\n");
    expect_item(&mut m, "q.c", b"1");
    expect_end(&mut m, "q.c");
    // ...close removes it...
    ac.roundtrip(b"get q.cc/close\r\n", b"END\r\n");
    expect_end(&mut m, "q.cc");
    // ...and a plain abort puts the plain item back at the head.
    p.roundtrip(b"get q/abort\r\n", b"END\r\n");
    // New items can be added and reach every cursor.
    m.set("q", b"4");
    for k in ["q.c", "q.c2", "q.c3", "q.cc"] {
        expect_item(&mut m, k, b"4");
        expect_end(&mut m, k);
    }
    assert_eq!(m.drain_strings("q"), ["1", "4"]);
    // Another queue was untouched.
    expect_item(&mut m, "other", b"o");
}

#[test]
fn delete_queue_drops_its_cursors_and_failed_reads() {
    let s = Server::start();
    let mut m = Conn::connect(&s);
    set_all(&mut m, "q", &["1", "2"]);
    set_all(&mut m, "other", &["o1", "o2"]);
    expect_item(&mut m, "other.c", b"o1");
    expect_item(&mut m, "q.c1", b"1");
    expect_item(&mut m, "q.c2/open", b"1");
    m.roundtrip(b"get q.c2/abort\r\n", b"END\r\n");
    m.roundtrip(b"delete q\r\n", b"DELETED\r\n");
    m.roundtrip(b"delete q\r\n", b"NOT_FOUND\r\n");
    m.roundtrip(b"delete q.c1\r\n", b"NOT_FOUND\r\n");
    let stats = queue_stats(&mut m);
    assert!(
        !stats
            .iter()
            .any(|(n, _)| n.starts_with("queue_q_") || n.starts_with("queue_q.")),
        "deleted queue still in stats: {stats:?}"
    );
    m.set("q", b"3");
    // Cursors of the same names are new: at the head, no failed reads.
    expect_item(&mut m, "q.c1", b"3");
    expect_item(&mut m, "q.c2", b"3");
    expect_end(&mut m, "q.c2");
    assert_eq!(m.drain_strings("q"), ["3"]);
    // The other queue and its cursor were untouched.
    expect_item(&mut m, "other.c", b"o2");
    assert_eq!(m.drain_strings("other"), ["o1", "o2"]);
}

#[test]
fn late_abort_after_cursor_delete_does_not_resurrect() {
    let s = Server::start();
    let mut m = Conn::connect(&s);
    set_all(&mut m, "q", &["x", "y"]);
    let mut a = Conn::connect(&s);
    expect_item(&mut a, "q.c/open", b"x");
    m.roundtrip(b"delete q.c\r\n", b"DELETED\r\n");
    // The new cursor starts at the head.
    expect_item(&mut m, "q.c", b"x");
    a.roundtrip(b"get q.c/abort\r\n", b"END\r\n");
    // The old open read was dropped: no failed read for the new cursor.
    expect_item(&mut m, "q.c", b"y");
    expect_end(&mut m, "q.c");
    let stats = queue_stats(&mut m);
    assert_cursor_stats(&stats, "q.c", [0, 0, 0]);
    // The dropped read no longer blocks the connection from opening again.
    m.set("q", b"z");
    expect_item(&mut a, "q.c/open", b"z");
    a.roundtrip(b"get q.c/close\r\n", b"END\r\n");
    assert_eq!(m.drain_strings("q"), ["x", "y", "z"]);
}

#[test]
fn late_abort_and_close_after_queue_delete_and_recreate() {
    let s = Server::start();
    let mut m = Conn::connect(&s);
    set_all(&mut m, "other", &["o1", "o2"]);
    expect_item(&mut m, "other.c", b"o1");
    m.set("q", b"old");
    let mut a = Conn::connect(&s); // cursor read, later aborted
    expect_item(&mut a, "q.c/open", b"old");
    let mut b = Conn::connect(&s); // cursor read, later closed
    expect_item(&mut b, "q.d/open", b"old");
    let mut pa = Conn::connect(&s); // plain read, later aborted
    let mut pc = Conn::connect(&s); // plain read, later closed
    m.set("q", b"old2");
    expect_item(&mut pa, "q/open", b"old");
    expect_item(&mut pc, "q/open", b"old2");

    m.roundtrip(b"delete q\r\n", b"DELETED\r\n");
    // Recreate the queue (the new items may well get the same ids as the old ones).
    set_all(&mut m, "q", &["new1", "new2"]);

    a.roundtrip(b"get q.c/abort\r\n", b"END\r\n");
    b.roundtrip(b"get q.d/close\r\n", b"END\r\n");
    pa.roundtrip(b"get q/abort\r\n", b"END\r\n");
    pc.roundtrip(b"get q/close\r\n", b"END\r\n");

    // The new cursors do not get the old item; nothing new was removed.
    assert_eq!(m.drain_strings("q.c"), ["new1", "new2"]);
    assert_eq!(m.drain_strings("q.d"), ["new1", "new2"]);
    assert_eq!(m.drain_strings("q"), ["new1", "new2"]);
    // Another queue was not touched.
    expect_item(&mut m, "other.c", b"o2");
    assert_eq!(m.drain_strings("other"), ["o1", "o2"]);
}

#[test]
fn late_abort_after_queue_delete_does_not_recreate_it() {
    let s = Server::start();
    let mut m = Conn::connect(&s);
    set_all(&mut m, "q", &["1"]);
    set_all(&mut m, "other", &["o"]);
    let mut a = Conn::connect(&s);
    expect_item(&mut a, "q.c/open", b"1");
    expect_item(&mut a, "q/open", b"1");
    m.roundtrip(b"delete q\r\n", b"DELETED\r\n");
    a.roundtrip(b"get q.c/abort\r\n", b"END\r\n");
    a.roundtrip(b"get q/close\r\n", b"END\r\n");
    a.close();
    // Until the server has finished with `a`'s disconnect.
    m.wait_stat("curr_connections", "1");
    let stats = queue_stats(&mut m);
    let names: Vec<&str> = stats.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, expected_names(&[("other", &[])]), "stats: {stats:?}");
    assert_eq!(stat_of(&stats, "queue_other_items"), "1");
}

// ---------------------------------------------------------------- stats

#[test]
fn per_cursor_stats_follow_their_queue_sorted() {
    let s = Server::start();
    let mut m = Conn::connect(&s);
    m.set("p", b"pp");
    expect_item(&mut m, "p.z", b"pp");
    set_all(&mut m, "q", &["1", "2", "3"]);
    m.set("q-1", b"x"); // sorts after "q" bytewise, before "q." as a plain string sort
    expect_item(&mut m, "q.c", b"1");
    expect_item(&mut m, "q.B", b"1");
    expect_item(&mut m, "q.a/open", b"1");
    m.roundtrip(b"get q.a/abort\r\n", b"END\r\n");
    let mut b = Conn::connect(&s);
    expect_item(&mut b, "q.b/open", b"1");

    let stats = queue_stats(&mut m);
    let names: Vec<&str> = stats.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        expected_names(&[("p", &["z"]), ("q", &["B", "a", "b", "c"]), ("q-1", &[]),]),
        "stats: {stats:?}"
    );
    assert_eq!(stat_of(&stats, "queue_q_items"), "3");
    assert_cursor_stats(&stats, "p.z", [0, 0, 0]);
    assert_cursor_stats(&stats, "q.B", [2, 0, 0]);
    assert_cursor_stats(&stats, "q.a", [3, 1, 0]);
    assert_cursor_stats(&stats, "q.b", [2, 0, 1]);
    assert_cursor_stats(&stats, "q.c", [2, 0, 0]);

    // Plain readers consume past the cursors.
    expect_item(&mut m, "q", b"1");
    expect_item(&mut m, "q", b"2");
    let stats = queue_stats(&mut m);
    assert_eq!(stat_of(&stats, "queue_q_items"), "1");
    assert_cursor_stats(&stats, "q.B", [1, 0, 0]);
    assert_cursor_stats(&stats, "q.a", [2, 1, 0]);
    assert_cursor_stats(&stats, "q.b", [1, 0, 1]);
    assert_cursor_stats(&stats, "q.c", [1, 0, 0]);

    b.roundtrip(b"get q.b/close\r\n", b"END\r\n");
    expect_item(&mut m, "q.a", b"1");
    m.roundtrip(b"flush q.c\r\n", b"END\r\n");
    m.set("q", b"4");
    m.roundtrip(b"delete q.B\r\n", b"DELETED\r\n");
    let stats = queue_stats(&mut m);
    let names: Vec<&str> = stats.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        expected_names(&[("p", &["z"]), ("q", &["a", "b", "c"]), ("q-1", &[])]),
        "stats: {stats:?}"
    );
    assert_eq!(stat_of(&stats, "queue_q_items"), "2");
    assert_cursor_stats(&stats, "q.a", [2, 0, 0]);
    assert_cursor_stats(&stats, "q.b", [2, 0, 0]);
    assert_cursor_stats(&stats, "q.c", [1, 0, 0]);
    assert_cursor_stats(&stats, "p.z", [0, 0, 0]);

    // A disconnect moves the open read to the failed reads.
    expect_item(&mut b, "q.b/open", b"3");
    let stats = queue_stats(&mut m);
    assert_cursor_stats(&stats, "q.b", [1, 0, 1]);
    b.close();
    m.wait_stat("queue_q.b_open_transactions", "0");
    let stats = queue_stats(&mut m);
    assert_cursor_stats(&stats, "q.b", [2, 1, 0]);
}

// ---------------------------------------------------------------- memcache client

#[test]
fn memcache_client_reads_through_a_cursor() {
    let s = Server::start();
    let mut raw = Conn::connect(&s);
    raw.set("q", b"hello");
    raw.set_flags("q", 0, b"world");
    let url = format!(
        "memcache://127.0.0.1:{}?protocol=ascii&timeout=10",
        s.port()
    );
    let client = memcache::Client::connect(url.as_str()).expect("memcache client connects");
    assert_eq!(
        client.get::<String>("q.c/peek").unwrap().as_deref(),
        Some("hello")
    );
    assert_eq!(
        client.get::<String>("q.c").unwrap().as_deref(),
        Some("hello")
    );
    assert_eq!(
        client.get::<String>("q.c").unwrap().as_deref(),
        Some("world")
    );
    assert_eq!(client.get::<String>("q.c").unwrap(), None);
    // The items are still in the queue for plain readers.
    assert_eq!(client.get::<String>("q").unwrap().as_deref(), Some("hello"));
    expect_item(&mut raw, "q", b"world");
}

// ---------------------------------------------------------------- more interactions

#[test]
fn concurrent_plain_consumers_never_make_a_cursor_repeat_or_reorder() {
    const PRODS: usize = 2;
    const PER: u64 = 1500;
    let s = Server::start_with(&["--sync", "never"]);
    let addr = s.addr();
    {
        let mut m = Conn::connect(&s);
        expect_end(&mut m, "q.c");
    }
    let done = Arc::new(AtomicBool::new(false));
    let mut producers = Vec::new();
    for p in 0..PRODS {
        producers.push(thread::spawn(move || {
            let mut c = Conn::connect_addr(addr);
            produce(&mut c, "q", p, 0..PER, 25);
        }));
    }
    // A plain consumer races the cursor.
    let consumer = {
        let done = done.clone();
        thread::spawn(move || {
            let mut c = Conn::connect_addr(addr);
            let mut n = 0usize;
            let req = b"get q\r\n".repeat(8);
            while !done.load(Ordering::SeqCst) {
                c.send(&req);
                let got = (0..8).filter(|_| c.read_get_reply("q").is_some()).count();
                n += got;
                if got == 0 {
                    thread::sleep(Duration::from_millis(1));
                }
            }
            n
        })
    };
    let reader = {
        let done = done.clone();
        thread::spawn(move || {
            let mut c = Conn::connect_addr(addr);
            let mut seen = Vec::new();
            let mut empties = 0;
            loop {
                match c.get_data("q.c") {
                    Some(d) => seen.push(parse_item(&d)),
                    None if done.load(Ordering::SeqCst) => {
                        empties += 1;
                        if empties > 2 {
                            return seen;
                        }
                    }
                    None => thread::sleep(Duration::from_millis(1)),
                }
            }
        })
    };
    join_all(producers);
    done.store(true, Ordering::SeqCst);
    let consumed = consumer.join().unwrap();
    let seen = reader.join().unwrap();
    let mut last: Vec<Option<u64>> = vec![None; PRODS];
    for &(p, n) in &seen {
        assert!(
            last[p].is_none_or(|l| n > l),
            "cursor went from p{p}-{:?} to p{p}-{n}",
            last[p]
        );
        last[p] = Some(n);
    }
    eprintln!(
        "cursor read {} items, plain consumer {consumed}, of {}",
        seen.len(),
        PRODS as u64 * PER
    );
}

#[test]
fn cursor_skips_expired_and_discarded_items() {
    let s = Server::start_with(&["--max-items", "2", "--discard-old"]);
    let mut c = Conn::connect(&s);
    expect_end(&mut c, "q.c");
    c.send(&set_req("q", 0, -1, b"gone"));
    c.expect(b"STORED\r\n");
    c.set("q", b"1");
    expect_item(&mut c, "q.c/peek", b"1");
    expect_item(&mut c, "q.c", b"1");
    // The cursor's next item (2) is discarded by the limit before it reads it.
    set_all(&mut c, "q", &["2", "3", "4"]);
    expect_item(&mut c, "q.c", b"3");
    expect_item(&mut c, "q.c", b"4");
    expect_end(&mut c, "q.c");
    assert_eq!(c.drain_strings("q"), ["3", "4"]);
}

#[test]
fn flush_all_moves_cursors_to_the_tail_and_empties_failed_reads() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    set_all(&mut c, "q", &["1", "2"]);
    set_all(&mut c, "r", &["r1"]);
    expect_item(&mut c, "q.c/open", b"1");
    c.roundtrip(b"get q.c/abort\r\n", b"END\r\n");
    expect_item(&mut c, "r.k/peek", b"r1");
    c.roundtrip(b"flush_all\r\n", b"OK\r\n");
    expect_end(&mut c, "q.c");
    expect_end(&mut c, "r.k");
    let stats = queue_stats(&mut c);
    assert_cursor_stats(&stats, "q.c", [0, 0, 0]);
    c.set("q", b"3");
    c.set("r", b"r2");
    expect_item(&mut c, "q.c", b"3");
    expect_item(&mut c, "r.k", b"r2");
}

#[test]
fn failed_read_copy_survives_consumption_and_restart() {
    let mut s = Server::start();
    let mut c = Conn::connect(&s);
    set_all(&mut c, "q", &["x", "y"]);
    expect_item(&mut c, "q.c/open", b"x");
    c.roundtrip(b"get q.c/abort\r\n", b"END\r\n");
    assert_eq!(c.drain_strings("q"), ["x", "y"]);
    drop(c);
    s.restart();
    let mut c = Conn::connect(&s);
    assert_eq!(c.stat_u64("queue_q.c_failed_items"), 1);
    expect_item(&mut c, "q.c", b"x");
    expect_end(&mut c, "q.c");
}
