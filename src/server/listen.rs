//! The accept loop: HTTP/1.1 connections with a header-read (and keep-alive idle)
//! timeout, a cap on open connections, and a shutdown that waits for requests in flight
//! but never longer than a deadline.
//!
//! `axum::serve` has none of these knobs, so connections are served with hyper directly.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

/// Connection limits.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// A client must send a request's whole head within this; it is also how long an
    /// idle keep-alive connection stays open.
    pub header_timeout: Duration,
    /// Connections open at once; more are closed as soon as they are accepted.
    pub max_connections: usize,
    /// How long a shutdown waits for requests in flight before closing them.
    pub drain_deadline: Duration,
}

/// Serve `app` until `shutdown` resolves, then drain within the deadline.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnLimits,
    shutdown: impl Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut conns = JoinSet::new();
    tokio::pin!(shutdown);
    let mut refused: u64 = 0;
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            a = listener.accept() => a,
            // Reap finished connections so the set does not grow.
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            refused += 1;
            if refused.is_power_of_two() {
                tracing::warn!(
                    %peer,
                    refused,
                    max = limits.max_connections,
                    "too many open connections; closing new ones (--max-connections)"
                );
            }
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let mut stop = stop_rx.clone();
        conns.spawn(async move {
            let mut stream = stream;
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .keep_alive(true);
            // hyper borrows the stream, so that it is still ours to close gently below.
            let conn = builder.serve_connection(TokioIo::new(&mut stream), service);
            tokio::pin!(conn);
            let mut stopping = false;
            loop {
                tokio::select! {
                    r = conn.as_mut() => {
                        if let Err(e) = r {
                            tracing::debug!(%peer, error = %e, "connection ended");
                        }
                        break;
                    }
                    _ = stop.changed(), if !stopping => {
                        stopping = true;
                        // Finish the request in flight, if any, then close.
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
            linger(stream).await;
            drop(permit);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let open = conns.len();
    if open > 0 {
        tracing::info!(
            open,
            deadline_s = limits.drain_deadline.as_secs(),
            "waiting for open connections"
        );
    }
    let drained = tokio::time::timeout(limits.drain_deadline, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = conns.len(),
            "shutdown deadline reached: closing the connections still open"
        );
        conns.abort_all();
        while conns.join_next().await.is_some() {}
    }
}

/// How long, and how much of a request body left unread, a closing connection still
/// reads and discards (see `linger`).
const LINGER_TIME: Duration = Duration::from_secs(2);
const LINGER_IDLE: Duration = Duration::from_millis(500);
const LINGER_BYTES: u64 = 64 << 20;

/// Close a connection without losing the answer. A refusal sent before the body was read
/// (413 over `--max-body`) leaves the client still sending; closing a socket with unread
/// data resets it, and the reset can reach the client before it reads the answer, so a
/// CI job would see "connection reset" or "broken pipe" instead of the 413 that says why.
/// Send FIN, then read and discard what the client still sends, within bounds.
async fn linger(mut stream: TcpStream) {
    let _ = stream.shutdown().await;
    let deadline = tokio::time::Instant::now() + LINGER_TIME;
    let mut buf = vec![0u8; 64 * 1024];
    let mut discarded = 0u64;
    while discarded < LINGER_BYTES {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            break;
        }
        match tokio::time::timeout(left.min(LINGER_IDLE), stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => discarded += n as u64,
            _ => break, // the client closed, an error, or it went quiet
        }
    }
}
