//! The codes clients match on: [`ErrorCode`], the one list of error codes that HTTP answers
//! (`{"error": {"code", "message"}}`) and socket `error` frames carry, and the socket's close
//! codes. docs/protocol.md documents every one of them (a test below checks).

use axum::http::StatusCode;
use serde::Serialize;

/// An error's stable code. Messages may change; codes do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    InvalidUsername,
    WeakPassword,
    UsernameTaken,
    RegistrationClosed,
    InvalidCredentials,
    WrongPassword,
    NoPassword,
    AccountDisabled,
    Unauthenticated,
    NotLinked,
    LastSignInMethod,
    ForbiddenOrigin,
    NotFound,
    TooLarge,
    RequestTimeout,
    RateLimited,
    TooManySockets,
    Busy,
    UnknownRoom,
    NotMember,
    NotHost,
    NotAuthor,
    Banned,
    TooLong,
    InvalidName,
    UnknownCommand,
    Internal,
}

impl ErrorCode {
    /// Every code, for the documentation check.
    pub const ALL: [ErrorCode; 28] = [
        ErrorCode::BadRequest,
        ErrorCode::InvalidUsername,
        ErrorCode::WeakPassword,
        ErrorCode::UsernameTaken,
        ErrorCode::RegistrationClosed,
        ErrorCode::InvalidCredentials,
        ErrorCode::WrongPassword,
        ErrorCode::NoPassword,
        ErrorCode::AccountDisabled,
        ErrorCode::Unauthenticated,
        ErrorCode::NotLinked,
        ErrorCode::LastSignInMethod,
        ErrorCode::ForbiddenOrigin,
        ErrorCode::NotFound,
        ErrorCode::TooLarge,
        ErrorCode::RequestTimeout,
        ErrorCode::RateLimited,
        ErrorCode::TooManySockets,
        ErrorCode::Busy,
        ErrorCode::UnknownRoom,
        ErrorCode::NotMember,
        ErrorCode::NotHost,
        ErrorCode::NotAuthor,
        ErrorCode::Banned,
        ErrorCode::TooLong,
        ErrorCode::InvalidName,
        ErrorCode::UnknownCommand,
        ErrorCode::Internal,
    ];

    /// The code as it is written on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::InvalidUsername => "invalid_username",
            ErrorCode::WeakPassword => "weak_password",
            ErrorCode::UsernameTaken => "username_taken",
            ErrorCode::RegistrationClosed => "registration_closed",
            ErrorCode::InvalidCredentials => "invalid_credentials",
            ErrorCode::WrongPassword => "wrong_password",
            ErrorCode::NoPassword => "no_password",
            ErrorCode::AccountDisabled => "account_disabled",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::NotLinked => "not_linked",
            ErrorCode::LastSignInMethod => "last_sign_in_method",
            ErrorCode::ForbiddenOrigin => "forbidden_origin",
            ErrorCode::NotFound => "not_found",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::RequestTimeout => "request_timeout",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::TooManySockets => "too_many_sockets",
            ErrorCode::Busy => "busy",
            ErrorCode::UnknownRoom => "unknown_room",
            ErrorCode::NotMember => "not_member",
            ErrorCode::NotHost => "not_host",
            ErrorCode::NotAuthor => "not_author",
            ErrorCode::Banned => "banned",
            ErrorCode::TooLong => "too_long",
            ErrorCode::InvalidName => "invalid_name",
            ErrorCode::UnknownCommand => "unknown_command",
            ErrorCode::Internal => "internal",
        }
    }

    /// The HTTP status an answer with this code has (a server that is stopping answers
    /// `internal` with 503 instead: `AppError` says so where it knows).
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::BadRequest
            | ErrorCode::InvalidUsername
            | ErrorCode::WeakPassword
            | ErrorCode::TooLong
            | ErrorCode::InvalidName
            | ErrorCode::UnknownCommand => StatusCode::BAD_REQUEST,
            ErrorCode::InvalidCredentials | ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrorCode::RegistrationClosed
            | ErrorCode::WrongPassword
            | ErrorCode::AccountDisabled
            | ErrorCode::ForbiddenOrigin
            | ErrorCode::NotMember
            | ErrorCode::NotHost
            | ErrorCode::NotAuthor
            | ErrorCode::Banned => StatusCode::FORBIDDEN,
            ErrorCode::NotLinked | ErrorCode::NotFound | ErrorCode::UnknownRoom => {
                StatusCode::NOT_FOUND
            }
            ErrorCode::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ErrorCode::UsernameTaken | ErrorCode::NoPassword | ErrorCode::LastSignInMethod => {
                StatusCode::CONFLICT
            }
            ErrorCode::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::RateLimited | ErrorCode::TooManySockets => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::Busy => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A socket close: its code and reason.
pub type Close = (u16, &'static str);

/// Normal end, when the socket's read side is done.
pub const BYE: Close = (1000, "bye");
/// The server is stopping; the client reconnects and resumes with `since`.
pub const GOING_AWAY: Close = (1001, "server shutting down");
/// A frame that is not a WebSocket frame.
pub const PROTOCOL_ERROR: Close = (1002, "protocol error");
/// Too many refused frames.
pub const FLOODING: Close = (1008, "flooding");
/// A frame larger than `ws.max_frame_bytes`.
pub const TOO_BIG: Close = (1009, "frame too large");
/// A client that does not read what it is sent (full queue or stalled write).
pub const SLOW_CONSUMER: Close = (1013, "slow consumer");
/// The session the socket was opened with ended (logout, expiry, password change).
pub const SESSION_ENDED: Close = (4401, "session ended");
/// No frame and no pong for `ws.idle_timeout_secs`.
pub const IDLE: Close = (4408, "idle timeout");

#[cfg(test)]
mod tests {
    use super::*;

    /// The serde name, the wire name and the documentation agree, for every code.
    #[test]
    fn every_code_is_written_one_way_and_documented() {
        let protocol =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/protocol.md"))
                .unwrap();
        for code in ErrorCode::ALL {
            let serde = serde_json::to_value(code).unwrap();
            assert_eq!(serde.as_str(), Some(code.as_str()));
            assert!(
                protocol.contains(&format!("`{}`", code.as_str())),
                "docs/protocol.md does not mention `{code}`"
            );
        }
        for (code, reason) in [
            BYE,
            GOING_AWAY,
            PROTOCOL_ERROR,
            FLOODING,
            TOO_BIG,
            SLOW_CONSUMER,
            SESSION_ENDED,
            IDLE,
        ] {
            assert!(
                protocol.contains(&code.to_string()),
                "docs/protocol.md does not mention close code {code} ({reason})"
            );
        }
    }
}
