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
use std::collections::{HashMap, HashSet};

/// Replays what follows the mark; returns the blocks replayed. `live` (packs in use per
/// segment) is kept up to date.
pub(super) fn replay(
    index: &sled::Tree,
    segments: &Segments,
    live: &mut HashMap<u64, u64>,
) -> Result<u64, Error> {
    let (mark_segment, mark_offset) = match index.get(index::MARK)? {
        Some(mark) => (index::number_in(&mark, 0), index::number_in(&mark, 8)),
        None => (0, 0),
    };
    let named: HashSet<u64> = index
        .scan_prefix(index::NAME_PREFIX)
        .values()
        .map(|number| Ok(index::number_in(&number?, 0)))
        .collect::<Result<_, Error>>()?;
    let mut replayed = 0;
    for number in segments.numbers()? {
        if number < mark_segment {
            continue;
        }
        let start = if number == mark_segment {
            mark_offset
        } else {
            0
        };
        let bytes = segments.read_from(number, start)?;
        for (at, body) in pack::blocks(&bytes) {
            let block = start + at as u64;
            let mut batch = sled::Batch::default();
            let mut changed = HashSet::new();
            for (frame_at, frame) in pack::frames(body) {
                let queue = pack::queue_of(frame);
                if !named.contains(&queue) {
                    continue;
                }
                if let Some(record) = pack::record_in(frame) {
                    batch.insert(&index::record_key(queue)[..], record);
                    continue;
                }
                let Ok(pack) = Pack::decode(frame.to_vec(), queue) else {
                    continue;
                };
                let (Some(&first_id), Some(&last_id)) = (pack.ids.first(), pack.ids.last()) else {
                    continue;
                };
                let covered = index::pack_key(queue, first_id)..=index::pack_key(queue, last_id);
                for entry in index.range(covered) {
                    let (key, value) = entry?;
                    let segment = PackEntry::decode(&value).segment;
                    if let Some(count) = live.get_mut(&segment) {
                        *count = count.saturating_sub(1);
                    }
                    changed.insert(segment);
                    batch.remove(key);
                }
                let entry = PackEntry {
                    segment: number,
                    offset: block + (BLOCK_HEADER + frame_at) as u64,
                    len: frame.len() as u32,
                    count: pack.ids.len() as u32,
                    first_seq: pack.first_seq,
                    last_id,
                };
                batch.insert(&index::pack_key(queue, first_id)[..], &entry.encode()[..]);
                *live.entry(number).or_default() += 1;
                changed.insert(number);
            }
            for segment in changed {
                match live.get(&segment) {
                    Some(&count) if count > 0 => {
                        batch.insert(&index::segment_key(segment)[..], &count.to_be_bytes()[..])
                    }
                    _ => {
                        live.remove(&segment);
                        batch.remove(&index::segment_key(segment)[..]);
                    }
                }
            }
            let end = block + (BLOCK_HEADER + body.len()) as u64;
            batch.insert(index::MARK, &index::encode_mark(number, end)[..]);
            index.apply_batch(batch)?;
            replayed += 1;
        }
    }
    Ok(replayed)
}
