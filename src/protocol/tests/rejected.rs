//! Rejected input: malformed lines, `set` headers and data blocks, names and over-long lines,
//! each with its SPEC.md reply and how much is consumed or discarded.

use super::*;

/// A rejected input and what SPEC says happens to it.
pub(super) struct Bad {
    input: Vec<u8>,
    reply: &'static [u8],
    consumed: usize,
    discard: u64,
    silent: bool,
    max: u32,
}

/// A rejection that consumes the whole input and discards nothing more.
pub(super) fn bad(input: impl AsRef<[u8]>, reply: &'static [u8]) -> Bad {
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
    pub(super) fn consumed(self, consumed: usize) -> Bad {
        Bad { consumed, ..self }
    }
    pub(super) fn discard(self, discard: u64) -> Bad {
        Bad { discard, ..self }
    }
    pub(super) fn silent(self) -> Bad {
        Bad {
            silent: true,
            ..self
        }
    }
    pub(super) fn max(self, max: u32) -> Bad {
        Bad { max, ..self }
    }
}

pub(super) fn check_rejections(cases: Vec<Bad>) {
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
        bad("dump_stats x\r\n", BAD_FORMAT),
        // a stats group: memcached's answer to one it does not know
        bad("stats items\r\n", ERROR),
        bad("stats malloc\r\n", ERROR),
        bad("STATS slabs\r\n", ERROR),
        bad("stats  detail on\r\n", ERROR),
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
        // replay: on a cursor, alone, a seek time of 1-19 digits within i64
        ("get q/rewind\r\n", &[], BAD_OPTIONS),
        ("get q/seek=1\r\n", &[], BAD_OPTIONS),
        ("get q.c/rewind/rewind\r\n", &[], BAD_OPTIONS),
        ("get q.c/rewind/seek=1\r\n", &[], BAD_OPTIONS),
        ("get q.c/seek=1/seek=1\r\n", &[], BAD_OPTIONS),
        ("get q.c/rewind/peek\r\n", &[], BAD_OPTIONS),
        ("get q.c/open/rewind\r\n", &[], BAD_OPTIONS),
        ("get q.c/seek=1/close\r\n", &[], BAD_OPTIONS),
        ("get q.c/abort/seek=1\r\n", &[], BAD_OPTIONS),
        ("get q.c/rewind/t=0\r\n", &[], BAD_OPTIONS),
        ("get q.c/seek=\r\n", &[], BAD_OPTIONS),
        ("get q.c/seek\r\n", &[], BAD_OPTIONS),
        ("get q.c/seek=-1\r\n", &[], BAD_OPTIONS),
        ("get q.c/seek=+1\r\n", &[], BAD_OPTIONS),
        ("get q.c/seek=1.5\r\n", &[], BAD_OPTIONS),
        ("get q.c/seek=9223372036854775808\r\n", &[], BAD_OPTIONS),
        ("get q.c/seek=00000000000000000001\r\n", &[], BAD_OPTIONS),
        ("get q.c/REWIND\r\n", &[], BAD_OPTIONS),
        ("get q.c/rewind2\r\n", &[], BAD_OPTIONS),
        ("get a q.c/rewind/peek b\r\n", &["a"], BAD_OPTIONS),
        // a bad key in the middle: the good keys before it, the error instead of END
        ("get a b! c\r\n", &["a"], BAD_NAME),
        ("get a b/bogus c\r\n", &["a"], BAD_OPTIONS),
        ("get a/open b.c c.d.e d\r\n", &["a/open", "b.c"], BAD_NAME),
        ("gets a b c/peek/open\n", &["a", "b"], BAD_OPTIONS),
        // a repeat of a good key adds nothing before the bad one
        ("get a a b! c\r\n", &["a"], BAD_NAME),
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
