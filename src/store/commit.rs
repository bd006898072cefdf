//! Group commit: writers apply their changes to sled, then ask for durability here. One task
//! collects every request that arrived while the previous flush ran and covers them all with
//! one `flush` plus one `fsync`.
//!
//! Why the fsync: sled 0.34's flush ends with `sync_file_range`, which does not make the data
//! safe against a power cut; `sync_all` on the database file does. Any blob file comes first
//! (see [`super::layout`]): hearth's layout makes none, but one that existed would have to be
//! on disk before the log that points at it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::{Result, StoreError, Trees};

/// Requests waiting at once before callers feel backpressure.
const QUEUE_DEPTH: usize = 4096;

struct Request {
    // Carried by each request (a cheap clone) so that an idle writer holds no database handle:
    // dropping the last `Store` releases the database lock, and a reopened database is the
    // one flushed from then on.
    trees: Arc<Trees>,
    done: oneshot::Sender<Result<()>>,
}

#[derive(Clone)]
pub(super) struct Committer {
    requests: mpsc::Sender<Request>,
    flushes: Arc<AtomicU64>,
}

impl Committer {
    pub(super) fn start() -> Committer {
        let (requests, queue) = mpsc::channel(QUEUE_DEPTH);
        let flushes = Arc::new(AtomicU64::new(0));
        tokio::spawn(run(queue, flushes.clone()));
        Committer { requests, flushes }
    }

    /// Flushes made so far (each covering one batch).
    pub(super) fn flushes(&self) -> u64 {
        self.flushes.load(Ordering::Relaxed)
    }

    pub(super) async fn commit(&self, trees: Arc<Trees>) -> Result<()> {
        let (done, wait) = oneshot::channel();
        self.requests
            .send(Request { trees, done })
            .await
            .map_err(|_| StoreError::WriterGone)?;
        wait.await.map_err(|_| StoreError::WriterGone)?
    }
}

async fn run(mut queue: mpsc::Receiver<Request>, flushes: Arc<AtomicU64>) {
    let mut batch = Vec::new();
    while queue.recv_many(&mut batch, QUEUE_DEPTH).await > 0 {
        // Normally one database; two when it was reopened while requests waited.
        let mut targets: Vec<Arc<Trees>> = Vec::new();
        for request in &batch {
            if !targets.iter().any(|t| Arc::ptr_eq(t, &request.trees)) {
                targets.push(request.trees.clone());
            }
        }
        let size = batch.len();
        let started = std::time::Instant::now();
        let outcome = tokio::task::spawn_blocking(move || -> Result<()> {
            for trees in &targets {
                let blobs = super::layout::sync_blobs(&trees.dir)?;
                if blobs > 0 {
                    tracing::warn!(
                        blobs,
                        "the database holds large-record files, which its layout should never \
                         make; they were made durable"
                    );
                }
                let mut entries = trees.entries.lock().unwrap_or_else(|e| e.into_inner());
                super::layout::sync_dir_if_changed(&trees.dir, &mut entries)?;
                drop(entries);
                trees.db.flush()?;
                trees.file.sync_all()?;
            }
            Ok(())
        })
        .await
        .unwrap_or_else(|e| Err(StoreError::Io(std::io::Error::other(e.to_string()))));
        flushes.fetch_add(1, Ordering::Relaxed);
        metrics::histogram!("hearth_store_commit_batch_size").record(size as f64);
        metrics::histogram!("hearth_store_commit_seconds").record(started.elapsed().as_secs_f64());
        if let Err(e) = &outcome {
            tracing::error!(error = %e, "store commit failed");
        }
        for request in batch.drain(..) {
            let result = match &outcome {
                Ok(()) => Ok(()),
                Err(e) => Err(e.duplicate()),
            };
            // A writer that gave up waiting does not need its answer.
            let _ = request.done.send(result);
        }
    }
}
