//! The one error type HTTP handlers return. The client gets a status and a stable
//! `{"error": {"code", "message"}}`; internal details go to the log only.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRef, FromRequest, FromRequestParts, Path, Request};
use axum::http::header::RETRY_AFTER;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::auth::AuthError;
use crate::config::Config;
use crate::limits::{retry_secs, GuessingCodes, NotAdmitted, Refused};
use crate::protocol::ErrorCode;
use crate::rooms::RoomError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Room(#[from] RoomError),
    /// A limit on how often or how many at once (room creations, sockets, code guesses).
    #[error(transparent)]
    Limited(#[from] Refused),
    /// A refusal that the module it came from has given its code (identity links).
    #[error("{message}")]
    Refused { code: ErrorCode, message: String },
    #[error("{0}")]
    BadRequest(String),
    #[error("the request body is larger than this server accepts ({0} bytes)")]
    TooLarge(usize),
    #[error("the request body did not arrive within {0} seconds")]
    BodyTimeout(u64),
    #[error("no such endpoint")]
    NotFound,
    #[error("requests with the session cookie must come from this server's own pages")]
    ForeignOrigin,
    #[error("{0}")]
    Internal(String),
}

impl From<GuessingCodes> for AppError {
    fn from(e: GuessingCodes) -> AppError {
        AppError::Limited(e.into())
    }
}

impl From<NotAdmitted> for AppError {
    fn from(e: NotAdmitted) -> AppError {
        match e {
            NotAdmitted::Guessing(e) => e.into(),
            NotAdmitted::NoSuchCode => RoomError::UnknownRoom.into(),
        }
    }
}

impl AppError {
    /// The wire code, and the status that goes with it. The code is the stable part clients
    /// match on; every module's errors name theirs (`AuthError::code`, `RoomError::code`, ...).
    fn status_and_code(&self) -> (StatusCode, ErrorCode) {
        let code = match self {
            AppError::Auth(e) => e.code(),
            AppError::Room(e) => e.code(),
            AppError::Limited(e) => e.code(),
            AppError::Refused { code, .. } => *code,
            AppError::Store(_) | AppError::Internal(_) => ErrorCode::Internal,
            AppError::BadRequest(_) => ErrorCode::BadRequest,
            AppError::TooLarge(_) => ErrorCode::TooLarge,
            AppError::BodyTimeout(_) => ErrorCode::RequestTimeout,
            AppError::NotFound => ErrorCode::NotFound,
            AppError::ForeignOrigin => ErrorCode::ForbiddenOrigin,
        };
        let status = match self {
            // Not the server's fault, nor the client's: try again once it is back.
            AppError::Room(RoomError::ShuttingDown) => StatusCode::SERVICE_UNAVAILABLE,
            _ => code.status(),
        };
        (status, code)
    }

    /// How long the client should wait before trying again, for the limits that say.
    fn retry_after(&self) -> Option<Duration> {
        match self {
            AppError::Auth(e) => e.retry_after(),
            AppError::Limited(Refused::TooOften { retry_after, .. }) => Some(*retry_after),
            _ => None,
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
            "something went wrong on the server; the log has details".to_string()
        } else {
            self.to_string()
        };
        let body = json!({ "error": { "code": code, "message": message } });
        let mut response = (status, Json(body)).into_response();
        if let Some(retry_after) = self.retry_after() {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(retry_secs(retry_after)));
        }
        response
    }
}

/// `Path<T>` whose rejections (a segment that is not UTF-8 once percent-decoded, or not of
/// the right type) are `bad_request` errors in the API's shape, not axum's plain text.
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(ApiPath(value)),
            Err(rejection) => Err(AppError::BadRequest(rejection.body_text())),
        }
    }
}

/// `Json<T>` whose rejections are `bad_request` errors in the API's shape, and whose body must
/// arrive within `http.body_timeout_secs`.
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
    Arc<Config>: FromRef<S>,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, AppError> {
        let config = Arc::<Config>::from_ref(state);
        let limit = config.http.max_body_bytes;
        let read = Json::<T>::from_request(req, state);
        let outcome = match config.http.body_timeout_secs {
            0 => read.await,
            secs => tokio::time::timeout(Duration::from_secs(secs), read)
                .await
                .map_err(|_| AppError::BodyTimeout(secs))?,
        };
        match outcome {
            Ok(Json(value)) => Ok(ApiJson(value)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(AppError::TooLarge(limit))
            }
            Err(rejection) => Err(AppError::BadRequest(describe(rejection))),
        }
    }
}

fn describe(rejection: JsonRejection) -> String {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => {
            "send a JSON body with Content-Type: application/json".into()
        }
        JsonRejection::BytesRejection(_) => "the request body could not be read".into(),
        other => other.body_text(),
    }
}
