//! Exact-bytes tests of the plain-queue part of the wire contract (SPEC.md).
//!
//! Each test starts its own server. Replies are asserted byte for byte; after
//! every CLIENT_ERROR the same connection is used again to show it still works.

mod common;

use common::*;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Assert the connection still answers commands, in sync.
#[track_caller]
fn assert_alive(c: &mut Conn) {
    c.roundtrip(b"version\r\n", &version_reply());
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

// ---------------------------------------------------------------- set / get

#[test]
fn set_then_get_exact_bytes() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    c.roundtrip(b"set work 0 0 5\r\nhello\r\n", b"STORED\r\n");
    c.roundtrip(b"get work\r\n", b"VALUE work 0 5\r\nhello\r\nEND\r\n");
    c.roundtrip(b"get work\r\n", b"END\r\n");
}

#[test]
fn get_on_unknown_queue_is_end() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    c.roundtrip(b"get nothing_here\r\n", b"END\r\n");
    c.roundtrip(b"gets nothing_here\r\n", b"END\r\n");
}

#[test]
fn items_come_out_in_fifo_order() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    for i in 0..20 {
        c.set("fifo", format!("item-{i}").as_bytes());
    }
    for i in 0..20 {
        let want = format!("item-{i}");
        c.roundtrip(b"get fifo\r\n", &value_reply("fifo", 0, want.as_bytes()));
    }
    c.roundtrip(b"get fifo\r\n", b"END\r\n");
}

#[test]
fn gets_is_the_same_as_get() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    c.roundtrip(b"set q 7 0 3\r\nabc\r\n", b"STORED\r\n");
    c.roundtrip(b"gets q\r\n", b"VALUE q 7 3\r\nabc\r\nEND\r\n");
    c.roundtrip(b"gets q\r\n", b"END\r\n");
}

#[test]
fn queues_are_independent_and_names_case_sensitive() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    c.roundtrip(b"set Work 0 0 1\r\nA\r\n", b"STORED\r\n");
    c.roundtrip(b"set work 0 0 1\r\na\r\n", b"STORED\r\n");
    c.roundtrip(b"get work\r\n", b"VALUE work 0 1\r\na\r\nEND\r\n");
    c.roundtrip(b"get work\r\n", b"END\r\n");
    c.roundtrip(b"get Work\r\n", b"VALUE Work 0 1\r\nA\r\nEND\r\n");
}

#[test]
fn flags_round_trip_full_u32_range() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    for flags in [0u32, 1, 42, 65535, 4294967295] {
        c.roundtrip(&set_req("f", flags, 0, b"x"), b"STORED\r\n");
        c.roundtrip(b"get f\r\n", &value_reply("f", flags, b"x"));
    }
}

#[test]
fn zero_length_item() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    c.roundtrip(b"set empty 3 0 0\r\n\r\n", b"STORED\r\n");
    c.roundtrip(b"get empty\r\n", b"VALUE empty 3 0\r\n\r\nEND\r\n");
    c.roundtrip(b"get empty\r\n", b"END\r\n");
}

#[test]
fn set_noreply_sends_nothing() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    c.send(b"set q 0 0 2 noreply\r\nhi\r\n");
    c.send(b"set q 5 0 3 noreply\r\nyou\r\n");
    // The next reply on the wire must be the one for `get`.
    c.roundtrip(b"get q\r\n", b"VALUE q 0 2\r\nhi\r\nEND\r\n");
    c.roundtrip(b"get q\r\n", b"VALUE q 5 3\r\nyou\r\nEND\r\n");
}

#[test]
fn extra_spaces_between_tokens() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    c.roundtrip(b"set   q  0   0    3\r\nabc\r\n", b"STORED\r\n");
    c.roundtrip(b"get    q\r\n", b"VALUE q 0 3\r\nabc\r\nEND\r\n");
}

#[test]
fn payload_with_crlf_and_every_byte_value() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    let mut data: Vec<u8> = (0..=255u8).collect();
    data.extend_from_slice(b"\r\nEND\r\n\r\nVALUE x 0 1\r\n\n\r");
    data.extend((0..=255u8).rev());
    c.roundtrip(&set_req("bin", 9, 0, &data), b"STORED\r\n");
    c.roundtrip(b"get bin\r\n", &value_reply("bin", 9, &data));
    c.roundtrip(b"get bin\r\n", b"END\r\n");
}

#[test]
fn one_mib_item_round_trip() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    let data = payload(1 << 20, 7);
    c.roundtrip(&set_req("big", 1, 0, &data), b"STORED\r\n");
    c.roundtrip(b"get big\r\n", &value_reply("big", 1, &data));
    c.roundtrip(b"get big\r\n", b"END\r\n");
}

#[test]
fn default_max_item_size_is_one_mib() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    let data = payload((1 << 20) + 1, 3);
    c.roundtrip(&set_req("big", 0, 0, &data), TOO_LARGE);
    c.roundtrip(b"get big\r\n", b"END\r\n");
}

// ---------------------------------------------------------------- set errors

#[test]
fn set_malformed_headers_are_bad_command_line_format() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    let cases: &[&[u8]] = &[
        b"set\r\n",
        b"set q\r\n",
        b"set q 0\r\n",
        b"set q 0 0\r\n",
        b"set q abc 0 1\r\n",
        b"set q 0 abc 1\r\n",
        b"set q 0 0 abc\r\n",
        b"set q -1 0 1\r\n",
        b"set q 4294967296 0 1\r\n",
        b"set q 0 9223372036854775808 1\r\n",
        b"set q 0 -9223372036854775809 1\r\n",
        b"set q 0 0 -1\r\n",
        b"set q 0 0 4294967296\r\n",
        b"set q 0 0 1 foo\r\n",
        b"set q 0 0 1 noreplyx\r\n",
        b"set q 1.5 0 1\r\n",
        b"set q 0 0 1x\r\n",
    ];
    for case in cases {
        c.send(case);
        let line = c.read_line();
        assert_eq!(line, BAD_FORMAT, "request {} got {}", esc(case), esc(&line));
        assert_alive(&mut c);
    }
    // Nothing was stored by any of them.
    c.roundtrip(b"get q\r\n", b"END\r\n");
}

#[test]
fn set_with_seven_tokens_is_bad_command_line_format() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    c.roundtrip(b"set q 0 0 1 noreply extra\r\n", BAD_FORMAT);
    assert_alive(&mut c);
}

#[test]
fn bad_format_set_expects_no_data_block() {
    // "no data block is expected, so what follows is read as commands":
    // the would-be block `version` is executed as a command.
    let s = Server::start();
    let mut c = Conn::connect(&s);
    let mut want = BAD_FORMAT.to_vec();
    want.extend_from_slice(&version_reply());
    c.roundtrip(b"set q 4294967296 0 7\r\nversion\r\n", &want);
    // And a block that is not a command gives ERROR.
    let mut want = BAD_FORMAT.to_vec();
    want.extend_from_slice(b"ERROR\r\n");
    c.roundtrip(b"set q abc 0 5\r\nhello\r\n", &want);
    c.roundtrip(b"get q\r\n", b"END\r\n");
}

#[test]
fn set_bad_format_with_noreply_is_still_answered() {
    // A line that does not parse is always answered, noreply or not.
    let s = Server::start();
    let mut c = Conn::connect(&s);
    c.roundtrip(b"set q abc 0 1 noreply\r\n", BAD_FORMAT);
    assert_alive(&mut c);
}

#[test]
fn set_bad_queue_names() {
    let s = Server::start();
    let long = "x".repeat(201);
    let cases: Vec<Vec<u8>> = vec![
        b"set q$ 0 0 1\r\n".to_vec(),
        b"set a*b 0 0 1\r\n".to_vec(),
        b"set q\xff 0 0 1\r\n".to_vec(),
        b"set q\x01 0 0 1\r\n".to_vec(),
        b"set q/open 0 0 1\r\n".to_vec(),
        format!("set {long} 0 0 1\r\n").into_bytes(),
    ];
    for case in &cases {
        // Only the header is sent: whether the server then waits for a block to
        // discard is checked by `set_bad_name_discards_the_data_block`; here each
        // case gets a fresh connection.
        let mut c = Conn::connect(&s);
        c.send(case);
        let line = c.read_line();
        assert_eq!(line, BAD_NAME, "request {} got {}", esc(case), esc(&line));
    }
}

#[test]
fn set_to_cursor_name_is_bad_queue_name() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    c.send(b"set q.c 0 0 5\r\n");
    c.expect(BAD_NAME);
    // The rejected data block is read and discarded: no reply for it.
    c.send(b"hello\r\n");
    assert_alive(&mut c);
    c.roundtrip(b"get q\r\n", b"END\r\n");
}

#[test]
fn set_bad_name_discards_the_data_block() {
    // SPEC: "a rejected data block is read and discarded so the stream stays in sync".
    let s = Server::start();
    let mut c = Conn::connect(&s);
    c.roundtrip(b"set bad$name 0 0 7\r\nversion\r\n", BAD_NAME);
    // The block `version\r\n` was discarded, not executed: the next reply is for `get`.
    c.roundtrip(b"get bad\r\n", b"END\r\n");
    assert_alive(&mut c);
}

#[test]
fn set_bad_name_with_noreply_is_answered() {
    // A bad name is a line that does not parse: always answered.
    let s = Server::start();
    let mut c = Conn::connect(&s);
    c.roundtrip(b"set q$ 0 0 1 noreply\r\nx\r\n", BAD_NAME);
    assert_alive(&mut c);
}

#[test]
fn set_header_checked_names_then_numbers_then_size() {
    let s = Server::start_with(&["--max-item-size", "100"]);
    let mut c = Conn::connect(&s);
    // bad name + bad number -> name error
    c.send(b"set q$ abc 0 1\r\n");
    c.expect(BAD_NAME);
    let mut c = Conn::connect(&s);
    // bad number + too large -> format error (no block expected)
    c.roundtrip(b"set q abc 0 1000\r\n", BAD_FORMAT);
    assert_alive(&mut c);
    // bad name + too large -> name error
    let mut c = Conn::connect(&s);
    c.send(b"set q$ 0 0 1000\r\n");
    c.expect(BAD_NAME);
}

#[test]
fn bad_data_chunk_consumes_bytes_plus_two() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    // 5 bytes announced, then "helloXY": exactly 7 bytes consumed, then `get q`.
    c.roundtrip(
        b"set q 0 0 5\r\nhelloXYget q\r\n",
        &cat(&[BAD_CHUNK, b"END\r\n"]),
    );
    // Data shorter than announced, terminated early: the block is "hi\r\n" (4
    // bytes) and "ve" stands where the \r\n should be; "version" comes next.
    c.roundtrip(
        b"set q 0 0 4\r\nhi\r\nveversion\r\n",
        &cat(&[BAD_CHUNK, &version_reply()]),
    );
    // Nothing stored, connection in sync.
    c.roundtrip(b"get q\r\n", b"END\r\n");
    c.roundtrip(b"set q 0 0 2\r\nok\r\n", b"STORED\r\n");
    c.roundtrip(b"get q\r\n", b"VALUE q 0 2\r\nok\r\nEND\r\n");
}

#[test]
fn bad_data_chunk_with_noreply_sends_nothing() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    c.send(b"set q 0 0 5 noreply\r\nhelloXY");
    assert_alive(&mut c);
    c.roundtrip(b"get q\r\n", b"END\r\n");
}

#[test]
fn oversized_item_reply_comes_at_once_and_block_is_discarded() {
    let s = Server::start_with(&["--max-item-size", "100"]);
    let mut c = Conn::connect(&s);
    // exactly the limit is fine
    let ok = payload(100, 1);
    c.roundtrip(&set_req("q", 0, 0, &ok), b"STORED\r\n");
    // one more: the reply comes before the block is sent
    c.send(b"set q 0 0 101\r\n");
    c.expect(TOO_LARGE);
    // the block is then discarded as it arrives, in pieces
    let block = payload(101, 2);
    c.send(&block[..50]);
    thread::sleep(Duration::from_millis(50));
    c.send(&block[50..]);
    c.send(b"\r\n");
    // the connection keeps working and nothing was stored
    c.roundtrip(b"get q\r\n", &value_reply("q", 0, &ok));
    c.roundtrip(b"get q\r\n", b"END\r\n");
    assert_alive(&mut c);
}

#[test]
fn oversized_block_containing_commands_is_discarded() {
    let s = Server::start_with(&["--max-item-size", "10"]);
    let mut c = Conn::connect(&s);
    // The 20-byte block looks like commands; it must be discarded, not executed.
    let block = b"version\r\nversion\r\n\r\n";
    assert_eq!(block.len(), 20);
    let mut req = b"set q 0 0 20\r\n".to_vec();
    req.extend_from_slice(block);
    req.extend_from_slice(b"\r\n");
    c.roundtrip(&req, TOO_LARGE);
    c.roundtrip(b"get q\r\n", b"END\r\n");
}

#[test]
fn oversized_item_with_noreply_has_no_reply() {
    let s = Server::start_with(&["--max-item-size", "100"]);
    let mut c = Conn::connect(&s);
    let mut req = b"set q 0 0 1000 noreply\r\n".to_vec();
    req.extend_from_slice(&payload(1000, 5));
    req.extend_from_slice(b"\r\n");
    c.send(&req);
    assert_alive(&mut c);
    c.roundtrip(b"get q\r\n", b"END\r\n");
}

#[test]
fn oversized_huge_length_is_not_buffered() {
    // A valid u32 length far over the limit: answered at once, the connection
    // keeps working after the announced bytes have gone by.
    let s = Server::start_with(&["--max-item-size", "1024"]);
    let mut c = Conn::connect(&s);
    c.send(b"set q 0 0 4000000\r\n");
    c.expect(TOO_LARGE);
    let chunk = vec![b'z'; 1 << 20];
    for _ in 0..3 {
        c.send(&chunk);
    }
    c.send(&vec![b'z'; 4000000 - 3 * (1 << 20)]);
    c.send(b"\r\n");
    assert_alive(&mut c);
}

// ---------------------------------------------------------------- exptime

#[test]
fn negative_exptime_is_never_returned_and_counted_expired() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    c.roundtrip(b"set q 0 -1 4\r\ndead\r\n", b"STORED\r\n");
    c.roundtrip(b"set q 0 0 5\r\nalive\r\n", b"STORED\r\n");
    c.roundtrip(b"get q/peek\r\n", b"VALUE q/peek 0 5\r\nalive\r\nEND\r\n");
    c.roundtrip(b"get q\r\n", b"VALUE q 0 5\r\nalive\r\nEND\r\n");
    c.roundtrip(b"get q\r\n", b"END\r\n");
    assert_eq!(c.stat("queue_q_expired_items").as_deref(), Some("1"));
    assert_eq!(c.stat("queue_q_items").as_deref(), Some("0"));
}

#[test]
fn expired_only_item_gives_end() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    c.roundtrip(b"set q 0 -9223372036854775808 1\r\nx\r\n", b"STORED\r\n");
    c.roundtrip(b"get q\r\n", b"END\r\n");
    c.roundtrip(b"get q/open\r\n", b"END\r\n");
    assert_eq!(c.stat("queue_q_expired_items").as_deref(), Some("1"));
}

#[test]
fn relative_exptime_expires() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    c.roundtrip(b"set q 0 1 5\r\nshort\r\n", b"STORED\r\n");
    c.roundtrip(b"set q 0 3600 4\r\nlong\r\n", b"STORED\r\n");
    c.roundtrip(b"set q 0 2592000 5\r\nmonth\r\n", b"STORED\r\n");
    thread::sleep(Duration::from_millis(2100));
    c.roundtrip(b"get q\r\n", b"VALUE q 0 4\r\nlong\r\nEND\r\n");
    c.roundtrip(b"get q\r\n", b"VALUE q 0 5\r\nmonth\r\nEND\r\n");
    c.roundtrip(b"get q\r\n", b"END\r\n");
    assert_eq!(c.stat("queue_q_expired_items").as_deref(), Some("1"));
}

#[test]
fn absolute_exptime() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    let past = now_unix() - 100;
    let future = now_unix() + 3600;
    c.roundtrip(&set_req("q", 0, past, b"past"), b"STORED\r\n");
    c.roundtrip(&set_req("q", 0, future, b"future"), b"STORED\r\n");
    c.roundtrip(b"get q\r\n", b"VALUE q 0 6\r\nfuture\r\nEND\r\n");
    c.roundtrip(b"get q\r\n", b"END\r\n");
    assert_eq!(c.stat("queue_q_expired_items").as_deref(), Some("1"));
}

// ---------------------------------------------------------------- get options

#[test]
fn open_close_reliable_read() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    let mut other = Conn::connect(&s);
    c.set("work", b"hello");
    c.set("work", b"world");
    c.roundtrip(
        b"get work/open\r\n",
        b"VALUE work/open 0 5\r\nhello\r\nEND\r\n",
    );
    // The open item is held: another reader gets the next one.
    other.roundtrip(
        b"get work/peek\r\n",
        b"VALUE work/peek 0 5\r\nworld\r\nEND\r\n",
    );
    assert_eq!(c.stat("queue_work_open_transactions").as_deref(), Some("1"));
    assert_eq!(c.stat("queue_work_items").as_deref(), Some("1"));
    c.roundtrip(b"get work/close\r\n", b"END\r\n");
    assert_eq!(c.stat("queue_work_open_transactions").as_deref(), Some("0"));
    other.roundtrip(b"get work\r\n", b"VALUE work 0 5\r\nworld\r\nEND\r\n");
    other.roundtrip(b"get work\r\n", b"END\r\n");
    // hello was confirmed: it is gone for good even after disconnect.
    drop(c);
    other.wait_stat("curr_connections", "1");
    other.roundtrip(b"get work\r\n", b"END\r\n");
}

#[test]
fn close_with_nothing_open_is_a_noop() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    c.set("q", b"a");
    c.roundtrip(b"get q/close\r\n", b"END\r\n");
    c.roundtrip(b"get q/abort\r\n", b"END\r\n");
    c.roundtrip(b"get q\r\n", b"VALUE q 0 1\r\na\r\nEND\r\n");
    c.roundtrip(b"get empty/close\r\n", b"END\r\n");
}

#[test]
fn abort_puts_item_back_at_the_head() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    c.set("q", b"one");
    c.set("q", b"two");
    c.roundtrip(b"get q/open\r\n", b"VALUE q/open 0 3\r\none\r\nEND\r\n");
    c.roundtrip(b"get q/abort\r\n", b"END\r\n");
    assert_eq!(c.stat("queue_q_open_transactions").as_deref(), Some("0"));
    assert_eq!(c.stat("queue_q_items").as_deref(), Some("2"));
    let mut other = Conn::connect(&s);
    other.roundtrip(b"get q\r\n", b"VALUE q 0 3\r\none\r\nEND\r\n");
    other.roundtrip(b"get q\r\n", b"VALUE q 0 3\r\ntwo\r\nEND\r\n");
}

#[test]
fn abort_restores_original_order() {
    let s = Server::start();
    let mut a = Conn::connect(&s);
    let mut b = Conn::connect(&s);
    for x in ["1", "2", "3", "4"] {
        a.set("q", x.as_bytes());
    }
    a.roundtrip(b"get q/open\r\n", b"VALUE q/open 0 1\r\n1\r\nEND\r\n");
    b.roundtrip(b"get q/open\r\n", b"VALUE q/open 0 1\r\n2\r\nEND\r\n");
    // Abort the later one first: still served oldest id first.
    b.roundtrip(b"get q/abort\r\n", b"END\r\n");
    a.roundtrip(b"get q/abort\r\n", b"END\r\n");
    for x in ["1", "2", "3", "4"] {
        b.roundtrip(b"get q\r\n", &value_reply("q", 0, x.as_bytes()));
    }
    b.roundtrip(b"get q\r\n", b"END\r\n");
}

#[test]
fn close_open_in_one_round_trip_either_order() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    for x in ["a", "b", "c", "d"] {
        c.set("q", x.as_bytes());
    }
    // Nothing open yet: it just opens.
    c.roundtrip(
        b"get q/close/open\r\n",
        b"VALUE q/close/open 0 1\r\na\r\nEND\r\n",
    );
    c.roundtrip(
        b"get q/close/open\r\n",
        b"VALUE q/close/open 0 1\r\nb\r\nEND\r\n",
    );
    c.roundtrip(
        b"get q/open/close\r\n",
        b"VALUE q/open/close 0 1\r\nc\r\nEND\r\n",
    );
    c.roundtrip(
        b"get q/open/close\r\n",
        b"VALUE q/open/close 0 1\r\nd\r\nEND\r\n",
    );
    // d is closed, nothing left to open.
    c.roundtrip(b"get q/close/open\r\n", b"END\r\n");
    assert_eq!(c.stat("queue_q_open_transactions").as_deref(), Some("0"));
    drop(c);
    let mut other = Conn::connect(&s);
    other.wait_stat("curr_connections", "1");
    other.roundtrip(b"get q\r\n", b"END\r\n");
}

#[test]
fn peek_does_not_remove() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    c.roundtrip(b"get q/peek\r\n", b"END\r\n");
    c.roundtrip(b"set q 3 0 2\r\nhi\r\n", b"STORED\r\n");
    c.roundtrip(b"get q/peek\r\n", b"VALUE q/peek 3 2\r\nhi\r\nEND\r\n");
    c.roundtrip(b"get q/peek\r\n", b"VALUE q/peek 3 2\r\nhi\r\nEND\r\n");
    assert_eq!(c.stat("queue_q_items").as_deref(), Some("1"));
    c.roundtrip(b"get q\r\n", b"VALUE q 3 2\r\nhi\r\nEND\r\n");
    c.roundtrip(b"get q/peek\r\n", b"END\r\n");
}

#[test]
fn forbidden_option_combinations() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    c.set("q", b"keep");
    let cases = [
        "q/peek/open",
        "q/open/peek",
        "q/peek/close",
        "q/close/peek",
        "q/peek/abort",
        "q/abort/peek",
        "q/abort/open",
        "q/open/abort",
        "q/abort/close",
        "q/close/abort",
        "q/bogus",
        "q/open/open",
        "q/peek/peek",
        "q/close/close",
        "q/abort/abort",
        "q/t=1/t=2",
        "q/t=-1",
        "q/t=abc",
        "q/t=",
        "q/t=1.5",
        "q/t",
        "q/t=10/peek/open",
    ];
    for key in cases {
        let req = format!("get {key}\r\n");
        c.send(req.as_bytes());
        let line = c.read_line();
        assert_eq!(line, BAD_OPTIONS, "request {req:?} got {}", esc(&line));
        assert_alive(&mut c);
    }
    // Nothing was consumed or opened.
    assert_eq!(c.stat("queue_q_open_transactions").as_deref(), Some("0"));
    c.roundtrip(b"get q\r\n", b"VALUE q 0 4\r\nkeep\r\nEND\r\n");
}

#[test]
fn allowed_option_combinations_echo_key() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    for x in ["a", "b", "c"] {
        c.set("q", x.as_bytes());
    }
    c.roundtrip(
        b"get q/t=10/peek\r\n",
        b"VALUE q/t=10/peek 0 1\r\na\r\nEND\r\n",
    );
    c.roundtrip(
        b"get q/peek/t=0\r\n",
        b"VALUE q/peek/t=0 0 1\r\na\r\nEND\r\n",
    );
    c.roundtrip(
        b"get q/open/t=5\r\n",
        b"VALUE q/open/t=5 0 1\r\na\r\nEND\r\n",
    );
    c.roundtrip(
        b"get q/t=5/close/open\r\n",
        b"VALUE q/t=5/close/open 0 1\r\nb\r\nEND\r\n",
    );
    c.roundtrip(b"get q/abort/t=1\r\n", b"END\r\n");
    c.roundtrip(b"get q/t=0\r\n", b"VALUE q/t=0 0 1\r\nb\r\nEND\r\n");
    c.roundtrip(b"get q/t=0\r\n", b"VALUE q/t=0 0 1\r\nc\r\nEND\r\n");
    c.roundtrip(b"get q/t=0\r\n", b"END\r\n");
}

#[test]
fn one_open_read_per_queue_per_connection() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    for x in ["a", "b", "c"] {
        c.set("q", x.as_bytes());
    }
    c.set("r", b"r1");
    c.roundtrip(b"get q/open\r\n", b"VALUE q/open 0 1\r\na\r\nEND\r\n");
    c.roundtrip(b"get q/open\r\n", CLOSE_FIRST);
    c.roundtrip(b"get q\r\n", CLOSE_FIRST);
    c.roundtrip(b"get q/t=10\r\n", CLOSE_FIRST);
    c.roundtrip(b"get q/t=10/open\r\n", CLOSE_FIRST);
    // Open reads on other queues are fine at the same time.
    c.roundtrip(b"get r/open\r\n", b"VALUE r/open 0 2\r\nr1\r\nEND\r\n");
    // Another connection can open its own read on q.
    let mut other = Conn::connect(&s);
    other.roundtrip(b"get q/open\r\n", b"VALUE q/open 0 1\r\nb\r\nEND\r\n");
    // The first open read stayed as it was: close confirms "a".
    assert_eq!(c.stat("queue_q_open_transactions").as_deref(), Some("2"));
    c.roundtrip(b"get q/close\r\n", b"END\r\n");
    c.roundtrip(b"get r/close\r\n", b"END\r\n");
    other.roundtrip(b"get q/abort\r\n", b"END\r\n");
    c.roundtrip(b"get q\r\n", b"VALUE q 0 1\r\nb\r\nEND\r\n");
    c.roundtrip(b"get q\r\n", b"VALUE q 0 1\r\nc\r\nEND\r\n");
    c.roundtrip(b"get q\r\n", b"END\r\n");
    c.roundtrip(b"get r\r\n", b"END\r\n");
}

#[test]
fn open_on_empty_queue_holds_nothing() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    c.roundtrip(b"get q/open\r\n", b"END\r\n");
    // Nothing is open, so a second open is fine.
    c.set("q", b"x");
    c.roundtrip(b"get q/open\r\n", b"VALUE q/open 0 1\r\nx\r\nEND\r\n");
}

#[test]
fn wait_on_empty_queue_times_out_with_end() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    let t0 = Instant::now();
    c.roundtrip(b"get q/t=300\r\n", b"END\r\n");
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(250),
        "returned after {waited:?}"
    );
    assert!(waited < Duration::from_secs(8), "returned after {waited:?}");
    // /t=0 on an empty queue returns at once (well within the read timeout).
    c.roundtrip(b"get q/t=0\r\n", b"END\r\n");
}

#[test]
fn blocking_get_is_woken_by_set_on_another_connection() {
    let s = Server::start();
    let mut waiter = Conn::connect(&s);
    let mut producer = Conn::connect(&s);
    waiter.send(b"get q/t=8000\r\n");
    producer.wait_stat("queue_q_waiters", "1");
    producer.set("q", b"wake");
    waiter.expect(b"VALUE q/t=8000 0 4\r\nwake\r\nEND\r\n");
    producer.roundtrip(b"get q\r\n", b"END\r\n");
    assert_eq!(producer.stat("queue_q_waiters").as_deref(), Some("0"));
}

#[test]
fn replies_before_a_blocking_get_go_out_before_it_waits() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    let mut producer = Conn::connect(&s);
    // One batch: a set, a get that finds it, then a wait on an empty queue.
    c.send(b"set a 0 0 1\r\nx\r\nget a\r\nget b/t=8000\r\n");
    // Its first replies arrive while the last command still waits: held back, they would
    // come with the wait's END, after 8 s, and this would read that END too soon.
    c.expect(b"STORED\r\nVALUE a 0 1\r\nx\r\nEND\r\n");
    producer.wait_stat("queue_b_waiters", "1");
    producer.set("b", b"late");
    c.expect(b"VALUE b/t=8000 0 4\r\nlate\r\nEND\r\n");
}

#[test]
fn blocking_open_and_peek_are_woken() {
    let s = Server::start();
    let mut w1 = Conn::connect(&s);
    let mut w2 = Conn::connect(&s);
    let mut p = Conn::connect(&s);
    // The peek waiter registers first, so a server that hands one wake-up per
    // item to the oldest waiter would give it to the peek, which takes nothing.
    w1.send(b"get q/peek/t=8000\r\n");
    p.wait_stat("queue_q_waiters", "1");
    w2.send(b"get q/t=8000/open\r\n");
    p.wait_stat("queue_q_waiters", "2");
    p.set("q", b"item");
    // The taker gets the item whoever registered first.
    w2.expect(b"VALUE q/t=8000/open 0 4\r\nitem\r\nEND\r\n");
    // The peek saw it at once, or (if the open won the race) sees it when it comes back.
    w2.roundtrip(b"get q/abort\r\n", b"END\r\n");
    w1.expect(b"VALUE q/peek/t=8000 0 4\r\nitem\r\nEND\r\n");
    w2.roundtrip(b"get q/open\r\n", b"VALUE q/open 0 4\r\nitem\r\nEND\r\n");
    w2.roundtrip(b"get q/close\r\n", b"END\r\n");
    p.roundtrip(b"get q\r\n", b"END\r\n");
}

#[test]
fn two_waiters_one_item() {
    let s = Server::start();
    let mut a = Conn::connect(&s);
    let mut b = Conn::connect(&s);
    let mut p = Conn::connect(&s);
    a.send(b"get q/t=1500\r\n");
    b.send(b"get q/t=1500\r\n");
    p.wait_stat("queue_q_waiters", "2");
    p.set("q", b"only");
    let value = b"VALUE q/t=1500 0 4\r\nonly\r\nEND\r\n";
    let ra = a.read_line();
    let rb = b.read_line();
    let (winner, loser, wline, lline) = if ra.starts_with(b"VALUE") {
        (&mut a, &mut b, ra, rb)
    } else {
        (&mut b, &mut a, rb, ra)
    };
    assert_eq!(wline, &value[..20], "winner line {}", esc(&wline));
    winner.expect(&value[20..]);
    assert_eq!(lline, b"END\r\n", "the other waiter must time out with END");
    assert_alive(winner);
    assert_alive(loser);
    p.roundtrip(b"get q\r\n", b"END\r\n");
}

#[test]
fn disconnected_waiter_does_not_consume_an_item() {
    let s = Server::start();
    let mut w = Conn::connect(&s);
    let mut p = Conn::connect(&s);
    w.send(b"get q/t=30000\r\n");
    p.wait_stat("queue_q_waiters", "1");
    w.close();
    // The server notices the disconnect while the get is blocked.
    p.wait_stat("queue_q_waiters", "0");
    p.set("q", b"precious");
    p.roundtrip(b"get q\r\n", b"VALUE q 0 8\r\nprecious\r\nEND\r\n");
}

#[test]
fn disconnected_open_waiter_does_not_hold_an_item() {
    let s = Server::start();
    let mut w = Conn::connect(&s);
    let mut p = Conn::connect(&s);
    w.send(b"get q/open/t=30000\r\n");
    p.wait_stat("queue_q_waiters", "1");
    w.close();
    p.wait_stat("queue_q_waiters", "0");
    p.set("q", b"precious");
    p.roundtrip(b"get q\r\n", b"VALUE q 0 8\r\nprecious\r\nEND\r\n");
    assert_eq!(p.stat("queue_q_open_transactions").as_deref(), Some("0"));
}

#[test]
fn disconnect_returns_open_reads_in_original_order() {
    let s = Server::start();
    let mut p = Conn::connect(&s);
    for x in ["1", "2", "3", "4", "5"] {
        p.set("q", x.as_bytes());
    }
    p.set("other", b"o");
    let mut a = Conn::connect(&s);
    let mut b = Conn::connect(&s);
    a.roundtrip(b"get q/open\r\n", b"VALUE q/open 0 1\r\n1\r\nEND\r\n");
    b.roundtrip(b"get q/open\r\n", b"VALUE q/open 0 1\r\n2\r\nEND\r\n");
    a.roundtrip(
        b"get other/open\r\n",
        b"VALUE other/open 0 1\r\no\r\nEND\r\n",
    );
    // Someone consumes 3 meanwhile.
    p.roundtrip(b"get q\r\n", b"VALUE q 0 1\r\n3\r\nEND\r\n");
    assert_eq!(p.stat("queue_q_open_transactions").as_deref(), Some("2"));
    // b leaves first, then a (which also held a read on `other`).
    b.close();
    p.wait_stat("queue_q_open_transactions", "1");
    a.close();
    p.wait_stat("queue_q_open_transactions", "0");
    p.wait_stat("queue_other_open_transactions", "0");
    for x in ["1", "2", "4", "5"] {
        p.roundtrip(b"get q\r\n", &value_reply("q", 0, x.as_bytes()));
    }
    p.roundtrip(b"get q\r\n", b"END\r\n");
    p.roundtrip(b"get other\r\n", b"VALUE other 0 1\r\no\r\nEND\r\n");
}

#[test]
fn returned_item_wakes_a_waiter() {
    let s = Server::start();
    let mut a = Conn::connect(&s);
    let mut w = Conn::connect(&s);
    a.set("q", b"x");
    a.roundtrip(b"get q/open\r\n", b"VALUE q/open 0 1\r\nx\r\nEND\r\n");
    w.send(b"get q/t=8000\r\n");
    a.wait_stat("queue_q_waiters", "1");
    a.roundtrip(b"get q/abort\r\n", b"END\r\n");
    w.expect(b"VALUE q/t=8000 0 1\r\nx\r\nEND\r\n");
}

// ---------------------------------------------------------------- multi-key get

#[test]
fn multi_key_get() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    c.set("a", b"a1");
    c.set("a", b"a2");
    c.set("c", b"c1");
    // `a` repeated verbatim is served once; `a/peek` is another key.
    c.roundtrip(
        b"get a b c a/peek a\r\n",
        &cat(&[
            &value_block("a", 0, b"a1"),
            &value_block("c", 0, b"c1"),
            &value_block("a/peek", 0, b"a2"),
            b"END\r\n",
        ]),
    );
    c.roundtrip(b"get a b c\r\n", &value_reply("a", 0, b"a2"));
    c.roundtrip(b"get a b c\r\n", b"END\r\n");
}

#[test]
fn multi_key_get_with_bad_options_in_the_middle() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    c.set("a", b"a1");
    c.set("b", b"b1");
    c.set("c", b"c1");
    c.roundtrip(
        b"get a b/peek/open c\r\n",
        &cat(&[&value_block("a", 0, b"a1"), BAD_OPTIONS]),
    );
    // a was consumed (handled before the bad key); b and c were not touched.
    assert_alive(&mut c);
    c.roundtrip(
        b"get a b c\r\n",
        &cat(&[
            &value_block("b", 0, b"b1"),
            &value_block("c", 0, b"c1"),
            b"END\r\n",
        ]),
    );
}

#[test]
fn multi_key_get_with_bad_name_in_the_middle() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    c.set("a", b"a1");
    c.set("a", b"a2");
    c.set("c", b"c1");
    c.roundtrip(
        b"get a a/peek b$ c\r\n",
        &cat(&[
            &value_block("a", 0, b"a1"),
            &value_block("a/peek", 0, b"a2"),
            BAD_NAME,
        ]),
    );
    assert_alive(&mut c);
    c.roundtrip(
        b"get c a\r\n",
        &cat(&[
            &value_block("c", 0, b"c1"),
            &value_block("a", 0, b"a2"),
            b"END\r\n",
        ]),
    );
}

#[test]
fn multi_key_get_bad_first_key() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    c.set("a", b"a1");
    c.roundtrip(b"get a/nope a\r\n", BAD_OPTIONS);
    c.roundtrip(b"get a\r\n", b"VALUE a 0 2\r\na1\r\nEND\r\n");
}

/// SPEC: a key repeated verbatim in one `get` is served once; a client keeps one VALUE per
/// key, so a second item would leave the queue and reach nobody.
#[test]
fn multi_key_get_same_key_twice_is_served_once() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    c.set("q", b"1");
    c.set("q", b"2");
    c.set("q", b"3");
    c.roundtrip(b"gets q q\r\n", &value_reply("q", 0, b"1"));
    c.roundtrip(b"get q q q\r\n", &value_reply("q", 0, b"2"));
    c.roundtrip(b"get q/open q/open\r\n", &value_reply("q/open", 0, b"3"));
    c.roundtrip(b"get q/abort q/abort\r\n", b"END\r\n");
    // Nothing was taken for the repeats: the last item is there, once.
    c.roundtrip(b"get q/peek q/peek\r\n", &value_reply("q/peek", 0, b"3"));
    c.roundtrip(b"get q q\r\n", &value_reply("q", 0, b"3"));
    c.roundtrip(b"get q q\r\n", b"END\r\n");
}

// ---------------------------------------------------------------- names

#[test]
fn name_of_200_bytes_is_ok_201_is_bad() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    let n200: String = "Az09_-:".chars().cycle().take(200).collect();
    let n201: String = "x".repeat(201);
    c.roundtrip(&set_req(&n200, 0, 0, b"v"), b"STORED\r\n");
    c.roundtrip(
        format!("get {n200}\r\n").as_bytes(),
        &value_reply(&n200, 0, b"v"),
    );
    c.roundtrip(format!("get {n201}\r\n").as_bytes(), BAD_NAME);
    assert_alive(&mut c);
    c.roundtrip(format!("get {n201}/peek\r\n").as_bytes(), BAD_NAME);
    c.roundtrip(format!("delete {n201}\r\n").as_bytes(), BAD_NAME);
    c.roundtrip(format!("flush {n201}\r\n").as_bytes(), BAD_NAME);
    c.send(format!("set {n201} 0 0 1\r\n").as_bytes());
    c.expect(BAD_NAME);
}

#[test]
fn every_allowed_name_byte_works() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    let all: String = ('A'..='Z')
        .chain('a'..='z')
        .chain('0'..='9')
        .chain("_-:".chars())
        .collect();
    c.set(&all, b"ok");
    c.roundtrip(
        format!("get {all}\r\n").as_bytes(),
        &value_reply(&all, 0, b"ok"),
    );
    for name in ["_", "-", ":", "0", "Z"] {
        c.set(name, b"1");
        c.roundtrip(
            format!("get {name}\r\n").as_bytes(),
            &value_reply(name, 0, b"1"),
        );
    }
}

#[test]
fn bad_name_bytes_in_get() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b':';
    // '.' (cursor separator) and '/' (options) have a meaning in get; space and
    // newline are framing. Every other byte is bad in a queue name.
    for byte in 0u8..=255 {
        if allowed(byte) || matches!(byte, b'.' | b'/' | b' ' | b'\n' | b'\r') {
            continue;
        }
        let mut req = b"get a".to_vec();
        req.push(byte);
        req.extend_from_slice(b"b\r\n");
        c.send(&req);
        let line = c.read_line();
        assert_eq!(line, BAD_NAME, "request {} got {}", esc(&req), esc(&line));
    }
    assert_alive(&mut c);
    // An empty queue name before the options.
    c.roundtrip(b"get /open\r\n", BAD_NAME);
    c.roundtrip(b"get /peek\r\n", BAD_NAME);
    assert_alive(&mut c);
}

#[test]
fn bad_name_in_delete_and_flush() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    c.roundtrip(b"delete q$\r\n", BAD_NAME);
    c.roundtrip(b"flush q$\r\n", BAD_NAME);
    c.roundtrip(b"delete a/open\r\n", BAD_NAME);
    assert_alive(&mut c);
}

// ---------------------------------------------------------------- framing

#[test]
fn empty_line_is_error() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    c.roundtrip(b"\r\n", b"ERROR\r\n");
    c.roundtrip(b"\n", b"ERROR\r\n");
    assert_alive(&mut c);
}

#[test]
fn unknown_commands_are_error() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    for req in [
        &b"foo\r\n"[..],
        b"bogus q\r\n",
        b"incr q 1\r\n",
        b"decr q 1\r\n",
        b"touch q 10\r\n",
        b"verbosity 1\r\n",
        b"getx q\r\n",
        b"sets q 0 0 1\r\n",
    ] {
        c.send(req);
        let line = c.read_line();
        assert_eq!(
            line,
            b"ERROR\r\n",
            "request {} got {}",
            esc(req),
            esc(&line)
        );
    }
    assert_alive(&mut c);
}

#[test]
fn command_without_name_is_bad_format() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    c.roundtrip(b"get\r\n", BAD_FORMAT);
    c.roundtrip(b"gets\r\n", BAD_FORMAT);
    c.roundtrip(b"delete\r\n", BAD_FORMAT);
    c.roundtrip(b"flush\r\n", BAD_FORMAT);
    c.roundtrip(b"get \r\n", BAD_FORMAT);
    assert_alive(&mut c);
}

#[test]
fn bare_newline_line_endings() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    c.roundtrip(b"set q 0 0 5\nhello\r\n", b"STORED\r\n");
    c.roundtrip(b"get q/peek\n", b"VALUE q/peek 0 5\r\nhello\r\nEND\r\n");
    c.roundtrip(b"version\n", &version_reply());
    c.roundtrip(b"get q\n", b"VALUE q 0 5\r\nhello\r\nEND\r\n");
    c.roundtrip(b"get q\n", b"END\r\n");
    c.roundtrip(b"bogus\n", b"ERROR\r\n");
}

#[test]
fn command_names_are_case_insensitive() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    c.roundtrip(b"SET q 0 0 2\r\nup\r\n", b"STORED\r\n");
    c.roundtrip(b"Set q 0 0 2\r\nUp\r\n", b"STORED\r\n");
    c.roundtrip(b"GET q/peek\r\n", b"VALUE q/peek 0 2\r\nup\r\nEND\r\n");
    c.roundtrip(b"GeT q\r\n", b"VALUE q 0 2\r\nup\r\nEND\r\n");
    c.roundtrip(b"GETS q\r\n", b"VALUE q 0 2\r\nUp\r\nEND\r\n");
    c.roundtrip(b"VERSION\r\n", &version_reply());
    c.roundtrip(b"FLUSH q\r\n", b"END\r\n");
    c.roundtrip(b"DELETE q\r\n", b"DELETED\r\n");
    c.roundtrip(b"Flush_All\r\n", b"OK\r\n");
    c.send(b"STATS\r\n");
    assert!(c.read_line_str().starts_with("STAT uptime "));
    loop {
        if c.read_line_str() == "END" {
            break;
        }
    }
    c.roundtrip(b"SHUTDOWN\r\n", b"ERROR\r\n");
    c.send(b"QUIT\r\n");
    c.expect_closed();
}

#[test]
fn pipelined_commands_reply_in_order() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    let req = b"set q 0 0 1\r\na\r\nset q 0 0 1 noreply\r\nb\r\nset r 2 0 1\r\nr\r\nget q\r\nbogus\r\nget q/peek r\r\nget q$\r\nversion\r\nget q\r\nget q\r\ndelete r\r\nflush_all\r\n";
    let want = cat(&[
        b"STORED\r\n",
        b"STORED\r\n",
        b"VALUE q 0 1\r\na\r\nEND\r\n",
        b"ERROR\r\n",
        b"VALUE q/peek 0 1\r\nb\r\nVALUE r 2 1\r\nr\r\nEND\r\n",
        BAD_NAME,
        &version_reply(),
        b"VALUE q 0 1\r\nb\r\nEND\r\n",
        b"END\r\n",
        b"DELETED\r\n",
        b"OK\r\n",
    ]);
    c.roundtrip(req, &want);
}

#[test]
fn pipelined_blocking_get_keeps_order() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    c.roundtrip(
        b"get q/t=200\r\nversion\r\nset q 0 0 1\r\nx\r\nget q\r\n",
        &cat(&[
            b"END\r\n",
            &version_reply(),
            b"STORED\r\n",
            b"VALUE q 0 1\r\nx\r\nEND\r\n",
        ]),
    );
}

#[test]
fn byte_at_a_time_input() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    let req = b"set q 1 0 4\r\nab\r\n\r\nget q\r\n";
    for b in req.iter() {
        c.send(&[*b]);
        thread::sleep(Duration::from_millis(2));
    }
    c.expect(b"STORED\r\nVALUE q 1 4\r\nab\r\n\r\nEND\r\n");
}

#[test]
fn line_of_2048_bytes_is_accepted() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    c.set("q", b"v");
    // "get" + spaces + "q" = exactly 2048 bytes before the \r\n
    let mut line = b"get".to_vec();
    line.resize(2047, b' ');
    line.push(b'q');
    assert_eq!(line.len(), 2048);
    line.extend_from_slice(b"\r\n");
    c.roundtrip(&line, b"VALUE q 0 1\r\nv\r\nEND\r\n");
    // Also with a bare \n.
    c.set("q", b"w");
    line.truncate(2048);
    line.push(b'\n');
    c.roundtrip(&line, b"VALUE q 0 1\r\nw\r\nEND\r\n");
    // A 2048-byte multi-key get.
    let mut line = b"get".to_vec();
    while line.len() + 2 <= 2048 {
        line.extend_from_slice(b" q");
    }
    line.resize(2048, b' ');
    assert_eq!(line.len(), 2048);
    line.extend_from_slice(b"\r\n");
    c.roundtrip(&line, b"END\r\n");
}

#[test]
fn line_of_2049_bytes_is_rejected_and_connection_closed() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    c.set("q", b"v");
    // 2049 bytes without a newline: judged as soon as they have arrived.
    let mut line = b"get".to_vec();
    line.resize(2048, b' ');
    line.push(b'q');
    assert_eq!(line.len(), 2049);
    c.send(&line);
    c.expect(b"CLIENT_ERROR line too long\r\n");
    c.expect_closed();
    // The server is fine and the item was not consumed.
    let mut c = Conn::connect(&s);
    c.roundtrip(b"get q\r\n", b"VALUE q 0 1\r\nv\r\nEND\r\n");
}

#[test]
fn long_line_sent_in_pieces_is_rejected() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    c.send(&[b'a'; 1500]);
    thread::sleep(Duration::from_millis(50));
    c.send(&[b'a'; 549]);
    c.expect(b"CLIENT_ERROR line too long\r\n");
    c.expect_closed();
    assert_alive(&mut Conn::connect(&s));
}

// ---------------------------------------------------------------- delete / flush

#[test]
fn delete_queue() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    c.roundtrip(b"delete never_used\r\n", b"NOT_FOUND\r\n");
    c.set("q", b"1");
    c.set("q", b"2");
    c.set("keep", b"k");
    c.roundtrip(b"delete q\r\n", b"DELETED\r\n");
    let names: Vec<String> = c.stats().into_iter().map(|(n, _)| n).collect();
    assert!(
        !names.iter().any(|n| n.starts_with("queue_q_")),
        "deleted queue still in stats: {names:?}"
    );
    c.roundtrip(b"delete q\r\n", b"NOT_FOUND\r\n");
    c.roundtrip(b"get q\r\n", b"END\r\n");
    c.roundtrip(b"get keep\r\n", b"VALUE keep 0 1\r\nk\r\nEND\r\n");
    // A queue created by `get` exists and can be deleted.
    c.roundtrip(b"get created_by_get\r\n", b"END\r\n");
    c.roundtrip(b"delete created_by_get\r\n", b"DELETED\r\n");
    // The queue can be used again.
    c.set("q", b"3");
    c.roundtrip(b"get q\r\n", b"VALUE q 0 1\r\n3\r\nEND\r\n");
}

#[test]
fn delete_noreply() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    c.set("q", b"1");
    c.send(b"delete q noreply\r\n");
    c.send(b"delete q noreply\r\n");
    c.roundtrip(b"get q\r\n", b"END\r\n");
}

#[test]
fn delete_drops_open_reads_without_resurrecting_them() {
    let s = Server::start();
    let mut a = Conn::connect(&s);
    let mut b = Conn::connect(&s);
    a.set("q", b"1");
    a.set("q", b"2");
    a.roundtrip(b"get q/open\r\n", b"VALUE q/open 0 1\r\n1\r\nEND\r\n");
    b.roundtrip(b"delete q\r\n", b"DELETED\r\n");
    a.roundtrip(b"get q/abort\r\n", b"END\r\n");
    b.roundtrip(b"get q\r\n", b"END\r\n");
    // The aborting connection can open again (its read was dropped).
    b.set("q", b"3");
    a.roundtrip(b"get q/open\r\n", b"VALUE q/open 0 1\r\n3\r\nEND\r\n");
    a.close();
    b.wait_stat("queue_q_open_transactions", "0");
    b.roundtrip(b"get q\r\n", b"VALUE q 0 1\r\n3\r\nEND\r\n");
    b.roundtrip(b"get q\r\n", b"END\r\n");
}

#[test]
fn flush_queue() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    c.set("q", b"1");
    c.set("q", b"2");
    c.set("other", b"o");
    c.roundtrip(b"flush q\r\n", b"END\r\n");
    c.roundtrip(b"get q\r\n", b"END\r\n");
    assert_eq!(c.stat("queue_q_items").as_deref(), Some("0"));
    // the queue stays and takes new items
    c.set("q", b"3");
    c.roundtrip(b"get q\r\n", b"VALUE q 0 1\r\n3\r\nEND\r\n");
    c.roundtrip(b"get other\r\n", b"VALUE other 0 1\r\no\r\nEND\r\n");
    c.roundtrip(b"flush never_used\r\n", b"END\r\n");
    c.set("q", b"4");
    c.send(b"flush q noreply\r\n");
    c.roundtrip(b"get q\r\n", b"END\r\n");
}

#[test]
fn flush_keeps_open_reads_open() {
    let s = Server::start();
    let mut a = Conn::connect(&s);
    let mut b = Conn::connect(&s);
    for x in ["1", "2", "3"] {
        a.set("q", x.as_bytes());
    }
    a.roundtrip(b"get q/open\r\n", b"VALUE q/open 0 1\r\n1\r\nEND\r\n");
    b.roundtrip(b"get q/open\r\n", b"VALUE q/open 0 1\r\n2\r\nEND\r\n");
    a.roundtrip(b"flush q\r\n", b"END\r\n");
    assert_eq!(a.stat("queue_q_open_transactions").as_deref(), Some("2"));
    assert_eq!(a.stat("queue_q_items").as_deref(), Some("0"));
    // abort puts the plain item back; close removes it.
    a.roundtrip(b"get q/abort\r\n", b"END\r\n");
    b.roundtrip(b"get q/close\r\n", b"END\r\n");
    b.roundtrip(b"get q\r\n", b"VALUE q 0 1\r\n1\r\nEND\r\n");
    b.roundtrip(b"get q\r\n", b"END\r\n");
}

#[test]
fn flush_all() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    c.set("a", b"1");
    c.set("b", b"2");
    c.roundtrip(b"flush_all\r\n", b"OK\r\n");
    c.roundtrip(b"get a b\r\n", b"END\r\n");
    c.set("a", b"3");
    c.roundtrip(b"flush_all 10\r\n", b"OK\r\n");
    c.roundtrip(b"get a\r\n", b"END\r\n");
    c.set("a", b"4");
    c.send(b"flush_all noreply\r\n");
    c.roundtrip(b"get a\r\n", b"END\r\n");
    c.set("a", b"5");
    c.send(b"flush_all 0 noreply\r\n");
    c.roundtrip(b"get a\r\n", b"END\r\n");
    // queues still take new items
    c.set("a", b"6");
    c.roundtrip(b"get a\r\n", b"VALUE a 0 1\r\n6\r\nEND\r\n");
}

// ---------------------------------------------------------------- version / stats

#[test]
fn version_reply_exact() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    c.roundtrip(
        b"version\r\n",
        format!("VERSION 1.6.0 tern-{}\r\n", env!("CARGO_PKG_VERSION")).as_bytes(),
    );
}

const GLOBAL_STATS: [&str; 18] = [
    "uptime",
    "time",
    "version",
    "pid",
    "curr_connections",
    "total_connections",
    "cmd_get",
    "cmd_set",
    "cmd_peek",
    "get_hits",
    "get_misses",
    "curr_items",
    "total_items",
    "bytes",
    "bytes_read",
    "bytes_written",
    "disk_bytes",
    "rss_bytes",
];

const QUEUE_STATS: [&str; 8] = [
    "items",
    "bytes",
    "total_items",
    "expired_items",
    "open_transactions",
    "waiters",
    "age_ms",
    "open_timeouts",
];

fn expected_stat_names(queues: &[&str]) -> Vec<String> {
    let mut names: Vec<String> = GLOBAL_STATS.iter().map(|s| s.to_string()).collect();
    for q in queues {
        for k in QUEUE_STATS {
            names.push(format!("queue_{q}_{k}"));
        }
    }
    names
}

#[test]
fn stats_on_fresh_server() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    let stats = c.stats();
    let names: Vec<String> = stats.iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(names, expected_stat_names(&[]));
    let get = |n: &str| stats.iter().find(|(k, _)| k == n).unwrap().1.clone();
    for n in GLOBAL_STATS {
        if n != "version" {
            get(n)
                .parse::<u64>()
                .unwrap_or_else(|_| panic!("{n} not a number: {:?}", get(n)));
        }
    }
    assert_eq!(get("version"), version_string());
    assert_eq!(get("pid"), s.pid().to_string());
    for n in [
        "cmd_get",
        "cmd_set",
        "cmd_peek",
        "get_hits",
        "get_misses",
        "curr_items",
        "total_items",
        "bytes",
    ] {
        assert_eq!(get(n), "0", "{n}");
    }
    let time: i64 = get("time").parse().unwrap();
    assert!((time - now_unix()).abs() < 120, "time {time}");
    assert!(get("uptime").parse::<u64>().unwrap() < 120);
    assert!(get("total_connections").parse::<u64>().unwrap() >= 1);
    assert!(get("rss_bytes").parse::<u64>().unwrap() > 0);
    // This `stats` (7 bytes) and the harness's start-up probe, also one `stats`.
    assert!(get("bytes_read").parse::<u64>().unwrap() <= 14);
}

#[test]
fn stats_key_order_and_values() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    let mut sent = 0u64;
    let mut send = |c: &mut Conn, req: &[u8], reply: &[u8]| {
        sent += req.len() as u64;
        c.roundtrip(req, reply);
    };
    // Queue names chosen so that bytewise order differs from the order of use
    // and from the order of the full stat key strings ("a" < "a-b" < "a_b").
    send(&mut c, b"set zeta 0 0 3\r\nabc\r\n", b"STORED\r\n");
    send(&mut c, b"set a_b 0 0 2\r\nde\r\n", b"STORED\r\n");
    send(&mut c, b"set a 0 0 5\r\nfghij\r\n", b"STORED\r\n");
    send(&mut c, b"set a 0 0 1\r\nk\r\n", b"STORED\r\n");
    send(&mut c, b"set Alpha 0 0 1\r\nl\r\n", b"STORED\r\n");
    send(&mut c, b"set 9 0 0 1\r\nm\r\n", b"STORED\r\n");
    send(&mut c, b"set a-b 0 0 4\r\nnopq\r\n", b"STORED\r\n");
    // reads: one hit, one miss (creates queue `empty`), one peek, one open
    send(&mut c, b"get zeta\r\n", b"VALUE zeta 0 3\r\nabc\r\nEND\r\n");
    send(&mut c, b"get empty\r\n", b"END\r\n");
    send(
        &mut c,
        b"get a/peek\r\n",
        b"VALUE a/peek 0 5\r\nfghij\r\nEND\r\n",
    );
    send(
        &mut c,
        b"get 9/open\r\n",
        b"VALUE 9/open 0 1\r\nm\r\nEND\r\n",
    );
    thread::sleep(Duration::from_millis(300));

    let stats = c.stats();
    let names: Vec<String> = stats.iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(
        names,
        expected_stat_names(&["9", "Alpha", "a", "a-b", "a_b", "empty", "zeta"])
    );
    let get = |n: &str| -> String { stats.iter().find(|(k, _)| k == n).unwrap().1.clone() };
    let num = |n: &str| -> u64 {
        get(n)
            .parse()
            .unwrap_or_else(|_| panic!("{n} not a number: {:?}", get(n)))
    };
    assert_eq!(get("version"), version_string());
    assert_eq!(get("pid"), s.pid().to_string());
    assert_eq!(num("cmd_set"), 7);
    assert_eq!(num("total_items"), 7);
    assert_eq!(num("cmd_get"), 3, "get zeta, get empty, get 9/open");
    assert_eq!(num("cmd_peek"), 1);
    assert_eq!(num("get_hits"), 2);
    assert_eq!(num("get_misses"), 1);
    // waiting: a(2) Alpha(1) a-b(1) a_b(1) = 5 items, 13 bytes; plus the open one
    // (1 item, 1 byte) if the global counters include open reads.
    assert!(
        [5, 6].contains(&num("curr_items")),
        "curr_items {}",
        num("curr_items")
    );
    assert!([13, 14].contains(&num("bytes")), "bytes {}", num("bytes"));
    assert!(
        num("bytes_read") >= sent,
        "bytes_read {} < {sent}",
        num("bytes_read")
    );
    assert!(
        num("bytes_written") > 100,
        "bytes_written {}",
        num("bytes_written")
    );
    assert!(num("disk_bytes") > 0);
    assert!(num("rss_bytes") > 0);
    assert!(num("total_connections") >= 1);
    assert!(num("curr_connections") >= 1);

    let q = |q: &str, k: &str| num(&format!("queue_{q}_{k}"));
    // a: two items, one peeked (still there)
    assert_eq!(q("a", "items"), 2);
    assert_eq!(q("a", "bytes"), 6);
    assert_eq!(q("a", "total_items"), 2);
    assert_eq!(q("a", "expired_items"), 0);
    assert_eq!(q("a", "open_transactions"), 0);
    assert_eq!(q("a", "waiters"), 0);
    assert!(q("a", "age_ms") >= 250, "age_ms {}", q("a", "age_ms"));
    assert!(q("a", "age_ms") < 60_000, "age_ms {}", q("a", "age_ms"));
    // zeta: its only item was read
    assert_eq!(q("zeta", "items"), 0);
    assert_eq!(q("zeta", "bytes"), 0);
    assert_eq!(q("zeta", "total_items"), 1);
    // 9: its only item is open
    assert_eq!(q("9", "items"), 0);
    assert_eq!(q("9", "open_transactions"), 1);
    assert_eq!(q("9", "total_items"), 1);
    // empty: created by get
    assert_eq!(q("empty", "items"), 0);
    assert_eq!(q("empty", "bytes"), 0);
    assert_eq!(q("empty", "total_items"), 0);
    assert_eq!(q("a-b", "bytes"), 4);
    assert_eq!(q("a_b", "bytes"), 2);
    assert_eq!(q("Alpha", "items"), 1);
}

#[test]
fn stats_connections_and_waiters() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    c.wait_stat("curr_connections", "1");
    let mut w1 = Conn::connect(&s);
    let mut w2 = Conn::connect(&s);
    assert_alive(&mut w1);
    assert_alive(&mut w2);
    assert_eq!(c.stat("curr_connections").as_deref(), Some("3"));
    assert!(c.stat_u64("total_connections") >= 3);
    w1.send(b"get q/t=8000\r\n");
    w2.send(b"get q/t=8000/open\r\n");
    c.wait_stat("queue_q_waiters", "2");
    c.set("q", b"1");
    c.set("q", b"2");
    let r1 = w1.read_get_reply("q/t=8000");
    let r2 = w2.read_get_reply("q/t=8000/open");
    let mut got = vec![r1.unwrap().1, r2.unwrap().1];
    got.sort();
    assert_eq!(got, vec![b"1".to_vec(), b"2".to_vec()]);
    assert_eq!(c.stat("queue_q_waiters").as_deref(), Some("0"));
    assert_eq!(c.stat("queue_q_open_transactions").as_deref(), Some("1"));
    w1.close();
    w2.close();
    c.wait_stat("curr_connections", "1");
    c.wait_stat("queue_q_open_transactions", "0");
    assert_eq!(c.stat("queue_q_items").as_deref(), Some("1"));
}

// ---------------------------------------------------------------- quit / shutdown / limits

#[test]
fn quit_closes_connection_and_returns_open_reads() {
    let s = Server::start();
    let mut a = Conn::connect(&s);
    a.set("q", b"1");
    a.set("q", b"2");
    a.roundtrip(b"get q/open\r\n", b"VALUE q/open 0 1\r\n1\r\nEND\r\n");
    a.send(b"quit\r\n");
    a.expect_closed();
    let mut b = Conn::connect(&s);
    b.wait_stat("queue_q_open_transactions", "0");
    b.roundtrip(b"get q\r\n", b"VALUE q 0 1\r\n1\r\nEND\r\n");
    b.roundtrip(b"get q\r\n", b"VALUE q 0 1\r\n2\r\nEND\r\n");
}

#[test]
fn quit_after_pipelined_commands() {
    let s = Server::start();
    let mut a = Conn::connect(&s);
    a.send(b"set q 0 0 1\r\nx\r\nversion\r\nquit\r\nversion\r\n");
    let got = a.read_until_closed();
    assert_eq!(
        got,
        cat(&[b"STORED\r\n", &version_reply()]),
        "got {}",
        esc(&got)
    );
}

#[test]
fn shutdown_is_error_without_allow_shutdown() {
    let mut s = Server::start();
    let mut c = Conn::connect(&s);
    c.roundtrip(b"shutdown\r\n", b"ERROR\r\n");
    assert_alive(&mut c);
    assert!(s.is_running());
}

#[test]
fn shutdown_with_allow_shutdown_exits_zero() {
    let mut s = Server::start_with(&["--allow-shutdown"]);
    let mut c = Conn::connect(&s);
    c.set("q", b"kept");
    c.send(b"shutdown\r\n");
    c.expect_closed();
    let status = s.wait_exit();
    assert!(status.success(), "exit status {status}");
    s.start_again();
    let mut c = Conn::connect(&s);
    c.roundtrip(b"get q\r\n", b"VALUE q 0 4\r\nkept\r\nEND\r\n");
}

#[test]
fn max_connections() {
    let s = Server::start_with(&["--max-connections", "2"]);
    let mut c1 = Conn::connect(&s);
    // Let the harness's readiness probe connection be gone.
    c1.wait_stat("curr_connections", "1");
    let mut c2 = Conn::connect(&s);
    assert_alive(&mut c2);
    let mut c3 = Conn::connect(&s);
    c3.expect(b"SERVER_ERROR too many connections\r\n");
    c3.expect_closed();
    // Existing connections are unaffected.
    assert_alive(&mut c1);
    assert_alive(&mut c2);
    // After one leaves, a new one is accepted.
    c2.close();
    c1.wait_stat("curr_connections", "1");
    let mut c4 = Conn::connect(&s);
    assert_alive(&mut c4);
}

#[test]
fn many_clients_concurrently_no_loss_no_duplicates() {
    let s = Server::start();
    let producers = 4;
    let per = 100;
    let addr = s.addr();
    let handles: Vec<_> = (0..producers)
        .map(|p| {
            thread::spawn(move || {
                let mut c = Conn::connect_addr(addr);
                for i in 0..per {
                    c.set("load", format!("{p}:{i}").as_bytes());
                }
            })
        })
        .collect();
    let consumers: Vec<_> = (0..2)
        .map(|_| {
            thread::spawn(move || {
                let mut c = Conn::connect_addr(addr);
                let mut got = Vec::new();
                loop {
                    match c.get("load/t=3000") {
                        Some((_, d)) => got.push(String::from_utf8(d).unwrap()),
                        None => return got,
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let mut all: Vec<String> = Vec::new();
    let mut per_consumer = Vec::new();
    for h in consumers {
        let got = h.join().unwrap();
        per_consumer.push(got.clone());
        all.extend(got);
    }
    // Whatever the consumers left behind (if they gave up early) is still there.
    let mut c = Conn::connect(&s);
    while let Some((_, d)) = c.get("load") {
        all.push(String::from_utf8(d).unwrap());
    }
    // Each consumer sees each producer's items in order.
    for got in &per_consumer {
        for p in 0..producers {
            let seq: Vec<u32> = got
                .iter()
                .filter_map(|s| s.strip_prefix(&format!("{p}:")))
                .map(|n| n.parse().unwrap())
                .collect();
            assert!(seq.windows(2).all(|w| w[0] < w[1]), "out of order: {seq:?}");
        }
    }
    all.sort();
    let n = all.len();
    all.dedup();
    assert_eq!(n, all.len(), "duplicates delivered");
    assert_eq!(n, producers * per, "items lost");
}

#[test]
fn multi_key_get_with_a_waiting_key() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    c.set("b", b"bee");
    let t0 = Instant::now();
    c.roundtrip(
        b"get a/t=300 b\r\n",
        &cat(&[&value_block("b", 0, b"bee"), b"END\r\n"]),
    );
    assert!(t0.elapsed() >= Duration::from_millis(250));
}

mod garbage {
    //! No input from the network can crash the server or lose stored data.
    use super::*;
    use proptest::prelude::*;
    use std::io::Write;

    fn token() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            Just(b"set ".to_vec()),
            Just(b"get ".to_vec()),
            Just(b"gets ".to_vec()),
            Just(b"GET ".to_vec()),
            Just(b"q".to_vec()),
            Just(b"r".to_vec()),
            Just(b"q.c".to_vec()),
            Just(b"q/open".to_vec()),
            Just(b"q/close".to_vec()),
            Just(b"q/abort".to_vec()),
            Just(b"q/peek".to_vec()),
            Just(b"/t=".to_vec()),
            Just(b"0".to_vec()),
            Just(b"5".to_vec()),
            Just(b"-1".to_vec()),
            Just(b"4294967296".to_vec()),
            Just(b"99999999999999999999999".to_vec()),
            Just(b" noreply".to_vec()),
            Just(b" ".to_vec()),
            Just(b"\r\n".to_vec()),
            Just(b"\n".to_vec()),
            Just(b"\r".to_vec()),
            Just(b"stats".to_vec()),
            Just(b"version".to_vec()),
            Just(b"shutdown".to_vec()),
            Just(b"set q 0 0 5\r\n".to_vec()),
            Just(b"set q 0 0 4000000000\r\n".to_vec()),
            proptest::collection::vec(any::<u8>(), 0..16),
            proptest::collection::vec(Just(b'x'), 2000..2100),
        ]
    }

    #[test]
    fn random_input_never_crashes_or_loses_data() {
        let mut s = Server::start();
        let mut keep = Conn::connect(&s);
        keep.set("keep", b"safe");
        let addr = s.addr();
        let config = ProptestConfig {
            cases: 150,
            failure_persistence: None,
            ..ProptestConfig::default()
        };
        proptest!(config, |(input in proptest::collection::vec(token(), 0..40))| {
            let bytes = input.concat();
            let mut c = std::net::TcpStream::connect(addr).unwrap();
            let _ = c.write_all(&bytes);
            drop(c);
        });
        assert!(s.is_running(), "server died\n{}", s.log());
        let mut c = Conn::connect(&s);
        c.roundtrip(
            b"get keep/peek\r\n",
            b"VALUE keep/peek 0 4\r\nsafe\r\nEND\r\n",
        );
        keep.roundtrip(b"get keep\r\n", b"VALUE keep 0 4\r\nsafe\r\nEND\r\n");
    }
}

/// Names of the threads of a process whose name starts with `prefix` (Linux /proc).
fn threads_named(pid: &str, prefix: &str) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("list the server's threads")
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with(prefix))
        .count()
}

#[test]
fn threads_option_sets_the_serving_threads_and_one_still_serves_everyone() {
    let s = Server::start_with(&["--threads", "1"]);
    let mut waiter = Conn::connect(&s);
    let mut producer = Conn::connect(&s);
    let mut other = Conn::connect(&s);
    let pid = other.stat("pid").expect("pid stat");
    assert_eq!(threads_named(&pid, "async-std"), 1);
    // The one thread is not held by a waiting get: others are served meanwhile.
    waiter.send(b"get q/t=8000\r\n");
    producer.wait_stat("queue_q_waiters", "1");
    let mut batch = Vec::new();
    for i in 0..200 {
        batch.extend_from_slice(
            format!("set other 0 0 {}\r\n{i}\r\n", i.to_string().len()).as_bytes(),
        );
    }
    other.send(&batch);
    for _ in 0..200 {
        other.expect(b"STORED\r\n");
    }
    other.roundtrip(b"get other\r\n", b"VALUE other 0 1\r\n0\r\nEND\r\n");
    producer.set("q", b"wake");
    waiter.expect(b"VALUE q/t=8000 0 4\r\nwake\r\nEND\r\n");

    let s = Server::start_with(&["--threads", "2"]);
    let pid = Conn::connect(&s).stat("pid").expect("pid stat");
    assert_eq!(threads_named(&pid, "async-std"), 2);
}
