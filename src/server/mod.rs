//! The network server: accept loop, connection limit, one task per connection, graceful stop.
//! It installs no signal handlers: whoever runs it (main.rs) stops it through a
//! [`ShutdownHandle`].
//!
//! Glues `protocol` (bytes ↔ commands) to `queue` (the store). Every runtime-specific name
//! comes from `runtime`. Imports inside run one way, so each file can be read alone:
//! this file → `handler` (one task per client) → `session` (commands, open reads, group
//! commit) → `connection` (socket and buffers); beside them `idle`, `shared`, `config`, `shutdown`,
//! `stats` (→ `logline`) and `runtime`, which import no other server file except `shared` →
//! its parts; and
//! `http` (the `--metrics` listener) → `metrics` (what it serves) → `shared`, `stats`.

mod config;
mod connection;
mod handler;
mod http;
mod idle;
mod logline;
mod metrics;
pub mod runtime;
mod session;
mod shared;
mod shutdown;
mod stats;

pub use config::{Config, WhenIdle};
pub use idle::IdleCheck;
pub use shutdown::ShutdownHandle;

use crate::queue::Store;
use futures_lite::FutureExt;
use runtime::{sleep, spawn, ClientSocket, TcpListener};
use shared::Shared;
use shutdown::Shutdown;
use stats::{bump, Counters};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a graceful stop waits for connections to finish their current command.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// A server ready to run: built first so that its [`ShutdownHandle`] can be handed out (to
/// signal handling, say) before [`Server::run`] blocks.
pub struct Server {
    shared: Arc<Shared>,
    idle_checks: (
        async_channel::Sender<idle::Request>,
        async_channel::Receiver<idle::Request>,
    ),
}

impl Server {
    pub fn new(config: Config, store: Store) -> Server {
        Server {
            shared: Arc::new(Shared {
                store,
                config,
                counters: Arc::new(Counters::new()),
                shutdown: Arc::new(Shutdown::new()),
            }),
            idle_checks: async_channel::unbounded(),
        }
    }

    /// What stops this server gracefully from outside.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle(self.shared.shutdown.clone())
    }

    /// What makes the idle task ([`Config::release_memory`]) check now.
    pub fn idle_check(&self) -> IdleCheck {
        IdleCheck(self.idle_checks.0.clone())
    }

    /// Serves until told to stop (a [`ShutdownHandle`] or an allowed `shutdown` command); then
    /// stops accepting, lets connections finish their current command, returns their open
    /// reads and flushes the store. `on_ready` is called with the bound address once clients
    /// can connect.
    pub fn run(self, on_ready: impl FnOnce(SocketAddr)) -> std::io::Result<()> {
        let shared = self.shared;
        runtime::set_threads(shared.config.threads);
        if let Some(task) = shared.config.release_memory {
            let requests = self.idle_checks.1;
            spawn(idle::run_when_idle(task, shared.clone(), requests));
        }
        runtime::block_on(async {
            let listener = TcpListener::bind(&shared.config.listen).await?;
            // Serves until the connections have drained, so /healthz says "shutting down".
            let http_stop = Arc::new(Shutdown::new());
            let http = match &shared.config.metrics {
                Some(address) => {
                    let http_listener = TcpListener::bind(address).await.map_err(|e| {
                        std::io::Error::new(e.kind(), format!("--metrics {address}: {e}"))
                    })?;
                    let bound = http_listener.local_addr()?;
                    log::info!("metrics on http://{bound}/metrics, health on /healthz");
                    Some(spawn(http::serve(
                        http_listener,
                        shared.clone(),
                        http_stop.clone(),
                    )))
                }
                None => None,
            };
            on_ready(listener.local_addr()?);
            accept_loop(&listener, &shared).await;
            drop(listener);
            drain(&shared).await;
            http_stop.trigger();
            if let Some(http) = http {
                http.await;
            }
            Ok::<(), std::io::Error>(())
        })?;
        shared.store.close().map_err(std::io::Error::other)
    }
}

/// [`Server::run`] for a caller that needs no [`ShutdownHandle`]: only an allowed `shutdown`
/// command stops it.
pub fn run(config: Config, store: Store, on_ready: impl FnOnce(SocketAddr)) -> std::io::Result<()> {
    Server::new(config, store).run(on_ready)
}

async fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    loop {
        // The socket's own setup fails like an accept does (out of descriptors): one path.
        let accepted = async {
            let accepted = listener.accept().await.and_then(|(stream, _)| {
                let _ = stream.set_nodelay(true);
                ClientSocket::new(stream)
            });
            Some(accepted)
        };
        let stop = async {
            shared.shutdown.wait().await;
            None
        };
        let socket = match accepted.or(stop).await {
            None => return,
            Some(Ok(socket)) => socket,
            Some(Err(e)) => {
                // Out of file descriptors and the like: back off instead of spinning.
                log::warn!("accept failed: {}", e);
                sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let counters = &shared.counters;
        if counters.curr_connections.load(Ordering::Relaxed) >= shared.config.max_connections {
            bump(&counters.refused_connections, 1);
            spawn(refuse(socket));
            continue;
        }
        bump(&counters.curr_connections, 1);
        bump(&counters.total_connections, 1);
        let shared = shared.clone();
        spawn(async move {
            handler::connection_loop(socket, shared.clone()).await;
            shared
                .counters
                .curr_connections
                .fetch_sub(1, Ordering::Relaxed);
        });
    }
}

async fn refuse(socket: ClientSocket) {
    let _ = socket
        .write_all(b"SERVER_ERROR too many connections\r\n")
        .await;
    let _ = socket.close().await;
}

/// Waits (bounded) for every connection to finish.
async fn drain(shared: &Shared) {
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    while shared.counters.curr_connections.load(Ordering::Relaxed) > 0 && Instant::now() < deadline
    {
        sleep(Duration::from_millis(10)).await;
    }
}
