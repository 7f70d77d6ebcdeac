//! The durable queues: items, open reads, cursors, waiting readers, per-queue counters.
//!
//! The only module that names `sled`; it knows nothing of sockets or the wire. Layout in one
//! sled `Db`: a tree per queue (`q.<queue>`, key = item id as big-endian u64, so key order is
//! FIFO order), a tree per cursor for its failed reads (`f.<queue>.<cursor>`, keyed by the
//! original id), and a `meta` tree with the format version and cursor positions
//! (`c.<queue>.<cursor>` → next id to read). Names cannot contain `.`, so these never clash.
//!
//! Ids come from sled's `generate_id`: monotonic across restarts and crashes, never reused,
//! so a cursor stays right after its queue drains and the server restarts.
//!
//! Promises: an item is in exactly one state (waiting, held open by one reader, or gone);
//! a plain open read is just an id the queue skips, so after a crash it is simply waiting
//! again; an open cursor read is a copy in the cursor's failed tree, written in the same
//! transaction that moves the cursor.

mod compact;
mod dump;
mod durability;
mod head;
mod item;
mod snapshot;
mod space;
mod state;

pub use dump::{export, import, Summary};
pub use durability::SyncMode;
pub use item::{now_ms, Item};

use durability::Durability;
use event_listener::EventListener;
use sled::Transactional;
use space::SpaceGuard;
use state::{Held, Queue, QueueState, Storage};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::task::{Context, Poll};

/// The on-disk format this build reads and writes.
const FORMAT_VERSION: u64 = 1;

/// Errors of the store. Expected outcomes (an empty queue) are `Ok(None)`, not errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("storage failure: {0}")]
    Storage(#[from] sled::Error),
    #[error("storage failure: {0}")]
    Io(#[from] std::io::Error),
    #[error("queue full")]
    QueueFull,
    #[error("disk full")]
    DiskFull,
    #[error("sync failure: {0}")]
    Sync(String),
    #[error(
        "data directory {path} has format version {found}; this tern reads version {expected}"
    )]
    Format {
        path: PathBuf,
        found: u64,
        expected: u64,
    },
}

impl From<sled::transaction::TransactionError<()>> for Error {
    fn from(error: sled::transaction::TransactionError<()>) -> Error {
        match error {
            sled::transaction::TransactionError::Storage(e) => Error::Storage(e),
            // tern's transactions never abort themselves.
            sled::transaction::TransactionError::Abort(()) => {
                Error::Io(std::io::Error::other("transaction aborted"))
            }
        }
    }
}

/// How to open the store.
#[derive(Debug, Clone)]
pub struct Config {
    /// The data directory (created if missing).
    pub path: PathBuf,
    /// sled's page cache, in bytes.
    pub cache_bytes: u64,
    pub sync: SyncMode,
    /// Limits of every queue without its own entry in `queue_limits`.
    pub limits: Limits,
    pub queue_limits: HashMap<String, Limits>,
    /// New items are refused while the filesystem has less free space than this.
    pub min_free_bytes: u64,
}

impl Config {
    /// The limits of queue `name`: its own entry, or the server-wide ones.
    pub fn limits_of(&self, name: &str) -> Limits {
        self.queue_limits.get(name).copied().unwrap_or(self.limits)
    }

    /// Defaults: 16 MiB cache, `--sync always`, no limits.
    pub fn new(path: impl Into<PathBuf>) -> Config {
        Config {
            path: path.into(),
            cache_bytes: 16 * 1024 * 1024,
            sync: SyncMode::Always,
            limits: Limits::default(),
            queue_limits: HashMap::new(),
            min_free_bytes: 64 * 1024 * 1024,
        }
    }
}

/// How full one queue may get. Items held open count too, as they are still stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    pub max_items: Option<u64>,
    pub max_bytes: Option<u64>,
    /// When full, drop the oldest waiting items instead of refusing new ones.
    pub discard_old: bool,
}

/// What a read does to the item it finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadMode {
    /// Remove it (plain) or move past it (cursor).
    Take,
    /// Leave everything as it is.
    Peek,
    /// Hold it open for this reader until the [`Lease`] is closed or aborted.
    Open,
}

/// Counters of one queue, for `stats`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueStats {
    pub name: String,
    pub items: u64,
    pub bytes: u64,
    pub total_items: u64,
    pub expired_items: u64,
    pub open_transactions: u64,
    pub waiters: u64,
    pub age_ms: u64,
    pub cursors: Vec<CursorStats>,
}

/// Counters of one cursor, for `stats`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorStats {
    pub name: String,
    pub items: u64,
    pub failed_items: u64,
    pub open_transactions: u64,
}

/// The store: cheap to clone, shared by all connections.
#[derive(Clone)]
pub struct Store {
    shared: Arc<Shared>,
}

struct Shared {
    /// The database in use; compaction replaces it while it holds every queue's lock (and no
    /// insert is in flight: see [`Queue::lock_settled`]), so it may be looked at only under a
    /// queue's lock or the registry's write lock, or during an insert counted in flight.
    backend: RwLock<Arc<Backend>>,
    config: Config,
    queues: RwLock<BTreeMap<String, Arc<Queue>>>,
    durability: Durability,
    space: SpaceGuard,
}

impl Drop for Shared {
    /// Cursor positions are saved lazily; a store dropped without [`Store::close`] still keeps
    /// them (only a crash can lose the last few moves).
    fn drop(&mut self) {
        let backend = self
            .backend
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let queues = self.queues.read().unwrap_or_else(|e| e.into_inner());
        for (name, queue) in queues.iter() {
            if let Err(e) = queue.lock().save_cursors(&backend.storage(), name) {
                log::error!("cannot save the cursors of {}: {}", name, e);
            }
        }
    }
}

/// One sled database: `<data>/store-<n>/`, named by `<data>/CURRENT`.
pub(crate) struct Backend {
    pub(crate) db: sled::Db,
    pub(crate) meta: sled::Tree,
    pub(crate) dir: PathBuf,
    /// Added to sled's generated ids: a compacted database's counter starts again at 0, and
    /// ids must never go back.
    id_base: u64,
}

impl Backend {
    pub(crate) fn open(dir: PathBuf, config: &Config) -> Result<Backend, Error> {
        let flush_every_ms = match config.sync {
            // The sync thread flushes itself; sled's own timer would only duplicate it.
            SyncMode::Every(_) => None,
            // Also bounds how much read progress a crash can undo.
            SyncMode::Always | SyncMode::Never => Some(500),
        };
        let db = sled::Config::new()
            .path(&dir)
            .cache_capacity(config.cache_bytes)
            .flush_every_ms(flush_every_ms)
            .open()?;
        let meta = db.open_tree("meta")?;
        check_format(&meta, &dir)?;
        let id_base = meta.get(ID_BASE)?.map_or(0, |base| item::id_of(&base));
        Ok(Backend {
            db,
            meta,
            dir,
            id_base,
        })
    }

    pub(crate) fn storage(&self) -> Storage<'_> {
        Storage {
            db: &self.db,
            meta: &self.meta,
        }
    }

    /// The next item id: unique and increasing, across restarts, crashes and compactions.
    pub(crate) fn next_id(&self) -> Result<u64, Error> {
        Ok(self.id_base + self.db.generate_id()?)
    }
}

/// The `meta` key of [`Backend::id_base`].
pub(crate) const ID_BASE: &str = "id-base";

impl Store {
    /// Opens (or creates) the data directory and recovers every queue and cursor. Reads that
    /// were open when the server stopped or crashed are waiting again.
    pub fn open(config: &Config) -> Result<Store, Error> {
        std::fs::create_dir_all(&config.path)?;
        let backend = Backend::open(compact::current_dir(&config.path)?, config)?;
        let queues = recover(&backend, |name| config.limits_of(name))?;
        let durability = Durability::start(backend.db.clone(), &backend.dir, config.sync)?;
        let store = Store {
            shared: Arc::new(Shared {
                backend: RwLock::new(Arc::new(backend)),
                config: config.clone(),
                queues: RwLock::new(queues),
                durability,
                space: SpaceGuard::new(&config.path, config.min_free_bytes)?,
            }),
        };
        compact::start_watching(&store);
        Ok(store)
    }

    /// The database in use: call only under a queue's lock or the registry's write lock.
    fn backend(&self) -> Arc<Backend> {
        self.shared
            .backend
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The queue of that name, created if missing.
    fn queue(&self, name: &str) -> Result<Arc<Queue>, Error> {
        if let Some(queue) = self.find(name) {
            return Ok(queue);
        }
        let mut queues = self.write_registry();
        if let Some(queue) = queues.get(name) {
            return Ok(queue.clone());
        }
        let tree = self.backend().db.open_tree(names::queue_tree(name))?;
        let queue = Arc::new(Queue::new(
            name.to_string(),
            QueueState::recover(
                tree,
                self.shared.config.limits_of(name),
                Vec::new(),
                Some(&Default::default()),
            )?,
        ));
        queues.insert(name.to_string(), queue.clone());
        Ok(queue)
    }

    /// The queues by name. Writing it (creating or deleting a queue, compacting) excludes
    /// every lookup.
    fn read_registry(&self) -> RwLockReadGuard<'_, BTreeMap<String, Arc<Queue>>> {
        self.shared.queues.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_registry(&self) -> RwLockWriteGuard<'_, BTreeMap<String, Arc<Queue>>> {
        self.shared
            .queues
            .write()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn find(&self, name: &str) -> Option<Arc<Queue>> {
        let queues = self.read_registry();
        queues.get(name).cloned()
    }

    /// Appends one item to each named queue, atomically across them, and returns once it is
    /// as durable as the sync mode promises. `expires_ms`: unix ms, `None` for never.
    pub async fn put(
        &self,
        names: &[String],
        flags: u32,
        expires_ms: Option<u64>,
        data: &[u8],
    ) -> Result<(), Error> {
        let pending = self.put_pending(names, flags, expires_ms, data)?;
        let synced = self.sync().await;
        drop(pending);
        synced
    }

    /// [`Store::put`] without the wait: the item is stored, but with `--sync always` it is
    /// neither durable nor visible to readers until [`Store::sync`] has returned and the
    /// [`Pending`] is dropped. A connection runs a pipeline of sets this way, so they all
    /// share one flush.
    pub fn put_pending(
        &self,
        names: &[String],
        flags: u32,
        expires_ms: Option<u64>,
        data: &[u8],
    ) -> Result<Pending, Error> {
        let mut names: Vec<&str> = names.iter().map(String::as_str).collect();
        // Locks are always taken in name order, so two fanouts can never deadlock.
        names.sort_unstable();
        names.dedup();
        self.shared.space.check(now_ms())?;
        let stored = sled::IVec::from(item::encode(flags, expires_ms, now_ms(), data));
        let len = data.len() as u64;
        let durability = &self.shared.durability;
        let (queues, id, trees) = loop {
            let queues = names
                .iter()
                .map(|name| self.queue(name))
                .collect::<Result<Vec<_>, _>>()?;
            let mut guards: Vec<_> = queues.iter().map(|queue| queue.lock()).collect();
            // A queue deleted since we looked it up: look again, it will be created anew.
            if guards.iter().any(|guard| guard.deleted) {
                continue;
            }
            // All or none: a fanout that would overfill any target stores in none.
            if !guards.iter().all(|guard| guard.fits(len)) {
                return Err(Error::QueueFull);
            }
            for guard in &mut guards {
                guard.make_room(len)?;
            }
            let id = self.backend().next_id()?;
            // The id is taken and hidden from readers; the insert itself runs outside the
            // locks, so producers of one queue do not queue up behind each other's sled call.
            for guard in &mut guards {
                guard.reserve(id, len);
            }
            let trees: Vec<sled::Tree> = guards.iter().map(|guard| guard.tree.clone()).collect();
            for queue in &queues {
                queue.inserting.fetch_add(1, Ordering::Relaxed);
            }
            drop(guards);
            break (queues, id, trees);
        };
        let inserted = {
            let _inserting = Inserting(&queues);
            insert(&trees, id, &stored)
        };
        if let Err(e) = inserted {
            for queue in &queues {
                queue.lock().unreserve(id, len);
            }
            return Err(e);
        }
        durability.note_write();
        if durability.waits() {
            return Ok(Pending { queues, id });
        }
        for queue in &queues {
            queue.lock().synced(id);
            queue.notify(1);
        }
        Ok(Pending {
            queues: Vec::new(),
            id,
        })
    }

    /// Returns once every write made so far is as durable as the sync mode promises.
    pub async fn sync(&self) -> Result<(), Error> {
        self.shared.durability.wait().await
    }

    /// Reads from a queue (`cursor: None`) or one of its cursors. `Ok(None)`: nothing to read.
    /// With [`ReadMode::Open`] the item comes with the [`Lease`] that holds it.
    pub fn read(
        &self,
        queue: &str,
        cursor: Option<&str>,
        mode: ReadMode,
    ) -> Result<Option<(Item, Option<Lease>)>, Error> {
        let now = now_ms();
        loop {
            let handle = self.queue(queue)?;
            let mut state = handle.lock();
            if state.deleted {
                continue;
            }
            let read = match cursor {
                None => state.read_plain(mode, now)?,
                Some(cursor) => {
                    state.read_cursor(&self.backend().storage(), queue, cursor, mode, now)?
                }
            };
            drop(state);
            return Ok(read.map(|(item, held)| {
                let lease = held.map(|held| Lease {
                    queue: handle.clone(),
                    held,
                    id: item.id(),
                    done: false,
                });
                (item, lease)
            }));
        }
    }

    /// A future that completes when the queue (or cursor) may have something new to read.
    /// Take it *before* trying a read, so an item arriving in between is not missed.
    fn listen(&self, queue: &str, cursor: Option<&str>, mode: ReadMode) -> Result<Listener, Error> {
        let handle = self.queue(queue)?;
        // A plain reader that takes consumes its wake-up with the item; any other reader
        // must not swallow one meant for it, so it listens to the broadcast instead.
        let listener = match (cursor, mode) {
            (None, ReadMode::Take | ReadMode::Open) => handle.plain_event.listen(),
            _ => handle.broadcast_event.listen(),
        };
        handle.waiters.fetch_add(1, Ordering::Relaxed);
        Ok(Listener {
            queue: handle,
            listener,
        })
    }

    /// Reads like [`Store::read`]; if there is nothing, waits for an item until `until`
    /// completes, and then returns `Err` with its output: nothing was read, and nothing was
    /// taken for this reader. The caller builds `until` from its timeout, shutdown and
    /// disconnect, so the store needs no clock.
    pub async fn read_or_wait<T>(
        &self,
        queue: &str,
        cursor: Option<&str>,
        mode: ReadMode,
        until: impl Future<Output = T>,
    ) -> Result<Result<(Item, Option<Lease>), T>, Error> {
        if let Some(read) = self.read(queue, cursor, mode)? {
            return Ok(Ok(read));
        }
        let mut until = std::pin::pin!(until);
        loop {
            // Listen before looking, so an item arriving in between still wakes us.
            let listener = self.listen(queue, cursor, mode)?;
            if let Some(read) = self.read(queue, cursor, mode)? {
                return Ok(Ok(read));
            }
            let woken = futures_lite::future::or(
                async {
                    listener.await;
                    None
                },
                async { Some(until.as_mut().await) },
            );
            if let Some(stopped) = woken.await {
                return Ok(Err(stopped));
            }
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
                        handle
                            .lock_settled()
                            .delete(&self.backend().storage(), queue)?;
                        // Waiters look the queue up again and find a new one.
                        handle.plain_event.notify(usize::MAX);
                        handle.broadcast_event.notify(usize::MAX);
                        true
                    }
                }
            }
            Some(cursor) => match self.find(queue) {
                None => false,
                Some(handle) => {
                    handle
                        .lock()
                        .delete_cursor(&self.backend().storage(), queue, cursor)?
                }
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
                let mut state = handle.lock_settled();
                if !state.deleted {
                    match cursor {
                        None => state.flush(&self.backend().storage(), queue)?,
                        Some(cursor) => {
                            state.flush_cursor(&self.backend().storage(), queue, cursor)?;
                        }
                    }
                }
            }
            self.shared.durability.written().await?;
        }
        Ok(())
    }

    /// `flush_all`: flushes every queue.
    pub async fn flush_all(&self) -> Result<(), Error> {
        let names: Vec<String> = self.queue_names();
        for name in names {
            self.flush(&name, None).await?;
        }
        Ok(())
    }

    fn queue_names(&self) -> Vec<String> {
        let queues = self.read_registry();
        queues.keys().cloned().collect()
    }

    /// Counters of every queue, sorted by name.
    pub fn stats(&self) -> Vec<QueueStats> {
        let queues: Vec<Arc<Queue>> = {
            let queues = self.read_registry();
            queues.values().cloned().collect()
        };
        let now = now_ms();
        queues
            .iter()
            .map(|queue| queue.lock().stats(queue, now))
            .collect()
    }

    /// Size of the data directory on disk, in bytes.
    pub fn disk_bytes(&self) -> u64 {
        directory_size(&self.shared.config.path)
    }

    /// The last act of a graceful stop: writes every queue's counters (so the next start
    /// needs no scan) and flushes everything to disk.
    pub fn close(&self) -> Result<(), Error> {
        let queues = self.write_registry();
        let mut states: Vec<_> = queues
            .iter()
            .map(|(name, queue)| (name.as_str(), queue.lock_settled()))
            .collect();
        let backend = self.backend();
        for (name, state) in &mut states {
            state.save_cursors(&backend.storage(), name)?;
        }
        let text = snapshot::encode(states.iter().map(|(name, state)| (*name, state.counts())));
        backend.meta.insert(snapshot::KEY, text.as_bytes())?;
        self.shared.durability.flush_now()
    }
}

/// Writes one item to each tree: one sled transaction when there are several (a fanout).
fn insert(trees: &[sled::Tree], id: u64, stored: &sled::IVec) -> Result<(), Error> {
    let key = item::key(id);
    if let [only] = trees {
        only.insert(key, stored.clone())?;
        return Ok(());
    }
    trees
        .transaction(|trees| {
            for tree in trees {
                tree.insert(&key, stored.clone())?;
            }
            Ok(())
        })
        .map_err(Error::from)
}

/// Marks inserts in flight on these queues until dropped; see [`Queue::lock_settled`].
struct Inserting<'a>(&'a [Arc<Queue>]);

impl Drop for Inserting<'_> {
    fn drop(&mut self) {
        for queue in self.0 {
            queue.inserting.fetch_sub(1, Ordering::Release);
        }
    }
}

/// A write not yet known to be durable; readers see it once this is dropped, which must happen
/// after [`Store::sync`] (or when giving up: it is served then rather than held forever).
#[must_use = "a pending write stays invisible to readers until it is dropped"]
#[derive(Debug)]
pub struct Pending {
    /// Empty when the sync mode does not wait: the item was visible at once.
    queues: Vec<Arc<Queue>>,
    id: u64,
}

impl Drop for Pending {
    fn drop(&mut self) {
        for queue in &self.queues {
            queue.lock().synced(self.id);
            queue.notify(1);
        }
    }
}

/// One read held open: close it to confirm, abort it (or drop it) to give the item back.
#[derive(Debug)]
pub struct Lease {
    queue: Arc<Queue>,
    held: Held,
    id: u64,
    done: bool,
}

impl Lease {
    /// Confirms the read: a plain item is deleted, a cursor's copy is dropped.
    pub fn close(mut self) -> Result<(), Error> {
        self.done = true;
        let result = self.queue.lock().close(&self.held, self.id);
        if result.is_err() {
            // Not confirmed: the item must not stay held by nobody.
            self.done = false;
        }
        result
    }

    /// Whether the queue or cursor this read came from has been deleted since.
    pub fn is_stale(&self) -> bool {
        self.queue.lock().is_stale(&self.held)
    }

    /// Gives the item back: a plain item to the head of its queue, a cursor's to its
    /// failed reads. Both are served before anything newer.
    pub fn abort(mut self) {
        self.give_back();
    }

    fn give_back(&mut self) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let wake = self.queue.lock().abort(&self.held, self.id);
        self.queue.notify(wake);
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.give_back();
    }
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue").field("name", &self.name).finish()
    }
}

/// Completes when new items may be there; counts as a waiter in `stats` while it lives.
pub struct Listener {
    queue: Arc<Queue>,
    listener: EventListener,
}

impl Future for Listener {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.listener).poll(cx)
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.queue.waiters.fetch_sub(1, Ordering::Relaxed);
    }
}

fn check_format(meta: &sled::Tree, path: &Path) -> Result<(), Error> {
    match meta.get("format")? {
        None => {
            meta.insert("format", &FORMAT_VERSION.to_be_bytes()[..])?;
            Ok(())
        }
        Some(found) => {
            let found = item::id_of(&found);
            if found == FORMAT_VERSION {
                Ok(())
            } else {
                Err(Error::Format {
                    path: path.to_path_buf(),
                    found,
                    expected: FORMAT_VERSION,
                })
            }
        }
    }
}

/// Loads every queue and its cursors; drops what a crash during `delete` left behind.
fn recover(
    backend: &Backend,
    limits_of: impl Fn(&str) -> Limits,
) -> Result<BTreeMap<String, Arc<Queue>>, Error> {
    let (db, meta) = (&backend.db, &backend.meta);
    let mut cursors: BTreeMap<String, Vec<(String, u64)>> = BTreeMap::new();
    for entry in meta.scan_prefix(names::CURSOR_PREFIX) {
        let (key, position) = entry?;
        match names::parse_cursor_key(&key) {
            Some((queue, cursor)) => cursors
                .entry(queue)
                .or_default()
                .push((cursor, item::id_of(&position))),
            None => {
                meta.remove(key)?;
            }
        }
    }
    // A snapshot is valid for this start only: remove it durably before anything changes.
    let snapshot = match meta.remove(snapshot::KEY)? {
        Some(text) => {
            db.flush()?;
            std::fs::File::open(backend.dir.join("db"))?.sync_data()?;
            snapshot::decode(&text)
        }
        None => None,
    };
    let mut queues = BTreeMap::new();
    for tree_name in db.tree_names() {
        if let Some(name) = names::parse_queue_tree(&tree_name) {
            let tree = db.open_tree(&tree_name)?;
            let mut queue_cursors = Vec::new();
            for (cursor, position) in cursors.remove(&name).unwrap_or_default() {
                let failed = db.open_tree(names::failed_tree(&name, &cursor))?;
                queue_cursors.push((cursor, position, failed, names::next_generation()));
            }
            let state = QueueState::recover(
                tree,
                limits_of(&name),
                queue_cursors,
                snapshot.as_ref().and_then(|s| s.get(&name)),
            )?;
            queues.insert(name.clone(), Arc::new(Queue::new(name, state)));
        }
    }
    // Cursors and failed trees of queues that no longer exist.
    for (queue, orphans) in cursors {
        for (cursor, _) in orphans {
            meta.remove(names::cursor_key(&queue, &cursor))?;
        }
    }
    for tree_name in db.tree_names() {
        if let Some((queue, _)) = names::parse_failed_tree(&tree_name) {
            if !queues.contains_key(&queue) {
                db.drop_tree(&tree_name)?;
            }
        }
    }
    Ok(queues)
}

fn directory_size(path: &Path) -> u64 {
    let entries = match std::fs::read_dir(path) {
        Ok(entries) => entries,
        Err(_) => return 0,
    };
    entries
        .filter_map(Result::ok)
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => directory_size(&entry.path()),
            Ok(meta) => meta.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Names of trees and meta keys. Queue and cursor names never contain `.`.
mod names {
    use std::sync::atomic::{AtomicU64, Ordering};

    pub(crate) const CURSOR_PREFIX: &str = "c.";
    const QUEUE_PREFIX: &str = "q.";
    const FAILED_PREFIX: &str = "f.";

    pub(crate) fn queue_tree(queue: &str) -> String {
        format!("{QUEUE_PREFIX}{queue}")
    }

    pub(crate) fn failed_tree(queue: &str, cursor: &str) -> String {
        format!("{FAILED_PREFIX}{queue}.{cursor}")
    }

    pub(crate) fn cursor_key(queue: &str, cursor: &str) -> Vec<u8> {
        format!("{CURSOR_PREFIX}{queue}.{cursor}").into_bytes()
    }

    pub(crate) fn parse_queue_tree(tree: &[u8]) -> Option<String> {
        let name = std::str::from_utf8(tree.strip_prefix(QUEUE_PREFIX.as_bytes())?).ok()?;
        Some(name.to_string())
    }

    pub(crate) fn parse_failed_tree(tree: &[u8]) -> Option<(String, String)> {
        split_pair(tree.strip_prefix(FAILED_PREFIX.as_bytes())?)
    }

    pub(crate) fn parse_cursor_key(key: &[u8]) -> Option<(String, String)> {
        split_pair(key.strip_prefix(CURSOR_PREFIX.as_bytes())?)
    }

    fn split_pair(bytes: &[u8]) -> Option<(String, String)> {
        let text = std::str::from_utf8(bytes).ok()?;
        let (queue, cursor) = text.split_once('.')?;
        Some((queue.to_string(), cursor.to_string()))
    }

    /// A process-wide counter distinguishing cursors that share a name over time.
    pub(crate) fn next_generation() -> u64 {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        NEXT.fetch_add(1, Ordering::Relaxed)
    }
}
