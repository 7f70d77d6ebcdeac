//! Tests with a real memcache client crate (`memcache` 0.17, ASCII protocol).
//!
//! Known limits of memcache 0.17.2's ASCII protocol, which these tests avoid:
//! - `Client::gets` sends `gets` and expects a CAS value in every VALUE line,
//!   which tern (like Kestrel) does not send: multi-key reads are tested raw.
//! - `Client::stats` stops at the first line (it breaks on `response != END`),
//!   so stats are tested raw too.
//! - It always sends flags 0; flags set by another client come back through
//!   `get::<(Vec<u8>, u32)>`.

mod common;

use common::*;
use memcache::{Client, ClientError, MemcacheError, ServerError};
use std::thread;
use std::time::{Duration, Instant};

fn client(s: &Server) -> Client {
    let url = format!(
        "memcache://127.0.0.1:{}?protocol=ascii&timeout=10",
        s.port()
    );
    Client::connect(url.as_str()).expect("memcache client connects")
}

#[test]
fn version() {
    let s = Server::start();
    let c = client(&s);
    let v = c.version().unwrap();
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].1, version_text());
}

#[test]
fn set_get_strings_fifo() {
    let s = Server::start();
    let c = client(&s);
    c.set("jobs", "first", 0).unwrap();
    c.set("jobs", "second", 0).unwrap();
    c.set("jobs", String::from("third"), 0).unwrap();
    assert_eq!(c.get::<String>("jobs").unwrap().as_deref(), Some("first"));
    assert_eq!(c.get::<String>("jobs").unwrap().as_deref(), Some("second"));
    assert_eq!(c.get::<String>("jobs").unwrap().as_deref(), Some("third"));
    assert_eq!(c.get::<String>("jobs").unwrap(), None);
}

#[test]
fn numbers_and_bytes_round_trip() {
    let s = Server::start();
    let c = client(&s);
    c.set("n", -42i64, 0).unwrap();
    c.set("n", 3.5f64, 0).unwrap();
    c.set("n", true, 0).unwrap();
    assert_eq!(c.get::<i64>("n").unwrap(), Some(-42));
    assert_eq!(c.get::<f64>("n").unwrap(), Some(3.5));
    assert_eq!(c.get::<bool>("n").unwrap(), Some(true));
    let mut all: Vec<u8> = (0..=255u8).collect();
    all.extend_from_slice(b"\r\nEND\r\n");
    c.set("bin", &all[..], 0).unwrap();
    assert_eq!(c.get::<Vec<u8>>("bin").unwrap(), Some(all));
}

#[test]
fn one_mib_value() {
    let s = Server::start();
    let c = client(&s);
    let data = payload(1 << 20, 11);
    c.set("big", &data[..], 0).unwrap();
    assert_eq!(c.get::<Vec<u8>>("big").unwrap(), Some(data));
}

#[test]
fn flags_set_by_raw_client_come_back() {
    let s = Server::start();
    let mut raw = Conn::connect(&s);
    raw.set_flags("typed", 12345, b"payload");
    let c = client(&s);
    let got: Option<(Vec<u8>, u32)> = c.get("typed").unwrap();
    assert_eq!(got, Some((b"payload".to_vec(), 12345)));
}

#[test]
fn reliable_read_with_option_keys() {
    // The client checks that the VALUE line echoes the requested key exactly;
    // this only works because tern echoes options too.
    let s = Server::start();
    let c = client(&s);
    c.set("work", "a", 0).unwrap();
    c.set("work", "b", 0).unwrap();
    assert_eq!(c.get::<String>("work/open").unwrap().as_deref(), Some("a"));
    assert_eq!(c.get::<String>("work/peek").unwrap().as_deref(), Some("b"));
    assert_eq!(c.get::<String>("work/abort").unwrap(), None);
    assert_eq!(
        c.get::<String>("work/close/open").unwrap().as_deref(),
        Some("a")
    );
    assert_eq!(
        c.get::<String>("work/open/close").unwrap().as_deref(),
        Some("b")
    );
    assert_eq!(c.get::<String>("work/close").unwrap(), None);
    assert_eq!(c.get::<String>("work").unwrap(), None);
}

#[test]
fn blocking_get_with_timeout() {
    let s = Server::start();
    let c = client(&s);
    let t0 = Instant::now();
    assert_eq!(c.get::<String>("idle/t=300").unwrap(), None);
    assert!(t0.elapsed() >= Duration::from_millis(250));

    let port = s.port();
    let mut monitor = Conn::connect(&s);
    let producer = thread::spawn(move || {
        // Set once the reader below is waiting.
        monitor.wait_stat("queue_idle_waiters", "1");
        let url = format!("memcache://127.0.0.1:{port}?protocol=ascii&timeout=10");
        let p = Client::connect(url.as_str()).unwrap();
        p.set("idle", "late", 0).unwrap();
    });
    assert_eq!(
        c.get::<String>("idle/t=8000").unwrap().as_deref(),
        Some("late")
    );
    producer.join().unwrap();
}

#[test]
fn delete_and_flush_all() {
    let s = Server::start();
    let c = client(&s);
    assert!(!c.delete("nope").unwrap());
    c.set("q", "1", 0).unwrap();
    assert!(c.delete("q").unwrap());
    assert!(!c.delete("q").unwrap());
    c.set("a", "1", 0).unwrap();
    c.set("b", "2", 0).unwrap();
    c.flush().unwrap();
    assert_eq!(c.get::<String>("a").unwrap(), None);
    assert_eq!(c.get::<String>("b").unwrap(), None);
    c.set("a", "3", 0).unwrap();
    c.flush_with_delay(5).unwrap();
    assert_eq!(c.get::<String>("a").unwrap(), None);
}

#[test]
fn expiration() {
    let s = Server::start();
    let c = client(&s);
    c.set("e", "short", 1).unwrap();
    c.set("e", "long", 3600).unwrap();
    thread::sleep(Duration::from_millis(2100));
    assert_eq!(c.get::<String>("e").unwrap().as_deref(), Some("long"));
    assert_eq!(c.get::<String>("e").unwrap(), None);
}

#[track_caller]
fn assert_client_error(r: Result<impl std::fmt::Debug, MemcacheError>, want: &str) {
    match r {
        Err(MemcacheError::ClientError(ClientError::Error(msg))) => assert_eq!(msg, want),
        other => panic!("expected ClientError({want:?}), got {other:?}"),
    }
}

#[test]
fn client_errors_surface_and_connection_keeps_working() {
    let s = Server::start();
    let c = client(&s);
    assert_client_error(
        c.get::<String>("bad$name"),
        "CLIENT_ERROR bad queue name\r\n",
    );
    assert_eq!(c.version().unwrap()[0].1, version_text());
    assert_client_error(
        c.get::<String>("q/peek/open"),
        "CLIENT_ERROR bad get options\r\n",
    );
    c.set("q", "x", 0).unwrap();
    assert_eq!(c.get::<String>("q/open").unwrap().as_deref(), Some("x"));
    assert_client_error(
        c.get::<String>("q/open"),
        "CLIENT_ERROR close current item first\r\n",
    );
    assert_eq!(c.get::<String>("q/close").unwrap(), None);
    // set to a cursor name; the data block is discarded, the client stays in sync
    assert_client_error(c.set("q.c", "data", 0), "CLIENT_ERROR bad queue name\r\n");
    c.set("q", "y", 0).unwrap();
    assert_eq!(c.get::<String>("q").unwrap().as_deref(), Some("y"));
}

#[test]
fn too_large_value_is_a_server_error_and_connection_keeps_working() {
    let s = Server::start_with(&["--max-item-size", "1000"]);
    let c = client(&s);
    let big = vec![b'x'; 1001];
    match c.set("q", &big[..], 0) {
        Err(MemcacheError::ServerError(ServerError::Error(msg))) => {
            assert_eq!(msg, "SERVER_ERROR object too large for cache\r\n")
        }
        other => panic!("expected a ServerError, got {other:?}"),
    }
    c.set("q", &big[..1000], 0).unwrap();
    assert_eq!(c.get::<Vec<u8>>("q").unwrap(), Some(big[..1000].to_vec()));
    assert_eq!(c.get::<Vec<u8>>("q").unwrap(), None);
}

#[test]
fn producers_and_consumers_with_clients() {
    let s = Server::start();
    let port = s.port();
    let url = format!("memcache://127.0.0.1:{port}?protocol=ascii&timeout=10");
    let producers: Vec<_> = (0..3)
        .map(|p| {
            let url = url.clone();
            thread::spawn(move || {
                let c = Client::connect(url.as_str()).unwrap();
                for i in 0..50 {
                    c.set("tasks", format!("{p}-{i}"), 0).unwrap();
                }
            })
        })
        .collect();
    let consumers: Vec<_> = (0..2)
        .map(|_| {
            let url = url.clone();
            thread::spawn(move || {
                let c = Client::connect(url.as_str()).unwrap();
                let mut got = Vec::new();
                while let Some(v) = c.get::<String>("tasks/t=3000/close/open").unwrap() {
                    got.push(v);
                }
                got
            })
        })
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    let mut all = Vec::new();
    for h in consumers {
        all.extend(h.join().unwrap());
    }
    let c = client(&s);
    while let Some(v) = c.get::<String>("tasks").unwrap() {
        all.push(v);
    }
    all.sort();
    let n = all.len();
    all.dedup();
    assert_eq!(n, all.len(), "duplicates");
    assert_eq!(n, 150, "lost items");
}
