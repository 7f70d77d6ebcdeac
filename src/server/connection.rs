//! One client connection: buffered input, the parse → execute → reply loop, bounded memory.
//!
//! Input is read into one buffer that never holds more than the largest legal command (a
//! full-size `set`), because the parser rejects long lines and oversized blocks on their
//! header; a rejected block is skipped as it arrives instead of buffered. Replies of a
//! pipelined batch are gathered and written together, and written early once they pass
//! [`OUT_HIGH_WATER`], so a `get` of many large items never buffers them all.

use super::runtime::TcpStream;
use super::session::{Flow, Session};
use super::stats::bump;
use super::Shared;
use crate::protocol::{self, Reply};
use futures_lite::{AsyncReadExt, AsyncWriteExt, FutureExt};
use std::sync::Arc;

/// Bytes asked of the socket per read, and the buffer's resting size.
const READ_CHUNK: usize = 16 * 1024;
/// Commands a connection runs before it lets other tasks of its thread run.
const COMMANDS_PER_TURN: u32 = 16;
/// Reply bytes gathered before they are written out mid-batch.
pub(crate) const OUT_HIGH_WATER: usize = 64 * 1024;

/// The connection's input buffer: `buf[start..end]` is unread.
pub(crate) struct Input {
    stream: TcpStream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// The buffer never grows beyond this.
    limit: usize,
    /// Bytes still to drop as they arrive (a rejected data block).
    discard: u64,
    shared: Arc<Shared>,
}

impl Input {
    pub(crate) fn stream(&self) -> &TcpStream {
        &self.stream
    }

    fn pending(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            // A large item came and went: give its memory back.
            if self.buf.len() > 4 * READ_CHUNK {
                self.buf = vec![0; READ_CHUNK];
            }
        }
    }

    /// Drops discarded bytes that are already buffered; true if more are still to come.
    fn skip_discarded(&mut self) -> bool {
        let n = (self.pending().len() as u64).min(self.discard);
        self.discard -= n;
        self.consume(n as usize);
        self.discard > 0
    }

    /// Reads more input. `Ok(0)`: the client closed. Never grows past the limit: a full
    /// buffer that still holds no complete command cannot happen (the parser rejects first).
    async fn fill(&mut self) -> std::io::Result<usize> {
        if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else {
                let grown = (self.buf.len() * 2).min(self.limit).max(self.buf.len());
                self.buf.resize(grown, 0);
            }
        }
        if self.end == self.buf.len() {
            // Full with pipelined commands still to run: the caller runs them first.
            return Ok(usize::MAX);
        }
        let n = (&self.stream).read(&mut self.buf[self.end..]).await?;
        self.end += n;
        bump(&self.shared.counters.bytes_read, n as u64);
        Ok(n)
    }

    /// Completes when the client has gone; meanwhile keeps buffering what it sends (within
    /// the limit), so pipelined commands are not lost. Used while a `get` waits.
    pub(crate) async fn closed(&mut self) {
        loop {
            match self.fill().await {
                Ok(0) | Err(_) => return,
                Ok(usize::MAX) => return std::future::pending().await,
                Ok(_) => {}
            }
        }
    }
}

/// Serves one client until it quits, disconnects, or the server shuts down.
pub(crate) async fn connection_loop(stream: TcpStream, shared: Arc<Shared>) {
    let limit = shared.config.max_item_size as usize + protocol::MAX_LINE + 2 + READ_CHUNK;
    let mut input = Input {
        stream: stream.clone(),
        buf: vec![0; READ_CHUNK],
        start: 0,
        end: 0,
        limit,
        discard: 0,
        shared: shared.clone(),
    };
    let mut session = Session::new(shared.clone());
    let mut out = Vec::with_capacity(READ_CHUNK);
    let flow = serve(&mut input, &mut session, &mut out).await;
    // Whatever is left (a last error line) goes out before closing.
    session.settle(&mut out).await;
    let _ = write_out(&stream, &mut out, &shared).await;
    drop(session);
    if let Flow::Shutdown = flow {
        shared.shutdown.trigger();
    }
}

async fn serve(input: &mut Input, session: &mut Session, out: &mut Vec<u8>) -> Flow {
    let shared = input.shared.clone();
    let max_item_size = shared.config.max_item_size;
    let mut since_yield = 0;
    loop {
        // Run every complete command in the buffer.
        while !input.skip_discarded() {
            since_yield += 1;
            if since_yield == COMMANDS_PER_TURN {
                // A long pipeline must not keep other connections of this thread waiting.
                since_yield = 0;
                futures_lite::future::yield_now().await;
            }
            let parsed = protocol::parse(input.pending(), max_item_size);
            match parsed {
                Ok(None) => break,
                Ok(Some((command, used))) => {
                    input.consume(used);
                    let flow = session.execute(command, input, out).await;
                    if !matches!(flow, Flow::Continue) {
                        return flow;
                    }
                }
                Err(rejection) => {
                    input.consume(rejection.consumed);
                    input.discard = rejection.discard;
                    if !rejection.silent {
                        // Replies go out in order: sets still waiting for their sync first.
                        session.settle(out).await;
                        Reply::Error(rejection.error).encode(out);
                    }
                    if rejection.error.closes_connection() {
                        return Flow::Close;
                    }
                }
            }
            if out.len() >= OUT_HIGH_WATER
                && session.settle_and_write(&input.stream, out).await.is_err()
            {
                return Flow::Close;
            }
        }
        if session.settle_and_write(&input.stream, out).await.is_err() {
            return Flow::Close;
        }
        // Wait for more input, or for the server to stop.
        let more = async { Some(input.fill().await) };
        let stop = async {
            shared.shutdown.wait().await;
            None
        };
        match more.or(stop).await {
            Some(Ok(0)) | Some(Err(_)) | None => return Flow::Close,
            // Full without a complete command: cannot happen, as the parser rejects first.
            Some(Ok(usize::MAX)) => return Flow::Close,
            Some(Ok(_)) => {}
        }
    }
}

/// Writes and clears the gathered replies.
pub(crate) async fn write_out(
    stream: &TcpStream,
    out: &mut Vec<u8>,
    shared: &Shared,
) -> std::io::Result<()> {
    if out.is_empty() {
        return Ok(());
    }
    let mut writer = stream;
    let result = writer.write_all(out).await;
    bump(&shared.counters.bytes_written, out.len() as u64);
    out.clear();
    if out.capacity() > 4 * OUT_HIGH_WATER {
        out.shrink_to(READ_CHUNK);
    }
    result
}
