//! Register, login, logout, me, the list of sign-in providers, and my provider identities.

use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::ApiState;
use crate::auth::{NewSession, PublicUser};
use crate::http::error::{ApiJson, ApiPath, AppError};
use crate::http::extract::{session_cookie, ClientIp, CurrentUser};
use crate::protocol::codes::SESSION_ENDED;

#[derive(Deserialize)]
pub struct Credentials {
    username: String,
    password: String,
}

#[derive(Deserialize)]
pub struct PasswordChange {
    current_password: String,
    new_password: String,
}

pub async fn register(
    State(state): State<ApiState>,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<Credentials>,
) -> Result<Response, AppError> {
    let session = state
        .auth
        .register(&body.username, body.password, ip)
        .await?;
    Ok(signed_in(&state, StatusCode::CREATED, session))
}

pub async fn login(
    State(state): State<ApiState>,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<Credentials>,
) -> Result<Response, AppError> {
    let session = state.auth.login(&body.username, body.password, ip).await?;
    Ok(signed_in(&state, StatusCode::OK, session))
}

/// Signs out this session: it ends, the sockets opened with it close with 4401, and the cookie
/// is cleared. The user's other sessions go on (see [`logout_all`]).
pub async fn logout(
    State(state): State<ApiState>,
    current: CurrentUser,
) -> Result<Response, AppError> {
    state.auth.logout(&current.auth).await?;
    let (code, reason) = SESSION_ENDED;
    let ended = &current.auth.token_hash;
    for conn in state.connections.of_user(current.auth.user.id) {
        if conn.session() == ended {
            conn.close(code, reason);
        }
    }
    Ok(signed_out(&state))
}

/// Signs out everywhere: every session of the user ends and every socket of theirs closes
/// with 4401.
pub async fn logout_all(
    State(state): State<ApiState>,
    current: CurrentUser,
) -> Result<Response, AppError> {
    state.auth.logout_all(&current.auth).await?;
    let (code, reason) = SESSION_ENDED;
    state
        .connections
        .close_user_except(current.auth.user.id, None, code, reason);
    Ok(signed_out(&state))
}

/// 204 with the session cookie cleared.
fn signed_out(state: &ApiState) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    set_cookie(state, &mut response, "", 0);
    response
}

/// Changes my password; every other session of mine ends and its sockets close with 4401.
pub async fn change_password(
    State(state): State<ApiState>,
    current: CurrentUser,
    ApiJson(body): ApiJson<PasswordChange>,
) -> Result<StatusCode, AppError> {
    state
        .auth
        .change_password(&current.auth, body.current_password, body.new_password)
        .await?;
    let (code, reason) = SESSION_ENDED;
    let (user, keep) = (current.auth.user.id, &current.auth.token_hash);
    state
        .connections
        .close_user_except(user, Some(keep), code, reason);
    Ok(StatusCode::NO_CONTENT)
}

pub async fn me(current: CurrentUser) -> Json<serde_json::Value> {
    Json(json!({ "user": PublicUser::from(&current.auth.user) }))
}

/// The enabled OAuth providers, by the name used in `/auth/{provider}/start`.
pub async fn providers(State(state): State<ApiState>) -> Json<Vec<String>> {
    Json(state.oauth.names())
}

/// The provider identities linked to my account, and whether it has a password.
pub async fn identities(
    State(state): State<ApiState>,
    current: CurrentUser,
) -> Result<Json<serde_json::Value>, AppError> {
    let user = &current.auth.user;
    let identities: Vec<_> = state
        .oauth
        .identities(user.id)?
        .into_iter()
        .map(|i| {
            json!({
                "provider": i.provider,
                "login": i.login,
                "email": i.email,
                "linked_at": i.linked_at,
            })
        })
        .collect();
    Ok(Json(json!({
        "identities": identities,
        "password": user.password_hash.is_some(),
    })))
}

/// Unlinks my identity at a provider, unless it is my last way to sign in.
pub async fn unlink(
    State(state): State<ApiState>,
    ApiPath(provider): ApiPath<String>,
    current: CurrentUser,
) -> Result<StatusCode, AppError> {
    state.oauth.unlink(current.auth.user.id, &provider).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn signed_in(state: &ApiState, status: StatusCode, session: NewSession) -> Response {
    let body = json!({ "user": PublicUser::from(&session.user), "token": session.token });
    let mut response = (status, Json(body)).into_response();
    let max_age = state.auth.session_ttl().as_secs();
    set_cookie(state, &mut response, &session.token, max_age);
    response
}

fn set_cookie(state: &ApiState, response: &mut Response, token: &str, max_age: u64) {
    if let Some(value) = session_cookie(&state.config, token, max_age) {
        response.headers_mut().append(SET_COOKIE, value);
    }
}
