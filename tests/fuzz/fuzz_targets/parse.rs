//! Feeds arbitrary bytes to the parser the way a connection does: parse, consume, repeat.
//! Asserts what the connection relies on: no panic, progress on every answer, never more
//! consumed than given, and every rejection encodes to one reply line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tern::protocol::{parse, Reply};

fuzz_target!(|data: &[u8]| {
    // A small limit reaches the "too large" paths with short inputs.
    let max_item_size = 64;
    let mut rest = data;
    while !rest.is_empty() {
        match parse(rest, max_item_size) {
            Ok(None) => break,
            Ok(Some((_, used))) => {
                assert!(used >= 1 && used <= rest.len());
                rest = &rest[used..];
            }
            Err(rejection) => {
                assert!(rejection.consumed >= 1 && rejection.consumed <= rest.len());
                let mut line = Vec::new();
                Reply::Error(rejection.error).encode(&mut line);
                assert!(line.ends_with(b"\r\n") && !line[..line.len() - 2].contains(&b'\n'));
                let skip = (rejection.consumed as u64 + rejection.discard).min(rest.len() as u64);
                rest = &rest[skip as usize..];
                if rejection.error.closes_connection() {
                    break;
                }
            }
        }
    }
});
