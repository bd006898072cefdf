//! The JSON API under `/api`: one file per resource.

mod auth;
mod public;
mod rooms;

use std::sync::Arc;

use axum::extract::FromRef;
use axum::routing::{get, post, put};
use axum::Router;

use crate::auth::origin::AllowedOrigins;
use crate::auth::AuthService;
use crate::config::Config;
use crate::http::error::AppError;
use crate::limits::Limits;
use crate::oauth::OAuth;
use crate::rooms::Registry;
use crate::sockets::Connections;
use crate::store::Store;

/// What the API's handlers use of the server.
#[derive(Clone, FromRef)]
pub struct ApiState {
    pub config: Arc<Config>,
    pub store: Store,
    pub auth: Arc<AuthService>,
    pub oauth: Arc<OAuth>,
    pub origins: Arc<AllowedOrigins>,
    pub limits: Arc<Limits>,
    pub rooms: Arc<Registry>,
    pub connections: Arc<Connections>,
}

pub fn router() -> Router<ApiState> {
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
        .route("/rooms/{code}/notify", put(rooms::notify))
        .fallback(|| async { AppError::NotFound })
}
