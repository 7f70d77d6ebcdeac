//! Names of sled trees and `meta` keys. Queue and cursor names never contain `.` or a space,
//! so these never clash.

pub(crate) const CURSOR_PREFIX: &str = "c.";
const QUEUE_PREFIX: &str = "q.";
const FAILED_PREFIX: &str = "f.";

/// `meta` key: the format version of the database.
pub(crate) const FORMAT: &str = "format";
/// `meta` key: added to sled's generated ids (see `Disk::next_id`).
pub(crate) const ID_BASE: &str = "id-base";
/// `meta` key: the clean-shutdown snapshot of every queue's counters.
pub(crate) const SNAPSHOT: &str = "clean-shutdown";

pub(crate) fn failed_tree(queue: &str, cursor: &str) -> String {
    format!("{FAILED_PREFIX}{queue}.{cursor}")
}

pub(crate) fn cursor_key(queue: &str, cursor: &str) -> Vec<u8> {
    format!("{CURSOR_PREFIX}{queue}.{cursor}").into_bytes()
}

pub(crate) fn parse_queue_tree(tree: &[u8]) -> Option<String> {
    let name = std::str::from_utf8(tree.strip_prefix(QUEUE_PREFIX.as_bytes())?).ok()?;
    Some(name.to_string())
}

pub(crate) fn parse_failed_tree(tree: &[u8]) -> Option<(String, String)> {
    split_pair(tree.strip_prefix(FAILED_PREFIX.as_bytes())?)
}

pub(crate) fn parse_cursor_key(key: &[u8]) -> Option<(String, String)> {
    split_pair(key.strip_prefix(CURSOR_PREFIX.as_bytes())?)
}

fn split_pair(bytes: &[u8]) -> Option<(String, String)> {
    let text = std::str::from_utf8(bytes).ok()?;
    let (queue, cursor) = text.split_once('.')?;
    Some((queue.to_string(), cursor.to_string()))
}
