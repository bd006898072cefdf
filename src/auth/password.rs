//! Password rules and argon2id hashing, off the async runtime and bounded in concurrency
//! (each hash takes 19 MiB, which matters on a Raspberry Pi under a login flood).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::{OnceCell, Semaphore};

use super::AuthError;

pub const MIN_PASSWORD_CHARS: usize = 8;
pub const MAX_PASSWORD_CHARS: usize = 1024;

/// OWASP's argon2id recommendation: 19 MiB of memory, 2 passes, 1 lane.
fn argon2() -> Argon2<'static> {
    // These constants are within argon2's bounds, so `Params::new` cannot refuse them.
    let params = Params::new(19_456, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Checks the length rule of PROTOCOL.md (Unicode scalar values, no composition rules).
pub fn check_password_rules(password: &str) -> Result<(), AuthError> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(AuthError::WeakPassword(format!(
            "passwords need at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(AuthError::WeakPassword(format!(
            "passwords may have at most {MAX_PASSWORD_CHARS} characters"
        )));
    }
    Ok(())
}

pub struct Hasher {
    permits: Arc<Semaphore>,
    /// Hashes running or waiting for a permit, and how many may at most (0 = no limit): past
    /// it a hash is refused at once (503), so that a flood cannot make everyone else's sign-in
    /// wait behind it.
    pending: Arc<AtomicUsize>,
    max_pending: usize,
    /// A hash of a random password, verified against when the user is unknown so that an
    /// unknown user costs the same time as a wrong password.
    decoy: OnceCell<String>,
}

impl Hasher {
    /// At most `max_concurrent` hashes at once (0: one per core), and `max_queued` more
    /// waiting (0: no limit).
    pub fn new(max_concurrent: usize, max_queued: usize) -> Hasher {
        let permits = if max_concurrent == 0 {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            max_concurrent
        };
        Hasher {
            permits: Arc::new(Semaphore::new(permits)),
            pending: Arc::default(),
            max_pending: if max_queued == 0 {
                usize::MAX
            } else {
                permits + max_queued
            },
            decoy: OnceCell::new(),
        }
    }

    /// A place among the pending hashes, or [`AuthError::Busy`] when they are all taken.
    fn enter(&self) -> Result<Pending, AuthError> {
        let before = self.pending.fetch_add(1, Ordering::SeqCst);
        let place = Pending(self.pending.clone());
        if before >= self.max_pending {
            metrics::counter!("hearth_hashes_refused_total").increment(1);
            return Err(AuthError::Busy {
                retry_after: BUSY_RETRY,
            });
        }
        Ok(place)
    }

    pub async fn hash(&self, password: String) -> Result<String, AuthError> {
        let _place = self.enter()?;
        let _permit = self.permits.acquire().await.map_err(internal)?;
        tokio::task::spawn_blocking(move || hash_now(&password))
            .await
            .map_err(internal)?
    }

    /// Verifies `password` against `stored`; with no stored hash it verifies against the decoy
    /// and answers false, taking the same time.
    pub async fn verify(
        &self,
        password: String,
        stored: Option<String>,
    ) -> Result<bool, AuthError> {
        let (phc, real) = match stored {
            Some(phc) => (phc, true),
            None => (self.decoy().await?, false),
        };
        let _place = self.enter()?;
        let _permit = self.permits.acquire().await.map_err(internal)?;
        let matches = tokio::task::spawn_blocking(move || verify_now(&password, &phc))
            .await
            .map_err(internal)??;
        Ok(real && matches)
    }

    async fn decoy(&self) -> Result<String, AuthError> {
        self.decoy
            .get_or_try_init(|| async {
                let mut random = [0u8; 16];
                getrandom::fill(&mut random).map_err(internal)?;
                self.hash(crate::auth::token::encode(&random)).await
            })
            .await
            .cloned()
    }
}

/// What a refused hash tells the client to wait: the queue moves in a fraction of a second.
const BUSY_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// One pending hash; dropping it leaves the queue.
struct Pending(Arc<AtomicUsize>);

impl Drop for Pending {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

pub fn hash_now(password: &str) -> Result<String, AuthError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(internal)?;
    let salt = SaltString::encode_b64(&salt).map_err(internal)?;
    Ok(argon2()
        .hash_password(password.as_bytes(), &salt)
        .map_err(internal)?
        .to_string())
}

fn verify_now(password: &str, phc: &str) -> Result<bool, AuthError> {
    let parsed = PasswordHash::new(phc).map_err(internal)?;
    Ok(argon2()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok())
}

fn internal(e: impl std::fmt::Display) -> AuthError {
    AuthError::Internal(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_rules_count_characters() {
        assert!(check_password_rules("short").is_err());
        assert!(check_password_rules("ééééééé").is_err());
        assert!(check_password_rules("éééééééé").is_ok());
        assert!(check_password_rules(&"x".repeat(1024)).is_ok());
        assert!(check_password_rules(&"x".repeat(1025)).is_err());
    }

    #[test]
    fn hashes_are_argon2id_with_owasp_parameters() {
        let phc = hash_now("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify_now("correct horse", &phc).unwrap());
        assert!(!verify_now("wrong horse", &phc).unwrap());
    }
}
