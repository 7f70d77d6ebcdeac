//! Which database is in use, and the crash-safe switch to a new one.
//!
//! Databases live in `<data>/store-<n>/`, and `<data>/CURRENT` names the one in use. A new
//! database (a compacted copy, an import, a later format's migration) is built in the next
//! `store-<n+1>/`, made durable, and only then named in `CURRENT` by an atomic rename. At
//! start-up any other `store-*` directory is an unfinished or superseded copy and is removed,
//! so `kill -9` at any moment leaves either the old database or the new one in use.

use super::{sync_tree, Error};
use std::fs::{self, File};
use std::path::{Path, PathBuf};

const CURRENT: &str = "CURRENT";
const PREFIX: &str = "store-";

/// Whether `data` holds a tern data directory at all.
pub(crate) fn exists(data: &Path) -> bool {
    data.join(CURRENT).exists()
}

/// The database directory `CURRENT` names (a fresh one if none), with leftovers removed.
pub(crate) fn current(data: &Path) -> Result<PathBuf, Error> {
    let name = match fs::read_to_string(data.join(CURRENT)) {
        Ok(text) => text.trim().to_string(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let name = format!("{PREFIX}1");
            write_current(data, &name)?;
            name
        }
        Err(e) => return Err(e.into()),
    };
    if number(&name).is_none() {
        let path = data.join(CURRENT);
        return Err(Error::Corrupt(format!(
            "{} names no database: {name:?}",
            path.display()
        )));
    }
    for entry in fs::read_dir(data)? {
        let entry_name = entry?.file_name();
        let entry_name = entry_name.to_string_lossy();
        if number(&entry_name).is_some() && entry_name != name {
            log::info!("removing {entry_name}, left over from an interrupted switch of databases");
            fs::remove_dir_all(data.join(entry_name.as_ref()))?;
        }
    }
    Ok(data.join(name))
}

/// The database after `current`, being built: in use only once [`Next::commit`] returns.
pub(crate) struct Next {
    data: PathBuf,
    name: String,
    pub(crate) dir: PathBuf,
}

impl Next {
    /// An empty directory for the database after `current` (under the same data directory).
    pub(crate) fn after(current: &Path) -> Result<Next, Error> {
        let data = current.parent().unwrap_or(Path::new(".")).to_path_buf();
        let current_name = current.file_name().unwrap_or_default().to_string_lossy();
        let name = format!("{PREFIX}{}", number(&current_name).unwrap_or(0) + 1);
        let dir = data.join(&name);
        if dir.exists() {
            fs::remove_dir_all(&dir)?;
        }
        Ok(Next { data, name, dir })
    }

    /// Makes every file of the new database durable, then puts it in use. Call once the
    /// database in `dir` is complete and flushed.
    pub(crate) fn commit(self) -> Result<(), Error> {
        sync_tree(&self.dir)?;
        write_current(&self.data, &self.name)
    }

    /// Gives up: removes what was built.
    pub(crate) fn abandon(self) {
        remove(&self.dir);
    }
}

/// Removes a database no longer in use (after a switch); at worst the next start does.
pub(crate) fn remove(dir: &Path) {
    if let Err(e) = fs::remove_dir_all(dir) {
        log::warn!("cannot remove {}: {}", dir.display(), e);
    }
}

fn number(name: &str) -> Option<u64> {
    name.strip_prefix(PREFIX)?.parse().ok()
}

/// Points `CURRENT` at `name`, atomically and durably.
fn write_current(data: &Path, name: &str) -> Result<(), Error> {
    let temporary = data.join("CURRENT.tmp");
    fs::write(&temporary, format!("{name}\n"))?;
    File::open(&temporary)?.sync_all()?;
    fs::rename(&temporary, data.join(CURRENT))?;
    File::open(data)?.sync_all()?;
    Ok(())
}
