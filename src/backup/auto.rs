//! Automatic backups: once a day the running server writes a backup into the data directory's
//! `backups/` folder and removes the oldest beyond `backup.keep`, so that a database damaged by
//! a failing disk or a power cut always has a way back, even for someone who never set up
//! backups. `hearth backup --list` shows them; a refused database's message names the newest.
//!
//! When: at `backup.hour` (UTC) every day, and at start when the newest automatic backup is
//! more than a day old or there is none, so that a machine that is off at that hour still gets
//! one a day. Each is the same consistent snapshot as `hearth backup` (see
//! [`crate::store::snapshot`]), written to a partial file, fsynced and renamed, readable by its
//! owner only.
//!
//! They sit on the same disk as the database: they protect against a damaged database, not a
//! lost disk. docs/operations.md says so and how to copy them elsewhere.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{format, BackupError};
use crate::clock::now_ms;
use crate::config::BackupConfig;
use crate::store::snapshot::Header;
use crate::store::Store;

/// The folder, inside the data directory.
pub const DIR: &str = "backups";
const PREFIX: &str = "hearth-";
const SUFFIX: &str = ".backup";
const DAY_MS: u64 = 86_400_000;
const HOUR_MS: u64 = 3_600_000;

/// One automatic backup on disk.
#[derive(Debug, Clone)]
pub struct AutoBackup {
    pub path: PathBuf,
    pub header: Header,
    pub bytes: u64,
}

pub fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join(DIR)
}

/// `hearth-YYYYMMDD-HHMMSS.backup`, in UTC: sorts by time, and says when at a glance.
fn file_name(taken_at_ms: u64) -> String {
    let (date, time) = utc(taken_at_ms);
    format!("{PREFIX}{date}-{time}{SUFFIX}")
}

/// (`YYYYMMDD`, `HHMMSS`) in UTC.
fn utc(ms: u64) -> (String, String) {
    let text = Header {
        hearth_version: String::new(),
        schema_version: 0,
        id_high_water: 0,
        taken_at: ms,
    }
    .taken_at_text();
    // "YYYY-MM-DD HH:MM UTC"
    let date: String = text[..10].chars().filter(char::is_ascii_digit).collect();
    let secs = ms / 1000 % 60;
    let time: String = text[11..16].chars().filter(char::is_ascii_digit).collect();
    (date, format!("{time}{secs:02}"))
}

/// The automatic backups in the data directory, oldest first. Files that are not whole
/// backups (a partial one, something else put there) are left out.
pub fn list(data_dir: &Path) -> io::Result<Vec<AutoBackup>> {
    let folder = dir(data_dir);
    let entries = match std::fs::read_dir(&folder) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !(name.starts_with(PREFIX) && name.ends_with(SUFFIX)) {
            continue;
        }
        let path = entry.path();
        match format::open_file(&path) {
            Ok(reader) => {
                if let Some(header) = reader.header().cloned() {
                    found.push(AutoBackup {
                        bytes: entry.metadata()?.len(),
                        path,
                        header,
                    });
                }
            }
            Err(e) => tracing::warn!(file = %path.display(), error = %e, "not a readable backup"),
        }
    }
    found.sort_by_key(|b| b.header.taken_at);
    Ok(found)
}

/// The newest automatic backup, if any can be read.
pub fn newest(data_dir: &Path) -> Option<AutoBackup> {
    list(data_dir).ok().and_then(|mut all| all.pop())
}

/// What to tell someone whose database was refused: the newest automatic backup and how to
/// restore it, or that there is none.
pub fn restore_advice(data_dir: &Path) -> String {
    let db = data_dir.join("db");
    match newest(data_dir) {
        Some(backup) => format!(
            "The newest automatic backup is {path}, taken {when}. To serve it: stop hearth, \
             run `mv {db} {db}.damaged`, then `hearth restore {path}` with the same --config \
             or --data-dir, and start hearth again. Messages sent after {when} are not in it.",
            path = backup.path.display(),
            when = backup.header.taken_at_text(),
            db = db.display(),
        ),
        None => format!(
            "There is no automatic backup in {}; restore one of your own with `hearth restore \
             FILE` after moving {} aside.",
            dir(data_dir).display(),
            db.display()
        ),
    }
}

/// When the next backup is due (unix ms), given the newest one's time: at `hour` UTC on the
/// first day after it, or at once if there is none or it is more than a day old.
pub fn next_due(newest: Option<u64>, now: u64, hour: u8) -> u64 {
    let Some(last) = newest else {
        return now;
    };
    if now.saturating_sub(last) >= DAY_MS {
        return now;
    }
    let slot = u64::from(hour) * HOUR_MS;
    let day_start = last - last % DAY_MS;
    let mut due = day_start + slot;
    if due <= last {
        due += DAY_MS;
    }
    due
}

/// Takes one automatic backup of `store` now and removes the oldest beyond `keep`.
pub fn take(store: &Store, data_dir: &Path, keep: usize) -> Result<AutoBackup, BackupError> {
    let folder = dir(data_dir);
    let write_error = |source| BackupError::Write {
        path: folder.clone(),
        source,
    };
    crate::store::layout::create_dir_durably(&folder).map_err(write_error)?;
    let snapshot = store.snapshot()?;
    let path = folder.join(file_name(snapshot.header.taken_at));
    let mut file = format::FileWriter::create(&path).map_err(write_error)?;
    if let Err(e) = format::write_stream(&snapshot, file.stream()) {
        file.abandon();
        return Err(write_error(e));
    }
    let bytes = file.finish().map_err(write_error)?.unwrap_or(0);
    let taken = AutoBackup {
        path,
        header: snapshot.header,
        bytes,
    };
    prune(data_dir, keep).map_err(write_error)?;
    Ok(taken)
}

/// Removes the oldest automatic backups beyond the newest `keep`, and what interrupted ones
/// left.
fn prune(data_dir: &Path, keep: usize) -> io::Result<()> {
    for entry in std::fs::read_dir(dir(data_dir))? {
        let path = entry?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if name.starts_with(PREFIX) && name.ends_with(".partial") {
            std::fs::remove_file(&path)?;
        }
    }
    let all = list(data_dir)?;
    let surplus = all.len().saturating_sub(keep.max(1));
    for old in &all[..surplus] {
        std::fs::remove_file(&old.path)?;
        tracing::info!(file = %old.path.display(), "removed an old automatic backup");
    }
    Ok(())
}

/// Runs the schedule until `stop` is cancelled.
pub async fn run(store: Store, data_dir: PathBuf, config: BackupConfig, stop: CancellationToken) {
    loop {
        let newest = newest(&data_dir).map(|b| b.header.taken_at);
        let now = now_ms();
        let wait = Duration::from_millis(next_due(newest, now, config.hour).saturating_sub(now));
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
        let (store, data_dir_now, keep) = (store.clone(), data_dir.clone(), config.keep as usize);
        let outcome = tokio::task::spawn_blocking(move || take(&store, &data_dir_now, keep)).await;
        match outcome {
            Ok(Ok(backup)) => tracing::info!(
                file = %backup.path.display(),
                bytes = backup.bytes,
                "automatic backup written"
            ),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "automatic backup failed; trying again in an hour");
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_millis(HOUR_MS)) => {}
                }
            }
            Err(e) => tracing::error!(error = %e, "automatic backup task failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: u64 = HOUR_MS;
    /// 2026-12-03 00:00 UTC.
    const DAY: u64 = 1_796_256_000_000;

    #[test]
    fn names_sort_by_time_and_read_as_utc() {
        assert_eq!(
            file_name(DAY + 3 * H + 7_000),
            "hearth-20261203-030007.backup"
        );
        assert!(file_name(DAY + 23 * H) < file_name(DAY + 24 * H));
    }

    #[test]
    fn the_schedule_is_daily_at_the_hour_and_catches_up_at_start() {
        // None yet: now.
        assert_eq!(next_due(None, DAY + 5 * H, 3), DAY + 5 * H);
        // Taken at 03:00: the next is tomorrow at 03:00.
        assert_eq!(next_due(Some(DAY + 3 * H), DAY + 4 * H, 3), DAY + 27 * H);
        // Taken at a start at 01:00: today at 03:00.
        assert_eq!(next_due(Some(DAY + H), DAY + 2 * H, 3), DAY + 3 * H);
        // The machine was off for two days: at once.
        assert_eq!(next_due(Some(DAY), DAY + 50 * H, 3), DAY + 50 * H);
    }
}
