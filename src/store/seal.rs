//! The clean-stop seal: what lets a start after a clean stop skip the full integrity check, and
//! what lets any start after a clean stop notice that the stop's last writes are gone.
//!
//! The check in [`super::check`] reads every record, about 1.5 µs each: seconds for a store of
//! a few million messages, paid at every start. After a clean stop it would only re-read what
//! hearth itself wrote and made durable. So a clean stop, once everything is on disk, writes a
//! marker (a fresh number) into `meta/clean_stop` as its last write, makes it durable, and then
//! writes `db/clean-stop`: the marker, and every file of the database with its size, inode, and
//! modification and change times in nanoseconds. The change time is set by the kernel on every
//! write and cannot be set back by a program, so a file listed as it is now has not been
//! written since the stop.
//!
//! At the next open ([`super::Trees::open`]):
//! - every file as listed: the record-by-record pass is skipped (the schema version is still
//!   checked);
//! - anything changed (a copy, an editor, a damaging byte): the full pass runs;
//! - either way, once sled has opened, `meta/clean_stop` must hold the seal's marker. sled
//!   treats a log entry that fails its checksum after its last snapshot as a write torn by a
//!   crash and silently ends the log there; after a clean stop nothing was torn, so a missing
//!   marker means damage that took the stop's last writes (and perhaps more) with it, and the
//!   database is refused as damaged;
//! - the seal is removed only once the open succeeded, so a refused database stays refused.
//!
//! A crash writes no seal, so the start after a crash always runs the full check, and a torn
//! tail there is what sled is built to drop: writes nobody was told were durable.
//!
//! What a seal cannot see: the disk itself decaying without anything writing. sled verifies a
//! checksum of every page it reads, so such damage still surfaces as an error when the page is
//! read; `store.check_every_start = true` runs the full check at every start for those who want
//! it found at start.

use std::io::Write;
use std::path::Path;

/// The seal's file name, inside the database directory.
pub const SEAL: &str = "clean-stop";
const SEAL_PARTIAL: &str = "clean-stop.partial";

/// What a clean stop left: the marker it wrote last into the database, and its files as they
/// were afterwards.
#[derive(Debug, PartialEq, Eq)]
pub struct Seal {
    /// Also stored under `meta/clean_stop`, as the stop's last write.
    pub marker: u64,
    listing: String,
}

/// Writes the seal for the database in `dir` as its files are now, `marker` being the value
/// the stop wrote last. Call only when everything is durable and nothing writes any more.
pub fn write(dir: &Path, marker: u64) -> std::io::Result<()> {
    let Some(listing) = fingerprint(dir)? else {
        return Ok(());
    };
    let partial = dir.join(SEAL_PARTIAL);
    let mut file = std::fs::File::create(&partial)?;
    write!(file, "marker {marker}\n{listing}")?;
    file.sync_all()?;
    std::fs::rename(&partial, dir.join(SEAL))?;
    std::fs::File::open(dir)?.sync_all()
}

/// The seal of the database in `dir`, if a clean stop left one. A seal that cannot be read is
/// treated as none (which costs the full check, never trust).
pub fn read(dir: &Path) -> Option<Seal> {
    let text = match std::fs::read_to_string(dir.join(SEAL)) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the clean-stop seal; checking everything");
            return None;
        }
    };
    let parsed = text.split_once('\n').and_then(|(first, listing)| {
        let marker = first.strip_prefix("marker ")?.parse().ok()?;
        Some(Seal {
            marker,
            listing: listing.to_string(),
        })
    });
    if parsed.is_none() {
        tracing::warn!("the clean-stop seal is not readable; checking everything");
    }
    parsed
}

impl Seal {
    /// Whether every file of the database in `dir` is exactly as the seal lists it.
    pub fn matches_files(&self, dir: &Path) -> bool {
        match fingerprint(dir) {
            Ok(Some(now)) => now == self.listing,
            Ok(None) => false,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list the database's files; checking everything");
                false
            }
        }
    }
}

/// Removes the seal once an open has used it: from then on the run may write, and only its
/// own clean stop may vouch for the files again.
pub fn remove(dir: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(dir.join(SEAL)) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        other => other?,
    }
    std::fs::File::open(dir)?.sync_all()
}

/// One line per file under `dir` (the seal itself aside), sorted: path, size, inode,
/// modification and change time in nanoseconds. `None` where the platform cannot say.
#[cfg(unix)]
fn fingerprint(dir: &Path) -> std::io::Result<Option<String>> {
    use std::os::unix::fs::MetadataExt;
    let mut lines = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder)? {
            let entry = entry?;
            let path = entry.path();
            let name = path.strip_prefix(dir).unwrap_or(&path).to_string_lossy();
            if name == SEAL || name == SEAL_PARTIAL {
                continue;
            }
            let meta = std::fs::symlink_metadata(&path)?;
            if meta.is_dir() {
                pending.push(path.clone());
            }
            let nanos = |secs: i64, nsec: i64| i128::from(secs) * 1_000_000_000 + i128::from(nsec);
            lines.push(format!(
                "{name}\t{}\t{}\t{}\t{}",
                meta.len(),
                meta.ino(),
                nanos(meta.mtime(), meta.mtime_nsec()),
                nanos(meta.ctime(), meta.ctime_nsec()),
            ));
        }
    }
    lines.sort();
    Ok(Some(lines.join("\n") + "\n"))
}

#[cfg(not(unix))]
fn fingerprint(_dir: &Path) -> std::io::Result<Option<String>> {
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn database(dir: &Path) {
        std::fs::write(dir.join("db"), b"records").unwrap();
        std::fs::write(dir.join("conf"), b"conf").unwrap();
        std::fs::create_dir(dir.join("blobs")).unwrap();
        std::fs::write(dir.join("blobs/1"), b"blob").unwrap();
    }

    #[test]
    fn a_seal_lists_untouched_files_until_removed() {
        let dir = tempfile::tempdir().unwrap();
        database(dir.path());
        assert_eq!(read(dir.path()), None);
        write(dir.path(), 42).unwrap();
        let seal = read(dir.path()).unwrap();
        assert_eq!(seal.marker, 42);
        assert!(
            seal.matches_files(dir.path()),
            "the seal itself is not listed"
        );
        remove(dir.path()).unwrap();
        assert_eq!(read(dir.path()), None);
        remove(dir.path()).unwrap();
    }

    #[test]
    fn a_garbled_seal_is_no_seal() {
        let dir = tempfile::tempdir().unwrap();
        database(dir.path());
        std::fs::write(dir.path().join(SEAL), "marker x\ndb\t1\n").unwrap();
        assert_eq!(read(dir.path()), None);
    }

    #[test]
    fn any_write_or_change_of_files_breaks_the_seal() {
        type Change = fn(&Path);
        let changes: [(&str, Change); 5] = [
            ("same size, new bytes", |d| {
                std::fs::write(d.join("db"), b"recordz").unwrap()
            }),
            ("appended", |d| {
                let mut f = std::fs::OpenOptions::new()
                    .append(true)
                    .open(d.join("db"))
                    .unwrap();
                f.write_all(b"!").unwrap();
            }),
            ("a file in a folder", |d| {
                std::fs::write(d.join("blobs/1"), b"blub").unwrap()
            }),
            ("a new file", |d| {
                std::fs::write(d.join("snap.01"), b"x").unwrap()
            }),
            ("a file gone", |d| {
                std::fs::remove_file(d.join("conf")).unwrap()
            }),
        ];
        for (what, change) in changes {
            let dir = tempfile::tempdir().unwrap();
            database(dir.path());
            write(dir.path(), 1).unwrap();
            // Past the file system's timestamp granularity, as a later run always is.
            std::thread::sleep(std::time::Duration::from_millis(20));
            change(dir.path());
            assert!(
                !read(dir.path()).unwrap().matches_files(dir.path()),
                "{what}"
            );
        }
    }
}
