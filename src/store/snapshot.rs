//! Consistent copies of the whole database, for `hearth backup`, and loading one into a new
//! database, for `hearth restore`.
//!
//! A snapshot takes the write gate exclusively (see [`Store::writing`]): the writes in progress
//! finish, new ones wait, and every tree is read at one instant between two writes. What it
//! holds is therefore a state the database really was in, like the state a crash at that
//! instant would leave (which hearth must recover from anyway), and every message acked before
//! the snapshot began is in it, because a room applies a message to sled before its commit and
//! acks only after the commit.
//!
//! Copying is cheap enough to do under the gate: sled hands out values as reference-counted
//! buffers, so the copy is one clone of a pointer per record (and a small allocation per key),
//! not of the bytes. Writers wait for that pass only; encoding and sending the copy happen after
//! the gate is released. docs/performance.md has the measured pause.

use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::layout::{self, Layout};
use super::{Result, Store, StoreError, ID_FLOOR_KEY, SCHEMA_KEY, SCHEMA_VERSION};
use crate::clock::now_ms;

/// What a snapshot says about itself; the backup file's header.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Header {
    /// The hearth version that took it.
    pub hearth_version: String,
    /// The database layout its records are in (see [`SCHEMA_VERSION`]).
    pub schema_version: u32,
    /// An id above every id in the snapshot: a restored database generates ids from here.
    pub id_high_water: u64,
    /// Unix milliseconds.
    pub taken_at: u64,
}

impl Header {
    /// When it was taken, as `YYYY-MM-DD HH:MM UTC`.
    pub fn taken_at_text(&self) -> String {
        let secs = self.taken_at / 1000;
        let (days, rest) = (secs / 86_400, secs % 86_400);
        // Howard Hinnant's civil-from-days, for dates after 1970.
        let z = days as i64 + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        format!(
            "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
            rest / 3600,
            rest % 3600 / 60
        )
    }
}

/// One tree's records, in key order.
pub struct TreeCopy {
    pub name: sled::IVec,
    pub entries: Vec<(sled::IVec, sled::IVec)>,
}

/// Every tree at one instant.
pub struct Snapshot {
    pub header: Header,
    /// Sorted by name.
    pub trees: Vec<TreeCopy>,
    /// How long writers were held off.
    pub paused: Duration,
}

impl Snapshot {
    pub fn records(&self) -> usize {
        self.trees.iter().map(|t| t.entries.len()).sum()
    }
}

impl Store {
    /// Copies every tree at one instant between two writes. Blocks the calling thread (and any
    /// writer) for the length of the copy: call it on a blocking thread, never on a runtime
    /// worker that a writer may need.
    pub fn snapshot(&self) -> Result<Snapshot> {
        let pause = self.exclusive();
        let started = Instant::now();
        let db = self.trees()?;
        let id_high_water = self.id_in(&db)?;
        let mut names = db.db.tree_names();
        names.sort();
        let mut trees = Vec::with_capacity(names.len());
        for name in names {
            let tree = db.db.open_tree(&name)?;
            let entries = tree.iter().collect::<std::result::Result<Vec<_>, _>>()?;
            trees.push(TreeCopy { name, entries });
        }
        let paused = started.elapsed();
        drop(pause);
        Ok(Snapshot {
            header: Header {
                hearth_version: env!("CARGO_PKG_VERSION").to_string(),
                schema_version: SCHEMA_VERSION,
                id_high_water,
                taken_at: now_ms(),
            },
            trees,
            paused,
        })
    }
}

/// Writes a snapshot's records into a new database directory, tree by tree.
pub struct Loader {
    dir: std::path::PathBuf,
    db: sled::Db,
    tree: Option<sled::Tree>,
    batch: sled::Batch,
    batched: usize,
    records: u64,
}

/// Records applied to sled at once while loading. Batches are faster than single inserts, but
/// large ones are costly in memory: restoring a million messages peaked at 1.4 GB with batches
/// of 4096 and at 120 MB with 256, which was also faster (6 s instead of 9).
const LOAD_BATCH: usize = 256;

/// sled's cache while loading a backup, which writes each page once.
const LOAD_CACHE_BYTES: u64 = 16 * 1024 * 1024;

impl Loader {
    /// Creates the database at `db_dir`, which must not exist yet.
    pub fn create(db_dir: &Path) -> Result<Loader> {
        if db_dir.exists() {
            return Err(StoreError::Io(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!("{} exists already", db_dir.display()),
            )));
        }
        // The layout first, so that sled creates its files in it (see [`super::layout`]).
        layout::create(db_dir, Layout::CURRENT)?;
        // sled's default cache is 1 GiB; loading writes each page once and needs little.
        let db = sled::Config::new()
            .path(db_dir)
            .cache_capacity(LOAD_CACHE_BYTES)
            .segment_size(Layout::CURRENT.segment_size)
            .open()?;
        Ok(Loader {
            dir: db_dir.to_path_buf(),
            db,
            tree: None,
            batch: sled::Batch::default(),
            batched: 0,
            records: 0,
        })
    }

    /// The records that follow belong to tree `name`.
    pub fn tree(&mut self, name: &[u8]) -> Result<()> {
        self.apply()?;
        self.tree = Some(self.db.open_tree(name)?);
        Ok(())
    }

    pub fn entry(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        if self.tree.is_none() {
            return Err(StoreError::Corrupt {
                tree: "backup",
                detail: "a record before any tree".into(),
            });
        }
        self.batch.insert(key, value);
        self.batched += 1;
        self.records += 1;
        if self.batched >= LOAD_BATCH {
            self.apply()?;
        }
        Ok(())
    }

    fn apply(&mut self) -> Result<()> {
        if let Some(tree) = &self.tree {
            tree.apply_batch(std::mem::take(&mut self.batch))?;
        }
        self.batched = 0;
        Ok(())
    }

    /// Records the id floor from `header` and makes everything durable. Answers how many
    /// records were loaded.
    pub fn finish(mut self, header: &Header) -> Result<u64> {
        self.apply()?;
        let meta = self.db.open_tree("meta")?;
        if meta.get(SCHEMA_KEY)?.is_none() {
            return Err(StoreError::Corrupt {
                tree: "meta",
                detail: "the backup holds no schema version".into(),
            });
        }
        meta.insert(ID_FLOOR_KEY, &header.id_high_water.to_be_bytes())?;
        // sled's flush alone is not safe against a power cut (see `super::commit`).
        self.db.flush()?;
        std::fs::File::open(self.dir.join("db"))?.sync_all()?;
        layout::sync_after_open(&self.dir)?;
        Ok(self.records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{code, Seq};
    use crate::store::rooms::MemberRecord;

    fn member(since: u64) -> MemberRecord {
        MemberRecord {
            username: crate::ids::name(&format!("user{since}")),
            display_name: "U".into(),
            since: Seq::new(since),
            joined_at: since,
            read_seq: None,
            notify: None,
        }
    }

    /// A membership is two records in two trees (`members` and `user_rooms`) written by one
    /// method. Snapshots taken while writers add memberships as fast as they can must always
    /// hold both records of each, never one: the gate puts them between two writes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn snapshots_never_see_half_a_write() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writers: Vec<_> = (0..2u64)
            .map(|w| {
                let (store, stop) = (store.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut n = 0u64;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let user = w * 1_000_000 + n;
                        store
                            .put_member(&code("ABCDEF"), user, &member(user))
                            .unwrap();
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        let mut sizes = Vec::new();
        for _ in 0..40 {
            let snapshot = store.snapshot().unwrap();
            let count = |name: &str| {
                snapshot
                    .trees
                    .iter()
                    .find(|t| t.name.as_ref() == name.as_bytes())
                    .map_or(0, |t| t.entries.len())
            };
            assert_eq!(count("members"), count("user_rooms"), "half a membership");
            sizes.push(count("members"));
            std::thread::sleep(Duration::from_millis(2));
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let written: u64 = writers.into_iter().map(|w| w.join().unwrap()).sum();
        assert!(written > 100, "the writers ran ({written})");
        assert!(
            sizes.windows(2).any(|w| w[0] != w[1]),
            "snapshots were taken while writes went on: {sizes:?}"
        );
    }

    #[tokio::test]
    async fn the_high_water_mark_is_above_every_id() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let ids: Vec<u64> = (0..5).map(|_| store.next_id().unwrap()).collect();
        let snapshot = store.snapshot().unwrap();
        assert!(ids.iter().all(|id| *id < snapshot.header.id_high_water));
        assert!(snapshot.records() >= 1, "at least the schema version");
    }

    #[test]
    fn dates_read_as_utc() {
        let header = |taken_at| Header {
            hearth_version: String::new(),
            schema_version: 2,
            id_high_water: 0,
            taken_at,
        };
        assert_eq!(header(0).taken_at_text(), "1970-01-01 00:00 UTC");
        assert_eq!(
            header(1_709_210_096_000).taken_at_text(),
            "2024-02-29 12:34 UTC"
        );
    }
}
