//! Request and reply bytes: builders for what a client sends and what the server must answer
//! (SPEC.md), and `show`/`esc` to print bytes readably in failure messages.

/// Error replies SPEC.md gives, as the server must send them.
pub const BAD_FORMAT: &[u8] = b"CLIENT_ERROR bad command line format\r\n";
pub const BAD_NAME: &[u8] = b"CLIENT_ERROR bad queue name\r\n";
pub const BAD_OPTIONS: &[u8] = b"CLIENT_ERROR bad get options\r\n";
pub const CLOSE_FIRST: &[u8] = b"CLIENT_ERROR close current item first\r\n";
pub const TOO_LARGE: &[u8] = b"SERVER_ERROR object too large for cache\r\n";
pub const BAD_CHUNK: &[u8] = b"CLIENT_ERROR bad data chunk\r\n";
pub const INVALID_FLAG: &[u8] = b"CLIENT_ERROR invalid flag\r\n";
pub const MODE_NOT_SUPPORTED: &[u8] = b"CLIENT_ERROR mode not supported for a queue\r\n";

/// The server's version as `stats` reports it (`tern-<semver>`).
pub fn version_string() -> String {
    format!("tern-{}", env!("CARGO_PKG_VERSION"))
}

/// What follows `VERSION ` in the reply to `version`: memcached's protocol level, then the
/// server's version (`1.6.0 tern-<semver>`).
pub fn version_text() -> String {
    format!("1.6.0 {}", version_string())
}

/// The whole reply to `version`.
pub fn version_reply() -> Vec<u8> {
    format!("VERSION {}\r\n", version_text()).into_bytes()
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

/// Build a `set` request.
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

/// Parse an item payload `p<producer>-<seq>`, as the concurrent tests write them.
pub fn parse_item(d: &[u8]) -> (usize, u64) {
    let s = std::str::from_utf8(d).expect("utf8 item");
    let (p, n) = s
        .strip_prefix('p')
        .and_then(|r| r.split_once('-'))
        .unwrap_or_else(|| panic!("unexpected item {s:?}"));
    (p.parse().unwrap(), n.parse().unwrap())
}
