//! The async runtime seam: the only file that names async-std.
//!
//! async-std is discontinued upstream (its successor is smol); everything else in the server
//! is written against these names and the `futures-lite` I/O traits, so moving runtimes
//! touches this file alone.

pub use async_std::net::{TcpListener, TcpStream};
pub use async_std::task::{block_on, sleep, spawn, spawn_blocking};

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use std::io;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::os::fd::{AsRawFd, BorrowedFd};

/// Tasks per thread that [`on_every_thread`] spawns.
const TASKS_PER_THREAD: usize = 4;

/// Sets how many threads run connections (`None`: async-std's default, one per CPU). Call
/// before anything is spawned: async-std reads this when its executor starts.
pub fn set_threads(threads: Option<NonZeroUsize>) {
    if let Some(threads) = threads {
        std::env::set_var("ASYNC_STD_THREAD_COUNT", threads.to_string());
    }
}

/// Runs `f` on every thread of the runtime, as far as async-std allows: it cannot aim a task at
/// a thread, so this spawns several short tasks per thread. A woken thread that finds work
/// wakes another before running it, so idle threads all take some.
pub fn on_every_thread(f: fn()) {
    let threads = std::env::var("ASYNC_STD_THREAD_COUNT")
        .ok()
        .and_then(|n| n.parse().ok())
        .or_else(|| {
            std::thread::available_parallelism()
                .ok()
                .map(NonZeroUsize::get)
        })
        .unwrap_or(1);
    for _ in 0..threads * TASKS_PER_THREAD {
        spawn(async move { f() });
    }
}

/// A client's socket, as its connection reads and writes it: async-io's `Async` (the reactor
/// under async-std, and under smol), because async-std's `TcpStream` hides its `readable()`.
/// With it a connection whose last read drained the socket waits for more input instead of
/// reading into `EAGAIN` first, and the wake-up that brings input is not followed by a second,
/// spurious one: two system calls fewer per request at pipeline 1.
pub struct ClientSocket(async_io::Async<std::net::TcpStream>);

impl ClientSocket {
    /// Takes over an accepted stream (its descriptor is duplicated: async-std offers no
    /// infallible way to give it up). Fails when the process is out of descriptors.
    pub fn new(stream: TcpStream) -> io::Result<Self> {
        // SAFETY: `stream` owns this descriptor and outlives the borrow (async-std implements
        // no `AsFd` for its TcpStream, only `AsRawFd`).
        let fd = unsafe { BorrowedFd::borrow_raw(stream.as_raw_fd()) }.try_clone_to_owned()?;
        drop(stream);
        Ok(ClientSocket(async_io::Async::new(
            std::net::TcpStream::from(fd),
        )?))
    }

    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.get_ref().peer_addr()
    }

    /// Completes once input (or the end of it, or an error) is there to read.
    pub async fn readable(&self) -> io::Result<()> {
        self.0.readable().await
    }

    pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        (&self.0).read(buf).await
    }

    pub async fn write_all(&self, buf: &[u8]) -> io::Result<()> {
        (&self.0).write_all(buf).await
    }

    /// Shuts the sending side down (the client reads the end of the stream).
    pub async fn close(&self) -> io::Result<()> {
        (&self.0).close().await
    }
}
