//! Migration of a format 1 data directory to format 2 survives `kill -9` at any moment.
//!
//! The test writes a format 1 directory itself, with the `sled` crate, laid out as earlier
//! builds left it (see `tests/fixtures/format1`): `CURRENT` naming `store-1/`, a sled database
//! holding a tree `q.<queue>` per queue (key: item id, big-endian u64; value: `flags u32 |
//! expires_ms u64 (u64::MAX = never) | enqueued_ms u64 | payload`), a `meta` tree with
//! `format` = 1, an `id-base`, a cursor position `c.alpha.c` and a failed read in
//! `f.alpha.c`. It is large enough (200 000 items, about 60 MB) that migrating it takes a
//! while, so the kills below land before, during and right after the copy.
//!
//! The server is killed at moments chosen by what it has done, not by the clock alone: as
//! soon as it logs that it migrates, as soon as `store-2/` appears, once the new segments
//! hold some, half, and nearly all of the items, and as soon as `CURRENT` names `store-2`.
//! After each kill the directory must name an existing database. A final start must then
//! serve every item of every queue exactly once, in order, with its bytes and flags; the
//! cursor from its saved position, its failed read first; new items after every old one.

mod common;

use common::{value_reply, Conn, Server};
use std::fs::{self, File};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Queues and how many items each holds; items are written interleaved, as clients would.
const QUEUES: [(&str, usize); 3] = [("alpha", 100_000), ("beta", 80_000), ("gamma", 20_000)];
/// Format 1 ids were `id-base + generate_id()`; a base as a compaction or import leaves.
const ID_BASE: u64 = 3_000_000_000;
/// Cursor `alpha.c` has read alpha's items below this index.
const CURSOR_AT: usize = 99_000;
/// Cursor `alpha.c` opened alpha's item of this index and aborted it: a failed read.
const FAILED: usize = 98_500;
const NEVER: u64 = u64::MAX;
/// 2100-01-01, in unix ms: an expiry the test never reaches.
const YEAR_2100_MS: u64 = 4_102_444_800_000;

/// splitmix64: the deterministic source of every item's length, flags and bytes.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Item `i` of queue number `q`: flags, expiry (unix ms or `NEVER`), payload. The payload
/// starts with `<queue>#<i>#` and is 100–2000 bytes (mostly short, one in ten long).
fn item(q: usize, i: usize) -> (u32, u64, Vec<u8>) {
    let h = mix(((q as u64) << 32) | i as u64);
    let len = if h.is_multiple_of(10) {
        100 + (h >> 8) % 1901
    } else {
        100 + (h >> 8) % 201
    } as usize;
    let flags = match i % 7 {
        0 => 0,
        1 => u32::MAX,
        _ => (h >> 32) as u32,
    };
    let expires = if i % 50 == 3 { YEAR_2100_MS } else { NEVER };
    let mut data = format!("{}#{i}#", QUEUES[q].0).into_bytes();
    let mut x = h;
    while data.len() < len {
        x = mix(x);
        data.extend_from_slice(&x.to_le_bytes());
    }
    data.truncate(len);
    // Bytes a text protocol might trip on, at a place that varies.
    let at = 20 + (h % 60) as usize;
    data[at..at + 4].copy_from_slice(b"\r\n\0 ");
    (flags, expires, data)
}

fn record(flags: u32, expires: u64, enqueued: u64, data: &[u8]) -> Vec<u8> {
    let mut stored = Vec::with_capacity(20 + data.len());
    stored.extend_from_slice(&flags.to_be_bytes());
    stored.extend_from_slice(&expires.to_be_bytes());
    stored.extend_from_slice(&enqueued.to_be_bytes());
    stored.extend_from_slice(data);
    stored
}

/// Writes the format 1 directory into `data` (emptied first); returns its payload bytes.
fn write_format1(data: &Path) -> u64 {
    for entry in fs::read_dir(data).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            fs::remove_dir_all(path).unwrap();
        } else {
            fs::remove_file(path).unwrap();
        }
    }
    fs::write(data.join("CURRENT"), "store-1\n").unwrap();
    let db = sled::open(data.join("store-1")).unwrap();
    let meta = db.open_tree("meta").unwrap();
    meta.insert("format", &1u64.to_be_bytes()[..]).unwrap();
    meta.insert("id-base", &ID_BASE.to_be_bytes()[..]).unwrap();
    // Ids as format 1 gave them out, interleaved across the queues in proportion to their
    // sizes as clients would have set them; some skipped, as deleted queues' items left them.
    let total: usize = QUEUES.iter().map(|(_, n)| n).sum();
    let mut ids: Vec<Vec<u64>> = QUEUES.iter().map(|(_, n)| Vec::with_capacity(*n)).collect();
    for k in 0..total {
        let q = (0..QUEUES.len())
            .filter(|&q| ids[q].len() < QUEUES[q].1)
            .min_by_key(|&q| ids[q].len() * total / QUEUES[q].1)
            .unwrap();
        if k % 13 == 5 {
            db.generate_id().unwrap();
        }
        ids[q].push(ID_BASE + db.generate_id().unwrap());
    }
    // The queues' trees, written side by side (sled takes concurrent writers).
    let bytes: u64 = std::thread::scope(|scope| {
        let writers: Vec<_> = ids
            .iter()
            .enumerate()
            .map(|(q, ids)| {
                let tree = db.open_tree(format!("q.{}", QUEUES[q].0)).unwrap();
                scope.spawn(move || {
                    let mut bytes = 0;
                    for (chunk, ids) in ids.chunks(1000).enumerate() {
                        let mut batch = sled::Batch::default();
                        for (j, &id) in ids.iter().enumerate() {
                            let (flags, expires, data) = item(q, chunk * 1000 + j);
                            bytes += data.len() as u64;
                            // Enqueue times that grow with the ids.
                            let enqueued = 1_700_000_000_000 + (id - ID_BASE);
                            batch.insert(
                                &id.to_be_bytes()[..],
                                record(flags, expires, enqueued, &data),
                            );
                        }
                        tree.apply_batch(batch).unwrap();
                    }
                    bytes
                })
            })
            .collect();
        writers.into_iter().map(|w| w.join().unwrap()).sum()
    });
    let alpha_ids = &ids[0];
    meta.insert("c.alpha.c", &alpha_ids[CURSOR_AT].to_be_bytes()[..])
        .unwrap();
    let failed = db.open_tree("f.alpha.c").unwrap();
    let (flags, expires, data) = item(0, FAILED);
    failed
        .insert(
            &alpha_ids[FAILED].to_be_bytes()[..],
            record(
                flags,
                expires,
                1_700_000_000_000 + (alpha_ids[FAILED] - ID_BASE),
                &data,
            ),
        )
        .unwrap();
    db.flush().unwrap();
    bytes
}

/// When a start of the server is killed.
#[derive(Debug, Clone, Copy)]
enum Moment {
    /// This long after it was started.
    After(Duration),
    /// Once it has logged that it migrates.
    Logged,
    /// Once `store-2/` exists.
    NewStore,
    /// Once the new store's segments hold at least this many bytes.
    Segments(u64),
    /// Once `CURRENT` names `store-2`.
    Switched,
}

/// What was on disk right after a kill.
#[derive(Debug)]
struct AfterKill {
    /// Whether the moment was seen (rather than the migration having got past it first).
    seen: bool,
    current: String,
    segment_bytes: u64,
}

fn current(data: &Path) -> String {
    fs::read_to_string(data.join("CURRENT")).unwrap_or_default()
}

fn store_dirs(data: &Path) -> Vec<String> {
    let mut dirs: Vec<String> = fs::read_dir(data)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("store-"))
        .collect();
    dirs.sort();
    dirs
}

fn segment_bytes(store: &Path) -> u64 {
    fs::read_dir(store.join("segments"))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|entry| entry.metadata().ok())
                .map(|meta| meta.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Starts the binary on `data`, SIGKILLs it at `moment`, and reports what was left.
fn kill_at(server: &Server, moment: Moment, log: &Path) -> AfterKill {
    let data = server.data_dir();
    let out = File::create(log).unwrap();
    // Nothing connects to these starts: port 0, so that a port another test took meanwhile
    // can never make the bind fail before the moment comes.
    let mut child: Child = Command::new(env!("CARGO_BIN_EXE_tern"))
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--data")
        .arg(data)
        .stdin(Stdio::null())
        .stdout(Stdio::from(out.try_clone().unwrap()))
        .stderr(Stdio::from(out))
        .spawn()
        .unwrap();
    let started = Instant::now();
    let new_store = data.join("store-2");
    // A `store-2/` left by the previous kill is not the one this start builds: watch the new
    // one only once the server has said it removed the old.
    let mut leftover = new_store.exists() && current(data) == "store-1\n";
    let seen = loop {
        let switched = current(data) == "store-2\n";
        if leftover {
            leftover = !fs::read_to_string(log)
                .unwrap()
                .contains("removing store-2");
        }
        let reached = !leftover
            && match moment {
                Moment::After(delay) => started.elapsed() >= delay,
                Moment::Logged => fs::read_to_string(log).unwrap().contains("migrating"),
                Moment::NewStore => new_store.exists(),
                Moment::Segments(bytes) => segment_bytes(&new_store) >= bytes,
                Moment::Switched => switched,
            };
        if reached {
            break true;
        }
        if switched {
            // Past the moment already: kill it anyway, after the switch.
            break false;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "tern exited ({status}) before {moment:?}\n--- log ---\n{}",
                fs::read_to_string(log).unwrap()
            );
        }
        assert!(
            started.elapsed() < Duration::from_secs(100),
            "{moment:?} never came\n--- log ---\n{}",
            fs::read_to_string(log).unwrap()
        );
        std::thread::sleep(Duration::from_millis(1));
    };
    let segment_bytes = segment_bytes(&new_store);
    child.kill().unwrap();
    child.wait().unwrap();
    AfterKill {
        seen,
        current: current(data),
        segment_bytes,
    }
}

/// Sends `get <key>` for each expected item, `batch` per write, and expects exactly these
/// replies.
#[track_caller]
fn expect_items(c: &mut Conn, key: &str, items: impl IntoIterator<Item = (u32, Vec<u8>)>) {
    let mut items = items.into_iter().peekable();
    while items.peek().is_some() {
        let mut request = Vec::new();
        let mut reply = Vec::new();
        for (flags, data) in items.by_ref().take(256) {
            request.extend_from_slice(format!("get {key}\r\n").as_bytes());
            reply.extend(value_reply(key, flags, &data));
        }
        c.send(&request);
        c.expect(&reply);
    }
}

fn items_of(q: usize, range: std::ops::Range<usize>) -> impl Iterator<Item = (u32, Vec<u8>)> {
    range.map(move |i| {
        let (flags, _, data) = item(q, i);
        (flags, data)
    })
}

#[test]
fn kill9_during_migration_loses_nothing() {
    let began = Instant::now();
    // The harness's server only lends its data directory until the final start.
    let mut server = Server::start();
    assert!(server.stop().success());
    let payload_bytes = write_format1(server.data_dir());
    eprintln!(
        "format 1 directory written in {:.1} s",
        began.elapsed().as_secs_f64()
    );

    let moments = [
        Moment::After(Duration::from_millis(20)),
        Moment::After(Duration::from_millis(60)),
        Moment::Logged,
        Moment::NewStore,
        Moment::Segments(1),
        Moment::Segments(payload_bytes / 2),
        Moment::Segments(payload_bytes * 9 / 10),
        Moment::Switched,
    ];
    let logs = tempfile::tempdir().unwrap();
    let mut mid_migration = 0;
    let mut last = String::new();
    for (round, &moment) in moments.iter().enumerate() {
        let log = logs.path().join(format!("start-{round}.log"));
        let killed = kill_at(&server, moment, &log);
        let text = fs::read_to_string(&log).unwrap();
        eprintln!(
            "killed at {moment:?} after {:.1} s: {killed:?}",
            began.elapsed().as_secs_f64()
        );
        last.clone_from(&killed.current);
        // Either database is in use, and it is there.
        assert!(
            killed.current == "store-1\n" || killed.current == "store-2\n",
            "{killed:?}"
        );
        let in_use = server.data_dir().join(killed.current.trim());
        assert!(in_use.join("db").exists(), "{killed:?}: {in_use:?} is gone");
        if killed.current == "store-1\n" {
            // The old database is still whole: the next start migrates it again.
            assert!(!text.contains("migrated"), "{killed:?}\n{text}");
            if killed.seen && killed.segment_bytes > 0 {
                mid_migration += 1;
            }
        }
        if matches!(moment, Moment::NewStore | Moment::Segments(_)) && killed.seen {
            assert!(text.contains("migrating"), "{killed:?}\n{text}");
        }
    }
    // However fast the machine, the kills at 1 byte and at half the bytes came mid-copy.
    assert!(
        mid_migration >= 2,
        "only {mid_migration} kills mid-migration"
    );

    server.start_again();
    if last == "store-2\n" {
        // The migrated database was in use already: nothing is migrated again.
        assert!(!server.log().contains("migrating"), "{}", server.log());
    }
    eprintln!("served after {:.1} s", began.elapsed().as_secs_f64());
    // One database left, the migrated one, and CURRENT names it.
    assert_eq!(store_dirs(server.data_dir()), ["store-2"]);
    assert_eq!(current(server.data_dir()), "store-2\n");

    let mut c = Conn::connect(&server);
    // New items, set before anything is read: their ids must be above every old one.
    for (name, _) in QUEUES {
        c.set_flags(name, 42, format!("new in {name}").as_bytes());
    }
    // The cursor: its failed read first, then from its saved position on, then the new item.
    let (flags, _, data) = item(0, FAILED);
    expect_items(&mut c, "alpha.c", [(flags, data)]);
    expect_items(&mut c, "alpha.c", items_of(0, CURSOR_AT..QUEUES[0].1));
    expect_items(&mut c, "alpha.c", [(42, b"new in alpha".to_vec())]);
    c.roundtrip(b"get alpha.c\r\n", b"END\r\n");
    // A new cursor starts at the head.
    expect_items(&mut c, "beta.fresh/peek", items_of(1, 0..1));
    // Plain readers, a connection per queue: every item exactly once, in order, then the new
    // one, then nothing.
    let addr = server.addr();
    std::thread::scope(|scope| {
        for (q, (name, count)) in QUEUES.into_iter().enumerate() {
            scope.spawn(move || {
                let mut c = Conn::connect_addr(addr);
                expect_items(&mut c, name, items_of(q, 0..count));
                expect_items(&mut c, name, [(42, format!("new in {name}").into_bytes())]);
                c.roundtrip(format!("get {name}\r\n").as_bytes(), b"END\r\n");
            });
        }
    });
    // The cursor saw the new item after every old one, and nothing is left for it.
    c.roundtrip(b"get alpha.c\r\n", b"END\r\n");
    eprintln!("verified after {:.1} s", began.elapsed().as_secs_f64());
}
