//! Crash tests of the real binary: write and read under load, `kill -9` the
//! server at a random moment, restart it on the same data directory, repeat,
//! then drain everything and account for every acknowledged item.
//!
//! Queues used by `crash_loop_sync_always_loses_nothing`:
//! - `q`: written by plain and fanout sets, consumed by reliable readers
//!   (`get q/open` then `get q/close`) and by the final drain.
//! - `f`: fanout target only (`set q+f …`); nobody reads it but the final drain.
//! - `cq`: fanout target and plain target (`set q+cq …`, `set cq …`) with NO
//!   plain readers, read by two cursors: `cq.c1` (plain cursor gets) and
//!   `cq.c2` (reliable cursor reads, `/open` + `/close`). As nothing removes
//!   items from `cq`, every acknowledged item of `cq` must be seen by each
//!   cursor.
//!
//! Every payload starts with a unique id `w<writer>-<seq>|` (the flags carry
//! `seq` as a cross-check), so the same id identifies an item in every queue
//! a fanout set put it in.
//!
//! Set `CRASH_SEED` to replay a run's random choices (timing still varies) and
//! `CRASH_ROUNDS` to run more rounds. The test also fails on "dirty reads": an
//! item whose `set` was cut off by the kill (never acknowledged) that a reader
//! received, and that is provably gone after the restart. With `--sync always`
//! the server shows an item to readers only once its write is durable, so a
//! read (or an `/open` that must come back after a crash) never sees an item a
//! crash can undo.

mod common;

use common::*;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

// ---------------------------------------------------------------- helpers

/// xorshift64: no extra crate, reproducible from the printed seed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform-ish in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Uniform-ish in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
}

fn seed_from_env_or_time() -> u64 {
    if let Some(seed) = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        return seed;
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    now.as_nanos() as u64 ^ ((std::process::id() as u64) << 32)
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// An item's identity: writer in the high 32 bits, sequence number in the low.
type Id = u64;

fn make_id(writer: u32, seq: u32) -> Id {
    ((writer as u64) << 32) | seq as u64
}

fn show_id(id: Id) -> String {
    format!("w{}-{}", id >> 32, id & 0xffff_ffff)
}

/// `w<writer>-<seq>|` followed by some filler, so sizes vary.
fn make_payload(id: Id, filler: usize) -> Vec<u8> {
    let mut p = format!("{}|", show_id(id)).into_bytes();
    p.extend(std::iter::repeat_n(b'x', filler));
    p
}

fn parse_payload(data: &[u8]) -> Option<Id> {
    let end = data.iter().position(|&b| b == b'|')?;
    let text = std::str::from_utf8(&data[..end]).ok()?;
    let (w, seq) = text.strip_prefix('w')?.split_once('-')?;
    Some(make_id(w.parse().ok()?, seq.parse().ok()?))
}

/// The queues a set goes to, as a bit mask.
const Q: u8 = 1;
const F: u8 = 2;
const CQ: u8 = 4;

/// What one `get` brought back.
enum Reply {
    Item(Id),
    Empty,
    /// The connection ended (the expected outcome of a kill).
    Broken,
    /// Anything unexpected: a protocol error, a bad payload.
    Bad(String),
}

/// Send `get <key>` and read a reply of at most one VALUE block.
fn get(c: &mut Conn, key: &str) -> Reply {
    if c.stream_write(format!("get {key}\r\n").as_bytes()).is_err() {
        return Reply::Broken;
    }
    read_value(c, key)
}

fn read_value(c: &mut Conn, key: &str) -> Reply {
    let Some(line) = c.try_read_line() else {
        return Reply::Broken;
    };
    if line == b"END\r\n" {
        return Reply::Empty;
    }
    let text = String::from_utf8_lossy(&line).into_owned();
    let parts: Vec<&str> = text.trim_end_matches("\r\n").split(' ').collect();
    let parsed = match parts.as_slice() {
        ["VALUE", k, flags, len] if *k == key && line.ends_with(b"\r\n") => {
            flags.parse::<u32>().ok().zip(len.parse::<usize>().ok())
        }
        _ => None,
    };
    let Some((flags, len)) = parsed else {
        return Reply::Bad(format!("get {key}: unexpected reply {}", esc(&line)));
    };
    let Some(block) = c.try_read_exact(len + 2) else {
        return Reply::Broken;
    };
    if &block[len..] != b"\r\n" {
        return Reply::Bad(format!("get {key}: data block not ended by \\r\\n"));
    }
    let Some(id) = parse_payload(&block[..len]) else {
        return Reply::Bad(format!("get {key}: foreign payload {}", esc(&block)));
    };
    if flags != (id & 0xffff_ffff) as u32 {
        return Reply::Bad(format!(
            "get {key}: item {} came back with flags {flags}",
            show_id(id)
        ));
    }
    // The item was delivered; a kill that cuts off the `END` does not undo that
    // (the next request on this connection finds it broken).
    match c.try_read_line() {
        Some(l) if l == b"END\r\n" => Reply::Item(id),
        None => Reply::Item(id),
        Some(l) => Reply::Bad(format!("get {key}: expected END, got {}", esc(&l))),
    }
}

/// Everything `get <key>` returns until the queue (or cursor) is empty.
fn drain(c: &mut Conn, key: &str) -> Vec<Id> {
    drain_by(key, || match get(c, key) {
        Reply::Item(id) => Some(id),
        Reply::Empty => None,
        Reply::Broken => panic!("drain {key}: connection broken"),
        Reply::Bad(e) => panic!("drain {key}: {e}"),
    })
}

/// Block until the server closes the connection (the kill is on its way).
fn wait_until_broken(c: &mut Conn, log: &mut WorkerLog) {
    if let Some(line) = c.try_read_line() {
        log.errors
            .push(format!("unsolicited reply while idle: {}", esc(&line)));
    }
}

// ---------------------------------------------------------------- workers

/// What one worker thread saw during one round. Each kind of worker fills the
/// fields that concern it.
#[derive(Default)]
struct WorkerLog {
    /// Writers: (id, targets) of every set answered `STORED`.
    acked: Vec<(Id, u8)>,
    /// Writers: the set in flight when the connection broke (may or may not be stored).
    unacked: Option<(Id, u8)>,
    /// Writers: the next unused sequence number.
    next_seq: u32,
    /// Readers: every item received (an `/open` reply, or a plain cursor get).
    got: Vec<Id>,
    /// Reliable readers: items whose `/close` was answered.
    confirmed: Vec<Id>,
    /// Reliable readers: the item held open, close never sent, when the kill came.
    open_at_kill: Option<Id>,
    /// Reliable readers: the item whose `/close` was sent but not answered.
    close_in_flight: Option<Id>,
    /// The last request got no (complete) reply.
    request_lost: bool,
    errors: Vec<String>,
}

fn target_name(mask: u8, rng: &mut Rng) -> String {
    let mut names: Vec<&str> = [(Q, "q"), (F, "f"), (CQ, "cq")]
        .iter()
        .filter(|(bit, _)| mask & bit != 0)
        .map(|(_, n)| *n)
        .collect();
    // Any order: the server must lock the targets consistently.
    for i in (1..names.len()).rev() {
        names.swap(i, rng.below(i as u64 + 1) as usize);
    }
    names.join("+")
}

/// Acknowledged sets until the connection breaks.
fn writer(mut c: Conn, w: u32, mut seq: u32, seed: u64) -> WorkerLog {
    let mut rng = Rng::new(seed);
    let mut log = WorkerLog::default();
    loop {
        let mask = match rng.below(100) {
            0..=29 => Q,
            30..=54 => Q | F,
            55..=74 => Q | CQ,
            75..=84 => CQ,
            _ => Q | F | CQ,
        };
        let id = make_id(w, seq);
        let data = make_payload(id, rng.below(48) as usize);
        let req = set_req(&target_name(mask, &mut rng), seq, 0, &data);
        seq += 1;
        log.next_seq = seq;
        if c.stream_write(&req).is_err() {
            log.unacked = Some((id, mask));
            break;
        }
        match c.try_read_line() {
            Some(line) if line == b"STORED\r\n" => log.acked.push((id, mask)),
            Some(line) => {
                log.unacked = Some((id, mask));
                log.errors.push(format!(
                    "set {}: unexpected reply {}",
                    show_id(id),
                    esc(&line)
                ));
                break;
            }
            None => {
                log.unacked = Some((id, mask));
                log.request_lost = true;
                break;
            }
        }
    }
    log
}

/// Reliable reads of `base` (`q` or `cq.c2`): `/open`, maybe hold it a little,
/// then `/close`. Once `killing` is set, an item held open is never closed:
/// it is recorded as open at the kill, and the thread waits for the kill.
fn reliable_reader(mut c: Conn, base: &str, killing: Arc<AtomicBool>, seed: u64) -> WorkerLog {
    let mut rng = Rng::new(seed);
    let mut log = WorkerLog::default();
    let open_key = format!("{base}/open/t=100");
    let close_key = format!("{base}/close");
    loop {
        let id = match get(&mut c, &open_key) {
            Reply::Item(id) => id,
            Reply::Empty => continue,
            Reply::Broken => {
                log.request_lost = true;
                break;
            }
            Reply::Bad(e) => {
                log.errors.push(e);
                break;
            }
        };
        log.got.push(id);
        if rng.below(4) == 0 {
            thread::sleep(Duration::from_millis(rng.range(1, 5)));
        }
        if killing.load(Ordering::SeqCst) {
            log.open_at_kill = Some(id);
            wait_until_broken(&mut c, &mut log);
            break;
        }
        match get(&mut c, &close_key) {
            Reply::Empty => log.confirmed.push(id),
            Reply::Broken => {
                log.close_in_flight = Some(id);
                log.request_lost = true;
                break;
            }
            Reply::Item(other) => {
                log.errors
                    .push(format!("get {close_key} returned item {}", show_id(other)));
                break;
            }
            Reply::Bad(e) => {
                log.errors.push(e);
                break;
            }
        }
    }
    log
}

/// Plain cursor gets (`get cq.c1`) until the connection breaks.
fn cursor_reader(mut c: Conn, key: &str) -> WorkerLog {
    let mut log = WorkerLog::default();
    let key = format!("{key}/t=100");
    loop {
        match get(&mut c, &key) {
            Reply::Item(id) => log.got.push(id),
            Reply::Empty => {}
            Reply::Broken => {
                log.request_lost = true;
                break;
            }
            Reply::Bad(e) => {
                log.errors.push(e);
                break;
            }
        }
    }
    log
}

// ---------------------------------------------------------------- the ledger

/// Everything observed over all rounds; `round` is the round an event happened in.
#[derive(Default)]
struct Ledger {
    /// Per queue (index 0 = q, 1 = f, 2 = cq): acknowledged ids and their round.
    acked: [HashMap<Id, usize>; 3],
    acked_sets: usize,
    /// Sets in flight at a kill: (id, targets, round).
    unacked: Vec<(Id, u8, usize)>,
    q_got: Vec<(Id, usize)>,
    q_confirmed: Vec<(Id, usize)>,
    q_open_at_kill: Vec<(Id, usize)>,
    q_close_in_flight: Vec<(Id, usize)>,
    c1_got: Vec<(Id, usize)>,
    /// Rounds in which a plain `get cq.c1` was cut off by the kill.
    c1_lost_reply_rounds: Vec<usize>,
    c2_got: Vec<(Id, usize)>,
    c2_open_at_kill: Vec<(Id, usize)>,
    errors: Vec<String>,
}

const QUEUES: [(u8, &str); 3] = [(Q, "q"), (F, "f"), (CQ, "cq")];

fn queue_index(bit: u8) -> usize {
    QUEUES.iter().position(|(b, _)| *b == bit).unwrap()
}

enum Kind {
    Writer(u32),
    QReader,
    C1,
    C2,
}

fn record(ledger: &mut Ledger, kind: &Kind, log: WorkerLog, round: usize) {
    let tag = |v: &[Id]| v.iter().map(|&id| (id, round)).collect::<Vec<_>>();
    ledger.errors.extend(
        log.errors
            .into_iter()
            .map(|e| format!("round {round}: {e}")),
    );
    match kind {
        Kind::Writer(_) => {
            ledger.acked_sets += log.acked.len();
            for (id, mask) in log.acked {
                for (bit, _) in QUEUES {
                    if mask & bit != 0 {
                        ledger.acked[queue_index(bit)].insert(id, round);
                    }
                }
            }
            if let Some((id, mask)) = log.unacked {
                ledger.unacked.push((id, mask, round));
            }
        }
        Kind::QReader => {
            ledger.q_got.extend(tag(&log.got));
            ledger.q_confirmed.extend(tag(&log.confirmed));
            ledger
                .q_open_at_kill
                .extend(tag(log.open_at_kill.as_slice()));
            ledger
                .q_close_in_flight
                .extend(tag(log.close_in_flight.as_slice()));
        }
        Kind::C1 => {
            ledger.c1_got.extend(tag(&log.got));
            if log.request_lost {
                ledger.c1_lost_reply_rounds.push(round);
            }
        }
        Kind::C2 => {
            // A cursor item is "seen" once its /open reply arrived; an unclosed
            // one must come back (checked separately).
            ledger.c2_got.extend(tag(&log.got));
            ledger
                .c2_open_at_kill
                .extend(tag(log.open_at_kill.as_slice()));
        }
    }
}

fn count(ids: impl IntoIterator<Item = Id>) -> HashMap<Id, usize> {
    let mut m = HashMap::new();
    for id in ids {
        *m.entry(id).or_insert(0) += 1;
    }
    m
}

fn dups(counts: &HashMap<Id, usize>) -> usize {
    counts.values().map(|&n| n.saturating_sub(1)).sum()
}

fn sample(ids: &[String]) -> String {
    let n = ids.len().min(20);
    format!(
        "{}{}",
        ids[..n].join(", "),
        if ids.len() > n { ", …" } else { "" }
    )
}

// ---------------------------------------------------------------- the tests

const WRITERS: u32 = 4;
const Q_READERS: usize = 3;
const C2_READERS: usize = 2;

#[test]
fn crash_loop_sync_always_loses_nothing() {
    let seed = seed_from_env_or_time();
    let rounds = env_usize("CRASH_ROUNDS", 50).max(20);
    println!("crash: seed={seed} rounds={rounds} (CRASH_SEED={seed} to replay)");
    let mut rng = Rng::new(seed);
    let started = Instant::now();

    let mut s = Server::start_with(&["--sync", "always"]);
    // Create both cursors before anything is written.
    {
        let mut c = Conn::connect(&s);
        c.roundtrip(b"get cq.c1\r\n", b"END\r\n");
        c.roundtrip(b"get cq.c2\r\n", b"END\r\n");
    }

    let mut ledger = Ledger::default();
    let mut next_seq = vec![0u32; WRITERS as usize];
    let mut kills = 0;
    let mut restart_time = Duration::ZERO;
    for round in 0..rounds {
        let killing = Arc::new(AtomicBool::new(false));
        let addr = s.addr();
        let mut workers: Vec<(Kind, thread::JoinHandle<WorkerLog>)> = Vec::new();
        for w in 0..WRITERS {
            let c = Conn::connect_addr(addr);
            let (start, seed) = (next_seq[w as usize], rng.next());
            workers.push((
                Kind::Writer(w),
                thread::spawn(move || writer(c, w, start, seed)),
            ));
        }
        for _ in 0..Q_READERS {
            let (c, k, seed) = (Conn::connect_addr(addr), killing.clone(), rng.next());
            workers.push((
                Kind::QReader,
                thread::spawn(move || reliable_reader(c, "q", k, seed)),
            ));
        }
        let c = Conn::connect_addr(addr);
        workers.push((Kind::C1, thread::spawn(move || cursor_reader(c, "cq.c1"))));
        for _ in 0..C2_READERS {
            let (c, k, seed) = (Conn::connect_addr(addr), killing.clone(), rng.next());
            workers.push((
                Kind::C2,
                thread::spawn(move || reliable_reader(c, "cq.c2", k, seed)),
            ));
        }

        thread::sleep(Duration::from_millis(rng.range(50, 400)));
        killing.store(true, Ordering::SeqCst);
        s.kill9();
        kills += 1;

        for (kind, handle) in workers {
            let log = handle.join().expect("worker thread panicked");
            if let Kind::Writer(w) = kind {
                next_seq[w as usize] = next_seq[w as usize].max(log.next_seq);
            }
            record(&mut ledger, &kind, log, round);
        }
        let t = Instant::now();
        s.start_again();
        restart_time += t.elapsed();
    }

    // Final drain, after the last kill and restart: cursors first (plain gets
    // of cq would not move them, but keep it obvious), then the queues.
    let end = rounds;
    let mut c = Conn::connect(&s);
    let c1_drain = drain(&mut c, "cq.c1");
    let c2_drain = drain(&mut c, "cq.c2");
    let q_drain = drain(&mut c, "q");
    let f_drain = drain(&mut c, "f");
    let cq_drain = drain(&mut c, "cq");
    drop(c);

    // ---- where each acknowledged item ended up

    let mut failures: Vec<String> = Vec::new();
    let q_confirmed: HashSet<Id> = ledger.q_confirmed.iter().map(|p| p.0).collect();
    let q_close_in_flight: HashMap<Id, usize> = ledger.q_close_in_flight.iter().copied().collect();
    let q_drained: HashSet<Id> = q_drain.iter().copied().collect();
    let f_drained: HashSet<Id> = f_drain.iter().copied().collect();
    let cq_drained: HashSet<Id> = cq_drain.iter().copied().collect();

    // Lost: an acknowledged item that nobody received and that is not there any more.
    let mut lost: Vec<String> = Vec::new();
    // q items whose only trace is a /close cut off by the kill: the server may
    // rightly have deleted them, so they are not losses, but they are reported.
    let mut close_cut_off = 0;
    let mut q_acked: Vec<(&Id, &usize)> = ledger.acked[0].iter().collect();
    q_acked.sort();
    for (&id, &round) in q_acked {
        if q_confirmed.contains(&id) || q_drained.contains(&id) {
            continue;
        }
        if q_close_in_flight.contains_key(&id) {
            close_cut_off += 1;
            continue;
        }
        let opened: Vec<usize> = ledger
            .q_got
            .iter()
            .filter(|p| p.0 == id)
            .map(|p| p.1)
            .collect();
        lost.push(format!(
            "q:{} (acked round {round}, opened in rounds {opened:?})",
            show_id(id)
        ));
    }
    for (qi, drained) in [(1, &f_drained), (2, &cq_drained)] {
        let mut acked: Vec<(&Id, &usize)> = ledger.acked[qi].iter().collect();
        acked.sort();
        for (&id, &round) in acked {
            if !drained.contains(&id) {
                lost.push(format!(
                    "{}:{} (acked round {round})",
                    QUEUES[qi].1,
                    show_id(id)
                ));
            }
        }
    }
    if !lost.is_empty() {
        failures.push(format!(
            "{} acknowledged items lost: {}",
            lost.len(),
            sample(&lost)
        ));
    }

    // Duplicates (allowed: removal is at-least-once).
    let q_deliveries = count(
        ledger
            .q_confirmed
            .iter()
            .map(|p| p.0)
            .chain(q_drain.iter().copied()),
    );
    let f_counts = count(f_drain.iter().copied());
    let cq_counts = count(cq_drain.iter().copied());
    let c1_counts = count(ledger.c1_got.iter().map(|p| p.0).chain(c1_drain.clone()));
    let c2_counts = count(ledger.c2_got.iter().map(|p| p.0).chain(c2_drain.clone()));
    let queue_dups = dups(&q_deliveries) + dups(&f_counts) + dups(&cq_counts);
    let cursor_dups = dups(&c1_counts) + dups(&c2_counts);
    if dups(&f_counts) + dups(&cq_counts) > 0 {
        // f and cq are never read before the drain, so a copy there is a
        // stored duplicate, not a redelivery: worth a look, but not a failure.
        println!(
            "crash: note: duplicates inside never-read queues: f={} cq={}",
            dups(&f_counts),
            dups(&cq_counts)
        );
    }

    // Phantoms: an item in a queue its set never named, or never sent at all.
    let mut sent_to: HashMap<Id, u8> = HashMap::new();
    for (qi, acked) in ledger.acked.iter().enumerate() {
        for &id in acked.keys() {
            *sent_to.entry(id).or_insert(0) |= QUEUES[qi].0;
        }
    }
    for &(id, mask, _) in &ledger.unacked {
        *sent_to.entry(id).or_insert(0) |= mask;
    }
    let mut phantoms: Vec<String> = Vec::new();
    let q_seen_anywhere: HashSet<Id> = ledger
        .q_got
        .iter()
        .map(|p| p.0)
        .chain(q_drain.iter().copied())
        .collect();
    for (bit, name, ids) in [
        (Q, "q", &q_seen_anywhere),
        (F, "f", &f_drained),
        (CQ, "cq", &cq_drained),
    ] {
        let mut bad: Vec<Id> = ids
            .iter()
            .copied()
            .filter(|id| sent_to.get(id).is_none_or(|m| m & bit == 0))
            .collect();
        bad.sort();
        phantoms.extend(bad.iter().map(|&id| format!("{name}:{}", show_id(id))));
    }
    if !phantoms.is_empty() {
        failures.push(format!(
            "{} items never sent to the queue they came out of: {}",
            phantoms.len(),
            sample(&phantoms)
        ));
    }

    // Sets cut off by a kill: where did they end up after the crash? f and cq
    // are never consumed, so their final drain is the answer. For q: present if
    // drained or read in a later round; unknown if a reader confirmed it (or
    // sent its close) in the cut-off round, since it may have been stored and
    // then rightly removed; absent otherwise (an open read that was never
    // closed must come back if it was stored).
    #[derive(PartialEq)]
    enum Where {
        Present,
        Absent,
        Unknown,
    }
    let in_round =
        |got: &[(Id, usize)], id: Id, round: usize| got.iter().any(|&(g, r)| g == id && r == round);
    let state_after = |id: Id, bit: u8, round: usize| match bit {
        Q if q_drained.contains(&id) || ledger.q_got.iter().any(|&(g, r)| g == id && r > round) => {
            Where::Present
        }
        Q if in_round(&ledger.q_confirmed, id, round)
            || in_round(&ledger.q_close_in_flight, id, round) =>
        {
            Where::Unknown
        }
        Q => Where::Absent,
        F if f_drained.contains(&id) => Where::Present,
        CQ if cq_drained.contains(&id) => Where::Present,
        _ => Where::Absent,
    };
    // Fanout atomicity: stored in all targets or in none.
    let mut partial: Vec<String> = Vec::new();
    let mut unacked_stored = 0;
    // Dirty reads: an unacknowledged item served to a reader, and provably not
    // stored after the crash (it was readable before it was durable).
    let mut dirty: HashMap<Id, String> = HashMap::new();
    for &(id, mask, round) in &ledger.unacked {
        let name = target_name(mask, &mut Rng::new(1));
        let states: Vec<(&str, Where)> = QUEUES
            .iter()
            .filter(|(bit, _)| mask & bit != 0)
            .map(|&(bit, n)| (n, state_after(id, bit, round)))
            .collect();
        let present: Vec<&str> = states
            .iter()
            .filter(|s| s.1 == Where::Present)
            .map(|s| s.0)
            .collect();
        let absent: Vec<&str> = states
            .iter()
            .filter(|s| s.1 == Where::Absent)
            .map(|s| s.0)
            .collect();
        if !present.is_empty() {
            unacked_stored += 1;
        }
        if !present.is_empty() && !absent.is_empty() {
            partial.push(format!(
                "{} (set {name}, cut off in round {round}, stored in {present:?}, not in {absent:?})",
                show_id(id)
            ));
            continue;
        }
        let readers: Vec<&str> = [
            ("q", &ledger.q_got),
            ("cq.c1", &ledger.c1_got),
            ("cq.c2", &ledger.c2_got),
        ]
        .iter()
        .filter(|(_, got)| in_round(got, id, round))
        .map(|(n, _)| *n)
        .collect();
        if present.is_empty() && !absent.is_empty() && !readers.is_empty() {
            dirty.insert(
                id,
                format!(
                    "{} (set {name} cut off in round {round}, read via {readers:?}, not in {absent:?} after restart)",
                    show_id(id)
                ),
            );
        }
    }
    if !partial.is_empty() {
        failures.push(format!(
            "{} fanout sets stored in only some targets: {}",
            partial.len(),
            sample(&partial)
        ));
    }
    if !dirty.is_empty() {
        let mut list: Vec<String> = dirty.values().cloned().collect();
        list.sort();
        failures.push(format!(
            "{} dirty reads: unacknowledged items served to readers, then undone by the crash: {}",
            list.len(),
            sample(&list)
        ));
    }

    // Open reads that were never closed come back later. (An item that was
    // never stored at all, a dirty read above, cannot come back; it is reported
    // there.)
    let mut redelivered = 0;
    let mut open_dirty = 0;
    let mut not_redelivered: Vec<String> = Vec::new();
    let c2_drained: HashSet<Id> = c2_drain.iter().copied().collect();
    for (what, open_at_kill, later_got, drained) in [
        ("q", &ledger.q_open_at_kill, &ledger.q_got, &q_drained),
        (
            "cq.c2",
            &ledger.c2_open_at_kill,
            &ledger.c2_got,
            &c2_drained,
        ),
    ] {
        for &(id, round) in open_at_kill {
            let again =
                drained.contains(&id) || later_got.iter().any(|&(g, r)| g == id && r > round);
            if again {
                redelivered += 1;
            } else if dirty.contains_key(&id) {
                open_dirty += 1;
            } else {
                not_redelivered.push(format!(
                    "{what}:{} (open when round {round} was killed)",
                    show_id(id)
                ));
            }
        }
    }
    if !not_redelivered.is_empty() {
        failures.push(format!(
            "{} open reads never delivered again: {}",
            not_redelivered.len(),
            sample(&not_redelivered)
        ));
    }

    // Cursors: every acknowledged item of cq is seen by each cursor.
    let first_seen = |got: &[(Id, usize)], drained: &[Id]| {
        let mut m: HashMap<Id, usize> = HashMap::new();
        for &(id, r) in got {
            m.entry(id).or_insert(r);
        }
        for &id in drained {
            m.entry(id).or_insert(end);
        }
        m
    };
    let c1_first = first_seen(&ledger.c1_got, &c1_drain);
    let c2_first = first_seen(&ledger.c2_got, &c2_drain);
    let mut cq_acked: Vec<(Id, usize)> = ledger.acked[2].iter().map(|(&i, &r)| (i, r)).collect();
    cq_acked.sort();
    let mut skips: Vec<String> = Vec::new();
    // cq.c2 reads reliably: no excuse for a missing item.
    for &(id, round) in &cq_acked {
        if !c2_first.contains_key(&id) {
            skips.push(format!(
                "cq.c2 missed {} (acked round {round})",
                show_id(id)
            ));
        }
    }
    // cq.c1 reads with plain gets: a get cut off by a kill may have moved the
    // cursor past one item whose reply never arrived (as a plain `get q` may
    // lose one). Such a round excuses at most one missing item, and only one
    // the cursor could have been serving then: acknowledged by that round, and
    // every later item of the same writer first seen after that round.
    let mut excuses: Vec<usize> = ledger.c1_lost_reply_rounds.clone();
    let mut c1_excused = 0;
    for &(id, round) in &cq_acked {
        if c1_first.contains_key(&id) {
            continue;
        }
        let writer = id >> 32;
        let next_seen = cq_acked
            .iter()
            .filter(|&&(o, _)| o >> 32 == writer && o > id)
            .filter_map(|(o, _)| c1_first.get(o))
            .min()
            .copied()
            .unwrap_or(usize::MAX);
        let excuse = excuses.iter().position(|&r| round <= r && next_seen > r);
        match excuse {
            Some(i) => {
                excuses.swap_remove(i);
                c1_excused += 1;
            }
            None => skips.push(format!(
                "cq.c1 missed {} (acked round {round}; cut-off gets in rounds {:?})",
                show_id(id),
                ledger.c1_lost_reply_rounds
            )),
        }
    }
    if !skips.is_empty() {
        failures.push(format!("{} cursor skips: {}", skips.len(), sample(&skips)));
    }
    if !ledger.errors.is_empty() {
        failures.push(format!(
            "{} protocol errors: {}",
            ledger.errors.len(),
            sample(&ledger.errors)
        ));
    }

    let acked_items: usize = ledger.acked.iter().map(HashMap::len).sum();
    println!(
        "crash: rounds={rounds} kills={kills} acked={} (q={} f={} cq={}, {} set commands) lost={} dups={} \
         redelivered={} cursor_skips={}",
        acked_items,
        ledger.acked[0].len(),
        ledger.acked[1].len(),
        ledger.acked[2].len(),
        ledger.acked_sets,
        lost.len(),
        queue_dups,
        redelivered,
        skips.len(),
    );
    println!(
        "crash: details: q_confirmed={} q_drained={} close_cut_off={close_cut_off} cursor_dups={cursor_dups} \
         c1_seen={} c1_excused={c1_excused} c2_seen={} unacked_sets={} (stored anyway: {unacked_stored}) \
         dirty_reads={} open_dirty={open_dirty} partial_fanout={} phantoms={} not_redelivered={} errors={} restart_time={:.1?} total={:.1?}",
        ledger.q_confirmed.len(),
        q_drain.len(),
        c1_counts.len(),
        c2_counts.len(),
        ledger.unacked.len(),
        dirty.len(),
        partial.len(),
        phantoms.len(),
        not_redelivered.len(),
        ledger.errors.len(),
        restart_time,
        started.elapsed(),
    );
    assert!(
        ledger.acked_sets > 0 && !ledger.q_confirmed.is_empty() && !ledger.c1_got.is_empty(),
        "the load did not get going: nothing acknowledged or read"
    );
    assert!(
        failures.is_empty(),
        "crash test failed (seed {seed}):\n{}\n--- log of the last server start ---\n{}",
        failures.join("\n"),
        s.log()
    );
    assert_eq!(lost.len(), 0);
    assert_eq!(skips.len(), 0);
}

/// `--sync never`: a crash may lose recent writes, but the server must come
/// back and serve, and what was written before a graceful restart (which
/// flushes) must survive every later crash.
#[test]
fn crash_loop_sync_never_restarts_and_keeps_flushed_items() {
    let seed = seed_from_env_or_time() ^ 0x5555;
    println!("crash-never: seed={seed}");
    let mut rng = Rng::new(seed);
    let mut s = Server::start_with(&["--sync", "never"]);
    let rounds = 6;
    let mut next_seq = vec![0u32; WRITERS as usize];
    // Acknowledged and followed by a graceful restart: must never be lost.
    let mut flushed: HashSet<Id> = HashSet::new();
    // Acknowledged only under load before a kill: may be lost.
    let mut unsynced: HashSet<Id> = HashSet::new();
    let mut kills = 0;
    for round in 0..rounds {
        // Quiet writes, then a graceful restart: these are now on disk.
        {
            let mut c = Conn::connect(&s);
            for _ in 0..50 {
                let w = 0;
                let id = make_id(w, next_seq[0]);
                c.set_flags("n", next_seq[0], &make_payload(id, 8));
                next_seq[0] += 1;
                flushed.insert(id);
            }
        }
        s.restart();

        // Load, then kill -9 at a random moment.
        let addr = s.addr();
        let handles: Vec<_> = (1..WRITERS)
            .map(|w| {
                let c = Conn::connect_addr(addr);
                let (start, seed) = (next_seq[w as usize], rng.next());
                thread::spawn(move || (w, writer(c, w, start, seed)))
            })
            .collect();
        // Writers target q/f/cq; nothing reads them here, only n is checked.
        thread::sleep(Duration::from_millis(rng.range(50, 300)));
        s.kill9();
        kills += 1;
        for h in handles {
            let (w, log) = h.join().expect("writer panicked");
            assert!(log.errors.is_empty(), "round {round}: {:?}", log.errors);
            next_seq[w as usize] = log.next_seq;
            unsynced.extend(log.acked.iter().map(|p| p.0));
        }
        s.start_again();

        // It serves again.
        let mut c = Conn::connect(&s);
        let ping = format!("ping-{round}");
        c.set("ping", ping.as_bytes());
        assert_eq!(c.get_data("ping"), Some(ping.into_bytes()));
        c.roundtrip(b"version\r\n", &version_reply());
    }

    let mut c = Conn::connect(&s);
    let n = drain(&mut c, "n");
    let n_set: HashSet<Id> = n.iter().copied().collect();
    let mut lost: Vec<Id> = flushed.difference(&n_set).copied().collect();
    lost.sort();
    // Order is FIFO for a single writer.
    assert!(
        n.windows(2).all(|p| p[0] < p[1]),
        "queue n out of order or duplicated"
    );
    let mut loaded: HashSet<Id> = HashSet::new();
    for key in ["q", "f", "cq"] {
        loaded.extend(drain(&mut c, key));
    }
    let unsynced_lost = unsynced.difference(&loaded).count();
    println!(
        "crash-never: rounds={rounds} kills={kills} flushed={} lost_flushed={} acked_under_load={} \
         lost_under_load={unsynced_lost} (allowed with --sync never)",
        flushed.len(),
        lost.len(),
        unsynced.len(),
    );
    assert!(
        lost.is_empty(),
        "{} items written before a graceful restart were lost after later kills: {:?}",
        lost.len(),
        lost.iter()
            .take(20)
            .map(|&id| show_id(id))
            .collect::<Vec<_>>()
    );
}
