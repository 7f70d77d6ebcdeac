//! End-to-end load tool: drives a running tern (or memcached, set/get only) over TCP with the
//! memcache text protocol, measures throughput and per-request latency, and verifies that nothing
//! was lost, duplicated, reordered or corrupted.
//!
//! ```text
//! cargo bench --bench load -- --target tern|memcached --addr 127.0.0.1:PORT \
//!     --workload produce|consume|mixed|reliable|cursor|fanout --connections N \
//!     --item-size BYTES (--count N | --duration SECS) --pipeline DEPTH [--cursors R] [--queues Q]
//! cargo bench --bench load -- --smoke --addr 127.0.0.1:PORT      # CI: a few-second check
//! ```
//!
//! One OS thread and one blocking `TcpStream` per connection. Each connection writes a batch of
//! DEPTH commands in one `write`, then reads the DEPTH replies; a request's latency runs from the
//! batch write to the moment its own reply has been read. Every payload carries the producing
//! connection, a sequence number and a checksum, so the tool checks at the end, after an untimed
//! drain of whatever the timed phase left behind, that each acknowledged item came back exactly
//! once, intact, and (tern) in its producer's order. See `benches/README.md`.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

const USAGE: &str = "\
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
enum Target {
    Tern,
    Memcached,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Workload {
    Produce,
    Consume,
    Mixed,
    Reliable,
    Cursor,
    Fanout,
}

impl Workload {
    fn name(self) -> &'static str {
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
struct Config {
    target: Target,
    addr: String,
    workload: Workload,
    connections: usize,
    item_size: usize,
    count: u64,
    duration: Option<Duration>,
    pipeline: usize,
    cursors: usize,
    queues: Option<usize>,
    pairs: bool,
    label: String,
    idle: Duration,
    /// Prefix of the queue names / memcached keys of this run (unique per run).
    name: String,
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
fn fresh_name() -> String {
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

enum Parsed {
    Run(Box<Config>),
    Smoke(String),
    Usage,
}

fn parse_args(args: &[String]) -> Result<Parsed, String> {
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

// ---------------------------------------------------------------------------------------------
// Payloads: 8 hex digits of connection, 16 of sequence, filler, 16 hex digits of checksum.

const MIN_ITEM: usize = 40;
const FILLER: &[u8] = b"abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz";

fn pack(conn: u32, seq: u64) -> u64 {
    ((conn as u64) << 40) | seq
}

fn checksum(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ data.len() as u64;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().unwrap());
        h = (h ^ w).wrapping_mul(0x0000_0100_0000_01b3).rotate_left(31);
    }
    for &b in chunks.remainder() {
        h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^ (h >> 29)
}

fn put_hex(out: &mut Vec<u8>, v: u64, digits: usize) {
    for i in (0..digits).rev() {
        out.push(b"0123456789abcdef"[((v >> (i * 4)) & 0xf) as usize]);
    }
}

fn get_hex(s: &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for &b in s {
        let d = (b as char).to_digit(16)? as u64;
        v = (v << 4) | d;
    }
    Some(v)
}

/// Appends the payload of item (conn, seq) to `out`.
fn make_payload(out: &mut Vec<u8>, conn: u32, seq: u64, size: usize) {
    let start = out.len();
    put_hex(out, conn as u64, 8);
    put_hex(out, seq, 16);
    let mut fill = size - MIN_ITEM;
    let mut off = ((seq.wrapping_mul(7) + conn as u64) % 26) as usize;
    while fill > 0 {
        let n = fill.min(26);
        out.extend_from_slice(&FILLER[off..off + n]);
        fill -= n;
        off = (off + 1) % 26;
    }
    let sum = checksum(&out[start..]);
    put_hex(out, sum, 16);
}

/// (conn, seq) of a payload, or None if it is not one of ours of the right size (corrupt).
fn decode(data: &[u8], size: usize) -> Option<(u32, u64)> {
    if data.len() != size || size < MIN_ITEM {
        return None;
    }
    let (body, sum) = data.split_at(size - 16);
    if get_hex(sum)? != checksum(body) {
        return None;
    }
    Some((get_hex(&body[..8])? as u32, get_hex(&body[8..24])?))
}

// ---------------------------------------------------------------------------------------------
// Latency histogram: log-linear, 128 sub-buckets per power of two (< 1% error), nanoseconds.

const SUB: u32 = 7;

#[derive(Clone)]
struct Hist {
    counts: Vec<u64>,
    total: u64,
}

impl Default for Hist {
    fn default() -> Hist {
        Hist {
            counts: vec![0; 64 << SUB],
            total: 0,
        }
    }
}

impl Hist {
    fn record(&mut self, ns: u64) {
        let idx = if ns < (1 << SUB) {
            ns as usize
        } else {
            let e = 63 - ns.leading_zeros();
            let shift = e - SUB;
            (((shift + 1) as usize) << SUB) + ((ns >> shift) as usize - (1 << SUB))
        };
        self.counts[idx] += 1;
        self.total += 1;
    }

    fn merge(&mut self, other: &Hist) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
    }

    /// The q-quantile in microseconds (middle of its bucket).
    fn quantile_us(&self, q: f64) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (idx, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let (low, width) = if idx < (1 << SUB) {
                    (idx as f64, 1.0)
                } else {
                    let shift = (idx >> SUB) - 1;
                    let m = (idx & ((1 << SUB) - 1)) + (1 << SUB);
                    ((m << shift) as f64, (1u64 << shift) as f64)
                };
                return (low + width / 2.0) / 1000.0;
            }
        }
        0.0
    }
}

// ---------------------------------------------------------------------------------------------
// One blocking connection.

struct Client {
    r: BufReader<TcpStream>,
    w: TcpStream,
    line: Vec<u8>,
}

fn bad(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).trim_end().to_string()
}

impl Client {
    fn connect(addr: &str) -> io::Result<Client> {
        let s = TcpStream::connect(addr)
            .map_err(|e| io::Error::new(e.kind(), format!("connect {addr}: {e}")))?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        let w = s.try_clone()?;
        Ok(Client {
            r: BufReader::with_capacity(1 << 16, s),
            w,
            line: Vec::with_capacity(256),
        })
    }

    fn send(&mut self, buf: &[u8]) -> io::Result<()> {
        self.w.write_all(buf)
    }

    fn read_line(&mut self) -> io::Result<()> {
        self.line.clear();
        let n = self.r.read_until(b'\n', &mut self.line)?;
        if n == 0 || !self.line.ends_with(b"\n") {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "server closed the connection",
            ));
        }
        Ok(())
    }

    /// Reply to a `set`: Ok(Ok(())) for STORED, Ok(Err(line)) for any other line.
    fn read_stored(&mut self) -> io::Result<Result<(), String>> {
        self.read_line()?;
        if self.line == b"STORED\r\n" {
            Ok(Ok(()))
        } else {
            Ok(Err(lossy(&self.line)))
        }
    }

    /// Reply to a one-key `get`: Ok(Ok(true)) with the item in `data`, Ok(Ok(false)) for an
    /// empty reply, Ok(Err(line)) for an error line.
    fn read_get(&mut self, data: &mut Vec<u8>) -> io::Result<Result<bool, String>> {
        self.read_line()?;
        if self.line == b"END\r\n" {
            return Ok(Ok(false));
        }
        if !self.line.starts_with(b"VALUE ") {
            return Ok(Err(lossy(&self.line)));
        }
        let len: usize = std::str::from_utf8(&self.line)
            .ok()
            .and_then(|l| l.split_ascii_whitespace().nth(3))
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| bad(format!("bad VALUE line {:?}", lossy(&self.line))))?;
        data.clear();
        data.resize(len + 2, 0);
        self.r.read_exact(data)?;
        if !data.ends_with(b"\r\n") {
            return Err(bad("data block not followed by \\r\\n".into()));
        }
        data.truncate(len);
        self.read_line()?;
        if self.line != b"END\r\n" {
            return Err(bad(format!(
                "expected END after the item, got {:?}",
                lossy(&self.line)
            )));
        }
        Ok(Ok(true))
    }

    /// Sends one command and returns its reply's first line (for delete, flush...).
    fn command(&mut self, cmd: &str) -> io::Result<String> {
        self.send(format!("{cmd}\r\n").as_bytes())?;
        self.read_line()?;
        Ok(lossy(&self.line))
    }
}

// ---------------------------------------------------------------------------------------------
// Workers.

#[derive(Default)]
struct Out {
    ops: u64,
    misses: u64,
    errors: u64,
    first_error: Option<String>,
    hist: Hist,
    /// Acknowledged sets, packed (conn, seq).
    acked: Vec<u64>,
    /// Items read, packed (conn, seq).
    got: Vec<u64>,
    corrupt: u64,
    order: u64,
    /// Per producer connection: last sequence read + 1 (0 = none yet).
    last: Vec<u64>,
    start: Option<Instant>,
    end: Option<Instant>,
}

impl Out {
    /// Operations per second over this worker's run, if it ran.
    fn rate(&self) -> Option<f64> {
        let (start, end) = (self.start?, self.end?);
        Some(self.ops as f64 / end.duration_since(start).as_secs_f64().max(1e-9))
    }

    fn error(&mut self, e: String) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(e);
        }
    }

    fn take_item(&mut self, data: &[u8], size: usize) {
        match decode(data, size) {
            Some((c, s)) => {
                let ci = c as usize;
                if ci < 1 << 20 {
                    if self.last.len() <= ci {
                        self.last.resize(ci + 1, 0);
                    }
                    if s + 1 < self.last[ci] {
                        self.order += 1;
                    }
                    self.last[ci] = self.last[ci].max(s + 1);
                }
                self.got.push(pack(c, s));
            }
            None => self.corrupt += 1,
        }
    }

    fn absorb(&mut self, o: Out) {
        self.ops += o.ops;
        self.misses += o.misses;
        self.errors += o.errors;
        if self.first_error.is_none() {
            self.first_error = o.first_error;
        }
        self.hist.merge(&o.hist);
        self.acked.extend(o.acked);
        self.got.extend(o.got);
        self.corrupt += o.corrupt;
        self.order += o.order;
        self.start = match (self.start, o.start) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.end = match (self.end, o.end) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
}

/// What a producer sends: `set <key> 0 0 <len>`.
#[derive(Clone)]
enum SetKey {
    /// A queue (or `a+b+c` fanout) name, the same for every item.
    Fixed(String),
    /// memcached: `<prefix>:<conn>-<seq>`, one key per item.
    PerItem(String),
}

#[derive(Clone)]
struct ProduceJob {
    conn: u32,
    key: SetKey,
    /// Items to send (None: until the deadline).
    n: Option<u64>,
    duration: Option<Duration>,
    depth: usize,
    size: usize,
    timed: bool,
}

/// One reader on its own connection reading `want` items of `key`, timed apart from others.
fn lone_reader(cfg: &Config, key: String, want: u64, duration: Option<Duration>) -> Out {
    let job = ReadJob {
        duration,
        timed: false,
        ..ReadJob::new(cfg, GetPlan::Fixed(key), Until::Own(want))
    };
    read(job, None, Client::connect(&cfg.addr))
}

/// Waits until every worker is connected (so they start together) and starts the clock; `None`
/// (the error recorded in `out`) if this worker could not connect.
fn ready(client: io::Result<Client>, start: Option<Arc<Barrier>>, out: &mut Out) -> Option<Client> {
    let client = client.map_err(|e| out.error(e.to_string())).ok();
    if let Some(b) = start {
        b.wait();
    }
    if client.is_some() {
        out.start = Some(Instant::now());
    }
    client
}

fn produce(job: ProduceJob, start: Option<Arc<Barrier>>, client: io::Result<Client>) -> Out {
    let mut out = Out::default();
    let Some(mut c) = ready(client, start, &mut out) else {
        return out;
    };
    let t_start = out.start.unwrap_or_else(Instant::now);
    let deadline = job.duration.map(|d| t_start + d);
    let mut buf = Vec::with_capacity(job.depth * (job.size + 64));
    let mut seq = 0u64;
    'outer: loop {
        let k = match job.n {
            Some(n) if seq >= n => break,
            Some(n) => (n - seq).min(job.depth as u64),
            None => job.depth as u64,
        };
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        buf.clear();
        for j in 0..k {
            match &job.key {
                SetKey::Fixed(q) => {
                    write!(buf, "set {q} 0 0 {}\r\n", job.size).unwrap();
                }
                SetKey::PerItem(p) => {
                    write!(buf, "set {p}:{}-{} 0 0 {}\r\n", job.conn, seq + j, job.size).unwrap();
                }
            }
            make_payload(&mut buf, job.conn, seq + j, job.size);
            buf.extend_from_slice(b"\r\n");
        }
        let t0 = Instant::now();
        if let Err(e) = c.send(&buf) {
            out.error(format!("write: {e}"));
            break;
        }
        for j in 0..k {
            match c.read_stored() {
                Ok(Ok(())) => {
                    if job.timed {
                        out.hist.record(t0.elapsed().as_nanos() as u64);
                    }
                    out.acked.push(pack(job.conn, seq + j));
                    out.ops += 1;
                }
                Ok(Err(line)) => out.error(format!("set: {line}")),
                Err(e) => {
                    out.error(format!("set: {e}"));
                    break 'outer;
                }
            }
        }
        seq += k;
    }
    out.end = Some(Instant::now());
    out
}

/// What a reader sends.
#[derive(Clone)]
enum GetPlan {
    /// The same `get` line for every request (`get q`, `get q.c`, `get q/close/open`...).
    Fixed(String),
    /// Reliable pairs: `get q/open`, `get q/close`, alternating.
    Pair(String),
    /// memcached: one key per item, these (conn, seq) under `<prefix>:`.
    Keys(String, Vec<u64>),
}

/// When a reader stops (besides its plan running out, the deadline, or the idle timeout).
#[derive(Clone)]
enum Until {
    /// All readers together have read this many items.
    Global(Arc<AtomicU64>, u64),
    /// This reader has read this many items.
    Own(u64),
    /// The producers are done and everything they stored has been read.
    Producers(Arc<AtomicU64>, Arc<AtomicBool>, Arc<AtomicU64>),
    /// Until a batch comes back with no item (untimed drains).
    Empty,
}

#[derive(Clone)]
struct ReadJob {
    plan: GetPlan,
    until: Until,
    duration: Option<Duration>,
    depth: usize,
    size: usize,
    idle: Duration,
    timed: bool,
    /// Send this line at the end (reliable chains: `get q/close`).
    finish: Option<String>,
    /// After a batch that brought nothing, send this one key alone (a blocking `q/t=100`)
    /// instead of a batch, so an idle reader neither spins nor queues up many waits.
    wait: Option<String>,
}

impl ReadJob {
    /// A timed reader with the run's settings; callers override what differs.
    fn new(cfg: &Config, plan: GetPlan, until: Until) -> ReadJob {
        ReadJob {
            plan,
            until,
            duration: cfg.duration,
            depth: cfg.pipeline,
            size: cfg.item_size,
            idle: cfg.idle,
            timed: true,
            finish: None,
            wait: None,
        }
    }

    /// An untimed drain, 64 requests deep, until a batch brings nothing.
    fn drain(cfg: &Config, plan: GetPlan) -> ReadJob {
        ReadJob {
            duration: None,
            depth: 64,
            timed: false,
            ..ReadJob::new(cfg, plan, Until::Empty)
        }
    }
}

fn read(job: ReadJob, start: Option<Arc<Barrier>>, client: io::Result<Client>) -> Out {
    let mut out = Out::default();
    let Some(mut c) = ready(client, start, &mut out) else {
        return out;
    };
    let t_start = out.start.unwrap_or_else(Instant::now);
    let deadline = job.duration.map(|d| t_start + d);
    let mut buf = Vec::with_capacity(job.depth * 64);
    let mut data = Vec::with_capacity(job.size + 2);
    let mut last_hit = Instant::now();
    let mut next_key = 0usize;
    let mut empty_before = false;
    let fixed_line = match &job.plan {
        GetPlan::Fixed(k) => format!("get {k}\r\n"),
        GetPlan::Pair(q) => format!("get {q}/open\r\nget {q}/close\r\n"),
        GetPlan::Keys(..) => String::new(),
    };
    'outer: loop {
        let own = out.ops;
        let done = match &job.until {
            Until::Global(n, want) => n.load(Ordering::Relaxed) >= *want,
            Until::Own(want) => own >= *want,
            Until::Producers(got, done, acked) => {
                done.load(Ordering::SeqCst)
                    && got.load(Ordering::SeqCst) >= acked.load(Ordering::SeqCst)
            }
            Until::Empty => false,
        };
        if done || deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        // Requests in this batch.
        buf.clear();
        let mut k = job.depth;
        match &job.plan {
            GetPlan::Fixed(_) => {
                if let Until::Own(want) = job.until {
                    k = k.min((want - own) as usize);
                }
                match &job.wait {
                    Some(w) if empty_before => {
                        k = 1;
                        write!(buf, "get {w}\r\n").unwrap();
                    }
                    _ => {
                        for _ in 0..k {
                            buf.extend_from_slice(fixed_line.as_bytes());
                        }
                    }
                }
            }
            GetPlan::Pair(_) => {
                let pairs = k.div_ceil(2);
                k = pairs * 2;
                for _ in 0..pairs {
                    buf.extend_from_slice(fixed_line.as_bytes());
                }
            }
            GetPlan::Keys(p, ids) => {
                if next_key >= ids.len() {
                    break;
                }
                k = k.min(ids.len() - next_key);
                for id in &ids[next_key..next_key + k] {
                    write!(buf, "get {p}:{}-{}\r\n", id >> 40, id & ((1 << 40) - 1)).unwrap();
                }
            }
        }
        let t0 = Instant::now();
        if let Err(e) = c.send(&buf) {
            out.error(format!("write: {e}"));
            break;
        }
        let mut hits = 0u64;
        for j in 0..k {
            match c.read_get(&mut data) {
                Ok(Ok(hit)) => {
                    if job.timed {
                        out.hist.record(t0.elapsed().as_nanos() as u64);
                    }
                    let is_close = matches!(job.plan, GetPlan::Pair(_)) && j % 2 == 1;
                    if hit && is_close {
                        out.error("`/close` returned an item".into());
                    } else if hit {
                        if let GetPlan::Keys(_, ids) = &job.plan {
                            if decode(&data, job.size) != Some(unpack(ids[next_key + j])) {
                                out.corrupt += 1;
                                continue;
                            }
                        }
                        out.take_item(&data, job.size);
                        out.ops += 1;
                        hits += 1;
                    } else if !is_close {
                        out.misses += 1;
                    }
                }
                Ok(Err(line)) => out.error(format!("get: {line}")),
                Err(e) => {
                    out.error(format!("get: {e}"));
                    break 'outer;
                }
            }
        }
        next_key += k;
        match &job.until {
            Until::Global(n, _) => {
                n.fetch_add(hits, Ordering::Relaxed);
            }
            Until::Producers(n, _, _) => {
                n.fetch_add(hits, Ordering::SeqCst);
            }
            _ => {}
        }
        empty_before = hits == 0;
        if hits > 0 {
            last_hit = Instant::now();
        } else if matches!(job.until, Until::Empty) {
            break;
        } else {
            let producing = match &job.until {
                Until::Producers(_, done, _) => !done.load(Ordering::SeqCst),
                _ => false,
            };
            if producing {
                last_hit = Instant::now();
            } else if last_hit.elapsed() >= job.idle {
                break;
            }
        }
    }
    out.end = Some(Instant::now());
    if let Some(f) = &job.finish {
        match c.command(f) {
            Ok(l) if l == "END" => {}
            Ok(l) => out.error(format!("{f}: {l}")),
            Err(e) => out.error(format!("{f}: {e}")),
        }
    }
    out
}

fn unpack(id: u64) -> (u32, u64) {
    ((id >> 40) as u32, id & ((1 << 40) - 1))
}

/// Runs the jobs on one thread each, started together; returns their results in order and the
/// time from the common start to the last one's end.
enum Job {
    Produce(ProduceJob),
    Read(ReadJob),
}

fn run_jobs(addr: &str, jobs: Vec<Job>) -> (Vec<Out>, Duration) {
    let barrier = Arc::new(Barrier::new(jobs.len() + 1));
    let mut handles = Vec::new();
    for job in jobs {
        let b = barrier.clone();
        let addr = addr.to_string();
        handles.push(thread::spawn(move || {
            let client = Client::connect(&addr);
            match job {
                Job::Produce(j) => produce(j, Some(b), client),
                Job::Read(j) => read(j, Some(b), client),
            }
        }));
    }
    barrier.wait();
    let t0 = Instant::now();
    let outs: Vec<Out> = handles
        .into_iter()
        .map(|h| {
            h.join().unwrap_or_else(|_| {
                let mut o = Out::default();
                o.error("worker thread panicked".into());
                o
            })
        })
        .collect();
    let end = outs.iter().filter_map(|o| o.end).max().unwrap_or(t0);
    (outs, end.saturating_duration_since(t0))
}

fn split(total: u64, parts: usize, i: usize) -> u64 {
    total / parts as u64 + u64::from((i as u64) < total % parts as u64)
}

/// Untimed fill: `total` items over `conns` connections at depth 64. Returns the acked ids
/// per connection.
fn fill(cfg: &Config, key: impl Fn(usize) -> SetKey, total: u64, conns: usize) -> Out {
    let jobs = (0..conns)
        .map(|i| {
            Job::Produce(ProduceJob {
                conn: i as u32,
                key: key(i),
                n: Some(split(total, conns, i)),
                duration: None,
                depth: 64,
                size: cfg.item_size,
                timed: false,
            })
        })
        .collect();
    let (outs, _) = run_jobs(&cfg.addr, jobs);
    let mut all = Out::default();
    for o in outs {
        all.absorb(o);
    }
    all
}

/// Untimed drain of a tern queue with one connection; returns what it read.
fn drain(cfg: &Config, queue: &str) -> Out {
    let job = ReadJob::drain(cfg, GetPlan::Fixed(queue.to_string()));
    read(job, None, Client::connect(&cfg.addr))
}

fn delete_queues(cfg: &Config, queues: &[String], res: &mut Out) {
    match Client::connect(&cfg.addr) {
        Ok(mut c) => {
            for q in queues {
                match c.command(&format!("delete {q}")) {
                    Ok(l) if l == "DELETED" || l == "NOT_FOUND" => {}
                    Ok(l) => res.error(format!("delete {q}: {l}")),
                    Err(e) => res.error(format!("delete {q}: {e}")),
                }
            }
        }
        Err(e) => res.error(e.to_string()),
    }
}

#[derive(Default, Debug, Clone, Copy, PartialEq, Eq)]
struct Check {
    lost: u64,
    dup: u64,
    /// Read but never acknowledged (e.g. the set got an error reply yet was stored).
    unexpected: u64,
}

impl std::ops::AddAssign for Check {
    fn add_assign(&mut self, o: Check) {
        self.lost += o.lost;
        self.dup += o.dup;
        self.unexpected += o.unexpected;
    }
}

/// Compares what was read with what was acknowledged.
fn check(acked: &[u64], got: &[u64]) -> Check {
    let mut a = acked.to_vec();
    let mut g = got.to_vec();
    a.sort_unstable();
    g.sort_unstable();
    let mut c = Check::default();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < g.len() {
        if j < g.len() && j > 0 && g[j] == g[j - 1] {
            c.dup += 1;
            j += 1;
        } else if i < a.len() && (j >= g.len() || a[i] < g[j]) {
            c.lost += 1;
            i += 1;
        } else if i >= a.len() || g[j] < a[i] {
            c.unexpected += 1;
            j += 1;
        } else {
            i += 1;
            j += 1;
        }
    }
    c
}

// ---------------------------------------------------------------------------------------------
// Workloads.

struct Report {
    cfg: Config,
    ops: u64,
    secs: f64,
    res: Out,
    check: Check,
    extra: String,
}

impl Report {
    fn ok(&self) -> bool {
        self.check == Check::default()
            && self.res.errors == 0
            && self.res.corrupt == 0
            && self.res.order == 0
    }

    fn line(&self) -> String {
        let c = &self.cfg;
        let h = &self.res.hist;
        format!(
            "target={} label={} workload={}{} conns={} pipeline={} size={} ops={} secs={:.3} \
             ops/s={:.0} p50_us={:.1} p99_us={:.1} p999_us={:.1}{} misses={} errors={} lost={} \
             dup={} corrupt={} order={} unexpected={} verify={}",
            match c.target {
                Target::Tern => "tern",
                Target::Memcached => "memcached",
            },
            if c.label.is_empty() { "-" } else { &c.label },
            c.workload.name(),
            if c.workload == Workload::Reliable && c.pairs {
                "-pair"
            } else {
                ""
            },
            c.connections,
            c.pipeline,
            c.item_size,
            self.ops,
            self.secs,
            self.ops as f64 / self.secs.max(1e-9),
            h.quantile_us(0.50),
            h.quantile_us(0.99),
            h.quantile_us(0.999),
            self.extra,
            self.res.misses,
            self.res.errors,
            self.check.lost,
            self.check.dup,
            self.res.corrupt,
            self.res.order,
            self.check.unexpected,
            if self.ok() { "ok" } else { "FAILED" },
        )
    }
}

fn queue_names(cfg: &Config, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{}_q{i}", cfg.name)).collect()
}

fn run(cfg: &Config) -> Report {
    let mut cfg = cfg.clone();
    if cfg.name.is_empty() {
        cfg.name = fresh_name();
    }
    let n = cfg.connections;
    let mut check_sum = Check::default();
    let mut extra = String::new();
    let mut res = Out::default();
    let secs;
    match (cfg.workload, cfg.target) {
        (Workload::Produce | Workload::Fanout, _) => {
            let fanout = cfg.workload == Workload::Fanout;
            let nq = if fanout {
                cfg.queues.unwrap_or(3)
            } else {
                cfg.queues.unwrap_or(1)
            };
            let queues = queue_names(&cfg, nq);
            let jobs = (0..n)
                .map(|i| {
                    Job::Produce(ProduceJob {
                        conn: i as u32,
                        key: match cfg.target {
                            Target::Memcached => SetKey::PerItem(cfg.name.clone()),
                            Target::Tern if fanout => SetKey::Fixed(queues.join("+")),
                            Target::Tern => SetKey::Fixed(queues[i % nq].clone()),
                        },
                        n: if cfg.duration.is_some() {
                            None
                        } else {
                            Some(split(cfg.count, n, i))
                        },
                        duration: cfg.duration,
                        depth: cfg.pipeline,
                        size: cfg.item_size,
                        timed: true,
                    })
                })
                .collect();
            let (outs, d) = run_jobs(&cfg.addr, jobs);
            secs = d.as_secs_f64();
            for o in outs {
                res.absorb(o);
            }
            // Verify: read everything back, untimed.
            match cfg.target {
                Target::Memcached => {
                    let conns = n.min(8);
                    let mut per: Vec<Vec<u64>> = vec![Vec::new(); conns];
                    for (i, id) in res.acked.iter().enumerate() {
                        per[i % conns].push(*id);
                    }
                    let jobs = per
                        .into_iter()
                        .map(|ids| {
                            Job::Read(ReadJob::drain(&cfg, GetPlan::Keys(cfg.name.clone(), ids)))
                        })
                        .collect();
                    let mut back = Out::default();
                    for o in run_jobs(&cfg.addr, jobs).0 {
                        back.absorb(o);
                    }
                    check_sum += check(&res.acked, &back.got);
                    res.corrupt += back.corrupt;
                    res.errors += back.errors;
                    res.first_error = res.first_error.take().or(back.first_error);
                }
                Target::Tern if fanout => {
                    for q in &queues {
                        let back = drain(&cfg, q);
                        check_sum += check(&res.acked, &back.got);
                        res.corrupt += back.corrupt;
                        res.order += back.order;
                        res.errors += back.errors;
                        res.first_error = res.first_error.take().or(back.first_error);
                    }
                    extra = format!(" queues={nq}");
                }
                Target::Tern => {
                    let mut back = Out::default();
                    for q in &queues {
                        back.absorb(drain(&cfg, q));
                    }
                    check_sum += check(&res.acked, &back.got);
                    res.corrupt += back.corrupt;
                    res.order += back.order;
                    res.errors += back.errors;
                    res.first_error = res.first_error.take().or(back.first_error);
                }
            }
            if cfg.target == Target::Tern {
                delete_queues(&cfg, &queues, &mut res);
            }
            let ops = res.ops;
            return Report {
                cfg,
                ops,
                secs,
                res,
                check: check_sum,
                extra,
            };
        }
        (Workload::Consume, Target::Memcached) => {
            let filled = fill(&cfg, |_| SetKey::PerItem(cfg.name.clone()), cfg.count, n);
            let mut per: Vec<Vec<u64>> = vec![Vec::new(); n];
            for id in &filled.acked {
                per[(id >> 40) as usize].push(*id);
            }
            let jobs = per
                .into_iter()
                .map(|ids| {
                    Job::Read(ReadJob::new(
                        &cfg,
                        GetPlan::Keys(cfg.name.clone(), ids),
                        Until::Own(u64::MAX),
                    ))
                })
                .collect();
            let (outs, d) = run_jobs(&cfg.addr, jobs);
            secs = d.as_secs_f64();
            for o in outs {
                res.absorb(o);
            }
            res.errors += filled.errors;
            res.first_error = res.first_error.take().or(filled.first_error);
            if cfg.duration.is_some() {
                // A time-limited run reads only part: check only what was requested.
                let mut want: Vec<u64> = res.got.clone();
                want.sort_unstable();
                want.dedup();
                check_sum += check(&want, &res.got);
                res.order = 0;
            } else {
                check_sum += check(&filled.acked, &res.got);
            }
            res.order = 0; // memcached has no order
        }
        (Workload::Consume | Workload::Reliable, Target::Tern) => {
            let nq = if cfg.workload == Workload::Consume {
                cfg.queues.unwrap_or(1)
            } else {
                1
            };
            let queues = queue_names(&cfg, nq);
            let filled = fill(
                &cfg,
                |i| SetKey::Fixed(queues[i % nq].clone()),
                cfg.count,
                n.clamp(nq, 8.max(nq)),
            );
            let total = Arc::new(AtomicU64::new(0));
            let jobs = (0..n)
                .map(|i| {
                    let q = &queues[i % nq];
                    let (plan, finish) = match cfg.workload {
                        Workload::Consume => (GetPlan::Fixed(q.clone()), None),
                        _ if cfg.pairs => (GetPlan::Pair(q.clone()), None),
                        _ => (
                            GetPlan::Fixed(format!("{q}/close/open")),
                            Some(format!("get {q}/close")),
                        ),
                    };
                    let until = Until::Global(total.clone(), filled.acked.len() as u64);
                    Job::Read(ReadJob {
                        finish,
                        ..ReadJob::new(&cfg, plan, until)
                    })
                })
                .collect();
            let (outs, d) = run_jobs(&cfg.addr, jobs);
            secs = d.as_secs_f64();
            for o in outs {
                res.absorb(o);
            }
            // Whatever the timed phase left (time limit) or lost track of, read it now.
            let mut got = res.got.clone();
            let mut left = 0;
            for q in &queues {
                let back = drain(&cfg, q);
                left += back.got.len();
                got.extend_from_slice(&back.got);
                res.corrupt += back.corrupt;
                res.errors += back.errors;
                res.first_error = res.first_error.take().or(back.first_error);
            }
            if left > 0 {
                extra = format!(" left_for_drain={left}");
            }
            check_sum += check(&filled.acked, &got);
            res.errors += filled.errors;
            res.first_error = res.first_error.take().or(filled.first_error);
            delete_queues(&cfg, &queues, &mut res);
        }
        (Workload::Mixed, Target::Tern) => {
            let queues = queue_names(&cfg, 1);
            let q = queues[0].clone();
            let producers = (n / 2).max(1);
            let consumers = (n - producers).max(1);
            let got = Arc::new(AtomicU64::new(0));
            let done = Arc::new(AtomicBool::new(false));
            let acked = Arc::new(AtomicU64::new(0));
            // Producers report their acks through a wrapper thread each.
            let barrier = Arc::new(Barrier::new(producers + consumers + 1));
            let mut handles = Vec::new();
            for i in 0..producers {
                let job = ProduceJob {
                    conn: i as u32,
                    key: SetKey::Fixed(q.clone()),
                    n: if cfg.duration.is_some() {
                        None
                    } else {
                        Some(split(cfg.count, producers, i))
                    },
                    duration: cfg.duration,
                    depth: cfg.pipeline,
                    size: cfg.item_size,
                    timed: true,
                };
                let (b, addr, acked) = (barrier.clone(), cfg.addr.clone(), acked.clone());
                handles.push(thread::spawn(move || {
                    let o = produce(job, Some(b), Client::connect(&addr));
                    acked.fetch_add(o.acked.len() as u64, Ordering::SeqCst);
                    o
                }));
            }
            for _ in 0..consumers {
                let until = Until::Producers(got.clone(), done.clone(), acked.clone());
                let job = ReadJob {
                    duration: None,
                    wait: Some(format!("{q}/t=100")),
                    ..ReadJob::new(&cfg, GetPlan::Fixed(q.clone()), until)
                };
                let (b, addr) = (barrier.clone(), cfg.addr.clone());
                handles.push(thread::spawn(move || {
                    read(job, Some(b), Client::connect(&addr))
                }));
            }
            barrier.wait();
            let t0 = Instant::now();
            let mut outs = Vec::new();
            for (i, h) in handles.into_iter().enumerate() {
                outs.push(h.join().unwrap_or_default());
                if i + 1 == producers {
                    done.store(true, Ordering::SeqCst);
                }
            }
            let end = outs.iter().filter_map(|o| o.end).max().unwrap_or(t0);
            secs = end.saturating_duration_since(t0).as_secs_f64();
            for o in outs {
                res.absorb(o);
            }
            let back = drain(&cfg, &q);
            let mut all = res.got.clone();
            all.extend_from_slice(&back.got);
            res.corrupt += back.corrupt;
            res.errors += back.errors;
            check_sum += check(&res.acked, &all);
            extra = format!(" producers={producers} consumers={consumers}");
            delete_queues(&cfg, &queues, &mut res);
        }
        (Workload::Cursor, Target::Tern) => {
            let queues = queue_names(&cfg, 1);
            let q = queues[0].clone();
            let filled = fill(&cfg, |_| SetKey::Fixed(q.clone()), cfg.count, n.min(8));
            let want = filled.acked.len() as u64;
            let r = cfg.cursors;
            let jobs = (0..r)
                .map(|i| {
                    Job::Read(ReadJob::new(
                        &cfg,
                        GetPlan::Fixed(format!("{q}.c{i}")),
                        Until::Own(want),
                    ))
                })
                .collect();
            let (outs, d) = run_jobs(&cfg.addr, jobs);
            secs = d.as_secs_f64();
            let mut rates = Vec::new();
            for o in outs {
                let c = check(&filled.acked, &o.got);
                // A time-limited cursor legitimately reads only a prefix.
                let c = if cfg.duration.is_some() {
                    Check { lost: 0, ..c }
                } else {
                    c
                };
                check_sum += c;
                rates.extend(o.rate());
                res.absorb(o);
            }
            // One more cursor, alone: its rate without the other cursors competing.
            let solo = lone_reader(&cfg, format!("{q}.solo"), want, cfg.duration);
            let solo_rate = solo.rate().unwrap_or(0.0);
            let mut c = check(&filled.acked, &solo.got);
            if cfg.duration.is_some() {
                c.lost = 0;
            }
            check_sum += c;
            res.corrupt += solo.corrupt;
            res.order += solo.order;
            res.errors += solo.errors;
            res.first_error = res.first_error.take().or(solo.first_error);
            // Then a plain consumer (one connection, same depth), timed apart: the rate to
            // compare a cursor's with; it also checks that the cursors removed nothing.
            let plain = lone_reader(&cfg, q.clone(), want, None);
            let plain_rate = plain.rate().unwrap_or(0.0);
            let back = drain(&cfg, &q);
            let mut all = plain.got.clone();
            all.extend_from_slice(&back.got);
            check_sum += check(&filled.acked, &all);
            res.corrupt += plain.corrupt + back.corrupt;
            res.order += plain.order;
            res.errors += plain.errors + back.errors + filled.errors;
            res.first_error = res
                .first_error
                .take()
                .or(plain.first_error)
                .or(filled.first_error);
            let min = rates.iter().cloned().fold(f64::INFINITY, f64::min);
            let max = rates.iter().cloned().fold(0.0, f64::max);
            extra = format!(
                " cursors={r} items={want} cursor_min_ops/s={min:.0} cursor_max_ops/s={max:.0} \
                 plain_ops/s={plain_rate:.0} min_cursor/plain={:.2} solo_cursor_ops/s={solo_rate:.0} \
                 solo_cursor/plain={:.2}",
                min / plain_rate.max(1e-9),
                solo_rate / plain_rate.max(1e-9)
            );
            delete_queues(&cfg, &queues, &mut res);
        }
        (w, Target::Memcached) => unreachable!("{w:?} on memcached is rejected by parse_args"),
    }
    let ops = res.ops;
    Report {
        cfg,
        ops,
        secs,
        res,
        check: check_sum,
        extra,
    }
}

fn report(r: &Report) -> bool {
    println!("{}", r.line());
    if let Some(e) = &r.res.first_error {
        eprintln!("load: first error: {e}");
    }
    r.ok()
}

fn smoke(addr: &str) -> bool {
    let base = Config {
        addr: addr.to_string(),
        connections: 4,
        item_size: 200,
        count: 2000,
        pipeline: 8,
        label: "smoke".into(),
        ..Config::default()
    };
    let runs = [
        Config {
            workload: Workload::Produce,
            ..base.clone()
        },
        Config {
            workload: Workload::Consume,
            ..base.clone()
        },
        Config {
            workload: Workload::Mixed,
            ..base.clone()
        },
        Config {
            workload: Workload::Reliable,
            ..base.clone()
        },
        Config {
            workload: Workload::Reliable,
            pairs: true,
            pipeline: 4,
            ..base.clone()
        },
        Config {
            workload: Workload::Cursor,
            cursors: 3,
            count: 1000,
            ..base.clone()
        },
        Config {
            workload: Workload::Fanout,
            queues: Some(3),
            count: 500,
            ..base.clone()
        },
        Config {
            workload: Workload::Produce,
            connections: 1,
            pipeline: 1,
            count: 200,
            item_size: 4000,
            ..base.clone()
        },
    ];
    let mut ok = true;
    for cfg in &runs {
        ok &= report(&run(cfg));
    }
    ok
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match parse_args(&args) {
        Err(e) => {
            eprintln!("load: {e}\n{USAGE}");
            ExitCode::from(2)
        }
        Ok(Parsed::Usage) => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Ok(Parsed::Smoke(addr)) => {
            if smoke(&addr) {
                println!("smoke: ok");
                ExitCode::SUCCESS
            } else {
                println!("smoke: FAILED");
                ExitCode::FAILURE
            }
        }
        Ok(Parsed::Run(cfg)) => {
            if report(&run(&cfg)) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
