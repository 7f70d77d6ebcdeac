//! Packs: several items of one queue stored as one frame of a segment file.
//!
//! Frame (big-endian): `body_len u32 | crc32(body) u32 | body`, where body is
//! `queue u64 | first_seq u64 | count u32`, then per item `id u64 | len u32 | record`. A frame
//! whose length or checksum does not match is never served: a torn write at a crash, or a
//! damaged disk.

use super::record::Record;
use super::Error;
use sled::IVec;

/// Frame header: body length and checksum.
pub(crate) const FRAME_HEADER: usize = 8;
const BODY_HEADER: usize = 8 + 8 + 4;
const ITEM_HEADER: usize = 8 + 4;

/// Items of one queue, consecutive in its sequence numbers, ready to be written.
pub(crate) struct PackOut {
    pub(crate) first_seq: u64,
    pub(crate) items: Vec<(u64, Record)>,
}

impl PackOut {
    pub(crate) fn first_id(&self) -> u64 {
        self.items.first().map_or(0, |item| item.0)
    }

    pub(crate) fn last_id(&self) -> u64 {
        self.items.last().map_or(0, |item| item.0)
    }

    /// Appends the frame to `out`; returns its length.
    pub(crate) fn encode(&self, queue: u64, out: &mut Vec<u8>) -> usize {
        let start = out.len();
        out.extend_from_slice(&[0; FRAME_HEADER]);
        out.extend_from_slice(&queue.to_be_bytes());
        out.extend_from_slice(&self.first_seq.to_be_bytes());
        out.extend_from_slice(&(self.items.len() as u32).to_be_bytes());
        for (id, record) in &self.items {
            let stored = record.stored();
            out.extend_from_slice(&id.to_be_bytes());
            out.extend_from_slice(&(stored.len() as u32).to_be_bytes());
            out.extend_from_slice(stored);
        }
        let body = &out[start + FRAME_HEADER..];
        let (len, crc) = (body.len() as u32, crc32fast::hash(body));
        out[start..start + 4].copy_from_slice(&len.to_be_bytes());
        out[start + 4..start + 8].copy_from_slice(&crc.to_be_bytes());
        out.len() - start
    }
}

/// A pack read back: its items' ids and records, the records sharing the frame's buffer.
pub(crate) struct Pack {
    pub(crate) first_seq: u64,
    pub(crate) ids: Vec<u64>,
    pub(crate) records: Vec<Record>,
}

impl Pack {
    /// Decodes a whole frame (header included) of queue `queue`.
    pub(crate) fn decode(frame: Vec<u8>, queue: u64) -> Result<Pack, Error> {
        let corrupt = |why: &str| Error::Corrupt(format!("pack of queue {queue}: {why}"));
        let number = |bytes: &[u8], at: usize, n: usize| -> Option<u64> {
            let field = bytes.get(at..at + n)?;
            Some(field.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
        };
        let len = number(&frame, 0, 4).ok_or_else(|| corrupt("short frame"))? as usize;
        let crc = number(&frame, 4, 4).ok_or_else(|| corrupt("short frame"))? as u32;
        if frame.len() != FRAME_HEADER + len
            || crc32fast::hash(&frame[FRAME_HEADER..]) != crc
            || number(&frame, FRAME_HEADER, 8) != Some(queue)
        {
            return Err(corrupt("checksum or length mismatch"));
        }
        let first_seq = number(&frame, FRAME_HEADER + 8, 8).unwrap_or(0);
        let count = number(&frame, FRAME_HEADER + 16, 4).unwrap_or(0) as usize;
        let frame = IVec::from(frame);
        let mut pack = Pack {
            first_seq,
            ids: Vec::with_capacity(count),
            records: Vec::with_capacity(count),
        };
        let mut at = FRAME_HEADER + BODY_HEADER;
        for _ in 0..count {
            let id = number(&frame, at, 8).ok_or_else(|| corrupt("truncated item"))?;
            let len = number(&frame, at + 8, 4).ok_or_else(|| corrupt("truncated item"))? as usize;
            at += ITEM_HEADER;
            if at + len > frame.len() {
                return Err(corrupt("truncated item"));
            }
            pack.ids.push(id);
            pack.records
                .push(Record::from_stored(frame.subslice(at, len)));
            at += len;
        }
        Ok(pack)
    }

    pub(crate) fn last_id(&self) -> u64 {
        self.ids.last().copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_round_trips_and_a_flipped_bit_is_caught() {
        let items = vec![
            (7, Record::new(1, None, 10, b"first")),
            (9, Record::new(2, Some(99), 11, b"")),
            (12, Record::new(3, None, 12, &[0u8; 300])),
        ];
        let out = PackOut {
            first_seq: 40,
            items,
        };
        let mut frame = Vec::new();
        let len = out.encode(5, &mut frame);
        assert_eq!(len, frame.len());
        let pack = Pack::decode(frame.clone(), 5).unwrap();
        assert_eq!(pack.first_seq, 40);
        assert_eq!(pack.ids, vec![7, 9, 12]);
        assert_eq!(pack.records[0].data(), b"first");
        assert_eq!(pack.records[1].expires_ms(), Some(99));
        assert_eq!(pack.records[2].data().len(), 300);
        assert!(
            Pack::decode(frame.clone(), 6).is_err(),
            "another queue's pack"
        );
        let last = frame.len() - 1;
        frame[last] ^= 1;
        assert!(Pack::decode(frame, 5).is_err());
    }
}
