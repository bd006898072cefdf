//! Erasing deleted and replaced text from the disk, not only from the history.
//!
//! sled writes a record's new version beside the old one: a deleted message's tombstone, or an
//! edit, leaves the old text in the log files until sled happens to reuse that part of them.
//! So a write that deletes or replaces text also notes, in `meta`, that the database owes an
//! erase ([`Store::replace_item`]); durably with the change, so a stop or a crash before the
//! erase does not forget it. The eraser ([`run`]) then rewrites the database into a fresh one
//! a moment later (`store.erase_after_ms`; changes within it share one rewrite), copying every
//! live record, and swaps it in while the server runs:
//!
//! 1. with the write gate held exclusively (writes wait; reads go on), everything is flushed
//!    and every record copied into `db.rebuilding` beside the database, which is made durable
//!    and then read through by the integrity check;
//! 2. the serving handle is let go (readers wait a moment), and the two directories are
//!    swapped by renaming, as a rebuild does, so a crash at any point leaves one whole database
//!    (`rebuild::finish_interrupted` tells which at the next open; an old one still owes its
//!    erase, and gets it);
//! 3. the new database is opened and serves; the old one's files are removed.
//!
//! A rewrite reads and writes the whole database, so after one that took T the next waits at
//! least 10 T: on a large database, erasing takes no more than a tenth of the time however
//! often people edit. A clean stop erases what is owed before it seals the database.
//!
//! What this does not reach: backups taken before the delete keep the text until they are
//! rotated out, and the file system may keep freed blocks on the device until it reuses them.

use std::path::Path;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::layout::{self, Layout};
use super::rebuild::{copy_into, previous, room_for_a_copy, staging, sync_parent};
use super::rooms::{item_key, Item};
use super::{
    check, encode_bounded, id_floor, open_sled, Result, Store, StoreError, Trees, CHECK_CACHE_BYTES,
};
use crate::ids::RoomCode;

/// In `meta`: present while the log may hold text that was deleted or replaced.
pub(super) const ERASE_KEY: &[u8] = b"erase_owed";

/// How long the swap waits for the old database's last reader and for sled to let go of it.
const RELEASE_WAIT: Duration = Duration::from_secs(5);

/// What one rewrite did.
#[derive(Debug, Clone, Copy)]
pub struct Erased {
    pub records: u64,
    pub took: Duration,
}

impl Store {
    /// Stores `item` in place of the one with its seq, an edit or a delete: the text it had
    /// is owed an erase, noted in the same write.
    pub fn replace_item(&self, code: &RoomCode, item: &Item) -> Result<()> {
        let raw = encode_bounded(item)?;
        self.write(|t| {
            t.items.insert(item_key(code, item.seq), raw)?;
            t.db.open_tree("meta")?.insert(ERASE_KEY, &[1u8])?;
            Ok::<_, StoreError>(())
        })?;
        self.shared.erase_wanted.notify_one();
        Ok(())
    }

    /// Whether deleted or replaced text may still be in the database's files.
    pub fn erase_owed(&self) -> Result<bool> {
        Ok(self
            .trees()?
            .db
            .open_tree("meta")?
            .get(ERASE_KEY)?
            .is_some())
    }

    /// Rewrites the database without the old versions its log holds, if an erase is owed (see
    /// the module's documentation). Blocking: writes wait while it copies.
    pub fn erase_now(&self) -> Result<Option<Erased>> {
        let started = Instant::now();
        let _gate = self.exclusive();
        let trees = self.trees()?;
        if trees.db.open_tree("meta")?.get(ERASE_KEY)?.is_none() {
            return Ok(None);
        }
        let dir = self.shared.dir.clone();
        let staging = staging(&dir);
        if staging.exists() {
            std::fs::remove_dir_all(&staging)?;
        }
        let copied = copy(self, &trees, &staging);
        let records = match copied {
            Ok(records) => records,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&staging);
                return Err(e);
            }
        };
        drop(trees);
        self.swap_in(&dir)?;
        let took = started.elapsed();
        tracing::info!(
            records,
            took_ms = took.as_millis() as u64,
            "deleted and replaced text erased: the database was rewritten without it"
        );
        Ok(Some(Erased { records, took }))
    }

    /// Puts `db.rebuilding` in place of the serving database (step 2 of the module's list).
    fn swap_in(&self, dir: &Path) -> Result<()> {
        let mut open = self
            .shared
            .open
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(mut old) = open.take() else {
            return Err(StoreError::Unavailable);
        };
        // Readers that took the handle before finish with it; new ones wait for the lock.
        let deadline = Instant::now() + RELEASE_WAIT;
        let old = loop {
            match Arc::try_unwrap(old) {
                Ok(trees) => break trees,
                Err(shared) if Instant::now() < deadline => {
                    old = shared;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(shared) => {
                    *open = Some(shared);
                    let _ = std::fs::remove_dir_all(staging(dir));
                    return Err(StoreError::Io(std::io::Error::other(
                        "the database stayed in use; the erase is tried again later",
                    )));
                }
            }
        };
        drop(old);
        // sled's threads write to the old files until they let go of its lock; only then may
        // the directory move.
        wait_unlocked(&dir.join("db"))?;
        let previous = previous(dir);
        std::fs::rename(dir, &previous)?;
        std::fs::rename(staging(dir), dir)?;
        sync_parent(dir)?;
        let cache = self.shared.cache_bytes;
        match Trees::serving(dir, cache, Layout::CURRENT) {
            Ok(fresh) => {
                let floor = id_floor(&fresh.db)?;
                self.shared
                    .id_floor
                    .store(floor, std::sync::atomic::Ordering::Release);
                *open = Some(Arc::new(fresh));
            }
            Err(e) => {
                // Back to the old database, which still owes its erase.
                tracing::error!(error = %e, "the rewritten database did not open; keeping the old one");
                std::fs::rename(dir, staging(dir))?;
                std::fs::rename(&previous, dir)?;
                sync_parent(dir)?;
                *open = Some(Arc::new(Trees::serving(dir, cache, Layout::CURRENT)?));
                let _ = std::fs::remove_dir_all(staging(dir));
                return Err(e);
            }
        }
        drop(open);
        if let Err(e) = std::fs::remove_dir_all(&previous) {
            // The next open removes it (rebuild::finish_interrupted).
            tracing::warn!(error = %e, "cannot remove the database's old files yet");
        }
        Ok(())
    }
}

/// Copies every record of `trees` but the erase mark into a new database at `staging`, makes
/// it durable and checks it; answers how many records it holds.
fn copy(store: &Store, trees: &Trees, staging: &Path) -> Result<u64> {
    trees.db.flush()?;
    room_for_a_copy(&store.shared.dir)?;
    let floor = store
        .shared
        .id_floor
        .load(std::sync::atomic::Ordering::Acquire);
    let written = copy_into(&trees.db, floor, staging, |tree, key| {
        !(tree == b"meta" && key == ERASE_KEY)
    })?;
    let db = open_sled(staging, CHECK_CACHE_BYTES, Layout::CURRENT)?;
    Store::check_schema(&db, staging)?;
    check::verify(&db, staging)?;
    drop(db);
    wait_unlocked(&staging.join("db"))?;
    layout::sync_dir(staging)?;
    Ok(written)
}

/// Waits until no sled instance holds the lock on the log file at `path`.
fn wait_unlocked(path: &Path) -> Result<()> {
    use fs2::FileExt;
    let file = std::fs::File::open(path)?;
    let deadline = Instant::now() + RELEASE_WAIT;
    loop {
        if file.try_lock_exclusive().is_ok() {
            file.unlock()?;
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(StoreError::Locked(path.to_path_buf()));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The eraser: rewrites the database a moment (`after`) after text was deleted or replaced,
/// and at start if an erase is owed; stops when `stop` is cancelled.
pub async fn run(store: Store, after: Duration, stop: CancellationToken) {
    let mut rest = Duration::ZERO;
    loop {
        let owed = store.erase_owed().unwrap_or(false);
        if !owed {
            tokio::select! {
                () = stop.cancelled() => return,
                () = store.shared.erase_wanted.notified() => continue,
            }
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(after.max(rest)) => {}
        }
        let erasing = store.clone();
        match tokio::task::spawn_blocking(move || erasing.erase_now()).await {
            Ok(Ok(Some(erased))) => rest = erased.took * 10,
            Ok(Ok(None)) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "erasing deleted text failed; trying again later");
                rest = rest.max(Duration::from_secs(60));
            }
            Err(e) => tracing::error!(error = %e, "the eraser stopped"),
        }
    }
}
