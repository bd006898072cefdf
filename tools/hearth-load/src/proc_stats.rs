//! The server's resident memory and CPU time, read from /proc.

#[derive(Clone, Copy)]
pub struct Sampler {
    pid: Option<u32>,
}

/// The largest RSS seen by a background sampler, until [`PeakRss::stop`].
pub struct PeakRss {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Option<u64>>,
}

impl PeakRss {
    pub async fn stop(self) -> Option<u64> {
        let _ = self.stop.send(());
        self.task.await.ok().flatten()
    }
}

/// Clock ticks per second for /proc/<pid>/stat times; 100 on every Linux this runs on.
const TICKS_PER_SECOND: f64 = 100.0;

impl Sampler {
    pub fn new(pid: Option<u32>) -> Sampler {
        Sampler { pid }
    }

    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid?)).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// Samples the RSS every 100 ms in the background until stopped; answers the largest.
    pub fn watch_peak_rss(self) -> PeakRss {
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let mut peak = self.rss_kib();
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    () = tokio::time::sleep(std::time::Duration::from_millis(100)) => {}
                }
                peak = peak.max(self.rss_kib());
            }
            peak.max(self.rss_kib())
        });
        PeakRss { stop, task }
    }

    /// User plus system CPU seconds the process has used.
    pub fn cpu_seconds(&self) -> Option<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid?)).ok()?;
        // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
        let after_name = stat.rsplit_once(')')?.1;
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        let utime: f64 = fields.get(11)?.parse().ok()?;
        let stime: f64 = fields.get(12)?.parse().ok()?;
        Some((utime + stime) / TICKS_PER_SECOND)
    }
}
