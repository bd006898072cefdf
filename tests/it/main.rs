//! The integration tests: one binary, a module per area (as ripgrep does), so that a change
//! relinks one test binary rather than twenty. Every module starts the real server (in this
//! process with `common::TestServer`, or the binary with `common::process`) and talks to it
//! with real clients. Run one area with `cargo test --test it ws_chat::`.
//!
//! What is process-wide is shared by every test here: the metrics recorder (a test that reads
//! `/metrics` runs the binary), the umask (a test that needs one starts the binary under it).

mod common;

mod abuse_limits;
mod accounts;
mod authz_matrix;
mod backup;
mod bots;
mod bots_process;
mod cli;
mod durability;
mod edits;
mod faults;
mod file_modes;
mod kill_loop;
mod names;
mod oauth;
mod packaging;
mod readme;
mod reads;
mod rooms_http;
mod security_headers;
mod sessions;
mod smoke;
mod ws_chat;
mod ws_host;
mod ws_limits;
mod ws_memory;
