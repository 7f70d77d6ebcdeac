//! Format 1 (a sled tree `q.<queue>` per queue, one key per item, the value a [`Record`]),
//! read once to migrate a data directory written by an earlier build.
//!
//! The migration builds the next database (`store-<n+1>/`) in format 2 beside the old one
//! and puts it in use through [`generation`]'s crash-safe switch: `kill -9` at any moment
//! leaves either the old database in use (the next start migrates again) or the new one.
//! Cursor positions and failed reads keep their keys and trees; ids stay what they were.

use super::failed::items_of;
use super::generation::{self, Next};
use super::{copy_tree, names, record, Disk, Error, Exported, ItemIter, Record};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Migrates the format 1 database in `dir` (the one in use); returns the new one's directory.
pub(super) fn migrate(dir: &Path, cache_bytes: u64) -> Result<PathBuf, Error> {
    let started = Instant::now();
    log::info!(
        "{} is in storage format 1: migrating it to format 2",
        dir.display()
    );
    let old = sled::Config::new()
        .path(dir)
        .cache_capacity(cache_bytes)
        .open()?;
    let next = Next::after(dir)?;
    let copied = (|| {
        let mut new = Disk::open(next.dir.clone(), cache_bytes, false)?;
        let items = copy(&old, &mut new)?;
        new.write_out()?;
        Ok::<_, Error>(items)
    })();
    let items = match copied {
        Ok(items) => items,
        Err(e) => {
            next.abandon();
            return Err(e);
        }
    };
    let new_dir = next.dir.clone();
    drop(old);
    next.commit()?;
    generation::remove(dir);
    log::info!(
        "migrated {} items to storage format 2 in {} ({:.1} s)",
        items,
        new_dir.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(new_dir)
}

/// Copies queues, cursor positions and failed reads; returns the items copied.
fn copy(old: &sled::Db, new: &mut Disk) -> Result<u64, Error> {
    let meta = old.open_tree("meta")?;
    let mut items = 0;
    for tree in old.tree_names() {
        if let Some(queue) = names::parse_queue_tree(&tree) {
            let log = new.queue_log(&queue)?;
            for entry in old.open_tree(&tree)?.iter() {
                let (key, value) = entry?;
                log.append(record::id_of(&key), &Record::from_sled(value))?;
                new.write_out_if_large()?;
                items += 1;
            }
        } else if names::parse_failed_tree(&tree).is_some() {
            copy_tree(&old.open_tree(&tree)?, &new.db.open_tree(&tree)?)?;
        }
    }
    for entry in meta.scan_prefix(names::CURSOR_PREFIX) {
        let (key, value) = entry?;
        new.meta.insert(key, value)?;
    }
    let id_base = meta
        .get(names::ID_BASE)?
        .map_or(0, |base| record::id_of(&base));
    // Above every id the old database gave out (its counter only grows).
    new.raise_ids_above(id_base + old.generate_id()?)?;
    Ok(items)
}

/// The queues of the format 1 database in `dir`, read as they are (for an export).
pub(super) fn exported(dir: &Path, cache_bytes: u64) -> Result<Vec<Exported>, Error> {
    let db = sled::Config::new()
        .path(dir)
        .cache_capacity(cache_bytes)
        .open()?;
    let meta = db.open_tree("meta")?;
    let mut queues = BTreeMap::new();
    for tree in db.tree_names() {
        if let Some(queue) = names::parse_queue_tree(&tree) {
            let items: ItemIter = Box::new(items_of(&db.open_tree(&tree)?));
            queues.insert(
                queue.clone(),
                Exported {
                    name: queue,
                    items,
                    cursors: Vec::new(),
                },
            );
        }
    }
    for entry in meta.scan_prefix(names::CURSOR_PREFIX) {
        let (key, position) = entry?;
        let Some((queue, cursor)) = names::parse_cursor_key(&key) else {
            continue;
        };
        if let Some(exported) = queues.get_mut(&queue) {
            let failed = db.open_tree(names::failed_tree(&queue, &cursor))?;
            let failed: ItemIter = Box::new(items_of(&failed));
            exported
                .cursors
                .push((cursor, record::id_of(&position), failed));
        }
    }
    Ok(queues.into_values().collect())
}
