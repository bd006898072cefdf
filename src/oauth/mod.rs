//! Sign-in with GitHub, Google and any OAuth2/OIDC provider named in `[oauth]`.
//!
//! - [`provider`]: a configured provider: endpoints (or OIDC discovery), the authorization URL
//!   with PKCE S256 (and a nonce for OIDC), the code exchange, the ID token's verification,
//!   and the user info that says who signed in.
//! - [`pending`]: sign-ins between start and callback, keyed by the id in a short-lived cookie.
//! - [`link`]: identities a signed-in user has come back with, waiting for them to confirm the
//!   link on hearth's own page.
//! - `issuer`: the account an OIDC identity is linked to, by (issuer, `sub`).
//! - `log_text`: text from a provider, escaped and capped for the log.
//! - [`username`]: unique local usernames derived from provider logins.
//! - [`routes`]: the browser routes `/auth/{provider}/start`, `/auth/{provider}/callback` and
//!   `/auth/{provider}/link`.
//! - [`page`]: the HTML pages those routes show: the link confirmation, and failures.
//!
//! An identity maps to one local user (`store::identities`): (issuer, `sub`) for OIDC providers,
//! (provider name, provider's user id) for plain OAuth2 ones. A first sign-in creates the user;
//! a sign-in started by a signed-in user links the identity to them instead, once they confirm
//! it on hearth's page (the callback alone links nothing, see [`link`]). OIDC identities
//! linked before issuers were recorded are read as the provider's current issuer at their next
//! sign-in and moved under it; once a provider's issuer changes, identities linked under an
//! earlier one are refused ([`OAuthError::IssuerChanged`]), never signed in to. A successful
//! sign-in ends in [`crate::auth::AuthService::start_session`], the same session as a password
//! login.

mod issuer;
pub mod link;
mod log_text;
pub mod page;
pub mod pending;
pub mod provider;
pub mod routes;
pub mod username;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::auth::{token, AuthError};
use crate::clock::now_ms;
use crate::config::Config;
use crate::http::error::AppError;
use crate::ids::Username;
use crate::protocol::ErrorCode;
use crate::store::accounts::NewUser;
use crate::store::identities::{IdentityRecord, IdentityStoreError};
use crate::store::{Store, StoreError, UserRecord};
use link::{PendingLink, PendingLinks};
use pending::{Flow, PendingFlows, Refused};
use provider::{Provider, ProviderUser};
use tokio::sync::OnceCell;

pub use log_text::log_text;
pub use routes::router;

/// The cookie that binds a sign-in's `state` to the browser that started it.
pub const FLOW_COOKIE: &str = "hearth_oauth";

/// The cookie that names the link waiting for this browser's confirmation.
pub const LINK_COOKIE: &str = "hearth_link";

/// Why a browser sign-in failed. Each becomes a page a person can act on ([`page`]); the
/// details (`String`s) go to the log only.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("no sign-in provider named {0:?} is enabled")]
    UnknownProvider(String),
    #[error("the sign-in state is missing, expired, used already, or from another browser")]
    BadState,
    #[error("the provider sent no code")]
    MissingCode,
    #[error("the person declined at the provider")]
    Denied,
    #[error("the provider refused the sign-in request: {0}")]
    ProviderRefused(String),
    #[error("the provider refused the code: {0}")]
    CodeRefused(String),
    #[error("the provider cannot be reached: {0}")]
    Unreachable(String),
    #[error("the provider did not answer in time")]
    Timeout,
    #[error("the provider is misconfigured: {0}")]
    Misconfigured(String),
    #[error("the provider's answer is unusable: {0}")]
    BadAnswer(String),
    #[error("the ID token is refused: {0}")]
    IdTokenRefused(String),
    #[error(
        "provider {provider}: the identity is linked under the earlier issuer {earlier}, and \
         the provider's issuer is now {now}; it is not signed in to that account"
    )]
    IssuerChanged {
        provider: String,
        earlier: String,
        now: String,
    },
    #[error("registration is closed")]
    RegistrationClosed,
    #[error("the account is disabled")]
    AccountDisabled,
    #[error("the identity is linked to another account")]
    LinkedElsewhere,
    #[error("the account has another identity at this provider")]
    ProviderAlreadyLinked,
    #[error("the session that started linking has ended")]
    LinkSessionLost,
    #[error("the link to confirm is unknown, expired, answered already, or of another provider")]
    LinkExpired,
    #[error("the link was started by another account than the one signed in now")]
    LinkOtherAccount,
    #[error("the link confirmation came from a page of another site")]
    LinkForeignOrigin,
    #[error("the link confirmation's token is missing or wrong")]
    LinkTokenMismatch,
    #[error("the link confirmation answers neither link nor cancel")]
    LinkAnswerUnknown,
    #[error("too many sign-ins in progress")]
    Busy,
    #[error("too many sign-ins in progress from one address")]
    TooManyFromClient,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("{0}")]
    Internal(String),
}

/// Refusals of the identity endpoints under `/api` (an [`AppError`] with codes of their own).
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("no {0} identity is linked to this account")]
    NotLinked(String),
    #[error(
        "this is the last way to sign in to this account; set a password or link another \
         provider first"
    )]
    LastSignInMethod,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<IdentityError> for AppError {
    fn from(e: IdentityError) -> AppError {
        let message = e.to_string();
        match e {
            IdentityError::NotLinked(_) => AppError::Refused {
                code: ErrorCode::NotLinked,
                message,
            },
            IdentityError::LastSignInMethod => AppError::Refused {
                code: ErrorCode::LastSignInMethod,
                message,
            },
            IdentityError::Store(store) => AppError::Store(store),
        }
    }
}

/// The parameters a provider sends back to the callback.
#[derive(Debug, Default)]
pub struct Callback {
    pub state: Option<String>,
    pub code: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
    /// The issuer the answer claims to come from (RFC 9207), against mix-ups between providers.
    pub iss: Option<String>,
}

/// A finished sign-in.
pub enum Outcome {
    /// Start a session for this user.
    SignedIn(UserRecord),
    /// The identity waits for the signed-in user's confirmation under this id (the value of
    /// [`LINK_COOKIE`]); their session goes on.
    ConfirmLink(String),
    /// The identity is linked to the signed-in user already; nothing changed.
    AlreadyLinked,
}

/// What the link confirmation form sent.
#[derive(Debug, Default)]
pub struct LinkAnswer {
    pub token: Option<String>,
    /// `link` or `cancel`: the button pressed.
    pub action: Option<String>,
}

/// A link answered with a valid confirmation.
#[derive(Debug, PartialEq, Eq)]
pub enum LinkDecision {
    Linked,
    Cancelled,
}

/// What the confirmation page shows and sends back.
pub struct LinkPreview {
    pub provider: String,
    pub who: ProviderUser,
    /// The hearth account it would be linked to.
    pub username: String,
    pub token: String,
}

/// A started sign-in: send the browser to `url` with the flow cookie set to `flow_id`.
pub struct Started {
    pub url: String,
    pub flow_id: String,
}

/// The enabled providers and the sign-ins in progress.
pub struct OAuth {
    providers: Vec<Arc<Provider>>,
    http: reqwest::Client,
    pending: PendingFlows,
    links: PendingLinks,
    store: Store,
    allow_registration: bool,
    state_ttl: Duration,
    /// Per OIDC provider, the issuers other than its current one that identities were linked
    /// under; read from the store at the first sign-in that needs it.
    earlier_issuers: OnceCell<HashMap<String, Vec<String>>>,
}

impl OAuth {
    pub fn new(config: &Config, store: Store) -> reqwest::Result<OAuth> {
        let public_url = config.public_url();
        let oauth = &config.oauth;
        let mut providers = Vec::new();
        if oauth.github.enabled {
            providers.push(Provider::github(&oauth.github, &public_url));
        }
        if oauth.google.enabled {
            providers.push(Provider::google(&oauth.google, &public_url));
        }
        for (name, generic) in oauth.generic.iter().filter(|(_, g)| g.enabled) {
            providers.push(Provider::generic(name, generic, &public_url));
        }
        for provider in &providers {
            tracing::info!(
                provider = %provider.name,
                callback = %provider.redirect_url(),
                issuer = provider.issuer().unwrap_or("(none: plain OAuth2)"),
                "sign-in provider enabled"
            );
            if provider.allows_insecure_http() {
                tracing::warn!(
                    provider = %provider.name,
                    "allow_insecure_http is set: this provider may be reached over plain http, \
                     where anyone on the network path can answer as it and sign in as anyone"
                );
            }
        }
        let state_ttl = Duration::from_secs(oauth.state_ttl_secs);
        Ok(OAuth {
            providers: providers.into_iter().map(Arc::new).collect(),
            http: provider::http_client(Duration::from_millis(oauth.timeout_ms))?,
            pending: PendingFlows::new(state_ttl, oauth.max_pending, oauth.max_pending_per_ip),
            links: PendingLinks::new(state_ttl, oauth.max_pending),
            store,
            allow_registration: config.auth.allow_registration,
            state_ttl,
            earlier_issuers: OnceCell::new(),
        })
    }

    /// The enabled providers' names, presets first.
    pub fn names(&self) -> Vec<String> {
        self.providers.iter().map(|p| p.name.clone()).collect()
    }

    pub fn provider(&self, name: &str) -> Result<Arc<Provider>, OAuthError> {
        self.providers
            .iter()
            .find(|p| p.name == name)
            .cloned()
            .ok_or_else(|| OAuthError::UnknownProvider(name.to_string()))
    }

    pub fn state_ttl(&self) -> Duration {
        self.state_ttl
    }

    /// Begins a sign-in (or, with `link_user`, a link) that lands on `next` afterwards.
    pub async fn start(
        &self,
        provider: &Provider,
        link_user: Option<u64>,
        next: String,
        client: IpAddr,
    ) -> Result<Started, OAuthError> {
        let (state, flow_id) = (random()?, random()?);
        let nonce = match provider.issuer() {
            Some(_) => Some(random()?),
            None => None,
        };
        let (url, verifier) = provider
            .authorize_url(&self.http, state.clone(), nonce.as_deref())
            .await?;
        let client = crate::auth::throttle::ip_key(client);
        let mut flow = Flow::new(
            provider.name.clone(),
            state,
            verifier,
            next,
            link_user,
            client,
        );
        flow.nonce = nonce;
        match self.pending.insert(flow_id.clone(), flow) {
            Ok(()) => {}
            Err(Refused::Full) => return Err(OAuthError::Busy),
            Err(Refused::TooManyFromClient) => return Err(OAuthError::TooManyFromClient),
        }
        Ok(Started { url, flow_id })
    }

    /// Completes the sign-in whose flow id the browser's cookie holds. `signed_in` is the user
    /// of the session the browser presents now, if any. Answers the outcome and where to go.
    pub async fn finish(
        &self,
        provider: &Provider,
        flow_id: Option<&str>,
        callback: Callback,
        signed_in: Option<u64>,
    ) -> Result<(Outcome, String), OAuthError> {
        let flow = flow_id
            .and_then(|id| self.pending.take(id))
            .ok_or(OAuthError::BadState)?;
        let state_matches = callback
            .state
            .as_deref()
            .is_some_and(|state| same(state, &flow.state));
        if flow.provider != provider.name || !state_matches {
            return Err(OAuthError::BadState);
        }
        // Before the answer is believed, errors included (RFC 9207, section 2.4).
        provider
            .check_callback_issuer(&self.http, callback.iss.as_deref())
            .await?;
        if let Some(error) = callback.error {
            if error == "access_denied" {
                return Err(OAuthError::Denied);
            }
            // The provider's words, from the browser's URL: escaped and capped for the log.
            let description = callback.error_description.unwrap_or_default();
            return Err(OAuthError::ProviderRefused(format!(
                "provider {}: {}: {}",
                provider.name,
                log_text(&error),
                log_text(&description)
            )));
        }
        if flow.link_user.is_some() && flow.link_user != signed_in {
            return Err(OAuthError::LinkSessionLost);
        }
        let code = callback
            .code
            .filter(|c| !c.is_empty())
            .ok_or(OAuthError::MissingCode)?;
        let who = provider
            .sign_in(&self.http, code, flow.verifier, flow.nonce.as_deref())
            .await?;
        let outcome = match flow.link_user {
            Some(user_id) => {
                self.hold_link(provider, who, user_id, flow.next.clone())
                    .await?
            }
            None => Outcome::SignedIn(self.user_for(provider, who).await?),
        };
        Ok((outcome, flow.next))
    }

    /// Keeps the identity for the user to confirm, after refusing what linking it would.
    async fn hold_link(
        &self,
        provider: &Provider,
        who: ProviderUser,
        user_id: u64,
        next: String,
    ) -> Result<Outcome, OAuthError> {
        if self.linked_already(provider, &who, user_id).await? {
            return Ok(Outcome::AlreadyLinked);
        }
        let (link_id, token) = (random()?, random()?);
        let link = PendingLink::new(user_id, provider.name.clone(), who, next, token);
        self.links
            .insert(link_id.clone(), link)
            .map_err(|link::Full| OAuthError::Busy)?;
        Ok(Outcome::ConfirmLink(link_id))
    }

    /// The link waiting under `link_id` at `provider`, for its own user to see: what the
    /// confirmation page shows. It stays waiting.
    pub fn link_to_confirm(
        &self,
        provider: &Provider,
        link_id: Option<&str>,
        signed_in: Option<u64>,
    ) -> Result<LinkPreview, OAuthError> {
        let link = link_id
            .and_then(|id| self.links.get(id))
            .filter(|link| link.provider == provider.name)
            .ok_or(OAuthError::LinkExpired)?;
        check_link_user(&link, signed_in)?;
        let user = self
            .store
            .user_by_id(link.user_id)?
            .ok_or(OAuthError::LinkSessionLost)?;
        Ok(LinkPreview {
            provider: link.provider,
            who: link.who,
            username: user.username.to_string(),
            token: link.token,
        })
    }

    /// Takes the link waiting under `link_id` out, so that it is answered at most once,
    /// whatever the answer.
    pub fn take_link(&self, link_id: Option<&str>) -> Option<PendingLink> {
        link_id.and_then(|id| self.links.take(id))
    }

    /// Answers a taken link: links it or not as the confirmation says, if the confirmation is
    /// its own user's and carries its token. Answers the decision and where to go.
    pub async fn answer_link(
        &self,
        provider: &Provider,
        link: Option<PendingLink>,
        signed_in: Option<u64>,
        answer: LinkAnswer,
    ) -> Result<(LinkDecision, String), OAuthError> {
        let link = link
            .filter(|link| link.provider == provider.name)
            .ok_or(OAuthError::LinkExpired)?;
        check_link_user(&link, signed_in)?;
        let token_matches = answer
            .token
            .as_deref()
            .is_some_and(|token| same(token, &link.token));
        if !token_matches {
            return Err(OAuthError::LinkTokenMismatch);
        }
        match answer.action.as_deref() {
            Some("link") => {
                self.link(provider, link.who, link.user_id).await?;
                Ok((LinkDecision::Linked, link.next))
            }
            Some("cancel") => Ok((LinkDecision::Cancelled, link.next)),
            _ => Err(OAuthError::LinkAnswerUnknown),
        }
    }

    /// The user an identity maps to, created on its first sign-in.
    async fn user_for(
        &self,
        provider: &Provider,
        who: ProviderUser,
    ) -> Result<UserRecord, OAuthError> {
        if let Some(id) = self.linked_user(provider, &who).await? {
            return self.existing(id);
        }
        if !self.allow_registration {
            return Err(OAuthError::RegistrationClosed);
        }
        let base = username::base(&who.login, &provider.name);
        // What the provider calls the person is shown to others: no invisible or look-alike
        // characters (crate::names), and the username when nothing is left.
        let display_name: String = crate::names::clean(&who.display_name)
            .chars()
            .take(64)
            .collect();
        let display_name = display_name.trim().to_string();
        for n in 1..=username::COUNTED_CANDIDATES + 10 {
            let username = if n <= username::COUNTED_CANDIDATES {
                username::candidate(&base, n)
            } else {
                let suffix: String = random()?
                    .chars()
                    .filter(char::is_ascii_alphanumeric)
                    .take(6)
                    .collect();
                username::with_suffix(&base, &suffix.to_lowercase())
            };
            // The candidates are valid usernames by construction (see `username`'s tests).
            let username = Username::parse(&username)
                .ok_or_else(|| OAuthError::Internal(format!("{username:?} is not a username")))?;
            let new = NewUser {
                display_name: if display_name.is_empty() {
                    username.to_string()
                } else {
                    display_name.clone()
                },
                username,
                password_hash: None,
                bot: false,
                created_at: now_ms(),
            };
            let ticket = self.store.ticket();
            match self
                .store
                .create_user_with_identity(new, self.record(provider, &who))
            {
                Ok(user) => {
                    self.store.commit_since(ticket).await?;
                    let (provider, user_name) = (&provider.name, &user.username);
                    tracing::info!(%provider, user = %user_name, "new user from a provider");
                    return Ok(user);
                }
                Err(IdentityStoreError::UsernameTaken) => continue,
                // A concurrent first sign-in of the same identity won.
                Err(IdentityStoreError::LinkedTo(id)) => return self.existing(id),
                Err(IdentityStoreError::Store(e)) => return Err(e.into()),
                Err(other) => return Err(OAuthError::Internal(other.to_string())),
            }
        }
        Err(OAuthError::Internal(format!(
            "no free username derived from {:?}",
            who.login
        )))
    }

    /// Whether the identity is linked to `user_id` already; refuses one that cannot be linked
    /// to them: linked to someone else, or they have another identity at this provider. The
    /// callback asks before anyone is asked to confirm, and [`Self::link`] again (the store's
    /// transaction decides last).
    async fn linked_already(
        &self,
        provider: &Provider,
        who: &ProviderUser,
        user_id: u64,
    ) -> Result<bool, OAuthError> {
        // The store sees only the issuer's key; an identity linked under the provider's name
        // (before issuers were recorded) or an earlier issuer is found here.
        match self.linked_user(provider, who).await? {
            Some(owner) if owner == user_id => return Ok(true),
            Some(_) => return Err(OAuthError::LinkedElsewhere),
            None => {}
        }
        let identities = self.store.identities_of(user_id)?;
        if identities.iter().any(|i| i.provider == provider.name) {
            return Err(OAuthError::ProviderAlreadyLinked);
        }
        Ok(false)
    }

    async fn link(
        &self,
        provider: &Provider,
        who: ProviderUser,
        user_id: u64,
    ) -> Result<(), OAuthError> {
        if self.linked_already(provider, &who, user_id).await? {
            return Ok(());
        }
        let ticket = self.store.ticket();
        match self
            .store
            .link_identity(user_id, self.record(provider, &who))
        {
            Ok(()) => {
                self.store.commit_since(ticket).await?;
                Ok(())
            }
            Err(IdentityStoreError::LinkedTo(_)) => Err(OAuthError::LinkedElsewhere),
            Err(IdentityStoreError::ProviderTaken) => Err(OAuthError::ProviderAlreadyLinked),
            Err(IdentityStoreError::NoUser) => Err(OAuthError::LinkSessionLost),
            Err(IdentityStoreError::Store(e)) => Err(e.into()),
            Err(other) => Err(OAuthError::Internal(other.to_string())),
        }
    }

    fn record(&self, provider: &Provider, who: &ProviderUser) -> IdentityRecord {
        IdentityRecord {
            provider: provider.name.clone(),
            issuer: provider.issuer().map(str::to_string),
            subject: who.subject.clone(),
            login: who.login.clone(),
            email: who.email.clone(),
            linked_at: now_ms(),
        }
    }

    fn existing(&self, id: u64) -> Result<UserRecord, OAuthError> {
        match self.store.user_by_id(id)? {
            Some(user) if user.disabled => Err(OAuthError::AccountDisabled),
            Some(user) => Ok(user),
            None => Err(OAuthError::Internal(format!(
                "identity maps to missing user {id}"
            ))),
        }
    }

    /// The identities linked to a user.
    pub fn identities(&self, user_id: u64) -> Result<Vec<IdentityRecord>, IdentityError> {
        Ok(self.store.identities_of(user_id)?)
    }

    /// Unlinks the user's identity at `provider`, keeping at least one way to sign in: a
    /// password or an identity at another enabled provider.
    pub async fn unlink(&self, user_id: u64, provider: &str) -> Result<(), IdentityError> {
        let enabled = |name: &str| self.providers.iter().any(|p| p.name == name);
        let ticket = self.store.ticket();
        match self.store.unlink_identity(user_id, provider, &enabled) {
            Ok(_) => {
                self.store.commit_since(ticket).await?;
                Ok(())
            }
            Err(IdentityStoreError::NotLinked | IdentityStoreError::NoUser) => {
                Err(IdentityError::NotLinked(provider.to_string()))
            }
            Err(IdentityStoreError::LastMethod) => Err(IdentityError::LastSignInMethod),
            Err(IdentityStoreError::Store(e)) => Err(e.into()),
            Err(other) => Err(IdentityError::Store(StoreError::Io(std::io::Error::other(
                other.to_string(),
            )))),
        }
    }
}

/// A fresh random secret: a state, an id, a token.
fn random() -> Result<String, OAuthError> {
    token::generate().map_err(|e| OAuthError::Internal(e.to_string()))
}

/// Refuses a link to anyone but the user it was started by.
fn check_link_user(link: &PendingLink, signed_in: Option<u64>) -> Result<(), OAuthError> {
    match signed_in {
        None => Err(OAuthError::LinkSessionLost),
        Some(id) if id != link.user_id => Err(OAuthError::LinkOtherAccount),
        Some(_) => Ok(()),
    }
}

/// Compares secrets without an early exit on the first difference.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    #[test]
    fn same_compares_whole_strings() {
        assert!(super::same("abc", "abc"));
        assert!(!super::same("abc", "abd"));
        assert!(!super::same("abc", "ab"));
    }
}
