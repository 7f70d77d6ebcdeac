//! Blocking reads: listen before looking, so an item arriving in between still wakes the
//! reader; no polling. How long to wait is the caller's to say, so the store needs no clock.

use super::handle::Queue;
use super::{Error, Item, Lease, ReadMode, Store};
use event_listener::EventListener;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};

impl Store {
    /// Reads like [`Store::read`]; if there is nothing, waits for an item until `until`
    /// completes, and then returns `Err` with its output: nothing was read, and nothing was
    /// taken for this reader. The caller builds `until` from its timeout, shutdown and
    /// disconnect.
    pub async fn read_or_wait<T>(
        &self,
        queue: &str,
        cursor: Option<&str>,
        mode: ReadMode,
        until: impl Future<Output = T>,
    ) -> Result<Result<(Item, Option<Lease>), T>, Error> {
        if let Some(read) = self.read(queue, cursor, mode)? {
            return Ok(Ok(read));
        }
        let mut until = std::pin::pin!(until);
        loop {
            let listener = self.listen(queue, cursor, mode)?;
            if let Some(read) = self.read(queue, cursor, mode)? {
                return Ok(Ok(read));
            }
            let woken = futures_lite::future::or(
                async {
                    listener.await;
                    None
                },
                async { Some(until.as_mut().await) },
            );
            if let Some(stopped) = woken.await {
                return Ok(Err(stopped));
            }
        }
    }

    /// A future that completes when the queue (or cursor) may have something new to read.
    /// Take it *before* trying a read, so an item arriving in between is not missed.
    fn listen(&self, queue: &str, cursor: Option<&str>, mode: ReadMode) -> Result<Listener, Error> {
        let handle = self.queue(queue)?;
        // A plain reader that takes consumes its wake-up with the item; any other reader
        // must not swallow one meant for it, so it listens to the broadcast instead.
        let listener = match (cursor, mode) {
            (None, ReadMode::Take | ReadMode::Open) => handle.plain_event.listen(),
            _ => handle.broadcast_event.listen(),
        };
        // Before the read that follows: `Queue::notify` skips queues nobody waits on.
        handle.waiters.fetch_add(1, Ordering::SeqCst);
        Ok(Listener {
            queue: handle,
            listener,
        })
    }
}

/// Completes when new items may be there; counts as a waiter in `stats` while it lives.
struct Listener {
    queue: Arc<Queue>,
    listener: EventListener,
}

impl Future for Listener {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.listener).poll(cx)
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.queue.waiters.fetch_sub(1, Ordering::Relaxed);
    }
}
