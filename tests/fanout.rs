//! Fanout `set a+b+c` (SPEC.md, "set"): every listed queue gets the item,
//! atomically (all or none), a name listed twice counts once; with plain
//! readers, cursors, concurrent producers, queue limits, crashes and a real
//! memcache client.

mod common;

use common::*;
use std::thread;
use std::time::Duration;

// ---------------------------------------------------------------- helpers

/// Assert `items` holds exactly the sequences 0..per of `producers`, each in order.
#[track_caller]
fn assert_per_producer_order(what: &str, items: &[String], producers: &[usize], per: u64) {
    let max = producers.iter().max().copied().unwrap_or(0);
    let mut seqs: Vec<Vec<u64>> = vec![Vec::new(); max + 1];
    for d in items {
        let (p, n) = parse_item(d.as_bytes());
        assert!(
            producers.contains(&p),
            "{what}: item {d:?} of a producer that does not write here"
        );
        seqs[p].push(n);
    }
    let want: Vec<u64> = (0..per).collect();
    for &p in producers {
        let got = &seqs[p];
        if *got != want {
            let first = got
                .iter()
                .zip(&want)
                .position(|(a, b)| a != b)
                .unwrap_or(got.len().min(want.len()));
            panic!(
                "{what}, producer {p}: {} items, first difference at index {first}: got {:?}, expected {:?}",
                got.len(),
                &got[first..(first + 5).min(got.len())],
                &want[first..(first + 5).min(want.len())]
            );
        }
    }
}

// ---------------------------------------------------------------- basics

#[test]
fn fanout_reaches_plain_readers_and_cursors_of_every_queue() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    // Cursors that exist before the fanout.
    for q in ["a", "b", "c"] {
        expect_end(&mut c, &format!("{q}.k"));
    }
    c.roundtrip(b"set a+b+c 5 0 3\r\nabc\r\n", b"STORED\r\n");
    c.roundtrip(b"set c+a+b 4294967295 0 4\r\n\r\n\r\n\r\n", b"STORED\r\n");
    for q in ["a", "b", "c"] {
        let k = format!("{q}.k");
        expect_item_flags(&mut c, &k, 5, b"abc");
        expect_item_flags(&mut c, &format!("{q}.late/peek"), 5, b"abc");
        expect_item_flags(&mut c, &k, 4294967295, b"\r\n\r\n");
        expect_end(&mut c, &k);
        // A cursor created afterwards sees them too.
        expect_item_flags(&mut c, &format!("{q}.late"), 5, b"abc");
        expect_item_flags(&mut c, &format!("{q}.late"), 4294967295, b"\r\n\r\n");
    }
    for q in ["a", "b", "c"] {
        expect_item_flags(&mut c, &format!("{q}/open"), 5, b"abc");
        c.roundtrip(format!("get {q}/close\r\n").as_bytes(), b"END\r\n");
        expect_item_flags(&mut c, q, 4294967295, b"\r\n\r\n");
        expect_end(&mut c, q);
    }
}

#[test]
fn fanout_with_a_name_listed_twice_stores_once() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    expect_end(&mut c, "a.k");
    c.roundtrip(b"set a+a 0 0 1\r\nx\r\n", b"STORED\r\n");
    c.roundtrip(b"set a+b+a+b 0 0 1\r\ny\r\n", b"STORED\r\n");
    assert_eq!(c.stat_u64("queue_a_items"), 2);
    assert_eq!(c.stat_u64("queue_b_items"), 1);
    assert_eq!(c.drain_strings("a.k"), ["x", "y"]);
    assert_eq!(c.drain_strings("a"), ["x", "y"]);
    assert_eq!(c.drain_strings("b"), ["y"]);
}

#[test]
fn fanout_noreply_and_pipelined() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    c.send(b"set a+b 0 0 1 noreply\r\n1\r\nset b+a 0 0 1\r\n2\r\nget a\r\n");
    c.expect(b"STORED\r\nVALUE a 0 1\r\n1\r\nEND\r\n");
    assert_eq!(c.drain_strings("a"), ["2"]);
    assert_eq!(c.drain_strings("b"), ["1", "2"]);
}

#[test]
fn fanout_bad_names() {
    let s = Server::start();
    let mut c = Conn::connect(&s);
    for bad in ["a+q.c", "q.c+a", "a+", "+a", "a++b", "a+b!", "a+b/open"] {
        // The data block is read and discarded: the next command works.
        c.roundtrip(
            format!("set {bad} 0 0 1\r\nz\r\nget a\r\n").as_bytes(),
            b"CLIENT_ERROR bad queue name\r\nEND\r\n",
        );
    }
    // A 201-byte target among valid ones.
    let long = "x".repeat(201);
    c.roundtrip(
        format!("set a+{long} 0 0 1\r\nz\r\nget a\r\n").as_bytes(),
        b"CLIENT_ERROR bad queue name\r\nEND\r\n",
    );
    // `+` is not a name byte outside `set`.
    c.roundtrip(b"get a+b\r\n", b"CLIENT_ERROR bad queue name\r\n");
    // Nothing was stored anywhere.
    for q in ["a", "b", "q"] {
        expect_end(&mut c, q);
    }
    let stats = c.stats();
    assert_eq!(
        stats
            .iter()
            .find(|(n, _)| n == "total_items")
            .map(|(_, v)| v.as_str()),
        Some("0"),
        "stats: {stats:?}"
    );
}

// ---------------------------------------------------------------- limits

#[test]
fn fanout_to_a_full_queue_stores_in_none() {
    let (_dir, cfg) = config_file(
        "[queues.b]\nmax_items = 2\n\n[queues.m]\nmax_bytes = 10\n\n[queues.d]\nmax_items = 1\ndiscard_old = true\n",
    );
    let s = Server::start_with(&["--config", &cfg]);
    let mut c = Conn::connect(&s);
    expect_end(&mut c, "a.k");
    expect_end(&mut c, "c.k");
    c.set("b", b"b1");
    c.set("b", b"b2");
    c.roundtrip(b"set b 0 0 2\r\nb3\r\n", b"SERVER_ERROR queue full\r\n");
    c.roundtrip(b"set a+b+c 0 0 1\r\nz\r\n", b"SERVER_ERROR queue full\r\n");
    c.roundtrip(b"set c+b 0 0 1\r\nz\r\n", b"SERVER_ERROR queue full\r\n");
    for k in ["a", "a.k", "c", "c.k"] {
        expect_end(&mut c, k);
    }
    // After making room, the same fanout goes everywhere.
    expect_item(&mut c, "b", b"b1");
    c.roundtrip(b"set a+b+c 0 0 1\r\nz\r\n", b"STORED\r\n");
    for k in ["a.k", "c.k", "a", "c"] {
        expect_item(&mut c, k, b"z");
    }
    assert_eq!(c.drain_strings("b"), ["b2", "z"]);

    // max_bytes: 8 bytes queued, 5 more would overfill.
    c.set("m", b"12345678");
    c.roundtrip(
        b"set a+m+c 0 0 5\r\nabcde\r\n",
        b"SERVER_ERROR queue full\r\n",
    );
    expect_end(&mut c, "a");
    expect_end(&mut c, "c");
    c.roundtrip(b"set a+m+c 0 0 2\r\nab\r\n", b"STORED\r\n");
    assert_eq!(c.drain_strings("m"), ["12345678", "ab"]);
    assert_eq!(c.drain_strings("a"), ["ab"]);

    // A full target that discards old items does not block the fanout.
    c.set("d", b"d1");
    c.roundtrip(b"set a+d 0 0 2\r\nd2\r\n", b"STORED\r\n");
    assert_eq!(c.drain_strings("d"), ["d2"]);
    assert_eq!(c.drain_strings("a"), ["d2"]);

    // noreply: nothing is sent back, and nothing is stored either.
    c.set("b", b"b4");
    c.set("b", b"b5");
    assert_eq!(c.stat_u64("queue_b_items"), 2);
    c.send(b"set a+b 0 0 1 noreply\r\nn\r\n");
    c.expect_silence(Duration::from_millis(200));
    expect_end(&mut c, "a");
}

// ---------------------------------------------------------------- concurrency

const PER_PRODUCER: u64 = 1000;
const BATCH: usize = 25;

#[test]
fn concurrent_fanout_producers_keep_per_producer_order_in_every_queue() {
    // Target lists in different orders and overlapping subsets: a server that
    // locks queues in the order given can deadlock here.
    let targets: [&'static str; 4] = ["x+y+z", "z+y+x", "y+x", "z+x"];
    let per_queue: [(&str, &[usize]); 3] =
        [("x", &[0, 1, 2, 3]), ("y", &[0, 1, 2]), ("z", &[0, 1, 3])];
    let s = Server::start_with(&["--sync", "never"]);
    let addr = s.addr();
    {
        let mut m = Conn::connect(&s);
        for (q, _) in per_queue {
            expect_end(&mut m, &format!("{q}.k"));
        }
    }
    let mut producers = Vec::new();
    for (p, t) in targets.iter().enumerate() {
        let t = t.to_string();
        producers.push(thread::spawn(move || {
            let mut c = Conn::connect_addr(addr);
            c.set_timeout(Duration::from_secs(60));
            produce(&mut c, &t, p, 0..PER_PRODUCER, BATCH);
        }));
    }
    // One cursor per queue, reading while the producers write.
    let mut readers = Vec::new();
    for (q, ps) in per_queue {
        let want = ps.len() * PER_PRODUCER as usize;
        let key = format!("{q}.k");
        readers.push(thread::spawn(move || {
            let mut c = Conn::connect_addr(addr);
            let seen = read_until(&mut c, &key, want, 16);
            seen.into_iter()
                .map(|d| String::from_utf8(d).unwrap())
                .collect::<Vec<_>>()
        }));
    }
    join_all(producers);
    let cursor_views = join_all(readers);
    let mut m = Conn::connect(&s);
    for ((q, ps), view) in per_queue.iter().zip(cursor_views) {
        assert_per_producer_order(&format!("cursor {q}.k"), &view, ps, PER_PRODUCER);
        let items = m.drain_strings(q);
        assert_per_producer_order(&format!("queue {q}"), &items, ps, PER_PRODUCER);
        // The cursor read the queue as it is stored.
        assert_eq!(
            view, items,
            "cursor {q}.k and queue {q} disagree on the order"
        );
    }
}

// ---------------------------------------------------------------- durability

#[test]
fn acknowledged_fanout_survives_kill9_in_every_queue() {
    let mut s = Server::start();
    let mut c = Conn::connect(&s);
    expect_end(&mut c, "b.k");
    for i in 0..20 {
        c.set(&format!("a+b+c{}", i % 2), format!("i{i}").as_bytes());
    }
    s.kill9();
    s.start_again();
    let mut c = Conn::connect(&s);
    let all: Vec<String> = (0..20).map(|i| format!("i{i}")).collect();
    let even: Vec<String> = (0..20).step_by(2).map(|i| format!("i{i}")).collect();
    let odd: Vec<String> = (1..20).step_by(2).map(|i| format!("i{i}")).collect();
    assert_eq!(c.drain_strings("b.k"), all);
    assert_eq!(c.drain_strings("a"), all);
    assert_eq!(c.drain_strings("b"), all);
    assert_eq!(c.drain_strings("c0"), even);
    assert_eq!(c.drain_strings("c1"), odd);
}

// ---------------------------------------------------------------- memcache client

#[test]
fn memcache_client_writes_a_fanout() {
    let s = Server::start();
    let url = format!(
        "memcache://127.0.0.1:{}?protocol=ascii&timeout=10",
        s.port()
    );
    let client = memcache::Client::connect(url.as_str()).expect("memcache client connects");
    assert_eq!(client.get::<String>("b.k").unwrap(), None);
    client.set("a+b", "fan", 0).unwrap();
    client.set("a+b", 42u32, 0).unwrap();
    assert_eq!(client.get::<String>("a").unwrap().as_deref(), Some("fan"));
    assert_eq!(client.get::<String>("b.k").unwrap().as_deref(), Some("fan"));
    assert_eq!(client.get::<u32>("b.k").unwrap(), Some(42));
    let mut raw = Conn::connect(&s);
    expect_item(&mut raw, "a", b"42");
    expect_item(&mut raw, "b", b"fan");
    expect_item(&mut raw, "b", b"42");
    expect_end(&mut raw, "a");
    expect_end(&mut raw, "b");
}

// ---------------------------------------------------------------- interactions

#[test]
fn fanout_wakes_waiters_of_every_target() {
    let s = Server::start();
    let mut m = Conn::connect(&s);
    let mut wa = Conn::connect(&s);
    wa.set_timeout(Duration::from_secs(30));
    wa.send(b"get a/t=20000\r\n");
    let mut wb = Conn::connect(&s);
    wb.set_timeout(Duration::from_secs(30));
    wb.send(b"get b.k/open/t=20000\r\n");
    m.wait_stat("queue_a_waiters", "1");
    m.wait_stat("queue_b_waiters", "1");
    m.roundtrip(b"set b+a 0 0 2\r\nhi\r\n", b"STORED\r\n");
    wa.expect(b"VALUE a/t=20000 0 2\r\nhi\r\nEND\r\n");
    wb.expect(b"VALUE b.k/open/t=20000 0 2\r\nhi\r\nEND\r\n");
    wb.roundtrip(b"get b.k/close\r\n", b"END\r\n");
    expect_item(&mut m, "b", b"hi");
}

#[test]
fn deleting_a_fanout_target_meanwhile_loses_nothing_of_the_others() {
    const PER: u64 = 600;
    let s = Server::start_with(&["--sync", "never"]);
    let addr = s.addr();
    let producer = thread::spawn(move || {
        let mut c = Conn::connect_addr(addr);
        for i in 0..PER {
            c.set("a+b+c", format!("p0-{i}").as_bytes());
        }
    });
    let deleter = thread::spawn(move || {
        let mut c = Conn::connect_addr(addr);
        let mut deleted = 0;
        for _ in 0..150 {
            c.send(b"delete b\r\nflush c\r\n");
            let l = c.read_line();
            assert!(
                l == b"DELETED\r\n" || l == b"NOT_FOUND\r\n",
                "delete b: {}",
                esc(&l)
            );
            if l == b"DELETED\r\n" {
                deleted += 1;
            }
            c.expect(b"END\r\n");
            thread::sleep(Duration::from_millis(1));
        }
        deleted
    });
    producer.join().unwrap();
    let deleted = deleter.join().unwrap();
    let mut m = Conn::connect(&s);
    let a = m.drain_strings("a");
    assert_per_producer_order("queue a", &a, &[0], PER);
    // What is left in b and c is an in-order tail of the sequence.
    for q in ["b", "c"] {
        let rest = m.drain_strings(q);
        let want: Vec<String> = (PER - rest.len() as u64..PER)
            .map(|i| format!("p0-{i}"))
            .collect();
        assert_eq!(rest, want, "queue {q}");
    }
    eprintln!("b deleted {deleted} times");
}
