//! The clean-shutdown snapshot: every queue's counters, written to the `meta` tree (key
//! `clean-shutdown`) as the last
//! act of a graceful stop and removed (durably) as the first act of the next start. Present at
//! start-up means nothing changed since it was written, so the counters are exact and deep
//! queues need no scan; absent (after a crash) means scan.
//!
//! Format: text lines `q <queue> <items> <bytes>` and `c <queue> <cursor> <remaining>`
//! (names never contain spaces).

use std::collections::HashMap;
use std::fmt::Write;

/// A queue's counters, kept across a clean restart so start-up needs no scan.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) items: u64,
    pub(crate) bytes: u64,
    /// Per cursor: items at or after its position.
    pub(crate) remaining: HashMap<String, u64>,
}

pub(crate) fn encode<'a>(queues: impl IntoIterator<Item = (&'a str, Counts)>) -> String {
    let mut text = String::new();
    for (queue, counts) in queues {
        let _ = writeln!(text, "q {} {} {}", queue, counts.items, counts.bytes);
        for (cursor, remaining) in &counts.remaining {
            let _ = writeln!(text, "c {} {} {}", queue, cursor, remaining);
        }
    }
    text
}

/// `None` if the snapshot does not parse: then it is ignored and every queue is scanned.
pub(crate) fn decode(text: &[u8]) -> Option<HashMap<String, Counts>> {
    let mut queues: HashMap<String, Counts> = HashMap::new();
    for line in std::str::from_utf8(text).ok()?.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        match fields.as_slice() {
            ["q", queue, items, bytes] => {
                let counts = queues.entry(queue.to_string()).or_default();
                counts.items = items.parse().ok()?;
                counts.bytes = bytes.parse().ok()?;
            }
            ["c", queue, cursor, remaining] => {
                let counts = queues.entry(queue.to_string()).or_default();
                counts
                    .remaining
                    .insert(cursor.to_string(), remaining.parse().ok()?);
            }
            _ => return None,
        }
    }
    Some(queues)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let counts = Counts {
            items: 3,
            bytes: 42,
            remaining: [("c1".to_string(), 2)].into_iter().collect(),
        };
        let text = encode([("q", counts.clone()), ("empty", Counts::default())]);
        let decoded = decode(text.as_bytes()).unwrap();
        assert_eq!(decoded["q"], counts);
        assert_eq!(decoded["empty"], Counts::default());
        assert_eq!(decode(b"q x nonsense 1\n"), None);
    }
}
