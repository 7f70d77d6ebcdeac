//! Queue limits (`--max-items`, `--max-bytes`, `--discard-old`, per-queue `--config`), and the
//! `--pid-file` of a running server.

mod common;

use common::{config_file, Conn, Server};

#[test]
fn max_items_refuses_when_full_and_accepts_after_a_read() {
    let server = Server::start_with(&["--max-items", "2"]);
    let mut conn = Conn::connect(&server);
    assert_eq!(conn.set_reply("q", b"a"), b"STORED\r\n");
    assert_eq!(conn.set_reply("q", b"b"), b"STORED\r\n");
    assert_eq!(conn.set_reply("q", b"c"), b"SERVER_ERROR queue full\r\n");
    // An item held open still takes its place.
    conn.roundtrip(b"get q/open\r\n", b"VALUE q/open 0 1\r\na\r\nEND\r\n");
    assert_eq!(conn.set_reply("q", b"c"), b"SERVER_ERROR queue full\r\n");
    conn.roundtrip(b"get q/close\r\n", b"END\r\n");
    assert_eq!(conn.set_reply("q", b"c"), b"STORED\r\n");
    conn.roundtrip(b"get q\r\n", b"VALUE q 0 1\r\nb\r\nEND\r\n");
    conn.roundtrip(b"get q\r\n", b"VALUE q 0 1\r\nc\r\nEND\r\n");
    // noreply suppresses the refusal too.
    assert_eq!(conn.set_reply("r", b"1"), b"STORED\r\n");
    assert_eq!(conn.set_reply("r", b"2"), b"STORED\r\n");
    conn.send(b"set r 0 0 1 noreply\r\n3\r\n");
    conn.roundtrip(b"version\r\n", &common::version_reply());
}

#[test]
fn max_bytes_counts_payload_bytes() {
    let server = Server::start_with(&["--max-bytes", "10"]);
    let mut conn = Conn::connect(&server);
    assert_eq!(conn.set_reply("q", b"12345678"), b"STORED\r\n");
    assert_eq!(conn.set_reply("q", b"123"), b"SERVER_ERROR queue full\r\n");
    assert_eq!(conn.set_reply("q", b"12"), b"STORED\r\n");
    assert_eq!(
        conn.set_reply("big", b"12345678901"),
        b"SERVER_ERROR queue full\r\n"
    );
}

#[test]
fn discard_old_drops_the_oldest_waiting_items() {
    let server = Server::start_with(&["--max-items", "3", "--discard-old"]);
    let mut conn = Conn::connect(&server);
    for data in ["1", "2", "3", "4", "5"] {
        assert_eq!(conn.set_reply("q", data.as_bytes()), b"STORED\r\n");
    }
    conn.roundtrip(b"get q\r\n", b"VALUE q 0 1\r\n3\r\nEND\r\n");
    conn.roundtrip(b"get q\r\n", b"VALUE q 0 1\r\n4\r\nEND\r\n");
    conn.roundtrip(b"get q\r\n", b"VALUE q 0 1\r\n5\r\nEND\r\n");
    conn.roundtrip(b"get q\r\n", b"END\r\n");
}

#[test]
fn config_file_sets_limits_per_queue_over_the_defaults() {
    let (_dir, path) = config_file(
        "[defaults]\nmax_items = 5\n\n[queues.tiny]\nmax_items = 1\n\n[queues.ring]\nmax_items = 2\ndiscard_old = true\n\n",
    );
    let server = Server::start_with(&["--config", &path]);
    let mut conn = Conn::connect(&server);
    assert_eq!(conn.set_reply("tiny", b"a"), b"STORED\r\n");
    assert_eq!(conn.set_reply("tiny", b"b"), b"SERVER_ERROR queue full\r\n");
    for data in ["a", "b", "c"] {
        assert_eq!(conn.set_reply("ring", data.as_bytes()), b"STORED\r\n");
    }
    conn.roundtrip(b"get ring\r\n", b"VALUE ring 0 1\r\nb\r\nEND\r\n");
    for data in ["1", "2", "3", "4", "5"] {
        assert_eq!(conn.set_reply("other", data.as_bytes()), b"STORED\r\n");
    }
    assert_eq!(
        conn.set_reply("other", b"6"),
        b"SERVER_ERROR queue full\r\n"
    );
    // A fanout that would overfill one target stores in none.
    conn.roundtrip(
        b"set other+fresh 0 0 1\r\nx\r\n",
        b"SERVER_ERROR queue full\r\n",
    );
    conn.roundtrip(b"get fresh\r\n", b"END\r\n");
}

#[test]
fn a_bad_config_file_stops_start_up_with_a_message() {
    let (_dir, path) = config_file("[queues.q]\nmax_itemz = 1\n\n");
    let data = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tern"))
        .args(["--listen", "127.0.0.1:0", "--data"])
        .arg(data.path())
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("bad config file"), "stderr: {stderr}");
    assert!(stderr.contains("max_itemz"), "stderr: {stderr}");
}

#[test]
fn pid_file_holds_the_pid_while_running_and_is_removed_on_stop() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("tern.pid");
    let mut server = Server::start_with(&["--pid-file", pid_file.to_str().unwrap()]);
    let written = std::fs::read_to_string(&pid_file).unwrap();
    assert_eq!(written, format!("{}\n", server.pid()));
    assert!(server.stop().success());
    assert!(
        !pid_file.exists(),
        "pid file left behind after a graceful stop"
    );
}
