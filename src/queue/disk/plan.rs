//! [`Plan`]: what one commit writes for one queue, taken from its log with appends stopped,
//! and what the log forgets once it is written.

use super::engine::{lock, Depth, Engine, PACK_BYTES};
use super::index::QueueRecord;
use super::log::{stored_len, ItemLog, QueueShared};
use super::pack::PackOut;
use super::record::Record;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// What one commit writes for one queue; see `Engine::commit`.
pub(super) struct Plan {
    pub(super) queue: Arc<QueueShared>,
    pub(super) packs: Vec<PackOut>,
    /// Small packs replaced by `packs` (their first ids).
    pub(super) superseded: Vec<u64>,
    /// The run's first items now written as full packs, or (`None`) written as a small one.
    merged: Option<usize>,
    run_end: usize,
    pub(super) record: Option<QueueRecord>,
    /// Drop packs below this id whose items are all below this sequence number.
    pub(super) sweep: Option<(u64, u64)>,
    written_bytes: u64,
}

impl Plan {
    /// The plan is on disk: the run forgets what is in full packs now.
    pub(super) fn committed(self, engine: &Engine) {
        let mut state = lock(&self.queue.state);
        if state.deleted {
            // Deleted meanwhile: its run is gone (its counts with it), and the next commit
            // drops its packs.
            return;
        }
        engine
            .pending
            .fetch_sub(self.written_bytes, Ordering::Relaxed);
        match self.merged {
            Some(n) => {
                engine.kept.forget(std::mem::take(&mut state.kept_bytes));
                let gone: u64 = state.run.drain(..n).map(|(_, r)| stored_len(&r)).sum();
                state.run_bytes -= gone;
                state.run_first_seq += n as u64;
                state.run_written = 0;
                state.run_packs.clear();
            }
            None => {
                if let Some(pack) = self.packs.first() {
                    engine.kept.add(state.kept_bytes, self.written_bytes);
                    state.kept_bytes += self.written_bytes;
                    state.run_written = self.run_end;
                    state.run_packs.push(pack.first_id());
                }
            }
        }
        if let Some((_, floor)) = self.sweep {
            state.swept = state.swept.max(floor);
        }
    }

    /// The commit failed: everything in the plan is still to be written.
    pub(super) fn retry(self, engine: &Engine) {
        let mut state = lock(&self.queue.state);
        state.changed = true;
        self.queue.mark_dirty(&mut state, engine);
    }
}

impl QueueShared {
    /// What the next commit writes for this queue (taken with appends stopped). A write-out
    /// (no sync asked) leaves a run that is still growing in memory until it fills a pack or
    /// stops growing: written once, as a full pack, rather than as small packs first.
    pub(super) fn plan(queue: &Arc<QueueShared>, depth: Depth, engine: &Engine) -> Option<Plan> {
        let mut state = lock(&queue.state);
        state.dirty = false;
        if state.deleted {
            return None;
        }
        let n = state.run.len();
        let first_seq = state.run_first_seq;
        let all_removed = state.removed.covers(first_seq, first_seq + n as u64);
        let growing = std::mem::take(&mut state.growing);
        if depth == Depth::WriteOut && growing && state.run_bytes < PACK_BYTES && !all_removed {
            queue.mark_dirty(&mut state, engine);
            return None;
        }
        let written_bytes: u64 = state.run[state.run_written..]
            .iter()
            .map(|(_, r)| stored_len(r))
            .sum();
        // Kept runs past their share of the budget are written as they are (see `Kept`).
        let crowded = engine.kept.crowded_by(state.kept_bytes);
        let seal = state.run_bytes >= PACK_BYTES || all_removed || crowded;
        let (packs, superseded, merged) = if n > 0 && seal {
            let packs = match all_removed {
                true => Vec::new(),
                false => full_packs(&state.run, first_seq),
            };
            (packs, state.run_packs.clone(), Some(n))
        } else if n > state.run_written {
            let pack = PackOut {
                first_seq: first_seq + state.run_written as u64,
                items: state.run[state.run_written..].to_vec(),
            };
            (vec![pack], Vec::new(), None)
        } else {
            (Vec::new(), Vec::new(), None)
        };
        let record = std::mem::take(&mut state.changed).then(|| QueueRecord {
            next_seq: first_seq + n as u64,
            appended_bytes: state.appended_bytes,
            removed_bytes: state.removed_bytes,
            last_id: state.last_id,
            last_enqueued_ms: state.last_enqueued_ms,
            removed: state.removed.clone(),
        });
        let floor = state.removed.floor();
        let sealed_below = state.run.first().map_or(u64::MAX, |item| item.0);
        let sweep = (floor > state.swept).then_some((sealed_below, floor));
        Some(Plan {
            queue: queue.clone(),
            packs,
            superseded,
            merged,
            run_end: n,
            record,
            sweep,
            written_bytes,
        })
    }
}

impl ItemLog {
    /// Forgets the run of a queue nothing was appended to since the last call, once all its
    /// items are in packs: those packs stay as written (small ones, as after a restart) and
    /// the queue holds no items in memory. 10 000 queues of one item each kept 3 MiB in runs
    /// (benches/README.md, "Many queues"). Skipped while a commit is under way: its plan
    /// counts on the run as it was.
    pub(crate) fn release_idle_run(&self) {
        let queue = &self.0;
        let engine = &queue.engine;
        engine.between_commits(|| {
            let mut state = lock(&queue.state);
            let appended = std::mem::take(&mut state.appended_lately);
            if appended || state.dirty || state.run_written < state.run.len() {
                return;
            }
            engine.kept.forget(std::mem::take(&mut state.kept_bytes));
            let run = std::mem::take(&mut state.run);
            state.run_first_seq += run.len() as u64;
            state.run_bytes = 0;
            state.run_written = 0;
            state.run_packs = Vec::new();
        });
    }
}

/// The run's items as packs of about [`PACK_BYTES`] each.
fn full_packs(run: &[(u64, Record)], first_seq: u64) -> Vec<PackOut> {
    let mut packs = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, (_, record)) in run.iter().enumerate() {
        bytes += stored_len(record);
        if bytes >= PACK_BYTES || i + 1 == run.len() {
            packs.push(PackOut {
                first_seq: first_seq + start as u64,
                items: run[start..=i].to_vec(),
            });
            start = i + 1;
            bytes = 0;
        }
    }
    packs
}

#[cfg(test)]
mod tests {
    use super::super::engine::Depth;
    use super::super::{Disk, Record};

    /// What writers wait on (bytes not written out) goes back to zero once everything is
    /// written, through small packs and full ones alike; and a run still growing waits.
    #[test]
    fn pending_bytes_return_to_zero_once_written() {
        let dir = tempfile::tempdir().unwrap();
        let disk = Disk::open(dir.path().join("store-1"), 1 << 20, false).unwrap();
        let queue = disk.queue_log("q").unwrap();
        let append = |ids: std::ops::RangeInclusive<u64>| {
            for id in ids {
                queue
                    .append(id, &Record::new(0, None, id, &[7; 1000]))
                    .unwrap();
            }
        };
        append(1..=5);
        assert_eq!(disk.engine.pending_bytes(), 5 * 1020);
        disk.engine.commit(Depth::WriteOut).unwrap();
        assert_eq!(disk.engine.pending_bytes(), 5 * 1020, "a growing run waits");
        disk.engine.commit(Depth::WriteAll).unwrap();
        assert_eq!(disk.engine.pending_bytes(), 0, "written as a small pack");
        append(6..=100);
        disk.engine.commit(Depth::WriteAll).unwrap();
        assert_eq!(disk.engine.pending_bytes(), 0, "written as full packs");
        append(101..=105);
        disk.engine.commit(Depth::WriteOut).unwrap();
        disk.engine.commit(Depth::WriteOut).unwrap();
        assert_eq!(
            disk.engine.pending_bytes(),
            0,
            "written once it stopped growing"
        );
        let ids: Vec<u64> = queue.iter().map(|item| item.unwrap().0).collect();
        assert_eq!(ids, (1..=105).collect::<Vec<_>>());
    }

    /// A queue deleted before its appends were written leaves nothing for writers to wait on,
    /// and nothing counted as kept.
    #[test]
    fn a_deleted_queue_leaves_no_pending_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let disk = Disk::open(dir.path().join("store-1"), 1 << 20, false).unwrap();
        let queue = disk.queue_log("q").unwrap();
        queue
            .append(1, &Record::new(0, None, 1, &[7; 1000]))
            .unwrap();
        disk.engine.commit(Depth::WriteAll).unwrap();
        queue
            .append(2, &Record::new(0, None, 2, &[7; 1000]))
            .unwrap();
        assert_eq!(
            disk.engine.kept.bytes(),
            1020,
            "item 1 is kept for a full pack"
        );
        queue.destroy().unwrap();
        disk.engine.commit(Depth::WriteAll).unwrap();
        assert_eq!(disk.engine.pending_bytes(), 0);
        assert_eq!(disk.engine.kept.bytes(), 0);
    }

    fn ids(log: &super::ItemLog) -> Vec<u64> {
        log.iter().map(|item| item.unwrap().0).collect()
    }

    /// A queue written and then left alone gives its run back on the second look (the first
    /// sees the writes); its items read back from the packs, before and after a restart, and
    /// unwritten appends are never given back.
    #[test]
    fn release_idle_run_forgets_written_items_of_a_queue_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store-1");
        let item = |id: u64| Record::new(0, None, id, &[id as u8; 100]);
        {
            let disk = Disk::open(path.clone(), 1 << 20, false).unwrap();
            let log = disk.queue_log("q").unwrap();
            for id in 1..=3 {
                log.append(id, &item(id)).unwrap();
                disk.engine.commit(Depth::Durable).unwrap();
            }
            assert!(disk.engine.kept.bytes() > 0, "small packs, kept to merge");
            log.release_idle_run();
            assert!(disk.engine.kept.bytes() > 0, "written to lately: kept");
            log.release_idle_run();
            assert_eq!(disk.engine.kept.bytes(), 0, "left alone: given back");
            assert_eq!(ids(&log), vec![1, 2, 3]);
            assert_eq!(log.get(2).unwrap().unwrap().data(), &[2u8; 100][..]);
            assert_eq!(log.take(1).unwrap().unwrap().data(), &[1u8; 100][..]);

            log.append(4, &item(4)).unwrap();
            log.release_idle_run();
            log.release_idle_run();
            assert_eq!(ids(&log), vec![2, 3, 4], "an unwritten append stays");
            disk.engine.commit(Depth::Durable).unwrap();
            assert_eq!(ids(&log), vec![2, 3, 4]);
        }
        let disk = super::super::reopen(&path);
        let log = disk.queue_log("q").unwrap();
        assert_eq!(ids(&log), vec![2, 3, 4]);
        assert_eq!(log.get(4).unwrap().unwrap().data(), &[4u8; 100][..]);
    }
}
