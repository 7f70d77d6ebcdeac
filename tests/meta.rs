//! Meta commands against the real server, in raw bytes (SPEC.md "Meta commands"): `ms`, `mg`,
//! `md` and `mn` on tern's own keys (queues, options, cursors, fanout), quiet mode, returned
//! flags, every error reply, and that an `mg` without `v` never takes an item.

mod common;

use common::*;

const MODE: &[u8] = MODE_NOT_SUPPORTED;

/// What `get <key>/peek` shows of the queue: every item still there, read without taking.
fn peek(c: &mut Conn, queue: &str) -> Option<Vec<u8>> {
    c.get_data(&format!("{queue}/peek"))
}

#[test]
fn ms_stores_and_mg_with_v_takes_in_fifo_order() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    c.roundtrip(b"ms q 5\r\nhello\r\n", b"HD\r\n");
    c.roundtrip(
        b"ms q 5 F7 T0 O123 k c I MS P L\r\nworld\r\n",
        b"HD O123 kq c0\r\n",
    );
    c.roundtrip(b"mg q v\r\n", b"VA 5\r\nhello\r\n");
    c.roundtrip(
        b"mg q k v s f c t O9\r\n",
        b"VA 5 kq s5 f7 c0 t-1 O9\r\nworld\r\n",
    );
    c.roundtrip(b"mg q v k O1\r\n", b"EN kq O1\r\n");
    // The text protocol sees what ms stored, flags included.
    c.roundtrip(b"ms q 1 F42\r\nx\r\n", b"HD\r\n");
    c.roundtrip(b"get q\r\n", &value_reply("q", 42, b"x"));
    c.set_flags("q", 5, b"text");
    c.roundtrip(b"MG q v f\r\n", b"VA 4 f5\r\ntext\r\n");
}

#[test]
fn ms_fanout_is_one_set_into_every_queue() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    c.roundtrip(b"ms a+b+a 3 k\r\nabc\r\n", b"HD ka+b+a\r\n");
    assert_eq!(c.stat_u64("cmd_set"), 1);
    c.roundtrip(b"mg a v\r\n", b"VA 3\r\nabc\r\n");
    c.roundtrip(b"mg b v\r\n", b"VA 3\r\nabc\r\n");
    c.roundtrip(b"mg a v\r\nmg b v\r\n", b"EN\r\nEN\r\n");
}

#[test]
fn mg_without_v_never_takes_an_item() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    c.set_flags("q", 3, b"one");
    c.set("q", b"two");
    // take, open, wait: each peeks instead, and says what it saw
    c.roundtrip(b"mg q k s f\r\n", b"HD kq s3 f3\r\n");
    c.roundtrip(b"mg q/open s\r\n", b"HD s3\r\n");
    c.roundtrip(b"mg q/t=10 f\r\n", b"HD f3\r\n");
    c.roundtrip(b"mg q\r\n", b"HD\r\n");
    // nothing was opened: a plain get is allowed, and takes the head
    c.roundtrip(b"get q\r\n", &value_reply("q", 3, b"one"));
    // /close/open without v closes the open read, then peeks at the next
    c.roundtrip(b"mg q/open v\r\n", b"VA 3\r\ntwo\r\n");
    c.set("q", b"three");
    c.roundtrip(b"mg q/close/open s\r\n", b"HD s5\r\n");
    assert_eq!(peek(&mut c, "q").as_deref(), Some(&b"three"[..]));
    // cursors: without v the cursor does not move
    c.roundtrip(b"mg q.c k\r\n", b"HD kq.c\r\n");
    c.roundtrip(b"mg q.c/open\r\n", b"HD\r\n");
    c.roundtrip(b"mg q.c v\r\n", b"VA 5\r\nthree\r\n");
    c.roundtrip(b"mg q.c\r\n", b"EN\r\n");
    c.roundtrip(b"get q\r\n", &value_reply("q", 0, b"three"));
}

#[test]
fn mg_without_v_that_waits_peeks_at_what_arrives() {
    let s = Server::start();
    let mut waiter = Conn::connect(&s);
    let mut producer = Conn::connect(&s);
    waiter.send(b"mg q/t=100000 k v\r\n");
    producer.wait_stat("queue_q_waiters", "1");
    producer.roundtrip(b"ms q 1\r\nx\r\n", b"HD\r\n");
    waiter.expect(b"VA 1 kq/t=100000\r\nx\r\n");
    // Without v it waits the same, and leaves what arrives there.
    waiter.send(b"mg q/t=100000/open s\r\n");
    producer.wait_stat("queue_q_waiters", "1");
    producer.roundtrip(b"ms q 1\r\ny\r\n", b"HD\r\n");
    waiter.expect(b"HD s1\r\n");
    assert_eq!(peek(&mut producer, "q").as_deref(), Some(&b"y"[..]));
    assert_eq!(producer.stat_u64("queue_q_open_transactions"), 0);
}

#[test]
fn mg_reliable_reads_act_as_in_get() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    c.set("q", b"a");
    c.set("q", b"b");
    c.roundtrip(b"mg q/open v k\r\n", b"VA 1 kq/open\r\na\r\n");
    c.roundtrip(b"mg q/open v\r\n", CLOSE_FIRST);
    c.roundtrip(b"mg q v\r\n", CLOSE_FIRST);
    c.roundtrip(b"mg q/abort v O1\r\n", b"EN O1\r\n");
    c.roundtrip(b"mg q/open v\r\n", b"VA 1\r\na\r\n");
    c.roundtrip(b"mg q/close v\r\n", b"EN\r\n");
    c.roundtrip(b"mg q/close/open v\r\n", b"VA 1\r\nb\r\n");
    c.roundtrip(b"mg q/peek v\r\n", b"EN\r\n");
    // A disconnect gives the open read back.
    drop(c);
    let mut d = Conn::connect(&s);
    d.wait_stat("queue_q_open_transactions", "0");
    d.roundtrip(b"mg q/peek v\r\n", b"VA 1\r\nb\r\n");
    // A cursor's open read, aborted, goes to its failed reads and comes first.
    d.roundtrip(b"mg q.c/open v\r\n", b"VA 1\r\nb\r\n");
    d.roundtrip(b"mg q.c/abort\r\n", b"EN\r\n");
    d.roundtrip(b"mg q.c v\r\n", b"VA 1\r\nb\r\n");
}

#[test]
fn quiet_mode_hides_only_the_expected_replies() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    // A batch as Dalli sends it: quiet commands, then mn; only what matters comes back.
    c.roundtrip(
        b"ms a 1 q\r\n1\r\nms b 1 q O7\r\n2\r\nmg a v q k\r\nmg none v q k\r\nmg b q s\r\nmn\r\n",
        b"VA 1 ka\r\n1\r\nHD s1\r\nMN\r\n",
    );
    c.roundtrip(
        b"md b q\r\nmd b q O2\r\nmd none.c q k\r\nmn\r\n",
        b"NF O2\r\nNF knone.c\r\nMN\r\n",
    );
    // Errors are always sent.
    c.roundtrip(
        b"ms a 1 q ME\r\nx\r\nmg a q x\r\nmn\r\n",
        &cat(&[MODE, INVALID_FLAG, b"MN\r\n"]),
    );
    c.roundtrip(b"mn\r\nmn\r\n", b"MN\r\nMN\r\n");
}

#[test]
fn md_deletes_queues_and_cursors() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    c.set("q", b"x");
    c.roundtrip(b"mg q.c/peek v\r\n", b"VA 1\r\nx\r\n");
    c.roundtrip(b"md q.c O1 k\r\n", b"HD O1 kq.c\r\n");
    c.roundtrip(b"md q.c\r\n", b"NF\r\n");
    c.roundtrip(b"md q\r\n", b"HD\r\n");
    c.roundtrip(b"md q k\r\n", b"NF kq\r\n");
    c.roundtrip(b"get q\r\n", b"END\r\n");
}

#[test]
fn base64_keys_are_decoded_and_returned_as_sent() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    // "cQ==" is "q"; "cS5j" is "q.c"
    c.roundtrip(b"ms cQ== 2 b k\r\nhi\r\n", b"HD kcQ== b\r\n");
    c.roundtrip(b"mg cS5j k b v O1\r\n", b"VA 2 kcS5j b O1\r\nhi\r\n");
    c.roundtrip(b"mg cQ== v b\r\n", b"VA 2\r\nhi\r\n");
    c.roundtrip(b"md cQ== b k\r\n", b"HD kcQ== b\r\n");
    c.roundtrip(b"mg q b v\r\n", BAD_FORMAT);
    c.roundtrip(b"mg cSE= b v\r\n", BAD_NAME);
}

#[test]
fn ttl_flag_tells_seconds_left() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    c.roundtrip(b"ms q 1 T100\r\nx\r\nms q 1\r\ny\r\n", b"HD\r\nHD\r\n");
    c.send(b"mg q t\r\n");
    let line = c.read_line_str();
    let left: i64 = line
        .strip_prefix("HD t")
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("unexpected reply {line:?}"));
    assert!((1..=100).contains(&left), "{line:?}");
    c.roundtrip(b"get q\r\n", &value_reply("q", 0, b"x"));
    c.roundtrip(b"mg q t v\r\n", b"VA 1 t-1\r\ny\r\n");
    // A negative T is already expired: never returned.
    c.roundtrip(b"ms q 1 T-1\r\nz\r\n", b"HD\r\n");
    c.roundtrip(b"mg q v\r\n", b"EN\r\n");
}

#[test]
fn ms_errors_keep_the_stream_in_sync_and_store_nothing() {
    let s = Server::start_with(&["--max-item-size", "8", "--max-items", "1"]);
    let mut c = Conn::connect(&s);
    // Line errors with a valid <datalen>: answered, the block dropped unread.
    for (req, reply) in [
        (&b"ms q 7 ME\r\nversion\r\n"[..], MODE),
        (b"ms q 7 MR k q\r\nversion\r\n", MODE),
        (b"ms q! 7\r\nversion\r\n", BAD_NAME),
        (b"ms q.c 7\r\nversion\r\n", BAD_NAME),
        (b"ms q 7 x\r\nversion\r\n", INVALID_FLAG),
        (b"ms q 7 v\r\nversion\r\n", INVALID_FLAG),
        (b"ms q 7 Fx\r\nversion\r\n", BAD_FORMAT),
        (b"ms q 7 T1.5\r\nversion\r\n", BAD_FORMAT),
        (b"ms q 7 MZ\r\nversion\r\n", BAD_FORMAT),
        (
            b"ms q 7 O123456789012345678901234567890123\r\nversion\r\n",
            BAD_FORMAT,
        ),
    ] {
        c.roundtrip(req, reply);
    }
    // A bad <datalen>: no block is expected, so the would-be block runs as a command.
    c.roundtrip(
        b"ms q x\r\nversion\r\n",
        &cat(&[BAD_FORMAT, &version_reply()]),
    );
    // Too large: answered at once (before the block is sent), then the block is skipped.
    c.roundtrip(b"ms q 9 q\r\n", TOO_LARGE);
    c.roundtrip(b"123456789\r\nmn\r\n", b"MN\r\n");
    // A block not followed by \r\n: exactly <datalen> + 2 bytes consumed.
    c.roundtrip(b"ms q 2 q\r\nhiXYmn\r\n", &cat(&[BAD_CHUNK, b"MN\r\n"]));
    c.roundtrip(b"get q\r\n", b"END\r\n");
    // A full queue.
    c.roundtrip(b"ms q 1\r\na\r\n", b"HD\r\n");
    c.roundtrip(b"ms q 1 q\r\nb\r\n", b"SERVER_ERROR queue full\r\n");
    c.roundtrip(b"get q q\r\n", &value_reply("q", 0, b"a"));
    c.roundtrip(b"get q\r\n", b"END\r\n");
}

#[test]
fn bad_meta_lines_get_their_error_and_the_server_goes_on() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    c.set("q", b"kept");
    for (req, reply) in [
        (&b"mg\r\n"[..], BAD_FORMAT),
        (b"md\r\n", BAD_FORMAT),
        (b"ms q\r\n", BAD_FORMAT),
        (b"mn now\r\n", BAD_FORMAT),
        (b"me q\r\n", b"ERROR\r\n"),
        (b"ma q\r\n", b"ERROR\r\n"),
        (b"mg q x\r\n", INVALID_FLAG),
        (b"mg q T30\r\n", INVALID_FLAG),
        (b"md q v\r\n", INVALID_FLAG),
        (b"mg q v1\r\n", BAD_FORMAT),
        (b"mg q kx\r\n", BAD_FORMAT),
        (b"mg q O\r\n", BAD_FORMAT),
        (b"mg q v v\r\n", BAD_FORMAT),
        (b"mg q/bogus v\r\n", BAD_OPTIONS),
        (b"mg q/peek/open v\r\n", BAD_OPTIONS),
        (b"md q/open\r\n", BAD_NAME),
    ] {
        c.roundtrip(req, reply);
    }
    c.roundtrip(b"get q\r\n", &value_reply("q", 0, b"kept"));
}

#[test]
fn mg_counts_as_get_would_and_without_v_as_a_peek() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    c.set("q", b"x");
    let counts = |c: &mut Conn| {
        ["cmd_get", "cmd_peek", "get_hits", "get_misses"].map(|name| c.stat_u64(name))
    };
    c.roundtrip(b"mg q\r\nmg q/open\r\nmg q/peek\r\n", b"HD\r\nHD\r\nHD\r\n");
    assert_eq!(counts(&mut c), [0, 3, 0, 0]);
    c.roundtrip(b"mg q/close\r\nmg q/abort\r\n", b"EN\r\nEN\r\n");
    assert_eq!(counts(&mut c), [2, 3, 0, 2]);
    c.roundtrip(b"mg q v\r\nmg q v\r\n", b"VA 1\r\nx\r\nEN\r\n");
    assert_eq!(counts(&mut c), [4, 3, 1, 3]);
    c.roundtrip(b"ms q+r 1\r\ny\r\n", b"HD\r\n");
    assert_eq!(c.stat_u64("cmd_set"), 2);
}
