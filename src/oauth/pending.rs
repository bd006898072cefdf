//! Sign-ins in progress: what the start of a flow must hand to its callback.
//!
//! The browser holds only a random flow id in a short-lived cookie; the `state`, the PKCE
//! verifier, where to go afterwards and whom to link stay here. A flow is taken out at its
//! callback whatever the outcome, so a callback URL (and its code) works at most once.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// One sign-in between its start and its callback.
#[derive(Debug)]
pub struct Flow {
    pub provider: String,
    /// The `state` sent to the provider, which must come back unchanged.
    pub state: String,
    /// The PKCE code verifier; only its S256 challenge left this server.
    pub verifier: String,
    /// A same-site path to land on afterwards.
    pub next: String,
    /// Set when a signed-in user links this provider to their account.
    pub link_user: Option<u64>,
    started: Instant,
}

impl Flow {
    pub fn new(
        provider: String,
        state: String,
        verifier: String,
        next: String,
        link_user: Option<u64>,
    ) -> Flow {
        Flow {
            provider,
            state,
            verifier,
            next,
            link_user,
            started: Instant::now(),
        }
    }
}

/// The flows by id, bounded in number and age.
pub struct PendingFlows {
    flows: Mutex<HashMap<String, Flow>>,
    ttl: Duration,
    /// 0 = no limit.
    max: usize,
}

impl PendingFlows {
    pub fn new(ttl: Duration, max: usize) -> PendingFlows {
        PendingFlows {
            flows: Mutex::new(HashMap::new()),
            ttl,
            max,
        }
    }

    /// Keeps a new flow; refuses (false) when `max` unexpired flows are waiting.
    pub fn insert(&self, id: String, flow: Flow) -> bool {
        let mut flows = self.flows.lock().unwrap_or_else(PoisonError::into_inner);
        if self.max > 0 && flows.len() >= self.max {
            let ttl = self.ttl;
            flows.retain(|_, f| f.started.elapsed() < ttl);
            if flows.len() >= self.max {
                return false;
            }
        }
        flows.insert(id, flow);
        true
    }

    /// Takes the flow out (it can be used once); `None` if unknown or expired.
    pub fn take(&self, id: &str) -> Option<Flow> {
        let flow = self
            .flows
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id)?;
        (flow.started.elapsed() < self.ttl).then_some(flow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow() -> Flow {
        Flow::new("github".into(), "s".into(), "v".into(), "/".into(), None)
    }

    #[test]
    fn flows_are_single_use_bounded_and_expire() {
        let pending = PendingFlows::new(Duration::from_secs(60), 2);
        assert!(pending.insert("a".into(), flow()));
        assert!(pending.insert("b".into(), flow()));
        assert!(!pending.insert("c".into(), flow()), "full");
        assert!(pending.take("a").is_some());
        assert!(pending.take("a").is_none(), "used once");
        assert!(pending.insert("c".into(), flow()));

        let expired = PendingFlows::new(Duration::ZERO, 1);
        assert!(expired.insert("a".into(), flow()));
        assert!(expired.insert("b".into(), flow()), "expired ones make room");
        assert!(expired.take("b").is_none(), "expired");
    }
}
