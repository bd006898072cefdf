//! What the HTTP edges (`api`, `oauth`, `ws`, `web`) share, below all of them.
//!
//! - [`error`]: [`error::AppError`], the one error type handlers answer with: a status and
//!   `{"error": {"code", "message"}}`, the code from `protocol::ErrorCode`; and the body and
//!   path extractors whose rejections take that shape.
//! - [`extract`]: who is asking ([`extract::CurrentUser`]) and from where
//!   ([`extract::ClientIp`]), and the session cookie every way of signing in sets.
//!
//! Extractors take what they need from any state that has it (`FromRef`), so that each edge
//! keeps a state of its own.

pub mod error;
pub mod extract;
