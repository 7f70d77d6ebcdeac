//! How one item is stored: a small fixed header, then the payload.
//!
//! Layout (big-endian): `flags u32 | expires_ms u64 (u64::MAX = never) | enqueued_ms u64 |
//! payload`. Keys are item ids as big-endian u64, so sled's key order is FIFO order.

use bytes::Bytes;

const HEADER: usize = 4 + 8 + 8;
const NEVER: u64 = u64::MAX;

/// One stored item: its header and payload, as kept on disk. Cheap to clone: the bytes are
/// shared, with the pack read back that holds them (a slice of its frame, not a copy: copying
/// 128 KiB frames into sled's `IVec` took 30 % of a drain's CPU) or with sled's cache.
#[derive(Debug, Clone)]
pub(crate) struct Record(Bytes);

impl Record {
    /// The stored form of a new item. `expires_ms`: unix ms, `None` for never.
    pub(crate) fn new(
        flags: u32,
        expires_ms: Option<u64>,
        enqueued_ms: u64,
        data: &[u8],
    ) -> Record {
        let mut stored = Vec::with_capacity(HEADER + data.len());
        stored.extend_from_slice(&flags.to_be_bytes());
        stored.extend_from_slice(&expires_ms.unwrap_or(NEVER).to_be_bytes());
        stored.extend_from_slice(&enqueued_ms.to_be_bytes());
        stored.extend_from_slice(data);
        Record(Bytes::from(stored))
    }

    /// A record whose stored form is `stored` (a slice of a pack's frame).
    pub(crate) fn from_stored(stored: Bytes) -> Record {
        Record(stored)
    }

    /// A record as sled returned it (failed reads; format 1's items), sharing its buffer.
    pub(crate) fn from_sled(stored: sled::IVec) -> Record {
        Record(Bytes::from_owner(stored))
    }

    pub(crate) fn stored(&self) -> &[u8] {
        &self.0
    }

    pub(crate) fn flags(&self) -> u32 {
        u32::from_be_bytes(field(&self.0, 0))
    }

    pub(crate) fn data(&self) -> &[u8] {
        self.0.get(HEADER..).unwrap_or_default()
    }

    /// Payload bytes, as limits and `stats` count them.
    pub(crate) fn payload_len(&self) -> u64 {
        payload_len(&self.0)
    }

    /// When the item expires (unix ms), `None` for never.
    pub(crate) fn expires_ms(&self) -> Option<u64> {
        Some(u64::from_be_bytes(field(&self.0, 4))).filter(|&ms| ms != NEVER)
    }

    pub(crate) fn enqueued_ms(&self) -> u64 {
        u64::from_be_bytes(field(&self.0, 12))
    }
}

/// Payload length of a stored item, without decoding the rest.
pub(crate) fn payload_len(stored: &[u8]) -> u64 {
    stored.len().saturating_sub(HEADER) as u64
}

/// An 8- or 4-byte field; a truncated record reads as zeros rather than panicking.
fn field<const N: usize>(stored: &[u8], at: usize) -> [u8; N] {
    stored
        .get(at..at + N)
        .and_then(|bytes| bytes.try_into().ok())
        .unwrap_or([0; N])
}

pub(crate) fn key(id: u64) -> [u8; 8] {
    id.to_be_bytes()
}

/// The id (or any u64) stored big-endian in `bytes`.
pub(crate) fn id_of(bytes: &[u8]) -> u64 {
    u64::from_be_bytes(field(bytes, 0))
}
