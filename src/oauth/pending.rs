//! Sign-ins in progress: what the start of a flow must hand to its callback.
//!
//! The browser holds only a random flow id in a short-lived cookie; the `state`, the PKCE
//! verifier, the OIDC nonce, where to go afterwards and whom to link stay here. A flow is taken out at its
//! callback whatever the outcome, so a callback URL (and its code) works at most once.
//!
//! Starting a flow needs no account, so the flows are bounded per client address as well as in
//! all: one address cannot take every slot and keep everyone else from signing in.

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
    /// The OIDC `nonce` sent to the provider, which its ID token must carry back (none for
    /// plain OAuth2 providers).
    pub nonce: Option<String>,
    /// A same-site path to land on afterwards.
    pub next: String,
    /// Set when a signed-in user links this provider to their account.
    pub link_user: Option<u64>,
    /// The client address it was started from ([`crate::auth::throttle::ip_key`]).
    client: String,
    started: Instant,
}

impl Flow {
    pub fn new(
        provider: String,
        state: String,
        verifier: String,
        next: String,
        link_user: Option<u64>,
        client: String,
    ) -> Flow {
        Flow {
            provider,
            state,
            verifier,
            nonce: None,
            next,
            link_user,
            client,
            started: Instant::now(),
        }
    }
}

/// The flows by id, bounded in number (in all and per client address) and age.
pub struct PendingFlows {
    inner: Mutex<Flows>,
    ttl: Duration,
    /// 0 = no limit.
    max: usize,
    /// 0 = no limit.
    max_per_client: usize,
}

#[derive(Default)]
struct Flows {
    by_id: HashMap<String, Flow>,
    /// Flows kept per client address.
    per_client: HashMap<String, usize>,
}

impl Flows {
    fn remove(&mut self, id: &str) -> Option<Flow> {
        let flow = self.by_id.remove(id)?;
        if let Some(count) = self.per_client.get_mut(&flow.client) {
            *count -= 1;
            if *count == 0 {
                self.per_client.remove(&flow.client);
            }
        }
        Some(flow)
    }

    fn sweep(&mut self, ttl: Duration) {
        let expired: Vec<String> = self
            .by_id
            .iter()
            .filter(|(_, f)| f.started.elapsed() >= ttl)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            self.remove(&id);
        }
    }

    fn of(&self, client: &str) -> usize {
        self.per_client.get(client).copied().unwrap_or(0)
    }
}

/// Why a flow was not kept.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// `oauth.max_pending` flows are waiting.
    Full,
    /// `oauth.max_pending_per_ip` flows from this client address are waiting.
    TooManyFromClient,
}

impl PendingFlows {
    pub fn new(ttl: Duration, max: usize, max_per_client: usize) -> PendingFlows {
        PendingFlows {
            inner: Mutex::new(Flows::default()),
            ttl,
            max,
            max_per_client,
        }
    }

    /// Keeps a new flow, unless `max` unexpired flows are waiting, or `max_per_client` from
    /// its client address.
    pub fn insert(&self, id: String, flow: Flow) -> Result<(), Refused> {
        let mut flows = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let full = |flows: &Flows| self.max > 0 && flows.by_id.len() >= self.max;
        let client_full = |flows: &Flows| {
            self.max_per_client > 0 && flows.of(&flow.client) >= self.max_per_client
        };
        if full(&flows) || client_full(&flows) {
            flows.sweep(self.ttl);
            if client_full(&flows) {
                return Err(Refused::TooManyFromClient);
            }
            if full(&flows) {
                return Err(Refused::Full);
            }
        }
        *flows.per_client.entry(flow.client.clone()).or_insert(0) += 1;
        if let Some(old) = flows.by_id.insert(id, flow) {
            // Ids are random; a clash would only ever replace a flow, never leak a count.
            if let Some(count) = flows.per_client.get_mut(&old.client) {
                *count -= 1;
            }
        }
        Ok(())
    }

    /// Takes the flow out (it can be used once); `None` if unknown or expired.
    pub fn take(&self, id: &str) -> Option<Flow> {
        let flow = self
            .inner
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
        from("192.0.2.1")
    }

    fn from(client: &str) -> Flow {
        Flow::new(
            "github".into(),
            "s".into(),
            "v".into(),
            "/".into(),
            None,
            client.into(),
        )
    }

    #[test]
    fn flows_are_single_use_bounded_and_expire() {
        let pending = PendingFlows::new(Duration::from_secs(60), 2, 0);
        assert!(pending.insert("a".into(), flow()).is_ok());
        assert!(pending.insert("b".into(), flow()).is_ok());
        assert_eq!(pending.insert("c".into(), flow()), Err(Refused::Full));
        assert!(pending.take("a").is_some());
        assert!(pending.take("a").is_none(), "used once");
        assert!(pending.insert("c".into(), flow()).is_ok());

        let expired = PendingFlows::new(Duration::ZERO, 1, 0);
        assert!(expired.insert("a".into(), flow()).is_ok());
        assert!(
            expired.insert("b".into(), flow()).is_ok(),
            "expired ones make room"
        );
        assert!(expired.take("b").is_none(), "expired");
    }

    #[test]
    fn one_address_cannot_take_every_slot() {
        let pending = PendingFlows::new(Duration::from_secs(60), 10, 2);
        assert!(pending.insert("a".into(), from("192.0.2.1")).is_ok());
        assert!(pending.insert("b".into(), from("192.0.2.1")).is_ok());
        assert_eq!(
            pending.insert("c".into(), from("192.0.2.1")),
            Err(Refused::TooManyFromClient)
        );
        assert!(
            pending.insert("d".into(), from("192.0.2.2")).is_ok(),
            "others go on"
        );
        assert!(pending.take("a").is_some());
        assert!(
            pending.insert("c".into(), from("192.0.2.1")).is_ok(),
            "a finished flow frees its slot"
        );

        let expired = PendingFlows::new(Duration::ZERO, 10, 1);
        assert!(expired.insert("a".into(), flow()).is_ok());
        assert!(
            expired.insert("b".into(), flow()).is_ok(),
            "expired ones free theirs"
        );
    }
}
