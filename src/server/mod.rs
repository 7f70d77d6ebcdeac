//! The network server: accept loop, connection limit, one task per connection, graceful stop.
//!
//! Glues `protocol` (bytes ↔ commands) to `queue` (the store). Every runtime-specific name
//! comes from `runtime`.

mod connection;
pub mod runtime;
mod session;
mod stats;

use crate::queue::Store;
use event_listener::Event;
use futures_lite::{AsyncWriteExt, FutureExt};
use runtime::{sleep, spawn, TcpListener, TcpStream};
use stats::{bump, Counters};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a graceful stop waits for connections to finish their current command.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Server settings (the store has its own).
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: String,
    pub max_item_size: u32,
    pub max_connections: u64,
    /// Whether the `shutdown` command stops the server.
    pub allow_shutdown: bool,
    /// Threads serving connections; `None`: one per CPU.
    pub threads: Option<std::num::NonZeroUsize>,
    /// How the allocator gives freed memory back to the system (main.rs alone knows the
    /// allocator). An allocator with per-thread heaps returns a thread's free pages only while
    /// that thread allocates, so the threads serving connections would keep what a drained
    /// backlog used for as long as the server idles.
    pub release_memory: Option<WhenIdle>,
}

/// A function to run on every thread that serves connections every `after` in which no client
/// sent anything: never under load, where it could only add latency.
#[derive(Debug, Clone, Copy)]
pub struct WhenIdle {
    pub after: Duration,
    pub run: fn(),
}

/// State shared by the accept loop and every connection.
pub(crate) struct Shared {
    store: Store,
    config: Config,
    counters: Counters,
    shutdown: Shutdown,
}

/// A one-way "stop now" signal that any number of tasks can wait for.
struct Shutdown {
    stopping: AtomicBool,
    event: Event,
}

impl Shutdown {
    fn trigger(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.event.notify(usize::MAX);
    }

    fn is_triggered(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    async fn wait(&self) {
        loop {
            if self.is_triggered() {
                return;
            }
            let listener = self.event.listen();
            if self.is_triggered() {
                return;
            }
            listener.await;
        }
    }
}

/// Serves until SIGTERM, SIGINT or an allowed `shutdown` command; then stops accepting, lets
/// connections finish their current command, returns their open reads and flushes the store.
/// `on_ready` is called with the bound address once clients can connect.
pub fn run(config: Config, store: Store, on_ready: impl FnOnce(SocketAddr)) -> std::io::Result<()> {
    runtime::set_threads(config.threads);
    let shared = Arc::new(Shared {
        store,
        config,
        counters: Counters::new(),
        shutdown: Shutdown {
            stopping: AtomicBool::new(false),
            event: Event::new(),
        },
    });
    stop_on_signals(shared.clone())?;
    if let Some(task) = shared.config.release_memory {
        spawn(run_when_idle(task, shared.clone()));
    }
    runtime::block_on(async {
        let listener = TcpListener::bind(&shared.config.listen).await?;
        on_ready(listener.local_addr()?);
        accept_loop(&listener, &shared).await;
        drop(listener);
        drain(&shared).await;
        Ok::<(), std::io::Error>(())
    })?;
    shared.store.close().map_err(std::io::Error::other)
}

/// The first SIGTERM/SIGINT starts a graceful stop; a second one exits at once.
fn stop_on_signals(shared: Arc<Shared>) -> std::io::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT])?;
    std::thread::Builder::new()
        .name("tern-signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                if shared.shutdown.is_triggered() {
                    log::warn!("signal {} again: exiting now", signal);
                    std::process::exit(1);
                }
                log::info!("signal {}: stopping", signal);
                shared.shutdown.trigger();
            }
        })?;
    Ok(())
}

async fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    loop {
        let accepted = async { Some(listener.accept().await) };
        let stop = async {
            shared.shutdown.wait().await;
            None
        };
        let stream = match accepted.or(stop).await {
            None => return,
            Some(Ok((stream, _))) => stream,
            Some(Err(e)) => {
                // Out of file descriptors and the like: back off instead of spinning.
                log::warn!("accept failed: {}", e);
                sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let counters = &shared.counters;
        if counters.curr_connections.load(Ordering::Relaxed) >= shared.config.max_connections {
            spawn(refuse(stream));
            continue;
        }
        bump(&counters.curr_connections, 1);
        bump(&counters.total_connections, 1);
        let shared = shared.clone();
        spawn(async move {
            connection::connection_loop(stream, shared.clone()).await;
            shared
                .counters
                .curr_connections
                .fetch_sub(1, Ordering::Relaxed);
        });
    }
}

async fn refuse(mut stream: TcpStream) {
    let _ = stream
        .write_all(b"SERVER_ERROR too many connections\r\n")
        .await;
    let _ = stream.close().await;
}

/// Runs `task` on the connection threads after each idle `task.after`, until the server stops.
async fn run_when_idle(task: WhenIdle, shared: Arc<Shared>) {
    let input = || shared.counters.bytes_read.load(Ordering::Relaxed);
    let mut seen = input();
    loop {
        let tick = async {
            sleep(task.after).await;
            true
        };
        let stop = async {
            shared.shutdown.wait().await;
            false
        };
        if !tick.or(stop).await {
            return;
        }
        let now = input();
        if now == seen {
            runtime::on_every_thread(task.run);
        }
        seen = now;
    }
}

/// Waits (bounded) for every connection to finish.
async fn drain(shared: &Shared) {
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    while shared.counters.curr_connections.load(Ordering::Relaxed) > 0 && Instant::now() < deadline
    {
        sleep(Duration::from_millis(10)).await;
    }
}
