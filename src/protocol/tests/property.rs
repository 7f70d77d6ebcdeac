//! Property tests: arbitrary, token-soup and mutated inputs never panic the parser, and how
//! input is split into reads does not change what a connection sees.

use super::connection::run_connection;
use super::valid::valid_cases;
use super::*;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;

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
    "mg",
    "ms",
    "md",
    "mn",
    "me",
    "v",
    " k",
    " q",
    " b",
    " c",
    " f s t",
    "O1",
    "F7",
    "T-1",
    "MS",
    "ME",
    "Mx",
    "cQ==",
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
