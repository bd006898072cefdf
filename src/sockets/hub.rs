//! Every open socket by user, so that a kick reaches all of a user's sockets and the end of
//! sessions (logout, a password change) closes the sockets opened with them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use super::outbox::{ConnHandle, ConnId};
use crate::auth::token::TokenHash;

#[derive(Default)]
pub struct Connections {
    by_user: Mutex<HashMap<u64, Vec<ConnHandle>>>,
    next_id: AtomicU64,
}

impl Connections {
    pub fn next_id(&self) -> ConnId {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub fn add(&self, conn: ConnHandle) {
        let mut by_user = self.by_user.lock().unwrap_or_else(|p| p.into_inner());
        by_user.entry(conn.user()).or_default().push(conn);
        metrics::gauge!("hearth_ws_connections").increment(1.0);
    }

    pub fn remove(&self, conn: &ConnHandle) {
        let mut by_user = self.by_user.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(conns) = by_user.get_mut(&conn.user()) {
            conns.retain(|c| c.id() != conn.id());
            if conns.is_empty() {
                by_user.remove(&conn.user());
            }
        }
        metrics::gauge!("hearth_ws_connections").decrement(1.0);
    }

    pub fn of_user(&self, user: u64) -> Vec<ConnHandle> {
        let by_user = self.by_user.lock().unwrap_or_else(|p| p.into_inner());
        by_user.get(&user).cloned().unwrap_or_default()
    }

    /// Closes every socket of a user except those opened with the session `keep` (logout
    /// closes them all; a password change keeps the changing session's).
    pub fn close_user_except(
        &self,
        user: u64,
        keep: Option<&TokenHash>,
        code: u16,
        reason: &'static str,
    ) {
        for conn in self.of_user(user) {
            if keep != Some(conn.session()) {
                conn.close(code, reason);
            }
        }
    }

    /// Bytes queued for all sockets together, and for the one with the most (`/metrics`).
    pub fn queued_bytes(&self) -> (usize, usize) {
        let by_user = self.by_user.lock().unwrap_or_else(|p| p.into_inner());
        by_user
            .values()
            .flatten()
            .map(ConnHandle::queued_bytes)
            .fold((0, 0), |(total, most), bytes| {
                (total + bytes, most.max(bytes))
            })
    }

    /// Closes every socket (shutdown).
    pub fn close_all(&self, code: u16, reason: &'static str) {
        let by_user = self.by_user.lock().unwrap_or_else(|p| p.into_inner());
        for conn in by_user.values().flatten() {
            conn.close(code, reason);
        }
    }
}
