//! Test harness: starts the real `tern` binary on a free loopback port with a
//! temporary data directory, and talks to it with raw bytes.
//!
//! Every test owns its server, so tests run in parallel without sharing ports
//! or data.

#![allow(dead_code)]

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long we wait for the server to start accepting connections.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long we wait for the server process to exit after a signal.
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(15);
/// Default read timeout of a raw connection.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The version string the server must report (`VERSION tern-<semver>`).
pub fn version_string() -> String {
    format!("tern-{}", env!("CARGO_PKG_VERSION"))
}

/// A running `tern` process.
pub struct Server {
    child: Option<Child>,
    port: u16,
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
        let mut server = Server {
            child: None,
            port: 0,
            args: args.iter().map(|s| s.to_string()).collect(),
            data: tempfile::Builder::new()
                .prefix("tern-test-data")
                .tempdir()
                .expect("create temp data dir"),
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

/// Show bytes as an escaped string (`\r\n` visible), truncated around `focus`.
pub fn show(bytes: &[u8], focus: usize) -> String {
    const WINDOW: usize = 300;
    let start = focus.saturating_sub(WINDOW);
    let end = (focus + WINDOW).min(bytes.len());
    let start = start.min(end);
    let mut s = String::new();
    if start > 0 {
        s.push_str(&format!("[{start} bytes]…"));
    }
    for &b in &bytes[start..end] {
        s.extend(std::ascii::escape_default(b).map(char::from));
    }
    if end < bytes.len() {
        s.push_str(&format!("…[{} more bytes]", bytes.len() - end));
    }
    format!("\"{s}\" ({} bytes)", bytes.len())
}

/// Escape a whole (short) byte string.
pub fn esc(bytes: &[u8]) -> String {
    show(bytes, 0)
}

/// A raw client connection.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    timeout: Duration,
}

fn is_closed_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
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

impl Conn {
    pub fn connect(server: &Server) -> Conn {
        Conn::connect_addr(server.addr())
    }

    pub fn connect_addr(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        stream.set_nodelay(true).unwrap();
        stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(READ_TIMEOUT)).unwrap();
        Conn {
            stream,
            buf: Vec::new(),
            timeout: READ_TIMEOUT,
        }
    }

    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
        self.stream.set_read_timeout(Some(timeout)).unwrap();
    }

    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Write all bytes.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("send {}: {e}", show(bytes, 0)));
    }

    /// Write, ignoring errors (for peers that may already have closed).
    pub fn send_lossy(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes);
    }

    /// Read more bytes into the buffer. Ok(0) = closed.
    fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 64 * 1024];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Whatever is already buffered, plus what arrives within `wait`.
    fn grab_more(&mut self, wait: Duration) {
        self.stream.set_read_timeout(Some(wait)).unwrap();
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            match self.fill() {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        self.stream.set_read_timeout(Some(self.timeout)).unwrap();
    }

    /// Read exactly `want.len()` bytes and assert they equal `want`.
    #[track_caller]
    pub fn expect(&mut self, want: &[u8]) {
        let mut problem = None;
        loop {
            let n = self.buf.len().min(want.len());
            if self.buf[..n] != want[..n] {
                break;
            }
            if n == want.len() {
                self.buf.drain(..n);
                return;
            }
            match self.fill() {
                Ok(0) => {
                    problem = Some("connection closed".to_string());
                    break;
                }
                Ok(_) => {}
                Err(e) if is_timeout(&e) => {
                    problem = Some(format!("timed out after {:?}", self.timeout));
                    break;
                }
                Err(e) => {
                    problem = Some(format!("read error: {e}"));
                    break;
                }
            }
        }
        if problem.is_none() {
            // Mismatch: collect a little more to make the message useful.
            self.grab_more(Duration::from_millis(200));
        }
        let got = &self.buf[..];
        let first_diff = got
            .iter()
            .zip(want.iter())
            .position(|(a, b)| a != b)
            .unwrap_or(got.len().min(want.len()));
        panic!(
            "reply mismatch{}\n  expected: {}\n  received: {}\n  first difference at byte {}",
            problem.map(|p| format!(" ({p})")).unwrap_or_default(),
            show(want, first_diff),
            show(got, first_diff),
            first_diff
        );
    }

    /// Send a request and expect exactly this reply.
    #[track_caller]
    pub fn roundtrip(&mut self, req: &[u8], reply: &[u8]) {
        self.send(req);
        self.expect(reply);
    }

    /// Read one line, including its `\n` (and `\r` if any).
    #[track_caller]
    pub fn read_line(&mut self) -> Vec<u8> {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                return self.buf.drain(..=i).collect();
            }
            match self.fill() {
                Ok(0) => panic!(
                    "connection closed while reading a line; got {}",
                    esc(&self.buf)
                ),
                Ok(_) => {}
                Err(e) => panic!("read_line: {e}; got so far {}", esc(&self.buf)),
            }
        }
    }

    /// Read one line as a String without its `\r\n`.
    #[track_caller]
    pub fn read_line_str(&mut self) -> String {
        let line = self.read_line();
        assert!(
            line.ends_with(b"\r\n"),
            "reply line not terminated by \\r\\n: {}",
            esc(&line)
        );
        String::from_utf8_lossy(&line[..line.len() - 2]).into_owned()
    }

    /// Read exactly n bytes.
    #[track_caller]
    pub fn read_exact(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            match self.fill() {
                Ok(0) => panic!(
                    "connection closed after {} of {n} bytes: {}",
                    self.buf.len(),
                    show(&self.buf, 0)
                ),
                Ok(_) => {}
                Err(e) => panic!("read_exact({n}): {e}; got {}", show(&self.buf, 0)),
            }
        }
        self.buf.drain(..n).collect()
    }

    /// Read until the server closes the connection; returns everything received.
    /// A reset counts as closed. Panics on timeout.
    #[track_caller]
    pub fn read_until_closed(&mut self) -> Vec<u8> {
        loop {
            match self.fill() {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if is_closed_error(&e) => break,
                Err(e) if is_timeout(&e) => panic!(
                    "server did not close the connection within {:?}; received {}",
                    self.timeout,
                    esc(&self.buf)
                ),
                Err(e) => panic!("read_until_closed: {e}"),
            }
        }
        std::mem::take(&mut self.buf)
    }

    /// Assert the server closes the connection without sending anything more.
    #[track_caller]
    pub fn expect_closed(&mut self) {
        let rest = self.read_until_closed();
        assert!(
            rest.is_empty(),
            "expected the connection to close, but received {}",
            esc(&rest)
        );
    }

    /// Close our side completely.
    pub fn close(self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }

    /// Assert nothing is received for `wait` (the connection stays open and silent).
    #[track_caller]
    pub fn expect_silence(&mut self, wait: Duration) {
        self.grab_more(wait);
        assert!(
            self.buf.is_empty(),
            "expected no reply, received {}",
            esc(&self.buf)
        );
    }

    /// Write all bytes, returning the error instead of panicking.
    pub fn stream_write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Read one line; None if the connection closed, reset or timed out first.
    pub fn try_read_line(&mut self) -> Option<Vec<u8>> {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                return Some(self.buf.drain(..=i).collect());
            }
            match self.fill() {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// Read exactly n bytes; None if the connection ended first.
    pub fn try_read_exact(&mut self, n: usize) -> Option<Vec<u8>> {
        while self.buf.len() < n {
            match self.fill() {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
        Some(self.buf.drain(..n).collect())
    }

    // ---- protocol helpers ----

    /// `set <q> 0 0 <len>` and expect `STORED`.
    #[track_caller]
    pub fn set(&mut self, queue: &str, data: &[u8]) {
        self.set_flags(queue, 0, data);
    }

    #[track_caller]
    pub fn set_flags(&mut self, queue: &str, flags: u32, data: &[u8]) {
        let mut req = format!("set {queue} {flags} 0 {}\r\n", data.len()).into_bytes();
        req.extend_from_slice(data);
        req.extend_from_slice(b"\r\n");
        self.roundtrip(&req, b"STORED\r\n");
    }

    /// Send `get <key>` and parse a reply of at most one VALUE block.
    /// Returns (flags, data); asserts the VALUE line echoes the key.
    #[track_caller]
    pub fn get(&mut self, key: &str) -> Option<(u32, Vec<u8>)> {
        self.send(format!("get {key}\r\n").as_bytes());
        self.read_get_reply(key)
    }

    /// Parse a reply of at most one VALUE block for `key`, then `END`.
    #[track_caller]
    pub fn read_get_reply(&mut self, key: &str) -> Option<(u32, Vec<u8>)> {
        let line = self.read_line();
        if line == b"END\r\n" {
            return None;
        }
        let text = String::from_utf8_lossy(&line).into_owned();
        let parts: Vec<&str> = text.trim_end_matches("\r\n").split(' ').collect();
        assert!(
            parts.len() == 4 && parts[0] == "VALUE" && line.ends_with(b"\r\n"),
            "expected `VALUE {key} <flags> <bytes>\\r\\n` or `END\\r\\n`, got {}",
            esc(&line)
        );
        assert_eq!(parts[1], key, "VALUE line must echo the key exactly");
        let flags: u32 = parts[2].parse().expect("flags");
        let len: usize = parts[3].parse().expect("bytes");
        let data = self.read_exact(len);
        self.expect(b"\r\nEND\r\n");
        Some((flags, data))
    }

    /// `get <key>`, returning only the data.
    #[track_caller]
    pub fn get_data(&mut self, key: &str) -> Option<Vec<u8>> {
        self.get(key).map(|(_, d)| d)
    }

    /// `stats`, as an ordered list of (name, value).
    #[track_caller]
    pub fn stats(&mut self) -> Vec<(String, String)> {
        self.send(b"stats\r\n");
        let mut out = Vec::new();
        loop {
            let line = self.read_line_str();
            if line == "END" {
                return out;
            }
            let mut it = line.splitn(3, ' ');
            let stat = it.next().unwrap_or("");
            let name = it.next().unwrap_or("");
            let value = it.next();
            assert!(
                stat == "STAT" && !name.is_empty() && value.is_some(),
                "bad stats line {line:?}"
            );
            out.push((name.to_string(), value.unwrap().to_string()));
        }
    }

    /// One stat value, if present.
    #[track_caller]
    pub fn stat(&mut self, name: &str) -> Option<String> {
        self.stats()
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }

    /// One numeric stat; panics if missing.
    #[track_caller]
    pub fn stat_u64(&mut self, name: &str) -> u64 {
        let v = self
            .stat(name)
            .unwrap_or_else(|| panic!("stat {name} missing"));
        v.parse()
            .unwrap_or_else(|_| panic!("stat {name} is not a number: {v:?}"))
    }

    /// Poll `stats` until `name` has value `want` (as a string), up to `timeout`.
    #[track_caller]
    pub fn wait_stat(&mut self, name: &str, want: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.stat(name);
            if got.as_deref() == Some(want) {
                return;
            }
            if Instant::now() > deadline {
                panic!("stat {name} is {got:?}, expected {want:?} within {timeout:?}");
            }
            thread::sleep(Duration::from_millis(25));
        }
    }
}

/// Build a `set` request.
/// `get <key>` must return nothing.
#[track_caller]
pub fn expect_end(c: &mut Conn, key: &str) {
    c.roundtrip(format!("get {key}\r\n").as_bytes(), b"END\r\n");
}

/// Reads `key` with pipelined gets, `batch` per write, until `want` items came, waiting (up to
/// 100 s) while writers may still be producing; then `key` must have nothing more.
#[track_caller]
pub fn read_until(c: &mut Conn, key: &str, want: usize, batch: usize) -> Vec<Vec<u8>> {
    let request = format!("get {key}\r\n").repeat(batch);
    let mut seen = Vec::with_capacity(want);
    let deadline = Instant::now() + Duration::from_secs(100);
    while seen.len() < want {
        c.send(request.as_bytes());
        let mut empty = true;
        for _ in 0..batch {
            if let Some((_, data)) = c.read_get_reply(key) {
                seen.push(data);
                empty = false;
            }
        }
        if empty {
            assert!(
                Instant::now() < deadline,
                "{key} gave only {} of {want} items",
                seen.len()
            );
            thread::sleep(Duration::from_millis(5));
        }
    }
    expect_end(c, key);
    seen
}

pub fn set_req(queue: &str, flags: u32, exptime: i64, data: &[u8]) -> Vec<u8> {
    let mut req = format!("set {queue} {flags} {exptime} {}\r\n", data.len()).into_bytes();
    req.extend_from_slice(data);
    req.extend_from_slice(b"\r\n");
    req
}

/// Build the reply `VALUE <key> <flags> <len>\r\n<data>\r\n` (without END).
pub fn value_block(key: &str, flags: u32, data: &[u8]) -> Vec<u8> {
    let mut v = format!("VALUE {key} {flags} {}\r\n", data.len()).into_bytes();
    v.extend_from_slice(data);
    v.extend_from_slice(b"\r\n");
    v
}

/// `VALUE ... END` for a single key.
pub fn value_reply(key: &str, flags: u32, data: &[u8]) -> Vec<u8> {
    let mut v = value_block(key, flags, data);
    v.extend_from_slice(b"END\r\n");
    v
}

/// Concatenate byte strings.
pub fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// A deterministic pseudo-random payload of `len` bytes.
pub fn payload(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407)
        | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}
