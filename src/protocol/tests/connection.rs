//! A connection's view: parse, consume, repeat over a buffer, checking the `parse` contract
//! at every step and resynchronising after rejected blocks.

use super::*;

#[derive(Debug, PartialEq)]
pub(super) enum Event {
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
            // a storage command's line announced exactly what it took
            if let Some(needed) = needs(buf) {
                assert_eq!(needed, *consumed, "{what}: announced length");
            }
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
                Command::Set(set) | Command::MetaSet(MetaSet { set, .. }) => {
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
pub(super) fn run_connection(input: &[u8], max: u32, chunk_sizes: &[usize]) -> Vec<Event> {
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
