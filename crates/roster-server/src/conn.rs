//! Connections: the accept loop with the limits a server on the open internet needs.
//!
//! `axum::serve` reads request headers without a deadline and accepts any number of
//! connections, so a few hundred clients that connect and send nothing (or a header a byte a
//! second, "slowloris") hold a task and a socket each, forever. Here, written on hyper's HTTP/1
//! connection builder (which has the deadline axum does not expose):
//!
//! - **header read**: a client has [`Limits::header_read`] to send a request's headers, counted
//!   from when the connection waits for them: a new connection that sends nothing, an idle
//!   keep-alive connection and a client that trickles its headers are all closed when it runs
//!   out (hyper's `header_read_timeout`);
//! - **connections**: at most [`Limits::max_connections`] are served at once; more wait in the
//!   listen backlog until one closes (with the header deadline, an idle one closes within
//!   `header_read`);
//! - **body read** and **whole request**: enforced per request in [`crate::body`] and
//!   [`request_timeout`];
//! - **drain**: on shutdown, no new connection is accepted, idle ones are closed, and requests
//!   in flight finish (bounded by the caller).
//!
//! HTTP/1.1 only: identity providers speak it, and HTTP/2 without TLS (h2c) is not something
//! they send. With `--tls-cert`, each connection's TLS handshake runs in its own task, bounded
//! by the header deadline ([`crate::tls`]).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

use crate::error::HttpError;

/// Connection and request limits (each a `roster serve` flag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Time a client has to send a request's headers, from when the connection waits for
    /// them (so also how long an idle connection stays open).
    pub header_read: Duration,
    /// Time a client has to send a request's body.
    pub body_read: Duration,
    /// Longest a request may take until its response starts. The event feed's long poll and
    /// user imports are exempt (see [`crate::router`]); streamed responses (a big group's
    /// members, the snapshot) start at once and are bounded by their own reads.
    pub request: Duration,
    /// Most connections served at once.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read: Duration::from_secs(10),
            body_read: Duration::from_secs(30),
            request: Duration::from_secs(60),
            max_connections: 1024,
        }
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then stops accepting and waits for
/// the open connections to finish their requests (idle ones are closed at once).
///
/// # Errors
/// When accepting fails for a reason other than a transient one (a client that reset before
/// it was accepted, too many open files: logged and retried).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send,
    drain_for: Duration,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read)
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        // A permit first: at the limit, connections wait in the backlog, not in memory.
        let permit = tokio::select! {
            p = Arc::clone(&permits).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, addr) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) if transient(&e) => {
                    tracing::warn!(error = %e, "accepting a connection failed; retrying");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                Err(e) => return Err(e),
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo::<SocketAddr>(addr));
            let app = app.clone();
            async move {
                Ok::<_, Infallible>(
                    app.oneshot(req.map(axum::body::Body::new))
                        .await
                        .unwrap_or_else(|e| match e {}),
                )
            }
        });
        let watcher = graceful.watcher();
        let builder = builder.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let done = match tls {
                None => {
                    watcher
                        .watch(builder.serve_connection(TokioIo::new(stream), service))
                        .await
                }
                Some(acceptor) => {
                    // The handshake has the header deadline too: a client that opens a TLS
                    // connection and sends nothing is closed like one that sends no headers.
                    match tokio::time::timeout(limits.header_read, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            watcher
                                .watch(builder.serve_connection(TokioIo::new(tls), service))
                                .await
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(error = %e, client = %addr, "TLS handshake failed");
                            Ok(())
                        }
                        Err(_) => {
                            tracing::debug!(client = %addr, "TLS handshake timed out");
                            Ok(())
                        }
                    }
                }
            };
            if let Err(e) = done {
                tracing::debug!(error = %e, client = %addr, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(drain_for, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("graceful shutdown timed out; closing remaining connections");
    }
    Ok(())
}

/// Accept errors that concern one connection or a passing shortage, not the listener.
fn transient(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionReset, Interrupted, WouldBlock};
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | Interrupted | WouldBlock
    ) || matches!(e.raw_os_error(), Some(23 | 24)) // ENFILE, EMFILE
}

/// Middleware: a request whose response has not started within `limit` is answered 503 with
/// `Retry-After`, and its work is dropped (a write that had not committed yet is rolled back;
/// one that had stays, hence the detail's advice).
pub async fn request_timeout(limit: Duration, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => HttpError {
            error: scim_proto::ScimError::new(
                503,
                None,
                format!(
                    "the request took longer than the server's limit of {} s and was abandoned \
                     (a write may or may not have been applied: read the resource, then retry)",
                    limit.as_secs_f64()
                ),
            ),
            headers: vec![(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static(crate::error::RETRY_AFTER),
            )],
        }
        .into_response(),
    }
}
