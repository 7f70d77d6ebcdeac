//! Feeds arbitrary bytes to the parser the way a connection does: parse, consume, repeat.
//! Asserts what the connection relies on: no panic, progress on every answer, never more
//! consumed than given, and every rejection encodes to one reply line. Meta commands are
//! checked further: an `mg` without `v` never takes or opens an item, an `ms` block is
//! within the limit, and every meta reply encodes to one line (and `VA`'s block).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tern::protocol::{parse, Command, MetaItem, Reply};

/// A small limit reaches the "too large" paths with short inputs.
const MAX_ITEM_SIZE: u32 = 64;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while !rest.is_empty() {
        match parse(rest, MAX_ITEM_SIZE) {
            Ok(None) => break,
            Ok(Some((command, used))) => {
                assert!(used >= 1 && used <= rest.len());
                check_command(&command);
                rest = &rest[used..];
            }
            Err(rejection) => {
                assert!(rejection.consumed >= 1 && rejection.consumed <= rest.len());
                assert_one_line(&encode(Reply::Error(rejection.error)), 0);
                let skip = (rejection.consumed as u64 + rejection.discard).min(rest.len() as u64);
                rest = &rest[skip as usize..];
                if rejection.error.closes_connection() {
                    break;
                }
            }
        }
    }
});

fn check_command(command: &Command) {
    let item = MetaItem {
        flags: 7,
        data: b"a\r\nb",
        ttl: -1,
    };
    match command {
        Command::MetaGet(get) => {
            let options = get.read_options();
            if !get.value {
                // It never opens, and never takes: it peeks, or reads nothing (close, abort).
                let reads_nothing = options.abort || options.close;
                assert!(!options.open && (options.peek || reads_nothing), "{get:?}");
            }
            let extra = if get.value { item.data.len() + 2 } else { 0 };
            if let Some(reply) = get.reply(Some(item)) {
                assert_one_line(&encode(reply), extra);
            }
            if let Some(reply) = get.reply(None) {
                assert_one_line(&encode(reply), 0);
            }
        }
        Command::MetaSet(set) => {
            assert!(set.set.data.len() <= MAX_ITEM_SIZE as usize && !set.set.queues.is_empty());
            assert!(!set.set.noreply);
            if let Some(reply) = set.stored() {
                assert_one_line(&encode(reply), 0);
            }
        }
        Command::MetaDelete(delete) => {
            for existed in [false, true] {
                if let Some(reply) = delete.reply(existed) {
                    assert_one_line(&encode(reply), 0);
                }
            }
        }
        _ => {}
    }
}

fn encode(reply: Reply) -> Vec<u8> {
    let mut out = Vec::new();
    reply.encode(&mut out);
    out
}

/// `bytes` is one line ending in `\r\n`, then `extra` bytes (a data block and its `\r\n`).
fn assert_one_line(bytes: &[u8], extra: usize) {
    let line = &bytes[..bytes.len() - extra];
    assert!(line.ends_with(b"\r\n") && !line[..line.len() - 2].contains(&b'\n'));
}
