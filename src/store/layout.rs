//! How the database sits on disk so that a power cut loses nothing that was acknowledged.
//!
//! sled writes every log record into its log file `db`, which the group commit fsyncs, except
//! records larger than a quarter of a log segment: those go to a file of their own under
//! `blobs/`, written without an fsync, while the fsynced log points at them. A power cut then
//! leaves the blob empty, and sled's recovery either stops at it and drops every later record
//! of every tree (a shortened history that still passes every check) or panics at each start.
//! A record is a whole tree node: up to about twenty entries, so with sled's default 512 KiB
//! segments sixteen messages of 16 KB made one (docs/architecture.md, "Power cuts").
//!
//! So hearth never lets sled make a blob:
//! - databases are created with [`SEGMENT_SIZE`] (8 MiB) segments, whose blob threshold is
//!   2 MiB, and no stored value may exceed [`MAX_RECORD_BYTES`] (checked by every write of the
//!   trees whose values people or bots fill), so that even a node of [`MAX_NODE_ENTRIES`]
//!   values of the largest size stays under the threshold;
//! - the segment size is kept in a file of hearth's own, `db/layout`, written and fsynced
//!   before sled creates anything: sled's own `conf` is rewritten at every open without an
//!   fsync, and a `conf` emptied by a cut would otherwise let the next open guess the size;
//! - a database from before this layout (no `layout` file, 512 KiB segments) is rebuilt into
//!   the new layout when it is opened ([`super::Store::open_configured`]);
//! - should a blob exist anyway, the commit fsyncs it before the log ([`sync_blobs`]), and a
//!   blob that a cut left short makes the next open refuse the database ([`check_blobs`])
//!   rather than let sled serve what its recovery shortened.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// sled's log segment size for databases hearth creates (sled allows up to 16 MiB).
pub const SEGMENT_SIZE: usize = 8 << 20;

/// sled's segment size when nothing sets it: the layout of every database made before
/// [`SEGMENT_SIZE`].
pub const LEGACY_SEGMENT_SIZE: usize = 512 << 10;

/// The most entries one sled node holds: a leaf splits past 16 and takes in at most 3 more when
/// a small neighbour merges into it.
pub const MAX_NODE_ENTRIES: usize = 20;

/// The largest value hearth stores in one record. Chat messages are bounded far below it by
/// `ws.max_frame_bytes` (64 KiB by default) and `rooms.max_text_chars`; a write that would
/// exceed it anyway (limits set to 0, a message with very many reactions) is refused as too
/// large rather than stored in a way a power cut can undo.
pub const MAX_RECORD_BYTES: usize = 96 << 10;

/// Room for a node's keys and framing besides its values.
const NODE_OVERHEAD: usize = 64 << 10;

// A node of the largest records must stay under sled's blob threshold: a quarter of a
// segment, less the segment header.
const _: () = assert!(MAX_NODE_ENTRIES * MAX_RECORD_BYTES + NODE_OVERHEAD < SEGMENT_SIZE / 4 - 64);

/// hearth's own record of the database's layout, inside the database directory.
pub const LAYOUT_FILE: &str = "layout";
const LAYOUT_PARTIAL: &str = "layout.partial";
const LAYOUT_MAGIC: &str = "hearth-store-layout 1";

/// What `db/layout` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub segment_size: usize,
}

impl Layout {
    pub const CURRENT: Layout = Layout {
        segment_size: SEGMENT_SIZE,
    };
}

/// What the database directory holds, before sled opens it.
#[derive(Debug, PartialEq, Eq)]
pub enum Found {
    /// No database yet.
    Nothing,
    /// A database with hearth's layout file.
    Current(Layout),
    /// A database made before the layout file (sled's default segments).
    Legacy,
}

#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("{path} is not a layout this hearth knows ({detail})")]
    Unknown { path: PathBuf, detail: String },
    #[error("cannot read or write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Looks at the database directory `dir` without changing it.
pub fn inspect(dir: &Path) -> Result<Found, LayoutError> {
    let path = dir.join(LAYOUT_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => parse(&text)
            .map(Found::Current)
            .ok_or_else(|| LayoutError::Unknown {
                path,
                detail: format!("{:?}", text.lines().next().unwrap_or("")),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // sled's log file is what makes a database; a directory with only hearth's own
            // files (a seal, an interrupted first start) holds none yet.
            if dir.join("db").exists() {
                Ok(Found::Legacy)
            } else {
                Ok(Found::Nothing)
            }
        }
        Err(source) => Err(LayoutError::Io { path, source }),
    }
}

fn parse(text: &str) -> Option<Layout> {
    let mut lines = text.lines();
    if lines.next()? != LAYOUT_MAGIC {
        return None;
    }
    let mut segment_size = None;
    for line in lines {
        if let Some(value) = line.strip_prefix("segment_size ") {
            segment_size = value.trim().parse::<usize>().ok();
        }
    }
    let segment_size = segment_size?;
    (segment_size.is_power_of_two() && (256..=1 << 24).contains(&segment_size))
        .then_some(Layout { segment_size })
}

/// Creates `dir` if need be and records `layout` in it durably, before sled writes anything.
pub fn create(dir: &Path, layout: Layout) -> Result<(), LayoutError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| LayoutError::Io { path, source }
    };
    create_dir_durably(dir).map_err(io(dir))?;
    let partial = dir.join(LAYOUT_PARTIAL);
    let mut file = std::fs::File::create(&partial).map_err(io(&partial))?;
    write!(
        file,
        "{LAYOUT_MAGIC}\nsegment_size {}\n",
        layout.segment_size
    )
    .and_then(|()| file.sync_all())
    .map_err(io(&partial))?;
    std::fs::rename(&partial, dir.join(LAYOUT_FILE)).map_err(io(dir))?;
    sync_dir(dir).map_err(io(dir))
}

/// Creates `dir` and any missing parents, fsyncing each parent that gained an entry, so that
/// a power cut cannot take the new directory back.
pub fn create_dir_durably(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dir_durably(parent)?;
    }
    match std::fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(e),
    }
    match dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) => sync_dir(parent),
        None => Ok(()),
    }
}

/// fsyncs a directory, so that the entries created or renamed in it survive a power cut.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// After sled opened the database: sled rewrites its `conf` at every open with a plain write;
/// make it and the directory durable, so that a cut does not leave it empty.
pub fn sync_after_open(dir: &Path) -> std::io::Result<()> {
    let conf = dir.join("conf");
    if conf.exists() {
        std::fs::File::open(&conf)?.sync_all()?;
    }
    sync_dir(dir)
}

/// fsyncs the database directory when its entries changed since `seen` (which it updates):
/// sled writes its snapshots (`snap.*`) to a temporary name, renames them into place and
/// removes the old one, all without a directory fsync, so a cut could otherwise take both the
/// new snapshot and the old one, leaving sled to rebuild its page table from the whole log.
pub fn sync_dir_if_changed(dir: &Path, seen: &mut Vec<std::ffi::OsString>) -> std::io::Result<()> {
    let mut names = std::fs::read_dir(dir)?
        .map(|entry| entry.map(|e| e.file_name()))
        .collect::<std::io::Result<Vec<_>>>()?;
    names.sort();
    if names != *seen {
        sync_dir(dir)?;
        *seen = names;
    }
    Ok(())
}

/// fsyncs every file under `db/blobs` and the folder itself; answers how many there were.
/// hearth's layout makes none, so this is normally one empty directory listing; it is here so
/// that a blob made despite the bounds is on disk before the log that points at it is.
pub fn sync_blobs(dir: &Path) -> std::io::Result<usize> {
    let blobs = dir.join("blobs");
    let entries = match std::fs::read_dir(&blobs) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut synced = 0;
    for entry in entries {
        let path = entry?.path();
        match std::fs::File::open(&path) {
            Ok(file) => file.sync_all()?,
            // sled removes blobs it no longer needs, at any moment.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        }
        synced += 1;
    }
    if synced > 0 {
        sync_dir(&blobs)?;
    }
    Ok(synced)
}

/// A blob that is not whole: the reason, for the refusal message.
#[derive(Debug, PartialEq, Eq)]
pub struct BrokenBlob {
    pub path: PathBuf,
    pub problem: String,
}

/// Reads every blob under `db/blobs` and checks it as sled would (a CRC-32 of its kind byte
/// and data, stored first, little-endian). A blob that a power cut emptied or cut short is
/// what makes sled's recovery drop every later record, or panic; finding one before sled opens
/// lets hearth refuse the database instead.
pub fn check_blobs(dir: &Path) -> std::io::Result<Option<BrokenBlob>> {
    let blobs = dir.join("blobs");
    let entries = match std::fs::read_dir(&blobs) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let path = entry?.path();
        let mut raw = Vec::new();
        std::fs::File::open(&path)?.read_to_end(&mut raw)?;
        let problem = if raw.len() < 5 {
            Some(format!("it is {} bytes long", raw.len()))
        } else {
            let stored = u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]);
            (crc32fast::hash(&raw[4..]) != stored)
                .then(|| format!("its checksum does not match its {} bytes", raw.len()))
        };
        if let Some(problem) = problem {
            return Ok(Some(BrokenBlob { path, problem }));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_layout_is_written_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("data/db");
        assert_eq!(inspect(&db).unwrap(), Found::Nothing);
        create(&db, Layout::CURRENT).unwrap();
        assert_eq!(inspect(&db).unwrap(), Found::Current(Layout::CURRENT));
        assert!(!db.join(LAYOUT_PARTIAL).exists());
    }

    #[test]
    fn a_database_without_a_layout_is_legacy() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("db"), b"sled").unwrap();
        assert_eq!(inspect(dir.path()).unwrap(), Found::Legacy);
    }

    #[test]
    fn a_foreign_layout_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        for text in [
            "",
            "hearth-store-layout 2\nsegment_size 8388608\n",
            "hearth-store-layout 1\n",
            "hearth-store-layout 1\nsegment_size 1000\n",
        ] {
            std::fs::write(dir.path().join(LAYOUT_FILE), text).unwrap();
            assert!(
                matches!(inspect(dir.path()), Err(LayoutError::Unknown { .. })),
                "{text:?}"
            );
        }
    }

    #[test]
    fn short_and_garbled_blobs_are_found() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = dir.path().join("blobs");
        std::fs::create_dir(&blobs).unwrap();
        assert_eq!(check_blobs(dir.path()).unwrap(), None);
        let mut whole = crc32fast::hash(b"\x07payload").to_le_bytes().to_vec();
        whole.extend_from_slice(b"\x07payload");
        std::fs::write(blobs.join("100"), &whole).unwrap();
        assert_eq!(check_blobs(dir.path()).unwrap(), None);
        assert_eq!(sync_blobs(dir.path()).unwrap(), 1);
        std::fs::write(blobs.join("200"), b"").unwrap();
        let broken = check_blobs(dir.path()).unwrap().expect("an empty blob");
        assert!(broken.problem.contains("0 bytes"), "{broken:?}");
        std::fs::write(blobs.join("200"), &whole[..whole.len() - 2]).unwrap();
        let broken = check_blobs(dir.path()).unwrap().expect("a cut blob");
        assert!(broken.problem.contains("checksum"), "{broken:?}");
    }
}
