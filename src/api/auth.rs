//! Register, login, logout, me, and the list of sign-in providers.

use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use crate::auth::extract::{ClientIp, CurrentUser, SESSION_COOKIE};
use crate::auth::{NewSession, PublicUser};
use crate::error::{ApiJson, AppError};
use crate::server::AppState;
use crate::ws::conn::SESSION_ENDED;

#[derive(Deserialize)]
pub struct Credentials {
    username: String,
    password: String,
}

pub async fn register(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Credentials>,
) -> Result<Response, AppError> {
    let session = state.auth.register(&body.username, body.password).await?;
    Ok(signed_in(&state, StatusCode::CREATED, session))
}

pub async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<Credentials>,
) -> Result<Response, AppError> {
    let session = state.auth.login(&body.username, body.password, ip).await?;
    Ok(signed_in(&state, StatusCode::OK, session))
}

pub async fn logout(
    State(state): State<AppState>,
    current: CurrentUser,
) -> Result<Response, AppError> {
    state.auth.logout(&current.auth).await?;
    let (code, reason) = SESSION_ENDED;
    let user = current.auth.user.id;
    state
        .connections
        .close_session(user, &current.auth.token_hash, code, reason);
    let mut response = StatusCode::NO_CONTENT.into_response();
    set_cookie(&state, &mut response, "", 0);
    Ok(response)
}

pub async fn me(current: CurrentUser) -> Json<serde_json::Value> {
    Json(json!({ "user": PublicUser::from(&current.auth.user) }))
}

/// OAuth providers arrive with their own issue; until then none is configured.
pub async fn providers() -> Json<Vec<String>> {
    Json(Vec::new())
}

fn signed_in(state: &AppState, status: StatusCode, session: NewSession) -> Response {
    let body = json!({ "user": PublicUser::from(&session.user), "token": session.token });
    let mut response = (status, Json(body)).into_response();
    let max_age = state.auth.session_ttl().as_secs();
    set_cookie(state, &mut response, &session.token, max_age);
    response
}

fn set_cookie(state: &AppState, response: &mut Response, token: &str, max_age: u64) {
    let secure = if state.config.is_https() {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(SET_COOKIE, value);
    }
}
