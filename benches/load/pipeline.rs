//! Pipelined workers: a producer and a reader on one connection each, writing DEPTH requests per
//! `write` and timing each reply; `run_jobs` starts them together on one thread each; the untimed
//! fill, drain and delete around a timed phase.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use crate::args::Config;
use crate::client::Client;
use crate::payload::{decode, make_payload, pack, unpack};
use crate::verify::Out;

/// What a producer sends: `set <key> 0 0 <len>`.
#[derive(Clone)]
pub enum SetKey {
    /// A queue (or `a+b+c` fanout) name, the same for every item.
    Fixed(String),
    /// memcached: `<prefix>:<conn>-<seq>`, one key per item.
    PerItem(String),
}

#[derive(Clone)]
pub struct ProduceJob {
    pub conn: u32,
    pub key: SetKey,
    /// Items to send (None: until the deadline).
    pub n: Option<u64>,
    pub duration: Option<Duration>,
    pub depth: usize,
    pub size: usize,
    pub timed: bool,
    /// When done, add the number of acknowledged sets to this (mixed: when the consumers stop).
    pub report_acked: Option<Arc<AtomicU64>>,
}

impl ProduceJob {
    /// A timed producer, one of `producers`: `--count` shared out among them, or `--duration`.
    pub fn timed(cfg: &Config, conn: usize, key: SetKey, producers: usize) -> ProduceJob {
        ProduceJob {
            n: if cfg.duration.is_some() {
                None
            } else {
                Some(split(cfg.count, producers, conn))
            },
            duration: cfg.duration,
            depth: cfg.pipeline,
            timed: true,
            ..ProduceJob::untimed(cfg, conn, key, 0)
        }
    }

    /// An untimed producer of `n` items, 64 requests deep (fills).
    fn untimed(cfg: &Config, conn: usize, key: SetKey, n: u64) -> ProduceJob {
        ProduceJob {
            conn: conn as u32,
            key,
            n: Some(n),
            duration: None,
            depth: 64,
            size: cfg.item_size,
            timed: false,
            report_acked: None,
        }
    }
}

/// One reader on its own connection reading `want` items of `key`, timed apart from others.
pub fn lone_reader(cfg: &Config, key: String, want: u64, duration: Option<Duration>) -> Out {
    let job = ReadJob {
        duration,
        timed: false,
        ..ReadJob::new(cfg, GetPlan::Fixed(key), Until::Own(want))
    };
    read(job, None, Client::connect(&cfg.addr))
}

/// Waits until every worker is connected (so they start together) and starts the clock; `None`
/// (the error recorded in `out`) if this worker could not connect.
pub fn ready(
    client: io::Result<Client>,
    start: Option<Arc<Barrier>>,
    out: &mut Out,
) -> Option<Client> {
    let client = client.map_err(|e| out.error(e.to_string())).ok();
    if let Some(b) = start {
        b.wait();
    }
    if client.is_some() {
        out.start = Some(Instant::now());
    }
    client
}

pub fn produce(job: ProduceJob, start: Option<Arc<Barrier>>, client: io::Result<Client>) -> Out {
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
    if let Some(total) = &job.report_acked {
        total.fetch_add(out.acked.len() as u64, Ordering::SeqCst);
    }
    out
}

/// What a reader sends.
#[derive(Clone)]
pub enum GetPlan {
    /// The same `get` line for every request (`get q`, `get q.c`, `get q/close/open`...).
    Fixed(String),
    /// Reliable pairs: `get q/open`, `get q/close`, alternating.
    Pair(String),
    /// memcached: one key per item, these (conn, seq) under `<prefix>:`.
    Keys(String, Vec<u64>),
}

/// When a reader stops (besides its plan running out, the deadline, or the idle timeout).
#[derive(Clone)]
pub enum Until {
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
pub struct ReadJob {
    pub plan: GetPlan,
    pub until: Until,
    pub duration: Option<Duration>,
    pub depth: usize,
    pub size: usize,
    pub idle: Duration,
    pub timed: bool,
    /// Send this line at the end (reliable chains: `get q/close`).
    pub finish: Option<String>,
    /// After a batch that brought nothing, send this one key alone (a blocking `q/t=MS`)
    /// instead of a batch, so an idle reader neither spins nor queues up many waits.
    pub wait: Option<String>,
}

impl ReadJob {
    /// A timed reader with the run's settings; callers override what differs.
    pub fn new(cfg: &Config, plan: GetPlan, until: Until) -> ReadJob {
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
    pub fn drain(cfg: &Config, plan: GetPlan) -> ReadJob {
        ReadJob {
            duration: None,
            depth: 64,
            timed: false,
            ..ReadJob::new(cfg, plan, Until::Empty)
        }
    }
}

pub fn read(job: ReadJob, start: Option<Arc<Barrier>>, client: io::Result<Client>) -> Out {
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
        // A lone blocking `get q/t=…` (see `ReadJob::wait`).
        let blocking = job.wait.is_some() && empty_before && matches!(job.plan, GetPlan::Fixed(_));
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
                        out.wait_timeouts += u64::from(blocking);
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

/// A worker for `run_jobs`.
pub enum Job {
    Produce(ProduceJob),
    Read(ReadJob),
}

/// Runs the jobs on one thread each, started together; returns their results in order and the
/// time from the common start to the last one's end.
pub fn run_jobs(addr: &str, jobs: Vec<Job>) -> (Vec<Out>, Duration) {
    run_jobs_then(addr, jobs, |_| {})
}

/// `run_jobs`, calling `joined(i)` once job `i` has ended (jobs are joined in order).
pub fn run_jobs_then(
    addr: &str,
    jobs: Vec<Job>,
    mut joined: impl FnMut(usize),
) -> (Vec<Out>, Duration) {
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
        .enumerate()
        .map(|(i, h)| {
            let out = h.join().unwrap_or_else(|_| {
                let mut o = Out::default();
                o.error("worker thread panicked".into());
                o
            });
            joined(i);
            out
        })
        .collect();
    let end = outs.iter().filter_map(|o| o.end).max().unwrap_or(t0);
    (outs, end.saturating_duration_since(t0))
}

/// Part `i` of `total` shared out among `parts`.
pub fn split(total: u64, parts: usize, i: usize) -> u64 {
    total / parts as u64 + u64::from((i as u64) < total % parts as u64)
}

/// Untimed fill: `total` items over `conns` connections at depth 64; what they acknowledged.
pub fn fill(cfg: &Config, key: impl Fn(usize) -> SetKey, total: u64, conns: usize) -> Out {
    let jobs = (0..conns)
        .map(|i| Job::Produce(ProduceJob::untimed(cfg, i, key(i), split(total, conns, i))))
        .collect();
    Out::merged(run_jobs(&cfg.addr, jobs).0)
}

/// Untimed drain of a tern queue with one connection; returns what it read.
pub fn drain(cfg: &Config, queue: &str) -> Out {
    let job = ReadJob::drain(cfg, GetPlan::Fixed(queue.to_string()));
    read(job, None, Client::connect(&cfg.addr))
}

/// Deletes the run's queues; a failure is an error of the run.
pub fn delete_queues(cfg: &Config, queues: &[String], res: &mut Out) {
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
