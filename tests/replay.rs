//! Replay: `get q.c/rewind` moves a cursor back to the oldest item still in the queue,
//! `get q.c/seek=<unix-ms>` to the oldest stored at or after a time; both durable once
//! answered, open and failed reads untouched. Items are stored on a `FakeClock`, so their
//! enqueue times are known to the millisecond.

mod common;

use common::{start_with_clock, value_reply, Conn, FakeClock, Server};

const BAD_OPTIONS: &[u8] = b"CLIENT_ERROR bad get options\r\n";

/// A server on a fake clock with items `a`, `b`, `c` in queue `q`, stored 100 ms apart; and
/// the time `a` was stored.
fn abc() -> (FakeClock, Server, Conn, u64) {
    let mut clock = FakeClock::new();
    let server = start_with_clock(&clock, &[]);
    let mut c = Conn::connect(&server);
    let start = clock.now();
    for item in [b"a", b"b", b"c"] {
        c.set("q", item);
        clock.advance(100);
    }
    (clock, server, c, start)
}

fn get(c: &mut Conn, key: &str, want: Option<&[u8]>) {
    let reply = match want {
        Some(data) => value_reply(key, 0, data),
        None => b"END\r\n".to_vec(),
    };
    c.roundtrip(format!("get {key}\r\n").as_bytes(), &reply);
}

#[test]
fn rewind_goes_back_to_the_oldest_item_still_stored() {
    let (_clock, _server, mut c, _) = abc();
    get(&mut c, "q.c", Some(b"a"));
    get(&mut c, "q.c", Some(b"b"));
    get(&mut c, "q.c/rewind", None);
    get(&mut c, "q.c", Some(b"a"));
    // Other keys of the same get are served as if alone, after the move.
    c.roundtrip(
        b"get q.c q.c/rewind q.d\r\n",
        b"VALUE q.c 0 1\r\nb\r\nVALUE q.d 0 1\r\na\r\nEND\r\n",
    );
    get(&mut c, "q.c", Some(b"a"));
    // What plain readers took is gone: the oldest still stored is b.
    get(&mut c, "q", Some(b"a"));
    get(&mut c, "q.c/rewind", None);
    c.expect_stats(&[("q.c_items", 2), ("q.c_age_ms", 200)]);
    get(&mut c, "q.c", Some(b"b"));
    // Open and failed reads stay as they are: the failed read is served first.
    get(&mut c, "q.c/open", Some(b"c"));
    get(&mut c, "q.c/abort", None);
    get(&mut c, "q.c/open", Some(b"c"));
    get(&mut c, "q.c/rewind", None);
    c.expect_stats(&[("q.c_open_transactions", 1), ("q.c_items", 2)]);
    get(&mut c, "q.c/close", None);
    get(&mut c, "q.c", Some(b"b"));
    get(&mut c, "q.c", Some(b"c"));
    get(&mut c, "q.c", None);
    // A rewind creates a cursor it does not find, at the head.
    get(&mut c, "q.new/rewind", None);
    get(&mut c, "q.new", Some(b"b"));
}

#[test]
fn seek_goes_to_the_first_item_stored_at_or_after_a_time() {
    let (_clock, _server, mut c, start) = abc();
    get(&mut c, &format!("q.c/seek={}", start + 100), None);
    c.expect_stats(&[("q.c_items", 2), ("q.c_age_ms", 200)]);
    get(&mut c, "q.c", Some(b"b"));
    get(&mut c, &format!("q.c/seek={}", start + 101), None);
    get(&mut c, "q.c", Some(b"c"));
    get(&mut c, "q.c/seek=0", None);
    get(&mut c, "q.c", Some(b"a"));
    // Past the newest: at the tail, where the next item will be.
    get(&mut c, &format!("q.c/seek={}", start + 201), None);
    c.expect_stats(&[("q.c_items", 0), ("q.c_age_ms", 0)]);
    get(&mut c, "q.c", None);
    c.set("q", b"d");
    get(&mut c, "q.c", Some(b"d"));
    // Backwards over items plain readers took: from the oldest still stored.
    get(&mut c, "q", Some(b"a"));
    get(&mut c, "q", Some(b"b"));
    get(&mut c, &format!("q.c/seek={start}"), None);
    get(&mut c, "q.c", Some(b"c"));
    // The meta form acts the same, with or without v.
    c.roundtrip(b"mg q.c/seek=0 v\r\n", b"EN\r\n");
    c.roundtrip(b"mg q.c/peek v\r\n", b"VA 1\r\nc\r\n");
}

#[test]
fn replay_is_only_for_cursors_alone_with_a_good_time() {
    let (_clock, _server, mut c, _) = abc();
    for key in [
        "q/rewind",
        "q/seek=1",
        "q.c/rewind/peek",
        "q.c/seek=1/t=5",
        "q.c/seek=",
        "q.c/seek=-1",
        "q.c/seek=9223372036854775808",
    ] {
        c.roundtrip(format!("get {key}\r\n").as_bytes(), BAD_OPTIONS);
    }
    // A bad key stops the command there; nothing moved.
    c.roundtrip(
        b"get q.c q.c/rewind/open q.c\r\n",
        &[&b"VALUE q.c 0 1\r\na\r\n"[..], BAD_OPTIONS].concat(),
    );
    get(&mut c, "q.c", Some(b"b"));
}

#[test]
fn a_replay_survives_kill_9_once_answered() {
    let (_clock, mut server, mut c, start) = abc();
    for item in [b"a", b"b", b"c"] {
        get(&mut c, "q.c", Some(item));
    }
    get(&mut c, "q.c", None);
    get(&mut c, "q.c/rewind", None);
    get(&mut c, "q.d", Some(b"a"));
    get(&mut c, &format!("q.d/seek={}", start + 200), None);
    drop(c);
    server.kill9();
    server.restart();
    let mut c = Conn::connect(&server);
    get(&mut c, "q.c", Some(b"a"));
    get(&mut c, "q.d", Some(b"c"));
    c.expect_stats(&[("q.c_items", 2), ("q.d_items", 0)]);
}

#[test]
fn enqueue_times_never_go_back_across_a_restart_whose_clock_did() {
    let mut clock = FakeClock::new();
    let mut server = start_with_clock(&clock, &[]);
    let mut c = Conn::connect(&server);
    let start = clock.now();
    c.set("q", b"a");
    clock.advance(100);
    c.set("q", b"b");
    drop(c);
    server.kill9();
    // The clock steps back a second across the restart: the items stored after it take the
    // newest stored item's time, so times still grow with ids and a seek still finds them.
    clock.set(start - 1000);
    server.restart();
    let mut c = Conn::connect(&server);
    for item in [b"c", b"d", b"e", b"f", b"g"] {
        c.set("q", item);
        clock.advance(10);
    }
    get(&mut c, &format!("q.c/seek={}", start + 50), None);
    c.expect_stats(&[("q.c_items", 6)]);
    for item in [b"b", b"c", b"d", b"e", b"f", b"g"] {
        get(&mut c, "q.c", Some(item));
    }
    get(&mut c, "q.c", None);
    // Once the clock is past the newest time again, items take the clock's time.
    clock.set(start + 200);
    c.set("q", b"h");
    get(&mut c, &format!("q.c/seek={}", start + 101), None);
    get(&mut c, "q.c", Some(b"h"));
}
