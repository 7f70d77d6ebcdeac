//! Replies, encoded straight into a connection's output buffer.

use super::Error;
use std::fmt::Display;
use std::io::Write;

/// One reply line (or `VALUE` block).
pub enum Reply<'a> {
    Stored,
    Deleted,
    NotFound,
    End,
    Ok,
    /// `VALUE <key> <flags> <bytes>` + data block.
    Value {
        key: &'a [u8],
        flags: u32,
        data: &'a [u8],
    },
    /// `VERSION <text>`.
    Version(&'a str),
    /// `STAT <name> <value>`.
    Stat(&'a str, &'a dyn Display),
    /// A protocol error: `ERROR`, `CLIENT_ERROR …` or `SERVER_ERROR object too large…`.
    Error(Error),
    /// `SERVER_ERROR <reason>`: the server could not do it (storage failure, queue full…).
    ServerError(&'a str),
}

impl Reply<'_> {
    /// Appends the reply, with its `\r\n`, to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Reply::Stored => out.extend_from_slice(b"STORED\r\n"),
            Reply::Deleted => out.extend_from_slice(b"DELETED\r\n"),
            Reply::NotFound => out.extend_from_slice(b"NOT_FOUND\r\n"),
            Reply::End => out.extend_from_slice(b"END\r\n"),
            Reply::Ok => out.extend_from_slice(b"OK\r\n"),
            Reply::Value { key, flags, data } => {
                out.reserve(key.len() + data.len() + 32);
                out.extend_from_slice(b"VALUE ");
                out.extend_from_slice(key);
                // Writing into a Vec cannot fail.
                let _ = write!(out, " {} {}\r\n", flags, data.len());
                out.extend_from_slice(data);
                out.extend_from_slice(b"\r\n");
            }
            Reply::Version(text) => {
                let _ = write!(out, "VERSION {}\r\n", text);
            }
            Reply::Stat(name, value) => {
                let _ = write!(out, "STAT {} {}\r\n", name, value);
            }
            Reply::Error(error) => {
                let _ = write!(out, "{}\r\n", error);
            }
            Reply::ServerError(reason) => {
                out.extend_from_slice(b"SERVER_ERROR ");
                // A reason is one line, whatever the storage layer put in it.
                out.extend(
                    reason
                        .bytes()
                        .map(|b| if b.is_ascii_control() { b' ' } else { b }),
                );
                out.extend_from_slice(b"\r\n");
            }
        }
    }
}
