//! `tern export` / `tern import` round trip through the real binary: queues, item order,
//! flags, cursor positions and failed reads all arrive, and ids keep increasing after it.

mod common;

use common::{copy_dir, Conn, Server};
use std::path::Path;
use std::process::{Command, Stdio};

fn tern(args: &[&str], data: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tern"));
    command.args(args).arg("--data").arg(data);
    command
}

#[test]
fn export_then_import_moves_queues_cursors_and_failed_reads() {
    let mut source = Server::start();
    let mut conn = Conn::connect(&source);
    conn.roundtrip(b"set jobs 7 0 5\r\nfirst\r\n", b"STORED\r\n");
    conn.roundtrip(b"set jobs+audit 0 0 6\r\nsecond\r\n", b"STORED\r\n");
    conn.roundtrip(b"set jobs 0 0 9\r\nthi\r\nrd\x00!\r\n", b"STORED\r\n");
    // Cursor `c` read the first item, and holds a failed read of the second.
    conn.roundtrip(b"get jobs.c\r\n", b"VALUE jobs.c 7 5\r\nfirst\r\nEND\r\n");
    conn.roundtrip(
        b"get jobs.c/open\r\n",
        b"VALUE jobs.c/open 0 6\r\nsecond\r\nEND\r\n",
    );
    conn.roundtrip(b"get jobs.c/abort\r\n", b"END\r\n");
    drop(conn);
    assert!(source.stop().success());

    let exported = tern(&["export"], source.data_dir())
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(exported.status.success());
    let stream = exported.stdout;
    assert!(
        stream.starts_with(b"tern-export 1\n"),
        "{}",
        common::esc(&stream)
    );

    let target = tempfile::tempdir().unwrap();
    let mut import = tern(&["import"], target.path())
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(import.stdin.as_mut().unwrap(), &stream).unwrap();
    assert!(import.wait().unwrap().success());

    // Importing twice is refused: the directory already holds queues.
    let mut again = tern(&["import"], target.path())
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _ = std::io::Write::write_all(again.stdin.as_mut().unwrap(), &stream);
    assert!(!again.wait_with_output().unwrap().status.success());

    // Serve the imported directory (the harness's own data dir is replaced by it).
    let mut moved = Server::start();
    moved.stop();
    let moved_dir = moved.data_dir().to_path_buf();
    std::fs::remove_dir_all(&moved_dir).unwrap();
    copy_dir(target.path(), &moved_dir);
    moved.start_again();
    let mut conn = Conn::connect(&moved);
    // The cursor's failed read first, then it continues where it was.
    conn.roundtrip(b"get jobs.c\r\n", b"VALUE jobs.c 0 6\r\nsecond\r\nEND\r\n");
    conn.roundtrip(
        b"get jobs.c\r\n",
        b"VALUE jobs.c 0 9\r\nthi\r\nrd\x00!\r\nEND\r\n",
    );
    // New items get ids above the imported ones: the cursor sees them next.
    conn.roundtrip(b"set jobs 0 0 3\r\nnew\r\n", b"STORED\r\n");
    conn.roundtrip(b"get jobs.c\r\n", b"VALUE jobs.c 0 3\r\nnew\r\nEND\r\n");
    // Plain readers see every item in order, flags kept.
    conn.roundtrip(b"get jobs\r\n", b"VALUE jobs 7 5\r\nfirst\r\nEND\r\n");
    conn.roundtrip(b"get jobs\r\n", b"VALUE jobs 0 6\r\nsecond\r\nEND\r\n");
    conn.roundtrip(
        b"get jobs\r\n",
        b"VALUE jobs 0 9\r\nthi\r\nrd\x00!\r\nEND\r\n",
    );
    conn.roundtrip(b"get jobs\r\n", b"VALUE jobs 0 3\r\nnew\r\nEND\r\n");
    conn.roundtrip(b"get audit\r\n", b"VALUE audit 0 6\r\nsecond\r\nEND\r\n");
}

#[test]
fn a_truncated_export_is_refused() {
    let target = tempfile::tempdir().unwrap();
    let mut import = tern(&["import"], target.path())
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        import.stdin.as_mut().unwrap(),
        b"tern-export 1\nqueue q\nitem q 5 0 never 1 10\nshort",
    )
    .unwrap();
    let output = import.wait_with_output().unwrap();
    assert!(!output.status.success());
}
