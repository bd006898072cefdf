//! The wire, and nothing else: what clients send and what the server answers, over the socket
//! and in HTTP bodies. Below `rooms` and `ws` alike, so that neither needs the other.
//!
//! - [`client`]: client frames, one [`Envelope`] (`ref`, `room`) with the [`Action`]
//!   flattened in, and the parser.
//! - [`server`]: server frames ([`ServerFrame`]), serialized once per frame.
//! - [`view`]: rooms and members as the wire shows them.
//! - [`codes`]: [`ErrorCode`], the error codes of HTTP answers and socket errors alike, and the
//!   socket's close codes.
//!
//! History items are the store's [`Item`]s, which serialize as the wire shows them.

pub mod client;
pub mod codes;
pub mod server;
pub mod view;

pub use crate::store::rooms::Item;
pub use client::{parse, Action, Envelope, FrameError, MAX_REF_CHARS};
pub use codes::ErrorCode;
pub use server::ServerFrame;
pub use view::{CommandView, LimitsView, MemberView, RoomView, Standing};
