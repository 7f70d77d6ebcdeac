//! The six workloads, one function each (`produce`, `consume`, `mixed`, `reliable`, `cursor`,
//! `fanout`): what each fills untimed, runs timed, reads back untimed and verifies; `run` picks
//! the one the `Config` names. Queue names are fresh per run and the queues are deleted at the end.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crate::args::{fresh_name, Config, Target, Workload};
use crate::output::Report;
use crate::pipeline::{
    delete_queues, drain, fill, lone_reader, run_jobs, run_jobs_then, GetPlan, Job, ProduceJob,
    ReadJob, SetKey, Until,
};
use crate::verify::{check, check_read, Check, Out};

/// One run of `cfg.workload`. On memcached only produce and consume apply (`args` rejects the
/// others).
pub fn run(cfg: &Config) -> Report {
    let mut cfg = cfg.clone();
    if cfg.name.is_empty() {
        cfg.name = fresh_name();
    }
    match cfg.workload {
        Workload::Produce => produce(&cfg),
        Workload::Consume => consume(&cfg),
        Workload::Mixed => mixed(&cfg),
        Workload::Reliable => reliable(&cfg),
        Workload::Cursor => cursor(&cfg),
        Workload::Fanout => fanout(&cfg),
    }
}

/// `produce`: timed sets on every connection (memcached: one key per item; tern: connection i
/// into queue i % Q), then everything read back untimed.
fn produce(cfg: &Config) -> Report {
    if cfg.target == Target::Memcached {
        let (mut res, secs) = timed_sets(cfg, |_| SetKey::PerItem(cfg.name.clone()));
        let sum = read_back_keys(cfg, &mut res);
        return Report::new(cfg, secs, res, sum, String::new());
    }
    let nq = cfg.queues.unwrap_or(1);
    let queues = queue_names(cfg, nq);
    let (mut res, secs) = timed_sets(cfg, |i| SetKey::Fixed(queues[i % nq].clone()));
    let back = Out::merged(queues.iter().map(|q| drain(cfg, q)));
    let sum = check(&res.acked, &back.got);
    res.absorb_faults(&back);
    res.order += back.order;
    delete_queues(cfg, &queues, &mut res);
    Report::new(cfg, secs, res, sum, String::new())
}

/// `fanout`: timed `set q0+q1+…` on every connection, then each of the Q queues drained untimed;
/// each must hold every acknowledged item.
fn fanout(cfg: &Config) -> Report {
    let nq = cfg.queues.unwrap_or(3);
    let queues = queue_names(cfg, nq);
    let key = queues.join("+");
    let (mut res, secs) = timed_sets(cfg, |_| SetKey::Fixed(key.clone()));
    let mut sum = Check::default();
    for q in &queues {
        let back = drain(cfg, q);
        sum += check(&res.acked, &back.got);
        res.absorb_faults(&back);
        res.order += back.order;
    }
    delete_queues(cfg, &queues, &mut res);
    Report::new(cfg, secs, res, sum, format!(" queues={nq}"))
}

/// `consume`: `--count` items stored untimed, then read by every connection, timed, until all
/// are read (tern: connection i from queue i % Q; memcached: each connection the keys it set).
fn consume(cfg: &Config) -> Report {
    match cfg.target {
        Target::Memcached => consume_memcached(cfg),
        Target::Tern => read_prefilled(cfg, cfg.queues.unwrap_or(1), |q| {
            (GetPlan::Fixed(q.to_string()), None)
        }),
    }
}

/// `reliable`: `consume` of one queue with reliable reads: `get q/close/open` chains ending with
/// `get q/close`, or with `--reliable-mode pair`, `get q/open` + `get q/close` pairs.
fn reliable(cfg: &Config) -> Report {
    read_prefilled(cfg, 1, |q| {
        if cfg.pairs {
            (GetPlan::Pair(q.to_string()), None)
        } else {
            let chain = GetPlan::Fixed(format!("{q}/close/open"));
            (chain, Some(format!("get {q}/close")))
        }
    })
}

/// `mixed`: half the connections (at least one) set into one queue while the others read it,
/// an idle reader blocking in `get q/t=MS` (`--wait-ms`, default 100), until the producers are done and all they stored
/// has been read; then an untimed drain.
fn mixed(cfg: &Config) -> Report {
    let queues = queue_names(cfg, 1);
    let q = &queues[0];
    let producers = (cfg.connections / 2).max(1);
    let consumers = (cfg.connections - producers).max(1);
    let got = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let mut jobs: Vec<Job> = (0..producers)
        .map(|i| {
            Job::Produce(ProduceJob {
                report_acked: Some(acked.clone()),
                ..ProduceJob::timed(cfg, i, SetKey::Fixed(q.clone()), producers)
            })
        })
        .collect();
    jobs.extend((0..consumers).map(|_| {
        let until = Until::Producers(got.clone(), done.clone(), acked.clone());
        Job::Read(ReadJob {
            duration: None,
            wait: Some(format!("{q}/t={}", cfg.wait_ms)),
            ..ReadJob::new(cfg, GetPlan::Fixed(q.clone()), until)
        })
    }));
    // The producers come first: once the last has ended, all they acknowledged is counted.
    let (outs, d) = run_jobs_then(&cfg.addr, jobs, |i| {
        if i + 1 == producers {
            done.store(true, Ordering::SeqCst);
        }
    });
    // Each side on its own: the consumers' latency is what a waiting reader sees.
    let secs = d.as_secs_f64().max(1e-9);
    let mut consumer_hist = crate::hist::Hist::default();
    let mut consumed = 0;
    for o in &outs[producers..] {
        consumer_hist.merge(&o.hist);
        consumed += o.ops;
    }
    let produced: u64 = outs[..producers].iter().map(|o| o.ops).sum();
    let wait_timeouts: u64 = outs[producers..].iter().map(|o| o.wait_timeouts).sum();
    let mut res = Out::merged(outs);
    let back = drain(cfg, q);
    let mut all = res.got.clone();
    all.extend_from_slice(&back.got);
    res.absorb_faults(&back);
    let sum = check(&res.acked, &all);
    delete_queues(cfg, &queues, &mut res);
    let extra = format!(
        " producers={producers} consumers={consumers} produce_ops/s={:.0} consume_ops/s={:.0} \
         consumer_p50_us={:.1} consumer_p99_us={:.1} wait_timeouts={wait_timeouts}",
        produced as f64 / secs,
        consumed as f64 / secs,
        consumer_hist.quantile_us(0.50),
        consumer_hist.quantile_us(0.99),
    );
    Report::new(cfg, d.as_secs_f64(), res, sum, extra)
}

/// `cursor`: `--count` items stored untimed; R cursors `get q.cI` each read all of them at once
/// (timed); then one more cursor alone; then a plain consumer alone, the rate to compare a
/// cursor's with, which also checks that the cursors removed nothing.
fn cursor(cfg: &Config) -> Report {
    let queues = queue_names(cfg, 1);
    let q = &queues[0];
    let filled = fill(
        cfg,
        |_| SetKey::Fixed(q.clone()),
        cfg.count,
        cfg.connections.min(8),
    );
    let want = filled.acked.len() as u64;
    // A time-limited cursor legitimately reads only a prefix.
    let limited = cfg.duration.is_some();
    let r = cfg.cursors;
    let jobs = (0..r)
        .map(|i| {
            let plan = GetPlan::Fixed(format!("{q}.c{i}"));
            Job::Read(ReadJob::new(cfg, plan, Until::Own(want)))
        })
        .collect();
    let (outs, d) = run_jobs(&cfg.addr, jobs);
    let mut sum = Check::default();
    let mut rates = Vec::new();
    let mut res = Out::default();
    for o in outs {
        sum += check_read(&filled.acked, &o.got, limited);
        rates.extend(o.rate());
        res.absorb(o);
    }
    // One more cursor, alone: its rate without the other cursors competing.
    let solo = lone_reader(cfg, format!("{q}.solo"), want, cfg.duration);
    let solo_rate = solo.rate().unwrap_or(0.0);
    sum += check_read(&filled.acked, &solo.got, limited);
    res.absorb_faults(&solo);
    res.order += solo.order;
    // Then a plain consumer (one connection, same depth), timed apart.
    let plain = lone_reader(cfg, q.clone(), want, None);
    let plain_rate = plain.rate().unwrap_or(0.0);
    let back = drain(cfg, q);
    let mut all = plain.got.clone();
    all.extend_from_slice(&back.got);
    sum += check(&filled.acked, &all);
    res.absorb_faults(&plain);
    res.order += plain.order;
    res.absorb_faults(&back);
    res.absorb_faults(&filled);
    let min = rates.iter().cloned().fold(f64::INFINITY, f64::min);
    let max = rates.iter().cloned().fold(0.0, f64::max);
    let extra = format!(
        " cursors={r} items={want} cursor_min_ops/s={min:.0} cursor_max_ops/s={max:.0} \
         plain_ops/s={plain_rate:.0} min_cursor/plain={:.2} solo_cursor_ops/s={solo_rate:.0} \
         solo_cursor/plain={:.2}",
        min / plain_rate.max(1e-9),
        solo_rate / plain_rate.max(1e-9)
    );
    delete_queues(cfg, &queues, &mut res);
    Report::new(cfg, d.as_secs_f64(), res, sum, extra)
}

/// The run's `n` queue names.
fn queue_names(cfg: &Config, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{}_q{i}", cfg.name)).collect()
}

/// Timed sets on every connection, connection i to `key(i)`: what they did, and the seconds
/// from the common start to the last reply.
fn timed_sets(cfg: &Config, key: impl Fn(usize) -> SetKey) -> (Out, f64) {
    let n = cfg.connections;
    let jobs = (0..n)
        .map(|i| Job::Produce(ProduceJob::timed(cfg, i, key(i), n)))
        .collect();
    let (outs, d) = run_jobs(&cfg.addr, jobs);
    (Out::merged(outs), d.as_secs_f64())
}

/// memcached: a `get` of every acknowledged key, untimed, over up to 8 connections; the faults it
/// finds go into `res`.
fn read_back_keys(cfg: &Config, res: &mut Out) -> Check {
    let conns = cfg.connections.min(8);
    let mut per: Vec<Vec<u64>> = vec![Vec::new(); conns];
    for (i, id) in res.acked.iter().enumerate() {
        per[i % conns].push(*id);
    }
    let jobs = per
        .into_iter()
        .map(|ids| Job::Read(ReadJob::drain(cfg, GetPlan::Keys(cfg.name.clone(), ids))))
        .collect();
    let back = Out::merged(run_jobs(&cfg.addr, jobs).0);
    res.absorb_faults(&back);
    check(&res.acked, &back.got)
}

/// `consume` and `reliable` on tern: `--count` items stored untimed into `nq` queues, then read
/// by every connection, connection i from queue i % nq with what `reader(queue)` gives (the `get`
/// it repeats and the line it ends with), until all are read; what is left is drained untimed.
fn read_prefilled(
    cfg: &Config,
    nq: usize,
    reader: impl Fn(&str) -> (GetPlan, Option<String>),
) -> Report {
    let n = cfg.connections;
    let queues = queue_names(cfg, nq);
    let key = |i: usize| SetKey::Fixed(queues[i % nq].clone());
    let filled = fill(cfg, key, cfg.count, n.clamp(nq, 8.max(nq)));
    let total = Arc::new(AtomicU64::new(0));
    let jobs = (0..n)
        .map(|i| {
            let (plan, finish) = reader(&queues[i % nq]);
            let until = Until::Global(total.clone(), filled.acked.len() as u64);
            Job::Read(ReadJob {
                finish,
                ..ReadJob::new(cfg, plan, until)
            })
        })
        .collect();
    let (outs, d) = run_jobs(&cfg.addr, jobs);
    let mut res = Out::merged(outs);
    // Whatever the timed phase left (time limit) or lost track of, read it now.
    let mut got = res.got.clone();
    let mut left = 0;
    for q in &queues {
        let back = drain(cfg, q);
        left += back.got.len();
        got.extend_from_slice(&back.got);
        res.absorb_faults(&back);
    }
    let extra = if left > 0 {
        format!(" left_for_drain={left}")
    } else {
        String::new()
    };
    let sum = check(&filled.acked, &got);
    res.absorb_faults(&filled);
    delete_queues(cfg, &queues, &mut res);
    Report::new(cfg, d.as_secs_f64(), res, sum, extra)
}

/// `consume` on memcached: `--count` keys set untimed, then each connection gets, timed, the
/// keys it set.
fn consume_memcached(cfg: &Config) -> Report {
    let n = cfg.connections;
    let filled = fill(cfg, |_| SetKey::PerItem(cfg.name.clone()), cfg.count, n);
    let mut per: Vec<Vec<u64>> = vec![Vec::new(); n];
    for id in &filled.acked {
        per[(id >> 40) as usize].push(*id);
    }
    let jobs = per
        .into_iter()
        .map(|ids| {
            let plan = GetPlan::Keys(cfg.name.clone(), ids);
            Job::Read(ReadJob::new(cfg, plan, Until::Own(u64::MAX)))
        })
        .collect();
    let (outs, d) = run_jobs(&cfg.addr, jobs);
    let mut res = Out::merged(outs);
    res.absorb_faults(&filled);
    let sum = if cfg.duration.is_some() {
        // A time-limited run reads only part: check only what was requested.
        let mut want: Vec<u64> = res.got.clone();
        want.sort_unstable();
        want.dedup();
        check(&want, &res.got)
    } else {
        check(&filled.acked, &res.got)
    };
    res.order = 0; // memcached has no order
    Report::new(cfg, d.as_secs_f64(), res, sum, String::new())
}
