//! The workloads: what each one runs, times and verifies.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Instant;

use crate::args::{fresh_name, Config, Target, Workload};
use crate::client::Client;
use crate::output::Report;
use crate::pipeline::*;
use crate::verify::{check, Check, Out};

pub fn queue_names(cfg: &Config, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{}_q{i}", cfg.name)).collect()
}

pub fn run(cfg: &Config) -> Report {
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
