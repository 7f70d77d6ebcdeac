//! Starting, stopping and killing the real `tern` binary: each `Server` owns its process, a
//! free loopback port and a temporary data directory, so tests run in parallel without
//! sharing ports or data.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// The most we wait for the server to accept connections (a safety net: start-up is polled).
pub const START_TIMEOUT: Duration = Duration::from_secs(60);
/// The most we wait for the server process to exit after a signal (polled, too).
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(60);

/// A running `tern` process.
pub struct Server {
    child: Option<Child>,
    port: u16,
    /// With `--metrics`: its port, picked afresh with the client port.
    metrics_port: Option<u16>,
    args: Vec<String>,
    data: TempDir,
    logs: TempDir,
    starts: u32,
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().unwrap().port()
}

enum StartError {
    /// The process exited before accepting connections (e.g. port taken).
    Exited(ExitStatus),
    /// It did not accept within START_TIMEOUT.
    Timeout,
}

impl Server {
    /// Start a server with default options.
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    /// Start a server with extra command-line arguments (after `--listen` and `--data`).
    pub fn start_with(args: &[&str]) -> Server {
        Server::start_in(temp_data_dir(), args, false)
    }

    /// Start a server with `--metrics` on a free loopback port (see `metrics_addr`).
    pub fn start_with_metrics(args: &[&str]) -> Server {
        Server::start_in(temp_data_dir(), args, true)
    }

    /// Start a server on a copy of the data directory `from` (a checked-in fixture, say), so
    /// the original is never written to.
    pub fn start_on_copy(from: &Path, args: &[&str]) -> Server {
        let data = temp_data_dir();
        copy_dir(from, data.path());
        Server::start_in(data, args, false)
    }

    fn start_in(data: TempDir, args: &[&str], metrics: bool) -> Server {
        let mut server = Server {
            child: None,
            port: 0,
            metrics_port: None,
            args: args.iter().map(|s| s.to_string()).collect(),
            data,
            logs: tempfile::Builder::new()
                .prefix("tern-test-log")
                .tempdir()
                .expect("create temp log dir"),
            starts: 0,
        };
        // A fresh port could in theory be taken by someone else between our probe
        // and the server's bind: retry with another port.
        let mut last = String::new();
        for _ in 0..5 {
            server.port = free_port();
            server.metrics_port = metrics.then(free_port);
            match server.spawn_and_wait() {
                Ok(()) => return server,
                Err(StartError::Exited(status)) => {
                    last = format!("server exited with {status} before accepting");
                }
                Err(StartError::Timeout) => {
                    server.kill_child();
                    panic!(
                        "tern did not accept connections on 127.0.0.1:{} within {:?}\n--- server log ---\n{}",
                        server.port,
                        START_TIMEOUT,
                        server.log()
                    );
                }
            }
        }
        panic!(
            "could not start tern: {last}\n--- server log ---\n{}",
            server.log()
        );
    }

    fn log_path(&self) -> PathBuf {
        self.logs.path().join(format!("tern-{}.log", self.starts))
    }

    /// The combined stdout/stderr of the latest start of the server.
    pub fn log(&self) -> String {
        std::fs::read(self.log_path())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_else(|e| format!("(no log: {e})"))
    }

    fn spawn_and_wait(&mut self) -> Result<(), StartError> {
        self.starts += 1;
        let log = File::create(self.log_path()).expect("create log file");
        let log2 = log.try_clone().expect("clone log file");
        let listen = format!("127.0.0.1:{}", self.port);
        let child = Command::new(env!("CARGO_BIN_EXE_tern"))
            .arg("--listen")
            .arg(&listen)
            .arg("--data")
            .arg(self.data.path())
            .args(&self.args)
            .args(
                self.metrics_port
                    .map(|port| ["--metrics".to_string(), format!("127.0.0.1:{port}")])
                    .into_iter()
                    .flatten(),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .spawn()
            .expect("spawn tern binary");
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                return Err(StartError::Exited(status));
            }
            // Accepting is not enough: another test's server may hold this port while ours
            // still recovers (then fails to bind and exits); ours reports our child's pid.
            let ours = self.child.as_ref().unwrap().id();
            if served_pid(self.addr()) == Some(ours) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(StartError::Timeout);
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The `--metrics` address (a server started with `start_with_metrics`).
    pub fn metrics_addr(&self) -> SocketAddr {
        let port = self.metrics_port.expect("server started without --metrics");
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn data_dir(&self) -> &Path {
        self.data.path()
    }

    /// The process id of the running server.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server is not running").id()
    }

    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            None => false,
            Some(c) => c.try_wait().unwrap().is_none(),
        }
    }

    /// Wait (up to EXIT_TIMEOUT) for the process to exit and return its status.
    /// Panics (after killing it) if it does not exit.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let child = self.child.as_mut().expect("server is not running");
        let deadline = Instant::now() + EXIT_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                self.child = None;
                panic!(
                    "tern did not exit within {EXIT_TIMEOUT:?}\n--- server log ---\n{}",
                    self.log()
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Send a signal to the server process.
    pub fn signal(&self, sig: libc::c_int) {
        let pid = self.pid() as libc::pid_t;
        // SAFETY: plain kill(2) on our own child's pid, which we have not reaped yet.
        let rc = unsafe { libc::kill(pid, sig) };
        assert_eq!(rc, 0, "kill({pid}, {sig}) failed");
    }

    /// Graceful stop: SIGTERM, then wait; returns the exit status.
    pub fn stop(&mut self) -> ExitStatus {
        self.signal(libc::SIGTERM);
        self.wait_exit()
    }

    /// SIGKILL the server (a crash) and reap it. Start it again with `restart()`.
    pub fn kill9(&mut self) {
        self.signal(libc::SIGKILL);
        let child = self.child.as_mut().unwrap();
        child.wait().expect("wait for killed tern");
        self.child = None;
    }

    /// Graceful restart: SIGTERM (asserting exit status 0) if it is running, then
    /// start again on the same port with the same data directory and arguments.
    /// After `kill9()` it simply starts the server again.
    pub fn restart(&mut self) {
        if self.child.is_some() {
            let status = self.stop();
            assert!(
                status.success(),
                "tern exited with {status} on SIGTERM (expected status 0)\n--- server log ---\n{}",
                self.log()
            );
        }
        self.start_again();
    }

    /// Start the (stopped) server again, same port and data dir, retrying the bind.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "server is still running");
        let mut last = String::new();
        for _ in 0..40 {
            match self.spawn_and_wait() {
                Ok(()) => return,
                Err(StartError::Exited(status)) => {
                    last = format!("server exited with {status} before accepting");
                    thread::sleep(Duration::from_millis(250));
                }
                Err(StartError::Timeout) => {
                    self.kill_child();
                    panic!(
                        "tern did not accept connections again within {START_TIMEOUT:?}\n--- server log ---\n{}",
                        self.log()
                    );
                }
            }
        }
        panic!(
            "could not restart tern on port {}: {last}\n--- server log ---\n{}",
            self.port,
            self.log()
        );
    }

    fn kill_child(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill_child();
    }
}

fn temp_data_dir() -> TempDir {
    tempfile::Builder::new()
        .prefix("tern-test-data")
        .tempdir()
        .expect("create temp data dir")
}

/// Copy a directory tree (a data directory: plain files and folders).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A `--config` file in its own temp dir (kept alive by the returned guard), and its path.
pub fn config_file(toml: &str) -> (TempDir, String) {
    let dir = tempfile::Builder::new()
        .prefix("tern-test-config")
        .tempdir()
        .unwrap();
    let path = dir.path().join("tern.toml");
    std::fs::write(&path, toml).unwrap();
    let path = path.to_str().unwrap().to_string();
    (dir, path)
}

/// The pid that the server listening on `addr` reports in `stats`, if any answers.
fn served_pid(addr: SocketAddr) -> Option<u32> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream.write_all(b"stats\r\n").ok()?;
    let mut reply = Vec::new();
    let mut chunk = [0u8; 4096];
    while !reply.ends_with(b"END\r\n") {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        reply.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&reply);
    text.lines()
        .find_map(|line| line.strip_prefix("STAT pid "))
        .and_then(|pid| pid.trim().parse().ok())
}
