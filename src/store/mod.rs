//! The store: one sled database in the data directory, split into typed trees.
//!
//! - `meta`: the schema version, checked at open, and in a restored database the id floor.
//! - `users`, `usernames`, `sessions`, `user_sessions`: accounts (see [`accounts`]).
//! - `identities`, `user_identities`: OAuth identities and their users (see [`identities`]).
//! - `rooms`, `members`, `bans`, `items`, `user_rooms`: rooms and history (see [`rooms`]).
//! - `bot_jobs`: the bots' durable command queue (see [`jobs`]); `bot_kv`: each bot plugin's
//!   key-value store (see [`kv`]).
//!
//! Writes are applied to sled at once and made durable by [`Store::commit`], which joins the
//! group-commit writer in [`commit`]: one flush + fsync covers every write that was waiting.
//!
//! Every write also holds the write gate (shared) while it changes sled; [`snapshot`] takes the
//! gate exclusively for the moment it needs to copy every tree, so a backup sees the database
//! between two writes, never in the middle of one. Opening runs the integrity check in
//! [`check`].

pub mod accounts;
pub mod check;
mod commit;
pub mod identities;
pub mod jobs;
pub mod kv;
pub mod rooms;
pub mod snapshot;

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard};

use serde::de::DeserializeOwned;
use serde::Serialize;

pub use accounts::{SessionRecord, UserRecord};
use commit::Committer;

/// sled's page cache when the configuration does not say (`store.cache_mb`).
pub const DEFAULT_CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// The layout this build writes. Bump it with a migration in [`Store::check_schema`].
///
/// 2: `meta` may hold `id_floor` (written by `hearth restore`), added to every id sled
/// generates. A hearth that predates it would hand out ids the restored records already use, so
/// version 1 binaries must refuse such a database; migrating 1 to 2 changes no record.
pub const SCHEMA_VERSION: u32 = 2;
const SCHEMA_KEY: &[u8] = b"schema_version";
const ID_FLOOR_KEY: &[u8] = b"id_floor";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the database in {0} is in use by another process (is hearth already running?)")]
    Locked(PathBuf),
    #[error(
        "the database in {dir} has schema version {found}, but this hearth understands up to \
         {supported}; run the newer hearth that wrote it, or restore a backup"
    )]
    NewerSchema {
        dir: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("stored record in tree `{tree}` cannot be read: {detail}")]
    Corrupt { tree: &'static str, detail: String },
    #[error(
        "the database in {dir} is damaged: {what}: {detail}\n\
         hearth will not serve a damaged database. To restore your last backup: stop hearth, \
         move {dir} out of the way, run `hearth restore BACKUP-FILE` with the same --config or \
         --data-dir, and start hearth again (docs/operations.md, \"Restore\")"
    )]
    Damaged {
        dir: PathBuf,
        what: String,
        detail: String,
    },
    #[error("database error: {0}")]
    Sled(#[from] sled::Error),
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    #[error("the store's commit writer has stopped")]
    WriterGone,
}

impl StoreError {
    /// Errors are cloned to every writer waiting on one group commit.
    fn duplicate(&self) -> StoreError {
        match self {
            StoreError::WriterGone => StoreError::WriterGone,
            other => StoreError::Io(std::io::Error::other(other.to_string())),
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A handle on the open database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    pub(crate) users: sled::Tree,
    pub(crate) usernames: sled::Tree,
    pub(crate) sessions: sled::Tree,
    pub(crate) user_sessions: sled::Tree,
    pub(crate) identities: sled::Tree,
    pub(crate) user_identities: sled::Tree,
    pub(crate) rooms: sled::Tree,
    pub(crate) members: sled::Tree,
    pub(crate) bans: sled::Tree,
    pub(crate) items: sled::Tree,
    pub(crate) user_rooms: sled::Tree,
    pub(crate) bot_jobs: sled::Tree,
    pub(crate) bot_kv: sled::Tree,
    committer: Committer,
    /// Held shared by every write, exclusively by [`Store::snapshot`].
    gate: Arc<RwLock<()>>,
    /// Added to sled's generated ids; non-zero only in a restored database (see
    /// [`SCHEMA_VERSION`]).
    id_floor: u64,
}

impl Store {
    /// Opens (or creates) the database under `data_dir/db`, checks its schema version and reads
    /// every record through the integrity check ([`check`]); a damaged one is refused.
    ///
    /// Must be called inside a tokio runtime: it starts the group-commit writer.
    pub fn open(data_dir: &Path) -> Result<Store> {
        Self::open_with_cache(data_dir, DEFAULT_CACHE_BYTES)
    }

    /// [`Store::open`] with sled's page cache capped at `cache_bytes` (sled's own default is
    /// 1 GiB, too much for a Raspberry Pi).
    pub fn open_with_cache(data_dir: &Path, cache_bytes: u64) -> Result<Store> {
        let dir = data_dir.join("db");
        // The integrity check reads every page once. It gets a handle of its own, with a small
        // cache, closed before serving: on the serving handle the pages it read stayed cached
        // far beyond `cache_bytes` (a 1M-message store then served at 181 MB RSS, now 56 MB).
        // Reopening costs one more recovery, about a tenth of a second on that store.
        {
            let db = open_sled(&dir, CHECK_CACHE_BYTES)?;
            Self::check_schema(&db, &dir)?;
            let report = check::verify(&db, &dir)?;
            tracing::info!(
                records = report.records,
                bytes = report.bytes,
                took_ms = report.took.as_millis() as u64,
                "integrity check passed"
            );
        }
        let db = open_sled(&dir, cache_bytes)?;
        let id_floor = match db.open_tree("meta")?.get(ID_FLOOR_KEY)? {
            Some(raw) => {
                u64::from_be_bytes(raw.as_ref().try_into().map_err(|_| StoreError::Corrupt {
                    tree: "meta",
                    detail: "id floor is not 8 bytes".into(),
                })?)
            }
            None => 0,
        };
        let committer = Committer::start(db.clone(), &dir)?;
        Ok(Store {
            users: db.open_tree("users")?,
            usernames: db.open_tree("usernames")?,
            sessions: db.open_tree("sessions")?,
            user_sessions: db.open_tree("user_sessions")?,
            identities: db.open_tree("identities")?,
            user_identities: db.open_tree("user_identities")?,
            rooms: db.open_tree("rooms")?,
            members: db.open_tree("members")?,
            bans: db.open_tree("bans")?,
            items: db.open_tree("items")?,
            user_rooms: db.open_tree("user_rooms")?,
            bot_jobs: db.open_tree("bot_jobs")?,
            bot_kv: db.open_tree("bot_kv")?,
            db,
            committer,
            gate: Arc::default(),
            id_floor,
        })
    }

    fn check_schema(db: &sled::Db, dir: &Path) -> Result<()> {
        let meta = db.open_tree("meta")?;
        let damaged = |detail: &str| StoreError::Damaged {
            dir: dir.to_path_buf(),
            what: "tree `meta`".into(),
            detail: detail.into(),
        };
        match meta.get(SCHEMA_KEY)? {
            None => {
                // A new database is empty. Records without a schema version mean `meta` was
                // lost, and guessing the layout could misread every record.
                for name in db.tree_names() {
                    if name.as_ref() != b"meta" && !db.open_tree(&name)?.is_empty() {
                        return Err(damaged("the schema version is missing"));
                    }
                }
                meta.insert(SCHEMA_KEY, &SCHEMA_VERSION.to_be_bytes())?;
                db.flush()?;
                Ok(())
            }
            Some(raw) => {
                let bytes: [u8; 4] = raw
                    .as_ref()
                    .try_into()
                    .map_err(|_| damaged("the schema version is not 4 bytes"))?;
                let found = u32::from_be_bytes(bytes);
                if found > SCHEMA_VERSION {
                    return Err(StoreError::NewerSchema {
                        dir: dir.to_path_buf(),
                        found,
                        supported: SCHEMA_VERSION,
                    });
                }
                if found < SCHEMA_VERSION {
                    // 1 -> 2 changes no record (see SCHEMA_VERSION); later migrations go here.
                    tracing::info!(from = found, to = SCHEMA_VERSION, "migrating the database");
                    meta.insert(SCHEMA_KEY, &SCHEMA_VERSION.to_be_bytes())?;
                    db.flush()?;
                }
                Ok(())
            }
        }
    }

    /// Waits until every write made before this call is on disk (flush + fsync, batched).
    pub async fn commit(&self) -> Result<()> {
        self.committer.commit().await
    }

    /// How many group flushes have run since open.
    pub fn commit_flushes(&self) -> u64 {
        self.committer.flushes()
    }

    /// Flushes synchronously; used at shutdown and by the command-line tools.
    pub fn flush_blocking(&self) -> Result<()> {
        self.db.flush()?;
        Ok(())
    }

    /// A fresh unique id (monotonic, persisted by sled), above every id in a restored backup.
    pub(crate) fn next_id(&self) -> Result<u64> {
        Ok(self.id_floor + self.db.generate_id()?)
    }

    /// Taken by every method that writes, for as long as it changes sled: a snapshot waits for
    /// the writes in progress and holds new ones off while it copies (see [`snapshot`]).
    /// Writers never take it twice, so they cannot deadlock behind a waiting snapshot.
    pub(crate) fn writing(&self) -> RwLockReadGuard<'_, ()> {
        // A poisoned gate guards no data of its own; carry on.
        self.gate.read().unwrap_or_else(PoisonError::into_inner)
    }

    #[cfg(test)]
    pub(crate) fn set_schema_version_for_test(&self, version: u32) -> Result<()> {
        self.db
            .open_tree("meta")?
            .insert(SCHEMA_KEY, &version.to_be_bytes())?;
        self.flush_blocking()
    }
}

/// sled's cache while the start-up integrity check reads the database through once.
const CHECK_CACHE_BYTES: u64 = 8 * 1024 * 1024;

/// Opens the sled database in `dir`, turning its lock and checksum errors into ours.
/// How long an open waits for sled to release a lock that is on its way out.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Opens the database, waiting briefly while its lock is held. sled releases its file lock
/// only when its IO threads drop their last reference, a moment after the last handle is gone:
/// an open right after a close in this process (the integrity check's own handle, a restart in
/// tests) or right after another hearth exited can find the lock still held. A hearth that is
/// really running holds it for longer than the wait and is reported as such.
fn open_sled(dir: &Path, cache_bytes: u64) -> Result<sled::Db> {
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        match try_open_sled(dir, cache_bytes) {
            Err(StoreError::Locked(_)) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            outcome => return outcome,
        }
    }
}

fn try_open_sled(dir: &Path, cache_bytes: u64) -> Result<sled::Db> {
    let config = sled::Config::new().path(dir).cache_capacity(cache_bytes);
    config.open().map_err(|e| match e {
        sled::Error::Io(io) if io.to_string().contains("could not acquire lock") => {
            StoreError::Locked(dir.to_path_buf())
        }
        sled::Error::Corruption { at, .. } => StoreError::Damaged {
            dir: dir.to_path_buf(),
            what: "sled's log".into(),
            detail: match at {
                Some(at) => format!("a checksum does not match at {at:?}"),
                None => "a checksum does not match".into(),
            },
        },
        other => StoreError::Sled(other),
    })
}

/// Encodes a record for a tree. JSON keeps the database inspectable by hand.
pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Serializing plain structs of strings and numbers cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

pub(crate) fn decode<T: DeserializeOwned>(tree: &'static str, raw: &[u8]) -> Result<T> {
    serde_json::from_slice(raw).map_err(|e| StoreError::Corrupt {
        tree,
        detail: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn newer_schema_refuses_to_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            store
                .set_schema_version_for_test(SCHEMA_VERSION + 1)
                .unwrap();
        }
        let err = Store::open(dir.path()).err().expect("must refuse");
        assert!(
            matches!(err, StoreError::NewerSchema { found, .. } if found == SCHEMA_VERSION + 1)
        );
        assert!(err.to_string().contains("newer hearth"));
    }

    #[tokio::test]
    async fn second_open_reports_running_hearth() {
        let dir = tempfile::tempdir().unwrap();
        let _first = Store::open(dir.path()).unwrap();
        let err = Store::open(dir.path()).err().expect("must refuse");
        assert!(matches!(err, StoreError::Locked(_)), "{err}");
        assert!(err.to_string().contains("is hearth already running?"));
    }

    /// Many writers committing at once share flushes: a flush covers every request that queued
    /// while the previous one ran.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_commits_share_flushes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let writers = 200;
        let tasks: Vec<_> = (0..writers)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .users
                        .insert(format!("k{i}"), b"v".as_slice())
                        .unwrap();
                    store.commit().await.unwrap();
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let flushes = store.commit_flushes();
        assert!(flushes >= 1);
        assert!(
            flushes < writers / 2,
            "{flushes} flushes for {writers} commits"
        );
    }

    #[tokio::test]
    async fn reopen_keeps_schema() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path()).unwrap());
        Store::open(dir.path()).unwrap();
    }
}
