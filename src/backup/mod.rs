//! `hearth backup FILE`, `hearth restore FILE` and `hearth export --json`.
//!
//! - **backup** asks the running server for a snapshot over its control socket ([`control`]);
//!   with no server running it opens the database itself. Either way the snapshot is
//!   consistent (see [`crate::store::snapshot`]) and lands in FILE only once it is complete,
//!   checked and on disk.
//! - **restore** loads a backup into an empty data directory: into a staging directory first,
//!   renamed to `db` once the whole file has been read and its checksum matched, then opened
//!   once with the full integrity check. A foreign, damaged or cut-short file is refused and
//!   leaves the data directory as empty as it was.
//! - **export** writes users, rooms and history as JSON ([`export`]); from a running server it
//!   loads the snapshot into a temporary directory first.

pub mod auto;
pub mod control;
pub mod export;
pub mod format;

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::store::snapshot::{Header, Loader};
use crate::store::{Store, StoreError, SCHEMA_VERSION};
use format::{FormatError, OpenError, Record, StreamReader};

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("there is no hearth database in {0}")]
    NoDatabase(PathBuf),
    #[error(
        "hearth is running on {dir} but does not answer on its control socket {socket}; \
         is it a hearth older than `hearth backup`, or was the socket removed? Restart it, \
         or stop it and run this again"
    )]
    Unreachable { dir: PathBuf, socket: PathBuf },
    #[error("cannot reach the running hearth: {0}")]
    Control(io::Error),
    #[error("the snapshot from the running hearth is unusable: {0}")]
    Stream(FormatError),
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot restore {path}: {problem}")]
    BadFile { path: PathBuf, problem: OpenError },
    #[error(
        "cannot restore {path}: it holds database schema {found}, and this hearth understands \
         up to {supported}; restore it with the newer hearth that made it"
    )]
    NewerSchema {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error(
        "refusing to restore into {dir}: it is not empty (it holds {entry}); restore into a new \
         or empty data directory, e.g. --data-dir /path/to/new-dir"
    )]
    NotEmpty { dir: PathBuf, entry: String },
    #[error("cannot restore {path}: its contents are damaged: {source}")]
    Contents { path: PathBuf, source: StoreError },
    #[error(transparent)]
    Export(#[from] export::ExportError),
}

/// Where a snapshot came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Through the control socket of the running server.
    RunningServer,
    /// Straight from the database (no server was running).
    Database,
}

#[derive(Debug, Clone, Copy)]
pub struct BackupSummary {
    pub source: Source,
    pub records: u64,
    /// Size of the backup file (`None` when it went to standard output).
    pub bytes: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct RestoreSummary {
    pub records: u64,
    pub header: Header,
}

/// A snapshot: either a stream from the running server, or the database opened here.
enum Snap {
    Stream(std::io::BufReader<std::os::unix::net::UnixStream>),
    Store(Store),
}

fn reach(config: &Config) -> Result<Snap, BackupError> {
    let data_dir = &config.data_dir;
    match control::request_snapshot(data_dir).map_err(BackupError::Control)? {
        control::Reached::Stream(stream) => Ok(Snap::Stream(stream)),
        control::Reached::NoServer => {
            if !data_dir.join("db").exists() {
                return Err(BackupError::NoDatabase(data_dir.clone()));
            }
            match Store::open_configured(data_dir, &config.store) {
                Ok(store) => Ok(Snap::Store(store)),
                Err(StoreError::Locked(_)) => Err(BackupError::Unreachable {
                    dir: data_dir.clone(),
                    socket: control::socket_path(data_dir),
                }),
                Err(e) => Err(e.into()),
            }
        }
    }
}

/// Writes a consistent snapshot of the data directory named by `config` to `dest`. Needs a
/// tokio runtime when no server is running (the database is opened here).
pub fn backup(config: &Config, dest: &Path) -> Result<BackupSummary, BackupError> {
    let write_error = |source| BackupError::Write {
        path: dest.to_path_buf(),
        source,
    };
    let snap = reach(config)?;
    let mut file = format::FileWriter::create(dest).map_err(write_error)?;
    let outcome = match snap {
        Snap::Stream(stream) => {
            copy_checked(stream, file.stream()).map(|records| (Source::RunningServer, records))
        }
        Snap::Store(store) => store
            .snapshot()
            .map_err(BackupError::Store)
            .and_then(|snapshot| {
                format::write_stream(&snapshot, file.stream()).map_err(write_error)
            })
            .map(|records| (Source::Database, records)),
    };
    let (source, records) = match outcome {
        Ok(done) => done,
        Err(e) => {
            file.abandon();
            return Err(e);
        }
    };
    let bytes = file.finish().map_err(write_error)?;
    Ok(BackupSummary {
        source,
        records,
        bytes,
    })
}

/// Copies a stream from the server into `out` while checking it to its end.
fn copy_checked(stream: impl Read, out: &mut impl Write) -> Result<u64, BackupError> {
    let tee = format::Tee {
        reader: stream,
        writer: out,
    };
    let mut reader = StreamReader::new(tee).map_err(BackupError::Stream)?;
    while reader.next_record().map_err(BackupError::Stream)?.is_some() {}
    Ok(reader.records())
}

/// Loads every record of `reader` into a new database at `db_dir`.
fn load<R: Read>(reader: &mut StreamReader<R>, db_dir: &Path) -> Result<u64, LoadError> {
    let header = reader
        .header()
        .cloned()
        .ok_or(LoadError::Stream(FormatError::Truncated))?;
    let mut loader = Loader::create(db_dir)?;
    while let Some(record) = reader.next_record().map_err(LoadError::Stream)? {
        match record {
            Record::Tree(name) => loader.tree(&name)?,
            Record::Entry(key, value) => loader.entry(&key, &value)?,
        }
    }
    Ok(loader.finish(&header)?)
}

enum LoadError {
    Stream(FormatError),
    Store(StoreError),
}

impl From<StoreError> for LoadError {
    fn from(e: StoreError) -> Self {
        LoadError::Store(e)
    }
}

/// Restores the backup `file` into the data directory named by `config`, which must be empty
/// but for the plugins folder and the compiled-plugin cache.
/// Needs a tokio runtime (the restored database is opened once to check it).
pub fn restore(config: &Config, file: &Path) -> Result<RestoreSummary, BackupError> {
    let data_dir = &config.data_dir;
    let bad_file = |problem| BackupError::BadFile {
        path: file.to_path_buf(),
        problem,
    };
    if let Some(entry) = first_entry(data_dir).map_err(|e| BackupError::Write {
        path: data_dir.clone(),
        source: e,
    })? {
        return Err(BackupError::NotEmpty {
            dir: data_dir.clone(),
            entry,
        });
    }
    let mut reader = format::open_file(file).map_err(bad_file)?;
    let header = reader
        .header()
        .cloned()
        .ok_or(bad_file(OpenError::Damaged(FormatError::Truncated)))?;
    if header.schema_version > SCHEMA_VERSION {
        return Err(BackupError::NewerSchema {
            path: file.to_path_buf(),
            found: header.schema_version,
            supported: SCHEMA_VERSION,
        });
    }
    let staging = data_dir.join("db.restoring");
    let records = match load(&mut reader, &staging) {
        Ok(records) => records,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(match e {
                LoadError::Stream(e) => bad_file(OpenError::Damaged(e)),
                LoadError::Store(e) => e.into(),
            });
        }
    };
    let db_dir = data_dir.join("db");
    std::fs::rename(&staging, &db_dir).map_err(|e| BackupError::Write {
        path: db_dir.clone(),
        source: e,
    })?;
    // The full start-up check (and any schema migration) on what was restored; what passed it
    // is sealed, so the first start does not read it all again.
    match Store::open_configured(data_dir, &config.store) {
        Ok(store) => store.seal_clean_stop()?,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&db_dir);
            return Err(BackupError::Contents {
                path: file.to_path_buf(),
                source: e,
            });
        }
    }
    match give_to_owner_of(data_dir, &db_dir) {
        // Only root may give files away; anyone else restores as themselves.
        Err(e) if e.kind() != io::ErrorKind::PermissionDenied => {
            return Err(BackupError::Write {
                path: db_dir,
                source: e,
            })
        }
        _ => {}
    }
    Ok(RestoreSummary { records, header })
}

/// `sudo hearth restore` runs as root, but the service runs as the data directory's owner: the
/// restored files are handed to that owner, or the service could not write its own database.
fn give_to_owner_of(data_dir: &Path, db_dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let owner = std::fs::metadata(data_dir)?;
    let restored = std::fs::metadata(db_dir)?;
    if (owner.uid(), owner.gid()) == (restored.uid(), restored.gid()) {
        return Ok(());
    }
    fn walk(path: &Path, uid: u32, gid: u32) -> io::Result<()> {
        std::os::unix::fs::lchown(path, Some(uid), Some(gid))?;
        if std::fs::symlink_metadata(path)?.is_dir() {
            for entry in std::fs::read_dir(path)? {
                walk(&entry?.path(), uid, gid)?;
            }
        }
        Ok(())
    }
    walk(db_dir, owner.uid(), owner.gid())
}

/// What a data directory may hold besides the database, and so keep through a restore: the
/// plugins folder (the person's own files), the compiled-plugin cache (rebuilt on demand), the
/// automatic backups (one of which is often what is being restored) and a damaged database
/// moved aside as the refusal message says.
const NOT_DATA: [&str; 4] = ["plugins", "plugin-cache", auto::DIR, "db.damaged"];

/// The first entry of `dir` that is not in [`NOT_DATA`].
fn first_entry(dir: &Path) -> io::Result<Option<String>> {
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if !NOT_DATA.contains(&name.as_str()) {
            return Ok(Some(name));
        }
    }
    Ok(None)
}

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> io::Result<TempDir> {
        let mut nonce = [0u8; 8];
        getrandom::fill(&mut nonce).map_err(io::Error::other)?;
        let name = format!(
            "hearth-export-{}-{}",
            std::process::id(),
            u64::from_be_bytes(nonce)
        );
        let dir = std::env::temp_dir().join(name);
        std::fs::create_dir(&dir)?;
        Ok(TempDir(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes the JSON export of the data directory named by `config` to `out`. Needs a tokio
/// runtime.
pub fn export_json(
    config: &Config,
    out: &mut impl Write,
) -> Result<export::ExportSummary, BackupError> {
    match reach(config)? {
        Snap::Store(store) => Ok(export::write_json(&store, out)?),
        Snap::Stream(stream) => {
            // The server's snapshot, loaded into a private temporary database to be read.
            let temp = TempDir::new().map_err(|e| BackupError::Write {
                path: std::env::temp_dir(),
                source: e,
            })?;
            let mut reader = StreamReader::new(stream).map_err(BackupError::Stream)?;
            load(&mut reader, &temp.0.join("db")).map_err(|e| match e {
                LoadError::Stream(e) => BackupError::Stream(e),
                LoadError::Store(e) => BackupError::Store(e),
            })?;
            let store = Store::open_configured(&temp.0, &config.store)?;
            let summary = export::write_json(&store, out)?;
            drop(store);
            Ok(summary)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{RoomCode, Seq};
    use crate::store::accounts::NewUser;
    use crate::store::rooms::Item;

    fn config(dir: &Path) -> Config {
        Config {
            data_dir: dir.to_path_buf(),
            ..Config::default()
        }
    }

    fn user(name: &str) -> NewUser {
        NewUser {
            username: crate::ids::name(name),
            display_name: name.into(),
            password_hash: Some("$argon2id$secret".into()),
            bot: false,
            created_at: 1,
        }
    }

    /// A store with two users and a room of 1,000 items, closed; answers the largest id used.
    fn filled(dir: &Path) -> u64 {
        let store = Store::open(dir).unwrap();
        let ann = store.create_user(user("ann")).unwrap();
        let ben = store.create_user(user("ben")).unwrap();
        let mut last = ann.id.max(ben.id);
        for seq in 1..=1000 {
            let id = store.next_id().unwrap();
            last = last.max(id);
            let item = Item::chat(Seq::new(seq), id, seq, "ann", format!("message {seq}"));
            store
                .put_item(&RoomCode::parse("ABCDEF").unwrap(), &item)
                .unwrap();
        }
        store.flush_blocking().unwrap();
        last
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn backup_and_restore_round_trip_offline() {
        let dir = tempfile::tempdir().unwrap();
        let (source, target) = (dir.path().join("a"), dir.path().join("b"));
        let last_id = filled(&source);
        let file = dir.path().join("x.hbk");
        let done = backup(&config(&source), &file).unwrap();
        assert_eq!(done.source, Source::Database);
        assert!(done.records > 1000, "{done:?}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "the backup is private: {mode:o}");
        }

        std::fs::create_dir(&target).unwrap();
        let restored = restore(&config(&target), &file).unwrap();
        assert_eq!(restored.records, done.records);
        let store = Store::open(&target).unwrap();
        let page = store
            .items_after(&RoomCode::parse("ABCDEF").unwrap(), Seq::ZERO, 2000)
            .unwrap();
        assert_eq!(page.items.len(), 1000);
        assert_eq!(page.items[999].text.as_deref(), Some("message 1000"));
        assert_eq!(
            store
                .user_by_name(&crate::ids::name("ben"))
                .unwrap()
                .unwrap()
                .username,
            "ben"
        );
        // New ids never collide with restored ones.
        let carol = store.create_user(user("carol")).unwrap();
        assert!(carol.id > last_id, "{} <= {last_id}", carol.id);
        assert!(store.next_id().unwrap() > last_id);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn restore_refuses_what_it_cannot_trust() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("a");
        filled(&source);
        let file = dir.path().join("x.hbk");
        backup(&config(&source), &file).unwrap();
        let bytes = std::fs::read(&file).unwrap();
        let target = dir.path().join("t");
        let fresh = || {
            let _ = std::fs::remove_dir_all(&target);
            std::fs::create_dir(&target).unwrap();
            config(&target)
        };
        let attempt = |contents: &[u8]| {
            let path = dir.path().join("candidate");
            std::fs::write(&path, contents).unwrap();
            let outcome = restore(&fresh(), &path);
            let leftovers = first_entry(&target).unwrap();
            assert_eq!(
                leftovers, None,
                "a refused restore leaves the directory empty"
            );
            outcome.expect_err("refused").to_string()
        };

        let foreign = attempt(b"SQLite format 3\0 and so on");
        assert!(foreign.contains("not a hearth backup"), "{foreign}");
        let empty = attempt(b"");
        assert!(empty.contains("not a hearth backup"), "{empty}");
        let cut = attempt(&bytes[..bytes.len() / 2]);
        assert!(cut.contains("damaged"), "{cut}");
        let mut flipped = bytes.clone();
        let at = bytes.len() * 2 / 3;
        flipped[at] ^= 0x55;
        let flip = attempt(&flipped);
        assert!(flip.contains("damaged"), "{flip}");
        let newer = attempt(b"HEARTH BACKUP 9\n...");
        assert!(newer.contains("format 9"), "{newer}");

        // A data directory that holds anything is refused before the file is even read.
        let config = fresh();
        std::fs::write(target.join("notes.txt"), "mine").unwrap();
        let err = restore(&config, &file).expect_err("refused").to_string();
        assert!(
            err.contains("not empty") && err.contains("notes.txt"),
            "{err}"
        );
        assert_eq!(
            std::fs::read_to_string(target.join("notes.txt")).unwrap(),
            "mine"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn backup_of_a_directory_without_a_database_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let err = backup(&config(dir.path()), &dir.path().join("x.hbk")).expect_err("refused");
        assert!(matches!(err, BackupError::NoDatabase(_)), "{err}");
        assert!(!dir.path().join("db").exists(), "no database was created");
        assert!(!dir.path().join("x.hbk").exists());
        assert!(!dir.path().join("x.hbk.partial").exists());
    }
}
