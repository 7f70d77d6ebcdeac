//! Table tests of the parser and encoder (see SPEC.md).
//!
//! Expectations are written from SPEC.md, never derived from the parser itself. This module
//! holds the shared constants and helpers; each submodule is one section of the tests.

use super::*;

mod connection;
mod expiry;
mod meta;
mod property;
mod rejected;
mod replies;
mod valid;

/// The default `--max-item-size` (1 MiB).
const MAX: u32 = 1 << 20;

const ERROR: &[u8] = b"ERROR\r\n";
const BAD_FORMAT: &[u8] = b"CLIENT_ERROR bad command line format\r\n";
const BAD_NAME: &[u8] = b"CLIENT_ERROR bad queue name\r\n";
const BAD_OPTIONS: &[u8] = b"CLIENT_ERROR bad get options\r\n";
const BAD_CHUNK: &[u8] = b"CLIENT_ERROR bad data chunk\r\n";
const TOO_LONG: &[u8] = b"CLIENT_ERROR line too long\r\n";
const TOO_LARGE: &[u8] = b"SERVER_ERROR object too large for cache\r\n";
const INVALID_FLAG: &[u8] = b"CLIENT_ERROR invalid flag\r\n";
const MODE_NOT_SUPPORTED: &[u8] = b"CLIENT_ERROR mode not supported for a queue\r\n";

/// Every reply SPEC.md allows the parser to produce for a rejected input.
const PARSE_REPLIES: &[&[u8]] = &[
    ERROR,
    BAD_FORMAT,
    BAD_NAME,
    BAD_OPTIONS,
    BAD_CHUNK,
    TOO_LONG,
    TOO_LARGE,
    INVALID_FLAG,
    MODE_NOT_SUPPORTED,
];

const NO_OPTS: GetOptions = GetOptions {
    timeout_ms: None,
    open: false,
    close: false,
    abort: false,
    peek: false,
    replay: None,
};

// ---------------------------------------------------------------------------------------------
// Helpers

fn target(queue: &str, cursor: Option<&str>) -> Target {
    Target {
        queue: queue.into(),
        cursor: cursor.map(Into::into),
    }
}

fn key(raw: &str, queue: &str, cursor: Option<&str>, options: GetOptions) -> Key {
    Key {
        raw: raw.as_bytes().to_vec(),
        target: target(queue, cursor),
        options,
    }
}

/// A key that is a bare queue name.
fn plain(name: &str) -> Key {
    key(name, name, None, NO_OPTS)
}

fn get(keys: Vec<Key>) -> Command {
    Command::Get(Get { keys, error: None })
}

fn set(queues: &[&str], flags: u32, exptime: i64, data: &[u8], noreply: bool) -> Command {
    Command::Set(Set {
        queues: queues.iter().map(|q| q.to_string()).collect(),
        flags,
        exptime,
        data: data.to_vec(),
        noreply,
    })
}

fn delete(queue: &str, cursor: Option<&str>, noreply: bool) -> Command {
    Command::Delete {
        target: target(queue, cursor),
        noreply,
    }
}

fn flush(queue: &str, cursor: Option<&str>, noreply: bool) -> Command {
    Command::Flush {
        target: target(queue, cursor),
        noreply,
    }
}

fn encode(reply: Reply) -> Vec<u8> {
    let mut out = Vec::new();
    reply.encode(&mut out);
    out
}

fn error_bytes(error: Error) -> Vec<u8> {
    encode(Reply::Error(error))
}

fn show(bytes: &[u8]) -> String {
    let shown = bytes.escape_ascii().to_string();
    if shown.len() > 200 {
        format!("{}… ({} bytes)", &shown[..200], bytes.len())
    } else {
        shown
    }
}

fn case(input: impl AsRef<[u8]>, command: Command) -> (Vec<u8>, Command) {
    (input.as_ref().to_vec(), command)
}

/// A valid `get q` line of exactly `len` bytes (without its ending), padded with spaces.
fn get_line_of(len: usize) -> Vec<u8> {
    format!("get{}q", " ".repeat(len - 4)).into_bytes()
}
