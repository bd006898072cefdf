//! The report channel: one line per event, written whole, to the guest's second serial port
//! (the host captures it into a file) or to any file when tried without a VM.
//!
//! Lines are words separated by spaces; the host ignores a last line without its newline (the
//! cut can fall in the middle of one).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use anyhow::Context;

pub struct Report {
    out: Mutex<File>,
}

impl Report {
    pub fn open(path: &Path) -> anyhow::Result<Report> {
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening the report {}", path.display()))?;
        Ok(Report {
            out: Mutex::new(out),
        })
    }

    /// Writes one line with one write, so that lines of concurrent rooms never mix.
    pub fn line(&self, line: &str) {
        let mut whole = line.replace(['\n', '\r'], " ");
        whole.push('\n');
        let mut out = match self.out.lock() {
            Ok(out) => out,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Err(error) = out.write_all(whole.as_bytes()) {
            eprintln!("powercut-driver: cannot write the report: {error}");
        }
    }
}
