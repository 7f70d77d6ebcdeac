//! The `--metrics` listener: HTTP/1.1 on the server's own runtime, answering `GET /metrics`
//! (the exposition) and `GET /healthz` (200, or 503 with a one-line reason), 404 elsewhere.
//!
//! hyper parses and writes HTTP; smol-hyper's adapter feeds it the runtime's `TcpStream`, so
//! no second runtime runs. A scrape is built on the runtime's blocking pool, so a large one
//! (thousands of queues) never holds a thread that serves clients. It keeps serving while
//! connections drain after a stop (healthz then says 503 "shutting down") and stops when told
//! by [`Server::run`](super::Server::run).

use super::metrics;
use super::runtime::{spawn, spawn_blocking, TcpListener, TcpStream};
use super::shared::Shared;
use super::shutdown::Shutdown;
use futures_lite::FutureExt;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{header, Method, Request, Response, StatusCode};
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Most HTTP connections served at once; more are closed unanswered (a scraper needs one).
const MAX_CONNECTIONS: usize = 64;

/// Serves HTTP on `listener` until `stop` is triggered.
pub(super) async fn serve(listener: TcpListener, shared: Arc<Shared>, stop: Arc<Shutdown>) {
    let open = Arc::new(AtomicUsize::new(0));
    loop {
        let accepted = async { Some(listener.accept().await) };
        let stopped = async {
            stop.wait().await;
            None
        };
        let stream = match accepted.or(stopped).await {
            None => return,
            Some(Ok((stream, _))) => stream,
            Some(Err(e)) => {
                log::warn!("metrics: accept failed: {e}");
                continue;
            }
        };
        if open.fetch_add(1, Ordering::Relaxed) >= MAX_CONNECTIONS {
            open.fetch_sub(1, Ordering::Relaxed);
            continue;
        }
        let (shared, stop, open) = (shared.clone(), stop.clone(), open.clone());
        spawn(async move {
            connection(stream, shared, &stop).await;
            open.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

async fn connection(stream: TcpStream, shared: Arc<Shared>, stop: &Shutdown) {
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let shared = shared.clone();
        async move { Ok::<_, Infallible>(respond(&request, shared).await) }
    });
    let io = smol_hyper::rt::FuturesIo::new(stream);
    let served = async {
        let connection = hyper::server::conn::http1::Builder::new().serve_connection(io, service);
        if let Err(e) = connection.await {
            log::debug!("metrics: connection ended: {e}");
        }
    };
    served.or(stop.wait()).await;
}

async fn respond(request: &Request<Incoming>, shared: Arc<Shared>) -> Response<Full<Bytes>> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n".into());
    }
    match request.uri().path() {
        "/metrics" => {
            let exposition = spawn_blocking(move || metrics::encode(&shared)).await;
            let mut response = text(StatusCode::OK, exposition);
            let content_type = header::HeaderValue::from_static(metrics::CONTENT_TYPE);
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, content_type);
            response
        }
        "/healthz" => match metrics::health(&shared) {
            Ok(()) => text(StatusCode::OK, "ok\n".into()),
            Err(reason) => text(StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n")),
        },
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: try /metrics or /healthz\n".into(),
        ),
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
