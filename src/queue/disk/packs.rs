//! Reading a queue's packs back: where the index says a pack is, the read from its segment,
//! and the queue's cache of the last packs read (see `log`, which walks them).

use super::index::{self, PackEntry};
use super::log::{ItemLog, LogState};
use super::pack::Pack;
use super::Error;
use std::sync::Arc;

/// Packs kept decoded per queue: the one at the head and one more (a cursor elsewhere).
const CACHED_PACKS: usize = 2;

impl ItemLog {
    /// The pack that would hold `id` (not in the run), read or from the cache.
    pub(super) fn pack_holding(
        &self,
        state: &mut LogState,
        id: u64,
    ) -> Result<Option<Arc<Pack>>, Error> {
        if let Some(pack) = cached(state, id) {
            return Ok(Some(pack));
        }
        match self.entry_at_or_before(id)? {
            Some((first_id, entry)) if entry.last_id >= id => {
                self.load(state, first_id, entry).map(Some)
            }
            _ => Ok(None),
        }
    }

    /// Reads a pack (or takes it from the cache). A pack that cannot be read back is logged
    /// and its items count as removed, so the queue goes on serving.
    pub(super) fn load(
        &self,
        state: &mut LogState,
        first_id: u64,
        entry: PackEntry,
    ) -> Result<Arc<Pack>, Error> {
        // By where it is, not by first id: a full pack takes the first id of the small one it
        // replaced, with more items.
        let place = (entry.segment, entry.offset);
        state.cache_used = true;
        if let Some((_, _, pack)) = state.cache.iter().find(|cached| cached.1 == place) {
            return Ok(pack.clone());
        }
        let engine = &self.0.engine;
        let read = engine
            .segments
            .read(entry.segment, entry.offset, entry.len as usize)
            .and_then(|frame| Pack::decode(frame, self.0.number));
        let pack = match read {
            Ok(pack) => Arc::new(pack),
            Err(e) => {
                log::error!(
                    "cannot read back {} items (ids {} to {}) in segment {}: {}; they are dropped",
                    entry.count,
                    first_id,
                    entry.last_id,
                    entry.segment,
                    e
                );
                state.removed.insert_range(entry.first_seq, entry.end_seq());
                state.changed = true;
                self.0.mark_dirty(state, engine);
                Arc::new(Pack {
                    first_seq: entry.first_seq,
                    ids: Vec::new(),
                    records: Vec::new(),
                })
            }
        };
        if state.cache.len() == CACHED_PACKS {
            state.cache.remove(0);
        }
        state.cache.push((first_id, place, pack.clone()));
        Ok(pack)
    }

    /// Drops the cached packs unless a read used them since the last call, and says whether
    /// it did. Packs stay cached for the reader walking them; a queue read once (`stats`
    /// reads every head) would otherwise keep up to [`CACHED_PACKS`] packs in memory for good,
    /// per queue (benches/README.md, "Many deep queues").
    pub(crate) fn release_unused_cache(&self) -> bool {
        let mut state = self.state();
        let used = std::mem::take(&mut state.cache_used);
        if !used {
            state.cache = Vec::new();
        }
        used
    }

    /// How many packs are cached.
    pub(crate) fn cached_packs(&self) -> usize {
        self.state().cache.len()
    }

    /// Drops the cached packs (see `QueueState::looking`).
    pub(crate) fn drop_cache(&self) {
        self.state().cache = Vec::new();
    }

    pub(super) fn entry_at_or_before(&self, id: u64) -> Result<Option<(u64, PackEntry)>, Error> {
        index::pack_at_or_before(&self.0.engine.index, self.0.number, id)
    }

    pub(super) fn entry_after(&self, id: u64) -> Result<Option<(u64, PackEntry)>, Error> {
        index::pack_after(&self.0.engine.index, self.0.number, id)
    }
}

/// The cached pack holding `id`, if any. A pack holds every item of its queue between its
/// first and last ids, so a cached one answers for that span even after a fuller pack
/// superseded it (items never change).
pub(super) fn cached(state: &mut LogState, id: u64) -> Option<Arc<Pack>> {
    let pack = state
        .cache
        .iter()
        .find(|(first, _, pack)| !pack.ids.is_empty() && *first <= id && id <= pack.last_id())
        .map(|(_, _, pack)| pack.clone());
    state.cache_used |= pack.is_some();
    pack
}

#[cfg(test)]
mod tests {
    use super::super::engine::Depth;
    use super::super::log::{ItemLog, Items};
    use super::super::{Disk, Record};

    /// Queue `q` of items 1 to `count`, 1000 bytes each, written as full packs.
    fn full_packs_of(dir: &std::path::Path, count: u64) -> (Disk, ItemLog) {
        let disk = Disk::open(dir.join("store-1"), 1 << 20, false).unwrap();
        let queue = disk.queue_log("q").unwrap();
        for id in 1..=count {
            queue
                .append(id, &Record::new(0, None, id, &[7; 1000]))
                .unwrap();
        }
        disk.engine.commit(Depth::WriteAll).unwrap();
        (disk, queue)
    }

    /// A read's packs stay cached while reads use them, and go at the first call that finds
    /// them unused since the one before; the next read loads them again.
    #[test]
    fn cached_packs_go_once_no_read_used_them() {
        let dir = tempfile::tempdir().unwrap();
        let (_disk, queue) = full_packs_of(dir.path(), 200);
        assert_eq!(queue.cached_packs(), 0);
        let read = |id| queue.get(id).unwrap().unwrap().data().to_vec();
        assert_eq!(read(1), vec![7; 1000]);
        assert_eq!(
            queue.cached_packs(),
            1,
            "items in full packs are read from one"
        );
        assert!(queue.release_unused_cache(), "a read used the cache");
        assert_eq!(queue.cached_packs(), 1, "used since the last call: kept");
        assert!(!queue.release_unused_cache());
        assert_eq!(
            queue.cached_packs(),
            0,
            "unused since the last call: dropped"
        );
        assert_eq!(read(2), vec![7; 1000]);
        assert_eq!(queue.cached_packs(), 1);
    }

    /// A walk told to read at most one pack not cached stops before the second, where it
    /// was, and goes on from there when allowed; an unbounded walk reads to the end.
    #[test]
    fn a_walk_reads_no_more_packs_than_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let (_disk, queue) = full_packs_of(dir.path(), 500);
        let ids = |walk: &mut Items| -> Vec<u64> {
            walk.by_ref().map(|entry| entry.unwrap().0).collect()
        };
        let mut walk = queue.range(1, u64::MAX).reading_at_most(1);
        let first = ids(&mut walk);
        assert!(walk.paused(), "stopped at the second pack, not at the end");
        assert!(!first.is_empty() && first.len() < 500);
        assert_eq!(first, (1..=first.len() as u64).collect::<Vec<_>>());
        assert_eq!(queue.cached_packs(), 1);
        walk.read_more(1);
        let second = ids(&mut walk);
        assert!(walk.paused());
        assert_eq!(second.first(), Some(&(first.len() as u64 + 1)));
        assert_eq!(queue.cached_packs(), 2);
        let all = ids(&mut queue.range(1, u64::MAX));
        assert_eq!(all, (1..=500).collect::<Vec<_>>());
    }
}
