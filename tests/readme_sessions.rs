//! The README's timed sessions (open timeout, max age, replay), replayed against a live server
//! byte for byte, so they stay true. A session is a ```` ```text ```` block whose first line is
//! `$ tern <options>`; then one line per request, `<connection>> <request> → <reply>`, where
//! `⏎` in the request is `\r\n`, ` / ` in the reply separates its lines, and two spaces then
//! `(` start a comment. `[<n> s pass]` or `[<n> ms pass]` moves the server's (fake) clock, so
//! the test never waits for one.

mod common;

use common::{start_with_clock, Conn, FakeClock, Server};
use std::collections::HashMap;

/// The README's sessions: their options and lines.
fn sessions() -> Vec<(Vec<String>, Vec<String>)> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let mut sessions = Vec::new();
    for block in readme.split("```text\n$ tern").skip(1) {
        let block = &block[..block.find("```").expect("a closed block")];
        let mut lines = block.lines();
        let args = lines.next().unwrap().split_whitespace().map(String::from);
        sessions.push((args.collect(), lines.map(String::from).collect()));
    }
    sessions
}

/// Runs one session line: a request and its exact reply, or a move of the clock.
fn run_line(line: &str, server: &Server, conns: &mut HashMap<String, Conn>, clock: &mut FakeClock) {
    let line = line.trim();
    if line.is_empty() {
        return;
    }
    if let Some(pass) = line
        .strip_prefix('[')
        .and_then(|l| l.strip_suffix(" pass]"))
    {
        let (n, unit) = pass.split_once(' ').expect("[<n> <unit> pass]");
        let n: u64 = n.parse().expect("a number of s or ms");
        clock.advance(match unit {
            "s" => n * 1000,
            "ms" => n,
            _ => panic!("unknown unit in {line:?}"),
        });
        return;
    }
    let (conn, rest) = line.split_once("> ").expect("<connection>> <request>");
    let (request, reply) = rest.split_once(" → ").expect("<request> → <reply>");
    let reply = reply.split("  (").next().unwrap().trim();
    let request = request.trim().replace('⏎', "\r\n");
    let reply = reply.replace(" / ", "\r\n") + "\r\n";
    let conn = conns
        .entry(conn.to_string())
        .or_insert_with(|| Conn::connect(server));
    conn.roundtrip(request.as_bytes(), reply.as_bytes());
}

#[test]
fn the_readme_sessions_run_as_shown() {
    let sessions = sessions();
    assert!(sessions.len() >= 3, "README sessions not found");
    for (args, lines) in sessions {
        let mut clock = FakeClock::new();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let server = start_with_clock(&clock, &args);
        let mut conns = HashMap::new();
        for line in &lines {
            run_line(line, &server, &mut conns, &mut clock);
        }
    }
}
