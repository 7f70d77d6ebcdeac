//! The task that serves one client: reads commands off its [`Connection`], runs them in its
//! [`Session`], writes the replies, until the client quits or disconnects or the server stops.
//!
//! Owns the loop's ordering rules: pending sets settle before any other reply or write, a
//! long pipeline yields to other connections, a stop is noticed between commands.
//! Imports run one way: handler → session → connection.

use super::connection::Connection;
use super::runtime::ClientSocket;
use super::session::{Flow, Session};
use super::shared::Shared;
use crate::protocol::Reply;
use futures_lite::FutureExt;
use std::sync::Arc;

/// Commands a connection runs before it lets other tasks of its thread run.
const COMMANDS_PER_TURN: u32 = 16;

/// Serves one client until it quits, disconnects, or the server shuts down.
pub(crate) async fn connection_loop(stream: ClientSocket, shared: Arc<Shared>) {
    let max_item_size = shared.config.max_item_size;
    let mut conn = Connection::new(stream, max_item_size, shared.counters.clone());
    let mut session = Session::new(shared.clone());
    let flow = serve(&mut conn, &mut session, &shared).await;
    // Whatever is left (a last error line) goes out before closing.
    let _ = session.settle_and_flush(&mut conn).await;
    // Ending the session gives its open reads back, before a `shutdown` lets the store close.
    drop(session);
    if let Flow::Shutdown = flow {
        shared.shutdown.trigger();
    }
}

async fn serve(conn: &mut Connection, session: &mut Session, shared: &Shared) -> Flow {
    let mut since_yield = 0;
    // One wait for the stop, polled beside every read for the connection's whole life: a new
    // one per read cost an allocation and a turn on the shared event's lock per request.
    let mut stop = std::pin::pin!(shared.shutdown.wait());
    loop {
        since_yield += 1;
        if since_yield == COMMANDS_PER_TURN {
            // A long pipeline must not keep other connections of this thread waiting.
            since_yield = 0;
            futures_lite::future::yield_now().await;
        }
        match conn.read_command() {
            Ok(Some(command)) => {
                let flow = session.execute(command, conn).await;
                if !matches!(flow, Flow::Continue) {
                    return flow;
                }
            }
            Err(rejection) => {
                if !rejection.silent {
                    // Replies go out in order: sets still waiting for their sync first.
                    session.settle(conn).await;
                    conn.write(Reply::Error(rejection.error));
                }
                if rejection.error.closes_connection() {
                    return Flow::Close;
                }
            }
            Ok(None) => {
                // The batch is done: its replies go out before waiting for more input.
                if session.settle_and_flush(conn).await.is_err() {
                    return Flow::Close;
                }
                let more = async { Some(conn.read_more().await) };
                let stopped = async {
                    stop.as_mut().await;
                    None
                };
                match more.or(stopped).await {
                    Some(true) => continue,
                    Some(false) | None => return Flow::Close,
                }
            }
        }
        if session.write_early(conn).await.is_err() {
            return Flow::Close;
        }
    }
}
