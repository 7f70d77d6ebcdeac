//! The test side of `--metrics`: one `GET` over HTTP/1.1 (`Connection: close`, read to the
//! end), a Prometheus text scrape read into `name{labels}` → value, and `promtool`.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};

/// A response: status code and body.
pub struct HttpReply {
    pub status: u16,
    pub body: String,
}

/// `GET path` on `addr`; panics on a malformed response.
#[track_caller]
pub fn http_get(addr: SocketAddr, path: &str) -> HttpReply {
    let mut stream = TcpStream::connect(addr).expect("connect to the metrics listener");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .expect("read the HTTP response");
    let text = String::from_utf8(raw).expect("a UTF-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("headers end");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("bad status line in {head:?}"));
    assert!(
        head.to_ascii_lowercase().contains("content-length:"),
        "expected a Content-Length (no chunked body) in {head:?}"
    );
    HttpReply {
        status,
        body: body.to_string(),
    }
}

/// `GET /metrics`, which must answer 200, read into samples: `name{labels}` exactly as
/// written (`name` alone without labels) → value. Comment lines are checked to be HELP/TYPE.
#[track_caller]
pub fn scrape(addr: SocketAddr) -> BTreeMap<String, f64> {
    let reply = http_get(addr, "/metrics");
    assert_eq!(reply.status, 200, "{}", reply.body);
    let mut samples = BTreeMap::new();
    for line in reply.body.lines() {
        if line.starts_with("# HELP ") || line.starts_with("# TYPE ") || line.is_empty() {
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad sample line {line:?}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}"));
        assert!(
            samples.insert(series.to_string(), value).is_none(),
            "{series} twice"
        );
    }
    samples
}

/// The metric names of a scrape (`tern_x_bucket{…}` → `tern_x_bucket`).
pub fn metric_names(samples: &BTreeMap<String, f64>) -> std::collections::BTreeSet<String> {
    samples
        .keys()
        .map(|series| series.split('{').next().unwrap().to_string())
        .collect()
}

/// Runs `promtool ARGS` with `input` on its standard input; panics, showing what it said and
/// the input, unless it succeeds. promtool comes with Debian's `prometheus` package.
///
/// Where promtool is not installed (a fresh machine running the README's `cargo test`), this
/// check is skipped with a note on stderr, unless `TERN_REQUIRE_TOOLS` is set: `.ci/run` sets
/// it, so CI never skips it.
#[track_caller]
pub fn promtool(args: &[&str], input: &str) {
    let spawned = Command::new("promtool")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                && std::env::var_os("TERN_REQUIRE_TOOLS").is_none() =>
        {
            eprintln!(
                "promtool is not installed: `promtool {args:?}` skipped \
                 (Debian: apt-get install prometheus; set TERN_REQUIRE_TOOLS to make this fail)"
            );
            return;
        }
        Err(e) => panic!("promtool (Debian: apt-get install prometheus; .ci/run installs it): {e}"),
    };
    // A promtool that reads a file may exit without reading this (a broken pipe): its exit
    // status is what counts.
    let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool {args:?}: {}\n{}{}\n--- input ---\n{input}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
