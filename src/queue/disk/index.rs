//! The `index` tree: everything format 2 keeps in sled about queues, in one keyspace.
//!
//! - `n<name>` → queue number (u64): which queues exist;
//! - `r<queue u64>` → [`QueueRecord`]: a queue's counters and removed ranges;
//! - `p<queue u64><first id u64>` → [`PackEntry`]: where a pack is;
//! - `w` → the mark: the segment and offset just past the last block this index records
//!   (start-up replays the blocks after it); a commit writes it last.
//!
//! - `c` → every segment's count of packs in use, (segment u64, count u64) pairs: written by a
//!   checkpoint, taken out by the next pack change and at the next start (which otherwise
//!   counts the `p` entries).
//!
//! Earlier builds also kept `s<segment u64>` → packs in use in that segment; start-up now
//! counts them from the `p` entries and removes those keys.

use super::ranges::Removed;
use super::record::id_of;
use super::Error;
use std::collections::HashSet;

pub(crate) fn name_key(name: &str) -> Vec<u8> {
    let mut key = b"n".to_vec();
    key.extend_from_slice(name.as_bytes());
    key
}

pub(crate) const NAME_PREFIX: &[u8] = b"n";
pub(crate) const RECORD_PREFIX: &[u8] = b"r";
pub(crate) const PACK_PREFIX: &[u8] = b"p";
pub(crate) const OLD_SEGMENT_PREFIX: &[u8] = b"s";

pub(crate) const MARK: &[u8] = b"w";
pub(crate) const SAVED_COUNTS: &[u8] = b"c";

pub(crate) fn encode_mark(segment: u64, offset: u64) -> [u8; 16] {
    let mut mark = [0u8; 16];
    mark[..8].copy_from_slice(&segment.to_be_bytes());
    mark[8..].copy_from_slice(&offset.to_be_bytes());
    mark
}

pub(crate) fn record_key(queue: u64) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[0] = b'r';
    key[1..].copy_from_slice(&queue.to_be_bytes());
    key
}

pub(crate) fn pack_key(queue: u64, first_id: u64) -> [u8; 17] {
    let mut key = [0u8; 17];
    key[0] = b'p';
    key[1..9].copy_from_slice(&queue.to_be_bytes());
    key[9..].copy_from_slice(&first_id.to_be_bytes());
    key
}

/// The number after a one-letter tag (`r`, `p` keys), or the first id of a `p` key.
pub(crate) fn number_in(key: &[u8], at: usize) -> u64 {
    id_of(key.get(at..).unwrap_or_default())
}

/// Where one pack is, and which items it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PackEntry {
    pub(crate) segment: u64,
    pub(crate) offset: u64,
    pub(crate) len: u32,
    pub(crate) count: u32,
    pub(crate) first_seq: u64,
    pub(crate) last_id: u64,
}

impl PackEntry {
    pub(crate) fn encode(&self) -> [u8; 40] {
        let mut out = [0u8; 40];
        out[0..8].copy_from_slice(&self.segment.to_be_bytes());
        out[8..16].copy_from_slice(&self.offset.to_be_bytes());
        out[16..20].copy_from_slice(&self.len.to_be_bytes());
        out[20..24].copy_from_slice(&self.count.to_be_bytes());
        out[24..32].copy_from_slice(&self.first_seq.to_be_bytes());
        out[32..40].copy_from_slice(&self.last_id.to_be_bytes());
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> PackEntry {
        let small = |at: usize| (number_in(bytes, at) >> 32) as u32;
        PackEntry {
            segment: number_in(bytes, 0),
            offset: number_in(bytes, 8),
            len: small(16),
            count: small(20),
            first_seq: number_in(bytes, 24),
            last_id: number_in(bytes, 32),
        }
    }

    /// One past its last sequence number.
    pub(crate) fn end_seq(&self) -> u64 {
        self.first_seq + u64::from(self.count)
    }
}

/// What a commit stores for a queue besides its packs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct QueueRecord {
    /// Sequence numbers below this are in packs.
    pub(crate) next_seq: u64,
    pub(crate) appended_bytes: u64,
    pub(crate) removed_bytes: u64,
    /// The newest id ever appended (0: none) and its enqueue time.
    pub(crate) last_id: u64,
    pub(crate) last_enqueued_ms: u64,
    pub(crate) removed: Removed,
}

impl QueueRecord {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(40 + 16 * 2);
        for number in [
            self.next_seq,
            self.appended_bytes,
            self.removed_bytes,
            self.last_id,
            self.last_enqueued_ms,
        ] {
            out.extend_from_slice(&number.to_be_bytes());
        }
        for (start, end) in self.removed.ranges() {
            out.extend_from_slice(&start.to_be_bytes());
            out.extend_from_slice(&end.to_be_bytes());
        }
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> QueueRecord {
        let ranges = bytes
            .get(40..)
            .unwrap_or_default()
            .chunks_exact(16)
            .map(|pair| (number_in(pair, 0), number_in(pair, 8)))
            .collect();
        QueueRecord {
            next_seq: number_in(bytes, 0),
            appended_bytes: number_in(bytes, 8),
            removed_bytes: number_in(bytes, 16),
            last_id: number_in(bytes, 24),
            last_enqueued_ms: number_in(bytes, 32),
            removed: Removed::from_ranges(ranges),
        }
    }
}

/// The numbers of the queues that exist (have a name).
pub(crate) fn queue_numbers(index: &sled::Tree) -> Result<HashSet<u64>, Error> {
    index
        .scan_prefix(NAME_PREFIX)
        .values()
        .map(|number| Ok(number_in(&number?, 0)))
        .collect()
}

/// The pack of `queue` with the highest first id at or below `id`: (first id, entry).
pub(crate) fn pack_at_or_before(
    index: &sled::Tree,
    queue: u64,
    id: u64,
) -> Result<Option<(u64, PackEntry)>, Error> {
    decode_pack(
        index
            .range(pack_key(queue, 0)..=pack_key(queue, id))
            .next_back(),
    )
}

/// The pack of `queue` with the lowest first id above `id`.
pub(crate) fn pack_after(
    index: &sled::Tree,
    queue: u64,
    id: u64,
) -> Result<Option<(u64, PackEntry)>, Error> {
    let Some(next) = id.checked_add(1) else {
        return Ok(None);
    };
    decode_pack(
        index
            .range(pack_key(queue, next)..=pack_key(queue, u64::MAX))
            .next(),
    )
}

fn decode_pack(
    found: Option<Result<(sled::IVec, sled::IVec), sled::Error>>,
) -> Result<Option<(u64, PackEntry)>, Error> {
    match found {
        None => Ok(None),
        Some(entry) => {
            let (key, value) = entry?;
            Ok(Some((number_in(&key, 9), PackEntry::decode(&value))))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_and_records_round_trip() {
        let entry = PackEntry {
            segment: 3,
            offset: 1 << 40,
            len: 16384,
            count: 128,
            first_seq: 9,
            last_id: u64::MAX - 1,
        };
        assert_eq!(PackEntry::decode(&entry.encode()), entry);
        let record = QueueRecord {
            next_seq: 10,
            appended_bytes: 1000,
            removed_bytes: 300,
            last_id: 77,
            last_enqueued_ms: 1_700_000_000_000,
            removed: Removed::from_ranges(vec![(0, 3), (5, 6)]),
        };
        assert_eq!(QueueRecord::decode(&record.encode()), record);
        assert!(pack_key(1, 5) < pack_key(1, 6) && pack_key(1, u64::MAX) < pack_key(2, 0));
    }
}
