//! The idle task ([`WhenIdle`]): runs a function on the connection threads once no client has
//! sent anything for a while, and never under load. Also the [`IdleCheck`] handle, by which a
//! test asks for a check now instead of waiting for the timer.

use super::config::WhenIdle;
use super::runtime::{self, sleep};
use super::shared::Shared;
use futures_lite::FutureExt;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// A request for one check now; the reply says whether the task was started.
pub(super) type Request = async_channel::Sender<bool>;

/// Asks a running server's idle task to check now, as its timer does every `after`: the check
/// runs the task if no client sent anything since the previous check. Lets a test drive the
/// task without depending on how fast the machine is.
#[derive(Clone)]
pub struct IdleCheck(pub(super) async_channel::Sender<Request>);

impl IdleCheck {
    /// Checks now and says whether the task was started (its runs may still be under way).
    /// `false` also when the server has no idle task or has stopped.
    pub fn check_now(&self) -> bool {
        let (reply, answer) = async_channel::bounded(1);
        self.0.send_blocking(reply).is_ok() && answer.recv_blocking().unwrap_or(false)
    }
}

/// Runs `task` on the connection threads once per idle spell: at the first check (every
/// `task.after`, or when an [`IdleCheck`] asks) that finds no input since the one before;
/// until the server stops.
pub(super) async fn run_when_idle(
    task: WhenIdle,
    shared: Arc<Shared>,
    requests: async_channel::Receiver<Request>,
) {
    let input = || shared.counters.bytes_read.load(Ordering::Relaxed);
    let mut seen = input();
    // Once per idle spell: an idle server is not woken again for nothing.
    let mut ran = false;
    loop {
        let tick = async {
            sleep(task.after).await;
            Some(None)
        };
        let asked = async { requests.recv().await.ok().map(Some) };
        let stop = async {
            shared.shutdown.wait().await;
            None
        };
        let Some(reply) = tick.or(asked).or(stop).await else {
            return;
        };
        let now = input();
        let idle = now == seen;
        let start = idle && !ran;
        if start {
            runtime::on_every_thread(task.run);
        }
        ran = idle;
        seen = now;
        if let Some(reply) = reply {
            let _ = reply.try_send(start);
        }
    }
}
