//! Counting events per key in fixed windows: failed sign-ins per username or client address,
//! registrations per address, room creations per user, unknown room codes per address.
//!
//! The map lives in memory only: a restart forgets it, which an attacker gains little from
//! because a restart takes the owner's hand.
//!
//! Client addresses are counted by [`ip_key`]: an IPv6 client is its /64, since one host
//! commonly holds a whole /64 and could otherwise step through its addresses.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Entries kept before expired windows are swept out.
const SWEEP_AT: usize = 10_000;

/// The key a client address is counted under: an IPv4 address as it is, an IPv6 address by its
/// /64 prefix (an IPv4-mapped IPv6 address as the IPv4 address).
pub fn ip_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

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
    /// At most `max_failures` events per key and window; 0 disables throttling.
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

    /// Counts one event for `key`.
    pub fn record(&self, key: &str) {
        if self.max_failures == 0 {
            return;
        }
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        self.current(&mut windows, key).failures += 1;
    }

    /// Counts one event for `key` if it is still allowed, in one step (so that concurrent
    /// callers cannot all pass a check before any of them records); `Err(retry_after)` and
    /// nothing counted otherwise.
    pub fn try_take(&self, key: &str) -> Result<(), Duration> {
        if self.max_failures == 0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let window = self.window;
        let w = self.current(&mut windows, key);
        if w.failures >= self.max_failures {
            return Err(w.started + window - now);
        }
        w.failures += 1;
        Ok(())
    }

    /// Takes back one event counted by [`Throttle::try_take`] for something that then did not
    /// happen after all.
    pub fn give_back(&self, key: &str) {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(w) = windows.get_mut(key) {
            w.failures = w.failures.saturating_sub(1);
        }
    }

    /// The window `key` counts in now, a fresh one if the last has ended.
    fn current<'a>(&self, windows: &'a mut HashMap<String, Window>, key: &str) -> &'a mut Window {
        let now = Instant::now();
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
        w
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
        throttle.record("k");
        assert!(throttle.check("k").is_ok());
        throttle.record("k");
        let retry = throttle.check("k").unwrap_err();
        assert!(retry <= Duration::from_millis(50));
        assert!(throttle.check("other").is_ok());
        std::thread::sleep(Duration::from_millis(60));
        assert!(throttle.check("k").is_ok());
    }

    #[test]
    fn try_take_counts_up_to_the_limit_and_gives_back() {
        let throttle = Throttle::new(2, Duration::from_secs(60));
        assert!(throttle.try_take("k").is_ok());
        assert!(throttle.try_take("k").is_ok());
        assert!(throttle.try_take("k").is_err());
        assert!(throttle.try_take("other").is_ok());
        throttle.give_back("k");
        assert!(throttle.try_take("k").is_ok());
        assert!(throttle.check("k").is_err());
    }

    #[test]
    fn addresses_are_counted_by_host_and_ipv6_by_its_64() {
        let key = |s: &str| ip_key(s.parse().unwrap());
        assert_eq!(key("192.0.2.7"), "192.0.2.7");
        assert_eq!(key("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(key("2001:db8:1:2:aaaa::1"), key("2001:db8:1:2:bbbb::9"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("2001:db8:1:2::1"), "2001:db8:1:2::/64");
    }

    #[test]
    fn zero_disables() {
        let throttle = Throttle::new(0, Duration::from_secs(1));
        for _ in 0..100 {
            throttle.record("k");
        }
        assert!(throttle.check("k").is_ok());
    }
}
