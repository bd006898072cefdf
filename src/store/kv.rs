//! The bots' key-value stores: one namespace per plugin, with a quota.
//!
//! Keys: `bot_kv` plugin name ++ 0x00 ++ the plugin's key -> its value (raw bytes).

use super::{Result, Store};

/// Longest key a plugin may use, in bytes.
pub const KV_MAX_KEY_BYTES: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum KvError {
    #[error("keys are 1 to {KV_MAX_KEY_BYTES} bytes")]
    InvalidKey,
    #[error("the plugin's store would exceed its quota of {0} bytes")]
    QuotaExceeded(u64),
    #[error(transparent)]
    Store(#[from] super::StoreError),
}

impl From<sled::Error> for KvError {
    fn from(error: sled::Error) -> Self {
        KvError::Store(error.into())
    }
}

fn prefix(plugin: &str) -> Vec<u8> {
    let mut key = plugin.as_bytes().to_vec();
    key.push(0);
    key
}

fn full_key(plugin: &str, key: &str) -> Result<Vec<u8>, KvError> {
    if key.is_empty() || key.len() > KV_MAX_KEY_BYTES {
        return Err(KvError::InvalidKey);
    }
    let mut full = prefix(plugin);
    full.extend_from_slice(key.as_bytes());
    Ok(full)
}

impl super::WriteError for KvError {
    fn store_failure(&self) -> bool {
        matches!(self, KvError::Store(e) if e.is_failure())
    }
}

impl Store {
    pub fn kv_get(&self, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        let full = full_key(plugin, key)?;
        Ok(self.trees()?.bot_kv.get(full)?.map(|v| v.to_vec()))
    }

    /// Stores a value unless the plugin's keys and values would then take more than `quota`
    /// bytes. Two instances of one plugin writing at the same moment can overshoot the quota by
    /// one value; the next write is then refused.
    pub fn kv_set(&self, plugin: &str, key: &str, value: &[u8], quota: u64) -> Result<(), KvError> {
        let full = full_key(plugin, key)?;
        let value = super::bounded(value.to_vec())?;
        let used = self.kv_usage(plugin)?;
        let old = self
            .trees()?
            .bot_kv
            .get(&full)?
            .map_or(0, |v| (key.len() + v.len()) as u64);
        let after = used - old.min(used) + (key.len() + value.len()) as u64;
        if after > quota {
            return Err(KvError::QuotaExceeded(quota));
        }
        self.write(|t| {
            t.bot_kv.insert(full, value)?;
            Ok(())
        })
    }

    pub fn kv_delete(&self, plugin: &str, key: &str) -> Result<(), KvError> {
        let full = full_key(plugin, key)?;
        self.write(|t| {
            t.bot_kv.remove(full)?;
            Ok(())
        })
    }

    /// Keys of a plugin that start with `start`, in byte order, at most `limit`.
    pub fn kv_keys(&self, plugin: &str, start: &str, limit: usize) -> Result<Vec<String>, KvError> {
        let skip = prefix(plugin).len();
        let mut scan = prefix(plugin);
        scan.extend_from_slice(start.as_bytes());
        let mut keys = Vec::new();
        for entry in self.trees()?.bot_kv.scan_prefix(scan).take(limit) {
            let (key, _) = entry?;
            keys.push(String::from_utf8_lossy(&key[skip..]).into_owned());
        }
        Ok(keys)
    }

    /// Bytes of keys and values a plugin keeps.
    pub fn kv_usage(&self, plugin: &str) -> Result<u64, KvError> {
        let skip = prefix(plugin).len();
        let mut used = 0u64;
        for entry in self.trees()?.bot_kv.scan_prefix(prefix(plugin)) {
            let (key, value) = entry?;
            used += (key.len() - skip + value.len()) as u64;
        }
        Ok(used)
    }
}
