//! Meta commands (SPEC.md "Meta commands"): what `ms`, `mg`, `md` and `mn` parse to, every
//! error SPEC lists, the exact bytes of their replies, quiet mode, and the rule that an `mg`
//! without `v` never takes an item.

use super::rejected::{bad, check_rejections};
use super::*;
use Returned::{Cas, ClientFlags, Key as K, Opaque, Size, Ttl};

const MODE: &[u8] = MODE_NOT_SUPPORTED;

fn meta(key: &str, quiet: bool, returns: Vec<Returned>) -> Meta {
    Meta {
        quiet,
        returns,
        key: key.as_bytes().to_vec(),
        base64: false,
    }
}

fn base64(meta: Meta) -> Meta {
    Meta {
        base64: true,
        ..meta
    }
}

fn opaque(token: &str) -> Returned {
    Opaque(token.as_bytes().to_vec())
}

fn mg(key: Key, value: bool, meta: Meta) -> Command {
    Command::MetaGet(MetaGet { key, value, meta })
}

fn md(queue: &str, cursor: Option<&str>, meta: Meta) -> Command {
    Command::MetaDelete(MetaDelete {
        target: target(queue, cursor),
        meta,
    })
}

fn ms(queues: &[&str], flags: u32, exptime: i64, data: &[u8], meta: Meta) -> Command {
    let Command::Set(set) = set(queues, flags, exptime, data, false) else {
        unreachable!()
    };
    Command::MetaSet(MetaSet { set, meta })
}

fn opts(f: fn(&mut GetOptions)) -> GetOptions {
    let mut options = NO_OPTS;
    f(&mut options);
    options
}

/// Valid meta commands and what they parse to; `valid_cases` includes them, so every strict
/// prefix is checked to be incomplete and every pair to pipeline.
pub(super) fn meta_valid_cases() -> Vec<(Vec<u8>, Command)> {
    let o32 = "o".repeat(32);
    vec![
        case("mg q\r\n", mg(plain("q"), false, meta("q", false, vec![]))),
        case("mg q v\r\n", mg(plain("q"), true, meta("q", false, vec![]))),
        case(
            "MG  q   v \n",
            mg(plain("q"), true, meta("q", false, vec![])),
        ),
        case(
            "mg q/open v f s t k c O123 q\r\n",
            mg(
                key("q/open", "q", None, opts(|o| o.open = true)),
                true,
                meta(
                    "q/open",
                    true,
                    vec![ClientFlags, Size, Ttl, K, Cas, opaque("123")],
                ),
            ),
        ),
        case(
            "mg q.c/t=5/peek k\r\n",
            mg(
                key(
                    "q.c/t=5/peek",
                    "q",
                    Some("c"),
                    opts(|o| {
                        o.timeout_ms = Some(5);
                        o.peek = true;
                    }),
                ),
                false,
                meta("q.c/t=5/peek", false, vec![K]),
            ),
        ),
        case(
            "mg cQ== b k v\r\n",
            mg(plain("q"), true, base64(meta("cQ==", false, vec![K]))),
        ),
        case(
            "mg cS5jL29wZW4= v b\r\n",
            mg(
                key("q.c/open", "q", Some("c"), opts(|o| o.open = true)),
                true,
                base64(meta("cS5jL29wZW4=", false, vec![])),
            ),
        ),
        case(
            format!("mg q O{o32} Pproxy L v\r\n"),
            mg(plain("q"), true, meta("q", false, vec![opaque(&o32)])),
        ),
        case(
            "mg q O\x01\x7f v\r\n",
            mg(plain("q"), true, meta("q", false, vec![opaque("\x01\x7f")])),
        ),
        case("md q\r\n", md("q", None, meta("q", false, vec![]))),
        case(
            "md q.c q O1 k P L7\r\n",
            md("q", Some("c"), meta("q.c", true, vec![opaque("1"), K])),
        ),
        case(
            "MD cS5j k b\r\n",
            md("q", Some("c"), base64(meta("cS5j", false, vec![K]))),
        ),
        case("mn\r\n", Command::MetaNoop),
        case("MN\n", Command::MetaNoop),
        case(
            "ms q 5\r\nhello\r\n",
            ms(&["q"], 0, 0, b"hello", meta("q", false, vec![])),
        ),
        case(
            "ms a+b+a 3 F7 T-1 q O1 k c I MS P L\r\nabc\r\n",
            ms(
                &["a", "b"],
                7,
                -1,
                b"abc",
                meta("a+b+a", true, vec![opaque("1"), K, Cas]),
            ),
        ),
        case(
            "ms q 4 Ms T2592001 F4294967295\r\n\r\n\r\n\r\n",
            ms(
                &["q"],
                u32::MAX,
                2_592_001,
                b"\r\n\r\n",
                meta("q", false, vec![]),
            ),
        ),
        case(
            "Ms q 0\n\r\n",
            ms(&["q"], 0, 0, b"", meta("q", false, vec![])),
        ),
        case(
            "ms YSti 1 b k\r\nx\r\n",
            ms(
                &["a", "b"],
                0,
                0,
                b"x",
                base64(meta("YSti", false, vec![K])),
            ),
        ),
    ]
}

#[test]
fn meta_lines_that_do_not_parse_get_their_spec_reply() {
    let o33 = "o".repeat(33);
    check_rejections(vec![
        // name without a key; mn takes nothing
        bad("mg\r\n", BAD_FORMAT),
        bad("md  \r\n", BAD_FORMAT),
        bad("ms\r\n", BAD_FORMAT),
        bad("mn x\r\n", BAD_FORMAT),
        // other meta commands
        bad("me q\r\n", ERROR),
        bad("ma q\r\n", ERROR),
        bad("mx q\r\n", ERROR),
        bad("m q\r\n", ERROR),
        // flags another command has, or none has
        bad("mg q x\r\n", INVALID_FLAG),
        bad("mg q F1\r\n", INVALID_FLAG),
        bad("mg q T60\r\n", INVALID_FLAG),
        bad("mg q MS\r\n", INVALID_FLAG),
        bad("mg q 1\r\n", INVALID_FLAG),
        bad("mg q -\r\n", INVALID_FLAG),
        bad(b"mg q \xff\r\n", INVALID_FLAG),
        bad("md q v\r\n", INVALID_FLAG),
        bad("md q c\r\n", INVALID_FLAG),
        bad("md q F1\r\n", INVALID_FLAG),
        // a token on a flag that takes none, a missing or bad one, a flag twice
        bad("mg q v1\r\n", BAD_FORMAT),
        bad("mg q kx\r\n", BAD_FORMAT),
        bad("md q qq\r\n", BAD_FORMAT),
        bad("mg q O\r\n", BAD_FORMAT),
        bad(format!("mg q O{o33}\r\n"), BAD_FORMAT),
        bad("mg q v v\r\n", BAD_FORMAT),
        bad("mg q O1 O2\r\n", BAD_FORMAT),
        // the first bad flag gives the reply, and flags come before the key
        bad("mg q x v1\r\n", INVALID_FLAG),
        bad("mg q v1 x\r\n", BAD_FORMAT),
        bad("mg q! x\r\n", INVALID_FLAG),
        // keys: names and options as in get and delete
        bad("mg q! v\r\n", BAD_NAME),
        bad("mg a+b v\r\n", BAD_NAME),
        bad("mg q/bogus v\r\n", BAD_OPTIONS),
        bad("mg q/peek/open\r\n", BAD_OPTIONS),
        bad("mg q/t=1.5 v\r\n", BAD_OPTIONS),
        bad("md q/open\r\n", BAD_NAME),
        bad("md a+b\r\n", BAD_NAME),
        bad("md q.c.d\r\n", BAD_NAME),
        // a b key that is not base64, or that decodes to a bad name
        bad("mg q b\r\n", BAD_FORMAT),
        bad("mg cQ b\r\n", BAD_FORMAT),
        bad("mg cR== b\r\n", BAD_FORMAT),
        bad("mg c=Q= b\r\n", BAD_FORMAT),
        bad("mg cQ==cQ== b\r\n", BAD_FORMAT),
        bad("md cQ=\r\n", BAD_NAME),
        bad("mg cSE= b v\r\n", BAD_NAME),
        bad("md /w== b\r\n", BAD_NAME),
        // several meta lines: only the first is consumed
        bad("mg q x\r\nmn\r\n", INVALID_FLAG).consumed(8),
    ]);
}

#[test]
fn ms_errors_follow_set_rules_for_the_block() {
    let hello = |line: &str| format!("{line}\r\nhello\r\n");
    let mut cases = vec![
        // no valid <datalen>: no block is expected
        bad("ms q\r\n", BAD_FORMAT),
        bad("ms q x\r\nhello\r\n", BAD_FORMAT).consumed(8),
        bad("ms q -1\r\n", BAD_FORMAT),
        bad("ms q 5x\r\n", BAD_FORMAT),
        bad("ms q 4294967296\r\n", BAD_FORMAT),
        // over the limit: answered at once, whatever else the line says, even when quiet
        bad("ms q 1048577\r\n", TOO_LARGE).discard(1_048_579),
        bad("ms q 1048577 q\r\n", TOO_LARGE).discard(1_048_579),
        bad("ms q! 4294967295 x\r\n", TOO_LARGE).discard(4_294_967_297),
        bad("ms q 6 ME\r\nhello!\r\n", TOO_LARGE)
            .max(5)
            .consumed(11)
            .discard(8),
        // a valid <datalen>: the rest of the line is answered with the block dropped
        bad(hello("ms q! 5"), BAD_NAME),
        bad(hello("ms q.c 5"), BAD_NAME),
        bad(hello("ms a++b 5 q"), BAD_NAME),
        bad(hello("ms q 5 x"), INVALID_FLAG),
        bad(hello("ms q 5 v"), INVALID_FLAG),
        bad(hello("ms q 5 t"), INVALID_FLAG),
        bad(hello("ms q! 5 x"), INVALID_FLAG),
        bad(hello("ms q 5 Fabc"), BAD_FORMAT),
        bad(hello("ms q 5 F-1"), BAD_FORMAT),
        bad(hello("ms q 5 F4294967296"), BAD_FORMAT),
        bad(hello("ms q 5 T1.5"), BAD_FORMAT),
        bad(hello("ms q 5 T"), BAD_FORMAT),
        bad(hello("ms q 5 q q"), BAD_FORMAT),
        bad(hello("ms q 5 c1"), BAD_FORMAT),
        bad(hello("ms q 5 M"), BAD_FORMAT),
        bad(hello("ms q 5 MX"), BAD_FORMAT),
        bad(hello("ms q 5 MSS"), BAD_FORMAT),
        bad(hello("ms q 5 b"), BAD_FORMAT),
        // the key before the mode
        bad(hello("ms q! 5 ME"), BAD_NAME),
        // the line's error wins over a bad chunk: the block is dropped unread
        bad("ms q! 5\r\nhelloXY", BAD_NAME),
        bad("ms q! 5\r\nhello\r\nget a\r\n", BAD_NAME).consumed(16),
        // a bad chunk: never silent, q hides only success
        bad("ms q 5\r\nhelloXY", BAD_CHUNK),
        bad("ms q 5 q\r\nhelloXY", BAD_CHUNK),
        bad("ms q 5\r\nhelloXYget a\r\n", BAD_CHUNK).consumed(15),
    ];
    for mode in "EeAaPpRr".chars() {
        cases.push(bad(hello(&format!("ms q 5 M{mode}")), MODE));
        cases.push(bad(hello(&format!("ms q 5 k M{mode} O1")), MODE));
    }
    check_rejections(cases);
    // Until the block has arrived, the line's error waits with it.
    for input in ["ms q! 5\r\n", "ms q! 5\r\nhello", "ms q 5 ME\r\nhello\r"] {
        assert_eq!(parse(input.as_bytes(), MAX), Ok(None), "{input:?}");
    }
}

#[test]
fn meta_replies_encode_to_exact_bytes() {
    let all = meta(
        "q/open",
        false,
        vec![opaque("abc"), K, ClientFlags, Size, Ttl, Cas],
    );
    let item = |data: &'static [u8], ttl| {
        Some(MetaItem {
            flags: 7,
            data,
            ttl,
        })
    };
    let reply = |code, meta, item| encode(Reply::Meta { code, meta, item });
    use MetaCode::{Done, Miss, NotFound, Value};
    let b64 = base64(meta("cQ==", false, vec![K, opaque("1")]));
    let b64_no_k = base64(meta("cQ==", false, vec![opaque("1")]));
    let none = meta("q", false, vec![]);
    let cases: Vec<(Vec<u8>, &[u8])> = vec![
        (
            reply(Value, &all, item(b"hello", -1)),
            b"VA 5 Oabc kq/open f7 s5 t-1 c0\r\nhello\r\n",
        ),
        (
            reply(Done, &all, item(b"hello", 60)),
            b"HD Oabc kq/open f7 s5 t60 c0\r\n",
        ),
        (reply(Miss, &all, None), b"EN Oabc kq/open\r\n"),
        (reply(NotFound, &all, None), b"NF Oabc kq/open\r\n"),
        // an ms: stored, no item to describe, c0 all the same
        (reply(Done, &all, None), b"HD Oabc kq/open c0\r\n"),
        (reply(Value, &none, item(b"", 1)), b"VA 0\r\n\r\n"),
        (
            reply(Value, &none, item(b"a\r\nb", 1)),
            b"VA 4\r\na\r\nb\r\n",
        ),
        (reply(Done, &none, None), b"HD\r\n"),
        (reply(Miss, &none, None), b"EN\r\n"),
        (reply(NotFound, &none, None), b"NF\r\n"),
        (reply(Done, &b64, None), b"HD kcQ== b O1\r\n"),
        (reply(Miss, &b64, None), b"EN kcQ== b O1\r\n"),
        (reply(Done, &b64_no_k, None), b"HD O1\r\n"),
        (encode(Reply::MetaNoop), b"MN\r\n"),
        (error_bytes(Error::InvalidFlag), INVALID_FLAG),
        (error_bytes(Error::ModeNotSupported), MODE),
    ];
    for (got, want) in cases {
        assert_eq!(show(&got), show(want));
    }
}

#[test]
fn quiet_mode_hides_only_the_expected_reply() {
    let hit = Some(MetaItem {
        flags: 1,
        data: b"x",
        ttl: -1,
    });
    let bytes = |reply: Option<Reply>| reply.map(encode);
    for quiet in [false, true] {
        let meta = meta("q", quiet, vec![opaque("9")]);
        let get = |value| MetaGet {
            key: plain("q"),
            value,
            meta: meta.clone(),
        };
        let loud = |reply: &[u8]| (!quiet).then(|| reply.to_vec());
        assert_eq!(bytes(get(true).reply(None)), loud(b"EN O9\r\n"));
        assert_eq!(bytes(get(false).reply(None)), loud(b"EN O9\r\n"));
        assert_eq!(
            bytes(get(true).reply(hit)),
            Some(b"VA 1 O9\r\nx\r\n".to_vec())
        );
        assert_eq!(bytes(get(false).reply(hit)), Some(b"HD O9\r\n".to_vec()));
        let delete = MetaDelete {
            target: target("q", None),
            meta: meta.clone(),
        };
        assert_eq!(bytes(delete.reply(true)), loud(b"HD O9\r\n"));
        assert_eq!(bytes(delete.reply(false)), Some(b"NF O9\r\n".to_vec()));
        let Command::MetaSet(set) = ms(&["q"], 0, 0, b"x", meta.clone()) else {
            unreachable!()
        };
        assert_eq!(bytes(set.stored()), loud(b"HD O9\r\n"));
    }
}

/// SPEC: without `v`, a key that would take or open an item peeks instead; `/close`,
/// `/abort` and `/t=` act as in `get`. With `v`, the options stay as given.
#[test]
fn mg_without_v_never_takes_an_item() {
    let peek = |f: fn(&mut GetOptions)| {
        let mut options = opts(f);
        options.peek = true;
        options
    };
    let cases: Vec<(&str, GetOptions)> = vec![
        ("q", peek(|_| {})),
        ("q/open", peek(|_| {})),
        ("q/t=9", peek(|o| o.timeout_ms = Some(9))),
        ("q.c/open/t=9", peek(|o| o.timeout_ms = Some(9))),
        ("q/close/open", peek(|o| o.close = true)),
        ("q/close", opts(|o| o.close = true)),
        ("q/abort", opts(|o| o.abort = true)),
        ("q/peek", opts(|o| o.peek = true)),
        ("q/peek/t=1", peek(|o| o.timeout_ms = Some(1))),
    ];
    let parse_mg = |line: &str| match parse(line.as_bytes(), MAX) {
        Ok(Some((Command::MetaGet(get), _))) => get,
        other => panic!("{line:?} gave {other:?}"),
    };
    for (raw, without_v) in cases {
        let get = parse_mg(&format!("mg {raw} k\r\n"));
        assert_eq!(get.read_options(), without_v, "mg {raw}");
        let get = parse_mg(&format!("mg {raw} v\r\n"));
        let Command::Get(Get { keys, .. }) = parse_mg_as_get(raw) else {
            unreachable!()
        };
        assert_eq!(get.read_options(), keys[0].options, "mg {raw} v");
    }
}

/// What `get <raw>` parses to: `mg … v` reads with the same options.
fn parse_mg_as_get(raw: &str) -> Command {
    let line = format!("get {raw}\r\n");
    parse(line.as_bytes(), MAX).unwrap().unwrap().0
}

#[test]
fn ttl_is_whole_seconds_left_rounded_up() {
    let now = 1_700_000_000_000;
    let cases = [
        (None, -1),
        (Some(now + 1), 1),
        (Some(now + 1000), 1),
        (Some(now + 1001), 2),
        (Some(now + 60_000), 60),
        (Some(now), 0),
        (Some(now - 5000), 0),
    ];
    for (expires, want) in cases {
        assert_eq!(seconds_left(expires, now), want, "{expires:?}");
    }
}
