//! Extractors: who is asking ([`CurrentUser`]) and from where ([`ClientIp`]).
//!
//! A session is presented as `Authorization: Bearer <token>` or as the session cookie. A cookie
//! on a state-changing request must come from an allowed origin (cross-site request forgery);
//! a bearer token cannot be sent by a foreign page, so it needs no origin.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method};

use super::error::AppError;
use crate::auth::origin::AllowedOrigins;
use crate::auth::{AuthError, AuthService, Authenticated};
use crate::config::Config;

pub const SESSION_COOKIE: &str = "hearth_session";

/// How the request proved its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    Bearer,
    Cookie,
}

/// The signed-in user of this request; rejects with 401 otherwise.
pub struct CurrentUser {
    pub auth: Authenticated,
    pub credential: Credential,
}

/// Finds the presented token, bearer first.
pub fn presented_token(headers: &HeaderMap) -> Option<(String, Credential)> {
    if let Some(value) = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        if let Some(token) = value.strip_prefix("Bearer ") {
            return Some((token.trim().to_string(), Credential::Bearer));
        }
    }
    cookie(headers, SESSION_COOKIE).map(|value| (value.to_string(), Credential::Cookie))
}

/// The value of the first cookie called `name`.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// A `Set-Cookie` value for the session cookie (`token` empty and `max_age` 0 clear it).
/// Every way of signing in sets it through here.
pub fn session_cookie(config: &Config, token: &str, max_age: u64) -> Option<HeaderValue> {
    http_only_cookie(config, SESSION_COOKIE, "/", token, max_age)
}

/// A `Set-Cookie` value for any of hearth's cookies: never readable by scripts, not sent on
/// cross-site subrequests, and `Secure` whenever the public URL is https.
pub fn http_only_cookie(
    config: &Config,
    name: &str,
    path: &str,
    value: &str,
    max_age: u64,
) -> Option<HeaderValue> {
    let secure = if config.is_https() { "; Secure" } else { "" };
    let cookie =
        format!("{name}={value}; Path={path}; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}");
    HeaderValue::from_str(&cookie).ok()
}

impl<S> FromRequestParts<S> for CurrentUser
where
    S: Send + Sync,
    Arc<AuthService>: FromRef<S>,
    Arc<AllowedOrigins>: FromRef<S>,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        let (token, credential) =
            presented_token(&parts.headers).ok_or(AuthError::Unauthenticated)?;
        let safe_method = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        if credential == Credential::Cookie
            && !safe_method
            && !Arc::<AllowedOrigins>::from_ref(state).permits(&parts.headers)
        {
            return Err(AppError::ForeignOrigin);
        }
        let auth = Arc::<AuthService>::from_ref(state).authenticate(&token)?;
        Ok(CurrentUser { auth, credential })
    }
}

/// The client's address: the peer, or with `trust_proxy_headers` the address the reverse proxy
/// put last in `X-Forwarded-For`.
pub struct ClientIp(pub IpAddr);

impl<S> FromRequestParts<S> for ClientIp
where
    S: Send + Sync,
    Arc<Config>: FromRef<S>,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        if Arc::<Config>::from_ref(state).trust_proxy_headers {
            let forwarded = parts
                .headers
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.rsplit(',').next())
                .and_then(|v| v.trim().parse().ok());
            if let Some(ip) = forwarded {
                return Ok(ClientIp(ip));
            }
        }
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip())
            .ok_or_else(|| AppError::Internal("no peer address on the connection".into()))?;
        Ok(ClientIp(peer))
    }
}
