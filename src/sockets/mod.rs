//! The sockets open to this server, as rooms and the API see them (the `ws` edge serves them).
//!
//! - [`outbox`]: one socket: its bounded outbound queue of serialized frames and its close
//!   signal ([`ConnHandle`]).
//! - [`hub`]: every open socket by user ([`Connections`]): kicks, logouts, shutdown.

pub mod hub;
pub mod outbox;

pub use hub::Connections;
pub use outbox::{ConnHandle, ConnId, QueueBound};
