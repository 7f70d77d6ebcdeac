//! Table tests of the parser and encoder (see SPEC.md).
//!
//! Expectations are written from SPEC.md, never derived from the parser itself.

use super::*;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;

/// The default `--max-item-size` (1 MiB).
const MAX: u32 = 1 << 20;

const ERROR: &[u8] = b"ERROR\r\n";
const BAD_FORMAT: &[u8] = b"CLIENT_ERROR bad command line format\r\n";
const BAD_NAME: &[u8] = b"CLIENT_ERROR bad queue name\r\n";
const BAD_OPTIONS: &[u8] = b"CLIENT_ERROR bad get options\r\n";
const BAD_CHUNK: &[u8] = b"CLIENT_ERROR bad data chunk\r\n";
const TOO_LONG: &[u8] = b"CLIENT_ERROR line too long\r\n";
const TOO_LARGE: &[u8] = b"SERVER_ERROR object too large for cache\r\n";

/// Every reply SPEC.md allows the parser to produce for a rejected input.
const PARSE_REPLIES: &[&[u8]] = &[
    ERROR,
    BAD_FORMAT,
    BAD_NAME,
    BAD_OPTIONS,
    BAD_CHUNK,
    TOO_LONG,
    TOO_LARGE,
];

const NO_OPTS: GetOptions = GetOptions {
    timeout_ms: None,
    open: false,
    close: false,
    abort: false,
    peek: false,
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

/// Valid single commands and what they parse to; each consumes its whole input.
fn valid_cases() -> Vec<(Vec<u8>, Command)> {
    let all_bytes: Vec<u8> = b"\r\n".iter().copied().chain(0..=255).collect();
    let big = vec![b'x'; 5000];
    let n200 = "n".repeat(200);
    let opts = |f: fn(&mut GetOptions)| {
        let mut options = NO_OPTS;
        f(&mut options);
        options
    };
    let mut long_line = get_line_of(MAX_LINE);
    long_line.extend_from_slice(b"\r\n");

    vec![
        // set
        case(
            "set q 0 0 5\r\nhello\r\n",
            set(&["q"], 0, 0, b"hello", false),
        ),
        case(
            "set a+b+a 1 2 3\r\nabc\r\n",
            set(&["a", "b"], 1, 2, b"abc", false),
        ),
        case(
            "set b+a 0 0 1\r\nx\r\n",
            set(&["b", "a"], 0, 0, b"x", false),
        ),
        case(
            "set q 0 0 5 noreply\r\nhello\r\n",
            set(&["q"], 0, 0, b"hello", true),
        ),
        case(
            "set q 4294967295 0 1\r\nx\r\n",
            set(&["q"], u32::MAX, 0, b"x", false),
        ),
        case("set q 0 -1 1\r\nx\r\n", set(&["q"], 0, -1, b"x", false)),
        case(
            "set q 0 -9223372036854775808 1\r\nx\r\n",
            set(&["q"], 0, i64::MIN, b"x", false),
        ),
        case(
            "set q 0 9223372036854775807 1\r\nx\r\n",
            set(&["q"], 0, i64::MAX, b"x", false),
        ),
        case(
            "set q 0 2592000 1\r\nx\r\n",
            set(&["q"], 0, 2_592_000, b"x", false),
        ),
        case(
            "set q 0 2592001 1\r\nx\r\n",
            set(&["q"], 0, 2_592_001, b"x", false),
        ),
        case("set q 0 0 0\r\n\r\n", set(&["q"], 0, 0, b"", false)),
        case(
            "set q 0 0 4\r\n\r\n\r\n\r\n",
            set(&["q"], 0, 0, b"\r\n\r\n", false),
        ),
        case(
            [&b"set q 0 0 258\r\n"[..], &all_bytes, b"\r\n"].concat(),
            set(&["q"], 0, 0, &all_bytes, false),
        ),
        case(
            [&b"set q 0 0 5000\r\n"[..], &big, b"\r\n"].concat(),
            set(&["q"], 0, 0, &big, false),
        ),
        case("SET q 0 0 1\r\nx\r\n", set(&["q"], 0, 0, b"x", false)),
        case("Set q 0 0 1\r\nx\r\n", set(&["q"], 0, 0, b"x", false)),
        case(
            "set  q   7  0   1 \r\nx\r\n",
            set(&["q"], 7, 0, b"x", false),
        ),
        case("set q 0 0 2\nhi\r\n", set(&["q"], 0, 0, b"hi", false)),
        case(
            format!("set {n200}+AZaz09_-: 0 0 1\r\nx\r\n"),
            set(&[&n200, "AZaz09_-:"], 0, 0, b"x", false),
        ),
        // get / gets
        case("get q\r\n", get(vec![plain("q")])),
        case("gets q\r\n", get(vec![plain("q")])),
        case("GET q\r\n", get(vec![plain("q")])),
        case("GeTs q\r\n", get(vec![plain("q")])),
        case("get q\n", get(vec![plain("q")])),
        case("get   a    b  \r\n", get(vec![plain("a"), plain("b")])),
        case("get AZaz09_-:\r\n", get(vec![plain("AZaz09_-:")])),
        case(
            "get a b.c d/peek\r\n",
            get(vec![
                plain("a"),
                key("b.c", "b", Some("c"), NO_OPTS),
                key("d/peek", "d", None, opts(|o| o.peek = true)),
            ]),
        ),
        case(
            "get q.c\r\n",
            get(vec![key("q.c", "q", Some("c"), NO_OPTS)]),
        ),
        case(
            "get q/t=0\r\n",
            get(vec![key(
                "q/t=0",
                "q",
                None,
                opts(|o| o.timeout_ms = Some(0)),
            )]),
        ),
        case(
            "get q/t=18446744073709551615\r\n",
            get(vec![key(
                "q/t=18446744073709551615",
                "q",
                None,
                opts(|o| o.timeout_ms = Some(u64::MAX)),
            )]),
        ),
        case(
            "get q.c/t=10/close/open\r\n",
            get(vec![key(
                "q.c/t=10/close/open",
                "q",
                Some("c"),
                opts(|o| {
                    o.timeout_ms = Some(10);
                    o.close = true;
                    o.open = true;
                }),
            )]),
        ),
        case(
            "get q.c/abort a/open\r\n",
            get(vec![
                key("q.c/abort", "q", Some("c"), opts(|o| o.abort = true)),
                key("a/open", "a", None, opts(|o| o.open = true)),
            ]),
        ),
        case(
            format!("get {n200}.{n200}/open\r\n"),
            get(vec![key(
                &format!("{n200}.{n200}/open"),
                &n200,
                Some(&n200),
                opts(|o| o.open = true),
            )]),
        ),
        // delete / flush
        case("delete q\r\n", delete("q", None, false)),
        case("delete q.c\r\n", delete("q", Some("c"), false)),
        case("delete q noreply\r\n", delete("q", None, true)),
        case("delete q.c noreply\r\n", delete("q", Some("c"), true)),
        case("DELETE  q\n", delete("q", None, false)),
        case("flush q\r\n", flush("q", None, false)),
        case("flush q.c\r\n", flush("q", Some("c"), false)),
        case("flush q noreply\r\n", flush("q", None, true)),
        case("flush q.c noreply\r\n", flush("q", Some("c"), true)),
        case("Flush q\r\n", flush("q", None, false)),
        // flush_all
        case("flush_all\r\n", Command::FlushAll { noreply: false }),
        case("flush_all 0\r\n", Command::FlushAll { noreply: false }),
        case("flush_all 60\r\n", Command::FlushAll { noreply: false }),
        case("flush_all noreply\r\n", Command::FlushAll { noreply: true }),
        case(
            "flush_all 60 noreply\r\n",
            Command::FlushAll { noreply: true },
        ),
        case("FLUSH_ALL\n", Command::FlushAll { noreply: false }),
        // the rest
        case("version\r\n", Command::Version),
        case("VERSION\r\n", Command::Version),
        case("stats\r\n", Command::Stats),
        case("stats\n", Command::Stats),
        case("quit\r\n", Command::Quit),
        case("shutdown\r\n", Command::Shutdown),
        case("  version  \r\n", Command::Version),
        // a command line of exactly MAX_LINE bytes is fine
        case(long_line, get(vec![plain("q")])),
    ]
}

// ---------------------------------------------------------------------------------------------
// Valid input

#[test]
fn valid_commands_parse_and_consume_exactly_their_bytes() {
    for (input, command) in valid_cases() {
        assert_eq!(
            parse(&input, MAX),
            Ok(Some((command, input.len()))),
            "input {}",
            show(&input)
        );
    }
}

#[test]
fn every_strict_prefix_of_a_valid_command_is_incomplete() {
    for (input, _) in valid_cases() {
        for end in 0..input.len() {
            assert_eq!(
                parse(&input[..end], MAX),
                Ok(None),
                "prefix {} of {}",
                show(&input[..end]),
                show(&input)
            );
        }
    }
}

#[test]
fn pipelined_commands_are_parsed_one_at_a_time() {
    let cases = valid_cases();
    for (first, first_command) in &cases {
        for (second, second_command) in &cases {
            let buf = [first.as_slice(), second].concat();
            assert_eq!(
                parse(&buf, MAX),
                Ok(Some((first_command.clone(), first.len()))),
                "first of {}",
                show(&buf)
            );
            assert_eq!(
                parse(&buf[first.len()..], MAX),
                Ok(Some((second_command.clone(), second.len()))),
                "second of {}",
                show(&buf)
            );
        }
    }
}

/// Calls `f` with every permutation of `items`.
fn permutations<'a>(items: &mut Vec<&'a str>, k: usize, f: &mut dyn FnMut(&[&'a str])) {
    if k == items.len() {
        return f(items);
    }
    for i in k..items.len() {
        items.swap(k, i);
        permutations(items, k + 1, f);
        items.swap(k, i);
    }
}

/// All subsets of the four flag options, with and without `t=7`, as (words, options).
fn option_sets() -> Vec<(Vec<&'static str>, GetOptions)> {
    let mut sets = Vec::new();
    for bits in 0..16u8 {
        for timeout in [None, Some(7)] {
            let options = GetOptions {
                timeout_ms: timeout,
                open: bits & 1 != 0,
                close: bits & 2 != 0,
                abort: bits & 4 != 0,
                peek: bits & 8 != 0,
            };
            let words = [(1, "open"), (2, "close"), (4, "abort"), (8, "peek")]
                .into_iter()
                .filter(|(bit, _)| bits & bit != 0)
                .map(|(_, word)| word)
                .chain(timeout.map(|_| "t=7"))
                .collect();
            sets.push((words, options));
        }
    }
    sets
}

/// SPEC: `peek` with `open`, `close` or `abort`, and `abort` with `open` or `close`, are
/// forbidden; everything else combines, in any order.
fn legal(o: &GetOptions) -> bool {
    !(o.peek && (o.open || o.close || o.abort)) && !(o.abort && (o.open || o.close))
}

#[test]
fn get_options_in_every_combination_and_order() {
    let mut legal_seen = 0;
    for (mut words, options) in option_sets() {
        permutations(&mut words, 0, &mut |words| {
            for (base, queue, cursor) in [("q", "q", None), ("q.c", "q", Some("c"))] {
                let raw: String = std::iter::once(base)
                    .chain(words.iter().copied())
                    .collect::<Vec<_>>()
                    .join("/");
                let line = format!("get {raw}\r\n");
                let expected = if legal(&options) {
                    legal_seen += 1;
                    Get {
                        keys: vec![key(&raw, queue, cursor, options)],
                        error: None,
                    }
                } else {
                    Get {
                        keys: vec![],
                        error: Some(Error::BadGetOptions),
                    }
                };
                assert_eq!(
                    parse(line.as_bytes(), MAX),
                    Ok(Some((Command::Get(expected), line.len()))),
                    "input {line:?}"
                );
            }
        });
    }
    // Orders of the legal sets, for a queue and a cursor. Without t=: none, four single
    // options, open+close in 2 orders (7); with t=: 1 + 4 × 2 + 3! (15).
    assert_eq!(legal_seen, (7 + 15) * 2);
}

// ---------------------------------------------------------------------------------------------
// Rejected input

/// A rejected input and what SPEC says happens to it.
struct Bad {
    input: Vec<u8>,
    reply: &'static [u8],
    consumed: usize,
    discard: u64,
    silent: bool,
    max: u32,
}

/// A rejection that consumes the whole input and discards nothing more.
fn bad(input: impl AsRef<[u8]>, reply: &'static [u8]) -> Bad {
    let input = input.as_ref().to_vec();
    Bad {
        consumed: input.len(),
        input,
        reply,
        discard: 0,
        silent: false,
        max: MAX,
    }
}

impl Bad {
    fn consumed(self, consumed: usize) -> Bad {
        Bad { consumed, ..self }
    }
    fn discard(self, discard: u64) -> Bad {
        Bad { discard, ..self }
    }
    fn silent(self) -> Bad {
        Bad {
            silent: true,
            ..self
        }
    }
    fn max(self, max: u32) -> Bad {
        Bad { max, ..self }
    }
}

fn check_rejections(cases: Vec<Bad>) {
    for case in cases {
        let what = show(&case.input);
        match parse(&case.input, case.max) {
            Err(rejection) => {
                assert_eq!(
                    show(&error_bytes(rejection.error)),
                    show(case.reply),
                    "reply to {what}"
                );
                assert_eq!(rejection.consumed, case.consumed, "consumed of {what}");
                assert_eq!(rejection.discard, case.discard, "discard of {what}");
                assert_eq!(rejection.silent, case.silent, "silent of {what}");
            }
            other => panic!("{what} gave {other:?}, expected {}", show(case.reply)),
        }
    }
}

#[test]
fn malformed_lines_get_their_spec_reply() {
    check_rejections(vec![
        // empty line, unknown command
        bad("\r\n", ERROR),
        bad("\n", ERROR),
        bad("   \r\n", ERROR),
        bad("bogus\r\n", ERROR),
        bad("gett q\r\n", ERROR),
        bad("incr q 1\r\n", ERROR),
        bad("bogus\r\nget q\r\n", ERROR).consumed(7),
        // command name without arguments
        bad("get\r\n", BAD_FORMAT),
        bad("gets\r\n", BAD_FORMAT),
        bad("get   \r\n", BAD_FORMAT),
        bad("GET\n", BAD_FORMAT),
        bad("delete\r\n", BAD_FORMAT),
        bad("flush\r\n", BAD_FORMAT),
        bad("set\r\n", BAD_FORMAT),
        // extra or wrong tokens
        bad("version x\r\n", BAD_FORMAT),
        bad("stats items\r\n", BAD_FORMAT),
        bad("quit now\r\n", BAD_FORMAT),
        bad("shutdown now\r\n", BAD_FORMAT),
        bad("delete q r\r\n", BAD_FORMAT),
        bad("delete q noreply x\r\n", BAD_FORMAT),
        bad("flush q noreply noreply\r\n", BAD_FORMAT),
        bad("flush_all x\r\n", BAD_FORMAT),
        bad("flush_all -1\r\n", BAD_FORMAT),
        bad("flush_all 1 2\r\n", BAD_FORMAT),
        bad("flush_all noreply 5\r\n", BAD_FORMAT),
        // bad names in delete / flush
        bad("delete q.\r\n", BAD_NAME),
        bad("delete .c\r\n", BAD_NAME),
        bad("delete q.c.d\r\n", BAD_NAME),
        bad("flush q/open\r\n", BAD_NAME),
        bad("flush a+b noreply\r\n", BAD_NAME),
    ]);
}

#[test]
fn malformed_set_headers_get_their_spec_reply() {
    check_rejections(vec![
        // names come first; with valid numbers the block is skipped to stay in sync
        bad("set q.c 0 0 5\r\n", BAD_NAME).discard(7),
        bad("set q! 0 0 5\r\nhello\r\n", BAD_NAME)
            .consumed(14)
            .discard(7),
        bad("set q! 0 0 5 noreply\r\n", BAD_NAME).discard(7),
        bad("set a++b 0 0 1\r\n", BAD_NAME).discard(3),
        bad("set +a 0 0 1\r\n", BAD_NAME).discard(3),
        bad("set a+ 0 0 1\r\n", BAD_NAME).discard(3),
        bad("set a+b.c 0 0 1\r\n", BAD_NAME).discard(3),
        bad("set q! 0 0 4294967295\r\n", BAD_NAME).discard(4_294_967_297),
        bad("set q! x 0 5\r\n", BAD_NAME),
        bad("set q! 0 0\r\n", BAD_NAME),
        bad("set q! 0 0 5 yes\r\n", BAD_NAME),
        // numbers: flags (u32)
        bad("set q x 0 5\r\n", BAD_FORMAT),
        bad("set q -1 0 5\r\n", BAD_FORMAT),
        bad("set q 1.5 0 5\r\n", BAD_FORMAT),
        bad("set q 4294967296 0 5\r\n", BAD_FORMAT),
        bad("set q 99999999999999999999999 0 5\r\n", BAD_FORMAT),
        // exptime (i64)
        bad("set q 0 x 5\r\n", BAD_FORMAT),
        bad("set q 0 --1 5\r\n", BAD_FORMAT),
        bad("set q 0 - 5\r\n", BAD_FORMAT),
        bad("set q 0 9223372036854775808 5\r\n", BAD_FORMAT),
        bad("set q 0 -9223372036854775809 5\r\n", BAD_FORMAT),
        // bytes (u32)
        bad("set q 0 0 x\r\n", BAD_FORMAT),
        bad("set q 0 0 -1\r\n", BAD_FORMAT),
        bad("set q 0 0 5x\r\n", BAD_FORMAT),
        bad("set q 0 0 4294967296\r\n", BAD_FORMAT),
        // sixth token, missing tokens
        bad("set q 0 0 5 yes\r\n", BAD_FORMAT),
        bad("set q 0 0 5 noreplyx\r\n", BAD_FORMAT),
        bad("set q 0 0 5 noreply noreply\r\n", BAD_FORMAT),
        bad("set q 0 0\r\n", BAD_FORMAT),
        bad("set q 0\r\n", BAD_FORMAT),
        bad("set q\r\n", BAD_FORMAT),
        // no data block is expected after a bad header: the rest is the next command
        bad("set q x 0 5\r\nhello\r\n", BAD_FORMAT).consumed(13),
    ]);
}

#[test]
fn oversized_and_badly_terminated_blocks() {
    check_rejections(vec![
        // too large: replied at once on the header, the block is discarded as it arrives
        bad("set q 0 0 1048577\r\n", TOO_LARGE).discard(1_048_579),
        bad("set q 0 0 1048577 noreply\r\n", TOO_LARGE)
            .discard(1_048_579)
            .silent(),
        bad("set q 0 0 4294967295\r\n", TOO_LARGE).discard(4_294_967_297),
        bad("set q 0 0 6\r\nhello!\r\n", TOO_LARGE)
            .max(5)
            .consumed(13)
            .discard(8),
        bad("set q 0 0 1\r\n", TOO_LARGE).max(0).discard(3),
        // bad data chunk: line + bytes + 2 consumed, the rest is the next command
        bad("set q 0 0 5\r\nhelloXY", BAD_CHUNK),
        bad("set q 0 0 5\r\nhelloXYget q\r\n", BAD_CHUNK).consumed(20),
        bad("set q 0 0 5\r\nhello\n\r", BAD_CHUNK),
        bad("set q 0 0 5\r\nhello\r\r", BAD_CHUNK),
        bad("set q 0 0 0\r\n\n\r", BAD_CHUNK),
        bad("set q 0 0 5 noreply\r\nhelloXY", BAD_CHUNK).silent(),
    ]);
    // the size limit itself is fine
    assert_eq!(
        parse(b"set q 0 0 5\r\nhello\r\n", 5),
        Ok(Some((set(&["q"], 0, 0, b"hello", false), 20)))
    );
    assert_eq!(
        parse(b"set q 0 0 0\r\n\r\n", 0),
        Ok(Some((set(&["q"], 0, 0, b"", false), 15)))
    );
}

#[test]
fn names_allow_only_the_spec_alphabet() {
    let legal = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b':');
    for b in (0..=255u8).filter(|&b| !legal(b) && b != b' ' && b != b'\n') {
        let name = [b"a", &[b][..], b"b"].concat();
        let line =
            |prefix: &str, suffix: &str| [prefix.as_bytes(), &name, suffix.as_bytes()].concat();
        // '+' joins fanout targets in set, '.' separates a cursor, '/' starts get options
        let mut cases = vec![];
        if b != b'+' {
            cases.push(bad(line("set ", " 0 0 1\r\n"), BAD_NAME).discard(3));
        }
        if b != b'.' {
            cases.push(bad(line("delete ", "\r\n"), BAD_NAME));
            cases.push(bad(line("flush ", "\r\n"), BAD_NAME));
        }
        check_rejections(cases);
        if b != b'.' && b != b'/' {
            let input = line("get ", "\r\n");
            assert_get_error(&input, &[], BAD_NAME);
        }
    }
}

#[test]
fn names_are_one_to_two_hundred_bytes() {
    let n200 = "n".repeat(200);
    let n201 = "n".repeat(201);
    for name in [n200.clone(), format!("q.{n200}"), format!("{n200}.c")] {
        assert!(matches!(
            parse(format!("delete {name}\r\n").as_bytes(), MAX),
            Ok(Some((Command::Delete { .. }, _)))
        ));
    }
    for name in [n201.clone(), format!("q.{n201}"), format!("{n201}.c")] {
        check_rejections(vec![
            bad(format!("delete {name}\r\n"), BAD_NAME),
            bad(format!("flush {name} noreply\r\n"), BAD_NAME),
        ]);
        assert_get_error(format!("get {name}\r\n").as_bytes(), &[], BAD_NAME);
    }
    check_rejections(vec![
        bad(format!("set {n201} 0 0 1\r\n"), BAD_NAME).discard(3),
        bad(format!("set a+{n201} 0 0 1\r\n"), BAD_NAME).discard(3),
    ]);
}

/// `input` parses to a `get` of the keys `good` (raw) followed by the error `reply`.
fn assert_get_error(input: &[u8], good: &[&str], reply: &[u8]) {
    let what = show(input);
    match parse(input, MAX) {
        Ok(Some((Command::Get(Get { keys, error }), consumed))) => {
            let raws: Vec<String> = keys
                .iter()
                .map(|k| String::from_utf8_lossy(&k.raw).into_owned())
                .collect();
            assert_eq!(raws, good, "good keys of {what}");
            let error = error.unwrap_or_else(|| panic!("{what}: no error"));
            assert_eq!(show(&error_bytes(error)), show(reply), "reply to {what}");
            assert_eq!(consumed, input.len(), "consumed of {what}");
        }
        other => panic!("{what} gave {other:?}"),
    }
}

#[test]
fn bad_get_keys_stop_the_command_there() {
    let cases: &[(&str, &[&str], &[u8])] = &[
        // names
        ("get q.\r\n", &[], BAD_NAME),
        ("get .c\r\n", &[], BAD_NAME),
        ("get q.c.d\r\n", &[], BAD_NAME),
        ("get /open\r\n", &[], BAD_NAME),
        ("get q./open\r\n", &[], BAD_NAME),
        ("get a+b\r\n", &[], BAD_NAME),
        // options
        ("get q/bogus\r\n", &[], BAD_OPTIONS),
        ("get q/OPEN\r\n", &[], BAD_OPTIONS),
        ("get q/open/open\r\n", &[], BAD_OPTIONS),
        ("get q/close/close\r\n", &[], BAD_OPTIONS),
        ("get q/abort/abort\r\n", &[], BAD_OPTIONS),
        ("get q/peek/peek\r\n", &[], BAD_OPTIONS),
        ("get q/t=1/t=2\r\n", &[], BAD_OPTIONS),
        ("get q/t=1/open/t=1\r\n", &[], BAD_OPTIONS),
        ("get q/peek/open\r\n", &[], BAD_OPTIONS),
        ("get q/close/peek\r\n", &[], BAD_OPTIONS),
        ("get q/peek/abort\r\n", &[], BAD_OPTIONS),
        ("get q/abort/open\r\n", &[], BAD_OPTIONS),
        ("get q/close/abort\r\n", &[], BAD_OPTIONS),
        ("get q/t=-1\r\n", &[], BAD_OPTIONS),
        ("get q/t=abc\r\n", &[], BAD_OPTIONS),
        ("get q/t=1.5\r\n", &[], BAD_OPTIONS),
        ("get q/t=\r\n", &[], BAD_OPTIONS),
        ("get q/t\r\n", &[], BAD_OPTIONS),
        ("get q/\r\n", &[], BAD_OPTIONS),
        ("get q//open\r\n", &[], BAD_OPTIONS),
        ("get q/open/\r\n", &[], BAD_OPTIONS),
        ("get q.c/\r\n", &[], BAD_OPTIONS),
        // a bad key in the middle: the good keys before it, the error instead of END
        ("get a b! c\r\n", &["a"], BAD_NAME),
        ("get a b/bogus c\r\n", &["a"], BAD_OPTIONS),
        ("get a/open b.c c.d.e d\r\n", &["a/open", "b.c"], BAD_NAME),
        ("gets a b c/peek/open\n", &["a", "b"], BAD_OPTIONS),
    ];
    for (input, good, reply) in cases {
        assert_get_error(input.as_bytes(), good, reply);
    }
}

#[test]
fn command_lines_are_at_most_max_line_bytes() {
    let line = get_line_of(MAX_LINE);
    let get_q = || get(vec![plain("q")]);
    let with = |line: &[u8], tail: &[u8]| [line, tail].concat();
    // 2048 bytes are fine, with either ending; with a lone '\r' the line is still incomplete
    assert_eq!(
        parse(&with(&line, b"\r\n"), MAX),
        Ok(Some((get_q(), MAX_LINE + 2)))
    );
    assert_eq!(
        parse(&with(&line, b"\n"), MAX),
        Ok(Some((get_q(), MAX_LINE + 1)))
    );
    assert_eq!(parse(&line, MAX), Ok(None));
    assert_eq!(parse(&with(&line, b"\r"), MAX), Ok(None));
    // 2049 bytes are rejected as soon as they arrive, whatever follows
    let too_long = get_line_of(MAX_LINE + 1);
    for input in [
        too_long.clone(),
        with(&too_long, b"\r\n"),
        with(&too_long, b"\n"),
        with(&line, b"\rx"),
        with(&line, b"\r\r\n"),
        vec![b'x'; MAX_LINE + 1],
        vec![0; 10_000],
    ] {
        match parse(&input, MAX) {
            Err(rejection) => {
                assert_eq!(show(&error_bytes(rejection.error)), show(TOO_LONG));
                assert!(rejection.error.closes_connection());
                assert!((1..=input.len()).contains(&rejection.consumed));
            }
            other => panic!("{} gave {other:?}", show(&input)),
        }
    }
    // a set's data block does not count towards the line
    let data = vec![b'x'; 3 * MAX_LINE];
    let input = [
        format!("set q 0 0 {}\r\n", data.len()).as_bytes(),
        &data,
        b"\r\n",
    ]
    .concat();
    assert_eq!(
        parse(&input, MAX),
        Ok(Some((set(&["q"], 0, 0, &data, false), input.len())))
    );
}

// ---------------------------------------------------------------------------------------------
// Errors and replies

#[test]
fn errors_encode_to_their_reply_and_only_line_too_long_closes() {
    let cases: &[(Error, &[u8], bool)] = &[
        (Error::UnknownCommand, ERROR, false),
        (Error::BadFormat, BAD_FORMAT, false),
        (Error::BadQueueName, BAD_NAME, false),
        (Error::BadGetOptions, BAD_OPTIONS, false),
        (Error::BadDataChunk, BAD_CHUNK, false),
        (Error::LineTooLong, TOO_LONG, true),
        (
            Error::CloseCurrentItemFirst,
            b"CLIENT_ERROR close current item first\r\n",
            false,
        ),
        (Error::TooLarge, TOO_LARGE, false),
    ];
    for &(error, reply, closes) in cases {
        assert_eq!(show(&error_bytes(error)), show(reply));
        assert_eq!(error.closes_connection(), closes, "{error:?}");
    }
}

#[test]
fn replies_encode_to_exact_bytes() {
    let binary: Vec<u8> = (0..=255).collect();
    let value_binary = [&b"VALUE q/open 4294967295 256\r\n"[..], &binary, b"\r\n"].concat();
    let cases: Vec<(Reply, Vec<u8>)> = vec![
        (Reply::Stored, b"STORED\r\n".to_vec()),
        (Reply::Deleted, b"DELETED\r\n".to_vec()),
        (Reply::NotFound, b"NOT_FOUND\r\n".to_vec()),
        (Reply::End, b"END\r\n".to_vec()),
        (Reply::Ok, b"OK\r\n".to_vec()),
        (
            Reply::Value {
                key: b"work",
                flags: 0,
                data: b"hello",
            },
            b"VALUE work 0 5\r\nhello\r\n".to_vec(),
        ),
        (
            Reply::Value {
                key: b"q.c/t=5/open",
                flags: 7,
                data: b"",
            },
            b"VALUE q.c/t=5/open 7 0\r\n\r\n".to_vec(),
        ),
        (
            Reply::Value {
                key: b"q/open",
                flags: u32::MAX,
                data: &binary,
            },
            value_binary,
        ),
        (
            Reply::Version("tern-0.1.0"),
            b"VERSION tern-0.1.0\r\n".to_vec(),
        ),
        (
            Reply::Stat("uptime", &42u64),
            b"STAT uptime 42\r\n".to_vec(),
        ),
        (
            Reply::Stat("version", &"tern-0.1.0"),
            b"STAT version tern-0.1.0\r\n".to_vec(),
        ),
        (Reply::Error(Error::BadFormat), BAD_FORMAT.to_vec()),
        (
            Reply::ServerError("queue full"),
            b"SERVER_ERROR queue full\r\n".to_vec(),
        ),
    ];
    for (reply, expected) in cases {
        assert_eq!(show(&encode(reply)), show(&expected));
    }
    // encode appends: two replies in one buffer
    let mut out = b"STORED\r\n".to_vec();
    Reply::End.encode(&mut out);
    assert_eq!(out, b"STORED\r\nEND\r\n");
}

#[test]
fn server_error_reason_is_always_one_line() {
    for reason in [
        "disk\r\nfull",
        "a\nb",
        "a\rb",
        "tab\there",
        "nul\0",
        "\r\n",
        "",
    ] {
        let out = encode(Reply::ServerError(reason));
        let body = out
            .strip_prefix(b"SERVER_ERROR ")
            .and_then(|rest| rest.strip_suffix(b"\r\n"))
            .unwrap_or_else(|| panic!("{reason:?} gave {}", show(&out)));
        assert!(
            !body.contains(&b'\r') && !body.contains(&b'\n'),
            "{reason:?} gave {}",
            show(&out)
        );
    }
    assert_eq!(
        encode(Reply::ServerError("disk\r\nfull")),
        b"SERVER_ERROR disk  full\r\n"
    );
}

// ---------------------------------------------------------------------------------------------
// Expiry

fn expiring(exptime: i64) -> Set {
    Set {
        queues: vec!["q".into()],
        flags: 0,
        exptime,
        data: vec![],
        noreply: false,
    }
}

#[test]
fn expiry_follows_memcached_rule() {
    let now = 1_700_000_000_000u64;
    assert_eq!(expiring(0).expires_at_ms(now), None);
    for exptime in [-1, -2_592_001, i64::MIN] {
        let at = expiring(exptime).expires_at_ms(now);
        assert!(matches!(at, Some(at) if at <= now), "{exptime}: {at:?}");
    }
    let cases: &[(i64, u64)] = &[
        (1, now + 1_000),
        (60, now + 60_000),
        (2_592_000, now + 2_592_000_000),
        (2_592_001, 2_592_001_000),
        (1_800_000_000, 1_800_000_000_000),
    ];
    for &(exptime, at) in cases {
        assert_eq!(expiring(exptime).expires_at_ms(now), Some(at), "{exptime}");
    }
    // extremes saturate instead of overflowing
    assert!(matches!(expiring(i64::MAX).expires_at_ms(now), Some(at) if at > now));
    assert_eq!(expiring(1).expires_at_ms(u64::MAX), Some(u64::MAX));
}

// ---------------------------------------------------------------------------------------------
// A connection's view: parse, consume, repeat

#[derive(Debug, PartialEq)]
enum Event {
    Command(Command),
    Rejected {
        error: Error,
        discard: u64,
        silent: bool,
    },
}

/// Checks what SPEC and the `parse` contract promise about one call.
fn check_step(buf: &[u8], max: u32, result: &Result<Option<(Command, usize)>, Rejection>) {
    let what = show(buf);
    match result {
        Ok(None) => {
            // memory stays bounded: at most a header line and an allowed block are buffered
            assert!(
                buf.len() < MAX_LINE + 2 + max as usize + 2,
                "{what}: buffered"
            );
            if !buf.contains(&b'\n') {
                assert!(buf.len() <= MAX_LINE + 1, "{what}: long line buffered");
            }
        }
        Ok(Some((command, consumed))) => {
            assert!((1..=buf.len()).contains(consumed), "{what}: consumed");
            // a command depends only on its own bytes
            assert_eq!(&parse(&buf[..*consumed], max), result, "{what}: alone");
            match command {
                Command::Get(get) => {
                    assert!(!get.keys.is_empty() || get.error.is_some(), "{what}");
                    if let Some(error) = get.error {
                        assert!(
                            matches!(error, Error::BadQueueName | Error::BadGetOptions),
                            "{what}: {error:?}"
                        );
                    }
                }
                Command::Set(set) => {
                    assert!(!set.queues.is_empty(), "{what}");
                    assert!(set.data.len() <= max as usize, "{what}");
                }
                _ => {}
            }
        }
        Err(rejection) => {
            let reply = error_bytes(rejection.error);
            assert!(
                PARSE_REPLIES.contains(&reply.as_slice()),
                "{what}: {}",
                show(&reply)
            );
            assert!(
                (1..=buf.len()).contains(&rejection.consumed),
                "{what}: consumed"
            );
            assert_eq!(&parse(&buf[..rejection.consumed], max), result, "{what}");
            if rejection.silent {
                assert!(
                    matches!(rejection.error, Error::TooLarge | Error::BadDataChunk),
                    "{what}: silent {:?}",
                    rejection.error
                );
            }
            if rejection.discard > 0 {
                assert!(
                    matches!(rejection.error, Error::TooLarge | Error::BadQueueName),
                    "{what}: discard after {:?}",
                    rejection.error
                );
            }
        }
    }
}

/// Feeds `input` in chunks of `chunk_sizes` (cycled) like a connection would, parsing what
/// is complete after each read, until the input ends or the connection must close.
fn run_connection(input: &[u8], max: u32, chunk_sizes: &[usize]) -> Vec<Event> {
    let mut events = Vec::new();
    let mut buf = Vec::new();
    let mut discard = 0u64;
    let mut rest = input;
    let mut sizes = chunk_sizes.iter().copied().cycle();
    loop {
        loop {
            let result = parse(&buf, max);
            check_step(&buf, max, &result);
            match result {
                Ok(None) => break,
                Ok(Some((command, consumed))) => {
                    events.push(Event::Command(command));
                    buf.drain(..consumed);
                }
                Err(rejection) => {
                    events.push(Event::Rejected {
                        error: rejection.error,
                        discard: rejection.discard,
                        silent: rejection.silent,
                    });
                    if rejection.error.closes_connection() {
                        return events;
                    }
                    buf.drain(..rejection.consumed);
                    discard = rejection.discard;
                    let skip = discard.min(buf.len() as u64);
                    buf.drain(..skip as usize);
                    discard -= skip;
                }
            }
        }
        if rest.is_empty() {
            return events;
        }
        let size = sizes.next().unwrap_or(rest.len()).clamp(1, rest.len());
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        let skip = discard.min(chunk.len() as u64);
        discard -= skip;
        buf.extend_from_slice(&chunk[skip as usize..]);
    }
}

#[test]
fn a_connection_resynchronises_after_rejected_blocks() {
    let get_a = || Event::Command(get(vec![plain("a")]));
    let rejected = |error, discard, silent| Event::Rejected {
        error,
        discard,
        silent,
    };
    let cases: Vec<(&[u8], u32, Vec<Event>)> = vec![
        (
            b"set q! 0 0 5\r\nhello\r\nget a\r\n",
            MAX,
            vec![rejected(Error::BadQueueName, 7, false), get_a()],
        ),
        (
            b"set q 0 0 10 noreply\r\n0123456789\r\nget a\r\n",
            5,
            vec![rejected(Error::TooLarge, 12, true), get_a()],
        ),
        (
            b"set q 0 0 5\r\nhelloXYget a\r\n",
            MAX,
            vec![rejected(Error::BadDataChunk, 0, false), get_a()],
        ),
        (
            b"set q x 0 5\r\nget a\r\n",
            MAX,
            vec![rejected(Error::BadFormat, 0, false), get_a()],
        ),
        (
            b"get a\r\nset q 0 0 1\r\nx\r\nget a\n",
            MAX,
            vec![
                get_a(),
                Event::Command(set(&["q"], 0, 0, b"x", false)),
                get_a(),
            ],
        ),
    ];
    for (input, max, expected) in cases {
        for sizes in [&[usize::MAX][..], &[1], &[3, 7]] {
            assert_eq!(
                run_connection(input, max, sizes),
                expected,
                "{} in chunks of {sizes:?}",
                show(input)
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Property tests

const TOKENS: &[&str] = &[
    "get",
    "gets",
    "set",
    "delete",
    "flush",
    "flush_all",
    "version",
    "stats",
    "quit",
    "shutdown",
    "GET",
    "SeT",
    " ",
    " ",
    "  ",
    "\r\n",
    "\r\n",
    "\n",
    "\r",
    "q",
    "q.c",
    "a+b",
    "a+a",
    "/open",
    "/close",
    "/abort",
    "/peek",
    "/t=",
    "/t=10",
    "/",
    ".",
    "+",
    "0",
    "1",
    "5",
    "-1",
    "2592001",
    "4294967295",
    "4294967296",
    "9223372036854775808",
    "noreply",
    "hello",
    "\r\n\r\n",
];

fn token_soup() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        4 => prop::sample::select(TOKENS).prop_map(|t| t.as_bytes().to_vec()),
        1 => vec(any::<u8>(), 0..8),
    ];
    vec(token, 0..80).prop_map(|tokens| tokens.concat())
}

fn interesting_byte() -> impl Strategy<Value = u8> {
    prop_oneof![prop::sample::select(&b" \r\n/.+-09t="[..]), any::<u8>(),]
}

/// Concatenated valid commands with a few random byte edits (replace, insert, delete).
fn mutated_commands() -> impl Strategy<Value = Vec<u8>> {
    let inputs: Vec<Vec<u8>> = valid_cases().into_iter().map(|(input, _)| input).collect();
    let picks = vec(any::<Index>(), 1..6);
    let edits = vec((any::<Index>(), 0..3u8, interesting_byte()), 0..6);
    (picks, edits).prop_map(move |(picks, edits)| {
        let mut buf: Vec<u8> = picks.iter().flat_map(|i| i.get(&inputs).clone()).collect();
        for (at, op, byte) in edits {
            let at = at.index(buf.len() + 1);
            match op {
                0 if at < buf.len() => buf[at] = byte,
                1 => buf.insert(at, byte),
                _ if at < buf.len() => {
                    buf.remove(at);
                }
                _ => {}
            }
        }
        buf
    })
}

fn any_input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![vec(any::<u8>(), 0..3000), token_soup(), mutated_commands()]
}

fn max_item_size() -> impl Strategy<Value = u32> {
    prop_oneof![Just(0u32), 1u32..16, Just(MAX)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// No input panics the parser, every step obeys its contract, and how the input is split
    /// into reads does not change what the connection sees.
    #[test]
    fn parsing_any_input_like_a_connection(
        input in any_input(),
        max in max_item_size(),
        sizes in vec(1usize..300, 1..16),
    ) {
        let whole = run_connection(&input, max, &[usize::MAX]);
        let chunked = run_connection(&input, max, &sizes);
        prop_assert_eq!(whole, chunked);
    }
}
