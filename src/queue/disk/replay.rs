//! Start-up after a crash: the blocks written after the index's mark are put back into it.
//!
//! A commit is durable once its block is (one `fdatasync` of the segment); the index records
//! it lazily, up to the next checkpoint. So the blocks past the mark are read again, in
//! order, from the mark's segment and every later one: each pack of a queue that still exists
//! replaces the index entries it covers (the small packs a full pack superseded, or itself),
//! and each record frame becomes the queue's record (counters and removed ranges as of that
//! commit). A segment is read up to its first invalid block, the tail a crash tore (a segment
//! is never appended to after a start, so a torn block is always its last).

use super::index::{self, PackEntry};
use super::pack::{self, Pack, BLOCK_HEADER};
use super::segments::Segments;
use super::Error;
use std::collections::HashSet;

/// Replays what follows the mark; returns the blocks replayed. One index write at a time,
/// the block's mark last, as a commit does: a crash during replay leaves a prefix of it,
/// which the next start replays again.
pub(super) fn replay(index: &sled::Tree, segments: &Segments) -> Result<u64, Error> {
    let (mark_segment, mark_offset) = match index.get(index::MARK)? {
        Some(mark) => (index::number_in(&mark, 0), index::number_in(&mark, 8)),
        None => (0, 0),
    };
    let mut named: HashSet<u64> = index::queue_numbers(index)?;
    let mut replayed = 0;
    for number in segments.numbers()? {
        if number < mark_segment {
            continue;
        }
        // Block by block: memory holds one block, whatever the segment's size.
        let mut block = if number == mark_segment {
            mark_offset
        } else {
            0
        };
        while let Some(body) = read_block(segments, number, block) {
            for (frame_at, frame) in pack::frames(&body) {
                let queue = pack::queue_of(frame);
                if let Some((name, record)) = pack::record_in(frame) {
                    // A queue made since the mark is named here (a later one of the same
                    // name, made after a delete, comes later and wins).
                    let name = std::str::from_utf8(name).unwrap_or_default();
                    index.insert(index::name_key(name), &queue.to_be_bytes()[..])?;
                    index.insert(index::record_key(queue), record)?;
                    named.insert(queue);
                    continue;
                }
                if !named.contains(&queue) {
                    continue;
                }
                let Ok(pack) = Pack::decode(frame.to_vec(), queue) else {
                    continue;
                };
                let (Some(&first_id), Some(&last_id)) = (pack.ids.first(), pack.ids.last()) else {
                    continue;
                };
                // The pack replaces what the index has for its ids: the small packs it
                // superseded, or itself.
                let covered = index::pack_key(queue, first_id)..=index::pack_key(queue, last_id);
                for key in index.range(covered).keys() {
                    index.remove(key?)?;
                }
                let entry = PackEntry {
                    segment: number,
                    offset: block + (BLOCK_HEADER + frame_at) as u64,
                    len: frame.len() as u32,
                    count: pack.ids.len() as u32,
                    first_seq: pack.first_seq,
                    last_id,
                };
                index.insert(index::pack_key(queue, first_id), &entry.encode()[..])?;
            }
            let end = block + (BLOCK_HEADER + body.len()) as u64;
            index.insert(index::MARK, &index::encode_mark(number, end)[..])?;
            replayed += 1;
            block = end;
        }
    }
    Ok(replayed)
}

/// The body of the block at `offset` of segment `number`, if a whole, intact one is there.
fn read_block(segments: &Segments, number: u64, offset: u64) -> Option<Vec<u8>> {
    let header = segments.read(number, offset, BLOCK_HEADER).ok()?;
    let (len, crc) = pack::block_header(&header)?;
    // A torn header may give any length: no larger than what the file holds.
    if offset + (BLOCK_HEADER + len) as u64 > segments.size(number).ok()? {
        return None;
    }
    let body = segments
        .read(number, offset + BLOCK_HEADER as u64, len)
        .ok()?;
    pack::block_intact(crc, &body).then_some(body)
}

#[cfg(test)]
mod tests {
    use super::super::{Disk, Record};

    /// What a crash leaves when the index had not recorded the last commits: their blocks
    /// only. Replay must bring back the queues they made, their items and removals.
    #[test]
    fn blocks_past_the_mark_are_replayed_into_an_index_that_lost_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store-1");
        {
            let disk = Disk::open(store.clone(), 1 << 20, false).unwrap();
            disk.write_out().unwrap();
            let old = disk.queue_log("old").unwrap();
            for id in 1..=3 {
                old.append(id, &Record::new(0, None, id, b"o")).unwrap();
            }
            disk.write_out().unwrap();
            // Everything from here on is in blocks only.
            let index = disk.engine.index.clone();
            let before: Vec<_> = index.iter().collect::<Result<_, _>>().unwrap();
            old.take(1).unwrap().unwrap();
            let new = disk.queue_log("new").unwrap();
            for id in 4..=5 {
                new.append(id, &Record::new(7, None, id, b"new item"))
                    .unwrap();
            }
            disk.engine
                .commit(super::super::engine::Depth::WriteAll)
                .unwrap();
            // The index forgets the last commit, as if it had not reached the disk.
            index.clear().unwrap();
            for (key, value) in before {
                index.insert(key, value).unwrap();
            }
            disk.db.flush().unwrap();
        }
        let disk = super::super::reopen(&store);
        let ids = |queue: &str| -> Vec<(u64, Vec<u8>)> {
            let log = disk.queue_log(queue).unwrap();
            log.iter()
                .map(|item| item.map(|(id, r)| (id, r.data().to_vec())))
                .collect::<Result<_, _>>()
                .unwrap()
        };
        assert_eq!(ids("old"), vec![(2, b"o".to_vec()), (3, b"o".to_vec())]);
        assert_eq!(
            ids("new"),
            vec![(4, b"new item".to_vec()), (5, b"new item".to_vec())]
        );
        let new = disk.queue_log("new").unwrap();
        assert_eq!(new.count(&[]).unwrap().bytes, 16);
        assert_eq!(new.get(4).unwrap().unwrap().flags(), 7);
    }
}
