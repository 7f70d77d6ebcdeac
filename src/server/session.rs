//! A connection's session: runs commands against the store and owns the connection's open
//! reads, which go back to their queues when the session ends (quit, disconnect, shutdown).

use super::connection::{write_out, Input, OUT_HIGH_WATER};
use super::runtime::{sleep, TcpStream};
use super::stats::{self, bump};
use super::Shared;
use crate::protocol::{Command, Error as ProtocolError, Get, Key, Reply, Set, Target};
use crate::queue::{self, now_ms, Item, Lease, Pending, ReadMode};
use futures_lite::FutureExt;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

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
    /// Per set: whether it asked for no reply.
    noreply: Vec<bool>,
    replies_from: usize,
    /// Items stored (a fanout counts each queue), counted once durable.
    items: u64,
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

    pub(crate) async fn execute(
        &mut self,
        command: Command,
        input: &mut Input,
        out: &mut Vec<u8>,
    ) -> Flow {
        if !matches!(command, Command::Set(_)) {
            // Whatever this command reads or says comes after the pending sets are durable.
            self.settle(out).await;
        }
        let store = &self.shared.store;
        match command {
            Command::Set(set) => self.set(set, out).await,
            Command::Get(get) => return self.get(get, input, out).await,
            Command::Delete { target, noreply } => {
                let reply = match store.delete(&target.queue, target.cursor.as_deref()).await {
                    Ok(true) => Reply::Deleted,
                    Ok(false) => Reply::NotFound,
                    Err(e) => return server_error(out, &e, noreply),
                };
                if !noreply {
                    reply.encode(out);
                }
            }
            Command::Flush { target, noreply } => {
                match store.flush(&target.queue, target.cursor.as_deref()).await {
                    Ok(()) if !noreply => Reply::End.encode(out),
                    Ok(()) => {}
                    Err(e) => return server_error(out, &e, noreply),
                }
            }
            Command::FlushAll { noreply } => match store.flush_all().await {
                Ok(()) if !noreply => Reply::Ok.encode(out),
                Ok(()) => {}
                Err(e) => return server_error(out, &e, noreply),
            },
            Command::Version => Reply::Version(crate::VERSION).encode(out),
            Command::Stats => stats::encode(
                out,
                &self.shared.counters,
                &store.stats(),
                store.disk_bytes(),
            ),
            Command::Quit => return Flow::Close,
            Command::Shutdown if self.shared.config.allow_shutdown => return Flow::Shutdown,
            Command::Shutdown => Reply::Error(ProtocolError::UnknownCommand).encode(out),
        }
        Flow::Continue
    }

    async fn set(&mut self, set: Set, out: &mut Vec<u8>) {
        bump(&self.shared.counters.cmd_set, 1);
        let expires = set.expires_at_ms(now_ms());
        let store = &self.shared.store;
        match store.put_pending(&set.queues, set.flags, expires, &set.data) {
            Ok(pending) => {
                let unsynced = &mut self.unsynced;
                if unsynced.writes.is_empty() {
                    unsynced.replies_from = out.len();
                }
                unsynced.writes.push(pending);
                unsynced.noreply.push(set.noreply);
                unsynced.items += set.queues.len() as u64;
                if !set.noreply {
                    Reply::Stored.encode(out);
                }
                if self.unsynced.writes.len() >= MAX_UNSYNCED {
                    self.settle(out).await;
                }
            }
            Err(e) => {
                self.settle(out).await;
                server_error(out, &e, set.noreply);
            }
        }
    }

    /// Makes the pending sets durable (one flush for all). Their `STORED` replies are already
    /// at the end of `out`; if the sync failed, they become `SERVER_ERROR` lines.
    pub(crate) async fn settle(&mut self, out: &mut Vec<u8>) {
        if self.unsynced.writes.is_empty() {
            return;
        }
        let synced = self.shared.store.sync().await;
        let unsynced = std::mem::take(&mut self.unsynced);
        match synced {
            Ok(()) => bump(&self.shared.counters.total_items, unsynced.items),
            Err(e) => {
                log::error!("{}", e);
                out.truncate(unsynced.replies_from);
                for noreply in unsynced.noreply {
                    if !noreply {
                        Reply::ServerError(&e.to_string()).encode(out);
                    }
                }
            }
        }
        // Dropping the writes shows them to readers.
        drop(unsynced.writes);
    }

    /// Settles, then writes the gathered replies out.
    pub(crate) async fn settle_and_write(
        &mut self,
        stream: &TcpStream,
        out: &mut Vec<u8>,
    ) -> std::io::Result<()> {
        self.settle(out).await;
        write_out(stream, out, &self.shared).await
    }

    /// Keys are served left to right; an error line replaces `END` and ends the command.
    async fn get(&mut self, get: Get, input: &mut Input, out: &mut Vec<u8>) -> Flow {
        for key in &get.keys {
            match self.get_key(key, input).await {
                Ok(Some(item)) => Reply::Value {
                    key: &key.raw,
                    flags: item.flags(),
                    data: item.data(),
                }
                .encode(out),
                Ok(None) => {}
                Err(KeyError::Protocol(error)) => {
                    Reply::Error(error).encode(out);
                    return Flow::Continue;
                }
                Err(KeyError::Store(error)) => return server_error(out, &error, false),
            }
            if self.gone {
                return Flow::Close;
            }
            if out.len() >= OUT_HIGH_WATER
                && write_out(input.stream(), out, &self.shared).await.is_err()
            {
                return Flow::Close;
            }
        }
        match get.error {
            Some(error) => Reply::Error(error).encode(out),
            None => Reply::End.encode(out),
        }
        Flow::Continue
    }

    async fn get_key(&mut self, key: &Key, input: &mut Input) -> Result<Option<Item>, KeyError> {
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
            match self.read(target, mode, options.timeout_ms, input).await? {
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
        input: &mut Input,
    ) -> Result<Option<(Item, Option<Lease>)>, queue::Error> {
        let store = &self.shared.store;
        let (queue, cursor) = (target.queue.as_str(), target.cursor.as_deref());
        let wait = Duration::from_millis(timeout_ms.unwrap_or(0)).min(MAX_WAIT);
        if wait.is_zero() {
            return store.read(queue, cursor, mode);
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
                input.closed().await;
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

/// Encodes a storage failure (unless `noreply`); the connection goes on.
fn server_error(out: &mut Vec<u8>, error: &queue::Error, noreply: bool) -> Flow {
    log::error!("{}", error);
    if !noreply {
        Reply::ServerError(&error.to_string()).encode(out);
    }
    Flow::Continue
}
