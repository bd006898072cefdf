//! The WebSocket endpoint `/ws`.
//!
//! - [`frames`]: client and server frames (serde enums) and parsing.
//! - [`conn`]: one socket's read and write tasks.
//! - [`outbox`]: a socket as rooms see it: bounded queue plus close signal.
//! - [`hub`]: all open sockets by user (kicks, logouts, shutdown).
//! - [`limits`]: the per-socket rate limit.

pub mod conn;
pub mod frames;
pub mod hub;
pub mod limits;
pub mod outbox;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{State, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;

use crate::auth::extract::{presented_token, ClientIp};
use crate::auth::AuthError;
use crate::error::AppError;
use crate::server::AppState;

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
    State(state): State<AppState>,
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
        Err(refusal) => return refusal.into_response(),
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
