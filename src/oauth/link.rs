//! Links waiting for the person's answer.
//!
//! A link flow's callback proves who is signed in at the provider in this browser, not that the
//! person at hearth wants that account linked: a page on any site can send a signed-in browser
//! through `/auth/{provider}/start`, and the provider session it finds may be someone else's (a
//! shared computer, a login CSRF at the provider). So the callback links nothing. The identity
//! waits here, under a random id the browser holds in an HttpOnly cookie, with a random token
//! that only hearth's confirmation page carries; the answer to that page takes it out, whatever
//! the answer, so it is answered once.
//!
//! Bounded like the flows in [`super::pending`]: by age (`oauth.state_ttl_secs`) and number
//! (`oauth.max_pending`). Making one needs an account and a finished round trip through the
//! provider, and a user has at most one: a newer link of theirs replaces the older, so one
//! account cannot fill the map.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::provider::ProviderUser;

/// One identity that a signed-in user may link to their account once they say so.
#[derive(Debug, Clone)]
pub struct PendingLink {
    /// The account it would be linked to: the user signed in when the flow started.
    pub user_id: u64,
    pub provider: String,
    /// Who is signed in at the provider, as it said in the callback.
    pub who: ProviderUser,
    /// A same-site path to land on afterwards.
    pub next: String,
    /// The token the confirmation form must send back.
    pub token: String,
    created: Instant,
}

impl PendingLink {
    pub fn new(
        user_id: u64,
        provider: String,
        who: ProviderUser,
        next: String,
        token: String,
    ) -> PendingLink {
        PendingLink {
            user_id,
            provider,
            who,
            next,
            token,
            created: Instant::now(),
        }
    }
}

/// The map was full of unexpired links (`oauth.max_pending`).
#[derive(Debug, PartialEq, Eq)]
pub struct Full;

/// The links by id, bounded in number and age, at most one per user.
pub struct PendingLinks {
    inner: Mutex<Links>,
    ttl: Duration,
    /// 0 = no limit.
    max: usize,
}

#[derive(Default)]
struct Links {
    by_id: HashMap<String, PendingLink>,
    /// Each user's one link.
    by_user: HashMap<u64, String>,
}

impl Links {
    fn remove(&mut self, id: &str) -> Option<PendingLink> {
        let link = self.by_id.remove(id)?;
        if self.by_user.get(&link.user_id).is_some_and(|own| own == id) {
            self.by_user.remove(&link.user_id);
        }
        Some(link)
    }

    fn sweep(&mut self, ttl: Duration) {
        let expired: Vec<String> = self
            .by_id
            .iter()
            .filter(|(_, l)| l.created.elapsed() >= ttl)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            self.remove(&id);
        }
    }
}

impl PendingLinks {
    pub fn new(ttl: Duration, max: usize) -> PendingLinks {
        PendingLinks {
            inner: Mutex::new(Links::default()),
            ttl,
            max,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Links> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keeps a new link in place of its user's earlier one, unless `max` unexpired links of
    /// others are waiting.
    pub fn insert(&self, id: String, link: PendingLink) -> Result<(), Full> {
        let mut links = self.lock();
        if let Some(earlier) = links.by_user.get(&link.user_id).cloned() {
            links.remove(&earlier);
        }
        let full = |links: &Links| self.max > 0 && links.by_id.len() >= self.max;
        if full(&links) {
            links.sweep(self.ttl);
            if full(&links) {
                return Err(Full);
            }
        }
        // Ids are random; a clash would only ever replace a link, never leave a stale index.
        links.remove(&id);
        links.by_user.insert(link.user_id, id.clone());
        links.by_id.insert(id, link);
        Ok(())
    }

    /// A copy of the link, for showing it; `None` if unknown or expired. It stays.
    pub fn get(&self, id: &str) -> Option<PendingLink> {
        let link = self.lock().by_id.get(id).cloned()?;
        (link.created.elapsed() < self.ttl).then_some(link)
    }

    /// Takes the link out (it is answered once); `None` if unknown or expired.
    pub fn take(&self, id: &str) -> Option<PendingLink> {
        let link = self.lock().remove(id)?;
        (link.created.elapsed() < self.ttl).then_some(link)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(user_id: u64) -> PendingLink {
        let who = ProviderUser {
            subject: "s".into(),
            login: "l".into(),
            display_name: "d".into(),
            email: None,
        };
        PendingLink::new(user_id, "github".into(), who, "/".into(), "t".into())
    }

    #[test]
    fn links_are_single_use_bounded_and_expire() {
        let links = PendingLinks::new(Duration::from_secs(60), 2);
        assert!(links.insert("a".into(), link(1)).is_ok());
        assert!(links.insert("b".into(), link(2)).is_ok());
        assert_eq!(links.insert("c".into(), link(3)), Err(Full));
        assert!(links.get("a").is_some());
        assert!(links.get("a").is_some(), "showing it keeps it");
        assert!(links.take("a").is_some());
        assert!(links.take("a").is_none(), "answered once");
        assert!(links.get("a").is_none());
        assert!(links.insert("c".into(), link(3)).is_ok());

        let expired = PendingLinks::new(Duration::ZERO, 1);
        assert!(expired.insert("a".into(), link(1)).is_ok());
        assert!(
            expired.insert("b".into(), link(2)).is_ok(),
            "expired ones make room"
        );
        assert!(expired.get("b").is_none(), "expired");
        assert!(expired.take("b").is_none(), "expired");
    }

    #[test]
    fn a_users_newer_link_replaces_the_older() {
        let links = PendingLinks::new(Duration::from_secs(60), 2);
        assert!(links.insert("a".into(), link(1)).is_ok());
        assert!(links.insert("b".into(), link(1)).is_ok());
        assert!(links.take("a").is_none(), "replaced");
        assert!(links.insert("c".into(), link(2)).is_ok(), "one slot each");
        assert!(links.take("b").is_some());
        assert!(links.insert("d".into(), link(1)).is_ok());
        assert_eq!(links.insert("e".into(), link(3)), Err(Full));
    }
}
