//! The server's resident memory and CPU time, read from /proc.

pub struct Sampler {
    pid: Option<u32>,
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
