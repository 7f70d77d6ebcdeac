//! How one item is stored: a small fixed header, then the payload.
//!
//! Layout (big-endian): `flags u32 | expires_ms u64 (u64::MAX = never) | enqueued_ms u64 |
//! payload`. Keys are item ids as big-endian u64, so sled's key order is FIFO order.

use sled::IVec;
use std::time::{SystemTime, UNIX_EPOCH};

const HEADER: usize = 4 + 8 + 8;
const NEVER: u64 = u64::MAX;

/// An item read from a queue. Cheap to clone (the bytes are shared with sled's cache).
#[derive(Debug, Clone)]
pub struct Item {
    id: u64,
    stored: IVec,
}

impl Item {
    pub(crate) fn new(id: u64, stored: IVec) -> Item {
        Item { id, stored }
    }

    /// The item's id in its queue: unique, increasing in insertion order, never reused.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The client's opaque flags.
    pub fn flags(&self) -> u32 {
        u32::from_be_bytes(field(&self.stored, 0))
    }

    /// The payload.
    pub fn data(&self) -> &[u8] {
        self.stored.get(HEADER..).unwrap_or_default()
    }

    pub(crate) fn stored(&self) -> &IVec {
        &self.stored
    }

    pub(crate) fn is_expired(&self, now_ms: u64) -> bool {
        expires_ms(&self.stored) <= now_ms
    }

    /// When the item expires (unix ms), `None` for never.
    pub(crate) fn expires_ms(&self) -> Option<u64> {
        Some(expires_ms(&self.stored)).filter(|&ms| ms != NEVER)
    }

    pub(crate) fn enqueued_ms(&self) -> u64 {
        u64::from_be_bytes(field(&self.stored, 12))
    }
}

/// The stored form of a new item.
pub(crate) fn encode(flags: u32, expires_ms: Option<u64>, now_ms: u64, data: &[u8]) -> Vec<u8> {
    let mut stored = Vec::with_capacity(HEADER + data.len());
    stored.extend_from_slice(&flags.to_be_bytes());
    stored.extend_from_slice(&expires_ms.unwrap_or(NEVER).to_be_bytes());
    stored.extend_from_slice(&now_ms.to_be_bytes());
    stored.extend_from_slice(data);
    stored
}

/// Payload length of a stored item.
pub(crate) fn payload_len(stored: &[u8]) -> u64 {
    stored.len().saturating_sub(HEADER) as u64
}

fn expires_ms(stored: &[u8]) -> u64 {
    u64::from_be_bytes(field(stored, 4))
}

/// An 8- or 4-byte header field; a truncated record reads as zeros rather than panicking.
fn field<const N: usize>(stored: &[u8], at: usize) -> [u8; N] {
    stored
        .get(at..at + N)
        .and_then(|bytes| bytes.try_into().ok())
        .unwrap_or([0; N])
}

pub(crate) fn key(id: u64) -> [u8; 8] {
    id.to_be_bytes()
}

pub(crate) fn id_of(key: &[u8]) -> u64 {
    u64::from_be_bytes(field(key, 0))
}

/// Milliseconds since the unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}
