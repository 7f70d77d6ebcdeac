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
    expect_served_as_left(&server);
}

/// What a server on the fixture's data (migrated, or exported and imported) serves.
#[track_caller]
fn expect_served_as_left(server: &Server) {
    let mut c = Conn::connect(server);
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

/// The export of a format 1 database, made from its sled trees directly: every queue and its
/// items in id order, then every cursor's position and failed reads, as `src/queue/dump.rs`
/// writes them (queues and cursors sorted by name).
fn export_of_format1(store: &std::path::Path) -> Vec<u8> {
    let db = sled::open(store).unwrap();
    let meta = db.open_tree("meta").unwrap();
    assert_eq!(
        &meta.get("format").unwrap().unwrap()[..],
        &1u64.to_be_bytes()[..]
    );
    let number = |bytes: &[u8]| u64::from_be_bytes(bytes[..8].try_into().unwrap());
    let record = |out: &mut Vec<u8>, prefix: &str, key: &[u8], value: &[u8]| {
        let flags = u32::from_be_bytes(value[..4].try_into().unwrap());
        let expires = match number(&value[4..12]) {
            u64::MAX => "never".to_string(),
            ms => ms.to_string(),
        };
        let (enqueued, data) = (number(&value[12..20]), &value[20..]);
        let (id, len) = (number(key), data.len());
        out.extend(format!("{prefix} {id} {flags} {expires} {enqueued} {len}\n").bytes());
        out.extend_from_slice(data);
        out.push(b'\n');
    };
    let mut names: Vec<Vec<u8>> = db.tree_names().into_iter().map(|n| n.to_vec()).collect();
    names.sort();
    let queues: Vec<String> = names
        .iter()
        .filter_map(|name| name.strip_prefix(b"q."))
        .map(|name| String::from_utf8(name.to_vec()).unwrap())
        .collect();
    let mut out = b"tern-export 1\n".to_vec();
    let mut records = 0;
    for queue in &queues {
        out.extend(format!("queue {queue}\n").bytes());
        records += 1;
        for entry in db.open_tree(format!("q.{queue}")).unwrap().iter() {
            let (key, value) = entry.unwrap();
            record(&mut out, &format!("item {queue}"), &key, &value);
            records += 1;
        }
    }
    for entry in meta.scan_prefix("c.") {
        let (key, position) = entry.unwrap();
        let key = std::str::from_utf8(&key[2..]).unwrap().to_string();
        let (queue, cursor) = key.split_once('.').unwrap();
        let position = number(&position);
        out.extend(format!("cursor {queue} {cursor} {position}\n").bytes());
        records += 1;
        for entry in db.open_tree(format!("f.{queue}.{cursor}")).unwrap().iter() {
            let (key, value) = entry.unwrap();
            record(&mut out, &format!("failed {queue} {cursor}"), &key, &value);
            records += 1;
        }
    }
    out.extend(format!("end {records}\n").bytes());
    out
}

fn tern_on(command: &str, data: &std::path::Path, stdin: &[u8]) -> Vec<u8> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_tern"))
        .args([command, "--data"])
        .arg(data)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "tern {command} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

#[test]
fn a_format1_directory_exports_and_imports_whole() {
    // What the fixture holds, read from its sled trees (on a copy: sled writes when it opens).
    let raw = tempfile::tempdir().unwrap();
    copy_dir(&fixture(), raw.path());
    let expected = export_of_format1(&raw.path().join("store-1"));
    // Two queues, both cursors and the failed read, every item (the expired one too: it is
    // stored until a reader skips it).
    let text = String::from_utf8_lossy(&expected);
    assert_eq!(text.matches("\nqueue ").count(), 2, "{text}");
    assert_eq!(text.matches("\nitem jobs ").count(), 5, "{text}");
    assert_eq!(text.matches("\nitem mail ").count(), 1, "{text}");
    assert_eq!(text.matches("\ncursor jobs ").count(), 2, "{text}");
    assert_eq!(text.matches("\nfailed jobs f ").count(), 1, "{text}");

    // `tern export` of the format 1 directory gives exactly that.
    let source = tempfile::tempdir().unwrap();
    copy_dir(&fixture(), source.path());
    let exported = tern_on("export", source.path(), b"");
    assert!(
        exported.starts_with(b"tern-export 1\n"),
        "stdout of `tern export` must be the stream alone, nothing before it: {}",
        common::esc(&exported[..exported.len().min(300)])
    );
    assert_eq!(common::esc(&exported), common::esc(&expected));
    // An export changes nothing: the directory is still format 1, for the build that wrote it.
    let current = std::fs::read_to_string(source.path().join("CURRENT")).unwrap();
    assert_eq!(current, "store-1\n");
    assert!(!source.path().join("store-2").exists());
    assert_eq!(
        common::esc(&tern_on("export", source.path(), b"")),
        common::esc(&expected)
    );

    // Imported into a fresh directory, which then exports the same stream again.
    let target = tempfile::tempdir().unwrap();
    tern_on("import", target.path(), &exported);
    let again = tern_on("export", target.path(), b"");
    assert_eq!(common::esc(&again), common::esc(&exported));

    // And a server on the imported directory serves what one on the fixture does.
    let server = Server::start_on_copy(target.path(), &[]);
    expect_served_as_left(&server);
}
