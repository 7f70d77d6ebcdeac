//! The async runtime seam: the only file that names async-std.
//!
//! async-std is discontinued upstream (its successor is smol); everything else in the server
//! is written against these names and the `futures-lite` I/O traits, so moving runtimes
//! touches this file alone.

pub use async_std::net::{TcpListener, TcpStream};
pub use async_std::task::{block_on, sleep, spawn};
