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
//! On disk the database is laid out so that sled keeps every record in the log the commit
//! fsyncs ([`layout`]); databases made before that layout are rebuilt into it at their first
//! open ([`rebuild`]).
//!
//! Every write also holds the write gate (shared) while it changes sled; [`snapshot`] takes the
//! gate exclusively for the moment it needs to copy every tree, so a backup sees the database
//! between two writes, never in the middle of one. Opening runs the integrity check in
//! [`check`], unless the database is exactly as a clean stop left it ([`seal`]).

pub mod accounts;
pub mod check;
mod commit;
pub mod erase;
pub mod identities;
pub mod jobs;
pub mod kv;
pub mod layout;
mod rebuild;
pub mod rooms;
pub mod seal;
pub mod snapshot;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::config::StoreConfig;
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
/// The marker a clean stop writes last (see [`seal`]).
const CLEAN_STOP_KEY: &[u8] = b"clean_stop";
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
    #[error(
        "only {free} bytes are free for the database in {dir}; hearth needs {needed} to open \
         it safely (opening writes to it, and running out of space half-way would damage it). \
         Free some space and start hearth again"
    )]
    NoSpace {
        dir: PathBuf,
        free: u64,
        needed: u64,
    },
    /// A write failed (the disk full, say), and reopening the database has not worked yet.
    #[error("the database cannot take writes right now; it is reopened as soon as it can be")]
    Unavailable,
    /// The database was reopened after a failed write: what was written before that is not
    /// durable, whatever a flush says.
    #[error("the database was reopened after a failed write; this write did not last")]
    Reopened,
    /// A record larger than the store keeps (see [`layout::MAX_RECORD_BYTES`]).
    #[error("that is too large to store: {bytes} bytes, and one record holds at most {max}")]
    TooLarge { bytes: usize, max: usize },
    #[error(transparent)]
    Layout(#[from] layout::LayoutError),
}

impl StoreError {
    /// Whether this error means the database itself failed (the disk, sled), rather than a
    /// record or a caller being wrong: such a failure leaves sled refusing every write until
    /// it is reopened.
    fn is_failure(&self) -> bool {
        match self {
            StoreError::Sled(e) => !matches!(
                e,
                sled::Error::CollectionNotFound(_) | sled::Error::Unsupported(_)
            ),
            StoreError::Io(_) | StoreError::Damaged { .. } | StoreError::Layout(_) => true,
            _ => false,
        }
    }
}

/// Errors of writes, as far as the store needs to know: whether the database failed.
pub(crate) trait WriteError: From<StoreError> {
    fn store_failure(&self) -> bool;
}

impl WriteError for StoreError {
    fn store_failure(&self) -> bool {
        self.is_failure()
    }
}

impl StoreError {
    /// Errors are cloned to every writer waiting on one group commit.
    fn duplicate(&self) -> StoreError {
        match self {
            StoreError::WriterGone => StoreError::WriterGone,
            StoreError::Unavailable => StoreError::Unavailable,
            StoreError::Reopened => StoreError::Reopened,
            StoreError::TooLarge { bytes, max } => StoreError::TooLarge {
                bytes: *bytes,
                max: *max,
            },
            other => StoreError::Io(std::io::Error::other(other.to_string())),
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// One open sled database: its trees, and its file, which the group commit fsyncs.
pub(crate) struct Trees {
    pub(crate) db: sled::Db,
    /// `data_dir/db`: the group commit fsyncs any blob under it (see [`layout::sync_blobs`]).
    dir: PathBuf,
    /// The directory's entries when the group commit last fsynced it.
    entries: Mutex<Vec<std::ffi::OsString>>,
    file: std::fs::File,
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
}

impl Trees {
    /// Opens the database in `dir` after the integrity check ([`check`]), which reads every
    /// record on a handle of its own: the pages it read stayed cached far beyond `cache_bytes`
    /// on the serving handle (a 1M-message store then served at 181 MB RSS, now 56 MB).
    /// Reopening costs one more recovery, about a tenth of a second on that store.
    ///
    /// With `trust_seal`, a database exactly as a clean stop left it ([`seal`]) skips the
    /// record-by-record pass; its schema version is checked all the same.
    fn open(dir: &Path, cache_bytes: u64, trust_seal: bool) -> Result<Trees> {
        check_space(dir)?;
        rebuild::finish_interrupted(dir)?;
        let layout = match layout::inspect(dir)? {
            layout::Found::Current(layout) => layout,
            layout::Found::Nothing => {
                layout::create(dir, layout::Layout::CURRENT)?;
                layout::Layout::CURRENT
            }
            layout::Found::Legacy => {
                refuse_broken_blobs(dir)?;
                rebuild::into_current_layout(dir)?;
                layout::Layout::CURRENT
            }
        };
        refuse_broken_blobs(dir)?;
        let seal = seal::read(dir);
        let sealed = trust_seal && seal.as_ref().is_some_and(|s| s.matches_files(dir));
        if sealed {
            tracing::info!("integrity check skipped: the database is as a clean stop left it");
        } else {
            let db = open_sled(dir, CHECK_CACHE_BYTES, layout)?;
            Store::check_schema(&db, dir)?;
            let report = unpanicked(dir, "reading every record", || check::verify(&db, dir))?;
            tracing::info!(
                records = report.records,
                bytes = report.bytes,
                took_ms = report.took.as_millis() as u64,
                "integrity check passed"
            );
        }
        let trees = Trees::serving(dir, cache_bytes, layout)?;
        if sealed {
            Store::check_schema(&trees.db, dir)?;
        }
        if let Some(seal) = seal {
            confirm_clean_stop(&trees.db, dir, &seal)?;
        }
        Ok(trees)
    }

    /// The serving handle on the database in `dir`, which has been checked.
    fn serving(dir: &Path, cache_bytes: u64, layout: layout::Layout) -> Result<Trees> {
        let db = open_sled(dir, cache_bytes, layout)?;
        layout::sync_after_open(dir)?;
        Ok(Trees {
            dir: dir.to_path_buf(),
            entries: Mutex::new(Vec::new()),
            file: std::fs::File::open(dir.join("db"))?,
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
        })
    }
}

/// After a clean stop, the marker it wrote last must be in the database as sled opened it
/// (see [`seal`]); then the seal has served and goes. A database refused here keeps its seal,
/// so it stays refused at the next attempt.
fn confirm_clean_stop(db: &sled::Db, dir: &Path, seal: &seal::Seal) -> Result<()> {
    let marker = db.open_tree("meta")?.get(CLEAN_STOP_KEY)?;
    if marker.as_deref() != Some(&seal.marker.to_be_bytes()[..]) {
        return Err(StoreError::Damaged {
            dir: dir.to_path_buf(),
            what: "the last writes before the clean stop".into(),
            detail: "they are missing: the files were changed after hearth stopped, and what \
                     sled reads ends early"
                .into(),
        });
    }
    if let Err(e) = seal::remove(dir) {
        tracing::warn!(error = %e, "cannot remove the clean-stop seal");
    }
    Ok(())
}

/// Refuses a database with a blob that a power cut left short: sled's recovery would stop at
/// it and drop every later record, or panic (see [`layout`]).
fn refuse_broken_blobs(dir: &Path) -> Result<()> {
    match layout::check_blobs(dir)? {
        None => Ok(()),
        Some(broken) => Err(StoreError::Damaged {
            dir: dir.to_path_buf(),
            what: format!("the large record {}", broken.path.display()),
            detail: format!(
                "{}; the machine probably lost power before it was written out, and sled would \
                 serve a history shortened at that point",
                broken.problem
            ),
        }),
    }
}

/// Runs a step of opening that sled may panic in (a damaged log can make it): the panic
/// becomes hearth's own refusal of a damaged database, never a crash at start.
fn unpanicked<T>(dir: &Path, what: &str, step: impl FnOnce() -> Result<T>) -> Result<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(step)) {
        Ok(outcome) => outcome,
        Err(panic) => {
            let detail = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "sled stopped with an internal error".into());
            Err(StoreError::Damaged {
                dir: dir.to_path_buf(),
                what: format!("sled's log ({what})"),
                detail,
            })
        }
    }
}

/// The id floor a restore or a rebuild left in `meta` (0 if none; see [`SCHEMA_VERSION`]).
fn id_floor(db: &sled::Db) -> Result<u64> {
    match db.open_tree("meta")?.get(ID_FLOOR_KEY)? {
        Some(raw) => Ok(u64::from_be_bytes(raw.as_ref().try_into().map_err(
            |_| StoreError::Corrupt {
                tree: "meta",
                detail: "id floor is not 8 bytes".into(),
            },
        )?)),
        None => Ok(0),
    }
}

/// A handle on the open database; cheap to clone.
///
/// A write that fails (the disk full, an I/O error) leaves sled refusing every later write
/// until the database is reopened. The store then counts as *broken*: the next write closes
/// the database and opens it again (with the integrity check), at most once a second, and
/// goes on if that worked. Reopening recovers what is on disk; writes that never got there are
/// gone, which is why a commit of writes made before a reopen fails (see [`Ticket`]).
#[derive(Clone)]
pub struct Store {
    shared: Arc<Shared>,
}

struct Shared {
    /// `data_dir/db`
    dir: PathBuf,
    cache_bytes: u64,
    /// The database; `None` only while it is being reopened, or when reopening failed.
    open: RwLock<Option<Arc<Trees>>>,
    /// How many times it was reopened.
    generation: AtomicU64,
    broken: AtomicBool,
    /// No reopen is tried before this.
    next_reopen: Mutex<Instant>,
    committer: Committer,
    /// Held shared by every write, exclusively by [`Store::snapshot`], by a reopen and by an
    /// erase.
    gate: RwLock<()>,
    /// Woken when text was deleted or replaced ([`erase`]).
    erase_wanted: tokio::sync::Notify,
    /// Added to sled's generated ids; non-zero only in a restored, rebuilt or erased database
    /// (see [`SCHEMA_VERSION`]).
    id_floor: AtomicU64,
}

/// Taken before writing and handed to [`Store::commit_since`]: names the database the writes
/// went to, so that a commit after a reopen (which dropped whatever had not reached the disk)
/// fails instead of confirming writes that are gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket(u64);

/// How long a broken store waits between attempts to reopen.
const REOPEN_EVERY: Duration = Duration::from_secs(1);

impl Store {
    /// Opens (or creates) the database under `data_dir/db`, checks its schema version and reads
    /// every record through the integrity check ([`check`]); a damaged one is refused.
    ///
    /// Must be called inside a tokio runtime: it starts the group-commit writer.
    pub fn open(data_dir: &Path) -> Result<Store> {
        Self::open_configured(data_dir, &StoreConfig::default())
    }

    /// [`Store::open`] as `[store]` says: sled's page cache capped at `store.cache_mb` (sled's
    /// own default is 1 GiB, too much for a Raspberry Pi), and whether a clean stop's seal may
    /// spare the full integrity check (`store.check_every_start`).
    pub fn open_configured(data_dir: &Path, config: &StoreConfig) -> Result<Store> {
        let dir = data_dir.join("db");
        let cache_bytes = config.cache_bytes();
        let trees = Trees::open(&dir, cache_bytes, !config.check_every_start)?;
        let id_floor = id_floor(&trees.db)?;
        Ok(Store {
            shared: Arc::new(Shared {
                dir,
                cache_bytes,
                open: RwLock::new(Some(Arc::new(trees))),
                generation: AtomicU64::new(0),
                broken: AtomicBool::new(false),
                next_reopen: Mutex::new(Instant::now()),
                committer: Committer::start(),
                gate: RwLock::new(()),
                erase_wanted: tokio::sync::Notify::new(),
                id_floor: AtomicU64::new(id_floor),
            }),
        })
    }

    /// The database as it is open now.
    pub(crate) fn trees(&self) -> Result<Arc<Trees>> {
        let open = self
            .shared
            .open
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        open.clone().ok_or(StoreError::Unavailable)
    }

    /// Runs one write: reopens a broken database first, holds the write gate (shared) for as
    /// long as `write` changes sled, so that a snapshot or a reopen never sees half of it, and
    /// marks the database broken if the write failed in sled or on the disk. Writes never nest,
    /// so they cannot deadlock behind a waiting snapshot.
    pub(crate) fn write<T, E: WriteError>(
        &self,
        write: impl FnOnce(&Trees) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        self.recover()?;
        // A poisoned gate guards no data of its own; carry on.
        let _gate = self
            .shared
            .gate
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let trees = self.trees()?;
        let outcome = write(&trees);
        if let Err(e) = &outcome {
            if e.store_failure() {
                self.mark_broken();
            }
        }
        outcome
    }

    /// The write gate, exclusively: no write in progress, none starting (a snapshot).
    pub(crate) fn exclusive(&self) -> std::sync::RwLockWriteGuard<'_, ()> {
        self.shared
            .gate
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn mark_broken(&self) {
        if !self.shared.broken.swap(true, Ordering::AcqRel) {
            tracing::error!(
                "a write to the database failed; it will be reopened before the next write"
            );
        }
    }

    /// Whether a write failed and the database has not been reopened since.
    pub fn is_broken(&self) -> bool {
        self.shared.broken.load(Ordering::Acquire)
    }

    /// If a write failed, closes the database and opens it again from what is on disk (at most
    /// once per [`REOPEN_EVERY`]); `Unavailable` while that has not worked.
    pub fn recover(&self) -> Result<()> {
        if !self.is_broken() {
            return Ok(());
        }
        {
            let mut next = self
                .shared
                .next_reopen
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if Instant::now() < *next {
                return Err(StoreError::Unavailable);
            }
            *next = Instant::now() + REOPEN_EVERY;
        }
        // No write in progress, none starting, no snapshot copying.
        let _gate = self
            .shared
            .gate
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if !self.is_broken() {
            return Ok(());
        }
        // Not on a full disk (see MIN_FREE_TO_OPEN): until there is room the old handle stays,
        // so reading goes on.
        if let Err(e) = check_space(&self.shared.dir) {
            tracing::warn!(error = %e, "the database stays closed to writes until space is freed");
            return Err(StoreError::Unavailable);
        }
        let old = self
            .shared
            .open
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        // Readers holding the old handle let go of it in a moment; `open_sled` waits for
        // sled's lock that long.
        drop(old);
        self.shared.generation.fetch_add(1, Ordering::AcqRel);
        match Trees::open(&self.shared.dir, self.shared.cache_bytes, false) {
            Ok(trees) => {
                *self
                    .shared
                    .open
                    .write()
                    .unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(trees));
                self.shared.broken.store(false, Ordering::Release);
                tracing::warn!(
                    "the database was reopened after a failed write and takes writes again"
                );
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = %e, "reopening the database failed; trying again later");
                Err(StoreError::Unavailable)
            }
        }
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

    /// Names the database writes go to now; take it before writing (see [`Ticket`]).
    pub fn ticket(&self) -> Ticket {
        Ticket(self.shared.generation.load(Ordering::Acquire))
    }

    /// Waits until every write made since `ticket` was taken is on disk (flush + fsync,
    /// batched with other writers'). Fails if the database was reopened meanwhile, since a
    /// reopen drops what had not reached the disk, or if the flush fails (which leaves the
    /// database broken).
    pub async fn commit_since(&self, ticket: Ticket) -> Result<()> {
        if self.ticket() != ticket {
            return Err(StoreError::Reopened);
        }
        let trees = self.trees()?;
        let outcome = self.shared.committer.commit(trees).await;
        if let Err(e) = &outcome {
            if e.is_failure() {
                self.mark_broken();
            }
        }
        outcome?;
        if self.ticket() != ticket {
            return Err(StoreError::Reopened);
        }
        Ok(())
    }

    /// Makes every write so far durable. Only for code with no other writers about (the
    /// command-line tools, shutdown, tests); a server path takes a [`Ticket`] before writing.
    pub async fn commit(&self) -> Result<()> {
        self.commit_since(self.ticket()).await
    }

    /// How many group flushes have run since open.
    pub fn commit_flushes(&self) -> u64 {
        self.shared.committer.flushes()
    }

    /// Flushes synchronously; used at shutdown and by the command-line tools.
    pub fn flush_blocking(&self) -> Result<()> {
        self.trees()?.db.flush()?;
        Ok(())
    }

    /// At a clean stop, when nothing writes any more: makes every write durable (flush and
    /// fsync) and seals the database's files as they are then, so that the next open may skip
    /// the full integrity check ([`seal`]). A store that is broken, or
    /// was reopened after a failure, is not sealed.
    pub fn seal_clean_stop(&self) -> Result<()> {
        if self.is_broken() || self.shared.generation.load(Ordering::Acquire) != 0 {
            return Ok(());
        }
        let marker = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |t| t.as_nanos() as u64);
        self.write(|t| {
            t.db.open_tree("meta")?
                .insert(CLEAN_STOP_KEY, &marker.to_be_bytes())?;
            Ok::<_, StoreError>(())
        })?;
        let trees = self.trees()?;
        trees.db.flush()?;
        trees.file.sync_all()?;
        seal::write(&self.shared.dir, marker)?;
        Ok(())
    }

    /// A fresh unique id (monotonic, persisted by sled), above every id in a restored backup.
    pub(crate) fn next_id(&self) -> Result<u64> {
        self.write(|t| self.id_in(t))
    }

    /// [`Store::next_id`] inside a write that already holds the gate.
    pub(crate) fn id_in(&self, trees: &Trees) -> Result<u64> {
        Ok(self.shared.id_floor.load(Ordering::Acquire) + trees.db.generate_id()?)
    }

    #[cfg(test)]
    pub(crate) fn set_schema_version_for_test(&self, version: u32) -> Result<()> {
        self.trees()?
            .db
            .open_tree("meta")?
            .insert(SCHEMA_KEY, &version.to_be_bytes())?;
        self.flush_blocking()
    }

    /// Makes the next write fail as a full disk would, for the tests of recovery.
    #[cfg(test)]
    pub(crate) fn break_for_test(&self) {
        self.mark_broken();
    }
}

/// Free space the file system must have before sled opens the database. Opening writes: sled
/// recovers the tail of its log and writes a snapshot. An open that runs out of space half-way
/// leaves a log that no longer opens ("a checksum does not match"), as tests/it/faults.rs found
/// by reopening on a full disk; an open with room to spare is safe.
pub const MIN_FREE_TO_OPEN: u64 = 16 * 1024 * 1024;

/// Refuses to open the database in `dir` while its file system has less than
/// [`MIN_FREE_TO_OPEN`] free.
fn check_space(dir: &Path) -> Result<()> {
    // A first start: ask about the nearest directory that exists.
    let mut probe = dir;
    while !probe.exists() {
        match probe.parent() {
            Some(parent) => probe = parent,
            None => return Ok(()),
        }
    }
    match fs2::available_space(probe) {
        Ok(free) if free < MIN_FREE_TO_OPEN => Err(StoreError::NoSpace {
            dir: dir.to_path_buf(),
            free,
            needed: MIN_FREE_TO_OPEN,
        }),
        Ok(_) => Ok(()),
        Err(e) => {
            // A file system that cannot say: go ahead, as before this check.
            tracing::debug!(error = %e, "cannot tell the free space for the database");
            Ok(())
        }
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
fn open_sled(dir: &Path, cache_bytes: u64, layout: layout::Layout) -> Result<sled::Db> {
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        match unpanicked(dir, "opening", || try_open_sled(dir, cache_bytes, layout)) {
            Err(StoreError::Locked(_)) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            outcome => return outcome,
        }
    }
}

fn try_open_sled(dir: &Path, cache_bytes: u64, layout: layout::Layout) -> Result<sled::Db> {
    let config = sled::Config::new()
        .path(dir)
        .cache_capacity(cache_bytes)
        .segment_size(layout.segment_size);
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

/// [`encode`] for the trees whose records people and bots fill (history, bot jobs and
/// key-value stores): refuses a record larger than [`layout::MAX_RECORD_BYTES`], which sled
/// could only keep in a way a power cut undoes.
pub(crate) fn encode_bounded<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    let raw = encode(value);
    bounded(raw)
}

pub(crate) fn bounded(raw: Vec<u8>) -> Result<Vec<u8>> {
    if raw.len() > layout::MAX_RECORD_BYTES {
        return Err(StoreError::TooLarge {
            bytes: raw.len(),
            max: layout::MAX_RECORD_BYTES,
        });
    }
    Ok(raw)
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
    use crate::ids::{code, Seq};

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
                        .trees()
                        .unwrap()
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

    /// After a failed write the next write reopens the database; a commit of writes made
    /// before the reopen fails (they may be gone), later ones go through.
    #[tokio::test]
    async fn a_reopen_fails_the_commits_of_earlier_writes() {
        use crate::store::rooms::Item;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let before = store.ticket();
        store
            .put_item(
                &code("ABCDEF"),
                &Item::chat(Seq::new(1), 1, 0, "ann", "one".into()),
            )
            .unwrap();
        store.break_for_test();
        assert!(store.is_broken());
        store
            .put_item(
                &code("ABCDEF"),
                &Item::chat(Seq::new(2), 2, 0, "ann", "two".into()),
            )
            .unwrap();
        assert!(!store.is_broken(), "the write reopened the database");
        assert!(matches!(
            store.commit_since(before).await,
            Err(StoreError::Reopened)
        ));
        let after = store.ticket();
        assert_ne!(before, after);
        store
            .put_item(
                &code("ABCDEF"),
                &Item::chat(Seq::new(3), 3, 0, "ann", "three".into()),
            )
            .unwrap();
        store.commit_since(after).await.unwrap();
        assert_eq!(store.last_seq(&code("ABCDEF")).unwrap(), Seq::new(3));
    }

    #[tokio::test]
    async fn reopen_keeps_schema() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path()).unwrap());
        Store::open(dir.path()).unwrap();
    }
}
