//! Counting events per key in fixed windows: failed sign-ins per username and address, per
//! address and per username, registrations per address, room creations per user, unknown room
//! codes per address; and [`InFlight`], what each key has under way at once.
//!
//! The map lives in memory only: a restart forgets it, which an attacker gains little from
//! because a restart takes the owner's hand.
//!
//! Client addresses are counted by [`ip_key`]: an IPv6 client is its /64, since one host
//! commonly holds a whole /64 and could otherwise step through its addresses.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
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

    /// Events counted for `key` in its current window.
    pub fn count(&self, key: &str) -> u32 {
        let now = Instant::now();
        let windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        match windows.get(key) {
            Some(w) if now < w.started + self.window => w.failures,
            _ => 0,
        }
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

/// How many things each key has under way at once, at most `max` (0 = no limit): password
/// hashes per client address, so that one address cannot fill the hash queue for everyone.
pub struct InFlight {
    max: usize,
    running: Arc<Mutex<HashMap<String, usize>>>,
}

/// One thing under way for a key; dropping it ends it.
pub struct InFlightSlot {
    key: String,
    running: Arc<Mutex<HashMap<String, usize>>>,
}

impl InFlight {
    pub fn new(max: usize) -> InFlight {
        InFlight {
            max,
            running: Arc::default(),
        }
    }

    /// A slot for `key`, or `None` while it has `max` under way.
    pub fn try_start(&self, key: &str) -> Option<InFlightSlot> {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        let count = running.entry(key.to_string()).or_insert(0);
        if self.max > 0 && *count >= self.max {
            return None;
        }
        *count += 1;
        Some(InFlightSlot {
            key: key.to_string(),
            running: self.running.clone(),
        })
    }
}

impl Drop for InFlightSlot {
    fn drop(&mut self) {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = running.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                running.remove(&self.key);
            }
        }
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
    fn in_flight_allows_max_per_key_until_a_slot_ends() {
        let gate = InFlight::new(2);
        let a = gate.try_start("k").unwrap();
        let _b = gate.try_start("k").unwrap();
        assert!(gate.try_start("k").is_none());
        assert!(gate.try_start("other").is_some());
        drop(a);
        assert!(gate.try_start("k").is_some());
        assert_eq!(InFlight::new(0).try_start("k").map(|_| ()), Some(()));
    }

    #[test]
    fn count_is_the_current_window_only() {
        let throttle = Throttle::new(5, Duration::from_millis(40));
        throttle.record("k");
        throttle.record("k");
        assert_eq!(throttle.count("k"), 2);
        assert_eq!(throttle.count("other"), 0);
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(throttle.count("k"), 0);
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
