//! Hearth: a self-hosted real-time chat server in one binary.
//!
//! # Layout
//!
//! Dependencies run one way, from the bottom of this list to the top (`src/layering.rs`, a
//! test, checks that no module reaches one above it and that no layer has a cycle):
//!
//! ```text
//! clock, config, files, ids, names → store → protocol → auth, limits, sockets, bots, rooms
//!   → http → api, oauth, ws, web → app; admin and backup beside app
//! ```
//!
//! - [`clock`]: wall-clock time in milliseconds, as records keep it.
//! - [`config`]: typed configuration layered by figment (defaults < config.toml < `HEARTH_*`
//!   environment < flags) and its validation; every error names the key and its source.
//! - [`files`]: file modes: the process umask, a private data directory, the warning for an
//!   open one.
//! - [`ids`]: identifiers that carry a promise as types: [`ids::RoomCode`] and
//!   [`ids::Username`], always canonical; [`ids::Seq`], a place in a room's history.
//! - [`names`]: display names and room names made safe to show (no format characters, NFKC)
//!   and the check that a reaction is a real emoji.
//! - [`store`]: the sled database: typed trees, schema version, the group-commit writer that
//!   makes writes durable (flush + fsync, batched), and the on-disk layout that keeps them
//!   through a power cut (rebuilding older databases into it); the eraser that rewrites the
//!   database after a delete or an edit, so the old text leaves the disk.
//! - [`protocol`]: the wire and nothing else: client frames, server frames, rooms and members
//!   as the wire shows them, the error codes of HTTP and the socket alike, close codes.
//! - [`auth`]: usernames, argon2id passwords, session tokens, login throttling, allowed origins.
//! - [`limits`]: abuse limits shared by HTTP and the socket: room creations per user, unknown
//!   room codes per client address, open sockets per user and per address.
//! - [`sockets`]: the open sockets as rooms see them: one bounded queue each, and all of them
//!   by user.
//! - [`bots`]: WebAssembly bot plugins: the wasmtime sandbox, the imports hearth grants, the
//!   durable command queue and its workers, bundled plugins and the live plugins folder. Bots
//!   post their answers through [`bots::Answers`], which the rooms implement.
//! - [`rooms`]: the room actors that own each active room, and the registry that
//!   starts and retires them.
//! - [`http`]: what the HTTP edges share: [`http::error::AppError`], the one error type
//!   handlers answer with, and the extractors for the signed-in user and the client address.
//! - [`api`]: the JSON API under `/api`.
//! - [`oauth`]: sign-in with GitHub, Google and generic OAuth2/OIDC providers: the
//!   authorization-code flow with PKCE and a state cookie, identities mapped to local users, and
//!   the browser routes `/auth/{provider}/start|callback` with their error pages.
//! - [`ws`]: the `/ws` endpoint: one read and one write task per socket, the frame rate.
//! - [`web`]: the embedded web UI (rust-embed) with its client-route fallback.
//! - [`app`]: the shared state, the router over the edges, and [`run`], the entry point that
//!   binaries and tests call with a bound listener and a shutdown future.
//! - [`admin`]: account administration for `hearth user …`, straight on the data directory.
//! - [`backup`]: `hearth backup`, `restore` and `export`: the backup file format, the control
//!   socket through which a running server hands out consistent snapshots, the daily automatic
//!   backups into the data directory, the JSON export.
//!
//! `main.rs` only parses the command line and calls into these.

pub mod admin;
pub mod api;
pub mod app;
pub mod auth;
pub mod backup;
pub mod bots;
pub mod clock;
pub mod config;
pub mod files;
pub mod http;
pub mod ids;
pub mod limits;
pub mod names;
pub mod oauth;
pub mod protocol;
pub mod rooms;
pub mod sockets;
pub mod store;
pub mod web;
pub mod ws;

#[cfg(test)]
mod layering;

pub use app::{run, ServeError, Server};
pub use config::Config;
