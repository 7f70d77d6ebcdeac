//! The store: the registry of queues, opening and closing the data directory, and the
//! operations on whole queues (read, delete, flush, stats).

use super::disk::{self, Disk};
use super::durability::Durability;
use super::handle::Queue;
use super::lease::Lease;
use super::space::SpaceGuard;
use super::state::QueueState;
use super::{compact, timeout, Config, Error, Item, QueueStats, ReadMode};
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// The store: cheap to clone, shared by all connections.
#[derive(Clone)]
pub struct Store {
    pub(crate) shared: Arc<Shared>,
}

pub(crate) struct Shared {
    /// The database in use; compaction replaces it while it holds every queue's lock, so it
    /// may be looked at only under a queue's lock or the registry's write lock.
    pub(crate) disk: RwLock<Arc<Disk>>,
    pub(crate) config: Config,
    queues: RwLock<BTreeMap<String, Arc<Queue>>>,
    pub(crate) durability: Durability,
    pub(crate) space: SpaceGuard,
}

impl Drop for Shared {
    /// Cursor positions and removals are saved lazily; a store dropped without
    /// [`Store::close`] still keeps them (only a crash can lose the last few).
    fn drop(&mut self) {
        let queues = self.queues.read().unwrap_or_else(|e| e.into_inner());
        for (name, queue) in queues.iter() {
            if let Err(e) = queue.lock().save_cursors() {
                log::error!("cannot save the cursors of {}: {}", name, e);
            }
        }
        // What is still in memory (items, removals) goes to the files too.
        if let Err(e) = self.durability.sync_now() {
            log::error!("cannot write the queues out: {}", e);
        }
    }
}

impl Store {
    /// Opens (or creates) the data directory and recovers every queue and cursor. Reads that
    /// were open when the server stopped or crashed are waiting again.
    pub fn open(config: &Config) -> Result<Store, Error> {
        std::fs::create_dir_all(&config.path)?;
        let disk = Disk::open_current(&config.path, config.cache_bytes, config.sled_flushes())?;
        if config.keeps_spare_ready() {
            disk.keep_spare_ready();
        }
        let snapshot = disk.take_snapshot()?;
        let mut queues = BTreeMap::new();
        for recovered in disk.recover()? {
            let cursors = recovered
                .cursors
                .into_iter()
                .map(|cursor| (cursor.name, cursor.position, cursor.log))
                .collect();
            let counts = snapshot.as_ref().and_then(|s| s.get(&recovered.name));
            let limits = config.limits_of(&recovered.name);
            let state = QueueState::recover(recovered.log, limits, cursors, counts)?;
            let name = recovered.name;
            queues.insert(name.clone(), Arc::new(Queue::new(name, state)));
        }
        let durability = Durability::start(disk.syncer()?, config.sync, config.release_memory)?;
        let store = Store {
            shared: Arc::new(Shared {
                disk: RwLock::new(Arc::new(disk)),
                config: config.clone(),
                queues: RwLock::new(queues),
                durability,
                space: SpaceGuard::new(&config.path, config.min_free_bytes)?,
            }),
        };
        compact::start_watching(&store);
        timeout::start_checking(&store);
        Ok(store)
    }

    /// The time by the store's clock (unix ms): what `set` computes expiry from.
    pub fn now_ms(&self) -> u64 {
        self.shared.config.clock.now_ms()
    }

    /// The database in use: call only under a queue's lock or the registry's write lock.
    pub(crate) fn disk(&self) -> Arc<Disk> {
        self.shared
            .disk
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The queue of that name, created if missing.
    pub(crate) fn queue(&self, name: &str) -> Result<Arc<Queue>, Error> {
        if let Some(queue) = self.find(name) {
            return Ok(queue);
        }
        let mut queues = self.write_registry();
        if let Some(queue) = queues.get(name) {
            return Ok(queue.clone());
        }
        let log = self.disk().queue_log(name)?;
        let limits = self.shared.config.limits_of(name);
        let state = QueueState::recover(log, limits, Vec::new(), Some(&Default::default()))?;
        let queue = Arc::new(Queue::new(name.to_string(), state));
        queues.insert(name.to_string(), queue.clone());
        Ok(queue)
    }

    /// The queues by name. Writing it (creating or deleting a queue, compacting) excludes
    /// every lookup.
    fn read_registry(&self) -> RwLockReadGuard<'_, BTreeMap<String, Arc<Queue>>> {
        self.shared.queues.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn write_registry(&self) -> RwLockWriteGuard<'_, BTreeMap<String, Arc<Queue>>> {
        self.shared
            .queues
            .write()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Every queue, by name.
    pub(crate) fn queues(&self) -> Vec<Arc<Queue>> {
        self.read_registry().values().cloned().collect()
    }

    fn find(&self, name: &str) -> Option<Arc<Queue>> {
        self.read_registry().get(name).cloned()
    }

    /// Reads from a queue (`cursor: None`) or one of its cursors. `Ok(None)`: nothing to read.
    /// With [`ReadMode::Open`] the item comes with the [`Lease`] that holds it.
    pub fn read(
        &self,
        queue: &str,
        cursor: Option<&str>,
        mode: ReadMode,
    ) -> Result<Option<(Item, Option<Lease>)>, Error> {
        let now = self.now_ms();
        loop {
            let handle = self.queue(queue)?;
            handle.time_out(now);
            let mut state = handle.lock();
            if state.deleted {
                continue;
            }
            let read = match cursor {
                None => state.read_plain(mode, now)?,
                Some(cursor) => {
                    if !state.has_cursor(cursor) {
                        state.add_cursor(cursor, self.disk().cursor_log(queue, cursor)?)?;
                    }
                    state.read_cursor(cursor, mode, now)?
                }
            };
            drop(state);
            return Ok(read.map(|(item, held)| {
                let clock = self.shared.config.clock.clone();
                let lease = held.map(|held| Lease::new(handle.clone(), held, item.id(), clock));
                (item, lease)
            }));
        }
    }

    /// `delete <queue>` / `delete <queue>.<cursor>`; returns whether it existed.
    pub async fn delete(&self, queue: &str, cursor: Option<&str>) -> Result<bool, Error> {
        let existed = match cursor {
            None => {
                let mut queues = self.write_registry();
                match queues.remove(queue) {
                    None => false,
                    Some(handle) => {
                        handle.lock().delete()?;
                        // Waiters look the queue up again and find a new one.
                        handle.plain_event.notify(usize::MAX);
                        handle.broadcast_event.notify(usize::MAX);
                        true
                    }
                }
            }
            Some(cursor) => match self.find(queue) {
                None => false,
                Some(handle) => handle.lock().delete_cursor(cursor)?,
            },
        };
        if existed {
            self.shared.durability.written().await?;
        }
        Ok(existed)
    }

    /// `flush <queue>` / `flush <queue>.<cursor>`: never creates anything.
    pub async fn flush(&self, queue: &str, cursor: Option<&str>) -> Result<(), Error> {
        if let Some(handle) = self.find(queue) {
            {
                let mut state = handle.lock();
                if !state.deleted {
                    match cursor {
                        None => state.flush()?,
                        Some(cursor) => state.flush_cursor(cursor)?,
                    }
                }
            }
            self.shared.durability.written().await?;
        }
        Ok(())
    }

    /// `flush_all`: flushes every queue.
    pub async fn flush_all(&self) -> Result<(), Error> {
        let names: Vec<String> = self.read_registry().keys().cloned().collect();
        for name in names {
            self.flush(&name, None).await?;
        }
        Ok(())
    }

    /// Queues, items stored and cursors, without reading any queue (see
    /// `QueueState::stored`): what start-up reports. [`Store::stats`] would read the head of
    /// every queue, and so load a pack of each into memory.
    pub fn totals(&self) -> (usize, u64, usize) {
        let queues = self.queues();
        let (items, cursors) = queues.iter().fold((0, 0), |(items, cursors), queue| {
            let (i, c) = queue.lock().stored();
            (items + i, cursors + c)
        });
        (queues.len(), items, cursors)
    }

    /// Gives back the read caches of the queues no read used since the last call (see
    /// `QueueState::release_if_idle`). The open-timeout thread calls it every second of the
    /// store's clock.
    pub fn release_idle(&self) {
        for queue in self.queues() {
            queue.lock().release_if_idle();
        }
    }

    /// Counters of every queue, sorted by name.
    pub fn stats(&self) -> Vec<QueueStats> {
        let now = self.now_ms();
        self.queues()
            .iter()
            .map(|queue| {
                queue.time_out(now);
                let waiters = queue.waiters.load(std::sync::atomic::Ordering::Relaxed) as u64;
                queue.lock().looking(|state| {
                    // Expired items never count, discarded or not yet.
                    if let Err(e) = state.expire_heads(now) {
                        log::error!("cannot discard expired items of {}: {}", queue.name, e);
                    }
                    state.count_cursors();
                    state.stats(&queue.name, waiters, now)
                })
            })
            .collect()
    }

    /// Size of the data directory on disk, in bytes.
    pub fn disk_bytes(&self) -> u64 {
        disk::directory_size(&self.shared.config.path)
    }

    /// Free bytes of the data directory's filesystem (`None` if it cannot be measured).
    pub fn free_disk_bytes(&self) -> Option<u64> {
        self.shared.space.free_bytes()
    }

    /// Whether new items are accepted now: `Err(DiskFull)` while the free-space guard
    /// (`--min-free-mb`) refuses them (free space is measured if the last look is old),
    /// `Err(Sync)` while the last sync failed.
    pub fn accepts_writes(&self) -> Result<(), Error> {
        self.shared.space.check(self.now_ms())?;
        match self.commit_metrics().failure() {
            Some(failure) => Err(Error::Sync(failure)),
            None => Ok(()),
        }
    }

    /// The group commit's histograms (lock-free to update, read at scrape time).
    pub fn commit_metrics(&self) -> &super::CommitMetrics {
        self.shared.durability.metrics()
    }

    /// Makes every write so far durable now, whatever the sync mode.
    pub fn sync_now(&self) -> Result<(), Error> {
        self.shared.durability.sync_now()
    }

    /// The last act of a graceful stop: writes every queue's counters (so the next start
    /// needs no scan) and syncs everything to disk.
    pub fn close(&self) -> Result<(), Error> {
        let queues = self.write_registry();
        let mut states: Vec<_> = queues
            .iter()
            .map(|(name, queue)| (name.as_str(), queue.lock()))
            .collect();
        for (_, state) in &mut states {
            state.save_cursors()?;
        }
        let counts = states.iter().map(|(name, state)| (*name, state.counts()));
        self.disk().put_snapshot(counts)?;
        self.shared.durability.sync_now()
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Clock, Config, ReadMode, Store};
    use futures_lite::future::block_on;

    /// A store whose queue `q` holds 200 items of 1000 bytes (`{n:01000}`), in full packs,
    /// on a clock that stands still: the background thread's own releases never come due.
    fn store_with_a_deep_queue(dir: &std::path::Path) -> Store {
        let mut config = Config::new(dir);
        config.clock = Clock::manual(1_000_000).0;
        let store = Store::open(&config).unwrap();
        let names = ["q".to_string()];
        for n in 0..200u32 {
            let data = format!("{n:01000}");
            block_on(store.put(&names, 0, None, data.as_bytes())).unwrap();
        }
        store.sync_now().unwrap();
        store
    }

    fn holds_read_caches(store: &Store) -> bool {
        store.queue("q").unwrap().lock().holds_read_caches()
    }

    /// A queue no read used since the last release gives back its head index and cached
    /// packs; a queue read meanwhile keeps them; either way the next read serves the next item.
    #[test]
    fn release_idle_frees_the_read_caches_of_queues_not_read_since() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_a_deep_queue(dir.path());
        let holds = || holds_read_caches(&store);
        let next = || {
            let (item, _) = store.read("q", None, ReadMode::Take).unwrap().unwrap();
            String::from_utf8(item.data().to_vec()).unwrap()
        };
        assert_eq!(next(), format!("{:01000}", 0));
        assert!(holds(), "a read builds the head index and caches a pack");
        store.release_idle();
        assert!(holds(), "read since the last release: kept");
        store.release_idle();
        assert!(!holds(), "not read since the last release: given back");
        assert_eq!(next(), format!("{:01000}", 1));
        assert!(holds());
    }

    /// `stats` reads every queue's head, but leaves a queue's read caches as it found them:
    /// none where there were none, what a reader uses where there were.
    #[test]
    fn stats_leaves_the_read_caches_as_it_found_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_a_deep_queue(dir.path());
        let stats = store.stats();
        assert_eq!(stats[0].items, 200);
        assert!(
            !holds_read_caches(&store),
            "nothing was cached before stats"
        );
        store.read("q", None, ReadMode::Take).unwrap().unwrap();
        store.stats();
        assert!(holds_read_caches(&store), "the reader's caches stay");
    }

    /// Listing the head reads one pack past those cached: a queue of items a pack each is
    /// read one pack per item, not 1 024 at its first read (192 ms for items of 256 KiB, of
    /// which 1 023 packs were read again later). A listing whose one pack holds only open
    /// reads goes on to the next pack, so the item waiting there is served.
    #[test]
    fn listing_the_head_reads_one_pack_past_the_cached_ones() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::new(dir.path());
        config.clock = Clock::manual(1_000_000).0;
        let store = Store::open(&config).unwrap();
        let names = ["q".to_string()];
        let item = |n: u8| vec![n; 200_000];
        for n in 1..=4 {
            block_on(store.put(&names, 0, None, &item(n))).unwrap();
        }
        store.sync_now().unwrap();
        store.release_idle();
        store.release_idle();
        let cached = || store.queue("q").unwrap().lock().log.cached_packs();
        let read = |mode| {
            let (item, lease) = store.read("q", None, mode).unwrap().unwrap();
            (item.data()[0], lease)
        };
        assert_eq!(cached(), 0);
        let (first, first_lease) = read(ReadMode::Open);
        assert_eq!(first, 1);
        assert_eq!(
            cached(),
            1,
            "one pack read for the first item, not all four"
        );
        let (second, _second_lease) = read(ReadMode::Open);
        assert_eq!(second, 2);
        // Item 1 goes back; the caches go; the head is listed again from item 1, then from
        // item 2, which is open: the listing reads on to item 3.
        first_lease.unwrap().abort();
        store.release_idle();
        store.release_idle();
        let (again, _again_lease) = read(ReadMode::Open);
        assert_eq!(again, 1);
        assert_eq!(read(ReadMode::Take).0, 3);
        assert_eq!(read(ReadMode::Take).0, 4);
        assert!(store.read("q", None, ReadMode::Take).unwrap().is_none());
    }
}
