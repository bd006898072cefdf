//! `[bots]`: how bot plugins run (limits, retries, the plugins folder), and `[plugin.NAME]`:
//! what one plugin may reach and the settings it reads.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::oauth::REDACTED;
use super::ConfigError;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BotsConfig {
    /// Run bot plugins at all. Off: every slash-command but /help is unknown.
    pub enabled: bool,
    /// Where dropped-in plugins live; empty means `<data_dir>/plugins`.
    pub plugins_dir: PathBuf,
    /// How often the plugins folder is looked at for new, changed and removed files.
    pub scan_interval_ms: u64,
    /// CPU time one call may spend in the plugin (epoch interruption).
    pub call_cpu_ms: u64,
    /// Wall-clock time one call may take, host calls such as HTTP included.
    pub call_timeout_ms: u64,
    /// Linear memory one instance may grow to, in MiB; growing past it traps.
    pub memory_mb: u64,
    /// The plugin's WebAssembly stack, in KiB.
    pub max_stack_kb: u64,
    /// Calls of one plugin running at once (an answer waiting to be stored does not count).
    pub concurrency: usize,
    /// Threads plugin calls run on, apart from those serving chat; 0 = one fewer than the
    /// cores (at least one).
    pub threads: usize,
    /// Calls of all plugins together running at once; 0 = no limit but `concurrency`.
    pub max_calls: usize,
    /// Commands waiting for one plugin; beyond it a command gets `rate_limited`.
    pub max_queued: usize,
    /// Tries of a command whose call traps or times out, the first included.
    pub max_attempts: u32,
    /// Wait before the second try; it doubles for each later one.
    pub retry_backoff_ms: u64,
    /// Commands in a row that a plugin fails for good before it is paused; 0 = never paused.
    pub pause_after_failures: u32,
    /// How long a paused plugin rests; its commands wait in the queue meanwhile.
    pub pause_secs: u64,
    /// Replies and reactions one command may produce; more are dropped.
    pub max_actions: usize,
    /// Bytes (keys plus values) each plugin may keep in its key-value store.
    pub kv_quota_bytes: u64,
    /// Limit on one HTTP request of a plugin, from connecting to the last byte.
    pub http_timeout_ms: u64,
    /// Largest HTTP response body a plugin may receive.
    pub http_max_response_bytes: u64,
    /// How long answered and failed commands stay in the queue's records.
    pub job_retention_secs: u64,
    /// Disk for compiled plugins (`<data_dir>/plugin-cache`), in MiB; the least used go first.
    pub cache_mb: u64,
}

impl Default for BotsConfig {
    fn default() -> Self {
        BotsConfig {
            enabled: true,
            plugins_dir: PathBuf::new(),
            scan_interval_ms: 2000,
            call_cpu_ms: 2000,
            call_timeout_ms: 30_000,
            memory_mb: 32,
            max_stack_kb: 512,
            concurrency: 2,
            threads: 0,
            max_calls: 4,
            max_queued: 1000,
            max_attempts: 3,
            retry_backoff_ms: 1000,
            pause_after_failures: 5,
            pause_secs: 300,
            max_actions: 5,
            kv_quota_bytes: 1024 * 1024,
            http_timeout_ms: 10_000,
            http_max_response_bytes: 1024 * 1024,
            job_retention_secs: 86_400,
            cache_mb: 64,
        }
    }
}

impl BotsConfig {
    /// The plugins folder, resolved against the data directory.
    pub fn plugins_dir(&self, data_dir: &Path) -> PathBuf {
        if self.plugins_dir.as_os_str().is_empty() {
            data_dir.join("plugins")
        } else {
            self.plugins_dir.clone()
        }
    }

    pub(super) fn validate(&self, source_of: &dyn Fn(&str) -> String) -> Result<(), ConfigError> {
        let positive = [
            ("bots.scan_interval_ms", self.scan_interval_ms),
            ("bots.call_cpu_ms", self.call_cpu_ms),
            ("bots.call_timeout_ms", self.call_timeout_ms),
            ("bots.memory_mb", self.memory_mb),
            ("bots.max_stack_kb", self.max_stack_kb),
            ("bots.concurrency", self.concurrency as u64),
            ("bots.max_queued", self.max_queued as u64),
            ("bots.max_attempts", u64::from(self.max_attempts)),
            ("bots.max_actions", self.max_actions as u64),
            ("bots.http_timeout_ms", self.http_timeout_ms),
            ("bots.http_max_response_bytes", self.http_max_response_bytes),
            ("bots.job_retention_secs", self.job_retention_secs),
            ("bots.cache_mb", self.cache_mb),
        ];
        if let Some((key, _)) = positive.iter().find(|(_, value)| *value == 0) {
            return Err(ConfigError::one(key, source_of(key), "must be at least 1"));
        }
        // The async stack a call runs on must hold the wasm stack and the host's frames.
        if self.max_stack_kb > 8 * 1024 {
            return Err(ConfigError::one(
                "bots.max_stack_kb",
                source_of("bots.max_stack_kb"),
                "must be at most 8192",
            ));
        }
        if self.memory_mb > 4096 {
            return Err(ConfigError::one(
                "bots.memory_mb",
                source_of("bots.memory_mb"),
                "must be at most 4096 (wasm32 addresses 4 GiB)",
            ));
        }
        Ok(())
    }
}

/// `[plugin.NAME]`: one plugin's grants. NAME is the plugin's manifest name. Its settings are
/// where a bot's API keys go, so they are secrets: `Debug` and `hearth config` show their keys
/// and not their values ([`redact_settings`]).
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct PluginConfig {
    /// Load this plugin at all.
    pub enabled: bool,
    /// Host names (or IP addresses) the plugin may send HTTP requests to, matched exactly.
    pub allow_hosts: Vec<String>,
    /// Let those hosts resolve to loopback, private, link-local and other non-public addresses.
    pub allow_private_addresses: bool,
    /// Strings the plugin reads with `setting("key")`.
    pub settings: BTreeMap<String, String>,
}

impl Default for PluginConfig {
    fn default() -> Self {
        PluginConfig {
            enabled: true,
            allow_hosts: Vec::new(),
            allow_private_addresses: false,
            settings: BTreeMap::new(),
        }
    }
}

impl std::fmt::Debug for PluginConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let settings: BTreeMap<&str, &str> = self
            .settings
            .iter()
            .map(|(key, value)| (key.as_str(), shown(value)))
            .collect();
        f.debug_struct("PluginConfig")
            .field("enabled", &self.enabled)
            .field("allow_hosts", &self.allow_hosts)
            .field("allow_private_addresses", &self.allow_private_addresses)
            .field("settings", &settings)
            .finish()
    }
}

/// How a setting's value is shown: redacted, or `""` when empty (as a secret is).
fn shown(value: &str) -> &'static str {
    if value.is_empty() {
        ""
    } else {
        REDACTED
    }
}

/// Replaces the value of every `[plugin.NAME.settings]` entry in a rendered configuration
/// with the redaction marker (`hearth config`). Serialization itself keeps the values: the
/// defaults are layered through it.
pub fn redact_settings(config: &mut toml::Value) {
    let Some(plugins) = config.get_mut("plugin").and_then(toml::Value::as_table_mut) else {
        return;
    };
    for (_, plugin) in plugins.iter_mut() {
        let Some(settings) = plugin
            .get_mut("settings")
            .and_then(toml::Value::as_table_mut)
        else {
            continue;
        };
        for (_, value) in settings.iter_mut() {
            let text = value.as_str().unwrap_or("x");
            *value = toml::Value::String(shown(text).to_string());
        }
    }
}

/// The grants of the bundled plugins: the stock-quote bot reaches Stooq.
pub fn default_plugins() -> BTreeMap<String, PluginConfig> {
    let stocks = PluginConfig {
        allow_hosts: vec!["stooq.com".into()],
        settings: BTreeMap::from([("base_url".into(), "https://stooq.com".into())]),
        ..PluginConfig::default()
    };
    BTreeMap::from([("stocks".into(), stocks)])
}

pub(super) fn validate_plugins(
    plugins: &BTreeMap<String, PluginConfig>,
    source_of: &dyn Fn(&str) -> String,
) -> Result<(), ConfigError> {
    for (name, plugin) in plugins {
        for (key, value) in &plugin.settings {
            if value == REDACTED {
                let key = format!("plugin.{name}.settings.{key}");
                return Err(ConfigError::one(
                    &key,
                    source_of(&key),
                    "is the redaction marker `hearth config` prints; put the real value here",
                ));
            }
        }
        for host in &plugin.allow_hosts {
            let bad = host.is_empty()
                || host.contains(['/', ':', '@', ' ', '?', '#'])
                    && host.parse::<std::net::IpAddr>().is_err();
            if bad {
                let key = format!("plugin.{name}.allow_hosts");
                return Err(ConfigError::one(
                    &key,
                    source_of(&key),
                    format!("{host:?} is not a host name or IP address (no scheme, port or path)"),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use figment::providers::{Format, Toml};
    use figment::Figment;

    use super::*;
    use crate::Config;

    const KEY: &str = "sk-live-0123456789";

    fn with_api_key() -> Config {
        let mut config = Config::default();
        let stocks = config.plugin.get_mut("stocks").unwrap();
        stocks.settings.insert("api_key".into(), KEY.into());
        config
    }

    #[test]
    fn hearth_config_and_debug_show_settings_keys_not_values() {
        let config = with_api_key();
        let shown = config.to_toml();
        assert!(!shown.contains(KEY), "{shown}");
        assert!(!shown.contains("https://stooq.com"), "{shown}");
        assert!(
            shown.contains(&format!("api_key = \"{REDACTED}\"")),
            "{shown}"
        );
        let debug = format!("{config:?}");
        assert!(!debug.contains(KEY), "{debug}");
        // The values themselves are kept: the plugin reads them.
        assert_eq!(config.plugin["stocks"].settings["api_key"], KEY);
    }

    #[test]
    fn the_redaction_marker_is_refused_as_a_value() {
        let toml = format!("[plugin.stocks.settings]\napi_key = \"{REDACTED}\"\n");
        let config: Config =
            Figment::from(figment::providers::Serialized::defaults(Config::default()))
                .merge(Toml::string(&toml))
                .extract()
                .unwrap();
        let error = validate_plugins(&config.plugin, &|_| "test".into()).unwrap_err();
        assert!(error.to_string().contains("plugin.stocks.settings.api_key"));
    }
}
