//! The WebSocket endpoint `/ws`.
//!
//! - [`conn`]: one socket's read and write tasks.
//! - [`limits`]: the per-socket rate limit.
//!
//! The frames are `protocol`'s; a socket as rooms see it (its queue) is `sockets`'.

pub mod conn;
pub mod limits;

use std::sync::Arc;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{FromRef, State, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::origin::AllowedOrigins;
use crate::auth::{AuthError, AuthService};
use crate::config::Config;
use crate::http::error::AppError;
use crate::http::extract::{presented_token, ClientIp};
use crate::limits::Limits;
use crate::rooms::Registry;
use crate::sockets::Connections;
use crate::store::Store;

/// What sockets use of the server.
#[derive(Clone, FromRef)]
pub struct WsState {
    pub config: Arc<Config>,
    pub store: Store,
    pub auth: Arc<AuthService>,
    pub origins: Arc<AllowedOrigins>,
    pub limits: Arc<Limits>,
    pub rooms: Arc<Registry>,
    pub connections: Arc<Connections>,
    /// Cancelled at shutdown: sockets stop taking frames.
    pub stop_reading: CancellationToken,
    /// Every open socket's task, so shutdown can wait for them.
    pub sockets: TaskTracker,
}

/// Socket read buffer, and the most read from the socket at once: client frames are small
/// (a chat message's frame is typically 100 to 300 bytes), and this buffer is allocated for
/// every socket, so it is the largest single cost of an idle one (docs/performance.md). A
/// larger frame is still read whole, in steps of this size.
const READ_BUFFER: usize = 512;
/// Bytes collected before a write is pushed to the socket even without a flush.
const WRITE_BUFFER: usize = 16 * 1024;

/// Checks origin (403) and session (401) before upgrading, whatever the order of failures, then
/// the caps on open sockets per user and per address (429).
pub async fn upgrade(
    State(state): State<WsState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    if !state.origins.permits(&headers) {
        return AppError::ForeignOrigin.into_response();
    }
    let Some((token, _)) = presented_token(&headers) else {
        return AppError::Auth(AuthError::Unauthenticated).into_response();
    };
    let auth = match state.auth.authenticate(&token) {
        Ok(auth) => auth,
        Err(error) => return AppError::Auth(error).into_response(),
    };
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => return AppError::BadRequest(rejection.body_text()).into_response(),
    };
    // Held by the socket for as long as it is open; dropped with the callback if the upgrade
    // never completes.
    let slot = match state.limits.open_socket(auth.user.id, ip) {
        Ok(slot) => slot,
        Err(refusal) => return AppError::from(refusal).into_response(),
    };
    // 0 turns the frame cap off.
    let limit = match state.config.ws.max_frame_bytes {
        0 => usize::MAX,
        bytes => bytes,
    };
    let alive = state.sockets.token();
    // What tungstenite may buffer beyond what it has written to the socket: the write task
    // feeds it frames from the queue, so nothing larger than the queue's byte bound is ever
    // handed over, and a write buffer past this fails the write (the socket closes).
    let max_write_buffer = WRITE_BUFFER + state.config.ws.outbound_queue_bytes.max(1);
    upgrade
        .max_frame_size(limit)
        .max_message_size(limit)
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_write_buffer_size(max_write_buffer)
        .on_upgrade(move |socket| {
            // The socket is served by a task of its own, and the upgrade's task ends here: it
            // would otherwise keep about 1 KB of the upgrade's own state for as long as the
            // socket is open.
            // `map`, not an `async` block awaiting it: that would hold the future twice.
            let serving = conn::serve(socket, state, auth, ip).map(move |()| {
                drop(slot);
                drop(alive);
            });
            tokio::spawn(serving);
            std::future::ready(())
        })
}
