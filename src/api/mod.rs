//! The JSON API under `/api`: one file per resource.

mod auth;

use axum::routing::{get, post};
use axum::Router;

use crate::error::AppError;
use crate::server::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/register", post(auth::register))
        .route("/auth/login", post(auth::login))
        .route("/auth/logout", post(auth::logout))
        .route("/auth/providers", get(auth::providers))
        .route("/me", get(auth::me))
        .fallback(|| async { AppError::NotFound })
}
