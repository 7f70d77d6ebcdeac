//! A low-disk watermark: new items are refused while the data directory's filesystem has less
//! free space than the reserve.
//!
//! sled treats an I/O error such as ENOSPC as fatal: once one write fails, every later
//! operation of that `Db`, reads included, returns the same error until it is reopened. So
//! tern must never let sled run out of space. Refusing `set` below a reserve keeps room for
//! what reads, closes and cursor moves still write, and writes resume by themselves once
//! space comes back.

use super::Error;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// How often free space is measured at most, in milliseconds.
const CHECK_EVERY_MS: u64 = 50;

pub(crate) struct SpaceGuard {
    path: CString,
    reserve_bytes: u64,
    checked_at_ms: AtomicU64,
    low: AtomicBool,
}

impl SpaceGuard {
    pub(crate) fn new(path: &Path, reserve_bytes: u64) -> Result<SpaceGuard, Error> {
        let path = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| Error::Io(std::io::Error::other("data path contains a NUL byte")))?;
        Ok(SpaceGuard {
            path,
            reserve_bytes,
            checked_at_ms: AtomicU64::new(0),
            low: AtomicBool::new(false),
        })
    }

    /// `Err(DiskFull)` while free space is below the reserve.
    pub(crate) fn check(&self, now_ms: u64) -> Result<(), Error> {
        if self.reserve_bytes == 0 {
            return Ok(());
        }
        let checked = self.checked_at_ms.load(Ordering::Relaxed);
        if now_ms.saturating_sub(checked) >= CHECK_EVERY_MS
            && self
                .checked_at_ms
                .compare_exchange(checked, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let low = self
                .free_bytes()
                .is_some_and(|free| free < self.reserve_bytes);
            if low != self.low.swap(low, Ordering::Relaxed) {
                if low {
                    log::warn!("disk almost full: refusing new items until space returns");
                } else {
                    log::info!("disk space is back: accepting new items");
                }
            }
        }
        if self.low.load(Ordering::Relaxed) {
            Err(Error::DiskFull)
        } else {
            Ok(())
        }
    }

    /// Free bytes of the data directory's filesystem, as an unprivileged user may use them.
    pub(crate) fn free_bytes(&self) -> Option<u64> {
        // SAFETY: statvfs writes only into the zeroed struct we pass; the path is NUL-terminated.
        unsafe {
            let mut stat: libc::statvfs = std::mem::zeroed();
            if libc::statvfs(self.path.as_ptr(), &mut stat) != 0 {
                return None;
            }
            Some((stat.f_bavail as u64).saturating_mul(stat.f_frsize as u64))
        }
    }
}
