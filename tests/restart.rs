//! Persistence across graceful restarts (SIGTERM), SIGINT, `shutdown`, and
//! crashes (`kill -9`) of the real binary.

mod common;

use common::*;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

#[test]
fn items_survive_graceful_restart_with_flags_and_order() {
    let mut s = Server::start();
    let mut c = Conn::connect(&s);
    c.set_flags("q", 1, b"one");
    c.set_flags("q", 4294967295, b"two");
    c.set_flags("q", 0, b"");
    c.set("other", b"o");
    drop(c);
    s.restart();
    let mut c = Conn::connect(&s);
    c.roundtrip(b"get q\r\n", b"VALUE q 1 3\r\none\r\nEND\r\n");
    c.roundtrip(b"get q\r\n", b"VALUE q 4294967295 3\r\ntwo\r\nEND\r\n");
    c.roundtrip(b"get q\r\n", b"VALUE q 0 0\r\n\r\nEND\r\n");
    c.roundtrip(b"get q\r\n", b"END\r\n");
    c.roundtrip(b"get other\r\n", b"VALUE other 0 1\r\no\r\nEND\r\n");
}

#[test]
fn acknowledged_items_survive_kill9() {
    let mut s = Server::start();
    let mut c = Conn::connect(&s);
    for i in 0..100 {
        c.set_flags("q", i, format!("item-{i}").as_bytes());
    }
    let big = payload(300_000, 9);
    c.set("big", &big);
    s.kill9();
    s.restart();
    let mut c = Conn::connect(&s);
    for i in 0..100 {
        let want = format!("item-{i}");
        c.roundtrip(b"get q\r\n", &value_reply("q", i, want.as_bytes()));
    }
    c.roundtrip(b"get q\r\n", b"END\r\n");
    c.roundtrip(b"get big\r\n", &value_reply("big", 0, &big));
}

#[test]
fn open_read_is_back_after_kill9() {
    let mut s = Server::start();
    let mut c = Conn::connect(&s);
    c.set("q", b"a");
    c.set("q", b"b");
    c.set("q", b"c");
    c.roundtrip(b"get q/open\r\n", b"VALUE q/open 0 1\r\na\r\nEND\r\n");
    s.kill9();
    s.restart();
    let mut c = Conn::connect(&s);
    c.roundtrip(b"get q\r\n", b"VALUE q 0 1\r\na\r\nEND\r\n");
    c.roundtrip(b"get q\r\n", b"VALUE q 0 1\r\nb\r\nEND\r\n");
    c.roundtrip(b"get q\r\n", b"VALUE q 0 1\r\nc\r\nEND\r\n");
    c.roundtrip(b"get q\r\n", b"END\r\n");
}

#[test]
fn open_read_is_back_after_graceful_restart() {
    let mut s = Server::start();
    let mut c = Conn::connect(&s);
    c.set("q", b"a");
    c.set("q", b"b");
    c.roundtrip(b"get q/open\r\n", b"VALUE q/open 0 1\r\na\r\nEND\r\n");
    // The connection is still open while the server stops.
    s.restart();
    let mut c2 = Conn::connect(&s);
    c2.roundtrip(b"get q\r\n", b"VALUE q 0 1\r\na\r\nEND\r\n");
    c2.roundtrip(b"get q\r\n", b"VALUE q 0 1\r\nb\r\nEND\r\n");
    drop(c);
}

#[test]
fn removals_persist_across_graceful_restart() {
    let mut s = Server::start();
    let mut c = Conn::connect(&s);
    for x in ["1", "2", "3", "4"] {
        c.set("q", x.as_bytes());
    }
    c.roundtrip(b"get q\r\n", b"VALUE q 0 1\r\n1\r\nEND\r\n");
    c.roundtrip(b"get q/open\r\n", b"VALUE q/open 0 1\r\n2\r\nEND\r\n");
    c.roundtrip(b"get q/close\r\n", b"END\r\n");
    drop(c);
    s.restart();
    let mut c = Conn::connect(&s);
    c.roundtrip(b"get q\r\n", b"VALUE q 0 1\r\n3\r\nEND\r\n");
    c.roundtrip(b"get q\r\n", b"VALUE q 0 1\r\n4\r\nEND\r\n");
    c.roundtrip(b"get q\r\n", b"END\r\n");
}

#[test]
fn delete_and_flush_persist_across_restart() {
    let mut s = Server::start();
    let mut c = Conn::connect(&s);
    c.set("gone", b"1");
    c.set("flushed", b"2");
    c.set("kept", b"3");
    c.roundtrip(b"delete gone\r\n", b"DELETED\r\n");
    c.roundtrip(b"flush flushed\r\n", b"END\r\n");
    c.set("flushed", b"4");
    drop(c);
    s.restart();
    let mut c = Conn::connect(&s);
    c.roundtrip(b"delete gone\r\n", b"NOT_FOUND\r\n");
    c.roundtrip(b"get flushed\r\n", b"VALUE flushed 0 1\r\n4\r\nEND\r\n");
    c.roundtrip(b"get flushed\r\n", b"END\r\n");
    c.roundtrip(b"get kept\r\n", b"VALUE kept 0 1\r\n3\r\nEND\r\n");
}

#[test]
fn queue_drained_then_restarted_keeps_fifo() {
    // Ids are never reused: a queue drained before a restart still orders new
    // items correctly, also with items returned by abort.
    let mut s = Server::start();
    let mut c = Conn::connect(&s);
    c.set("q", b"old");
    c.roundtrip(b"get q\r\n", b"VALUE q 0 3\r\nold\r\nEND\r\n");
    drop(c);
    s.restart();
    let mut c = Conn::connect(&s);
    c.set("q", b"n1");
    c.set("q", b"n2");
    c.roundtrip(b"get q/open\r\n", b"VALUE q/open 0 2\r\nn1\r\nEND\r\n");
    c.set("q", b"n3");
    c.roundtrip(b"get q/abort\r\n", b"END\r\n");
    drop(c);
    s.kill9();
    s.restart();
    let mut c = Conn::connect(&s);
    assert_eq!(
        c.drain("q"),
        vec![b"n1".to_vec(), b"n2".to_vec(), b"n3".to_vec()]
    );
}

#[test]
fn expiry_is_kept_across_restart() {
    let mut s = Server::start();
    let mut c = Conn::connect(&s);
    c.roundtrip(b"set q 0 1 5\r\nshort\r\n", b"STORED\r\n");
    c.roundtrip(b"set q 0 3600 4\r\nlong\r\n", b"STORED\r\n");
    drop(c);
    s.restart();
    thread::sleep(Duration::from_millis(2100));
    let mut c = Conn::connect(&s);
    c.roundtrip(b"get q\r\n", b"VALUE q 0 4\r\nlong\r\nEND\r\n");
    c.roundtrip(b"get q\r\n", b"END\r\n");
}

#[test]
fn sigterm_and_sigint_exit_zero() {
    let mut s = Server::start();
    let mut c = Conn::connect(&s);
    c.set("q", b"1");
    let status = s.stop();
    assert!(status.success(), "SIGTERM exit status {status}");
    s.start_again();
    let mut c2 = Conn::connect(&s);
    c2.set("q", b"2");
    s.signal(libc::SIGINT);
    let status = s.wait_exit();
    assert!(status.success(), "SIGINT exit status {status}");
    s.start_again();
    let mut c3 = Conn::connect(&s);
    assert_eq!(c3.drain("q"), vec![b"1".to_vec(), b"2".to_vec()]);
    drop(c);
}

#[test]
fn sigterm_exits_while_a_get_is_blocked() {
    // A connection blocked in a long `get /t=` does not keep the server alive.
    let mut s = Server::start();
    let mut w = Conn::connect(&s);
    w.send(b"get q/t=60000\r\n");
    let mut c = Conn::connect(&s);
    c.wait_stat("queue_q_waiters", "1");
    let status = s.stop();
    assert!(status.success(), "exit status {status}");
}

#[test]
fn sync_never_persists_on_graceful_restart() {
    let mut s = Server::start_with(&["--sync", "never"]);
    let mut c = Conn::connect(&s);
    for i in 0..50 {
        c.set("q", format!("{i}").as_bytes());
    }
    drop(c);
    s.restart();
    let mut c = Conn::connect(&s);
    let got = c.drain("q");
    let want: Vec<Vec<u8>> = (0..50).map(|i| format!("{i}").into_bytes()).collect();
    assert_eq!(got, want);
}

#[test]
fn sync_interval_persists_after_kill9_once_interval_passed() {
    let mut s = Server::start_with(&["--sync", "20ms", "--log-level", "debug"]);
    let mut c = Conn::connect(&s);
    for i in 0..50 {
        c.set("q", format!("{i}").as_bytes());
    }
    // Once a periodic sync has covered the 50 writes, all of them must be on disk.
    wait_until("a periodic sync of all 50 writes", || {
        s.log().lines().any(|line| {
            line.split("periodic sync: writes 1 to ")
                .nth(1)
                .and_then(|rest| rest.split(' ').next()?.parse::<u64>().ok())
                .is_some_and(|flushed| flushed >= 50)
        })
    });
    s.kill9();
    s.restart();
    let mut c = Conn::connect(&s);
    let got = c.drain("q");
    let want: Vec<Vec<u8>> = (0..50).map(|i| format!("{i}").into_bytes()).collect();
    assert_eq!(got, want);
}

#[test]
fn kill9_under_write_load_loses_no_acknowledged_item() {
    let mut s = Server::start();
    let addr = s.addr();
    let writers = 4;
    let acked: Arc<Mutex<Vec<Vec<u32>>>> = Arc::new(Mutex::new(vec![Vec::new(); writers]));
    let total = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let handles: Vec<_> = (0..writers)
        .map(|w| {
            let acked = acked.clone();
            let total = total.clone();
            let stop = stop.clone();
            thread::spawn(move || {
                let mut c = Conn::connect_addr(addr);
                let mut i = 0u32;
                while !stop.load(Ordering::SeqCst) && i < 5000 {
                    let data = format!("w{w}-{i:06}");
                    let req = set_req("load", 0, 0, data.as_bytes());
                    if c.stream_write(&req).is_err() {
                        break;
                    }
                    match c.try_read_line() {
                        Some(line) if line == b"STORED\r\n" => {
                            acked.lock().unwrap()[w].push(i);
                            total.fetch_add(1, Ordering::SeqCst);
                        }
                        Some(line) => panic!("unexpected reply {}", esc(&line)),
                        None => break, // killed mid-request: not acknowledged
                    }
                    i += 1;
                }
            })
        })
        .collect();
    // Let a good number of writes through (a slow machine settles for less after 20 s, but
    // never for none), then crash.
    let t0 = std::time::Instant::now();
    wait_until("writes to be acknowledged before the crash", || {
        let total = total.load(Ordering::SeqCst);
        total >= 400 || (total > 0 && t0.elapsed() > Duration::from_secs(20))
    });
    s.kill9();
    stop.store(true, Ordering::SeqCst);
    for h in handles {
        h.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.iter().map(Vec::len).sum::<usize>() > 0,
        "no write was acknowledged before the crash"
    );

    s.restart();
    let mut c = Conn::connect(&s);
    let got = c.drain("load");
    eprintln!(
        "acknowledged before kill -9: {}, items after restart: {}",
        acked.iter().map(Vec::len).sum::<usize>(),
        got.len()
    );
    let mut seen: HashMap<usize, Vec<u32>> = HashMap::new();
    let mut unique = HashSet::new();
    for d in &got {
        let text = String::from_utf8(d.clone()).unwrap();
        assert!(unique.insert(text.clone()), "duplicate item {text}");
        let (w, i) = text[1..].split_once('-').unwrap();
        seen.entry(w.parse().unwrap())
            .or_default()
            .push(i.parse().unwrap());
    }
    for (w, acks) in acked.iter().enumerate() {
        let stored = seen.get(&w).cloned().unwrap_or_default();
        // Per-writer FIFO order is kept.
        assert!(
            stored.windows(2).all(|p| p[0] < p[1]),
            "writer {w}: out of order {stored:?}"
        );
        // Every acknowledged write is there (unacknowledged ones may or may not be).
        let stored: HashSet<u32> = stored.into_iter().collect();
        let lost: Vec<&u32> = acks.iter().filter(|i| !stored.contains(i)).collect();
        assert!(
            lost.is_empty(),
            "writer {w}: {} acknowledged items lost, e.g. {:?}",
            lost.len(),
            &lost[..lost.len().min(10)]
        );
    }
}

#[test]
fn kill9_while_consuming_loses_nothing() {
    // Removal is at-least-once: after a crash an item may come back, but none
    // may be lost.
    let mut s = Server::start();
    let mut c = Conn::connect(&s);
    let n = 300;
    for i in 0..n {
        c.set("q", format!("{i:04}").as_bytes());
    }
    let addr = s.addr();
    let consumed = Arc::new(Mutex::new(Vec::<String>::new()));
    let consumer = {
        let consumed = consumed.clone();
        thread::spawn(move || {
            let mut c = Conn::connect_addr(addr);
            loop {
                if c.stream_write(b"get q/close/open\r\n").is_err() {
                    break;
                }
                let Some(line) = c.try_read_line() else { break };
                if line == b"END\r\n" {
                    break;
                }
                // VALUE q/close/open 0 4\r\n + 4 bytes + \r\nEND\r\n
                let Some(rest) = c.try_read_exact(4 + 7) else {
                    break;
                };
                consumed
                    .lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&rest[..4]).into_owned());
            }
        })
    };
    // Crash after a good number of reads (a slow machine settles for less after 20 s, but
    // never for none).
    let t0 = std::time::Instant::now();
    wait_until("reads before the crash", || {
        let consumed = consumed.lock().unwrap().len();
        consumed >= 100 || (consumed > 0 && t0.elapsed() > Duration::from_secs(20))
    });
    s.kill9();
    consumer.join().unwrap();
    s.restart();
    let mut c = Conn::connect(&s);
    let remaining: Vec<String> = c
        .drain("q")
        .into_iter()
        .map(|d| String::from_utf8(d).unwrap())
        .collect();
    let opened = consumed.lock().unwrap().clone();
    assert!(!opened.is_empty(), "nothing was consumed before the crash");
    // Every item we never saw must still be in the queue. (Items we opened may
    // or may not be: their close could have reached disk, or the crash came
    // before it; an item opened by a command whose reply was lost is back too.)
    let mut all: HashSet<String> = remaining.iter().cloned().collect();
    assert_eq!(all.len(), remaining.len(), "duplicates in the queue");
    all.extend(opened.iter().cloned());
    for i in 0..n {
        let k = format!("{i:04}");
        assert!(all.contains(&k), "item {k} lost");
    }
    // What remains is in FIFO order.
    let mut sorted = remaining.clone();
    sorted.sort();
    assert_eq!(remaining, sorted);
}

#[test]
fn shutdown_command_persists_and_exits_zero() {
    let mut s = Server::start_with(&["--allow-shutdown"]);
    let mut c = Conn::connect(&s);
    c.set("q", b"a");
    c.set("q", b"b");
    c.roundtrip(b"get q/open\r\n", b"VALUE q/open 0 1\r\na\r\nEND\r\n");
    let mut other = Conn::connect(&s);
    other.send(b"shutdown\r\n");
    other.expect_closed();
    let status = s.wait_exit();
    assert!(status.success(), "exit status {status}");
    s.start_again();
    let mut c = Conn::connect(&s);
    assert_eq!(c.drain("q"), vec![b"a".to_vec(), b"b".to_vec()]);
}
