//! tern: a durable message-queue server speaking the memcache text protocol, stored in sled.
//!
//! Dependencies point one way: `server` → `protocol` and `queue`. `protocol` (bytes ↔
//! commands) knows nothing of storage or sockets; `queue` (the sled store) knows nothing of
//! sockets or the wire; `server` glues them and alone knows the async runtime. `top` (the
//! `tern top` view) is a client of a running server's memcache port and imports none of them.

pub mod protocol;
pub mod queue;
pub mod server;
pub mod top;

/// tern's version, as `version` and `stats` report it (`tern-<semver>`).
pub const VERSION: &str = concat!("tern-", env!("CARGO_PKG_VERSION"));
