//! One configured provider at run time: its endpoints (fixed, or discovered from an OIDC
//! issuer and cached), the authorization URL with PKCE, the code exchange, and the user info
//! that tells who signed in.

use std::time::Duration;

use oauth2::basic::BasicClient;
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet,
    EndpointSet, HttpClientError, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
    RequestTokenError, Scope, TokenResponse, TokenUrl,
};
use reqwest::header::{ACCEPT, AUTHORIZATION};
use serde_json::Value;
use tokio::sync::OnceCell;

use super::OAuthError;
use crate::config::{check_url, GenericProviderConfig, GithubConfig, GoogleConfig, Secret};

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
#[derive(Clone)]
struct Endpoints {
    auth: String,
    token: String,
    userinfo: String,
}

type Client = BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

pub struct Provider {
    pub name: String,
    kind: Kind,
    client_id: String,
    client_secret: Secret,
    auth_type: AuthType,
    scopes: Vec<String>,
    redirect_url: String,
    configured: Endpoints,
    /// OIDC issuer whose discovery document supplies missing endpoints.
    issuer: Option<String>,
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
            },
            kind: Kind::GitHub { api_url },
            issuer: None,
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
            },
            issuer: None,
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
            },
            issuer: Some(config.issuer.trim_end_matches('/').to_string()).filter(|i| !i.is_empty()),
            discovered: OnceCell::new(),
        }
    }

    /// The callback URL registered at the provider.
    pub fn redirect_url(&self) -> &str {
        &self.redirect_url
    }

    /// The endpoints, discovering them first if the provider names an issuer. A discovery
    /// that fails is tried again on the next sign-in.
    async fn endpoints(&self, http: &reqwest::Client) -> Result<Endpoints, OAuthError> {
        let Some(issuer) = &self.issuer else {
            return Ok(self.configured.clone());
        };
        let found = self
            .discovered
            .get_or_try_init(|| discover(http, issuer))
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
        })
    }

    fn client(&self, endpoints: &Endpoints) -> Result<Client, OAuthError> {
        let bad = |what: &str, e: oauth2::url::ParseError| {
            OAuthError::Misconfigured(format!("{what} of provider {}: {e}", self.name))
        };
        let mut client = BasicClient::new(ClientId::new(self.client_id.clone()))
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

    /// The URL to send the browser to, carrying `state` and the S256 challenge of a fresh PKCE
    /// verifier; answers the URL and the verifier.
    pub async fn authorize_url(
        &self,
        http: &reqwest::Client,
        state: String,
    ) -> Result<(String, String), OAuthError> {
        let client = self.client(&self.endpoints(http).await?)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, _) = client
            .authorize_url(|| CsrfToken::new(state))
            .add_scopes(self.scopes.iter().cloned().map(Scope::new))
            .set_pkce_challenge(challenge)
            .url();
        Ok((url.to_string(), verifier.into_secret()))
    }

    /// Trades the code (with the PKCE verifier) for who signed in.
    pub async fn sign_in(
        &self,
        http: &reqwest::Client,
        code: String,
        verifier: String,
    ) -> Result<ProviderUser, OAuthError> {
        let endpoints = self.endpoints(http).await?;
        let client = self.client(&endpoints)?;
        let answer = client
            .exchange_code(AuthorizationCode::new(code))
            .set_pkce_verifier(PkceCodeVerifier::new(verifier))
            .request_async(http)
            .await;
        let token = match answer {
            Ok(token) => token.access_token().secret().clone(),
            Err(RequestTokenError::ServerResponse(e)) => {
                return Err(token_refusal(
                    e.error().as_ref(),
                    e.error_description().map(String::as_str),
                ))
            }
            // GitHub answers its errors with 200 and an `error` field.
            Err(RequestTokenError::Parse(_, body)) => {
                let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                return Err(match value["error"].as_str() {
                    Some(code) => token_refusal(code, value["error_description"].as_str()),
                    None => OAuthError::BadAnswer("the token endpoint's answer is no token".into()),
                });
            }
            Err(RequestTokenError::Request(HttpClientError::Reqwest(e))) => {
                return Err(transport(&e))
            }
            Err(RequestTokenError::Request(e)) => {
                return Err(OAuthError::Unreachable(format!("token endpoint: {e}")))
            }
            Err(RequestTokenError::Other(e)) => {
                return Err(OAuthError::BadAnswer(format!("token endpoint: {e}")))
            }
        };
        match &self.kind {
            Kind::GitHub { api_url } => github_user(http, api_url, &token).await,
            Kind::UserInfo {
                id_claim,
                login_claim,
            } => {
                let info = get_json(http, &endpoints.userinfo, Some(&token)).await?;
                userinfo_user(&info, id_claim, login_claim)
            }
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
    match code {
        "invalid_grant" | "bad_verification_code" => OAuthError::CodeRefused(format!(
            "{code}: {}",
            description.unwrap_or("no description")
        )),
        _ => OAuthError::Misconfigured(format!(
            "the token endpoint refused with {code}: {}",
            description.unwrap_or("no description")
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

/// Reads the endpoints from `<issuer>/.well-known/openid-configuration`.
async fn discover(http: &reqwest::Client, issuer: &str) -> Result<Endpoints, OAuthError> {
    let url = format!("{issuer}/.well-known/openid-configuration");
    let doc = get_json(http, &url, None).await?;
    let claimed = doc["issuer"].as_str().unwrap_or("").trim_end_matches('/');
    if claimed != issuer {
        return Err(OAuthError::Misconfigured(format!(
            "the discovery document at {url} names issuer {claimed:?}, not {issuer:?}"
        )));
    }
    let field = |name: &str| -> Result<String, OAuthError> {
        let value = doc[name].as_str().unwrap_or("");
        check_url(value)
            .map(|()| value.to_string())
            .map_err(|e| OAuthError::Misconfigured(format!("{url}: {name}: {e}")))
    };
    Ok(Endpoints {
        auth: field("authorization_endpoint")?,
        token: field("token_endpoint")?,
        userinfo: field("userinfo_endpoint")?,
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
