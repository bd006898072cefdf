//! What hearth grants a plugin: its imports (`http`, `kv`, `host` of the WIT world), each
//! bound to that plugin's own grants.

use std::collections::BTreeMap;

use super::http::PluginHttp;
use super::runtime::hearth::bot::{host, http, kv, types};
use super::runtime::HostState;
use crate::store::kv::KvError;
use crate::store::Store;

/// Longest log message kept from a plugin, in characters, and messages kept per call.
const LOG_MESSAGE_MAX_CHARS: usize = 1000;
const LOG_MESSAGES_PER_CALL: u32 = 100;
/// Most keys one `keys` call answers.
const KV_KEYS_MAX: u32 = 1000;

/// One plugin's grants, shared by all its calls.
pub struct Grants {
    pub plugin: String,
    /// `None` where no database is open (`hearth plugin check`): `kv` then fails softly.
    pub store: Option<Store>,
    pub kv_quota: u64,
    pub settings: BTreeMap<String, String>,
    pub http: PluginHttp,
}

impl types::Host for HostState {}

impl http::Host for HostState {
    async fn send(&mut self, request: http::Request) -> Result<http::Response, http::HttpError> {
        let grants = self.grants.clone();
        let outcome = grants.http.send(request).await;
        if let Err(error) = &outcome {
            tracing::debug!(plugin = %grants.plugin, ?error, "plugin HTTP request failed");
        }
        outcome
    }
}

impl kv::Host for HostState {
    fn get(&mut self, key: String) -> Option<Vec<u8>> {
        let store = self.grants.store.as_ref()?;
        match store.kv_get(&self.grants.plugin, &key) {
            Ok(value) => value,
            Err(error) => {
                tracing::warn!(plugin = %self.grants.plugin, %error, "kv get failed");
                None
            }
        }
    }

    fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), kv::KvError> {
        let grants = &self.grants;
        let store = grants.store.as_ref().ok_or_else(no_store)?;
        store
            .kv_set(&grants.plugin, &key, &value, grants.kv_quota)
            .map_err(kv_error)
    }

    fn delete(&mut self, key: String) -> Result<(), kv::KvError> {
        let store = self.grants.store.as_ref().ok_or_else(no_store)?;
        store.kv_delete(&self.grants.plugin, &key).map_err(kv_error)
    }

    fn keys(&mut self, prefix: String, limit: u32) -> Vec<String> {
        let Some(store) = self.grants.store.as_ref() else {
            return Vec::new();
        };
        let limit = limit.min(KV_KEYS_MAX) as usize;
        store
            .kv_keys(&self.grants.plugin, &prefix, limit)
            .unwrap_or_else(|error| {
                tracing::warn!(plugin = %self.grants.plugin, %error, "kv keys failed");
                Vec::new()
            })
    }
}

fn no_store() -> kv::KvError {
    kv::KvError::Internal("no store is open here".into())
}

fn kv_error(error: KvError) -> kv::KvError {
    match error {
        KvError::InvalidKey => kv::KvError::InvalidKey,
        KvError::QuotaExceeded(_) => kv::KvError::QuotaExceeded,
        KvError::Store(crate::store::StoreError::TooLarge { max, .. }) => {
            kv::KvError::Internal(format!("a value holds at most {max} bytes"))
        }
        KvError::Store(e) => {
            tracing::error!(error = %e, "a plugin's kv write failed");
            kv::KvError::Internal("the server could not store it".into())
        }
    }
}

impl host::Host for HostState {
    fn log(&mut self, level: host::Level, message: String) {
        if !self.count_log_line(LOG_MESSAGES_PER_CALL) {
            return;
        }
        let message: String = message.chars().take(LOG_MESSAGE_MAX_CHARS).collect();
        let plugin = self.grants.plugin.as_str();
        match level {
            host::Level::Debug => tracing::debug!(target: "hearth::plugin", plugin, "{message}"),
            host::Level::Info => tracing::info!(target: "hearth::plugin", plugin, "{message}"),
            host::Level::Warn => tracing::warn!(target: "hearth::plugin", plugin, "{message}"),
            host::Level::Error => tracing::error!(target: "hearth::plugin", plugin, "{message}"),
        }
    }

    fn now_ms(&mut self) -> u64 {
        crate::clock::now_ms()
    }

    fn setting(&mut self, key: String) -> Option<String> {
        self.grants.settings.get(&key).cloned()
    }
}
