//! What hearth writes is its own user's alone, whatever umask it is started with: the data
//! directory 0700, every file in it 0600, exports and backups 0600; a data directory others
//! can read is warned about at start-up.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::process::{hearth_under_umask, start_command, Running};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Every file and directory under `dir`, with its mode.
fn modes_under(dir: &Path) -> Vec<(String, u32)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        found.push((path.display().to_string(), mode(&path)));
        if path.is_dir() {
            found.extend(modes_under(&path));
        }
    }
    found
}

/// The umask most systems start people's processes with: files 0644, directories 0755.
const USUAL_UMASK: &str = "022";

fn hearth(dir: &Path) -> std::process::Command {
    hearth_under_umask(dir, USUAL_UMASK)
}

/// A server on an ephemeral port, started under the usual umask.
fn start(dir: &Path, data: &Path) -> Running {
    let mut cmd = hearth(dir);
    cmd.args(["--bind", "127.0.0.1:0", "--data-dir"]).arg(data);
    start_command(cmd).unwrap_or_else(|logs| panic!("server exited before serving:\n{logs}"))
}

#[test]
fn the_data_directory_exports_and_backups_are_private_under_umask_022() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    start(dir.path(), &data).stop();
    assert_eq!(mode(&data), 0o700, "the data directory");
    let files = modes_under(&data);
    assert!(!files.is_empty());
    for (path, mode) in &files {
        assert_eq!(mode & 0o077, 0, "{path} is {mode:o}");
    }

    let export = dir.path().join("export.json");
    let status = hearth(dir.path())
        .arg("--data-dir")
        .arg(&data)
        .args(["export", "--json", "-o"])
        .arg(&export)
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(mode(&export), 0o600, "the export");

    let backup = dir.path().join("backup.hearth");
    let status = hearth(dir.path())
        .arg("--data-dir")
        .arg(&data)
        .arg("backup")
        .arg(&backup)
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(mode(&backup), 0o600, "the backup");
}

#[test]
fn a_data_directory_others_can_read_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    start(dir.path(), &data).stop_keeping_logs_into(|logs| {
        assert!(
            logs.contains("WARN") && logs.contains("is open to its group and every local user"),
            "{logs}"
        );
        assert!(logs.contains("chmod -R go-rwx"), "{logs}");
    });
    // Warned about, not changed: the operator may have reasons.
    assert_eq!(mode(&data), 0o755);
}
