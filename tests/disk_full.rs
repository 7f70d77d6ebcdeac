//! Disk full, on a real small filesystem: a 32 MiB tmpfs mounted over the data directory
//! (needs root, as CI and the developers' machines have). Failing writes get `SERVER_ERROR`,
//! reads keep working, writes resume once space returns, nothing stored is lost; `/healthz`
//! (`--metrics`) says 503 while writes are refused and 200 again once they are accepted.

mod common;

use common::{http_get, wait_until, Conn, Server};
use std::process::Command;
use std::time::{Duration, Instant};

fn run(program: &str, args: &[&str]) {
    let status = Command::new(program)
        .args(args)
        .status()
        .expect("run command");
    assert!(status.success(), "{program} {args:?} failed: {status}");
}

/// Free bytes of the filesystem holding `path`.
fn free_bytes(path: &std::path::Path) -> u64 {
    let output = Command::new("df")
        .args(["-B1", "--output=avail"])
        .arg(path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines().nth(1).unwrap().trim().parse().unwrap()
}

struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn item(i: usize) -> Vec<u8> {
    format!("{i:08}").repeat(125).into_bytes()
}

#[test]
fn disk_full_refuses_writes_keeps_reads_and_recovers() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "this test mounts a tmpfs and needs root"
    );
    let mut server = Server::start_with_metrics(&["--min-free-mb", "4", "--sync", "always"]);
    server.stop();
    let data = server.data_dir().to_path_buf();
    run(
        "mount",
        &[
            "-t",
            "tmpfs",
            "-o",
            "size=32m",
            "tmpfs",
            data.to_str().unwrap(),
        ],
    );
    let _mount = Mount(data.clone());
    server.start_again();

    // Leave about 8 MiB free, then write 1000-byte items until the server refuses.
    let ballast = data.join("ballast");
    let leave = 8 * 1024 * 1024;
    let fill = free_bytes(&data).saturating_sub(leave);
    run(
        "fallocate",
        &["-l", &fill.to_string(), ballast.to_str().unwrap()],
    );
    let health = http_get(server.metrics_addr(), "/healthz");
    assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));
    let mut conn = Conn::connect(&server);
    let mut stored = 0;
    let refusal = loop {
        let line = conn.set_reply("q", &item(stored));
        if line != b"STORED\r\n" {
            break line;
        }
        stored += 1;
        assert!(stored < 100_000, "never refused a write on a full disk");
    };
    assert_eq!(refusal, b"SERVER_ERROR disk full\r\n");
    assert!(
        stored > 100,
        "refused too early: only {stored} items stored"
    );

    let health = http_get(server.metrics_addr(), "/healthz");
    assert_eq!(health.status, 503, "{}", health.body);
    assert_eq!(
        health.body,
        "refusing writes: disk full (free space under --min-free-mb)\n"
    );

    // Reads keep working: the first two items come back, in order.
    for i in 0..2 {
        let (_, data) = conn.get("q").expect("an item while the disk is full");
        assert_eq!(data, item(i));
    }

    // Space returns: writes succeed again (the watermark is re-measured every 50 ms).
    std::fs::remove_file(&ballast).unwrap();
    let deadline = Instant::now() + common::CONDITION_TIMEOUT;
    loop {
        if conn.set_reply("q", &item(stored)) == b"STORED\r\n" {
            stored += 1;
            break;
        }
        assert!(
            Instant::now() < deadline,
            "writes did not resume after space returned"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    wait_until("/healthz to say 200 again", || {
        http_get(server.metrics_addr(), "/healthz").status == 200
    });

    // Nothing stored is lost, across a restart too.
    drop(conn);
    server.restart();
    let mut conn = Conn::connect(&server);
    for i in 2..stored {
        let (_, data) = conn
            .get("q")
            .unwrap_or_else(|| panic!("item {i} of {stored} lost"));
        assert_eq!(data, item(i), "item {i} out of order");
    }
    conn.roundtrip(b"get q\r\n", b"END\r\n");
    server.stop();
}
