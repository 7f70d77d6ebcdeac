//! The `tern` command: options, logging, signals, start-up. The only place that knows
//! structopt, femme, anyhow and signal-hook.

use anyhow::{bail, Context};
use serde::Deserialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use structopt::StructOpt;
use tern::queue::{self, Limits, Store, SyncMode};
use tern::server;

/// mimalloc instead of glibc's malloc: per-thread heaps without a shared arena lock (the
/// busiest lock under load, see benches/README.md). Idle threads give their free pages back:
/// see [`release_memory`].
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Idle time after which the connection threads hand their free pages back ([`release_memory`];
/// the commit thread does too, once a sync period passes without writes): 2–4 s after the
/// last input, once per idle spell.
const RELEASE_MEMORY_AFTER: Duration = Duration::from_secs(2);

/// Returns the calling thread's free mimalloc pages to the system. mimalloc does that by
/// itself only while the thread allocates, so an idle server would keep most of what a drained
/// backlog used. Forced, it takes milliseconds on a busy heap, hence only when idle (both
/// measured in benches/README.md).
fn release_memory() {
    // SAFETY: mi_collect has no preconditions; it frees only memory no longer in use.
    unsafe { libmimalloc_sys::mi_collect(true) }
}

#[derive(Debug, StructOpt)]
#[structopt(
    name = "tern",
    about = "A durable message queue speaking the memcache protocol."
)]
struct Options {
    /// Address to listen on (loopback by default: the protocol has no authentication).
    #[structopt(long, default_value = "127.0.0.1:22133")]
    listen: String,

    /// Serve Prometheus metrics (`GET /metrics`) and health (`GET /healthz`) over HTTP on this
    /// address, e.g. 127.0.0.1:9133 (off by default; like --listen, it has no authentication).
    #[structopt(long)]
    metrics: Option<String>,

    /// Data directory (created if missing).
    #[structopt(long, default_value = "./tern-data", parse(from_os_str), global = true)]
    data: PathBuf,

    /// When writes reach the disk: `always` (before STORED, group commit), `<N>ms`, `never`.
    #[structopt(long, default_value = "always", parse(try_from_str = parse_sync))]
    sync: SyncMode,

    /// sled's page cache, in MiB.
    #[structopt(long, default_value = queue::DEFAULT_CACHE_MB)]
    cache_mb: u64,

    /// Largest item accepted, in bytes.
    #[structopt(long, default_value = "1048576")]
    max_item_size: u32,

    /// Most simultaneous client connections.
    #[structopt(long, default_value = "10000")]
    max_connections: u64,

    /// Log level: error, warn, info, debug, trace or off.
    #[structopt(long, default_value = "info")]
    log_level: log::LevelFilter,

    /// Threads serving connections (default: one per CPU). Where clients share the server's
    /// few cores, fewer can be faster: see benches/README.md.
    #[structopt(long)]
    threads: Option<std::num::NonZeroUsize>,

    /// Let the `shutdown` command stop the server.
    #[structopt(long)]
    allow_shutdown: bool,

    /// Refuse new items while the data directory's filesystem has less free space than this
    /// (MiB), so storage never runs out under the queues; 0 disables the check.
    #[structopt(long, default_value = queue::DEFAULT_MIN_FREE_MB)]
    min_free_mb: u64,

    /// Most items a queue may hold (default: unlimited).
    #[structopt(long)]
    max_items: Option<u64>,

    /// Most payload bytes a queue may hold (default: unlimited).
    #[structopt(long)]
    max_bytes: Option<u64>,

    /// When a queue is full, drop its oldest items instead of refusing new ones.
    #[structopt(long)]
    discard_old: bool,

    /// Give an open read back to its queue (as if aborted) once held this many ms (default 0:
    /// never).
    #[structopt(long)]
    open_timeout: Option<u64>,

    /// Expire items older than this many ms, as if their exptime had passed (default 0: never).
    #[structopt(long)]
    max_age: Option<u64>,

    /// Tests only: read the time (unix ms) from this file instead of the system clock, so a
    /// test moves time instead of waiting for it.
    #[structopt(long, hidden = true, parse(from_os_str))]
    clock_file: Option<PathBuf>,

    /// TOML file with per-queue limits (`[queues.<name>]` tables) and `[defaults]`.
    #[structopt(long, parse(from_os_str))]
    config: Option<PathBuf>,

    /// Write the server's process id to this file while it runs.
    #[structopt(long, parse(from_os_str))]
    pid_file: Option<PathBuf>,

    #[structopt(subcommand)]
    command: Option<Command>,
}

/// Instead of serving: move data in or out of a (stopped) server's data directory, or watch
/// a running one.
#[derive(Debug, StructOpt)]
enum Command {
    /// Write every queue, cursor and failed read of --data to standard output.
    Export,
    /// Read an export from standard input into --data, which must hold no queues yet.
    Import,
    /// Watch a running tern: its queues, deepest first, with their cursors, refreshed every
    /// second; q or Ctrl-C quits.
    Top {
        /// The server's memcache address.
        #[structopt(long, default_value = "127.0.0.1:22133")]
        addr: String,
        /// Print one table as plain text (rates over one second) and exit, for scripts.
        #[structopt(long)]
        once: bool,
    },
}

/// The `--config` file: queue limits and timers, server-wide and per queue.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    defaults: LimitsFile,
    #[serde(default)]
    queues: HashMap<String, LimitsFile>,
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsFile {
    max_items: Option<u64>,
    max_bytes: Option<u64>,
    discard_old: Option<bool>,
    open_timeout_ms: Option<u64>,
    max_age_ms: Option<u64>,
}

impl LimitsFile {
    /// These settings, falling back to `base` for the ones not given.
    fn over(self, base: Limits) -> Limits {
        Limits {
            max_items: self.max_items.or(base.max_items),
            max_bytes: self.max_bytes.or(base.max_bytes),
            discard_old: self.discard_old.unwrap_or(base.discard_old),
            open_timeout_ms: self.open_timeout_ms.unwrap_or(base.open_timeout_ms),
            max_age_ms: self.max_age_ms.unwrap_or(base.max_age_ms),
        }
    }
}

/// Server-wide limits (command line over the file's `[defaults]`) and per-queue limits.
fn limits(options: &Options) -> anyhow::Result<(Limits, HashMap<String, Limits>)> {
    let file = match &options.config {
        Some(path) => read_config(path)?,
        None => ConfigFile::default(),
    };
    let command_line = LimitsFile {
        max_items: options.max_items,
        max_bytes: options.max_bytes,
        discard_old: options.discard_old.then_some(true),
        open_timeout_ms: options.open_timeout,
        max_age_ms: options.max_age,
    };
    let defaults = command_line.over(file.defaults.over(Limits::default()));
    let per_queue = file
        .queues
        .into_iter()
        .map(|(name, limits)| (name, limits.over(defaults)))
        .collect();
    Ok((defaults, per_queue))
}

fn read_config(path: &Path) -> anyhow::Result<ConfigFile> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("bad config file {}", path.display()))
}

fn parse_sync(text: &str) -> anyhow::Result<SyncMode> {
    Ok(match text {
        "always" => SyncMode::Always,
        "never" => SyncMode::Never,
        _ => match text.strip_suffix("ms").map(str::parse::<u64>) {
            Some(Ok(ms)) if ms > 0 => SyncMode::Every(Duration::from_millis(ms)),
            _ => bail!(
                "expected `always`, `never` or a period like `100ms`, got `{}`",
                text
            ),
        },
    })
}

/// The first SIGTERM/SIGINT starts a graceful stop; a second one exits at once (for an
/// operator whose stop hangs on a stuck client or disk). SIGUSR1 compacts the data directory
/// now, whatever the watcher's thresholds say (for operators, and for tests that must not
/// wait for the watcher's timer).
fn handle_signals(server: server::ShutdownHandle, store: Store) -> std::io::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM, SIGUSR1};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGUSR1])?;
    std::thread::Builder::new()
        .name("tern-signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                if signal == SIGUSR1 {
                    log::info!("signal {}: compacting", signal);
                    if let Err(e) = store.compact() {
                        log::error!("compaction failed (the current database stays in use): {e}");
                    }
                    continue;
                }
                if server.is_shutting_down() {
                    log::warn!("signal {} again: exiting now", signal);
                    std::process::exit(1);
                }
                log::info!("signal {}: stopping", signal);
                server.shutdown();
            }
        })?;
    Ok(())
}

/// Log lines on standard error, for `tern export` (whose standard output is the export).
struct StderrLog;

impl log::Log for StderrLog {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }

    fn log(&self, record: &log::Record) {
        eprintln!("{} {}", record.level(), record.args());
    }

    fn flush(&self) {}
}

fn main() -> anyhow::Result<()> {
    let options = Options::from_args();
    if let Some(Command::Top { addr, once }) = &options.command {
        return tern::top::run(addr, *once).with_context(|| format!("tern top on {addr}"));
    }
    if matches!(options.command, Some(Command::Export)) {
        // The export is standard output, where femme writes: its log lines go to stderr.
        if log::set_logger(&StderrLog).is_ok() {
            log::set_max_level(options.log_level);
        }
    } else {
        femme::with_level(options.log_level);
    }
    let (limits, queue_limits) = limits(&options)?;
    let store_config = queue::Config {
        path: options.data.clone(),
        cache_bytes: options.cache_mb.saturating_mul(1024 * 1024),
        sync: options.sync,
        limits,
        queue_limits,
        min_free_bytes: options.min_free_mb.saturating_mul(1024 * 1024),
        clock: options
            .clock_file
            .as_ref()
            .map_or(queue::Clock::System, queue::Clock::file),
        release_memory: Some(release_memory),
    };
    match options.command {
        Some(Command::Export) => {
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            let summary = queue::export(&store_config, &mut out)
                .with_context(|| format!("cannot export {}", options.data.display()))?;
            eprintln!("exported {summary:?}");
            return Ok(());
        }
        Some(Command::Import) => {
            let stdin = std::io::stdin();
            let summary = queue::import(&store_config, &mut stdin.lock())
                .with_context(|| format!("cannot import into {}", options.data.display()))?;
            eprintln!("imported {summary:?}");
            return Ok(());
        }
        Some(Command::Top { .. }) | None => {}
    }
    let opening = std::time::Instant::now();
    let store = Store::open(&store_config)
        .with_context(|| format!("cannot open the data directory {}", options.data.display()))?;
    let opened_in = opening.elapsed();
    let (queues, items, cursors) = store.totals();
    let server_config = server::Config {
        listen: options.listen.clone(),
        metrics: options.metrics.clone(),
        max_item_size: options.max_item_size,
        max_connections: options.max_connections,
        allow_shutdown: options.allow_shutdown,
        threads: options.threads,
        release_memory: Some(server::WhenIdle {
            after: RELEASE_MEMORY_AFTER,
            run: release_memory,
        }),
    };
    let server = server::Server::new(server_config, store.clone());
    // Before the pid file appears, so that whoever waits for it can already stop us.
    handle_signals(server.shutdown_handle(), store).context("cannot handle signals")?;
    if let Some(path) = &options.pid_file {
        std::fs::write(path, format!("{}\n", std::process::id()))
            .with_context(|| format!("cannot write the pid file {}", path.display()))?;
    }
    let served = server.run(|address| {
        log::info!(
            "{} listening on {}, data {}, sync {:?}, recovered {} queues with {} items and {} cursors in {:?}",
            tern::VERSION,
            address,
            options.data.display(),
            options.sync,
            queues,
            items,
            cursors,
            opened_in
        );
    });
    if let Some(path) = &options.pid_file {
        let _ = std::fs::remove_file(path);
    }
    served.with_context(|| format!("cannot serve on {}", options.listen))?;
    log::info!("stopped");
    Ok(())
}
