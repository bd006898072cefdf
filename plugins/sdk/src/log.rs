//! Lines in hearth's log, tagged with the bot's name. The operator reads them; the room does not.

use crate::bindings::hearth::bot::host::{self, Level};

/// Logs detail useful only when looking into a problem.
pub fn debug(message: &str) {
    host::log(Level::Debug, message);
}

/// Logs a normal event.
pub fn info(message: &str) {
    host::log(Level::Info, message);
}

/// Logs something unexpected that the bot got past.
pub fn warn(message: &str) {
    host::log(Level::Warn, message);
}

/// Logs a failure.
pub fn error(message: &str) {
    host::log(Level::Error, message);
}
