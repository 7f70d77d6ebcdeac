//! Micro-benchmarks of the pure protocol code: `protocol::parse` and `Reply::encode`.
//!
//! Run: `cargo bench --bench parser` (quick smoke: `cargo bench --bench parser -- --test`).

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use std::time::Duration;
use tern::protocol::{parse, Command, Reply};

/// The item size limit handed to the parser (tern's default is 1 MiB).
const MAX_ITEM_SIZE: u32 = 1024 * 1024;

/// `set <queue> 0 0 <n>\r\n<n bytes>\r\n`.
fn set_command(queue: &str, len: usize) -> Vec<u8> {
    let mut buf = format!("set {queue} 0 0 {len}\r\n").into_bytes();
    buf.extend((0..len).map(|i| b'a' + (i % 26) as u8));
    buf.extend_from_slice(b"\r\n");
    buf
}

/// Parses one whole command, checking (once, outside the timed loop) that it parses and uses
/// the whole buffer, so a grammar change cannot silently turn a benchmark into an error path.
fn check_parses(buf: &[u8]) {
    match parse(buf, MAX_ITEM_SIZE) {
        Ok(Some((command, used))) => {
            assert_eq!(used, buf.len(), "command did not use the whole buffer");
            if let Command::Get(get) = &command {
                assert!(get.error.is_none(), "get key rejected: {:?}", get.error);
            }
        }
        other => panic!("benchmark input does not parse: {other:?}"),
    }
}

fn bench_parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse");

    for (name, len) in [("set_128B", 128), ("set_1KiB", 1024)] {
        let buf = set_command("queue", len);
        check_parses(&buf);
        group.throughput(Throughput::Bytes(buf.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| parse(black_box(&buf), MAX_ITEM_SIZE).unwrap().unwrap())
        });
    }

    let gets: [(&str, &[u8]); 2] = [
        ("get_single_key", b"get queue\r\n"),
        ("get_with_options", b"get q.c/t=100/close/open\r\n"),
    ];
    for (name, buf) in gets {
        check_parses(buf);
        group.throughput(Throughput::Bytes(buf.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| parse(black_box(buf), MAX_ITEM_SIZE).unwrap().unwrap())
        });
    }

    // A pipelined read buffer, as a connection sees it: 16 commands back to back, alternating
    // a 128-byte `set` and a `get` with options, parsed and consumed one after another.
    let mut pipeline = Vec::new();
    for i in 0..8 {
        pipeline.extend(set_command(&format!("queue{i}"), 128));
        pipeline.extend_from_slice(format!("get queue{i}.c/t=100/open\r\n").as_bytes());
    }
    let count_commands = |buf: &[u8]| {
        let mut rest = buf;
        let mut commands = 0usize;
        while let Some((command, used)) = parse(rest, MAX_ITEM_SIZE).unwrap() {
            black_box(command);
            rest = &rest[used..];
            commands += 1;
        }
        assert!(rest.is_empty(), "pipeline left {} bytes", rest.len());
        commands
    };
    assert_eq!(count_commands(&pipeline), 16);
    group.throughput(Throughput::Elements(16));
    group.bench_function("pipeline_16_commands", |b| {
        b.iter(|| count_commands(black_box(&pipeline)))
    });
    group.finish();
}

fn bench_encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    let data = vec![b'x'; 1024];
    let key: &[u8] = b"queue.cursor/open";
    // One buffer for every iteration, as a connection reuses its output buffer.
    let mut out = Vec::with_capacity(2048);
    Reply::Value {
        key,
        flags: 0,
        data: &data,
    }
    .encode(&mut out);
    group.throughput(Throughput::Bytes(out.len() as u64));
    group.bench_function("value_1KiB", |b| {
        b.iter(|| {
            out.clear();
            Reply::Value {
                key: black_box(key),
                flags: black_box(0),
                data: black_box(&data),
            }
            .encode(&mut out);
            black_box(out.len())
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
    targets = bench_parse, bench_encode
}
criterion_main!(benches);
