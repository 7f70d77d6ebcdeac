//! A cursor's durable part: [`CursorLog`], its saved position and its failed reads
//! ([`FailedLog`]: copies of items it gave up on, one sled key per item keyed by the original
//! id, in a tree per cursor; there are few of them, and each is read and removed alone).

use super::engine::OutsideWrites;
use super::record::{id_of, key, Record};
use super::Error;
use sled::Transactional;

/// Keys removed per sled batch.
const REMOVE_CHUNK: usize = 4096;

/// A cursor's failed reads, by original id.
pub(crate) struct FailedLog {
    db: sled::Db,
    tree: sled::Tree,
    outside: OutsideWrites,
}

impl FailedLog {
    pub(super) fn open(
        db: &sled::Db,
        name: &str,
        outside: OutsideWrites,
    ) -> Result<FailedLog, Error> {
        Ok(FailedLog {
            db: db.clone(),
            tree: db.open_tree(name)?,
            outside,
        })
    }

    pub(crate) fn append(&self, id: u64, record: &Record) -> Result<(), Error> {
        self.tree.insert(key(id), record.stored())?;
        self.outside.note();
        Ok(())
    }

    pub(crate) fn remove(&self, id: u64) -> Result<(), Error> {
        self.tree.remove(key(id))?;
        self.outside.note();
        Ok(())
    }

    /// Every failed read, in id order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = Result<(u64, Record), Error>> + 'static {
        items_of(&self.tree)
    }

    pub(crate) fn len(&self) -> u64 {
        self.tree.len() as u64
    }

    /// Removes every failed read whose id `keep` rejects, in bounded batches.
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
        self.outside.note();
        Ok(())
    }

    fn destroy(self) -> Result<(), Error> {
        self.db.drop_tree(self.tree.name())?;
        self.outside.note();
        Ok(())
    }
}

/// The items of a tree keyed by id (failed reads; format 1's queues too), in id order.
pub(super) fn items_of(tree: &sled::Tree) -> impl Iterator<Item = Result<(u64, Record), Error>> {
    tree.iter().map(|entry| {
        let (key, value) = entry?;
        Ok((id_of(&key), Record::from_sled(value)))
    })
}

/// A cursor's durable part: its saved position and its failed reads (copies keyed by their
/// original ids, open ones included).
pub(crate) struct CursorLog {
    meta: sled::Tree,
    position_key: Vec<u8>,
    pub(crate) failed: FailedLog,
}

impl CursorLog {
    pub(super) fn new(meta: &sled::Tree, position_key: Vec<u8>, failed: FailedLog) -> CursorLog {
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
        self.failed.outside.note();
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
                failed.insert(&id_key, record.stored())?;
                Ok(())
            })
            .map_err(Error::from)?;
        self.failed.outside.note();
        Ok(())
    }

    /// Deletes the cursor: its position and its failed reads.
    pub(crate) fn destroy(self) -> Result<(), Error> {
        self.meta.remove(&self.position_key)?;
        self.failed.outside.note();
        self.failed.destroy()
    }
}
