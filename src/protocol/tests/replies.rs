//! Errors and replies: each `Error` and `Reply` encodes to its exact bytes.

use super::*;

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
            b"VERSION 1.6.0 tern-0.1.0\r\n".to_vec(),
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

/// `reply_kind` (what `--metrics` counts errors by) is the first word of the reply line.
#[test]
fn error_reply_kind_is_the_first_word_of_the_reply() {
    use crate::protocol::Error;
    let all = [
        Error::UnknownCommand,
        Error::BadFormat,
        Error::BadQueueName,
        Error::BadGetOptions,
        Error::BadDataChunk,
        Error::LineTooLong,
        Error::CloseCurrentItemFirst,
        Error::TooLarge,
        Error::InvalidFlag,
        Error::ModeNotSupported,
    ];
    for error in all {
        let line = error.to_string();
        assert_eq!(line.split(' ').next(), Some(error.reply_kind()), "{line}");
    }
}
