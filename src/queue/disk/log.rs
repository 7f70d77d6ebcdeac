//! [`ItemLog`]: the items of one queue, or the failed reads of one cursor, addressed by id;
//! and [`CursorLog`]: where a cursor stands, with its failed reads.

use super::record::{self, id_of, key, Record};
use super::snapshot::Counts;
use super::Error;
use sled::Transactional;

/// Keys removed per sled batch, so emptying a deep queue never needs one huge batch.
const REMOVE_CHUNK: usize = 4096;

/// Items addressed by id, in id order: one sled tree.
#[derive(Clone)]
pub(crate) struct ItemLog {
    db: sled::Db,
    tree: sled::Tree,
}

impl ItemLog {
    pub(super) fn open(db: &sled::Db, name: &str) -> Result<ItemLog, Error> {
        Ok(ItemLog {
            db: db.clone(),
            tree: db.open_tree(name)?,
        })
    }

    /// Stores `record` as item `id`.
    pub(crate) fn append(&self, id: u64, record: &Record) -> Result<(), Error> {
        self.tree.insert(key(id), record.stored().clone())?;
        Ok(())
    }

    /// Stores `record` as item `id` in every log, atomically: all or none (a fanout).
    pub(crate) fn append_to_all(logs: &[ItemLog], id: u64, record: &Record) -> Result<(), Error> {
        if let [only] = logs {
            return only.append(id, record);
        }
        let trees: Vec<&sled::Tree> = logs.iter().map(|log| &log.tree).collect();
        let key = key(id);
        trees
            .as_slice()
            .transaction(|trees| {
                for tree in trees {
                    tree.insert(&key, record.stored().clone())?;
                }
                Ok(())
            })
            .map_err(Error::from)
    }

    pub(crate) fn get(&self, id: u64) -> Result<Option<Record>, Error> {
        Ok(self.tree.get(key(id))?.map(Record::from_stored))
    }

    /// Removes item `id` and returns it.
    pub(crate) fn take(&self, id: u64) -> Result<Option<Record>, Error> {
        Ok(self.tree.remove(key(id))?.map(Record::from_stored))
    }

    pub(crate) fn remove(&self, id: u64) -> Result<(), Error> {
        self.tree.remove(key(id))?;
        Ok(())
    }

    /// Items with ids in `from..to`, in order.
    pub(crate) fn range(
        &self,
        from: u64,
        to: u64,
    ) -> impl Iterator<Item = Result<(u64, Record), Error>> + '_ {
        // An empty range where `to` is not past `from` (sled wants ordered bounds).
        self.tree
            .range(key(from)..key(to.max(from)))
            .map(|entry| decode(entry?))
    }

    /// Every item, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = Result<(u64, Record), Error>> + '_ {
        self.tree.iter().map(|entry| decode(entry?))
    }

    /// Ids from `from` on, in order, without reading the items.
    pub(crate) fn ids_from(&self, from: u64) -> impl Iterator<Item = Result<u64, Error>> + '_ {
        self.tree
            .range(key(from)..)
            .keys()
            .map(|key| Ok(id_of(&key?)))
    }

    /// Ids below `to`, in order, without reading the items.
    pub(crate) fn ids_below(&self, to: u64) -> impl Iterator<Item = Result<u64, Error>> + '_ {
        self.tree
            .range(..key(to))
            .keys()
            .map(|key| Ok(id_of(&key?)))
    }

    /// The highest id stored.
    pub(crate) fn last_id(&self) -> Result<Option<u64>, Error> {
        Ok(self.tree.last()?.map(|(key, _)| id_of(&key)))
    }

    /// The enqueue time of the newest item stored; 0 if none.
    pub(crate) fn last_enqueued_ms(&self) -> Result<u64, Error> {
        Ok(self
            .tree
            .last()?
            .map_or(0, |(_, stored)| Record::from_stored(stored).enqueued_ms()))
    }

    pub(crate) fn len(&self) -> u64 {
        self.tree.len() as u64
    }

    /// Removes every item whose id `keep` rejects, in bounded batches.
    pub(crate) fn retain(&self, keep: impl Fn(u64) -> bool) -> Result<(), Error> {
        let mut batch = sled::Batch::default();
        let mut pending = 0;
        for key in self.tree.iter().keys() {
            let key = key?;
            if keep(id_of(&key)) {
                continue;
            }
            batch.remove(key);
            pending += 1;
            if pending == REMOVE_CHUNK {
                self.tree.apply_batch(std::mem::take(&mut batch))?;
                pending = 0;
            }
        }
        self.tree.apply_batch(batch)?;
        Ok(())
    }

    /// Counts by reading every item (the recovery scan after a crash): items, payload bytes,
    /// and for each cursor position how many items are at or after it.
    pub(crate) fn count(&self, cursors: &[(&str, u64)]) -> Result<Counts, Error> {
        let mut counts = Counts::default();
        let mut positions: Vec<u64> = cursors.iter().map(|c| c.1).collect();
        positions.sort_unstable();
        let mut remaining = vec![0u64; positions.len()];
        for entry in self.tree.iter() {
            let (key, value) = entry?;
            counts.items += 1;
            counts.bytes += record::payload_len(&value);
            // Cursors at or before this id still have it to read.
            let behind = positions.partition_point(|&p| p <= id_of(&key));
            for count in &mut remaining[..behind] {
                *count += 1;
            }
        }
        for (name, position) in cursors {
            let index = positions.partition_point(|&p| p < *position);
            counts.remaining.insert(name.to_string(), remaining[index]);
        }
        Ok(counts)
    }

    /// Deletes the log and everything in it.
    pub(crate) fn destroy(self) -> Result<(), Error> {
        self.db.drop_tree(self.tree.name())?;
        Ok(())
    }
}

fn decode((key, value): (sled::IVec, sled::IVec)) -> Result<(u64, Record), Error> {
    Ok((id_of(&key), Record::from_stored(value)))
}

/// A cursor's durable part: its saved position and its failed reads (copies keyed by their
/// original ids, open ones included).
pub(crate) struct CursorLog {
    meta: sled::Tree,
    position_key: Vec<u8>,
    pub(crate) failed: ItemLog,
}

impl CursorLog {
    pub(super) fn new(meta: &sled::Tree, position_key: Vec<u8>, failed: ItemLog) -> CursorLog {
        CursorLog {
            meta: meta.clone(),
            position_key,
            failed,
        }
    }

    /// Records where the cursor stands: the next id it reads.
    pub(crate) fn save_position(&self, position: u64) -> Result<(), Error> {
        self.meta
            .insert(self.position_key.as_slice(), &position.to_be_bytes())?;
        Ok(())
    }

    /// An open cursor read, made crash-safe: the cursor moves to `position` and the copy of
    /// item `id` enters the failed reads in one transaction, so after a crash the item is
    /// either unread or failed, never lost.
    pub(crate) fn open_read(&self, position: u64, id: u64, record: &Record) -> Result<(), Error> {
        let id_key = key(id);
        (&self.meta, &self.failed.tree)
            .transaction(|(meta, failed)| {
                meta.insert(self.position_key.as_slice(), &position.to_be_bytes())?;
                failed.insert(&id_key, record.stored().clone())?;
                Ok(())
            })
            .map_err(Error::from)
    }

    /// Deletes the cursor: its position and its failed reads.
    pub(crate) fn destroy(self) -> Result<(), Error> {
        self.meta.remove(&self.position_key)?;
        self.failed.destroy()
    }
}
