//! The clean-stop seal: what lets a start after a clean stop skip the full integrity check.
//!
//! The check in [`super::check`] reads every record, about 1.5 µs each: seconds for a store of
//! a few million messages, paid at every start. After a clean stop it would only re-read what
//! hearth itself wrote and flushed. So a clean stop, once everything is on disk, writes
//! `db/clean-stop`: every file of the database with its size, inode, and modification and
//! change times in nanoseconds. The next open reads the seal and removes it before sled opens
//! anything; if every file is still exactly as listed, nothing has written to the database since
//! hearth left it, and the record-by-record pass is skipped (the schema version is still
//! checked). The change time is set by the kernel on every write and cannot be set back by a
//! program, so any write to the files after the stop (a crash-interrupted run, a copy, an editor,
//! a damaging byte) makes the seal not match, and the full check runs.
//!
//! What a seal cannot see: the disk itself decaying without anything writing. sled verifies a
//! checksum of every page it reads, so such damage still surfaces as an error when the page is
//! read; `store.check_every_start = true` runs the full check at every start for those who want
//! it found at start.
//!
//! A crash writes no seal, so the start after a crash always runs the full check.

use std::io::Write;
use std::path::Path;

/// The seal's file name, inside the database directory.
pub const SEAL: &str = "clean-stop";
const SEAL_PARTIAL: &str = "clean-stop.partial";

/// Writes the seal for the database in `dir` as its files are now. Call only when everything
/// is flushed and nothing writes any more.
pub fn write(dir: &Path) -> std::io::Result<()> {
    let Some(listing) = fingerprint(dir)? else {
        return Ok(());
    };
    let partial = dir.join(SEAL_PARTIAL);
    let mut file = std::fs::File::create(&partial)?;
    file.write_all(listing.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&partial, dir.join(SEAL))?;
    std::fs::File::open(dir)?.sync_all()
}

/// Reads and removes the seal of the database in `dir`; answers whether there was one and the
/// database's files are exactly as it lists them. Any doubt (no seal, a seal that cannot be
/// read or removed) answers false, which costs only the full check.
pub fn take(dir: &Path) -> bool {
    let seal = dir.join(SEAL);
    let recorded = match std::fs::read_to_string(&seal) {
        Ok(recorded) => recorded,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return false,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the clean-stop seal; checking everything");
            return false;
        }
    };
    // Removed first, and for good: from now on this run may write, and only its own clean
    // stop may vouch for the files again.
    let removed = std::fs::remove_file(&seal).and_then(|()| std::fs::File::open(dir)?.sync_all());
    if let Err(e) = removed {
        tracing::warn!(error = %e, "cannot remove the clean-stop seal; checking everything");
        return false;
    }
    match fingerprint(dir) {
        Ok(Some(now)) => now == recorded,
        Ok(None) => false,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list the database's files; checking everything");
            false
        }
    }
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
    fn a_seal_vouches_once_for_files_nobody_touched() {
        let dir = tempfile::tempdir().unwrap();
        database(dir.path());
        assert!(!take(dir.path()), "no seal, no trust");
        write(dir.path()).unwrap();
        assert!(take(dir.path()));
        assert!(!dir.path().join(SEAL).exists(), "taken means removed");
        assert!(!take(dir.path()), "a seal is good for one start");
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
            ("a new file", |d| std::fs::write(d.join("snap.01"), b"x").unwrap()),
            ("a file gone", |d| std::fs::remove_file(d.join("conf")).unwrap()),
        ];
        for (what, change) in changes {
            let dir = tempfile::tempdir().unwrap();
            database(dir.path());
            write(dir.path()).unwrap();
            // Past the file system's timestamp granularity, as a later run always is.
            std::thread::sleep(std::time::Duration::from_millis(20));
            change(dir.path());
            assert!(!take(dir.path()), "{what}");
        }
    }
}
