//! The bot's own key-value store, kept durably by hearth.
//!
//! Keys are 1 to 256 bytes; values are any bytes. The whole store is held to a quota of bytes,
//! keys plus values (`kv_quota_bytes` in hearth's config, 1 MiB unless changed), and a write
//! that would pass it fails with [`KvError::QuotaExceeded`]. Every bot has a store of its own.

use std::fmt;

use crate::bindings::hearth::bot::kv as wit;

/// Why a write failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvError {
    /// The write would take the bot past its quota of bytes, keys plus values.
    QuotaExceeded,
    /// The key is empty or longer than 256 bytes.
    InvalidKey,
    /// Hearth could not store it; trying again later may work. Says why.
    Internal(String),
}

impl fmt::Display for KvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KvError::QuotaExceeded => f.write_str("storage quota exceeded"),
            KvError::InvalidKey => f.write_str("invalid key (keys are 1 to 256 bytes)"),
            KvError::Internal(detail) => write!(f, "storage failed: {detail}"),
        }
    }
}

impl std::error::Error for KvError {}

/// The value stored under `key`, if any.
pub fn get(key: &str) -> Option<Vec<u8>> {
    wit::get(key)
}

/// The value stored under `key` as text, if any; bytes that are not UTF-8 become U+FFFD.
pub fn get_string(key: &str) -> Option<String> {
    get(key).map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
}

/// Stores `value` under `key`, replacing what was there.
pub fn set(key: &str, value: impl AsRef<[u8]>) -> Result<(), KvError> {
    wit::set(key, value.as_ref()).map_err(from_wit)
}

/// Removes `key`; removing a key that does not exist is not an error.
pub fn delete(key: &str) -> Result<(), KvError> {
    wit::delete(key).map_err(from_wit)
}

/// The keys that start with `prefix`, in byte order, at most `limit` of them.
pub fn keys(prefix: &str, limit: u32) -> Vec<String> {
    wit::keys(prefix, limit)
}

fn from_wit(error: wit::KvError) -> KvError {
    match error {
        wit::KvError::QuotaExceeded => KvError::QuotaExceeded,
        wit::KvError::InvalidKey => KvError::InvalidKey,
        wit::KvError::Internal(detail) => KvError::Internal(detail),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_convert_and_read_as_short_phrases() {
        let cases = [
            (
                wit::KvError::QuotaExceeded,
                KvError::QuotaExceeded,
                "storage quota exceeded",
            ),
            (
                wit::KvError::InvalidKey,
                KvError::InvalidKey,
                "invalid key (keys are 1 to 256 bytes)",
            ),
            (
                wit::KvError::Internal("disk".into()),
                KvError::Internal("disk".into()),
                "storage failed: disk",
            ),
        ];
        for (error, expected, text) in cases {
            let converted = from_wit(error);
            assert_eq!(converted, expected);
            assert_eq!(converted.to_string(), text);
        }
    }
}
