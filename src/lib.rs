//! Hearth: a self-hosted real-time chat server in one binary.
//!
//! # Layout
//!
//! - [`config`]: typed configuration layered by figment (defaults < config.toml < `HEARTH_*`
//!   environment < flags) and its validation; every error names the key and its source.
//! - [`files`]: file modes: the process umask, a private data directory, the warning for an
//!   open one.
//! - [`store`]: the sled database: typed trees, schema version, the group-commit writer that
//!   makes writes durable (flush + fsync, batched), and the on-disk layout that keeps them
//!   through a power cut (rebuilding older databases into it).
//! - [`auth`]: usernames, argon2id passwords, session tokens, login throttling, allowed origins
//!   and the extractors that tell handlers who is asking.
//! - [`oauth`]: sign-in with GitHub, Google and generic OAuth2/OIDC providers: the
//!   authorization-code flow with PKCE and a state cookie, identities mapped to local users, and
//!   the browser routes `/auth/{provider}/start|callback` with their error pages.
//! - [`rooms`]: room codes, the room actors that own each active room, and the registry that
//!   starts and retires them.
//! - [`bots`]: WebAssembly bot plugins: the wasmtime sandbox, the imports hearth grants, the
//!   durable command queue and its workers, bundled plugins and the live plugins folder.
//! - [`ws`]: the `/ws` endpoint: frames, one read and one write task per socket, limits.
//! - [`api`]: the JSON API under `/api`.
//! - [`web`]: the embedded web UI (rust-embed) with its client-route fallback.
//! - [`limits`]: abuse limits shared by HTTP and the socket: room creations per user, unknown
//!   room codes per client address, open sockets per user and per address.
//! - [`names`]: display names and room names made safe to show (no format characters, NFKC)
//!   and the check that a reaction is a real emoji.
//! - [`error`]: [`error::AppError`], the single error type HTTP handlers answer with.
//! - [`server`]: shared state, the router, and [`run`], the entry point that binaries and tests
//!   call with a bound listener and a shutdown future.
//! - [`admin`]: account administration for `hearth user …`, straight on the data directory.
//! - [`backup`]: `hearth backup`, `restore` and `export`: the backup file format, the control
//!   socket through which a running server hands out consistent snapshots, the daily automatic
//!   backups into the data directory, the JSON export.
//!
//! `main.rs` only parses the command line and calls into these.

pub mod admin;
pub mod api;
pub mod auth;
pub mod backup;
pub mod bots;
pub mod config;
pub mod error;
pub mod files;
pub mod limits;
pub mod names;
pub mod oauth;
pub mod rooms;
pub mod server;
pub mod store;
pub mod web;
pub mod ws;

pub use config::Config;
pub use server::{run, ServeError, Server};
