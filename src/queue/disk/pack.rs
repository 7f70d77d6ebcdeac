//! Packs: several items of one queue stored as one frame of a segment file; and blocks: the
//! frames of one commit, appended to a segment in one write.
//!
//! Block (big-endian): `"tern" | body_len u32 | crc32(body) u32 | body`, the body being the
//! commit's frames. Frame: `body_len u32 | crc32(body) u32 | body`, where body is
//! `queue u64 | first_seq u64 | count u32`, then per item `id u64 | len u32 | record`. A block
//! or frame whose length or checksum does not match is never used: a torn write at a crash,
//! or a damaged disk. A whole block or none is replayed at start-up, which keeps a fanout
//! atomic even when the index had not recorded its commit.

use super::record::Record;
use super::Error;
use bytes::Bytes;

/// Frame header: body length and checksum.
pub(crate) const FRAME_HEADER: usize = 8;
/// Block header: magic, body length and checksum.
pub(crate) const BLOCK_HEADER: usize = 12;
const BLOCK_MAGIC: &[u8; 4] = b"tern";

/// Wraps a commit's frames (in `out` after `BLOCK_HEADER` bytes reserved for the header).
pub(crate) fn seal_block(out: &mut [u8]) {
    let body = &out[BLOCK_HEADER..];
    let (len, crc) = (body.len() as u32, crc32fast::hash(body));
    out[0..4].copy_from_slice(BLOCK_MAGIC);
    out[4..8].copy_from_slice(&len.to_be_bytes());
    out[8..12].copy_from_slice(&crc.to_be_bytes());
}

/// The body length and checksum a block header gives; `None` if it is no block header.
pub(crate) fn block_header(header: &[u8]) -> Option<(usize, u32)> {
    let header = header.get(..BLOCK_HEADER)?;
    if &header[0..4] != BLOCK_MAGIC {
        return None;
    }
    let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
    let crc = u32::from_be_bytes([header[8], header[9], header[10], header[11]]);
    Some((len, crc))
}

/// Whether a block's body matches the checksum of its header.
pub(crate) fn block_intact(crc: u32, body: &[u8]) -> bool {
    crc32fast::hash(body) == crc
}

/// The valid blocks of `bytes` (a segment's content from a block boundary), in order, as
/// (offset of the block, its body); stops at the first invalid one (a torn tail).
#[cfg(test)]
pub(crate) fn blocks(bytes: &[u8]) -> Vec<(usize, &[u8])> {
    let mut found = Vec::new();
    let mut at = 0;
    while let Some((len, crc)) = bytes.get(at..).and_then(block_header) {
        let Some(body) = bytes.get(at + BLOCK_HEADER..at + BLOCK_HEADER + len) else {
            break;
        };
        if !block_intact(crc, body) {
            break;
        }
        found.push((at, body));
        at += BLOCK_HEADER + len;
    }
    found
}

/// The frames of a block's body: (offset in the body, the whole frame).
pub(crate) fn frames(body: &[u8]) -> Vec<(usize, &[u8])> {
    let mut found = Vec::new();
    let mut at = 0;
    while let Some(header) = body.get(at..at + FRAME_HEADER) {
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let Some(frame) = body.get(at..at + FRAME_HEADER + len) else {
            break;
        };
        found.push((at, frame));
        at += FRAME_HEADER + len;
    }
    found
}

/// The `count` of a frame that holds a queue's name and record (counters and removed
/// ranges, as the index keeps them) instead of items: a commit carries the records it
/// changes, so that a new queue and removals are as durable as the commit.
const RECORD_FRAME: u32 = u32::MAX;

/// Appends a record frame for queue `queue`, named `name`, to `out`.
pub(crate) fn encode_record(queue: u64, name: &str, record: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_HEADER]);
    out.extend_from_slice(&queue.to_be_bytes());
    out.extend_from_slice(&0u64.to_be_bytes());
    out.extend_from_slice(&RECORD_FRAME.to_be_bytes());
    out.extend_from_slice(&(name.len() as u16).to_be_bytes());
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(record);
    let body = &out[start + FRAME_HEADER..];
    let (len, crc) = (body.len() as u32, crc32fast::hash(body));
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_be_bytes());
}

/// The queue's name and record a frame holds, if it is a (valid) record frame.
pub(crate) fn record_in(frame: &[u8]) -> Option<(&[u8], &[u8])> {
    let count = frame.get(FRAME_HEADER + 16..FRAME_HEADER + 20)?;
    if count != RECORD_FRAME.to_be_bytes() {
        return None;
    }
    let len = frame.get(FRAME_HEADER..)?.len() as u32;
    let crc = u32::from_be_bytes(frame.get(4..8)?.try_into().ok()?);
    let declared = u32::from_be_bytes(frame.get(0..4)?.try_into().ok()?);
    if len != declared || crc32fast::hash(&frame[FRAME_HEADER..]) != crc {
        return None;
    }
    let rest = &frame[FRAME_HEADER + BODY_HEADER..];
    let name_len = u16::from_be_bytes(rest.get(0..2)?.try_into().ok()?) as usize;
    let name = rest.get(2..2 + name_len)?;
    Some((name, &rest[2 + name_len..]))
}

/// The queue a frame belongs to.
pub(crate) fn queue_of(frame: &[u8]) -> u64 {
    frame
        .get(FRAME_HEADER..FRAME_HEADER + 8)
        .map_or(0, |b| u64::from_be_bytes(b.try_into().unwrap_or([0; 8])))
}
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
        let count = number(&frame, FRAME_HEADER + 16, 4).unwrap_or(0) as u32;
        if count == RECORD_FRAME {
            return Err(corrupt("a record, not a pack"));
        }
        let count = count as usize;
        let frame = Bytes::from(frame);
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
                .push(Record::from_stored(frame.slice(at..at + len)));
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

    #[test]
    fn blocks_are_found_up_to_a_torn_one() {
        let mut segment = Vec::new();
        for queue in [1u64, 2] {
            let mut block = vec![0u8; BLOCK_HEADER];
            for first_seq in [0u64, 1] {
                let items = vec![(first_seq + 10, Record::new(0, None, 0, b"x"))];
                PackOut { first_seq, items }.encode(queue, &mut block);
            }
            seal_block(&mut block);
            segment.extend_from_slice(&block);
        }
        let whole = blocks(&segment);
        assert_eq!(whole.len(), 2);
        let in_second = frames(whole[1].1);
        assert_eq!(in_second.len(), 2);
        assert_eq!(queue_of(in_second[1].1), 2);
        let decoded = Pack::decode(in_second[1].1.to_vec(), 2).unwrap();
        assert_eq!(decoded.ids, vec![11]);
        segment.truncate(segment.len() - 1);
        assert_eq!(
            blocks(&segment).len(),
            1,
            "the torn second block is not used"
        );
    }
}
