//! Storage-layout probe: what one sled entry per item costs against several items per entry,
//! measured on sled alone (no tern, no network), to size the storage decision in
//! `benches/README.md` ("What limits RSS and start-up").
//!
//! ```text
//! cargo bench --bench layout                       # the table in benches/README.md (~5 min)
//! cargo bench --bench layout -- --items 100000     # a quick look
//! cargo bench --bench layout -- --rows 1024x256,128x2048   # only these rows
//! cargo bench --bench layout -- --commits 2000  # what one durable commit costs
//! ```
//!
//! Each row fills one tree with ITEMS payloads of SIZE bytes, PER of them in each sled value
//! (key = big-endian u64, in order, as tern's queue trees), with the cache tern uses by default
//! (16 MiB). The fill, each reopen and the drain run in fresh processes (this binary runs itself),
//! so each RSS is that of one process that did one thing.

use std::process::{Command, ExitCode};
use std::time::Instant;

const CACHE_BYTES: u64 = 16 << 20;

/// (payload size, payloads per sled value): one per item as format 1 stores them, an index
/// entry per item with the payload elsewhere (24 B values), 16 items packed per value, and
/// 256 KiB values, which sled writes as files of their own under `blobs/` (any value over a
/// quarter of its 512 KiB segment) instead of into its log.
const ROWS: [(u64, u64); 7] = [
    (1024, 1),
    (1024, 16),
    (1024, 256),
    (128, 1),
    (128, 16),
    (128, 2048),
    (24, 1),
];

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("child") {
        return match child(&args[1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("layout child: {error}");
                ExitCode::FAILURE
            }
        };
    }
    let mut items: u64 = 4 << 20;
    let mut rows = ROWS.to_vec();
    let mut commits = None;
    let mut rest = args.iter();
    let usage = || {
        eprintln!(
            "usage: cargo bench --bench layout -- [--items N] [--rows SIZExPER,...] [--commits N]"
        );
        ExitCode::FAILURE
    };
    while let Some(arg) = rest.next() {
        // cargo bench passes --bench to harness = false targets; anything else is ignored.
        match arg.as_str() {
            "--items" => match rest.next().and_then(|n| n.parse().ok()) {
                Some(n) => items = n,
                None => return usage(),
            },
            "--rows" => match rest.next().and_then(|list| parse_rows(list)) {
                Some(list) => rows = list,
                None => return usage(),
            },
            "--commits" => match rest.next().and_then(|n| n.parse().ok()) {
                Some(n) => commits = Some(n),
                None => return usage(),
            },
            _ => {}
        }
    }
    let result = match commits {
        Some(n) => commit_latency(n),
        None => table(items, &rows),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("layout: {error}");
            ExitCode::FAILURE
        }
    }
}

/// `1024x256,128x2048`: rows of (payload size, payloads per value).
fn parse_rows(list: &str) -> Option<Vec<(u64, u64)>> {
    list.split(',')
        .map(|row| {
            let (size, per) = row.split_once('x')?;
            Some((size.parse().ok()?, per.parse().ok().filter(|&p| p > 0)?))
        })
        .collect()
}

fn table(items: u64, rows: &[(u64, u64)]) -> Result<(), String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let dir = std::env::temp_dir().join(format!("tern-layout-{}", std::process::id()));
    println!("| payload | per sled value | sled entries | fill, items/s | RSS after fill | directory after fill | first reopen | RSS | later reopen | RSS | drain, items/s | directory after drain |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for &(size, per) in rows {
        let _ = std::fs::remove_dir_all(&dir);
        let mut cells = vec![
            format!("{size} B"),
            per.to_string(),
            items.div_ceil(per).to_string(),
        ];
        for step in ["fill", "open", "open", "drain"] {
            let out = Command::new(&me)
                .arg("child")
                .arg(step)
                .arg(&dir)
                .args([items.to_string(), size.to_string(), per.to_string()])
                .output()
                .map_err(|e| e.to_string())?;
            if !out.status.success() {
                return Err(String::from_utf8_lossy(&out.stderr).into_owned());
            }
            cells.extend(
                String::from_utf8_lossy(&out.stdout)
                    .trim_end()
                    .split('\t')
                    .map(str::to_owned),
            );
            if step == "fill" {
                cells.push(mib(dir_bytes(&dir)));
            }
        }
        cells.push(mib(dir_bytes(&dir)));
        println!("| {} |", cells.join(" | "));
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// What one durable commit of a 4 KiB batch costs: as format 1's group commit does it (a sled
/// insert, sled's flush, which ends in `sync_file_range`, then `fdatasync` of its log), and as an
/// append to a file of our own with one `fdatasync`. Prints p50 and p99 of each.
fn commit_latency(commits: usize) -> Result<(), String> {
    use std::io::Write;
    let dir = std::env::temp_dir().join(format!("tern-commits-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let batch = vec![b'x'; 4096];
    let db = sled::Config::new()
        .path(dir.join("sled"))
        .cache_capacity(CACHE_BYTES)
        .open()
        .map_err(|e| err(&e))?;
    let tree = db.open_tree("q").map_err(|e| err(&e))?;
    let log = std::fs::File::open(dir.join("sled").join("db")).map_err(|e| err(&e))?;
    let mut sled_us = Vec::with_capacity(commits);
    for key in 0..commits as u64 {
        let began = Instant::now();
        tree.insert(key.to_be_bytes(), &batch[..])
            .map_err(|e| err(&e))?;
        db.flush().map_err(|e| err(&e))?;
        log.sync_data().map_err(|e| err(&e))?;
        sled_us.push(began.elapsed().as_secs_f64() * 1e6);
    }
    let mut segment = std::fs::File::create(dir.join("segment")).map_err(|e| err(&e))?;
    let mut file_us = Vec::with_capacity(commits);
    for _ in 0..commits {
        let began = Instant::now();
        segment.write_all(&batch).map_err(|e| err(&e))?;
        segment.sync_data().map_err(|e| err(&e))?;
        file_us.push(began.elapsed().as_secs_f64() * 1e6);
    }
    let _ = std::fs::remove_dir_all(&dir);
    let quantiles = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        (v[v.len() / 2], v[v.len() * 99 / 100])
    };
    println!("| commit of 4 KiB | p50 | p99 |");
    println!("|---|---|---|");
    for (what, us) in [
        ("sled insert + flush + fdatasync (format 1)", sled_us),
        ("append + fdatasync (own file)", file_us),
    ] {
        let (p50, p99) = quantiles(us);
        println!("| {what} | {p50:.0} µs | {p99:.0} µs |");
    }
    Ok(())
}

/// One step in a fresh process; prints its cells separated by tabs.
fn child(args: &[String]) -> Result<(), String> {
    let [step, dir, items, size, per] = args else {
        return Err("child STEP DIR ITEMS SIZE PER".into());
    };
    let number = |s: &String| s.parse::<u64>().map_err(|e| e.to_string());
    let (items, size, per) = (number(items)?, number(size)?, number(per)?);
    let began = Instant::now();
    let db = sled::Config::new()
        .path(dir)
        .cache_capacity(CACHE_BYTES)
        .open()
        .map_err(|e| e.to_string())?;
    let tree = db.open_tree("q").map_err(|e| e.to_string())?;
    let opened = began.elapsed().as_secs_f64();
    match step.as_str() {
        "fill" => {
            let value = vec![b'x'; usize::try_from(size * per).map_err(|e| e.to_string())?];
            let began = Instant::now();
            for key in 0..items.div_ceil(per) {
                tree.insert(key.to_be_bytes(), &value[..])
                    .map_err(|e| e.to_string())?;
            }
            db.flush().map_err(|e| e.to_string())?;
            let rate = items as f64 / began.elapsed().as_secs_f64();
            println!("{rate:.0}\t{}", mib(rss()));
        }
        "open" => println!("{opened:.2} s\t{}", mib(rss())),
        "drain" => {
            let began = Instant::now();
            let mut values = 0;
            while tree.pop_min().map_err(|e| e.to_string())?.is_some() {
                values += 1;
            }
            db.flush().map_err(|e| e.to_string())?;
            if values != items.div_ceil(per) {
                return Err(format!(
                    "drained {values} values, filled {}",
                    items.div_ceil(per)
                ));
            }
            println!("{:.0}", items as f64 / began.elapsed().as_secs_f64());
        }
        _ => return Err(format!("unknown step {step}")),
    }
    Ok(())
}

fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(0, |kib| kib * 1024)
}

fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|entry| match entry.metadata() {
                    Ok(meta) if meta.is_dir() => dir_bytes(&entry.path()),
                    Ok(meta) => meta.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

fn mib(bytes: u64) -> String {
    format!("{} MiB", bytes >> 20)
}
