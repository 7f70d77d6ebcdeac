//! Valid input: every command SPEC.md accepts, what it parses to and how many bytes it
//! consumes; `get` options in every combination and order.

use super::*;

/// Valid single commands and what they parse to; each consumes its whole input.
pub(super) fn valid_cases() -> Vec<(Vec<u8>, Command)> {
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
        // a key repeated verbatim is served once; the same queue under another key is not
        case("get q q\r\n", get(vec![plain("q")])),
        case("gets a b a b a\r\n", get(vec![plain("a"), plain("b")])),
        case(
            "get q/peek q q/peek\r\n",
            get(vec![
                key("q/peek", "q", None, opts(|o| o.peek = true)),
                plain("q"),
            ]),
        ),
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
            "get q.c/rewind\r\n",
            get(vec![key(
                "q.c/rewind",
                "q",
                Some("c"),
                opts(|o| o.replay = Some(Replay::Rewind)),
            )]),
        ),
        case(
            "get q.c/seek=0 q.c/seek=9223372036854775807 q.c/seek=0001\r\n",
            get(vec![
                key(
                    "q.c/seek=0",
                    "q",
                    Some("c"),
                    opts(|o| o.replay = Some(Replay::Seek(0))),
                ),
                key(
                    "q.c/seek=9223372036854775807",
                    "q",
                    Some("c"),
                    opts(|o| o.replay = Some(Replay::Seek(i64::MAX as u64))),
                ),
                key(
                    "q.c/seek=0001",
                    "q",
                    Some("c"),
                    opts(|o| o.replay = Some(Replay::Seek(1))),
                ),
            ]),
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
        case("stats \r\n", Command::Stats),
        case("dump_stats\r\n", Command::DumpStats),
        case("DUMP_STATS\n", Command::DumpStats),
        case("quit\r\n", Command::Quit),
        case("shutdown\r\n", Command::Shutdown),
        case("  version  \r\n", Command::Version),
        // a command line of exactly MAX_LINE bytes is fine
        case(long_line, get(vec![plain("q")])),
    ]
    .into_iter()
    .chain(super::meta::meta_valid_cases())
    .collect()
}

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
                replay: None,
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

/// What a storage command takes in all is known from its line alone, and is what `parse`
/// consumes once the block is there.
#[test]
fn a_storage_command_announces_its_whole_length() {
    let set = b"set q 0 0 5\r\nhello\r\n";
    let ms = b"ms q 5 T0\r\nhello\r\n";
    for command in [&set[..], &ms[..]] {
        let line_end = command.iter().position(|&b| b == b'\n').unwrap() + 1;
        assert_eq!(needs(&command[..line_end]), Some(command.len()));
        assert_eq!(needs(&command[..line_end + 2]), Some(command.len()));
        let (_, used) = parse(command, 1024).unwrap().unwrap();
        assert_eq!(used, command.len());
    }
    assert_eq!(needs(b"set q 0 0 5"), None, "the line is not all there");
    assert_eq!(needs(b"get q\r\n"), None, "no data block");
    assert_eq!(needs(b"set q 0 0 x\r\n"), None, "not a length");
}
