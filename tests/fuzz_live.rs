//! Random and mutated command streams sent to a live server: no crash, every reply has a form
//! SPEC.md allows, and the server keeps serving other connections with its data intact.

mod common;

use common::{Conn, Server};
use proptest::prelude::*;
use std::io::Read;
use std::time::Duration;

/// Commands a client might send, valid or nearly so; mutations make them worse.
const SEEDS: &[&[u8]] = &[
    b"set q 0 0 5\r\nhello\r\n",
    b"set q+r 7 0 3 noreply\r\nabc\r\n",
    b"set q 0 -1 2\r\nzz\r\n",
    b"set q 0 0 70000\r\n",
    b"set q 0 0 3\r\nabcde\r\n",
    b"get q\r\n",
    b"get q/open\r\n",
    b"get q/close/open\r\n",
    b"get q/abort\r\n",
    b"get q/peek r q.c\r\n",
    b"get q.c/open\r\n",
    b"get q/t=5\r\n",
    b"gets q r.c/t=1/open\r\n",
    b"delete r\r\n",
    b"flush q.c\r\n",
    b"flush_all 0 noreply\r\n",
    b"stats\r\n",
    b"version\r\n",
    b"\r\n",
    b"GET q\n",
    b"get q q\r\n",
    b"stats malloc\r\n",
    b"dump_stats\r\n",
    b"ms q 5 F3 T0 O1 k c\r\nhello\r\n",
    b"ms q+r 3 q\r\nabc\r\n",
    b"ms q 3 ME\r\nabc\r\n",
    b"ms q 70000 q\r\n",
    b"ms cQ== 1 b k\r\nx\r\n",
    b"mg q v f s t k O9 c\r\n",
    b"mg q/open v\r\n",
    b"mg q/close v q\r\n",
    b"mg q/t=5 k\r\n",
    b"mg q\r\n",
    b"mg cQ== b k v\r\n",
    b"mg q.c/peek v\r\n",
    b"md q.c q\r\n",
    b"md r k O2\r\n",
    b"mn\r\n",
    b"me q\r\n",
    b"mg q x\r\n",
];

fn stream() -> impl Strategy<Value = Vec<u8>> {
    let seed = proptest::sample::select(SEEDS).prop_map(<[u8]>::to_vec);
    let mutated = (seed.clone(), any::<usize>(), any::<u8>(), 0..3usize).prop_map(
        |(mut bytes, at, byte, how)| {
            let at = at % (bytes.len() + 1);
            match how {
                0 => bytes.insert(at, byte),
                1 if at < bytes.len() => bytes[at] = byte,
                _ => bytes.truncate(at),
            }
            bytes
        },
    );
    let noise = proptest::collection::vec(any::<u8>(), 0..64);
    let piece = prop_oneof![4 => seed, 4 => mutated, 1 => noise];
    proptest::collection::vec(piece, 1..24).prop_map(|pieces| pieces.concat())
}

/// Checks that `replies` is a sequence of lines, VALUE and VA blocks SPEC.md allows.
fn check_replies(mut replies: &[u8]) -> Result<(), String> {
    const LINES: &[&str] = &["STORED", "END", "DELETED", "NOT_FOUND", "OK", "ERROR", "}"];
    const PREFIXES: &[&str] = &[
        "VERSION 1.6.0 tern-",
        "STAT ",
        "CLIENT_ERROR ",
        "SERVER_ERROR ",
        // dump_stats
        "queue '",
        "  ",
    ];
    // Meta replies: a code, alone or followed by flags.
    const META: &[&str] = &["HD", "EN", "NF", "MN"];
    while !replies.is_empty() {
        let end = match replies.windows(2).position(|w| w == b"\r\n") {
            Some(end) => end,
            // A reply cut short when the server closed the connection (line too long).
            None => return Ok(()),
        };
        let line = String::from_utf8_lossy(&replies[..end]).into_owned();
        replies = &replies[end + 2..];
        let meta = |code: &&str| line == *code || line.starts_with(&format!("{code} "));
        if LINES.contains(&line.as_str())
            || PREFIXES.iter().any(|p| line.starts_with(p))
            || META.iter().any(meta)
        {
            continue;
        }
        let fields: Vec<&str> = line.split(' ').collect();
        let bytes = match fields.as_slice() {
            ["VALUE", _key, flags, bytes] if flags.parse::<u32>().is_ok() => bytes,
            ["VA", bytes, ..] => bytes,
            _ => return Err(format!("reply line of no allowed form: {line:?}")),
        };
        let bytes: usize = bytes
            .parse()
            .map_err(|_| format!("bad block size in {line:?}"))?;
        if replies.len() < bytes + 2 {
            return Ok(());
        }
        if &replies[bytes..bytes + 2] != b"\r\n" {
            return Err(format!("block of {bytes} bytes not followed by CRLF"));
        }
        replies = &replies[bytes + 2..];
    }
    Ok(())
}

/// Sends `input`, then reads replies until the server has been quiet for a moment.
fn send_and_collect(server: &Server, input: &[u8]) -> Vec<u8> {
    let mut conn = Conn::connect(server);
    conn.send_lossy(input);
    conn.set_timeout(Duration::from_millis(150));
    let mut replies = Vec::new();
    let mut chunk = [0u8; 65536];
    loop {
        match conn.stream_read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => replies.extend_from_slice(&chunk[..n]),
        }
    }
    replies
}

trait StreamRead {
    fn stream_read(&mut self, buf: &mut [u8]) -> std::io::Result<usize>;
}

impl StreamRead for Conn {
    fn stream_read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut stream = self.stream();
        stream.read(buf)
    }
}

#[test]
fn random_command_streams_never_break_the_server() {
    let server = Server::start_with(&["--max-item-size", "65536", "--sync", "never"]);
    // An item written before the storm must survive it. The storm never names this queue but
    // does send flush_all, which keeps reads held open: so hold it open.
    let mut keeper = Conn::connect(&server);
    keeper.roundtrip(b"set keep 3 0 4\r\nsafe\r\n", b"STORED\r\n");
    keeper.roundtrip(
        b"get keep/open\r\n",
        b"VALUE keep/open 3 4\r\nsafe\r\nEND\r\n",
    );

    let config = ProptestConfig {
        cases: 96,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(input in stream())| {
        let replies = send_and_collect(&server, &input);
        if let Err(problem) = check_replies(&replies) {
            return Err(TestCaseError::fail(format!(
                "{problem}\ninput: {}\nreplies: {}",
                common::esc(&input),
                common::esc(&replies)
            )));
        }
        // Another connection is still served.
        let mut other = Conn::connect(&server);
        other.roundtrip(b"version\r\n", &common::version_reply());
    });

    keeper.roundtrip(b"get keep/abort\r\n", b"END\r\n");
    keeper.roundtrip(
        b"get keep/peek\r\n",
        b"VALUE keep/peek 3 4\r\nsafe\r\nEND\r\n",
    );
}
