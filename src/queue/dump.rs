//! `tern export` / `tern import`: every queue, cursor and failed read as one portable stream,
//! to move data between versions (whatever their on-disk formats) and machines.
//!
//! The stream is lines of text, each record's payload following its line as raw bytes:
//!
//! ```text
//! tern-export 1
//! queue <queue>
//! item <queue> <id> <flags> <expires_ms|never> <enqueued_ms> <len>⏎<len bytes>⏎
//! cursor <queue> <cursor> <position>
//! failed <queue> <cursor> <id> <flags> <expires_ms|never> <enqueued_ms> <len>⏎<len bytes>⏎
//! end <records>
//! ```
//!
//! Ids are kept, so cursor positions stay right and imported queues keep their order. Export
//! reads a stopped server's directory; import fills a directory that has no queues yet.

use super::disk::{self, generation, Disk, Record};
use super::item::Item;
use super::{Config, Error};
use std::io::{BufRead, Write};

const HEADER: &str = "tern-export 1";

/// What was moved.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub queues: u64,
    pub items: u64,
    pub cursors: u64,
    pub failed_reads: u64,
}

fn bad(message: impl Into<String>) -> Error {
    Error::Export(message.into())
}

fn open(config: &Config, dir: std::path::PathBuf) -> Result<Disk, Error> {
    Disk::open(dir, config.cache_bytes, config.sled_flushes())
}

/// Writes the whole content of the data directory of `config` to `out`.
pub fn export(config: &Config, out: &mut impl Write) -> Result<Summary, Error> {
    if !generation::exists(&config.path) {
        let message = format!("{} holds no tern data", config.path.display());
        return Err(Error::Io(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            message,
        )));
    }
    let mut queues = disk::exported(&config.path, config.cache_bytes)?;
    let mut summary = Summary::default();
    writeln!(out, "{HEADER}")?;
    for queue in &mut queues {
        writeln!(out, "queue {}", queue.name)?;
        summary.queues += 1;
        for entry in &mut queue.items {
            let (id, record) = entry?;
            write_item(out, &format!("item {}", queue.name), &Item::new(id, record))?;
            summary.items += 1;
        }
    }
    for queue in &mut queues {
        for (name, position, failed) in &mut queue.cursors {
            writeln!(out, "cursor {} {name} {position}", queue.name)?;
            summary.cursors += 1;
            let prefix = format!("failed {} {name}", queue.name);
            for entry in failed {
                let (id, record) = entry?;
                write_item(out, &prefix, &Item::new(id, record))?;
                summary.failed_reads += 1;
            }
        }
    }
    writeln!(
        out,
        "end {}",
        summary.queues + summary.items + summary.cursors + summary.failed_reads
    )?;
    out.flush()?;
    Ok(summary)
}

fn write_item(out: &mut impl Write, prefix: &str, item: &Item) -> Result<(), Error> {
    let expires = item
        .expires_ms()
        .map_or_else(|| "never".to_string(), |ms| ms.to_string());
    let data = item.data();
    let (id, flags, enqueued, len) = (item.id(), item.flags(), item.enqueued_ms(), data.len());
    writeln!(out, "{prefix} {id} {flags} {expires} {enqueued} {len}")?;
    out.write_all(data)?;
    out.write_all(b"\n")?;
    Ok(())
}

/// Reads a stream written by [`export`] into the data directory of `config`, which must hold
/// no queues yet. Nothing is half-imported into a running server: it must be stopped. The
/// import fills a new database and switches to it only once complete, so an interrupted
/// import leaves the directory as it was.
pub fn import(config: &Config, input: &mut impl BufRead) -> Result<Summary, Error> {
    std::fs::create_dir_all(&config.path)?;
    let has_queues = Disk::open_current(&config.path, config.cache_bytes, config.sled_flushes())?
        .has_queues()?;
    let current = generation::current(&config.path)?;
    if has_queues {
        return Err(bad(format!(
            "{} already holds queues: import into an empty directory",
            config.path.display()
        )));
    }
    let next = generation::Next::after(&current)?;
    let mut disk = open(config, next.dir.clone())?;
    let summary = match read_export(&mut disk, input) {
        Ok(summary) => summary,
        Err(e) => {
            drop(disk);
            next.abandon();
            return Err(e);
        }
    };
    disk.write_out()?;
    drop(disk);
    next.commit()?;
    generation::remove(&current);
    Ok(summary)
}

/// Reads the export's records into `disk`.
fn read_export(disk: &mut Disk, input: &mut impl BufRead) -> Result<Summary, Error> {
    let mut line = String::new();
    input.read_line(&mut line)?;
    if line.trim_end() != HEADER {
        return Err(bad(format!(
            "not a tern export (expected {HEADER:?}, found {:?})",
            line.trim_end()
        )));
    }
    let mut summary = Summary::default();
    let mut max_id = None;
    loop {
        line.clear();
        if input.read_line(&mut line)? == 0 {
            return Err(bad("the export ends early: no `end` record"));
        }
        let fields: Vec<&str> = line.trim_end_matches('\n').split(' ').collect();
        match fields.as_slice() {
            ["queue", queue] => {
                disk.queue_log(queue)?;
                summary.queues += 1;
            }
            ["item", queue, rest @ ..] => {
                let (id, record) = read_item(input, rest)?;
                disk.queue_log(queue)?.append(id, &record)?;
                disk.write_out_if_large()?;
                max_id = max_id.max(Some(id));
                summary.items += 1;
            }
            ["cursor", queue, cursor, position] => {
                let position: u64 = position
                    .parse()
                    .map_err(|_| bad(format!("bad record {line:?}")))?;
                disk.cursor_log(queue, cursor)?.save_position(position)?;
                max_id = max_id.max(position.checked_sub(1));
                summary.cursors += 1;
            }
            ["failed", queue, cursor, rest @ ..] => {
                let (id, record) = read_item(input, rest)?;
                disk.cursor_log(queue, cursor)?.failed.append(id, &record)?;
                max_id = max_id.max(Some(id));
                summary.failed_reads += 1;
            }
            ["end", count] => {
                let expected =
                    summary.queues + summary.items + summary.cursors + summary.failed_reads;
                if count.parse() != Ok(expected) {
                    return Err(bad(format!(
                        "the export says {count} records, {expected} were read"
                    )));
                }
                break;
            }
            _ => return Err(bad(format!("bad record {:?}", line.trim_end()))),
        }
    }
    // New ids continue above every imported one.
    if let Some(max_id) = max_id {
        disk.raise_ids_above(max_id)?;
    }
    Ok(summary)
}

/// `<id> <flags> <expires_ms|never> <enqueued_ms> <len>` then the payload and a newline.
fn read_item(input: &mut impl BufRead, fields: &[&str]) -> Result<(u64, Record), Error> {
    let number = |text: &str| {
        text.parse::<u64>()
            .map_err(|_| bad(format!("bad number {text:?}")))
    };
    let [id, flags, expires, enqueued, len] = fields else {
        return Err(bad(format!("bad item fields {fields:?}")));
    };
    let flags = u32::try_from(number(flags)?).map_err(|_| bad("flags out of range"))?;
    let expires = match *expires {
        "never" => None,
        ms => Some(number(ms)?),
    };
    let len = usize::try_from(number(len)?).map_err(|_| bad("length out of range"))?;
    let mut data = vec![0; len.min(64 * 1024 * 1024)];
    if data.len() != len {
        return Err(bad("item too large"));
    }
    input.read_exact(&mut data)?;
    let mut newline = [0u8; 1];
    input.read_exact(&mut newline)?;
    if newline != *b"\n" {
        return Err(bad("item not followed by a newline"));
    }
    Ok((
        number(id)?,
        Record::new(flags, expires, number(enqueued)?, &data),
    ))
}
