//! A mock OAuth2/OIDC provider for the sign-in tests: a real HTTP server on loopback with
//! authorize (a consent screen the test answers with `test_*` fields), token (checking the
//! client secret, the redirect URI, single use of codes and PKCE S256), GitHub's /user and
//! /user/emails, OIDC user info, discovery and a JWKS. When the authorization request asks for
//! the `openid` scope, the token answer carries an RS256 ID token signed with a fixed test-only
//! key (`oauth_keys/`), with the request's `nonce`; [`IdTokenFault`] spoils it on purpose.
//! `Mock::with` reads and changes what it does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::header::{AUTHORIZATION, LOCATION as MOCK_LOCATION};
use axum::http::{HeaderMap, StatusCode as MockStatus};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use openidconnect::core::{CoreJwsSigningAlgorithm, CoreRsaPrivateSigningKey};
use openidconnect::{JsonWebKeyId, PrivateSigningKey};
use reqwest::Url;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub const CLIENT_ID: &str = "hearth-test-client";
pub const CLIENT_SECRET: &str = "s3cret-for-tests";

/// Someone with an account at the provider.
#[derive(Clone, Debug)]
pub struct Person {
    pub id: String,
    pub login: String,
    pub name: String,
    pub email: String,
}

pub fn person(id: &str, login: &str) -> Person {
    Person {
        id: id.into(),
        login: login.into(),
        name: format!("{login} (display)"),
        email: format!("{}@example.org", login.to_lowercase().replace(' ', ".")),
    }
}

pub struct Grant {
    pub challenge: String,
    pub redirect_uri: String,
    pub person: Person,
    /// The authorization request's `nonce`, if it sent one.
    pub nonce: Option<String>,
    /// Whether it asked for the `openid` scope (then an ID token comes with the token).
    pub openid: bool,
}

/// One way an ID token can be wrong; the token endpoint issues the next tokens that way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdTokenFault {
    /// Signed by another key under the provider's key id.
    BadSignature,
    WrongIssuer,
    WrongAudience,
    WrongNonce,
    NoNonce,
    Expired,
    /// Unsigned: `alg: none` and no signature.
    AlgNone,
    /// HS256 keyed with the client secret, which the client (and so anyone holding the
    /// secret) could have made itself.
    Hs256ClientSecret,
    /// No ID token at all in the token answer.
    Missing,
}

/// The key id the mock's JWKS names its key by.
const KEY_ID: &str = "mock-key-1";
const PROVIDER_KEY: &str = include_str!("oauth_keys/provider-test-only.pem");
const FORGER_KEY: &str = include_str!("oauth_keys/forger-test-only.pem");

fn signing_key(pem: &str) -> CoreRsaPrivateSigningKey {
    CoreRsaPrivateSigningKey::from_pem(pem, Some(JsonWebKeyId::new(KEY_ID.into()))).unwrap()
}

#[derive(Default)]
pub struct MockState {
    pub base: String,
    pub codes: HashMap<String, Grant>,
    pub tokens: HashMap<String, Person>,
    pub token_delay: Duration,
    /// Answer token errors as GitHub does: status 200 with an `error` field.
    pub github_errors: bool,
    pub token_calls: usize,
    pub pkce_failures: usize,
    /// How each token request authenticated the client: "basic" or "body".
    pub client_auth: Vec<&'static str>,
    pub discoveries: usize,
    /// Spoils the ID tokens issued while set.
    pub id_token_fault: Option<IdTokenFault>,
    /// The `iss` of the ID tokens (and the discovery document's issuer) when not `base`.
    pub issuer: Option<String>,
    /// The nonces the authorization requests carried, in order.
    pub nonces: Vec<Option<String>>,
    /// The `jwks_uri` the discovery document names when not `<base>/jwks`.
    pub jwks_uri: Option<String>,
    /// Announce and send `iss` on callbacks (RFC 9207).
    pub iss_parameter: bool,
}

pub type Shared = Arc<Mutex<MockState>>;

pub struct Mock {
    pub base: String,
    state: Shared,
}

impl Mock {
    pub async fn start() -> Mock {
        let state = Shared::default();
        let app = Router::new()
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .route("/user", get(github_user))
            .route("/user/emails", get(github_emails))
            .route("/userinfo", get(userinfo))
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        state.lock().unwrap().base = base.clone();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Mock { base, state }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut MockState) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }
}

fn random() -> String {
    hearth::auth::token::generate().unwrap()
}

fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// The consent screen: the test says who is signed in at the provider with `test_*` fields.
async fn authorize(
    State(state): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let field = |k: &str| q.get(k).cloned().unwrap_or_default();
    let valid = field("client_id") == CLIENT_ID
        && field("response_type") == "code"
        && field("code_challenge_method") == "S256"
        && field("code_challenge").len() >= 43
        && !field("state").is_empty()
        && !field("redirect_uri").is_empty();
    if !valid {
        return (
            MockStatus::BAD_REQUEST,
            format!("bad authorize request: {q:?}"),
        )
            .into_response();
    }
    let redirect = field("redirect_uri");
    let back = |pairs: &[(&str, &str)]| {
        let url = Url::parse_with_params(&redirect, pairs).unwrap();
        (MockStatus::FOUND, [(MOCK_LOCATION, url.to_string())]).into_response()
    };
    if q.contains_key("test_error") {
        return back(&[
            ("error", &field("test_error")),
            ("error_description", "The user said no"),
            ("state", &field("state")),
        ]);
    }
    let code = random();
    let nonce = q.get("nonce").cloned();
    let mut s = state.lock().unwrap();
    let iss = s.iss_parameter.then(|| s.base.clone());
    s.nonces.push(nonce.clone());
    s.codes.insert(
        code.clone(),
        Grant {
            nonce,
            openid: field("scope").split(' ').any(|scope| scope == "openid"),
            challenge: field("code_challenge"),
            redirect_uri: redirect.clone(),
            person: Person {
                id: field("test_id"),
                login: field("test_login"),
                name: field("test_name"),
                email: field("test_email"),
            },
        },
    );
    drop(s);
    match iss {
        Some(iss) => back(&[("code", &code), ("state", &field("state")), ("iss", &iss)]),
        None => back(&[("code", &code), ("state", &field("state"))]),
    }
}

/// The token endpoint: client credentials (basic or body), single-use code, same redirect URI,
/// and S256(code_verifier) == code_challenge.
async fn token(
    State(state): State<Shared>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let field = |k: &str| form.get(k).cloned().unwrap_or_default();
    let basic = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b).ok())
        .and_then(|raw| String::from_utf8(raw).ok())
        .and_then(|pair| {
            pair.split_once(':')
                .map(|(a, b)| (a.to_string(), b.to_string()))
        });
    let (method, id, secret) = match basic {
        Some((id, secret)) => ("basic", id, secret),
        None => ("body", field("client_id"), field("client_secret")),
    };
    let (delay, github) = {
        let mut s = state.lock().unwrap();
        s.token_calls += 1;
        s.client_auth.push(method);
        (s.token_delay, s.github_errors)
    };
    let refuse = |status: MockStatus, error: &str, github_error: &str| {
        if github {
            Json(json!({"error": github_error, "error_description": error})).into_response()
        } else {
            (
                status,
                Json(json!({"error": error, "error_description": "refused by the mock"})),
            )
                .into_response()
        }
    };
    if id != CLIENT_ID || secret != CLIENT_SECRET {
        return refuse(
            MockStatus::UNAUTHORIZED,
            "invalid_client",
            "incorrect_client_credentials",
        );
    }
    if field("grant_type") != "authorization_code" {
        return refuse(
            MockStatus::BAD_REQUEST,
            "unsupported_grant_type",
            "unsupported_grant_type",
        );
    }
    let grant = state.lock().unwrap().codes.remove(&field("code"));
    let Some(grant) = grant else {
        return refuse(
            MockStatus::BAD_REQUEST,
            "invalid_grant",
            "bad_verification_code",
        );
    };
    if grant.redirect_uri != field("redirect_uri") {
        return refuse(
            MockStatus::BAD_REQUEST,
            "invalid_grant",
            "redirect_uri_mismatch",
        );
    }
    if s256(&field("code_verifier")) != grant.challenge {
        state.lock().unwrap().pkce_failures += 1;
        return refuse(
            MockStatus::BAD_REQUEST,
            "invalid_grant",
            "bad_verification_code",
        );
    }
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let access = random();
    let (id_token, fault) = {
        let s = state.lock().unwrap();
        let issuer = s.issuer.clone().unwrap_or_else(|| s.base.clone());
        let fault = s.id_token_fault;
        (
            grant.openid.then(|| id_token(&issuer, &grant, fault)),
            fault,
        )
    };
    state
        .lock()
        .unwrap()
        .tokens
        .insert(access.clone(), grant.person);
    let mut answer = json!({"access_token": access, "token_type": "bearer", "scope": "whatever"});
    if let Some(id_token) = id_token.filter(|_| fault != Some(IdTokenFault::Missing)) {
        answer["id_token"] = json!(id_token);
    }
    Json(answer).into_response()
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A compact JWS of the grant's person, signed RS256 unless `fault` says otherwise.
fn id_token(issuer: &str, grant: &Grant, fault: Option<IdTokenFault>) -> String {
    use IdTokenFault as F;
    let now = unix_now();
    let mut claims = json!({
        "iss": issuer,
        "sub": grant.person.id,
        "aud": CLIENT_ID,
        "iat": now,
        "exp": now + 300,
        "nonce": grant.nonce,
    });
    match fault {
        Some(F::WrongIssuer) => claims["iss"] = json!("https://elsewhere.example"),
        Some(F::WrongAudience) => claims["aud"] = json!("another-client"),
        Some(F::WrongNonce) => claims["nonce"] = json!("not-the-nonce-that-was-sent"),
        Some(F::NoNonce) => {
            claims.as_object_mut().unwrap().remove("nonce");
        }
        Some(F::Expired) => {
            claims["iat"] = json!(now - 7200);
            claims["exp"] = json!(now - 3600);
        }
        _ => {}
    }
    let alg = match fault {
        Some(F::AlgNone) => "none",
        Some(F::Hs256ClientSecret) => "HS256",
        _ => "RS256",
    };
    let header = json!({"alg": alg, "kid": KEY_ID, "typ": "JWT"});
    let signed = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = match fault {
        Some(F::AlgNone) => Vec::new(),
        Some(F::Hs256ClientSecret) => hmac_sha256(CLIENT_SECRET.as_bytes(), signed.as_bytes()),
        Some(F::BadSignature) => signing_key(FORGER_KEY)
            .sign(
                &CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
                signed.as_bytes(),
            )
            .unwrap(),
        _ => signing_key(PROVIDER_KEY)
            .sign(
                &CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
                signed.as_bytes(),
            )
            .unwrap(),
    };
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// HMAC-SHA256 (RFC 2104), for the one token signed the way an attacker with the secret would.
fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut block = [0u8; 64];
    block[..key.len()].copy_from_slice(key);
    let pad = |byte: u8| block.iter().map(|k| k ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .to_vec()
}

/// The provider's public key set.
async fn jwks() -> Json<Value> {
    let key = signing_key(PROVIDER_KEY).as_verification_key();
    Json(json!({ "keys": [key] }))
}

fn bearer(state: &Shared, headers: &HeaderMap) -> Option<Person> {
    let token = headers
        .get(AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")?;
    state.lock().unwrap().tokens.get(token).cloned()
}

async fn github_user(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let Some(p) = bearer(&state, &headers) else {
        return (
            MockStatus::UNAUTHORIZED,
            Json(json!({"message": "Bad credentials"})),
        )
            .into_response();
    };
    let id: Value = p.id.parse::<u64>().map_or(json!(p.id), |n| json!(n));
    Json(json!({"id": id, "login": p.login, "name": p.name, "email": null})).into_response()
}

async fn github_emails(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let Some(p) = bearer(&state, &headers) else {
        return MockStatus::UNAUTHORIZED.into_response();
    };
    Json(json!([
        {"email": "unverified@example.org", "primary": false, "verified": false},
        {"email": "secondary@example.org", "primary": false, "verified": true},
        {"email": p.email, "primary": true, "verified": true},
    ]))
    .into_response()
}

async fn userinfo(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let Some(p) = bearer(&state, &headers) else {
        return MockStatus::UNAUTHORIZED.into_response();
    };
    Json(
        json!({"sub": p.id, "preferred_username": p.login, "name": p.name,
                "email": p.email, "email_verified": true}),
    )
    .into_response()
}

async fn discovery(State(state): State<Shared>) -> Json<Value> {
    let (base, issuer, jwks_uri, iss_parameter) = {
        let mut s = state.lock().unwrap();
        s.discoveries += 1;
        let issuer = s.issuer.clone().unwrap_or_else(|| s.base.clone());
        let jwks_uri = s
            .jwks_uri
            .clone()
            .unwrap_or_else(|| format!("{}/jwks", s.base));
        (s.base.clone(), issuer, jwks_uri, s.iss_parameter)
    };
    Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{base}/authorize"),
        "token_endpoint": format!("{base}/token"),
        "userinfo_endpoint": format!("{base}/userinfo"),
        "jwks_uri": jwks_uri,
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "authorization_response_iss_parameter_supported": iss_parameter,
    }))
}
