//! One configured provider at run time: its endpoints (fixed, or discovered from an OIDC
//! issuer and cached), the authorization URL with PKCE (and a nonce for OIDC), the code
//! exchange, and the user info that tells who signed in.
//!
//! For an OIDC provider (one with an issuer: Google, and generic providers with `issuer`) the
//! token endpoint's ID token is required and verified with the `openidconnect` crate: its
//! signature against the provider's JWKS (fetched for every sign-in, so rotated keys are
//! picked up), `iss`, `aud`, `exp` and the `nonce` sent with the authorization request. User
//! info is still read for the login, name and email, and must be about the same `sub`.

use std::time::Duration;

use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenResponse,
};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet,
    EndpointSet, HttpClientError, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
    RequestTokenError, Scope, StandardRevocableToken, TokenResponse, TokenUrl,
};
use openidconnect::core::{
    CoreIdTokenVerifier, CoreJsonWebKeySet, CoreJwsSigningAlgorithm, CoreTokenResponse,
};
use openidconnect::{IssuerUrl, JwsSigningAlgorithm as _, Nonce, TokenResponse as _};
use reqwest::header::{ACCEPT, AUTHORIZATION};
use serde_json::Value;
use tokio::sync::OnceCell;

use super::{log_text, OAuthError};
use crate::config::{
    check_provider_url, normalize_issuer, GenericProviderConfig, GithubConfig, GoogleConfig,
    Secret, DISCOVERY_PATH,
};

/// The largest answer read from a provider (user info, discovery).
const MAX_ANSWER_BYTES: usize = 256 * 1024;

/// Who signed in, as the provider says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderUser {
    /// The provider's stable id of the user.
    pub subject: String,
    /// What the local username is derived from.
    pub login: String,
    pub display_name: String,
    /// Only a verified address.
    pub email: Option<String>,
}

/// How the provider tells who signed in.
enum Kind {
    /// GitHub's REST API: `/user` and `/user/emails` below `api_url`.
    GitHub { api_url: String },
    /// An OIDC-style user-info endpoint (Google and generic providers).
    UserInfo {
        id_claim: String,
        login_claim: String,
    },
}

/// Endpoints as configured; empty strings are filled in by discovery.
#[derive(Clone, Default)]
struct Endpoints {
    auth: String,
    token: String,
    userinfo: String,
    /// From discovery only: where the keys that sign ID tokens are.
    jwks: String,
    /// The issuer exactly as the discovery document spells it, which is what `iss` must be.
    issuer: String,
    /// The asymmetric algorithms the provider signs ID tokens with (RS256 when it says none).
    algs: Vec<CoreJwsSigningAlgorithm>,
    /// Whether the provider says its callbacks carry `iss` (RFC 9207).
    iss_parameter: bool,
}

/// An OAuth2 client whose token answer is `TR`: [`BasicTokenResponse`] for plain OAuth2,
/// [`CoreTokenResponse`] (with the ID token) for OIDC.
type Client<TR> = oauth2::Client<
    BasicErrorResponse,
    TR,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// The exchange's failure, as oauth2 reports it.
type ExchangeError = RequestTokenError<HttpClientError<reqwest::Error>, BasicErrorResponse>;

pub struct Provider {
    pub name: String,
    kind: Kind,
    client_id: String,
    client_secret: Secret,
    auth_type: AuthType,
    scopes: Vec<String>,
    redirect_url: String,
    configured: Endpoints,
    /// OIDC issuer whose discovery document supplies missing endpoints and the JWKS; with
    /// one, ID tokens are required and verified.
    issuer: Option<String>,
    allow_insecure_http: bool,
    discovered: OnceCell<Endpoints>,
}

impl Provider {
    pub fn github(config: &GithubConfig, public_url: &str) -> Provider {
        let api_url = config.api_url.trim_end_matches('/').to_string();
        Provider {
            name: "github".into(),
            client_id: config.client_id.clone(),
            client_secret: config.client_secret.clone(),
            // GitHub documents the client credentials as form parameters.
            auth_type: AuthType::RequestBody,
            scopes: config.scopes.clone(),
            redirect_url: redirect_url(public_url, "github"),
            configured: Endpoints {
                auth: config.auth_url.clone(),
                token: config.token_url.clone(),
                userinfo: format!("{api_url}/user"),
                ..Endpoints::default()
            },
            kind: Kind::GitHub { api_url },
            issuer: None,
            allow_insecure_http: config.allow_insecure_http,
            discovered: OnceCell::new(),
        }
    }

    pub fn google(config: &GoogleConfig, public_url: &str) -> Provider {
        Provider {
            name: "google".into(),
            kind: Kind::UserInfo {
                id_claim: "sub".into(),
                login_claim: "email".into(),
            },
            client_id: config.client_id.clone(),
            client_secret: config.client_secret.clone(),
            auth_type: AuthType::RequestBody,
            scopes: config.scopes.clone(),
            redirect_url: redirect_url(public_url, "google"),
            configured: Endpoints {
                auth: config.auth_url.clone(),
                token: config.token_url.clone(),
                userinfo: config.userinfo_url.clone(),
                ..Endpoints::default()
            },
            issuer: Some(normalize_issuer(&config.issuer)).filter(|i| !i.is_empty()),
            allow_insecure_http: config.allow_insecure_http,
            discovered: OnceCell::new(),
        }
    }

    pub fn generic(name: &str, config: &GenericProviderConfig, public_url: &str) -> Provider {
        Provider {
            name: name.to_string(),
            kind: Kind::UserInfo {
                id_claim: config.id_claim.clone(),
                login_claim: config.login_claim.clone(),
            },
            client_id: config.client_id.clone(),
            client_secret: config.client_secret.clone(),
            // client_secret_basic is what RFC 6749 and OIDC servers must support.
            auth_type: AuthType::BasicAuth,
            scopes: config.scopes.clone(),
            redirect_url: redirect_url(public_url, name),
            configured: Endpoints {
                auth: config.auth_url.clone(),
                token: config.token_url.clone(),
                userinfo: config.userinfo_url.clone(),
                ..Endpoints::default()
            },
            issuer: Some(normalize_issuer(&config.issuer)).filter(|i| !i.is_empty()),
            allow_insecure_http: config.allow_insecure_http,
            discovered: OnceCell::new(),
        }
    }

    /// The callback URL registered at the provider.
    pub fn redirect_url(&self) -> &str {
        &self.redirect_url
    }

    /// The OIDC issuer, for providers whose ID tokens are verified.
    pub fn issuer(&self) -> Option<&str> {
        self.issuer.as_deref()
    }

    /// Whether the operator let this provider use plain http away from loopback.
    pub fn allows_insecure_http(&self) -> bool {
        self.allow_insecure_http
    }

    /// The endpoints, discovering them first if the provider names an issuer. A discovery
    /// that fails is tried again on the next sign-in.
    async fn endpoints(&self, http: &reqwest::Client) -> Result<Endpoints, OAuthError> {
        let Some(issuer) = &self.issuer else {
            return Ok(self.configured.clone());
        };
        let found = self
            .discovered
            .get_or_try_init(|| discover(http, issuer, self.allow_insecure_http))
            .await?;
        let pick = |configured: &String, found: &String| {
            if configured.is_empty() {
                found.clone()
            } else {
                configured.clone()
            }
        };
        Ok(Endpoints {
            auth: pick(&self.configured.auth, &found.auth),
            token: pick(&self.configured.token, &found.token),
            userinfo: pick(&self.configured.userinfo, &found.userinfo),
            ..found.clone()
        })
    }

    fn client<TR: TokenResponse>(&self, endpoints: &Endpoints) -> Result<Client<TR>, OAuthError> {
        let bad = |what: &str, e: oauth2::url::ParseError| {
            OAuthError::Misconfigured(format!("{what} of provider {}: {e}", self.name))
        };
        let mut client = oauth2::Client::new(ClientId::new(self.client_id.clone()))
            .set_auth_uri(AuthUrl::new(endpoints.auth.clone()).map_err(|e| bad("auth URL", e))?)
            .set_token_uri(TokenUrl::new(endpoints.token.clone()).map_err(|e| bad("token URL", e))?)
            .set_redirect_uri(
                RedirectUrl::new(self.redirect_url.clone()).map_err(|e| bad("redirect URL", e))?,
            )
            .set_auth_type(self.auth_type.clone());
        if !self.client_secret.is_empty() {
            client = client
                .set_client_secret(ClientSecret::new(self.client_secret.expose().to_string()));
        }
        Ok(client)
    }

    /// The URL to send the browser to, carrying `state`, the S256 challenge of a fresh PKCE
    /// verifier and, for OIDC, `nonce`; answers the URL and the verifier.
    pub async fn authorize_url(
        &self,
        http: &reqwest::Client,
        state: String,
        nonce: Option<&str>,
    ) -> Result<(String, String), OAuthError> {
        let client = self.client::<BasicTokenResponse>(&self.endpoints(http).await?)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(|| CsrfToken::new(state))
            .add_scopes(self.scopes.iter().cloned().map(Scope::new))
            .set_pkce_challenge(challenge);
        if let Some(nonce) = nonce {
            request = request.add_extra_param("nonce", nonce);
        }
        let (url, _) = request.url();
        Ok((url.to_string(), verifier.into_secret()))
    }

    /// Trades the code (with the PKCE verifier) for who signed in. `nonce` is the one sent
    /// with the authorization request; an OIDC provider's ID token must carry it.
    pub async fn sign_in(
        &self,
        http: &reqwest::Client,
        code: String,
        verifier: String,
        nonce: Option<&str>,
    ) -> Result<ProviderUser, OAuthError> {
        let endpoints = self.endpoints(http).await?;
        let code = AuthorizationCode::new(code);
        let verifier = PkceCodeVerifier::new(verifier);
        let (token, id_subject) = if self.issuer.is_some() {
            let nonce = nonce.ok_or_else(|| {
                OAuthError::Internal("an OIDC sign-in was started without a nonce".into())
            })?;
            let answer: CoreTokenResponse = self.exchange(http, &endpoints, code, verifier).await?;
            let subject = self
                .verify_id_token(http, &endpoints, &answer, nonce)
                .await?;
            (answer.access_token().secret().clone(), Some(subject))
        } else {
            let answer: BasicTokenResponse =
                self.exchange(http, &endpoints, code, verifier).await?;
            (answer.access_token().secret().clone(), None)
        };
        match &self.kind {
            Kind::GitHub { api_url } => github_user(http, api_url, &token).await,
            Kind::UserInfo {
                id_claim,
                login_claim,
            } => {
                let info = get_json(http, &endpoints.userinfo, Some(&token)).await?;
                // OIDC Core 5.3.2: user info about another `sub` than the ID token's must not
                // be used (it could be another person's, substituted).
                if let (Some(subject), Some(claimed)) = (&id_subject, info.get("sub")) {
                    if text(claimed).as_deref() != Some(subject.as_str()) {
                        return Err(OAuthError::IdTokenRefused(format!(
                            "provider {}: the user info is about another `sub` than the ID token",
                            self.name
                        )));
                    }
                }
                userinfo_user(&info, id_claim, login_claim)
            }
        }
    }

    /// Trades the code for the token answer, shaped `TR`: with the ID token for OIDC, plain
    /// for OAuth2.
    async fn exchange<TR: TokenResponse>(
        &self,
        http: &reqwest::Client,
        endpoints: &Endpoints,
        code: AuthorizationCode,
        verifier: PkceCodeVerifier,
    ) -> Result<TR, OAuthError> {
        self.client::<TR>(endpoints)?
            .exchange_code(code)
            .set_pkce_verifier(verifier)
            .request_async(http)
            .await
            .map_err(exchange_failure)
    }

    /// Checks the callback's `iss` (RFC 9207) for an OIDC provider: when present it must be
    /// the issuer, and when the provider announces it, it must be present. A browser sent back
    /// by another provider with this flow's state is refused before its code is used.
    pub async fn check_callback_issuer(
        &self,
        http: &reqwest::Client,
        iss: Option<&str>,
    ) -> Result<(), OAuthError> {
        if self.issuer.is_none() {
            return Ok(());
        }
        let endpoints = self.endpoints(http).await?;
        let problem = match iss {
            Some(iss) if iss == endpoints.issuer => return Ok(()),
            Some(iss) => format!("the callback names issuer \"{}\"", log_text(iss)),
            None if endpoints.iss_parameter => "the callback carries no `iss`".to_string(),
            None => return Ok(()),
        };
        Err(OAuthError::IdTokenRefused(format!(
            "provider {}: {problem}, not {:?}",
            self.name, endpoints.issuer
        )))
    }

    /// Checks the ID token of an OIDC token answer and answers its `sub`. The keys are fetched
    /// now rather than cached, so a provider's key rotation needs no restart.
    async fn verify_id_token(
        &self,
        http: &reqwest::Client,
        endpoints: &Endpoints,
        answer: &CoreTokenResponse,
        nonce: &str,
    ) -> Result<String, OAuthError> {
        let refused = |why: String| {
            OAuthError::IdTokenRefused(format!("provider {}: {}", self.name, log_text(&why)))
        };
        let id_token = answer
            .id_token()
            .ok_or_else(|| refused("the token endpoint sent no ID token".into()))?;
        let keys: CoreJsonWebKeySet =
            serde_json::from_value(get_json(http, &endpoints.jwks, None).await?).map_err(|e| {
                OAuthError::BadAnswer(format!("{}: not a key set: {e}", endpoints.jwks))
            })?;
        let issuer = IssuerUrl::new(endpoints.issuer.clone())
            .map_err(|e| OAuthError::Misconfigured(format!("issuer of {}: {e}", self.name)))?;
        // A public client's verifier: no shared-secret (HS*) algorithms, whose key would be
        // the client secret, and `alg: none` is refused as the signature check stays on.
        let verifier = CoreIdTokenVerifier::new_public_client(
            ClientId::new(self.client_id.clone()),
            issuer,
            keys,
        )
        .set_allowed_algs(endpoints.algs.clone());
        let claims = id_token
            .claims(&verifier, &Nonce::new(nonce.to_string()))
            .map_err(|e| {
                // The outer error says which check failed; its source says why (which
                // signature problem, for one).
                let why = match std::error::Error::source(&e) {
                    Some(source) => format!("{e}: {source}"),
                    None => e.to_string(),
                };
                refused(format!("the ID token is not valid: {why}"))
            })?;
        Ok(claims.subject().as_str().to_string())
    }
}

/// What a failed code exchange means.
fn exchange_failure(e: ExchangeError) -> OAuthError {
    match e {
        RequestTokenError::ServerResponse(e) => token_refusal(
            e.error().as_ref(),
            e.error_description().map(String::as_str),
        ),
        // GitHub answers its errors with 200 and an `error` field.
        RequestTokenError::Parse(_, body) => {
            let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            match value["error"].as_str() {
                Some(code) => token_refusal(code, value["error_description"].as_str()),
                None => OAuthError::BadAnswer("the token endpoint's answer is no token".into()),
            }
        }
        RequestTokenError::Request(HttpClientError::Reqwest(e)) => transport(&e),
        RequestTokenError::Request(e) => OAuthError::Unreachable(format!("token endpoint: {e}")),
        // oauth2's words here can quote the provider's answer (its content type, say).
        RequestTokenError::Other(e) => {
            OAuthError::BadAnswer(format!("token endpoint: {}", log_text(&e)))
        }
    }
}

/// `<public_url>/auth/<provider>/callback`.
pub fn redirect_url(public_url: &str, provider: &str) -> String {
    format!(
        "{}/auth/{provider}/callback",
        public_url.trim_end_matches('/')
    )
}

/// An `error` from the token endpoint: a code that is expired, used, or does not match the
/// PKCE verifier is the browser's problem; anything else is the configuration's.
fn token_refusal(code: &str, description: Option<&str>) -> OAuthError {
    // Both are the provider's text: escaped and capped before they reach the log.
    let description = log_text(description.unwrap_or("no description"));
    match code {
        "invalid_grant" | "bad_verification_code" => {
            OAuthError::CodeRefused(format!("{code}: {description}"))
        }
        _ => OAuthError::Misconfigured(format!(
            "the token endpoint refused with {}: {description}",
            log_text(code)
        )),
    }
}

fn transport(e: &reqwest::Error) -> OAuthError {
    if e.is_timeout() {
        OAuthError::Timeout
    } else {
        OAuthError::Unreachable(format!("{e}"))
    }
}

/// GETs a JSON answer, with the token as bearer if given; a non-2xx status is an error.
async fn get_json(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
) -> Result<Value, OAuthError> {
    let mut request = http
        .get(url)
        .header(ACCEPT, "application/json, application/vnd.github+json");
    if let Some(token) = token {
        request = request.header(AUTHORIZATION, format!("Bearer {token}"));
    }
    let mut response = request.send().await.map_err(|e| transport(&e))?;
    let status = response.status();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| transport(&e))? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_ANSWER_BYTES {
            return Err(OAuthError::BadAnswer(format!("{url} answered too much")));
        }
    }
    if !status.is_success() {
        return Err(OAuthError::BadAnswer(format!("{url} answered {status}")));
    }
    serde_json::from_slice(&body)
        .map_err(|e| OAuthError::BadAnswer(format!("{url} answered something not JSON: {e}")))
}

/// Reads the endpoints and the key set's URL from `<issuer>/.well-known/openid-configuration`.
/// Discovered endpoints are held to the same https rule as configured ones.
async fn discover(
    http: &reqwest::Client,
    issuer: &str,
    allow_insecure_http: bool,
) -> Result<Endpoints, OAuthError> {
    let url = format!("{issuer}{DISCOVERY_PATH}");
    let doc = get_json(http, &url, None).await?;
    let raw_issuer = doc["issuer"].as_str().unwrap_or("");
    let claimed = raw_issuer.trim_end_matches('/');
    if claimed != issuer {
        return Err(OAuthError::Misconfigured(format!(
            "the discovery document at {url} names issuer \"{}\", not {issuer:?}",
            log_text(claimed)
        )));
    }
    let field = |name: &str| -> Result<String, OAuthError> {
        let value = doc[name].as_str().unwrap_or("");
        check_provider_url(value, allow_insecure_http)
            .map(|()| value.to_string())
            .map_err(|e| OAuthError::Misconfigured(format!("{url}: {name}: {}", log_text(&e))))
    };
    let mut algs: Vec<CoreJwsSigningAlgorithm> = doc["id_token_signing_alg_values_supported"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|alg| serde_json::from_value(alg.clone()).ok())
        .filter(|alg| !matches!(alg, CoreJwsSigningAlgorithm::None) && !alg.uses_shared_secret())
        .collect();
    if algs.is_empty() {
        algs.push(CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256);
    }
    Ok(Endpoints {
        auth: field("authorization_endpoint")?,
        token: field("token_endpoint")?,
        userinfo: field("userinfo_endpoint")?,
        jwks: field("jwks_uri")?,
        issuer: raw_issuer.to_string(),
        algs,
        iss_parameter: doc["authorization_response_iss_parameter_supported"] == Value::Bool(true),
    })
}

/// A JSON string or number as text (ids are numbers at GitHub and Gitea, strings elsewhere).
fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

async fn github_user(
    http: &reqwest::Client,
    api_url: &str,
    token: &str,
) -> Result<ProviderUser, OAuthError> {
    let user = get_json(http, &format!("{api_url}/user"), Some(token)).await?;
    let subject = text(&user["id"])
        .ok_or_else(|| OAuthError::BadAnswer("GitHub's /user has no id".into()))?;
    let login = text(&user["login"]).unwrap_or_default();
    // The address is only shown; without user:email (or on failure) there is none.
    let email = match get_json(http, &format!("{api_url}/user/emails"), Some(token)).await {
        Ok(Value::Array(emails)) => emails
            .iter()
            .find(|e| e["primary"] == Value::Bool(true) && e["verified"] == Value::Bool(true))
            .and_then(|e| text(&e["email"])),
        Ok(_) => None,
        Err(e) => {
            tracing::info!(error = %e, "no verified primary email from GitHub");
            None
        }
    };
    Ok(ProviderUser {
        subject,
        display_name: text(&user["name"]).unwrap_or_else(|| login.clone()),
        login,
        email,
    })
}

fn userinfo_user(
    info: &Value,
    id_claim: &str,
    login_claim: &str,
) -> Result<ProviderUser, OAuthError> {
    let subject = text(&info[id_claim]).ok_or_else(|| {
        OAuthError::BadAnswer(format!(
            "the user info has no `{id_claim}` to identify the user"
        ))
    })?;
    let verified = matches!(&info["email_verified"], Value::Bool(true))
        || info["email_verified"].as_str() == Some("true");
    let email = text(&info["email"]).filter(|_| verified);
    let login = [login_claim, "preferred_username", "nickname", "login"]
        .iter()
        .find_map(|claim| text(&info[*claim]))
        .or_else(|| email.clone())
        .or_else(|| text(&info["name"]))
        .unwrap_or_default();
    Ok(ProviderUser {
        subject,
        display_name: text(&info["name"]).unwrap_or_else(|| login.clone()),
        login,
        email,
    })
}

/// The HTTP client for every call to a provider: no redirects (a redirect from a token
/// endpoint is not followed anywhere), bounded in time.
pub fn http_client(timeout: Duration) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("hearth/", env!("CARGO_PKG_VERSION")))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn user_info_claims() {
        let google = json!({"sub": "1093", "email": "Jane@Example.org", "email_verified": true,
                            "name": "Jane Doe"});
        let user = userinfo_user(&google, "sub", "email").unwrap();
        assert_eq!(user.subject, "1093");
        assert_eq!(user.login, "Jane@Example.org");
        assert_eq!(user.email.as_deref(), Some("Jane@Example.org"));
        assert_eq!(user.display_name, "Jane Doe");

        let unverified = json!({"sub": 7, "email": "x@y.z", "email_verified": false,
                                "preferred_username": "xy"});
        let user = userinfo_user(&unverified, "sub", "preferred_username").unwrap();
        assert_eq!((user.subject.as_str(), user.email), ("7", None));
        assert_eq!(user.login, "xy");

        assert!(userinfo_user(&json!({"name": "no id"}), "sub", "email").is_err());
        assert!(userinfo_user(&json!({"sub": ""}), "sub", "email").is_err());
    }

    #[test]
    fn redirect_urls_come_from_the_public_url() {
        assert_eq!(
            redirect_url("https://chat.example.org/", "github"),
            "https://chat.example.org/auth/github/callback"
        );
    }
}
