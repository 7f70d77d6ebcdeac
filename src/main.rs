//! The `tern` command: options, logging, start-up. The only place that knows structopt,
//! femme and anyhow.

use anyhow::{bail, Context};
use std::path::PathBuf;
use std::time::Duration;
use structopt::StructOpt;
use tern::queue::{self, Store, SyncMode};
use tern::server;

#[derive(Debug, StructOpt)]
#[structopt(
    name = "tern",
    about = "A durable message queue speaking the memcache protocol."
)]
struct Options {
    /// Address to listen on (loopback by default: the protocol has no authentication).
    #[structopt(long, default_value = "127.0.0.1:22133")]
    listen: String,

    /// Data directory (created if missing).
    #[structopt(long, default_value = "./tern-data", parse(from_os_str))]
    data: PathBuf,

    /// When writes reach the disk: `always` (before STORED, group commit), `<N>ms`, `never`.
    #[structopt(long, default_value = "always", parse(try_from_str = parse_sync))]
    sync: SyncMode,

    /// sled's page cache, in MiB.
    #[structopt(long, default_value = "16")]
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

    /// Let the `shutdown` command stop the server.
    #[structopt(long)]
    allow_shutdown: bool,
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

fn main() -> anyhow::Result<()> {
    let options = Options::from_args();
    femme::with_level(options.log_level);
    let store_config = queue::Config {
        path: options.data.clone(),
        cache_bytes: options.cache_mb.saturating_mul(1024 * 1024),
        sync: options.sync,
    };
    let store = Store::open(&store_config)
        .with_context(|| format!("cannot open the data directory {}", options.data.display()))?;
    let recovered = store.stats();
    let items: u64 = recovered.iter().map(|q| q.items).sum();
    let server_config = server::Config {
        listen: options.listen.clone(),
        max_item_size: options.max_item_size,
        max_connections: options.max_connections,
        allow_shutdown: options.allow_shutdown,
    };
    server::run(server_config, store, |address| {
        log::info!(
            "{} listening on {}, data {}, sync {:?}, recovered {} queues with {} items",
            tern::VERSION,
            address,
            options.data.display(),
            options.sync,
            recovered.len(),
            items
        );
    })
    .with_context(|| format!("cannot serve on {}", options.listen))?;
    log::info!("stopped");
    Ok(())
}
