//! Micro-benchmarks of the sled-backed store (`tern::queue::Store`), called directly: no
//! sockets, no protocol. Every benchmark gets a fresh store in its own temporary directory,
//! opened with `SyncMode::Never`, so what is measured is the store's own work (sled, locks,
//! bookkeeping), not fsync.
//!
//! Queues are kept bounded: unmeasured housekeeping (deleting a queue that grew, refilling
//! one that was drained) runs outside the timed sections through `iter_custom`.
//!
//! Run: `cargo bench --bench store` (quick smoke: `cargo bench --bench store -- --test`).

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use futures_lite::future::block_on;
use std::time::{Duration, Instant};
use tempfile::TempDir;
use tern::queue::{Config, ReadMode, Store, SyncMode};

/// Pushes between two (unmeasured) deletes of the queue, so it never grows without bound.
const PUSHES_PER_QUEUE: u64 = 20_000;
/// Items put in a queue when a draining benchmark refills it (unmeasured).
const REFILL: u64 = 10_000;
/// Depth kept in the steady-state push/pop and open/close benchmarks.
const DEPTH: u64 = 1_000;

/// A store in a temporary directory; the store is dropped before its directory.
struct Bench {
    store: Store,
    _dir: TempDir,
}

impl Bench {
    fn new() -> Bench {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut config = Config::new(dir.path());
        config.sync = SyncMode::Never;
        config.cache_bytes = 64 * 1024 * 1024;
        let store = Store::open(&config).expect("open store");
        Bench { store, _dir: dir }
    }

    fn put(&self, names: &[String], data: &[u8]) {
        block_on(self.store.put(names, 0, None, data)).expect("put");
    }

    fn fill(&self, queue: &str, count: u64, data: &[u8]) {
        let names = [queue.to_string()];
        for _ in 0..count {
            self.put(&names, data);
        }
    }

    fn delete(&self, queue: &str) {
        block_on(self.store.delete(queue, None)).expect("delete");
    }
}

fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| b'a' + (i % 26) as u8).collect()
}

/// Times `iters` runs of `op`; whenever `budget` reaches zero, the clock stops while `refill`
/// runs and returns the next budget.
fn timed_with_housekeeping(
    iters: u64,
    budget: &mut u64,
    mut refill: impl FnMut() -> u64,
    mut op: impl FnMut(),
) -> Duration {
    let mut total = Duration::ZERO;
    let mut start = Instant::now();
    for _ in 0..iters {
        if *budget == 0 {
            total += start.elapsed();
            *budget = refill();
            start = Instant::now();
        }
        op();
        *budget -= 1;
    }
    total + start.elapsed()
}

fn bench_push(c: &mut Criterion) {
    let mut group = c.benchmark_group("store");
    for (name, len) in [("push_128B", 128), ("push_1KiB", 1024)] {
        let bench = Bench::new();
        let names = vec!["push".to_string()];
        let data = payload(len);
        let mut budget = PUSHES_PER_QUEUE;
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                timed_with_housekeeping(
                    iters,
                    &mut budget,
                    || {
                        bench.delete("push");
                        PUSHES_PER_QUEUE
                    },
                    || bench.put(&names, black_box(&data)),
                )
            })
        });
    }
    group.finish();
}

fn bench_push_pop(c: &mut Criterion) {
    let mut group = c.benchmark_group("store");
    let bench = Bench::new();
    let names = vec!["pushpop".to_string()];
    let data = payload(128);
    bench.fill("pushpop", DEPTH, &data);
    group.throughput(Throughput::Elements(1));
    group.bench_function("push_pop_128B_depth1000", |b| {
        b.iter(|| {
            bench.put(&names, black_box(&data));
            let (item, lease) = bench
                .store
                .read("pushpop", None, ReadMode::Take)
                .expect("read")
                .expect("queue is never empty");
            debug_assert!(lease.is_none());
            black_box(item.data().len())
        })
    });
    group.finish();
}

fn bench_open_close(c: &mut Criterion) {
    let mut group = c.benchmark_group("store");
    let bench = Bench::new();
    let data = payload(128);
    // Each open+close removes one item: keep at least DEPTH waiting, refilling unmeasured.
    bench.fill("openclose", DEPTH, &data);
    let mut budget = 0;
    group.throughput(Throughput::Elements(1));
    group.bench_function("open_close_128B", |b| {
        b.iter_custom(|iters| {
            timed_with_housekeeping(
                iters,
                &mut budget,
                || {
                    bench.fill("openclose", REFILL, &data);
                    REFILL
                },
                || {
                    let (item, lease) = bench
                        .store
                        .read("openclose", None, ReadMode::Open)
                        .expect("read")
                        .expect("queue is never empty");
                    black_box(item.data().len());
                    lease
                        .expect("open read has a lease")
                        .close()
                        .expect("close");
                },
            )
        })
    });
    group.finish();
}

fn bench_cursor_read(c: &mut Criterion) {
    let mut group = c.benchmark_group("store");
    let bench = Bench::new();
    let data = payload(128);
    // A cursor read never removes anything: when the cursor has read all REFILL items, the
    // queue (and its cursor) is deleted and refilled, unmeasured; the next read recreates
    // the cursor at the start.
    let mut budget = 0;
    group.throughput(Throughput::Elements(1));
    group.bench_function("cursor_take_128B", |b| {
        b.iter_custom(|iters| {
            timed_with_housekeeping(
                iters,
                &mut budget,
                || {
                    bench.delete("cursored");
                    bench.fill("cursored", REFILL, &data);
                    REFILL
                },
                || {
                    let (item, _) = bench
                        .store
                        .read("cursored", Some("c"), ReadMode::Take)
                        .expect("read")
                        .expect("cursor has items left");
                    black_box(item.data().len());
                },
            )
        })
    });
    group.finish();
}

fn bench_fanout(c: &mut Criterion) {
    let mut group = c.benchmark_group("store");
    let bench = Bench::new();
    let names: Vec<String> = ["fan1", "fan2", "fan3"].map(String::from).to_vec();
    let data = payload(128);
    let mut budget = PUSHES_PER_QUEUE;
    group.throughput(Throughput::Elements(1));
    group.bench_function("fanout3_put_128B", |b| {
        b.iter_custom(|iters| {
            timed_with_housekeeping(
                iters,
                &mut budget,
                || {
                    for name in &names {
                        bench.delete(name);
                    }
                    PUSHES_PER_QUEUE
                },
                || bench.put(&names, black_box(&data)),
            )
        })
    });
    group.finish();
}

fn bench_peek(c: &mut Criterion) {
    let mut group = c.benchmark_group("store");
    let bench = Bench::new();
    let data = payload(128);
    bench.fill("peeked", DEPTH, &data);
    group.throughput(Throughput::Elements(1));
    group.bench_function("peek_128B", |b| {
        b.iter(|| {
            let (item, _) = bench
                .store
                .read("peeked", None, ReadMode::Peek)
                .expect("read")
                .expect("queue is never empty");
            black_box(item.data().len())
        })
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30)
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_push, bench_push_pop, bench_open_close, bench_cursor_read, bench_fanout,
        bench_peek
}
criterion_main!(benches);
