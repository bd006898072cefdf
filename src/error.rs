//! The one error type HTTP handlers return. The client gets a status and a stable
//! `{"error": {"code", "message"}}`; internal details go to the log only.

use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::header::RETRY_AFTER;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::auth::AuthError;
use crate::oauth::IdentityError;
use crate::rooms::RoomError;
use crate::server::AppState;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Room(#[from] RoomError),
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error("{0}")]
    BadRequest(String),
    #[error("the request body is larger than this server accepts ({0} bytes)")]
    TooLarge(usize),
    #[error("the request body did not arrive within {0} seconds")]
    BodyTimeout(u64),
    /// A limit on how often something may be done was reached.
    #[error("{message}")]
    Limited {
        message: String,
        retry_after: Duration,
    },
    /// A limit on how many sockets may be open at once was reached.
    #[error("{0}")]
    TooManySockets(String),
    #[error("no such endpoint")]
    NotFound,
    #[error("requests with the session cookie must come from this server's own pages")]
    ForeignOrigin,
    #[error("{0}")]
    Internal(String),
}

impl AppError {
    /// Status and wire code; the code is the stable part clients match on.
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            AppError::Auth(e) => match e {
                AuthError::InvalidUsername => (StatusCode::BAD_REQUEST, "invalid_username"),
                AuthError::WeakPassword(_) => (StatusCode::BAD_REQUEST, "weak_password"),
                AuthError::UsernameTaken => (StatusCode::CONFLICT, "username_taken"),
                AuthError::RegistrationClosed => (StatusCode::FORBIDDEN, "registration_closed"),
                AuthError::InvalidCredentials => (StatusCode::UNAUTHORIZED, "invalid_credentials"),
                AuthError::WrongPassword => (StatusCode::FORBIDDEN, "wrong_password"),
                AuthError::NoPassword => (StatusCode::CONFLICT, "no_password"),
                AuthError::AccountDisabled => (StatusCode::FORBIDDEN, "account_disabled"),
                AuthError::RateLimited { .. }
                | AuthError::TooManyAtOnce { .. }
                | AuthError::TooManyRegistrations { .. } => {
                    (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
                }
                AuthError::Busy { .. } => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
                AuthError::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated"),
                AuthError::UnknownUser(_) => (StatusCode::NOT_FOUND, "unknown_user"),
                AuthError::Store(_) | AuthError::Internal(_) => {
                    (StatusCode::INTERNAL_SERVER_ERROR, "internal")
                }
            },
            AppError::Room(e) => {
                let status = match e {
                    RoomError::UnknownRoom => StatusCode::NOT_FOUND,
                    RoomError::NotMember | RoomError::NotHost | RoomError::Banned => {
                        StatusCode::FORBIDDEN
                    }
                    RoomError::TooLong(_)
                    | RoomError::Store(crate::store::StoreError::TooLarge { .. })
                    | RoomError::InvalidName(_)
                    | RoomError::BadRequest(_)
                    | RoomError::UnknownCommand(_) => StatusCode::BAD_REQUEST,
                    RoomError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
                    RoomError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
                    RoomError::Store(_) | RoomError::Internal(_) => {
                        StatusCode::INTERNAL_SERVER_ERROR
                    }
                };
                (status, e.code())
            }
            AppError::Identity(e) => match e {
                IdentityError::NotLinked(_) => (StatusCode::NOT_FOUND, "not_linked"),
                IdentityError::LastSignInMethod => (StatusCode::CONFLICT, "last_sign_in_method"),
                IdentityError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            },
            AppError::Store(_) | AppError::Internal(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
            AppError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            AppError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            AppError::BodyTimeout(_) => (StatusCode::REQUEST_TIMEOUT, "request_timeout"),
            AppError::Limited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            AppError::TooManySockets(_) => (StatusCode::TOO_MANY_REQUESTS, "too_many_sockets"),
            AppError::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            AppError::ForeignOrigin => (StatusCode::FORBIDDEN, "forbidden_origin"),
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
        let retry_after = match &self {
            AppError::Auth(
                AuthError::RateLimited { retry_after }
                | AuthError::TooManyAtOnce { retry_after }
                | AuthError::Busy { retry_after }
                | AuthError::TooManyRegistrations { retry_after },
            )
            | AppError::Limited { retry_after, .. } => Some(*retry_after),
            _ => None,
        };
        if let Some(retry_after) = retry_after {
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

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for ApiPath<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(ApiPath(value)),
            Err(rejection) => Err(AppError::BadRequest(rejection.body_text())),
        }
    }
}

/// Whole seconds to wait, rounded up, at least 1: the value of a `Retry-After` header.
pub fn retry_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

/// `Json<T>` whose rejections are `bad_request` errors in the API's shape, and whose body must
/// arrive within `http.body_timeout_secs`.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, AppError> {
        let limit = state.config.http.max_body_bytes;
        let read = Json::<T>::from_request(req, state);
        let outcome = match state.config.http.body_timeout_secs {
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
