//! Who may read what hearth writes: its own user alone. The database holds everyone's messages
//! and password hashes, so the data directory is created 0700 and, with the process umask set
//! to 077 at start (before anything is written), every file in it, every export and every
//! backup is 0600. A data directory that others can read (made by an older hearth, or by hand)
//! is kept as it is but warned about at start-up.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

/// Sets the process umask to 077: files hearth creates are 0600, directories 0700, whatever
/// umask it was started with (022 is the common default and makes files world-readable).
pub fn private_by_default() {
    let _previous = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
}

/// Creates `dir` and any missing parents, each new one 0700.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// What others may do with `dir`, if anything: `Some("group- and world-readable")`, … for a
/// warning.
pub fn open_to_others(dir: &Path) -> Option<String> {
    let mode = std::fs::metadata(dir).ok()?.permissions().mode();
    let who = match (mode & 0o070 != 0, mode & 0o007 != 0) {
        (false, false) => return None,
        (true, false) => "its group",
        (false, true) => "every local user",
        (true, true) => "its group and every local user",
    };
    Some(format!(
        "the data directory {} (mode {:o}) is open to {who}: they can read messages and \
         password hashes from it; make it hearth's own with `chmod -R go-rwx {}`",
        dir.display(),
        mode & 0o777,
        dir.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_private_dir_is_0700_and_an_open_one_is_named() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("a/b");
        create_private_dir(&dir).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        assert_eq!(open_to_others(&dir), None);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let warning = open_to_others(&dir).unwrap();
        assert!(
            warning.contains("its group and every local user"),
            "{warning}"
        );
        assert!(warning.contains("755"), "{warning}");
    }
}
