//! `Conn`, a raw client connection that reads replies byte by byte and compares them
//! exactly, with helpers for the common requests.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use super::server::Server;
use super::wait::CONDITION_TIMEOUT;
use super::wire::{esc, set_req, show, value_reply};

/// Default read timeout of a raw connection.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

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

    /// Send `set <q> 0 0 <len>` and return the reply line, whatever it is.
    #[track_caller]
    pub fn set_reply(&mut self, queue: &str, data: &[u8]) -> Vec<u8> {
        self.send(&set_req(queue, 0, 0, data));
        self.read_line()
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

    /// One `stats`, asserting each named stat has its value (names without `queue_`).
    #[track_caller]
    pub fn expect_stats(&mut self, want: &[(&str, u64)]) {
        let stats = self.stats();
        let got: Vec<(&str, Option<u64>)> = want
            .iter()
            .map(|(name, _)| {
                let full = format!("queue_{name}");
                let value = stats.iter().find(|(n, _)| *n == full);
                (*name, value.and_then(|(_, v)| v.parse().ok()))
            })
            .collect();
        let want: Vec<(&str, Option<u64>)> = want.iter().map(|(n, v)| (*n, Some(*v))).collect();
        assert_eq!(got, want, "stats");
    }

    /// Poll `stats` until `name` has value `want` (as a string). The bound is only a safety
    /// net ([`CONDITION_TIMEOUT`]): the value is what the test waits for.
    #[track_caller]
    pub fn wait_stat(&mut self, name: &str, want: &str) {
        let deadline = Instant::now() + CONDITION_TIMEOUT;
        loop {
            let got = self.stat(name);
            if got.as_deref() == Some(want) {
                return;
            }
            if Instant::now() > deadline {
                panic!("stat {name} is {got:?}, expected {want:?} within {CONDITION_TIMEOUT:?}");
            }
            thread::sleep(Duration::from_millis(25));
        }
    }

    /// Reads `key` until END; the payloads in order.
    #[track_caller]
    pub fn drain(&mut self, key: &str) -> Vec<Vec<u8>> {
        drain_by(key, || self.get_data(key))
    }

    /// [`Conn::drain`], the payloads as UTF-8 strings.
    #[track_caller]
    pub fn drain_strings(&mut self, key: &str) -> Vec<String> {
        drain_by(key, || {
            self.get_data(key)
                .map(|d| String::from_utf8(d).expect("utf8 item"))
        })
    }
}

/// Calls `next` (one read of `key`) until it returns nothing; what it returned, in order.
#[track_caller]
pub fn drain_by<T>(key: &str, mut next: impl FnMut() -> Option<T>) -> Vec<T> {
    let mut out = Vec::new();
    while let Some(item) = next() {
        out.push(item);
        assert!(out.len() < 1_000_000, "drain of {key} does not end");
    }
    out
}

/// `get <key>` must return nothing.
#[track_caller]
pub fn expect_end(c: &mut Conn, key: &str) {
    c.roundtrip(format!("get {key}\r\n").as_bytes(), b"END\r\n");
}

/// `get <key>` must return exactly this one item, flags 0.
#[track_caller]
pub fn expect_item(c: &mut Conn, key: &str, data: &[u8]) {
    expect_item_flags(c, key, 0, data);
}

/// `get <key>` must return exactly this one item with these flags.
#[track_caller]
pub fn expect_item_flags(c: &mut Conn, key: &str, flags: u32, data: &[u8]) {
    c.roundtrip(
        format!("get {key}\r\n").as_bytes(),
        &value_reply(key, flags, data),
    );
}

/// Sets every payload (flags 0) into `queue`, `batch` requests per write, each of which must
/// be answered `STORED`.
#[track_caller]
pub fn set_pipelined(
    c: &mut Conn,
    queue: &str,
    payloads: impl IntoIterator<Item = Vec<u8>>,
    batch: usize,
) {
    let mut payloads = payloads.into_iter().peekable();
    while payloads.peek().is_some() {
        let mut req = Vec::new();
        let mut n = 0;
        for data in payloads.by_ref().take(batch) {
            req.extend(set_req(queue, 0, 0, &data));
            n += 1;
        }
        c.send(&req);
        c.expect(&b"STORED\r\n".repeat(n));
    }
}

/// Producer `p` writes the items `p<p>-<seq>` (see [`parse_item`]) for every `seq` in `seqs`,
/// in order, with [`set_pipelined`].
#[track_caller]
pub fn produce(c: &mut Conn, queue: &str, p: usize, seqs: std::ops::Range<u64>, batch: usize) {
    let payloads = seqs.map(|i| format!("p{p}-{i}").into_bytes());
    set_pipelined(c, queue, payloads, batch);
}

/// Sends `count` pipelined `get <key>`, `batch` per write, and returns the items they brought
/// (an empty reply, `END`, brings none).
#[track_caller]
pub fn get_pipelined(c: &mut Conn, key: &str, count: usize, batch: usize) -> Vec<Vec<u8>> {
    let mut items = Vec::new();
    let mut sent = 0;
    while sent < count {
        let now = (count - sent).min(batch);
        c.send(format!("get {key}\r\n").repeat(now).as_bytes());
        for _ in 0..now {
            if let Some((_, data)) = c.read_get_reply(key) {
                items.push(data);
            }
        }
        sent += now;
    }
    items
}

/// Reads `key` with pipelined gets, `batch` per write, until `want` items came, waiting while
/// writers may still be producing (up to [`CONDITION_TIMEOUT`]); then `key` must have nothing
/// more.
#[track_caller]
pub fn read_until(c: &mut Conn, key: &str, want: usize, batch: usize) -> Vec<Vec<u8>> {
    let mut seen = Vec::with_capacity(want);
    let deadline = Instant::now() + CONDITION_TIMEOUT;
    while seen.len() < want {
        let got = get_pipelined(c, key, batch, batch);
        if got.is_empty() {
            assert!(
                Instant::now() < deadline,
                "{key} gave only {} of {want} items",
                seen.len()
            );
            thread::sleep(Duration::from_millis(5));
        }
        seen.extend(got);
    }
    expect_end(c, key);
    seen
}
