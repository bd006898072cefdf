//! A socket as the rest of the server sees it: a bounded outbound queue of shared, serialized
//! frames, and a close signal. Delivery never waits: a full queue closes the socket as a slow
//! consumer instead of slowing the room that is fanning out.

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

use axum::extract::ws::Utf8Bytes;
use tokio::sync::{mpsc, Notify};

use crate::auth::token::TokenHash;

pub type ConnId = u64;

pub const SLOW_CONSUMER: (u16, &str) = (1013, "slow consumer");

/// Cheap to clone: one reference count.
#[derive(Clone)]
pub struct ConnHandle {
    inner: Arc<Inner>,
}

struct Inner {
    id: ConnId,
    user: u64,
    session: TokenHash,
    outbox: mpsc::Sender<Utf8Bytes>,
    close: OnceLock<(u16, Cow<'static, str>)>,
    closed: Notify,
}

impl ConnHandle {
    pub fn new(id: ConnId, user: u64, session: TokenHash, outbox: mpsc::Sender<Utf8Bytes>) -> Self {
        ConnHandle {
            inner: Arc::new(Inner {
                id,
                user,
                session,
                outbox,
                close: OnceLock::new(),
                closed: Notify::new(),
            }),
        }
    }

    pub fn id(&self) -> ConnId {
        self.inner.id
    }

    pub fn user(&self) -> u64 {
        self.inner.user
    }

    pub fn session(&self) -> &TokenHash {
        &self.inner.session
    }

    /// Queues a frame; false if the socket is gone or was just closed as a slow consumer.
    pub fn deliver(&self, frame: &Utf8Bytes) -> bool {
        match self.inner.outbox.try_send(frame.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                metrics::counter!("hearth_ws_slow_consumers_total").increment(1);
                self.close(SLOW_CONSUMER.0, SLOW_CONSUMER.1);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Asks the socket to close with `code`; the first request wins.
    pub fn close(&self, code: u16, reason: impl Into<Cow<'static, str>>) {
        if self.inner.close.set((code, reason.into())).is_ok() {
            self.inner.closed.notify_waiters();
            self.inner.closed.notify_one();
        }
    }

    pub fn is_closing(&self) -> bool {
        self.inner.close.get().is_some()
    }

    /// Resolves once a close was requested, with its code and reason.
    pub async fn closing(&self) -> (u16, Cow<'static, str>) {
        loop {
            let notified = self.inner.closed.notified();
            if let Some(close) = self.inner.close.get() {
                return close.clone();
            }
            notified.await;
        }
    }
}
