//! What a database holds at start-up: every queue with its cursors, and the removal of what a
//! crash during `delete` left behind.

use super::record::id_of;
use super::{names, CursorLog, Disk, Error, ItemLog};
use std::collections::BTreeMap;

/// A queue found on disk.
pub(crate) struct Recovered {
    pub(crate) name: String,
    pub(crate) log: ItemLog,
    pub(crate) cursors: Vec<RecoveredCursor>,
}

/// A cursor found on disk.
pub(crate) struct RecoveredCursor {
    pub(crate) name: String,
    /// The next id it reads.
    pub(crate) position: u64,
    pub(crate) log: CursorLog,
}

impl Disk {
    /// Every queue and its cursors, sorted by name. Changes nothing.
    pub(crate) fn queues(&self) -> Result<Vec<Recovered>, Error> {
        Ok(self.scan()?.0)
    }

    /// Every queue and its cursors, sorted by name; removes cursors of queues that no longer
    /// exist and anything else a crash during `delete` left behind.
    pub(crate) fn recover(&self) -> Result<Vec<Recovered>, Error> {
        let (queues, orphans) = self.scan()?;
        for key in orphans {
            self.meta.remove(key)?;
        }
        for tree in self.db.tree_names() {
            if let Some((queue, _)) = names::parse_failed_tree(&tree) {
                if queues.binary_search_by(|q| q.name.cmp(&queue)).is_err() {
                    self.db.drop_tree(&tree)?;
                }
            }
        }
        Ok(queues)
    }

    /// The queues, and the `meta` keys of cursors that belong to none.
    fn scan(&self) -> Result<(Vec<Recovered>, Vec<sled::IVec>), Error> {
        let mut cursors: BTreeMap<String, Vec<(String, u64, sled::IVec)>> = BTreeMap::new();
        let mut orphans = Vec::new();
        for entry in self.meta.scan_prefix(names::CURSOR_PREFIX) {
            let (key, position) = entry?;
            match names::parse_cursor_key(&key) {
                Some((queue, cursor)) => {
                    cursors
                        .entry(queue)
                        .or_default()
                        .push((cursor, id_of(&position), key))
                }
                None => orphans.push(key),
            }
        }
        let mut queues = Vec::new();
        for name in self.engine.queue_names()? {
            let mut found = Vec::new();
            for (cursor, position, _) in cursors.remove(&name).unwrap_or_default() {
                found.push(RecoveredCursor {
                    log: self.cursor_log(&name, &cursor)?,
                    name: cursor,
                    position,
                });
            }
            queues.push(Recovered {
                log: self.queue_log(&name)?,
                name,
                cursors: found,
            });
        }
        queues.sort_by(|a, b| a.name.cmp(&b.name));
        orphans.extend(cursors.into_values().flatten().map(|(_, _, key)| key));
        Ok((queues, orphans))
    }
}
