//! The accept loop: every TCP connection served as HTTP/1.1 by hyper, with what `axum::serve`
//! leaves unset.
//!
//! - A deadline for request heads (`http.header_timeout_secs`): a client that sends its head
//!   slowly, or keeps an idle connection open without sending the next request, is cut off.
//!   Without a timer hyper has no such deadline, so a slowloris client could hold connections
//!   open for ever at the cost of a byte now and then.
//! - A cap on the size of request heads (`http.max_header_bytes`): 431 beyond it.
//!
//! Connections are upgraded to WebSockets from here as before (`/ws`); an upgraded connection
//! leaves this loop and is the socket's own. Graceful shutdown: on the signal the loop stops
//! accepting, and every connection finishes the request in flight and closes.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tower_service::Service;

/// What the loop enforces on every connection.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    pub header_timeout: Option<Duration>,
    pub max_header_bytes: Option<usize>,
}

impl HttpLimits {
    pub fn from_config(http: &crate::config::HttpConfig) -> HttpLimits {
        HttpLimits {
            header_timeout: (http.header_timeout_secs > 0)
                .then(|| Duration::from_secs(http.header_timeout_secs)),
            max_header_bytes: (http.max_header_bytes > 0).then_some(http.max_header_bytes),
        }
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then waits for the connections in
/// progress to finish their requests.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    // Dropping the receiver tells every connection to finish; each holds a clone of
    // `open_rx`, so `open_tx.closed()` resolves once the last one has ended.
    let (stop_tx, stop_rx) = watch::channel(());
    let (open_tx, open_rx) = watch::channel(());
    tokio::spawn(async move {
        shutdown.await;
        drop(stop_rx);
    });
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = stop_tx.closed() => break,
        };
        let (app, stop, open) = (app.clone(), stop_tx.clone(), open_rx.clone());
        tokio::spawn(async move {
            connection(tcp, peer, app, limits, stop).await;
            drop(open);
        });
    }
    drop(listener);
    drop(open_rx);
    open_tx.closed().await;
}

async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    app: Router,
    limits: HttpLimits,
    stop: watch::Sender<()>,
) {
    // Chat frames are small and latency matters: no Nagle delay.
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(error = %e, "cannot set TCP_NODELAY");
    }
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        let mut app = app.clone();
        async move {
            Ok::<_, Infallible>(
                app.call(request.map(Body::new))
                    .await
                    .unwrap_or_else(|e| match e {}),
            )
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new());
    builder.header_read_timeout(limits.header_timeout);
    if let Some(max) = limits.max_header_bytes {
        builder.max_header_size(max);
    }
    let conn = builder
        .serve_connection(TokioIo::new(tcp), service)
        .with_upgrades();
    tokio::pin!(conn);
    let stopping = stop.closed();
    tokio::pin!(stopping);
    let mut told = false;
    loop {
        tokio::select! {
            outcome = conn.as_mut() => {
                if let Err(e) = outcome {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            () = &mut stopping, if !told => {
                told = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}
