//! The data directory's format: a directory written by an earlier build is served as it was
//! left, and a directory written in a format this build does not know makes start-up fail with
//! a clear message, its data left as it was.
//!
//! `tests/fixtures/format1/` is a data directory of format 1, written by the `tern` binary
//! itself (see `tests/fixtures/README.md` for how to make it again): queue `jobs` with items
//! `first` (flags 7), `second`, `expired` (exptime 1 s, long past), `third` (flags 4294967295,
//! absolute exptime in 2100) and `hi\r\nthere` (a fanout to `mail+jobs`); cursor `jobs.c` has
//! read `first`; cursor `jobs.f` opened `first` and aborted it (a failed read); a plain
//! `get jobs/open` of `first` was held, never closed, while the server stopped with SIGTERM.
//! The tests run on copies of it.

mod common;

use common::{copy_dir, expect_end, expect_item, expect_item_flags, Conn, Server};
use std::path::PathBuf;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/format1")
}

/// What every reader of `jobs` after the cursor's position sees: the expired item skipped.
#[track_caller]
fn expect_rest_of_jobs(c: &mut Conn, key: &str) {
    expect_item(c, key, b"second");
    expect_item_flags(c, key, 4294967295, b"third");
    expect_item(c, key, b"hi\r\nthere");
}

#[test]
fn a_format1_directory_is_served_as_it_was_left() {
    let server = Server::start_on_copy(&fixture(), &[]);
    let mut c = Conn::connect(&server);
    // Cursor c continues after `first`.
    expect_rest_of_jobs(&mut c, "jobs.c");
    expect_end(&mut c, "jobs.c");
    // Cursor f serves its failed read first, then continues after it.
    expect_item_flags(&mut c, "jobs.f", 7, b"first");
    expect_rest_of_jobs(&mut c, "jobs.f");
    expect_end(&mut c, "jobs.f");
    // A new cursor starts at the head, where the open read that was never closed is waiting.
    expect_item_flags(&mut c, "jobs.new/peek", 7, b"first");
    // New items get ids above the old ones: every cursor sees them next.
    c.set("jobs", b"later");
    expect_item(&mut c, "jobs.c", b"later");
    expect_item(&mut c, "jobs.f", b"later");
    // Plain readers: the open read is redelivered first, then the rest in order.
    expect_item_flags(&mut c, "jobs", 7, b"first");
    expect_rest_of_jobs(&mut c, "jobs");
    expect_item(&mut c, "jobs", b"later");
    expect_end(&mut c, "jobs");
    expect_item(&mut c, "mail", b"hi\r\nthere");
    expect_end(&mut c, "mail");
}

#[test]
fn an_unknown_format_version_refuses_to_start() {
    let tern = env!("CARGO_BIN_EXE_tern");
    let empty = tempfile::tempdir().unwrap();
    let exported = std::process::Command::new(tern)
        .args(["export", "--data"])
        .arg(empty.path())
        .output()
        .unwrap();
    assert!(
        !exported.status.success(),
        "export of an empty directory must fail"
    );
    let data = tempfile::tempdir().unwrap();
    copy_dir(&fixture(), data.path());
    // Mark the directory as written by a future format.
    {
        let db = sled::open(data.path().join("store-1")).unwrap();
        db.open_tree("meta")
            .unwrap()
            .insert("format", &99u64.to_be_bytes()[..])
            .unwrap();
        db.flush().unwrap();
    }
    let started = std::process::Command::new(tern)
        .args(["--listen", "127.0.0.1:0", "--data"])
        .arg(data.path())
        .output()
        .unwrap();
    assert!(!started.status.success());
    let stderr = String::from_utf8_lossy(&started.stderr);
    assert!(stderr.contains("format version 99"), "stderr: {stderr}");
    assert!(stderr.contains("reads version 2"), "stderr: {stderr}");
    // The refused directory still says what it is.
    let db = sled::open(data.path().join("store-1")).unwrap();
    let format = db
        .open_tree("meta")
        .unwrap()
        .get("format")
        .unwrap()
        .unwrap();
    assert_eq!(&format[..], &99u64.to_be_bytes()[..]);
}
