//! A socket as the rest of the server sees it: a bounded outbound queue of shared, serialized
//! frames, and a close signal. Delivery never waits: a full queue closes the socket as a slow
//! consumer instead of slowing the room that is fanning out.
//!
//! The queue is a `VecDeque` under a mutex rather than a channel: most sockets sit idle, and a
//! channel allocates a block of slots (and a cache-padded header) up front for every socket,
//! about 1.6 KB, where an empty deque allocates nothing. The mutex is held only to push or pop.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::auth::token::TokenHash;

pub type ConnId = u64;

pub const SLOW_CONSUMER: (u16, &str) = (1013, "slow consumer");

/// A drained queue keeps at most this many slots; a burst's larger buffer is given back.
const KEEP_SLOTS: usize = 8;

/// Cheap to clone: one reference count.
#[derive(Clone)]
pub struct ConnHandle {
    inner: Arc<Inner>,
}

struct Inner {
    id: ConnId,
    user: u64,
    session: TokenHash,
    capacity: usize,
    queue: Mutex<Queue>,
    /// Wakes the write task when a frame arrives in an empty queue.
    ready: Notify,
    /// When the client was last heard from, in ms after [`epoch`] (the idle timeout).
    heard: AtomicU64,
    close: OnceLock<(u16, Cow<'static, str>)>,
    closed: Notify,
}

#[derive(Default)]
struct Queue {
    frames: VecDeque<Utf8Bytes>,
    /// Set when the write task ends: nothing more is queued.
    shut: bool,
}

impl Queue {
    fn pop(&mut self) -> Option<Utf8Bytes> {
        let frame = self.frames.pop_front();
        if self.frames.is_empty() && self.frames.capacity() > KEEP_SLOTS {
            self.frames.shrink_to(KEEP_SLOTS);
        }
        frame
    }
}

impl ConnHandle {
    /// A socket whose queue holds at most `capacity` frames (`ws.outbound_queue`).
    pub fn new(id: ConnId, user: u64, session: TokenHash, capacity: usize) -> Self {
        ConnHandle {
            inner: Arc::new(Inner {
                id,
                user,
                session,
                capacity: capacity.max(1),
                queue: Mutex::new(Queue::default()),
                ready: Notify::new(),
                heard: AtomicU64::new(since_epoch(Instant::now())),
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
        let mut queue = self.queue();
        if queue.shut {
            return false;
        }
        if queue.frames.len() >= self.inner.capacity {
            drop(queue);
            metrics::counter!("hearth_ws_slow_consumers_total").increment(1);
            self.close(SLOW_CONSUMER.0, SLOW_CONSUMER.1);
            return false;
        }
        let was_empty = queue.frames.is_empty();
        queue.frames.push_back(frame.clone());
        drop(queue);
        if was_empty {
            // Stores a permit if the write task is not waiting yet, so no wake-up is lost.
            self.inner.ready.notify_one();
        }
        true
    }

    /// The oldest queued frame, if any (for the write task).
    pub fn try_next_frame(&self) -> Option<Utf8Bytes> {
        self.queue().pop()
    }

    /// The oldest queued frame, waiting for one; `None` once the queue is shut.
    pub async fn next_frame(&self) -> Option<Utf8Bytes> {
        loop {
            {
                let mut queue = self.queue();
                if let Some(frame) = queue.pop() {
                    return Some(frame);
                }
                if queue.shut {
                    return None;
                }
            }
            self.inner.ready.notified().await;
        }
    }

    /// The write task has ended: queued frames are dropped and later deliveries fail.
    pub fn shut(&self) {
        let mut queue = self.queue();
        queue.shut = true;
        queue.frames = VecDeque::new();
        drop(queue);
        self.inner.ready.notify_one();
    }

    /// Notes that the client was just heard from.
    pub fn heard(&self) {
        let now = since_epoch(Instant::now());
        self.inner.heard.store(now, Ordering::Relaxed);
    }

    /// When the client was last heard from (or the socket opened).
    pub fn heard_at(&self) -> Instant {
        epoch() + Duration::from_millis(self.inner.heard.load(Ordering::Relaxed))
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

    fn queue(&self) -> MutexGuard<'_, Queue> {
        // A panic while the lock was held leaves the queue valid: a push or a pop either
        // happened or did not.
        self.inner.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A fixed instant that times of this module are counted from.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn since_epoch(at: Instant) -> u64 {
    at.saturating_duration_since(epoch()).as_millis() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(text: &str) -> Utf8Bytes {
        Utf8Bytes::from(text.to_string())
    }

    #[test]
    fn frames_come_out_in_order_and_a_full_queue_closes_as_slow_consumer() {
        let conn = ConnHandle::new(1, 1, [0; 32], 3);
        for text in ["a", "b", "c"] {
            assert!(conn.deliver(&frame(text)));
        }
        assert!(!conn.is_closing());
        assert!(!conn.deliver(&frame("d")), "the fourth frame overflows");
        assert_eq!(conn.inner.close.get().map(|c| c.0), Some(SLOW_CONSUMER.0));
        let drained: Vec<_> = std::iter::from_fn(|| conn.try_next_frame()).collect();
        assert_eq!(drained, vec![frame("a"), frame("b"), frame("c")]);
    }

    #[test]
    fn a_shut_queue_drops_its_frames_and_refuses_more() {
        let conn = ConnHandle::new(1, 1, [0; 32], 8);
        assert!(conn.deliver(&frame("a")));
        conn.shut();
        assert_eq!(conn.try_next_frame(), None);
        assert!(!conn.deliver(&frame("b")));
        assert!(!conn.is_closing(), "a gone socket is not a slow consumer");
    }

    #[test]
    fn a_drained_queue_gives_back_a_burst_sized_buffer() {
        let conn = ConnHandle::new(1, 1, [0; 32], 1024);
        for _ in 0..500 {
            assert!(conn.deliver(&frame("x")));
        }
        assert!(conn.queue().frames.capacity() >= 500);
        while conn.try_next_frame().is_some() {}
        assert!(conn.queue().frames.capacity() <= KEEP_SLOTS);
    }

    #[tokio::test]
    async fn hearing_from_the_client_moves_its_last_heard_time() {
        let conn = ConnHandle::new(1, 1, [0; 32], 8);
        let opened = conn.heard_at();
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(conn.heard_at(), opened, "nothing heard yet");
        conn.heard();
        assert!(conn.heard_at() >= opened + Duration::from_millis(29));
        assert!(conn.heard_at() <= Instant::now());
    }

    #[tokio::test]
    async fn the_writer_wakes_for_a_frame_delivered_while_it_waits() {
        let conn = ConnHandle::new(1, 1, [0; 32], 8);
        let writer = tokio::spawn({
            let conn = conn.clone();
            async move { conn.next_frame().await }
        });
        tokio::task::yield_now().await;
        assert!(conn.deliver(&frame("late")));
        assert_eq!(writer.await.unwrap(), Some(frame("late")));
        let waiting = tokio::spawn({
            let conn = conn.clone();
            async move { conn.next_frame().await }
        });
        tokio::task::yield_now().await;
        conn.shut();
        assert_eq!(waiting.await.unwrap(), None);
    }
}
