//! Per-socket frame rate: a token bucket for the sustained rate and burst, and a count of
//! refused frames that tells flooding apart from a client that bursts now and then.

use std::time::{Duration, Instant};

/// The window in which refused frames are counted towards a flooding close.
pub const FLOOD_WINDOW: Duration = Duration::from_secs(10);

pub struct RateLimit {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
    flood_close_after: u32,
    refused: u32,
    refused_since: Instant,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    Refuse,
    /// Refused, and the socket has flooded for long enough to be closed.
    Flooding,
}

impl RateLimit {
    /// `rate == 0` allows everything.
    pub fn new(rate: u32, burst: u32, flood_close_after: u32) -> RateLimit {
        let now = Instant::now();
        RateLimit {
            rate: f64::from(rate),
            burst: f64::from(burst),
            tokens: f64::from(burst),
            last: now,
            flood_close_after,
            refused: 0,
            refused_since: now,
        }
    }

    pub fn check(&mut self, now: Instant) -> Verdict {
        if self.rate == 0.0 {
            return Verdict::Allow;
        }
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Verdict::Allow;
        }
        if now.saturating_duration_since(self.refused_since) > FLOOD_WINDOW {
            self.refused = 0;
            self.refused_since = now;
        }
        self.refused += 1;
        if self.flood_close_after > 0 && self.refused >= self.flood_close_after {
            Verdict::Flooding
        } else {
            Verdict::Refuse
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_sustained_rate() {
        let start = Instant::now();
        let mut limit = RateLimit::new(20, 50, 0);
        for _ in 0..50 {
            assert_eq!(limit.check(start), Verdict::Allow);
        }
        assert_eq!(limit.check(start), Verdict::Refuse);
        // 20 per second sustained: one every 50 ms passes.
        for i in 1..=100 {
            let at = start + Duration::from_millis(50 * i);
            assert_eq!(limit.check(at), Verdict::Allow, "frame {i}");
        }
    }

    #[test]
    fn sustained_flooding_is_told_apart() {
        let start = Instant::now();
        let mut limit = RateLimit::new(1, 1, 5);
        assert_eq!(limit.check(start), Verdict::Allow);
        for _ in 0..4 {
            assert_eq!(limit.check(start), Verdict::Refuse);
        }
        assert_eq!(limit.check(start), Verdict::Flooding);
    }

    #[test]
    fn zero_rate_is_unlimited() {
        let mut limit = RateLimit::new(0, 0, 1);
        for _ in 0..10_000 {
            assert_eq!(limit.check(Instant::now()), Verdict::Allow);
        }
    }
}
