//! Starting the hearth under test as a child process and judging whether it came up: serving
//! (it answers /healthz), refused (it exited: its status and its last words), or hung.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::report::Report;

/// Lines of hearth's output kept for the report when it refuses to start.
const LAST_WORDS: usize = 12;

pub struct Server {
    child: Child,
    last_words: Arc<Mutex<VecDeque<String>>>,
}

impl Server {
    /// Starts `hearth serve --config CONFIG`; its output goes on to the console (stderr).
    pub fn spawn(hearth: &Path, config: &Path) -> anyhow::Result<Server> {
        let mut child = Command::new(hearth)
            .arg("serve")
            .arg("--config")
            .arg(config)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let last_words = Arc::new(Mutex::new(VecDeque::new()));
        if let Some(out) = child.stdout.take() {
            echo(out, last_words.clone());
        }
        if let Some(err) = child.stderr.take() {
            echo(err, last_words.clone());
        }
        Ok(Server { child, last_words })
    }

    /// Waits until /healthz answers, the process exits, or `limit` passes, and reports which:
    /// `start ok SECONDS`, `start exited STATUS` with `said LINE`s, or `start hung SECONDS`.
    pub async fn wait_until_serving(
        &mut self,
        url: &str,
        limit: Duration,
        report: &Report,
    ) -> bool {
        let client = reqwest::Client::new();
        let started = Instant::now();
        if healthy(&client, url).await {
            report.line("start occupied: another server answers there already");
            return false;
        }
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                // Let the output threads catch up with the last lines.
                tokio::time::sleep(Duration::from_millis(300)).await;
                report.line(&format!("start exited {status}"));
                self.report_last_words(report);
                return false;
            }
            if healthy(&client, url).await {
                report.line(&format!("start ok {:.1}", started.elapsed().as_secs_f64()));
                return true;
            }
            if started.elapsed() >= limit {
                report.line(&format!(
                    "start hung {:.1}",
                    started.elapsed().as_secs_f64()
                ));
                self.report_last_words(report);
                return false;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Reports `exited STATUS` if hearth stopped since it started serving.
    pub fn report_if_exited(&mut self, report: &Report) {
        if let Ok(Some(status)) = self.child.try_wait() {
            report.line(&format!("exited {status}"));
            self.report_last_words(report);
        }
    }

    fn report_last_words(&self, report: &Report) {
        let words = match self.last_words.lock() {
            Ok(words) => words.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        for line in words {
            report.line(&format!("said {line}"));
        }
    }
}

impl Drop for Server {
    /// A server left behind would answer the next run's /healthz (off the guest, where
    /// nothing powers the machine off).
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

async fn healthy(client: &reqwest::Client, url: &str) -> bool {
    client
        .get(format!("{url}/healthz"))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

/// Copies a pipe of hearth's to the console line by line, keeping the last few lines.
fn echo(pipe: impl Read + Send + 'static, last_words: Arc<Mutex<VecDeque<String>>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            let line = without_colours(&line);
            eprintln!("hearth| {line}");
            let mut words = match last_words.lock() {
                Ok(words) => words,
                Err(poisoned) => poisoned.into_inner(),
            };
            if words.len() == LAST_WORDS {
                words.pop_front();
            }
            words.push_back(line);
        }
    });
}

/// The line without ANSI colour sequences (`ESC [ ... m`), which tracing writes to pipes too.
fn without_colours(line: &str) -> String {
    let mut plain = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
}

#[cfg(test)]
mod tests {
    #[test]
    fn colours_are_dropped() {
        assert_eq!(
            super::without_colours("\u{1b}[2mT\u{1b}[0m \u{1b}[31mERROR\u{1b}[0m store"),
            "T ERROR store"
        );
    }
}
