//! Accounts and sessions: username rules, password sign-in with throttling, session tokens.
//!
//! - [`password`]: argon2id hashing off the runtime, with a concurrency bound and a decoy hash.
//! - [`token`]: random session tokens and the hash the store keeps.
//! - [`throttle`]: failed-login windows per username and per client address.
//! - [`origin`]: which browser origins may use a cookie session.
//!
//! The HTTP side (extractors, the session cookie) is `http::extract`'s.

pub mod origin;
pub mod password;
pub mod throttle;
pub mod token;

use std::net::IpAddr;
use std::time::Duration;

use serde::Serialize;

use crate::clock::now_ms;
use crate::config::AuthConfig;
use crate::ids::Username;
use crate::protocol::ErrorCode;
use crate::store::accounts::{CreateUserError, NewUser};
use crate::store::{SessionRecord, Store, StoreError, UserRecord};
use password::Hasher;
use throttle::{InFlight, Throttle};
use token::TokenHash;

/// How stale a session's `last_seen_at` may get before a use writes it again: a session in
/// steady use costs one small write per this interval, not one per request.
pub const TOUCH_EVERY: Duration = Duration::from_secs(5 * 60);

pub const USERNAME_MIN: usize = Username::MIN;
pub const USERNAME_MAX: usize = Username::MAX;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("usernames are 3 to 32 characters of a-z, 0-9, '_', '.' and '-'")]
    InvalidUsername,
    #[error("{0}")]
    WeakPassword(String),
    #[error("that username is taken")]
    UsernameTaken,
    #[error("registration is closed on this server")]
    RegistrationClosed,
    #[error("wrong username or password")]
    InvalidCredentials,
    #[error("the current password is wrong")]
    WrongPassword,
    #[error(
        "this account signs in through a provider and has no password to change; an \
         administrator can give it one with `hearth user passwd`"
    )]
    NoPassword,
    #[error("this account is disabled")]
    AccountDisabled,
    #[error("too many failed sign-ins; try again later")]
    RateLimited { retry_after: Duration },
    #[error("too many sign-ins at once from your address; try again in a moment")]
    TooManyAtOnce { retry_after: Duration },
    #[error("the server is busy checking passwords; try again in a moment")]
    Busy { retry_after: Duration },
    #[error("too many accounts registered from your address; try again later")]
    TooManyRegistrations { retry_after: Duration },
    #[error("sign in first")]
    Unauthenticated,
    #[error("no user named {0}")]
    UnknownUser(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(String),
}

impl AuthError {
    /// The wire code (HTTP answers carry it; the status follows from it).
    pub fn code(&self) -> ErrorCode {
        match self {
            AuthError::InvalidUsername => ErrorCode::InvalidUsername,
            AuthError::WeakPassword(_) => ErrorCode::WeakPassword,
            AuthError::UsernameTaken => ErrorCode::UsernameTaken,
            AuthError::RegistrationClosed => ErrorCode::RegistrationClosed,
            AuthError::InvalidCredentials => ErrorCode::InvalidCredentials,
            AuthError::WrongPassword => ErrorCode::WrongPassword,
            AuthError::NoPassword => ErrorCode::NoPassword,
            AuthError::AccountDisabled => ErrorCode::AccountDisabled,
            AuthError::RateLimited { .. }
            | AuthError::TooManyAtOnce { .. }
            | AuthError::TooManyRegistrations { .. } => ErrorCode::RateLimited,
            AuthError::Busy { .. } => ErrorCode::Busy,
            AuthError::Unauthenticated => ErrorCode::Unauthenticated,
            // Only `hearth user ...` names a user by name; nothing on the wire does.
            AuthError::UnknownUser(_) => ErrorCode::NotFound,
            AuthError::Store(_) | AuthError::Internal(_) => ErrorCode::Internal,
        }
    }

    /// How long to wait before trying again, for the refusals that say.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            AuthError::RateLimited { retry_after }
            | AuthError::TooManyAtOnce { retry_after }
            | AuthError::Busy { retry_after }
            | AuthError::TooManyRegistrations { retry_after } => Some(*retry_after),
            _ => None,
        }
    }
}

impl From<CreateUserError> for AuthError {
    fn from(e: CreateUserError) -> Self {
        match e {
            CreateUserError::Taken => AuthError::UsernameTaken,
            CreateUserError::Store(e) => AuthError::Store(e),
        }
    }
}

/// The public face of a user, as every API answer and frame shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PublicUser {
    pub id: u64,
    pub username: Username,
    pub display_name: String,
    pub bot: bool,
}

impl From<&UserRecord> for PublicUser {
    fn from(u: &UserRecord) -> Self {
        PublicUser {
            id: u.id,
            username: u.username.clone(),
            display_name: u.display_name.clone(),
            bot: u.bot,
        }
    }
}

/// A signed-in user and the session that proves it.
#[derive(Clone)]
pub struct Authenticated {
    pub user: UserRecord,
    pub token_hash: TokenHash,
}

/// Names the user only: neither the session's hash nor the password hash ever reaches a log
/// through a `{:?}`.
impl std::fmt::Debug for Authenticated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticated")
            .field("user_id", &self.user.id)
            .field("username", &self.user.username)
            .finish_non_exhaustive()
    }
}

/// A freshly started session: the token goes to the client once and is never stored.
pub struct NewSession {
    pub user: UserRecord,
    pub token: String,
    pub expires_at: u64,
}

/// A username as a person typed it, checked and in canonical form ([`Username::parse`]).
pub fn normalize_username(input: &str) -> Result<Username, AuthError> {
    Username::parse(input).ok_or(AuthError::InvalidUsername)
}

pub struct AuthService {
    store: Store,
    config: AuthConfig,
    hasher: Hasher,
    /// Failed sign-ins per username and client address: 429 past the limit, for that address.
    by_user_and_ip: Throttle,
    /// Failed sign-ins per client address, whatever the username: 429 past the limit.
    by_ip: Throttle,
    /// Failed sign-ins per username from every address: past `login_slowdown_after` each try
    /// waits longer, but nobody is locked out of their account by someone else's guesses.
    by_username: Throttle,
    /// Wrong current passwords per user (password change): 429 past the limit.
    password_changes: Throttle,
    /// Password checks under way per client address (or per user, for a password change).
    hashing: InFlight,
    registrations: Throttle,
}

impl AuthService {
    pub fn new(store: Store, config: AuthConfig) -> AuthService {
        let window = Duration::from_secs(config.login_window_secs);
        AuthService {
            hasher: Hasher::new(config.max_concurrent_hashes, config.max_queued_hashes),
            by_user_and_ip: Throttle::new(config.login_max_failures_per_user, window),
            by_ip: Throttle::new(config.login_max_failures_per_ip, window),
            // Counted whenever slowing down is on; it never refuses by itself.
            by_username: Throttle::new(u32::MAX, window),
            password_changes: Throttle::new(config.login_max_failures_per_user, window),
            hashing: InFlight::new(config.max_hashes_per_ip),
            registrations: Throttle::new(
                config.registrations_per_ip_per_hour,
                Duration::from_secs(3600),
            ),
            store,
            config,
        }
    }

    /// Absolute session lifetime.
    pub fn session_ttl(&self) -> Duration {
        Duration::from_secs(self.config.session_ttl_days * 24 * 3600)
    }

    /// How long a session may go unused; `None` when sessions do not idle out.
    pub fn session_idle(&self) -> Option<Duration> {
        match self.config.session_idle_days {
            0 => None,
            days => Some(Duration::from_secs(days * 24 * 3600)),
        }
    }

    /// Creates a password account and signs it in. Every try counts against the client's
    /// address (`auth.registrations_per_ip_per_hour`).
    pub async fn register(
        &self,
        username: &str,
        password: String,
        client: IpAddr,
    ) -> Result<NewSession, AuthError> {
        if !self.config.allow_registration {
            return Err(AuthError::RegistrationClosed);
        }
        self.registrations
            .try_take(&throttle::ip_key(client))
            .map_err(|retry_after| AuthError::TooManyRegistrations { retry_after })?;
        let user = self.create_password_user(username, password).await?;
        self.start_session(user).await
    }

    /// Creates a password account without signing in (also used by `hearth user add`).
    pub async fn create_password_user(
        &self,
        username: &str,
        password: String,
    ) -> Result<UserRecord, AuthError> {
        let name = normalize_username(username)?;
        password::check_password_rules(&password)?;
        // A cheap early answer; the transaction in the store is what guarantees uniqueness.
        if self.store.user_by_name(&name)?.is_some() {
            return Err(AuthError::UsernameTaken);
        }
        let hash = self.hasher.hash(password).await?;
        let ticket = self.store.ticket();
        let user = self.store.create_user(NewUser {
            username: name,
            display_name: username.trim().to_string(),
            password_hash: Some(hash),
            bot: false,
            created_at: now_ms(),
        })?;
        self.store.commit_since(ticket).await?;
        Ok(user)
    }

    /// Checks a username and password. Every try takes its place in the throttles before any
    /// hashing (so that concurrent tries cannot all pass a check before any of them counts):
    /// per username and address and per address (429 past them), with at most
    /// `auth.max_hashes_per_ip` checks under way per address; a username failing from
    /// everywhere only slows down (see [`AuthService::slowdown`]).
    pub async fn login(
        &self,
        username: &str,
        password: String,
        client: IpAddr,
    ) -> Result<NewSession, AuthError> {
        let name_key = username.trim().to_lowercase();
        let ip_key = throttle::ip_key(client);
        let pair_key = format!("{name_key}\n{ip_key}");
        let throttled = |retry_after| {
            metrics::counter!("hearth_logins_total", "outcome" => "throttled").increment(1);
            AuthError::RateLimited { retry_after }
        };
        let Some(_hashing) = self.hashing.try_start(&ip_key) else {
            metrics::counter!("hearth_logins_total", "outcome" => "throttled").increment(1);
            return Err(AuthError::TooManyAtOnce {
                retry_after: Duration::from_secs(1),
            });
        };
        self.by_ip.try_take(&ip_key).map_err(throttled)?;
        if let Err(retry_after) = self.by_user_and_ip.try_take(&pair_key) {
            self.by_ip.give_back(&ip_key);
            return Err(throttled(retry_after));
        }
        // Taken back unless the try turns out to be a failed one.
        let give_back = || {
            self.by_ip.give_back(&ip_key);
            self.by_user_and_ip.give_back(&pair_key);
        };
        let delay = self.slowdown(&name_key);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let user = match normalize_username(username) {
            Ok(name) => self.store.user_by_name(&name),
            Err(_) => Ok(None),
        };
        let user = user.inspect_err(|_| give_back())?;
        let stored = user.as_ref().and_then(|u| u.password_hash.clone());
        let verified = match self.hasher.verify(password, stored).await {
            Ok(verified) => verified,
            Err(error) => {
                // Refused before a check (busy) or the check broke: not a guess.
                give_back();
                return Err(error);
            }
        };
        if !verified {
            if self.config.login_slowdown_after > 0 {
                self.by_username.record(&name_key);
            }
            metrics::counter!("hearth_logins_total", "outcome" => "failed").increment(1);
            return Err(AuthError::InvalidCredentials);
        }
        give_back();
        let Some(user) = user else {
            return Err(AuthError::InvalidCredentials);
        };
        if user.disabled {
            return Err(AuthError::AccountDisabled);
        }
        self.by_user_and_ip.clear(&pair_key);
        self.by_username.clear(&name_key);
        metrics::counter!("hearth_logins_total", "outcome" => "ok").increment(1);
        self.start_session(user).await
    }

    /// How long a sign-in for `name_key` waits before its password is checked: nothing until
    /// `auth.login_slowdown_after` failures for it within the window (from any address), then
    /// half a second, doubling with every further failure, up to `auth.login_max_delay_secs`.
    fn slowdown(&self, name_key: &str) -> Duration {
        let after = self.config.login_slowdown_after;
        if after == 0 {
            return Duration::ZERO;
        }
        let failures = self.by_username.count(name_key);
        if failures < after {
            return Duration::ZERO;
        }
        let doublings = (failures - after).min(16);
        let delay = Duration::from_millis(500) * (1u32 << doublings);
        delay.min(Duration::from_secs(self.config.login_max_delay_secs))
    }

    /// Issues a token for a user whose identity is already proven.
    pub async fn start_session(&self, user: UserRecord) -> Result<NewSession, AuthError> {
        let token = token::generate().map_err(|e| AuthError::Internal(e.to_string()))?;
        let now = now_ms();
        let expires_at = now + self.session_ttl().as_millis() as u64;
        let session = SessionRecord {
            user_id: user.id,
            created_at: now,
            expires_at,
            last_seen_at: now,
        };
        let ticket = self.store.ticket();
        self.store.insert_session(&token::hash(&token), &session)?;
        self.store.commit_since(ticket).await?;
        Ok(NewSession {
            user,
            token,
            expires_at,
        })
    }

    /// Resolves a presented token to its user. A session past its absolute end, or unused
    /// for longer than the idle limit, is deleted and fails, as does a disabled user's.
    pub fn authenticate(&self, token: &str) -> Result<Authenticated, AuthError> {
        self.authenticate_hash(token::hash(token))
    }

    /// [`AuthService::authenticate`] for a session known by its hash (a socket rechecking
    /// the session it was opened with). A use marks the session as seen, at most once per
    /// [`TOUCH_EVERY`].
    pub fn authenticate_hash(&self, token_hash: TokenHash) -> Result<Authenticated, AuthError> {
        let Some(session) = self.store.session(&token_hash)? else {
            return Err(AuthError::Unauthenticated);
        };
        let now = now_ms();
        let idle_out = self
            .session_idle()
            .is_some_and(|idle| session.last_seen() + idle.as_millis() as u64 <= now);
        if session.expires_at <= now || idle_out {
            self.store.delete_session(&token_hash)?;
            return Err(AuthError::Unauthenticated);
        }
        let user = match self.store.user_by_id(session.user_id)? {
            Some(user) if !user.disabled => user,
            _ => return Err(AuthError::Unauthenticated),
        };
        if session.last_seen() + TOUCH_EVERY.as_millis() as u64 <= now {
            let seen = SessionRecord {
                last_seen_at: now,
                ..session.clone()
            };
            // Not committed: losing a touch to a crash costs at most one interval of idleness.
            // A session revoked since it was read is not brought back.
            if !self.store.touch_session(&token_hash, &session, &seen)? {
                return Err(AuthError::Unauthenticated);
            }
        }
        Ok(Authenticated { user, token_hash })
    }

    /// Signs out this session only: the user's other sessions (another device, another
    /// browser) go on. The caller closes the sockets opened with it.
    pub async fn logout(&self, session: &Authenticated) -> Result<(), AuthError> {
        let ticket = self.store.ticket();
        self.store.delete_session(&session.token_hash)?;
        self.store.commit_since(ticket).await?;
        Ok(())
    }

    /// Signs the user out everywhere: every session of theirs ends (the caller closes their
    /// sockets).
    pub async fn logout_all(&self, session: &Authenticated) -> Result<usize, AuthError> {
        let ticket = self.store.ticket();
        let ended = self.store.delete_user_sessions(session.user.id)?;
        self.store.commit_since(ticket).await?;
        Ok(ended)
    }

    /// Changes the signed-in user's password after checking the current one, and ends every
    /// other session of theirs (the caller closes their sockets); this one goes on. Wrong
    /// guesses count against the username like failed logins.
    pub async fn change_password(
        &self,
        session: &Authenticated,
        current: String,
        new: String,
    ) -> Result<usize, AuthError> {
        // Keyed by the user: whoever holds the session is the one guessing.
        let key = format!("user {}", session.user.id);
        let Some(_hashing) = self.hashing.try_start(&key) else {
            return Err(AuthError::TooManyAtOnce {
                retry_after: Duration::from_secs(1),
            });
        };
        // Taken before the check, as at sign-in, and given back unless the guess was wrong.
        self.password_changes
            .try_take(&key)
            .map_err(|retry_after| AuthError::RateLimited { retry_after })?;
        let checked = self.check_current_password(session, current).await;
        if !matches!(checked, Err(AuthError::WrongPassword)) {
            self.password_changes.give_back(&key);
        }
        let mut user = checked?;
        password::check_password_rules(&new)?;
        user.password_hash = Some(self.hasher.hash(new).await?);
        let ticket = self.store.ticket();
        self.store.update_user(&user)?;
        let ended = self
            .store
            .delete_user_sessions_except(user.id, Some(&session.token_hash))?;
        self.store.commit_since(ticket).await?;
        Ok(ended)
    }

    /// The user's record as it is now, if `current` is their password.
    async fn check_current_password(
        &self,
        session: &Authenticated,
        current: String,
    ) -> Result<UserRecord, AuthError> {
        // The record as it is now, not as it was when the request was authenticated.
        let user = self
            .store
            .user_by_id(session.user.id)?
            .ok_or(AuthError::Unauthenticated)?;
        let Some(stored) = user.password_hash.clone() else {
            return Err(AuthError::NoPassword);
        };
        if !self.hasher.verify(current, Some(stored)).await? {
            return Err(AuthError::WrongPassword);
        }
        Ok(user)
    }

    /// Sets a new password and revokes every session of the user.
    pub async fn set_password(
        &self,
        username: &str,
        password: String,
    ) -> Result<UserRecord, AuthError> {
        password::check_password_rules(&password)?;
        let mut user = self.existing(username)?;
        user.password_hash = Some(self.hasher.hash(password).await?);
        let ticket = self.store.ticket();
        self.store.update_user(&user)?;
        self.store.delete_user_sessions(user.id)?;
        self.store.commit_since(ticket).await?;
        Ok(user)
    }

    /// Disables (or re-enables) an account; disabling revokes its sessions.
    pub async fn set_disabled(
        &self,
        username: &str,
        disabled: bool,
    ) -> Result<UserRecord, AuthError> {
        let mut user = self.existing(username)?;
        user.disabled = disabled;
        let ticket = self.store.ticket();
        self.store.update_user(&user)?;
        if disabled {
            self.store.delete_user_sessions(user.id)?;
        }
        self.store.commit_since(ticket).await?;
        Ok(user)
    }

    fn existing(&self, username: &str) -> Result<UserRecord, AuthError> {
        let unknown = || AuthError::UnknownUser(username.to_string());
        let name = Username::parse(username).ok_or_else(unknown)?;
        self.store.user_by_name(&name)?.ok_or_else(unknown)
    }
}
