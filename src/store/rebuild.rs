//! Rebuilding a database made before hearth's layout (sled's default 512 KiB segments, no
//! `db/layout`) into the current one, where a power cut cannot undo an acknowledged write
//! (see [`super::layout`]).
//!
//! sled cannot change a database's segment size in place, so the rebuild copies every record
//! into a new database beside the old one, `db.rebuilding`, makes it durable, and swaps the
//! two by renaming: `db` becomes `db.before-rebuild`, then `db.rebuilding` becomes `db`. The
//! old one is removed last. A crash at any point leaves either the old database whole (the
//! rebuild runs again at the next start) or the new one whole (the leftovers are removed):
//! [`finish_interrupted`] tells which at every open.
//!
//! The old database passes the full integrity check before anything is copied, so damage is
//! refused as it would have been, not copied. Ids: the new database's id counter starts again
//! from zero, so it gets an id floor above every id the old one handed out, as a restored
//! backup does.

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::layout::{self, Layout, LEGACY_SEGMENT_SIZE};
use super::snapshot::{Header, Loader};
use super::{
    check, id_floor, open_sled, unpanicked, Result, Store, StoreError, CHECK_CACHE_BYTES,
    SCHEMA_VERSION,
};
use crate::clock::now_ms;

fn beside(dir: &Path, suffix: &str) -> PathBuf {
    let mut name = dir.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    dir.with_file_name(name)
}

pub(super) fn staging(dir: &Path) -> PathBuf {
    beside(dir, ".rebuilding")
}

pub(super) fn previous(dir: &Path) -> PathBuf {
    beside(dir, ".before-rebuild")
}

pub(super) fn sync_parent(dir: &Path) -> std::io::Result<()> {
    match dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) => layout::sync_dir(parent),
        None => Ok(()),
    }
}

/// Puts right what a rebuild that was cut short left, before the database is opened.
pub(super) fn finish_interrupted(dir: &Path) -> Result<()> {
    let (staging, previous) = (staging(dir), previous(dir));
    if !dir.exists() && previous.exists() {
        // Stopped between the two renames: the old database is whole; rebuild again.
        std::fs::rename(&previous, dir)?;
        sync_parent(dir)?;
        tracing::warn!("a rebuild of the database was interrupted; it starts again");
    }
    if staging.exists() {
        std::fs::remove_dir_all(&staging)?;
    }
    if previous.exists() {
        std::fs::remove_dir_all(&previous)?;
    }
    Ok(())
}

/// Bytes the files under `dir` take.
fn size_of(dir: &Path) -> std::io::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            size_of(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}

/// Refuses to start a copy of the database in `dir` without room for it beside the original.
pub(super) fn room_for_a_copy(dir: &Path) -> Result<()> {
    let needed = size_of(dir)? + super::MIN_FREE_TO_OPEN;
    let free = fs2::available_space(dir).unwrap_or(u64::MAX);
    if free < needed {
        return Err(StoreError::NoSpace {
            dir: dir.to_path_buf(),
            free,
            needed,
        });
    }
    Ok(())
}

/// Copies every record of `db` that `keep(tree, key)` wants into a new, durable database at
/// `staging`, above an id floor past every id `db` handed out (`floor` being its own); answers
/// how many records it holds.
pub(super) fn copy_into(
    db: &sled::Db,
    floor: u64,
    staging: &Path,
    keep: impl Fn(&[u8], &[u8]) -> bool,
) -> Result<u64> {
    let header = Header {
        hearth_version: env!("CARGO_PKG_VERSION").to_string(),
        schema_version: SCHEMA_VERSION,
        id_high_water: floor + db.generate_id()? + 1,
        taken_at: now_ms(),
    };
    let mut loader = Loader::create(staging)?;
    let mut read = 0u64;
    let mut names = db.tree_names();
    names.sort();
    for name in names {
        loader.tree(&name)?;
        for entry in db.open_tree(&name)?.iter() {
            let (key, value) = entry?;
            if keep(&name, &key) {
                loader.entry(&key, &value)?;
                read += 1;
            }
        }
    }
    let written = loader.finish(&header)?;
    if written != read {
        return Err(StoreError::Io(std::io::Error::other(format!(
            "the copy holds {written} records, the original {read}"
        ))));
    }
    Ok(written)
}

/// Rebuilds the legacy database in `dir` into [`Layout::CURRENT`].
pub(super) fn into_current_layout(dir: &Path) -> Result<()> {
    let started = Instant::now();
    room_for_a_copy(dir)?;
    tracing::warn!(
        dir = %dir.display(),
        "rebuilding the database into the layout that keeps acknowledged messages through a \
         power cut; this reads and writes every record once"
    );
    let legacy_layout = Layout {
        segment_size: LEGACY_SEGMENT_SIZE,
    };
    let legacy = open_sled(dir, CHECK_CACHE_BYTES, legacy_layout)?;
    Store::check_schema(&legacy, dir)?;
    unpanicked(dir, "reading every record", || check::verify(&legacy, dir))?;
    let floor = id_floor(&legacy)?;
    let staging = staging(dir);
    let read = copy_into(&legacy, floor, &staging, |_, _| true)?;
    drop(legacy);
    let previous = previous(dir);
    std::fs::rename(dir, &previous)?;
    std::fs::rename(&staging, dir)?;
    sync_parent(dir)?;
    std::fs::remove_dir_all(&previous)?;
    tracing::warn!(
        records = read,
        took_ms = started.elapsed().as_millis() as u64,
        "the database was rebuilt"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{code, Seq};
    use crate::store::rooms::Item;
    use crate::store::{encode, SCHEMA_KEY};

    /// 4,000 emoji: 16 KB of text, the size that made sled write blobs.
    fn emoji_text(n: u64) -> String {
        format!("{n} {}", "😀".repeat(4000))
    }

    fn item_key(seq: u64) -> Vec<u8> {
        let mut key = b"ABCDEF".to_vec();
        key.extend_from_slice(&seq.to_be_bytes());
        key
    }

    /// A database as hearth made them before its own layout: sled's default configuration,
    /// records written as the store writes them, ids generated by sled.
    fn legacy_database(db_dir: &Path, messages: u64) -> u64 {
        let db = sled::Config::new().path(db_dir).open().unwrap();
        db.open_tree("meta")
            .unwrap()
            .insert(SCHEMA_KEY, &2u32.to_be_bytes())
            .unwrap();
        let items = db.open_tree("items").unwrap();
        let mut last_id = 0;
        for seq in 1..=messages {
            last_id = db.generate_id().unwrap();
            let item = Item::chat(Seq::new(seq), last_id, seq, "ann", emoji_text(seq));
            items.insert(item_key(seq), encode(&item)).unwrap();
        }
        db.flush().unwrap();
        last_id
    }

    fn blobs_in(db_dir: &Path) -> usize {
        std::fs::read_dir(db_dir.join("blobs")).map_or(0, |d| d.count())
    }

    /// A legacy database with messages large enough for sled's blobs is rebuilt at open into
    /// the layout without them: every record kept, ids above every old one.
    #[tokio::test]
    async fn a_legacy_database_is_rebuilt_into_the_current_layout() {
        let dir = tempfile::tempdir().unwrap();
        let db_dir = dir.path().join("db");
        let last_id = legacy_database(&db_dir, 60);
        assert!(blobs_in(&db_dir) > 0, "the old layout made blobs");
        assert_eq!(layout::inspect(&db_dir).unwrap(), layout::Found::Legacy);

        let store = Store::open(dir.path()).unwrap();
        assert_eq!(
            layout::inspect(&db_dir).unwrap(),
            layout::Found::Current(Layout::CURRENT)
        );
        let page = store.items_after(&code("ABCDEF"), Seq::ZERO, 1000).unwrap();
        assert_eq!(page.items.len(), 60);
        for (n, item) in page.items.iter().enumerate() {
            assert_eq!(
                item.text.as_deref(),
                Some(emoji_text(n as u64 + 1).as_str())
            );
        }
        assert!(
            store.next_id().unwrap() > last_id,
            "ids go on above the old ones"
        );
        assert!(!previous(&db_dir).exists() && !staging(&db_dir).exists());
        store.flush_blocking().unwrap();
        assert_eq!(blobs_in(&db_dir), 0, "the rebuilt database has no blobs");
        drop(store);
        // And it opens as it is from then on.
        let again = Store::open(dir.path()).unwrap();
        assert_eq!(again.last_seq(&code("ABCDEF")).unwrap(), Seq::new(60));
    }

    /// A rebuild stopped between its two renames leaves the old database whole; the next open
    /// puts it back and rebuilds it.
    #[tokio::test]
    async fn a_rebuild_cut_between_its_renames_starts_again() {
        let dir = tempfile::tempdir().unwrap();
        let db_dir = dir.path().join("db");
        legacy_database(&db_dir, 3);
        std::fs::rename(&db_dir, previous(&db_dir)).unwrap();
        std::fs::create_dir(staging(&db_dir)).unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.last_seq(&code("ABCDEF")).unwrap(), Seq::new(3));
        assert!(!previous(&db_dir).exists() && !staging(&db_dir).exists());
    }
}
