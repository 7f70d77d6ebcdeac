//! The command line: options, their defaults and checks, and the run's `Config`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::payload::MIN_ITEM;

pub const USAGE: &str = "\
usage: cargo bench --bench load -- [options]
  --target tern|memcached    server kind (default tern; memcached: produce/consume only)
  --addr HOST:PORT           server address (default 127.0.0.1:22133)
  --workload W               produce|consume|mixed|reliable|cursor|fanout (default produce)
  --connections N            client connections, one thread each (default 1)
  --item-size BYTES          payload size, at least 40 (default 128)
  --count N                  total items (default 100000): sets for produce/mixed/fanout,
                             the pre-filled queue for consume/reliable/cursor
  --duration SECS            time limit for the timed phase (produce: instead of --count)
  --pipeline DEPTH           requests in flight per connection (default 1)
  --cursors R                cursor workload: cursors reading the queue at once (default 4)
  --queues Q                 fanout: queues per set (default 3); produce/consume: spread the
                             connections over Q queues (default 1)
  --reliable-mode chain|pair reliable: `get q/close/open` chains (default) or open+close pairs
  --label TEXT               free text copied to the output line (e.g. sync=never)
  --idle-timeout SECS        a reader gives up after this long without an item (default 3)
  --smoke                    run a short produce+consume+mixed+reliable+cursor+fanout check
                             against a running tern; exit status 1 on any failure";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Target {
    Tern,
    Memcached,
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
    Usage,
}

pub fn parse_args(args: &[String]) -> Result<Parsed, String> {
    let mut cfg = Config::default();
    let mut smoke = false;
    let mut meaningful = false;
    let mut i = 0;
    while i < args.len() {
        let flag = args[i].as_str();
        let takes_value = matches!(
            flag,
            "--target"
                | "--addr"
                | "--workload"
                | "--connections"
                | "--item-size"
                | "--count"
                | "--duration"
                | "--pipeline"
                | "--cursors"
                | "--queues"
                | "--reliable-mode"
                | "--label"
                | "--idle-timeout"
        );
        if !takes_value {
            match flag {
                "--smoke" => {
                    smoke = true;
                    meaningful = true;
                }
                "-h" | "--help" => return Ok(Parsed::Usage),
                // cargo passes `--bench`; ignore it and any other unknown flag.
                "--bench" => {}
                other => eprintln!("load: ignoring unknown argument {other:?}"),
            }
            i += 1;
            continue;
        }
        let value = args
            .get(i + 1)
            .ok_or_else(|| format!("{flag} needs a value"))?
            .clone();
        i += 2;
        meaningful = true;
        let num = |v: &str| -> Result<u64, String> {
            v.replace('_', "")
                .parse::<u64>()
                .map_err(|_| format!("{flag}: not a number: {v}"))
        };
        match flag {
            "--target" => {
                cfg.target = match value.as_str() {
                    "tern" => Target::Tern,
                    "memcached" => Target::Memcached,
                    _ => return Err(format!("unknown target {value}")),
                }
            }
            "--addr" => cfg.addr = value,
            "--workload" => {
                cfg.workload = match value.as_str() {
                    "produce" | "set" => Workload::Produce,
                    "consume" | "get" => Workload::Consume,
                    "mixed" => Workload::Mixed,
                    "reliable" => Workload::Reliable,
                    "cursor" => Workload::Cursor,
                    "fanout" => Workload::Fanout,
                    _ => return Err(format!("unknown workload {value}")),
                }
            }
            "--connections" => cfg.connections = num(&value)?.max(1) as usize,
            "--item-size" => cfg.item_size = num(&value)? as usize,
            "--count" => cfg.count = num(&value)?,
            "--duration" => {
                let secs: f64 = value
                    .parse()
                    .map_err(|_| format!("--duration: not a number: {value}"))?;
                cfg.duration = Some(Duration::from_secs_f64(secs));
            }
            "--pipeline" => cfg.pipeline = num(&value)?.max(1) as usize,
            "--cursors" => cfg.cursors = num(&value)?.max(1) as usize,
            "--queues" => cfg.queues = Some(num(&value)?.max(1) as usize),
            "--reliable-mode" => {
                cfg.pairs = match value.as_str() {
                    "chain" => false,
                    "pair" => true,
                    _ => return Err(format!("unknown reliable mode {value}")),
                }
            }
            "--label" => cfg.label = value,
            "--idle-timeout" => {
                let secs: f64 = value
                    .parse()
                    .map_err(|_| format!("--idle-timeout: not a number: {value}"))?;
                cfg.idle = Duration::from_secs_f64(secs);
            }
            _ => unreachable!(),
        }
    }
    if smoke {
        return Ok(Parsed::Smoke(cfg.addr));
    }
    if !meaningful {
        // Plain `cargo bench` runs every bench target with only `--bench`: nothing to load.
        return Ok(Parsed::Usage);
    }
    if cfg.item_size < MIN_ITEM {
        return Err(format!("--item-size must be at least {MIN_ITEM}"));
    }
    if cfg.target == Target::Memcached
        && !matches!(cfg.workload, Workload::Produce | Workload::Consume)
    {
        return Err("memcached is a cache, not a queue: only produce and consume apply".into());
    }
    Ok(Parsed::Run(Box::new(cfg)))
}
