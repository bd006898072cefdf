//! The accept loop: every TCP connection served as HTTP/1.1 by hyper, with what `axum::serve`
//! leaves unset.
//!
//! - A deadline for request heads (`http.header_timeout_secs`): a client that sends its head
//!   slowly, or keeps an idle connection open without sending the next request, is cut off.
//!   Without a timer hyper has no such deadline, so a slowloris client could hold connections
//!   open for ever at the cost of a byte now and then.
//! - A cap on the size of request heads (`http.max_header_bytes`): 431 beyond it.
//! - A cap on the connections one client address holds at once
//!   (`http.max_connections_per_ip`, and never more than half the open-files limit, so that
//!   the other half stays for everyone else): past it a new connection is answered 429 and
//!   closed before it costs more than its socket. Without it one address holding half-sent
//!   requests used up every file descriptor, and others' requests failed.
//!
//! Connections are upgraded to WebSockets from here as before (`/ws`); an upgraded connection
//! leaves this loop and is the socket's own. Graceful shutdown: on the signal the loop stops
//! accepting, and every connection finishes the request in flight and closes.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
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
    /// Connections one peer address may hold at once.
    pub max_connections_per_ip: Option<usize>,
}

impl HttpLimits {
    /// With `trust_proxy_headers` every connection comes from the proxy, so there is no
    /// per-address cap here (the proxy has its own).
    pub fn from_config(http: &crate::config::HttpConfig, behind_proxy: bool) -> HttpLimits {
        let per_ip =
            (http.max_connections_per_ip > 0 && !behind_proxy).then(|| match open_files_limit() {
                Some(files) => http.max_connections_per_ip.min((files / 2).max(1)),
                None => http.max_connections_per_ip,
            });
        HttpLimits {
            header_timeout: (http.header_timeout_secs > 0)
                .then(|| Duration::from_secs(http.header_timeout_secs)),
            max_header_bytes: (http.max_header_bytes > 0).then_some(http.max_header_bytes),
            max_connections_per_ip: per_ip,
        }
    }
}

/// The process's soft limit on open files, if it has one.
fn open_files_limit() -> Option<usize> {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    limit
        .current
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
}

/// Connections open per peer address (by [`crate::auth::throttle::ip_key`]).
#[derive(Clone, Default)]
struct PerAddress {
    open: Arc<Mutex<HashMap<String, usize>>>,
}

/// One open connection; dropping it closes its place.
struct Place {
    key: String,
    open: Arc<Mutex<HashMap<String, usize>>>,
}

impl PerAddress {
    fn enter(&self, peer: &SocketAddr, max: usize) -> Option<Place> {
        let key = crate::auth::throttle::ip_key(peer.ip());
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let count = open.entry(key.clone()).or_insert(0);
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(Place {
            key,
            open: self.open.clone(),
        })
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// What a connection over its address's cap is told before it is closed.
const TOO_MANY_CONNECTIONS: &[u8] = b"HTTP/1.1 429 Too Many Requests\r\nretry-after: 1\r\n\
content-type: text/plain\r\ncontent-length: 39\r\nconnection: close\r\n\r\n\
too many connections from your address\n";

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
    let per_address = PerAddress::default();
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
        let place = match limits.max_connections_per_ip {
            Some(max) => match per_address.enter(&peer, max) {
                Some(place) => Some(place),
                None => {
                    // Written without waiting (it fits any fresh socket's buffer), then closed.
                    let _ = tcp.try_write(TOO_MANY_CONNECTIONS);
                    metrics::counter!("hearth_http_connections_refused_total").increment(1);
                    continue;
                }
            },
            None => None,
        };
        let (app, stop, open) = (app.clone(), stop_tx.clone(), open_rx.clone());
        tokio::spawn(async move {
            connection(tcp, peer, app, limits, stop).await;
            drop(place);
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
