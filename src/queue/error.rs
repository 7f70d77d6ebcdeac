//! The store's errors. Expected outcomes (an empty queue) are `Ok(None)`, not errors.

pub use super::disk::StorageError;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The storage engine failed (an I/O error inside it, a bug it reports).
    #[error("storage failure: {0}")]
    Storage(StorageError),
    /// A file of the data directory could not be read or written.
    #[error("storage failure: {0}")]
    Io(#[from] std::io::Error),
    /// The data directory holds something that cannot be read back.
    #[error("data directory corrupt: {0}")]
    Corrupt(String),
    #[error(
        "data directory {path} has format version {found}; this tern reads version {expected}"
    )]
    Format {
        path: PathBuf,
        found: u64,
        expected: u64,
    },
    /// An import stream that is not a valid export.
    #[error("bad export: {0}")]
    Export(String),
    #[error("queue full")]
    QueueFull,
    #[error("disk full")]
    DiskFull,
    #[error("sync failure: {0}")]
    Sync(String),
}
