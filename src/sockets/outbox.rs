//! A socket as the rest of the server sees it: a bounded outbound queue of shared, serialized
//! frames, and a close signal. Delivery never waits: a full queue closes the socket as a slow
//! consumer instead of slowing the room that is fanning out.
//!
//! The queue is a `VecDeque` under a mutex rather than a channel: most sockets sit idle, and a
//! channel allocates a block of slots (and a cache-padded header) up front for every socket,
//! about 1.6 KB, where an empty deque allocates nothing. The mutex is held only to push or pop.
//!
//! The queue is bounded twice: in frames, and in the bytes those frames hold. A frame count
//! alone lets one socket that never reads pile up hundreds of large answers (gigabytes); the
//! byte bound caps what any socket can make the server hold. While more than half the byte
//! bound is queued, the socket's read task stops reading its frames ([`ConnHandle::drained`]),
//! so a client cannot keep asking for answers it does not read.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::auth::token::TokenHash;

pub type ConnId = u64;

pub use crate::protocol::codes::SLOW_CONSUMER;

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
    /// Bytes the queued frames may hold at most.
    max_bytes: usize,
    queue: Mutex<Queue>,
    /// Wakes the write task when a frame arrives in an empty queue.
    ready: Notify,
    /// Wakes the read task when the queue falls below half its byte bound.
    drained: Notify,
    /// When the client was last heard from, in ms after [`epoch`] (the idle timeout).
    heard: AtomicU64,
    close: OnceLock<(u16, Cow<'static, str>)>,
    closed: Notify,
}

#[derive(Default)]
struct Queue {
    frames: VecDeque<Utf8Bytes>,
    /// What the queued frames hold, in bytes.
    bytes: usize,
    /// Set when the write task ends: nothing more is queued.
    shut: bool,
}

impl Queue {
    fn pop(&mut self) -> Option<Utf8Bytes> {
        let frame = self.frames.pop_front();
        if let Some(frame) = &frame {
            self.bytes -= frame.len();
        }
        if self.frames.is_empty() && self.frames.capacity() > KEEP_SLOTS {
            self.frames.shrink_to(KEEP_SLOTS);
        }
        frame
    }
}

/// How much a socket's queue may hold.
#[derive(Debug, Clone, Copy)]
pub struct QueueBound {
    /// Frames (`ws.outbound_queue`).
    pub frames: usize,
    /// Bytes (`ws.outbound_queue_bytes`).
    pub bytes: usize,
}

impl ConnHandle {
    /// A socket whose queue holds at most `bound` frames and bytes.
    pub fn new(id: ConnId, user: u64, session: TokenHash, bound: QueueBound) -> Self {
        ConnHandle {
            inner: Arc::new(Inner {
                id,
                user,
                session,
                capacity: bound.frames.max(1),
                max_bytes: bound.bytes.max(1),
                queue: Mutex::new(Queue::default()),
                ready: Notify::new(),
                drained: Notify::new(),
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
        let full = queue.frames.len() >= self.inner.capacity
            || queue.bytes + frame.len() > self.inner.max_bytes;
        if full {
            drop(queue);
            self.close_slow();
            return false;
        }
        let was_empty = queue.frames.is_empty();
        queue.frames.push_back(frame.clone());
        queue.bytes += frame.len();
        // Read first: the shared counter is written only when a queue sets a new record.
        if queue.bytes > PEAK_BYTES.load(Ordering::Relaxed) {
            PEAK_BYTES.fetch_max(queue.bytes, Ordering::Relaxed);
        }
        drop(queue);
        if was_empty {
            // Stores a permit if the write task is not waiting yet, so no wake-up is lost.
            self.inner.ready.notify_one();
        }
        true
    }

    /// The oldest queued frame, if any (for the write task).
    pub fn try_next_frame(&self) -> Option<Utf8Bytes> {
        let mut queue = self.queue();
        let was_high = queue.bytes >= self.watermark();
        let frame = queue.pop();
        let crossed = was_high && queue.bytes < self.watermark();
        drop(queue);
        // Only the pop that takes the queue below the watermark wakes the reader.
        if crossed {
            self.inner.drained.notify_waiters();
        }
        frame
    }

    /// Bytes queued and not yet taken by the write task.
    pub fn queued_bytes(&self) -> usize {
        self.queue().bytes
    }

    /// Half the byte bound: above it the socket's frames are not read.
    fn watermark(&self) -> usize {
        self.inner.max_bytes / 2
    }

    /// Resolves once the queue holds less than half its byte bound (at once if it does), or
    /// it is shut. The read task waits on it before reading the client's next frame.
    pub async fn drained(&self) {
        loop {
            let notified = self.inner.drained.notified();
            {
                let queue = self.queue();
                if queue.shut || queue.bytes < self.watermark() {
                    return;
                }
            }
            notified.await;
        }
    }

    /// The oldest queued frame, waiting for one; `None` once the queue is shut.
    pub async fn next_frame(&self) -> Option<Utf8Bytes> {
        loop {
            if let Some(frame) = self.try_next_frame() {
                return Some(frame);
            }
            if self.queue().shut {
                return None;
            }
            self.inner.ready.notified().await;
        }
    }

    /// The write task has ended: queued frames are dropped and later deliveries fail.
    pub fn shut(&self) {
        let mut queue = self.queue();
        queue.shut = true;
        queue.frames = VecDeque::new();
        queue.bytes = 0;
        drop(queue);
        self.inner.ready.notify_one();
        self.inner.drained.notify_waiters();
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
    /// Asks for the socket to close; the first request wins. True if it was this one.
    pub fn close(&self, code: u16, reason: impl Into<Cow<'static, str>>) -> bool {
        let first = self.inner.close.set((code, reason.into())).is_ok();
        if first {
            self.inner.closed.notify_waiters();
            self.inner.closed.notify_one();
        }
        first
    }

    /// Closes the socket as a slow consumer (1013): its queue is full, or a write stalled.
    pub fn close_slow(&self) {
        if self.close(SLOW_CONSUMER.0, SLOW_CONSUMER.1) {
            metrics::counter!("hearth_ws_slow_consumers_total").increment(1);
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

/// The most bytes any socket's queue has held since the process started (`/metrics`).
static PEAK_BYTES: AtomicUsize = AtomicUsize::new(0);

/// The most bytes any one socket's queue has held since the process started.
pub fn peak_queued_bytes() -> usize {
    PEAK_BYTES.load(Ordering::Relaxed)
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

    fn frames(frames: usize) -> QueueBound {
        QueueBound {
            frames,
            bytes: 1 << 20,
        }
    }

    #[test]
    fn the_queue_is_bounded_in_bytes_as_well_as_frames() {
        let conn = ConnHandle::new(
            1,
            1,
            [0; 32],
            QueueBound {
                frames: 100,
                bytes: 10,
            },
        );
        assert!(conn.deliver(&frame("1234")));
        assert!(conn.deliver(&frame("123456")));
        assert_eq!(conn.queued_bytes(), 10);
        assert!(!conn.deliver(&frame("x")), "one byte more than the bound");
        assert_eq!(conn.inner.close.get().map(|c| c.0), Some(SLOW_CONSUMER.0));
        conn.try_next_frame();
        assert_eq!(conn.queued_bytes(), 6);
    }

    #[tokio::test]
    async fn the_reader_waits_while_more_than_half_the_bytes_are_queued() {
        let conn = ConnHandle::new(
            1,
            1,
            [0; 32],
            QueueBound {
                frames: 100,
                bytes: 10,
            },
        );
        assert!(conn.deliver(&frame("123")));
        conn.drained().await; // 3 of 10: reading goes on
        assert!(conn.deliver(&frame("45")));
        let reader = tokio::spawn({
            let conn = conn.clone();
            async move { conn.drained().await }
        });
        tokio::task::yield_now().await;
        assert!(!reader.is_finished(), "5 of 10 bytes queued: reading waits");
        conn.try_next_frame();
        tokio::time::timeout(Duration::from_secs(5), reader)
            .await
            .expect("the pop below half wakes the reader")
            .unwrap();
    }

    #[test]
    fn frames_come_out_in_order_and_a_full_queue_closes_as_slow_consumer() {
        let conn = ConnHandle::new(1, 1, [0; 32], frames(3));
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
        let conn = ConnHandle::new(1, 1, [0; 32], frames(8));
        assert!(conn.deliver(&frame("a")));
        conn.shut();
        assert_eq!(conn.try_next_frame(), None);
        assert!(!conn.deliver(&frame("b")));
        assert!(!conn.is_closing(), "a gone socket is not a slow consumer");
    }

    #[test]
    fn a_drained_queue_gives_back_a_burst_sized_buffer() {
        let conn = ConnHandle::new(1, 1, [0; 32], frames(1024));
        for _ in 0..500 {
            assert!(conn.deliver(&frame("x")));
        }
        assert!(conn.queue().frames.capacity() >= 500);
        while conn.try_next_frame().is_some() {}
        assert!(conn.queue().frames.capacity() <= KEEP_SLOTS);
    }

    #[tokio::test]
    async fn hearing_from_the_client_moves_its_last_heard_time() {
        let conn = ConnHandle::new(1, 1, [0; 32], frames(8));
        let opened = conn.heard_at();
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(conn.heard_at(), opened, "nothing heard yet");
        conn.heard();
        assert!(conn.heard_at() >= opened + Duration::from_millis(29));
        assert!(conn.heard_at() <= Instant::now());
    }

    #[tokio::test]
    async fn the_writer_wakes_for_a_frame_delivered_while_it_waits() {
        let conn = ConnHandle::new(1, 1, [0; 32], frames(8));
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
