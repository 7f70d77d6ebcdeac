//! An item as readers get it: its id and its stored record.

use super::disk::Record;

/// An item read from a queue. Cheap to clone (the bytes are shared with the storage cache).
#[derive(Debug, Clone)]
pub struct Item {
    id: u64,
    record: Record,
}

impl Item {
    pub(crate) fn new(id: u64, record: Record) -> Item {
        Item { id, record }
    }

    /// The item's id in its queue: unique, increasing in insertion order, never reused.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The client's opaque flags.
    pub fn flags(&self) -> u32 {
        self.record.flags()
    }

    /// The payload.
    pub fn data(&self) -> &[u8] {
        self.record.data()
    }

    pub(crate) fn record(&self) -> &Record {
        &self.record
    }

    /// Payload bytes.
    pub(crate) fn len(&self) -> u64 {
        self.record.payload_len()
    }

    /// Whether its exptime has passed or it is older than the queue's max age.
    pub(crate) fn is_expired(&self, at: Expiry) -> bool {
        self.record
            .expires_ms()
            .is_some_and(|expires| expires <= at.now)
            || (at.max_age_ms > 0 && at.now.saturating_sub(self.enqueued_ms()) > at.max_age_ms)
    }

    /// When the item expires (unix ms), `None` for never.
    pub fn expires_ms(&self) -> Option<u64> {
        self.record.expires_ms()
    }

    pub(crate) fn enqueued_ms(&self) -> u64 {
        self.record.enqueued_ms()
    }
}

/// What expires an item at a given time: its exptime, and its queue's max age (0: none).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Expiry {
    pub(crate) now: u64,
    pub(crate) max_age_ms: u64,
}
