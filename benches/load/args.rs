//! The command line, parsed by structopt: the options, their defaults and checks, and the `Config`
//! of a run. Like the tool before it, it ignores `--bench` (cargo adds it) and, with a warning,
//! anything it does not know, and prints the usage when given no option at all (plain `cargo bench`).

use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use structopt::clap::{self, AppSettings, ErrorKind};
use structopt::StructOpt;

use crate::payload::MIN_ITEM;

#[derive(StructOpt, Debug)]
#[structopt(
    name = "load",
    usage = "cargo bench --bench load -- [options]",
    about = "End-to-end load tool against a running tern or memcached; see benches/README.md.",
    setting = AppSettings::AllowLeadingHyphen,
    setting = AppSettings::DisableVersion,
    setting = AppSettings::AllArgsOverrideSelf,
    setting = AppSettings::DeriveDisplayOrder,
    setting = AppSettings::UnifiedHelpMessage
)]
struct Args {
    #[structopt(flatten)]
    run: RunArgs,
    /// Run a short produce+consume+mixed+reliable+cursor+fanout check against a running tern;
    /// exit status 1 on any failure
    #[structopt(long)]
    smoke: bool,
    /// Passed by `cargo bench`; ignored.
    #[structopt(long = "bench", hidden = true)]
    _bench: bool,
    /// Anything else: ignored, with a warning.
    #[structopt(hidden = true)]
    unknown: Vec<String>,
}

// The options of a run; all unset (`RunArgs::default()`) means none was given.
#[derive(StructOpt, Debug, Default, PartialEq)]
struct RunArgs {
    /// Server kind: tern or memcached (memcached: produce/consume only) [default: tern]
    #[structopt(long, value_name = "tern|memcached")]
    target: Option<Target>,
    /// Server address [default: 127.0.0.1:22133]
    #[structopt(long, value_name = "HOST:PORT")]
    addr: Option<String>,
    /// produce|consume|mixed|reliable|cursor|fanout [default: produce]
    #[structopt(long, value_name = "W")]
    workload: Option<Workload>,
    /// Client connections, one thread each [default: 1]
    #[structopt(long, value_name = "N", parse(try_from_str = at_least_one))]
    connections: Option<usize>,
    /// Payload size, at least 40 [default: 128]
    #[structopt(long, value_name = "BYTES", parse(try_from_str = number))]
    item_size: Option<u64>,
    /// Total items: sets for produce/mixed/fanout, the pre-filled queue for
    /// consume/reliable/cursor [default: 100000]
    #[structopt(long, value_name = "N", parse(try_from_str = number))]
    count: Option<u64>,
    /// Time limit for the timed phase (produce: instead of --count)
    #[structopt(long, value_name = "SECS", parse(try_from_str = seconds))]
    duration: Option<Duration>,
    /// Requests in flight per connection [default: 1]
    #[structopt(long, value_name = "DEPTH", parse(try_from_str = at_least_one))]
    pipeline: Option<usize>,
    /// Cursor workload: cursors reading the queue at once [default: 4]
    #[structopt(long, value_name = "R", parse(try_from_str = at_least_one))]
    cursors: Option<usize>,
    /// Fanout: queues per set (default 3); produce/consume: spread the connections over Q
    /// queues (default 1)
    #[structopt(long, value_name = "Q", parse(try_from_str = at_least_one))]
    queues: Option<usize>,
    /// Reliable: `get q/close/open` chains or open+close pairs [default: chain]
    #[structopt(long, value_name = "chain|pair", parse(try_from_str = pairs))]
    reliable_mode: Option<bool>,
    /// Free text copied to the output line (e.g. sync=never)
    #[structopt(long, value_name = "TEXT")]
    label: Option<String>,
    /// A reader gives up after this long without an item [default: 3]
    #[structopt(long, value_name = "SECS", parse(try_from_str = seconds))]
    idle_timeout: Option<Duration>,
    /// Mixed: an idle consumer's blocking read, `get q/t=MS` [default: 100]
    #[structopt(long, value_name = "MS", parse(try_from_str = number))]
    wait_ms: Option<u64>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Target {
    Tern,
    Memcached,
}

impl FromStr for Target {
    type Err = String;

    fn from_str(s: &str) -> Result<Target, String> {
        match s {
            "tern" => Ok(Target::Tern),
            "memcached" => Ok(Target::Memcached),
            _ => Err(format!("unknown target {s}")),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Workload {
    Produce,
    Consume,
    Mixed,
    Reliable,
    Cursor,
    Fanout,
}

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Workload::Produce => "produce",
            Workload::Consume => "consume",
            Workload::Mixed => "mixed",
            Workload::Reliable => "reliable",
            Workload::Cursor => "cursor",
            Workload::Fanout => "fanout",
        }
    }
}

impl FromStr for Workload {
    type Err = String;

    fn from_str(s: &str) -> Result<Workload, String> {
        match s {
            "produce" | "set" => Ok(Workload::Produce),
            "consume" | "get" => Ok(Workload::Consume),
            "mixed" => Ok(Workload::Mixed),
            "reliable" => Ok(Workload::Reliable),
            "cursor" => Ok(Workload::Cursor),
            "fanout" => Ok(Workload::Fanout),
            _ => Err(format!("unknown workload {s}")),
        }
    }
}

/// A count; `_` may group digits (`100_000`).
fn number(v: &str) -> Result<u64, String> {
    v.replace('_', "")
        .parse()
        .map_err(|_| format!("not a number: {v}"))
}

/// A count where 0 means 1.
fn at_least_one(v: &str) -> Result<usize, String> {
    Ok(number(v)?.max(1) as usize)
}

fn seconds(v: &str) -> Result<Duration, String> {
    v.parse()
        .ok()
        .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
        .ok_or_else(|| format!("not a number of seconds: {v}"))
}

/// `--reliable-mode`: whether it is `pair`.
fn pairs(v: &str) -> Result<bool, String> {
    match v {
        "chain" => Ok(false),
        "pair" => Ok(true),
        _ => Err(format!("unknown reliable mode {v}")),
    }
}

#[derive(Clone, Debug)]
pub struct Config {
    pub target: Target,
    pub addr: String,
    pub workload: Workload,
    pub connections: usize,
    pub item_size: usize,
    pub count: u64,
    pub duration: Option<Duration>,
    pub pipeline: usize,
    pub cursors: usize,
    pub queues: Option<usize>,
    pub pairs: bool,
    pub label: String,
    pub idle: Duration,
    /// Mixed: the `/t=` of an idle consumer's blocking read.
    pub wait_ms: u64,
    /// Prefix of the queue names / memcached keys of this run (unique per run).
    pub name: String,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            target: Target::Tern,
            addr: "127.0.0.1:22133".into(),
            workload: Workload::Produce,
            connections: 1,
            item_size: 128,
            count: 100_000,
            duration: None,
            pipeline: 1,
            cursors: 4,
            queues: None,
            pairs: false,
            label: String::new(),
            idle: Duration::from_secs(3),
            wait_ms: 100,
            name: String::new(),
        }
    }
}

/// Unique names, so runs never see each other's items (also in a long-lived server).
pub fn fresh_name() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "load_{}_{}_{}",
        std::process::id(),
        nanos,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub enum Parsed {
    Run(Box<Config>),
    Smoke(String),
    Usage(String),
}

/// The command line (without the program name). Errors are clap's, ready to print.
pub fn parse_args(args: &[String]) -> Result<Parsed, clap::Error> {
    let mut app = Args::clap();
    let matches = app.get_matches_from_safe_borrow(
        std::iter::once("load").chain(args.iter().map(String::as_str)),
    )?;
    let args = Args::from_clap(&matches);
    for other in &args.unknown {
        eprintln!("load: ignoring unknown argument {other:?}");
    }
    let given = args.run != RunArgs::default();
    let cfg = args.run.config();
    if args.smoke {
        return Ok(Parsed::Smoke(cfg.addr));
    }
    if !given {
        // Plain `cargo bench` runs every bench target with only `--bench`: nothing to load.
        let mut help = Vec::new();
        app.write_help(&mut help).expect("help into a Vec");
        return Ok(Parsed::Usage(String::from_utf8_lossy(&help).into_owned()));
    }
    let invalid = |msg: &str| {
        Err(clap::Error::with_description(
            msg,
            ErrorKind::ValueValidation,
        ))
    };
    if cfg.item_size < MIN_ITEM {
        return invalid(&format!("--item-size must be at least {MIN_ITEM}"));
    }
    if cfg.target == Target::Memcached
        && !matches!(cfg.workload, Workload::Produce | Workload::Consume)
    {
        return invalid("memcached is a cache, not a queue: only produce and consume apply");
    }
    Ok(Parsed::Run(Box::new(cfg)))
}

impl RunArgs {
    /// The run these options ask for: the defaults with the options given.
    fn config(self) -> Config {
        let d = Config::default();
        Config {
            target: self.target.unwrap_or(d.target),
            addr: self.addr.unwrap_or(d.addr),
            workload: self.workload.unwrap_or(d.workload),
            connections: self.connections.unwrap_or(d.connections),
            item_size: self.item_size.map_or(d.item_size, |n| n as usize),
            count: self.count.unwrap_or(d.count),
            duration: self.duration.or(d.duration),
            pipeline: self.pipeline.unwrap_or(d.pipeline),
            cursors: self.cursors.unwrap_or(d.cursors),
            queues: self.queues.or(d.queues),
            pairs: self.reliable_mode.unwrap_or(d.pairs),
            label: self.label.unwrap_or(d.label),
            idle: self.idle_timeout.unwrap_or(d.idle),
            wait_ms: self.wait_ms.unwrap_or(d.wait_ms),
            name: d.name,
        }
    }
}
