//! A connection's session: runs one command at a time against the store, replying through
//! the [`Connection`], and owns the connection's open reads, which go back to their queues
//! when the session ends (quit, disconnect, shutdown). Also owns group commit: the `STORED`
//! replies of a pipeline of sets wait in the output for one shared sync.
//!
//! Sees the client only through [`Connection`]; never imports the handler that drives it.

use super::connection::{Connection, Mark};
use super::runtime::sleep;
use super::shared::Shared;
use super::stats::{self, bump};
use crate::protocol::{
    seconds_left, Command, Error as ProtocolError, Get, Key, MetaGet, MetaItem, Replay, Reply, Set,
    Target,
};
use crate::queue::{self, Item, Lease, Pending, ReadMode};
use futures_lite::FutureExt;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest wait a `/t=` can ask for; beyond it, a wait is as good as forever.
const MAX_WAIT: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// Most sets of one pipeline that wait for a shared sync (a bound on memory and on how long
/// the first of them stays invisible to readers).
const MAX_UNSYNCED: usize = 1024;

/// What the connection does after a command.
pub(crate) enum Flow {
    Continue,
    Close,
    /// Close, then stop the server (`shutdown`).
    Shutdown,
}

/// Sets waiting for one shared sync, and where their replies start in the output.
#[derive(Default)]
struct Unsynced {
    writes: Vec<Pending>,
    /// Per set: whether it asked for no reply, errors included (`noreply`; an `ms` never
    /// does, as `q` hides only its success).
    noreply: Vec<bool>,
    /// Where the first set's reply starts (`None` while no set waits).
    replies_from: Option<Mark>,
    /// Items stored (a fanout counts each queue), counted once durable.
    items: u64,
    /// Per set: when it started, for its latency (taken once durable).
    started: Vec<Instant>,
}

/// Why one `get` key produced an error line instead of a value.
enum KeyError {
    Protocol(ProtocolError),
    Store(queue::Error),
}

impl From<queue::Error> for KeyError {
    fn from(error: queue::Error) -> KeyError {
        KeyError::Store(error)
    }
}

pub(crate) struct Session {
    shared: Arc<Shared>,
    /// Sets stored but not yet synced (`--sync always`): their replies wait at the end of the
    /// output, so a pipeline of sets shares one flush instead of one each.
    unsynced: Unsynced,
    /// Open reads, at most one per queue and per cursor.
    leases: HashMap<Target, Lease>,
    /// The client went away while a `get` waited.
    gone: bool,
}

impl Session {
    pub(crate) fn new(shared: Arc<Shared>) -> Session {
        Session {
            shared,
            unsynced: Unsynced::default(),
            leases: HashMap::new(),
            gone: false,
        }
    }

    pub(crate) async fn execute(&mut self, command: Command, conn: &mut Connection) -> Flow {
        if !matches!(command, Command::Set(_) | Command::MetaSet(_)) {
            // Whatever this command reads or says comes after the pending sets are durable.
            self.settle(conn).await;
        }
        let store = &self.shared.store;
        match command {
            Command::Set(set) => {
                let ack = |conn: &mut Connection| {
                    if !set.noreply {
                        conn.write(Reply::Stored);
                    }
                };
                self.set(&set, ack, conn).await;
            }
            Command::MetaSet(ms) => {
                let ack = |conn: &mut Connection| conn.write_some(ms.stored());
                self.set(&ms.set, ack, conn).await;
            }
            Command::Get(get) => return self.get(get, conn).await,
            Command::MetaGet(mg) => return self.meta_get(&mg, conn).await,
            Command::MetaDelete(md) => {
                let target = &md.target;
                match store.delete(&target.queue, target.cursor.as_deref()).await {
                    Ok(existed) => conn.write_some(md.reply(existed)),
                    Err(e) => return server_error(conn, &e, false),
                }
            }
            Command::MetaNoop => conn.write(Reply::MetaNoop),
            Command::Delete { target, noreply } => {
                let reply = match store.delete(&target.queue, target.cursor.as_deref()).await {
                    Ok(true) => Reply::Deleted,
                    Ok(false) => Reply::NotFound,
                    Err(e) => return server_error(conn, &e, noreply),
                };
                if !noreply {
                    conn.write(reply);
                }
            }
            Command::Flush { target, noreply } => {
                match store.flush(&target.queue, target.cursor.as_deref()).await {
                    Ok(()) if !noreply => conn.write(Reply::End),
                    Ok(()) => {}
                    Err(e) => return server_error(conn, &e, noreply),
                }
            }
            Command::FlushAll { noreply } => match store.flush_all().await {
                Ok(()) if !noreply => conn.write(Reply::Ok),
                Ok(()) => {}
                Err(e) => return server_error(conn, &e, noreply),
            },
            Command::Version => conn.write(Reply::Version(crate::VERSION)),
            Command::Stats => stats::encode(
                |reply| conn.write(reply),
                &self.shared.counters,
                &store.stats(),
                store.disk_bytes(),
            ),
            Command::DumpStats => stats::encode_dump(|reply| conn.write(reply), &store.stats()),
            Command::Quit => return Flow::Close,
            Command::Shutdown if self.shared.config.allow_shutdown => return Flow::Shutdown,
            Command::Shutdown => conn.write(Reply::Error(ProtocolError::UnknownCommand)),
        }
        Flow::Continue
    }

    /// Stores `set`; `ack` writes its reply (if any), which holds until the sync.
    async fn set(&mut self, set: &Set, ack: impl FnOnce(&mut Connection), conn: &mut Connection) {
        bump(&self.shared.counters.cmd_set, 1);
        let started = Instant::now();
        let expires = set.expires_at_ms(self.shared.store.now_ms());
        let store = &self.shared.store;
        match store.put_pending(&set.queues, set.flags, expires, &set.data) {
            Ok(pending) => {
                let unsynced = &mut self.unsynced;
                unsynced.replies_from.get_or_insert(conn.mark());
                unsynced.writes.push(pending);
                unsynced.noreply.push(set.noreply);
                unsynced.items += set.queues.len() as u64;
                unsynced.started.push(started);
                ack(conn);
                if self.unsynced.writes.len() >= MAX_UNSYNCED {
                    self.settle(conn).await;
                }
            }
            Err(e) => {
                let latency = &self.shared.counters.latency.set;
                latency.observe(started.elapsed().as_secs_f64());
                self.settle(conn).await;
                server_error(conn, &e, set.noreply);
            }
        }
    }

    /// Makes the pending sets durable (one flush for all). Their `STORED` replies are already
    /// at the end of the output (unflushed: every flush settles first); if the sync failed,
    /// they become `SERVER_ERROR` lines.
    pub(crate) async fn settle(&mut self, conn: &mut Connection) {
        if self.unsynced.writes.is_empty() {
            return;
        }
        let synced = self.shared.store.sync().await;
        let unsynced = std::mem::take(&mut self.unsynced);
        let latency = &self.shared.counters.latency.set;
        for started in &unsynced.started {
            latency.observe(started.elapsed().as_secs_f64());
        }
        match synced {
            Ok(()) => bump(&self.shared.counters.total_items, unsynced.items),
            Err(e) => {
                log_storage_error(conn, &e);
                if let Some(mark) = unsynced.replies_from {
                    conn.truncate_to(mark);
                }
                for noreply in unsynced.noreply {
                    if !noreply {
                        conn.write(Reply::ServerError(&e.to_string()));
                    }
                }
            }
        }
        // Dropping the writes shows them to readers.
        drop(unsynced.writes);
    }

    /// Settles, then writes the gathered replies out.
    pub(crate) async fn settle_and_flush(&mut self, conn: &mut Connection) -> std::io::Result<()> {
        self.settle(conn).await;
        conn.flush().await
    }

    /// Writes the gathered replies now if they are past the connection's high-water mark, so
    /// a long batch or a `get` of many large items never holds them all.
    pub(crate) async fn write_early(&mut self, conn: &mut Connection) -> std::io::Result<()> {
        if conn.over_high_water() {
            self.settle_and_flush(conn).await?;
        }
        Ok(())
    }

    /// Keys are served left to right; an error line replaces `END` and ends the command.
    async fn get(&mut self, get: Get, conn: &mut Connection) -> Flow {
        for key in &get.keys {
            match self.get_key(key, conn).await {
                Ok(Some(item)) => conn.write(Reply::Value {
                    key: &key.raw,
                    flags: item.flags(),
                    data: item.data(),
                }),
                Ok(None) => {}
                Err(KeyError::Protocol(error)) => {
                    conn.write(Reply::Error(error));
                    return Flow::Continue;
                }
                Err(KeyError::Store(error)) => return server_error(conn, &error, false),
            }
            if self.gone || self.write_early(conn).await.is_err() {
                return Flow::Close;
            }
        }
        conn.write(match get.error {
            Some(error) => Reply::Error(error),
            None => Reply::End,
        });
        Flow::Continue
    }

    /// `mg`: one key read as `get` reads it, except that without `v` nothing is taken (see
    /// [`MetaGet::read_options`]), and the reply in meta form.
    async fn meta_get(&mut self, mg: &MetaGet, conn: &mut Connection) -> Flow {
        let key = Key {
            options: mg.read_options(),
            ..mg.key.clone()
        };
        match self.get_key(&key, conn).await {
            Ok(item) => {
                let item = item.as_ref().map(|item| MetaItem {
                    flags: item.flags(),
                    data: item.data(),
                    ttl: seconds_left(item.expires_ms(), self.shared.store.now_ms()),
                });
                conn.write_some(mg.reply(item));
            }
            Err(KeyError::Protocol(error)) => conn.write(Reply::Error(error)),
            Err(KeyError::Store(error)) => return server_error(conn, &error, false),
        }
        if self.gone {
            return Flow::Close;
        }
        Flow::Continue
    }

    /// One key of a `get` or `mg`, timed: `open`, `close` (alone), or `get` (plain, peek, abort).
    async fn get_key(
        &mut self,
        key: &Key,
        conn: &mut Connection,
    ) -> Result<Option<Item>, KeyError> {
        let started = Instant::now();
        let result = self.read_key(key, conn).await;
        let latency = &self.shared.counters.latency;
        let histogram = match key.options {
            options if options.open => &latency.open,
            options if options.close => &latency.close,
            _ => &latency.get,
        };
        histogram.observe(started.elapsed().as_secs_f64());
        result
    }

    async fn read_key(
        &mut self,
        key: &Key,
        conn: &mut Connection,
    ) -> Result<Option<Item>, KeyError> {
        let options = key.options;
        let counters = &self.shared.counters;
        bump(
            if options.peek {
                &counters.cmd_peek
            } else {
                &counters.cmd_get
            },
            1,
        );
        let target = &key.target;
        if let (Some(replay), Some(cursor)) = (options.replay, &target.cursor) {
            let replay = match replay {
                Replay::Rewind => queue::Replay::Rewind,
                Replay::Seek(ms) => queue::Replay::Seek(ms),
            };
            let store = &self.shared.store;
            store.replay(&target.queue, cursor, replay).await?;
            // Moves the cursor, reads nothing: counted as `/close` alone is.
            return Ok(self.count_hit(None));
        }
        let item = if options.abort {
            if let Some(lease) = self.leases.remove(target) {
                lease.abort();
            }
            None
        } else {
            if options.close {
                if let Some(lease) = self.leases.remove(target) {
                    lease.close()?;
                }
            }
            let mode = if options.open {
                ReadMode::Open
            } else if options.peek {
                ReadMode::Peek
            } else if options.close {
                // `/close` alone reads nothing.
                return Ok(self.count_hit(None));
            } else {
                ReadMode::Take
            };
            if mode != ReadMode::Peek && self.holds(target) {
                return Err(KeyError::Protocol(ProtocolError::CloseCurrentItemFirst));
            }
            match self.read(target, mode, options.timeout_ms, conn).await? {
                Some((item, lease)) => {
                    if let Some(lease) = lease {
                        self.leases.insert(target.clone(), lease);
                    }
                    Some(item)
                }
                None => None,
            }
        };
        Ok(if options.peek {
            item
        } else {
            self.count_hit(item)
        })
    }

    fn count_hit(&self, item: Option<Item>) -> Option<Item> {
        let counters = &self.shared.counters;
        bump(
            if item.is_some() {
                &counters.get_hits
            } else {
                &counters.get_misses
            },
            1,
        );
        item
    }

    /// Whether this connection holds an open read on `target` (one whose queue or cursor was
    /// deleted meanwhile no longer counts).
    fn holds(&mut self, target: &Target) -> bool {
        match self.leases.get(target) {
            Some(lease) if lease.is_stale() => {
                self.leases.remove(target);
                false
            }
            Some(_) => true,
            None => false,
        }
    }

    /// One read, waiting up to `timeout_ms` for an item if there is none. Stops waiting, and
    /// takes nothing, when the client disconnects or the server shuts down.
    async fn read(
        &mut self,
        target: &Target,
        mode: ReadMode,
        timeout_ms: Option<u64>,
        conn: &mut Connection,
    ) -> Result<Option<(Item, Option<Lease>)>, queue::Error> {
        let store = &self.shared.store;
        let (queue, cursor) = (target.queue.as_str(), target.cursor.as_deref());
        let wait = Duration::from_millis(timeout_ms.unwrap_or(0)).min(MAX_WAIT);
        if wait.is_zero() {
            return store.read(queue, cursor, mode);
        }
        if let Some(read) = store.read(queue, cursor, mode)? {
            return Ok(Some(read));
        }
        // About to wait: the replies gathered so far (earlier commands of the batch, earlier
        // keys of this one; pending sets settled before any read) go out now, not after it.
        if conn.flush().await.is_err() {
            self.gone = true;
            return Ok(None);
        }
        let shared = &self.shared;
        let until = async {
            let timeout = async {
                sleep(wait).await;
                false
            };
            let stop = async {
                shared.shutdown.wait().await;
                false
            };
            let gone = async {
                conn.closed().await;
                true
            };
            timeout.or(stop).or(gone).await
        };
        match store.read_or_wait(queue, cursor, mode, until).await? {
            Ok(read) => Ok(Some(read)),
            Err(gone) => {
                self.gone = gone;
                Ok(None)
            }
        }
    }
}

/// Logs a failure a command met, within the storage errors' budget. A refusal by the store's
/// limits (queue full, disk full) is no failure: its reply and the metrics tell it, and the
/// low-disk state has its own line.
fn log_storage_error(conn: &Connection, error: &queue::Error) {
    if matches!(error, queue::Error::QueueFull | queue::Error::DiskFull) {
        return;
    }
    let line = || format!("client {}: {error}", conn.peer());
    conn.counters()
        .storage_errors_log
        .log(log::Level::Error, line);
}

/// Replies a storage failure (unless `noreply`); the connection goes on.
fn server_error(conn: &mut Connection, error: &queue::Error, noreply: bool) -> Flow {
    log_storage_error(conn, error);
    if !noreply {
        conn.write(Reply::ServerError(&error.to_string()));
    }
    Flow::Continue
}
