//! The JSON API under `/api`: one file per resource.

mod auth;
mod public;
mod rooms;

use axum::routing::{get, post};
use axum::Router;

use crate::error::AppError;
use crate::server::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/register", post(auth::register))
        .route("/auth/login", post(auth::login))
        .route("/auth/logout", post(auth::logout))
        .route("/auth/logout-all", post(auth::logout_all))
        .route("/auth/password", post(auth::change_password))
        .route("/auth/providers", get(auth::providers))
        .route("/auth/providers/{provider}/unlink", post(auth::unlink))
        .route("/session", get(public::session))
        .route("/invites/{code}", get(public::invite))
        .route("/me", get(auth::me))
        .route("/me/identities", get(auth::identities))
        .route("/rooms", post(rooms::create).get(rooms::mine))
        .route("/rooms/{code}", get(rooms::one))
        .route("/rooms/{code}/messages", get(rooms::messages))
        .fallback(|| async { AppError::NotFound })
}
