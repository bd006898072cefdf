//! Counting failed sign-ins per key (a username or a client address) in fixed windows.
//!
//! The map lives in memory only: a restart forgets it, which an attacker gains little from
//! because a restart takes the owner's hand.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Entries kept before expired windows are swept out.
const SWEEP_AT: usize = 10_000;

pub struct Throttle {
    max_failures: u32,
    window: Duration,
    windows: Mutex<HashMap<String, Window>>,
}

struct Window {
    started: Instant,
    failures: u32,
}

impl Throttle {
    /// `max_failures == 0` disables throttling.
    pub fn new(max_failures: u32, window: Duration) -> Throttle {
        Throttle {
            max_failures,
            window,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(retry_after)` while `key` has used up its failures in the current window.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        if self.max_failures == 0 {
            return Ok(());
        }
        let now = Instant::now();
        let windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        match windows.get(key) {
            Some(w) if now < w.started + self.window && w.failures >= self.max_failures => {
                Err(w.started + self.window - now)
            }
            _ => Ok(()),
        }
    }

    pub fn record_failure(&self, key: &str) {
        if self.max_failures == 0 {
            return;
        }
        let now = Instant::now();
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() >= SWEEP_AT {
            windows.retain(|_, w| now < w.started + self.window);
        }
        let w = windows.entry(key.to_string()).or_insert(Window {
            started: now,
            failures: 0,
        });
        if now >= w.started + self.window {
            *w = Window {
                started: now,
                failures: 0,
            };
        }
        w.failures += 1;
    }

    pub fn clear(&self, key: &str) {
        self.windows
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_max_failures_and_recovers() {
        let throttle = Throttle::new(2, Duration::from_millis(50));
        throttle.record_failure("k");
        assert!(throttle.check("k").is_ok());
        throttle.record_failure("k");
        let retry = throttle.check("k").unwrap_err();
        assert!(retry <= Duration::from_millis(50));
        assert!(throttle.check("other").is_ok());
        std::thread::sleep(Duration::from_millis(60));
        assert!(throttle.check("k").is_ok());
    }

    #[test]
    fn zero_disables() {
        let throttle = Throttle::new(0, Duration::from_secs(1));
        for _ in 0..100 {
            throttle.record_failure("k");
        }
        assert!(throttle.check("k").is_ok());
    }
}
