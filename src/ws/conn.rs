//! One socket: a read task that checks, parses and dispatches frames to room actors, and a
//! write task that drains the socket's queue, coalescing frames into few flushes.

use std::collections::HashSet;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::sync::Semaphore;
use tokio::time::error::Elapsed;

use super::limits::{RateLimit, Verdict};
use super::WsState;
use crate::auth::{AuthError, AuthService, Authenticated};
use crate::config::WsConfig;
use crate::ids::RoomCode;
use crate::limits::NotAdmitted;
use crate::protocol::codes::{
    BYE, FLOODING, GOING_AWAY, IDLE, PROTOCOL_ERROR, SESSION_ENDED, TOO_BIG,
};
use crate::protocol::{self, ErrorCode, ServerFrame};
use crate::rooms::{Caller, Request, RoomCommand, RoomError};
use crate::sockets::{ConnHandle, QueueBound};

/// Frames written per flush at most.
const COALESCE: usize = 64;
/// How long a closed socket waits for the client's close answer before it is dropped.
const CLOSE_ANSWER_WAIT: Duration = Duration::from_secs(2);
/// Internal marker for a connection that broke; never sent on the wire.
const LOST: u16 = 1006;

/// Starts serving an upgraded socket: its write task is spawned now, and the returned future
/// is the read side, which ends when the socket does.
///
/// Not an `async fn`: one would keep its arguments (the whole socket, the session's user
/// record) inside the socket's task for as long as it is open. Here they are taken apart
/// first, and the future holds only what the read side uses.
pub fn serve(
    socket: WebSocket,
    state: WsState,
    auth: Authenticated,
    ip: IpAddr,
) -> impl Future<Output = ()> + Send {
    let config = &state.config.ws;
    let (sink, stream) = socket.split();
    let conn = ConnHandle::new(
        state.connections.next_id(),
        auth.user.id,
        auth.token_hash,
        QueueBound {
            frames: config.outbound_queue,
            bytes: config.outbound_queue_bytes,
        },
    );
    state.connections.add(conn.clone());
    let writer = tokio::spawn(write_loop(
        sink,
        conn.clone(),
        Writing::new(config, &state.auth),
    ));
    let caller = Arc::new(Caller {
        id: auth.user.id,
        username: auth.user.username,
        display_name: auth.user.display_name,
    });
    async move {
        let (rooms, stream) = read_loop(stream, &conn, &state, caller, ip).await;
        state.connections.remove(&conn);
        for code in rooms {
            let command = RoomCommand::Unsubscribe {
                conn: conn.id(),
                user: conn.user(),
            };
            state.rooms.send_if_running(&code, command).await;
        }
        conn.close(BYE.0, BYE.1);
        let _ = writer.await;
        await_close_answer(stream).await;
    }
}

/// Reads on until the client answers our close: dropping a socket with unread data makes the
/// kernel reset the connection, and the client would never see the close code.
async fn await_close_answer(mut stream: SplitStream<WebSocket>) {
    let answered = async {
        while let Some(Ok(message)) = stream.next().await {
            if let Message::Close(_) = message {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(CLOSE_ANSWER_WAIT, answered).await;
}

/// Reads until the socket ends or is closed; answers the rooms this socket joined, and the
/// stream, for the closing handshake.
async fn read_loop(
    mut stream: SplitStream<WebSocket>,
    conn: &ConnHandle,
    state: &WsState,
    caller: Arc<Caller>,
    ip: IpAddr,
) -> (HashSet<RoomCode>, SplitStream<WebSocket>) {
    let config = &state.config.ws;
    let mut rooms = HashSet::new();
    let mut pace = Pace {
        rate: RateLimit::new(
            config.rate_per_sec,
            config.rate_burst,
            config.flood_close_after,
        ),
        answers: (config.max_answers_in_flight > 0)
            .then(|| Arc::new(Semaphore::new(config.max_answers_in_flight))),
    };
    // These live across frames rather than being made anew for each one.
    let closing = conn.closing();
    let stopping = state.stop_reading.cancelled();
    tokio::pin!(closing, stopping);
    loop {
        // A client that does not read what it asked for is not read either: its next frame
        // waits until its queue has drained below half its byte bound.
        let message = tokio::select! {
            message = async {
                conn.drained().await;
                stream.next().await
            } => message,
            _ = &mut closing => break,
            () = &mut stopping => {
                // The server closes every socket with 1001 once the rooms have flushed.
                closing.await;
                break;
            }
        };
        let message = match message {
            Some(Ok(message)) => message,
            Some(Err(error)) => {
                let (code, reason) = if is_oversize(error) {
                    TOO_BIG
                } else {
                    PROTOCOL_ERROR
                };
                conn.close(code, reason);
                break;
            }
            None => break,
        };
        conn.heard();
        match message {
            Message::Text(text) => {
                let from = (&caller, ip);
                // Boxed: a frame's handling is several hundred bytes of state that an idle
                // socket would otherwise carry inside its task for as long as it is open.
                let handling = Box::pin(handle_text(&text, conn, state, from, &mut pace));
                if let Some(code) = handling.await {
                    rooms.insert(code);
                }
            }
            Message::Binary(_) => reply_error(
                conn,
                None,
                ErrorCode::BadRequest,
                "frames are JSON text, not binary",
            ),
            Message::Close(_) => break,
            Message::Ping(_) | Message::Pong(_) => {}
        }
    }
    (rooms, stream)
}

/// What holds a socket's frames back: the frame rate, and the answers it may have waiting in
/// its rooms.
struct Pace {
    rate: RateLimit,
    /// One permit per `join` or `history` answer being built; `None` without a limit.
    answers: Option<Arc<Semaphore>>,
}

#[derive(Deserialize)]
struct RefOnly {
    #[serde(rename = "ref")]
    reference: Option<String>,
}

/// Handles one text frame; answers the room code if it was a join that reached its room.
async fn handle_text(
    text: &str,
    conn: &ConnHandle,
    state: &WsState,
    (caller, ip): (&Arc<Caller>, IpAddr),
    pace: &mut Pace,
) -> Option<RoomCode> {
    match pace.rate.check(Instant::now()) {
        Verdict::Allow => {}
        Verdict::Refuse => {
            let reference = serde_json::from_str::<RefOnly>(text)
                .ok()
                .and_then(|r| r.reference);
            reply_error(
                conn,
                reference.as_deref(),
                ErrorCode::RateLimited,
                "slow down",
            );
            return None;
        }
        Verdict::Flooding => {
            conn.close(FLOODING.0, FLOODING.1);
            return None;
        }
    }
    let envelope = match protocol::parse(text) {
        Ok(envelope) => envelope,
        Err(error) => {
            reply_error(
                conn,
                error.reference(),
                ErrorCode::BadRequest,
                &error.to_string(),
            );
            return None;
        }
    };
    let reference = envelope.reference;
    let code = match state
        .limits
        .admit(&state.store, ip, Some(caller.id), &envelope.room)
    {
        Ok(code) => code,
        Err(NotAdmitted::Guessing(refusal)) => {
            reply_error(
                conn,
                reference.as_deref(),
                ErrorCode::RateLimited,
                &refusal.message(),
            );
            return None;
        }
        Err(NotAdmitted::NoSuchCode) => {
            let error = RoomError::UnknownRoom;
            reply_error(
                conn,
                reference.as_deref(),
                error.code(),
                &error.public_message(),
            );
            return None;
        }
    };
    let action = envelope.action;
    let joining = matches!(action, protocol::Action::Join { .. });
    let answer_slot = match &pace.answers {
        // Waiting here keeps the socket's later frames unread: a client that asks for history
        // faster than it takes the answers is slowed down, not served into memory.
        Some(answers) if action.answers_with_history() => tokio::select! {
            slot = answers.clone().acquire_owned() => slot.ok(),
            _ = conn.closing() => return None,
        },
        _ => None,
    };
    let request = Box::new(Request {
        conn: conn.clone(),
        caller: caller.clone(),
        reference: reference.clone(),
        answer_slot,
    });
    match state
        .rooms
        .send(&code, RoomCommand::Client { request, action })
        .await
    {
        Ok(()) => joining.then_some(code),
        Err(error) => {
            if matches!(error, RoomError::UnknownRoom) {
                state.limits.unknown_code(ip);
            }
            reply_error(
                conn,
                reference.as_deref(),
                error.code(),
                &error.public_message(),
            );
            None
        }
    }
}

fn reply_error(conn: &ConnHandle, reference: Option<&str>, code: ErrorCode, message: &str) {
    conn.deliver(
        &ServerFrame::Error {
            reference,
            code,
            message,
        }
        .encode(),
    );
}

fn is_oversize(error: axum::Error) -> bool {
    let inner = error.into_inner();
    match inner.downcast_ref::<tungstenite::Error>() {
        Some(e) => matches!(e, tungstenite::Error::Capacity(_)),
        None => inner.to_string().contains("Space limit exceeded"),
    }
}

/// What the write task needs (not the whole configuration: it lives as long as the socket).
struct Writing {
    timeout: Duration,
    ping_every: Duration,
    idle_timeout: Duration,
    /// For the session check at every ping.
    auth: Arc<AuthService>,
}

impl Writing {
    fn new(config: &WsConfig, auth: &Arc<AuthService>) -> Self {
        Writing {
            timeout: Duration::from_secs(config.write_timeout_secs),
            ping_every: Duration::from_secs(config.ping_interval_secs),
            idle_timeout: Duration::from_secs(config.idle_timeout_secs),
            auth: auth.clone(),
        }
    }
}

/// Shuts the socket's queue when the write task ends, however it ends.
struct ShutOnDrop<'a>(&'a ConnHandle);

impl Drop for ShutOnDrop<'_> {
    fn drop(&mut self) {
        self.0.shut();
    }
}

/// Writes queued frames, pings, and closes the socket when asked or when the client has been
/// silent too long. One timer serves both the pings and the idle timeout, so an idle socket
/// holds one timer, and a frame read costs a timestamp rather than a timer reset.
///
/// Not an `async fn`: one keeps a second copy of its `mut` arguments for as long as it runs.
#[allow(clippy::manual_async_fn)]
fn write_loop(
    mut sink: SplitSink<WebSocket, Message>,
    conn: ConnHandle,
    writing: Writing,
) -> impl Future<Output = ()> + Send {
    async move {
        let _shut = ShutOnDrop(&conn);
        let mut next_ping = tokio::time::Instant::now() + writing.ping_every;
        let timer = tokio::time::sleep_until(next_ping.min(conn.heard_at() + writing.idle_timeout));
        tokio::pin!(timer);
        // Created once: re-creating the close signal's future for every frame registers and
        // unregisters a waiter each time, which showed in the fan-out profile.
        let closing = conn.closing();
        tokio::pin!(closing);
        loop {
            tokio::select! {
                biased;
                (code, reason) = &mut closing => {
                    if code == LOST {
                        return;
                    }
                    if code == GOING_AWAY.0 {
                        // Shutting down: what is queued was acknowledged; deliver it first.
                        let drain = async {
                            while let Some(frame) = conn.try_next_frame() {
                                sink.feed(Message::Text(frame)).await?;
                            }
                            sink.flush().await
                        };
                        let _ = tokio::time::timeout(writing.timeout, drain).await;
                    }
                    let close = Message::Close(Some(CloseFrame { code, reason: reason.as_ref().into() }));
                    let _ = tokio::time::timeout(writing.timeout, sink.send(close)).await;
                    return;
                }
                frame = conn.next_frame() => {
                    let Some(frame) = frame else { return };
                    let write = async {
                        sink.feed(Message::Text(frame)).await?;
                        for _ in 1..COALESCE {
                            match conn.try_next_frame() {
                                Some(frame) => sink.feed(Message::Text(frame)).await?,
                                None => break,
                            }
                        }
                        sink.flush().await
                    };
                    wrote(&conn, tokio::time::timeout(writing.timeout, write).await);
                }
                () = &mut timer => {
                    let now = tokio::time::Instant::now();
                    let idle_at = conn.heard_at() + writing.idle_timeout;
                    if now >= idle_at {
                        conn.close(IDLE.0, IDLE.1);
                        continue;
                    }
                    if now >= next_ping {
                        next_ping = now + writing.ping_every;
                        if !ping(&mut sink, &conn, &writing).await {
                            continue;
                        }
                    }
                    timer.as_mut().reset(next_ping.min(idle_at));
                }
            }
        }
    }
}

/// Rechecks the session the socket was opened with, then pings. One that expired or was
/// revoked closes the socket (4401); one that is valid counts as in use (idle expiry). False
/// if the socket is closing.
async fn ping(
    sink: &mut SplitSink<WebSocket, Message>,
    conn: &ConnHandle,
    writing: &Writing,
) -> bool {
    match writing.auth.authenticate_hash(*conn.session()) {
        Ok(_) => {}
        Err(AuthError::Unauthenticated) => {
            conn.close(SESSION_ENDED.0, SESSION_ENDED.1);
            return false;
        }
        Err(error) => tracing::warn!(error = %error, "cannot recheck a socket's session"),
    }
    let ping = sink.send(Message::Ping(Default::default()));
    wrote(conn, tokio::time::timeout(writing.timeout, ping).await)
}

/// Whether a timed write went through; one that failed closes the socket as lost, one that
/// stalled past the write timeout as a slow consumer (1013).
fn wrote(conn: &ConnHandle, outcome: Result<Result<(), axum::Error>, Elapsed>) -> bool {
    match outcome {
        Ok(Ok(())) => true,
        Ok(Err(_)) => {
            conn.close(LOST, "write failed");
            false
        }
        Err(_) => {
            conn.close_slow();
            false
        }
    }
}
