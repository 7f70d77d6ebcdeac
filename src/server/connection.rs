//! One client socket with its input and output buffers: whole commands in, encoded replies
//! out, memory bounded whatever the client sends. Knows nothing of commands' meaning.
//!
//! Input is read into one buffer that never holds more than the largest legal command (a
//! full-size `set`), because the parser rejects long lines and oversized blocks on their
//! header; a rejected block is skipped as it arrives instead of buffered. Replies of a
//! pipelined batch are gathered and written together, and may be written early once they pass
//! [`OUT_HIGH_WATER`], so a `get` of many large items never buffers them all.
//!
//! Imports only the runtime's socket and the counters; the session and handler build on it.

use super::runtime::ClientSocket;
use super::stats::{bump, Counters};
use crate::protocol::{self, Command, Rejection, Reply};
use std::sync::Arc;

/// Bytes asked of the socket per read, and the buffers' resting size.
const READ_CHUNK: usize = 16 * 1024;
/// Reply bytes gathered before they are worth writing out mid-batch.
const OUT_HIGH_WATER: usize = 64 * 1024;

pub(crate) struct Connection {
    stream: ClientSocket,
    /// The last read left room in the buffer, so it took all the socket had: the next one
    /// waits for input first rather than fail with nothing to read.
    drained: bool,
    /// Input: `buf[start..end]` is unread.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// The input buffer never grows beyond this.
    limit: usize,
    /// Input bytes still to drop as they arrive (a rejected data block).
    discard: u64,
    max_item_size: u32,
    /// Replies not yet written.
    out: Vec<u8>,
    /// Times `out` was written out, so a [`Mark`] from before a write is caught.
    writes: u64,
    counters: Arc<Counters>,
    /// The client's address, for log lines.
    peer: String,
}

/// A place in the output, to rewrite the replies after it (see [`Connection::truncate_to`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mark {
    at: usize,
    writes: u64,
}

/// What [`Connection::fill`] got.
enum Filled {
    Bytes,
    /// The client closed, or the socket failed.
    Closed,
    /// The buffer is at its limit with pipelined commands still to run.
    Full,
}

impl Connection {
    pub(crate) fn new(stream: ClientSocket, max_item_size: u32, counters: Arc<Counters>) -> Self {
        let peer = match stream.peer_addr() {
            Ok(address) => address.to_string(),
            Err(_) => "?".to_string(),
        };
        Connection {
            peer,
            stream,
            drained: false,
            buf: vec![0; READ_CHUNK],
            start: 0,
            end: 0,
            limit: max_item_size as usize + protocol::MAX_LINE + 2 + READ_CHUNK,
            discard: 0,
            max_item_size,
            out: Vec::with_capacity(READ_CHUNK),
            writes: 0,
            counters,
        }
    }

    /// The next whole command already buffered, `Ok(None)` if more input is needed first.
    /// Rejected input is already dropped, and its data block set to be skipped as it
    /// arrives; the caller replies to the rejection (unless silent) and decides whether to
    /// go on ([`protocol::Error::closes_connection`]).
    pub(crate) fn read_command(&mut self) -> Result<Option<Command>, Rejection> {
        if self.skip_discarded() {
            return Ok(None);
        }
        match protocol::parse(self.pending(), self.max_item_size) {
            Ok(None) => Ok(None),
            Ok(Some((command, used))) => {
                self.consume(used);
                Ok(Some(command))
            }
            Err(rejection) => {
                self.consume(rejection.consumed);
                self.discard = rejection.discard;
                Err(rejection)
            }
        }
    }

    /// Reads more input; false once the client has gone.
    pub(crate) async fn read_more(&mut self) -> bool {
        match self.fill().await {
            Filled::Bytes => true,
            // Full without a complete command: cannot happen, as the parser rejects first.
            Filled::Closed | Filled::Full => false,
        }
    }

    /// Completes when the client has gone; meanwhile keeps buffering what it sends (within
    /// the limit), so pipelined commands are not lost. Used while a `get` waits.
    pub(crate) async fn closed(&mut self) {
        loop {
            match self.fill().await {
                Filled::Bytes => {}
                Filled::Closed => return,
                // Nothing more fits: whether the client left can only be seen later.
                Filled::Full => return std::future::pending().await,
            }
        }
    }

    /// Gathers a reply; it goes out with the next [`flush`](Self::flush).
    pub(crate) fn write(&mut self, reply: Reply) {
        match reply {
            Reply::Error(error) => {
                self.counters.errors.count(error.reply_kind());
                let peer = &self.peer;
                let line = || format!("client {peer}: protocol error, replied {error}");
                self.counters.client_errors_log.log(log::Level::Warn, line);
            }
            Reply::ServerError(_) => self.counters.errors.count("SERVER_ERROR"),
            _ => {}
        }
        reply.encode(&mut self.out);
    }

    /// The client's address, as log lines show it.
    pub(crate) fn peer(&self) -> &str {
        &self.peer
    }

    /// The server's counters (and log budgets).
    pub(crate) fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Gathers a reply if there is one (a quiet meta command has none).
    pub(crate) fn write_some(&mut self, reply: Option<Reply>) {
        if let Some(reply) = reply {
            self.write(reply);
        }
    }

    /// Whether the gathered replies are worth writing before the batch ends.
    pub(crate) fn over_high_water(&self) -> bool {
        self.out.len() >= OUT_HIGH_WATER
    }

    /// Writes the gathered replies out.
    pub(crate) async fn flush(&mut self) -> std::io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        self.writes += 1;
        let result = self.stream.write_all(&self.out).await;
        bump(&self.counters.bytes_written, self.out.len() as u64);
        self.out.clear();
        // A large reply came and went: give its memory back.
        if self.out.capacity() > 4 * OUT_HIGH_WATER {
            self.out.shrink_to(READ_CHUNK);
        }
        result
    }

    /// The current end of the output.
    pub(crate) fn mark(&self) -> Mark {
        Mark {
            at: self.out.len(),
            writes: self.writes,
        }
    }

    /// Drops the replies gathered since `mark`, to write others in their place. They must not
    /// have been flushed meanwhile: what the client has is not taken back.
    pub(crate) fn truncate_to(&mut self, mark: Mark) {
        debug_assert_eq!(mark.writes, self.writes, "replies after the mark were sent");
        self.out.truncate(mark.at);
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

    /// Reads more input, never growing the buffer past the limit: a full buffer that still
    /// holds no complete command cannot happen (the parser rejects first).
    async fn fill(&mut self) -> Filled {
        if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else {
                // At once to what a large item needs: doubling up to it would leave the
                // allocator the freed halves too (RSS about twice the item, for a while).
                let needed = protocol::needs(&self.buf[..self.end]).unwrap_or(0);
                let grown = (self.buf.len() * 2).max(needed);
                let grown = grown.min(self.limit).max(self.buf.len());
                self.buf.resize(grown, 0);
            }
        }
        if self.end == self.buf.len() {
            // Full with pipelined commands still to run: the caller runs them first.
            return Filled::Full;
        }
        if self.drained && self.stream.readable().await.is_err() {
            return Filled::Closed;
        }
        let room = self.buf.len() - self.end;
        match self.stream.read(&mut self.buf[self.end..]).await {
            Ok(0) | Err(_) => Filled::Closed,
            Ok(n) => {
                self.drained = n < room;
                self.end += n;
                bump(&self.counters.bytes_read, n as u64);
                Filled::Bytes
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::runtime::{block_on, TcpListener, TcpStream};
    use futures_lite::AsyncReadExt;

    /// A connection to a loopback peer, and the peer's end.
    async fn pair() -> (Connection, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let peer = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (stream, _) = listener.accept().await.unwrap();
        let conn = Connection::new(
            ClientSocket::new(stream).unwrap(),
            1024,
            Arc::new(Counters::new()),
        );
        (conn, peer)
    }

    /// Group commit's failure path: `STORED` lines not yet sent become `SERVER_ERROR` lines,
    /// and what came before the mark stays.
    #[test]
    fn replies_after_a_mark_are_rewritten() {
        block_on(async {
            let (mut conn, mut peer) = pair().await;
            conn.write(Reply::End);
            let mark = conn.mark();
            conn.write(Reply::Stored);
            conn.write(Reply::Stored);
            conn.truncate_to(mark);
            conn.write(Reply::ServerError("sync failed"));
            conn.flush().await.unwrap();
            drop(conn);
            let mut got = Vec::new();
            peer.read_to_end(&mut got).await.unwrap();
            assert_eq!(got, b"END\r\nSERVER_ERROR sync failed\r\n");
        });
    }
}
