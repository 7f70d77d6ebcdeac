//! Test harness: starts the real `tern` binary on a free loopback port with a temporary data
//! directory, and talks to it with raw bytes.
//!
//! * `server`: starting, stopping, signalling and killing the binary (`Server`), data
//!   directories and config files for it.
//! * `conn`: `Conn`, a raw-socket client that compares replies in exact bytes, and the
//!   request helpers built on it (`drain`, `expect_item`, `wait_stat`, …).
//! * `wire`: request and reply bytes (`set_req`, `value_reply`, `version_reply`, `payload`,
//!   `esc`, …).
//! * `clock`: `FakeClock`, the time a server started with `--clock-file` reads.
//! * `wait`: waiting for a condition with a safety-net bound (`wait_until`), `join_all`.
//! * `http`: `GET` over plain HTTP/1.1 (`--metrics`), and a scrape read into samples.
//!
//! Every test binary includes this module and uses part of it.

#![allow(dead_code, unused_imports)]

mod clock;
mod conn;
mod http;
mod server;
mod wait;
mod wire;

pub use clock::*;
pub use conn::*;
pub use http::*;
pub use server::*;
pub use wait::*;
pub use wire::*;
