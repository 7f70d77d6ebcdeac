//! One blocking connection: a `TcpStream` with the memcache replies the tool reads (`STORED`, a
//! one-key `get`, one-line replies).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

pub struct Client {
    r: BufReader<TcpStream>,
    w: TcpStream,
    line: Vec<u8>,
}

pub fn bad(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

pub fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).trim_end().to_string()
}

impl Client {
    pub fn connect(addr: &str) -> io::Result<Client> {
        let s = TcpStream::connect(addr)
            .map_err(|e| io::Error::new(e.kind(), format!("connect {addr}: {e}")))?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        let w = s.try_clone()?;
        Ok(Client {
            r: BufReader::with_capacity(1 << 16, s),
            w,
            line: Vec::with_capacity(256),
        })
    }

    pub fn send(&mut self, buf: &[u8]) -> io::Result<()> {
        self.w.write_all(buf)
    }

    fn read_line(&mut self) -> io::Result<()> {
        self.line.clear();
        let n = self.r.read_until(b'\n', &mut self.line)?;
        if n == 0 || !self.line.ends_with(b"\n") {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "server closed the connection",
            ));
        }
        Ok(())
    }

    /// Reply to a `set`: Ok(Ok(())) for STORED, Ok(Err(line)) for any other line.
    pub fn read_stored(&mut self) -> io::Result<Result<(), String>> {
        self.read_line()?;
        if self.line == b"STORED\r\n" {
            Ok(Ok(()))
        } else {
            Ok(Err(lossy(&self.line)))
        }
    }

    /// Reply to a one-key `get`: Ok(Ok(true)) with the item in `data`, Ok(Ok(false)) for an
    /// empty reply, Ok(Err(line)) for an error line.
    pub fn read_get(&mut self, data: &mut Vec<u8>) -> io::Result<Result<bool, String>> {
        self.read_line()?;
        if self.line == b"END\r\n" {
            return Ok(Ok(false));
        }
        if !self.line.starts_with(b"VALUE ") {
            return Ok(Err(lossy(&self.line)));
        }
        let len: usize = std::str::from_utf8(&self.line)
            .ok()
            .and_then(|l| l.split_ascii_whitespace().nth(3))
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| bad(format!("bad VALUE line {:?}", lossy(&self.line))))?;
        data.clear();
        data.resize(len + 2, 0);
        self.r.read_exact(data)?;
        if !data.ends_with(b"\r\n") {
            return Err(bad("data block not followed by \\r\\n".into()));
        }
        data.truncate(len);
        self.read_line()?;
        if self.line != b"END\r\n" {
            return Err(bad(format!(
                "expected END after the item, got {:?}",
                lossy(&self.line)
            )));
        }
        Ok(Ok(true))
    }

    /// Sends one command and returns its reply's first line (for delete, flush...).
    pub fn command(&mut self, cmd: &str) -> io::Result<String> {
        self.send(format!("{cmd}\r\n").as_bytes())?;
        self.read_line()?;
        Ok(lossy(&self.line))
    }
}
