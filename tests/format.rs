//! The data directory's format version: a directory written in a format this build does not
//! know makes start-up fail with a clear message, and its data is left as it was.

#[test]
fn an_unknown_format_version_refuses_to_start() {
    let data = tempfile::tempdir().unwrap();
    let tern = env!("CARGO_BIN_EXE_tern");
    // Create a data directory, then mark it as written by a future format.
    let created = std::process::Command::new(tern)
        .args(["export", "--data"])
        .arg(data.path())
        .output()
        .unwrap();
    assert!(
        !created.status.success(),
        "export of an empty directory must fail"
    );
    std::fs::create_dir_all(data.path().join("store-1")).unwrap();
    std::fs::write(data.path().join("CURRENT"), "store-1\n").unwrap();
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
    assert!(stderr.contains("reads version 1"), "stderr: {stderr}");
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
