//! Typed configuration, layered with figment:
//! built-in defaults < config.toml < `HEARTH_*` environment < command-line flags.
//!
//! Every key has a default here and is documented in the repo's `config.toml`. Extraction is
//! strict (unknown keys are errors), and [`Config::validate`] checks what serde cannot. Every
//! error names the key and the layer it came from, so `hearth` can exit 2 with a message a
//! person can act on.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::{Figment, Metadata};
use serde::{Deserialize, Serialize};

mod bots;
mod oauth;
pub use bots::{default_plugins, BotsConfig, PluginConfig};
pub use oauth::{
    check_provider_url, check_url, normalize_issuer, GenericProviderConfig, GithubConfig,
    GoogleConfig, OAuthConfig, Secret, DISCOVERY_PATH, PRESETS, REDACTED,
};

/// The smallest `http.max_header_bytes` other than 0: the HTTP library reads a request head
/// into a buffer of at least this size.
pub const MIN_HEADER_BYTES: usize = 8192;

/// How values set on the command line are named in errors.
const FLAGS_SOURCE: &str = "command-line flags";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address and port the HTTP and WebSocket server listens on.
    pub bind: SocketAddr,
    /// Where the sled database, the plugins folder and the compiled-plugin cache live. A
    /// relative path is relative to the directory hearth was started in; [`Config::load`]
    /// makes it absolute.
    pub data_dir: PathBuf,
    /// The URL people open; empty means `http://<bind>`. Decides the cookie's `Secure` flag and
    /// is an allowed Origin.
    pub public_url: String,
    /// Further origins (scheme://host[:port]) allowed to use cookie sessions and the socket.
    pub allowed_origins: Vec<String>,
    /// Take the client address from `X-Forwarded-For` (only behind a reverse proxy you run).
    pub trust_proxy_headers: bool,
    /// Log filter in `tracing` syntax, e.g. `info` or `hearth=debug`.
    pub log: String,
    pub http: HttpConfig,
    pub auth: AuthConfig,
    pub rooms: RoomsConfig,
    pub ws: WsConfig,
    pub oauth: OAuthConfig,
    pub store: StoreConfig,
    pub backup: BackupConfig,
    pub bots: BotsConfig,
    /// `[plugin.NAME]`: what each bot plugin may reach, and its settings.
    pub plugin: BTreeMap<String, PluginConfig>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// sled's page cache, in MiB (sled's own default of 1 GiB is too much for a small board).
    pub cache_mb: u64,
    /// Read every record at every start, even when the database is exactly as a clean stop
    /// left it (by default only a start after a crash, or after anything else wrote to the
    /// files, pays for the full check).
    pub check_every_start: bool,
    /// How long after a message is deleted or edited the database is rewritten without its
    /// old text, in milliseconds (changes within it share one rewrite; after a rewrite that
    /// took T the next waits at least 10 T). 0: at once.
    pub erase_after_ms: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            cache_mb: 64,
            check_every_start: false,
            erase_after_ms: 1000,
        }
    }
}

/// `[backup]`: the automatic daily backups into `<data_dir>/backups` (see `backup::auto`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackupConfig {
    /// Write a backup once a day while hearth runs.
    pub auto: bool,
    /// How many automatic backups to keep; the oldest beyond it are removed.
    pub keep: u32,
    /// The hour of the day, in UTC (0 to 23), when the daily backup is written.
    pub hour: u8,
}

impl Default for BackupConfig {
    fn default() -> Self {
        BackupConfig {
            auto: true,
            keep: 7,
            hour: 3,
        }
    }
}

impl StoreConfig {
    pub fn cache_bytes(&self) -> u64 {
        self.cache_mb * 1024 * 1024
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Largest accepted request body, in bytes; 0 = no limit.
    pub max_body_bytes: usize,
    /// Largest request head (request line and headers), in bytes; larger is answered 431 and
    /// the connection closed. 0 = hearth sets none (hyper's read buffer, about 400 KB, bounds
    /// it).
    pub max_header_bytes: usize,
    /// A client must send its whole request head within this many seconds of starting it (or
    /// of the previous response, on a kept-alive connection), else the connection is closed:
    /// slowloris. 0 = no limit.
    pub header_timeout_secs: u64,
    /// A request body must arrive within this many seconds, else 408 `request_timeout`.
    /// 0 = no limit.
    pub body_timeout_secs: u64,
    /// On SIGTERM/SIGINT, how long in-flight requests may take before the server stops anyway.
    pub shutdown_grace_secs: u64,
    /// HTTP connections one client address may hold open at once (never more than half the
    /// open-files limit); more are answered 429 and closed. Not applied with
    /// `trust_proxy_headers`, where every connection is the proxy's. 0 = no limit.
    pub max_connections_per_ip: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Whether anyone may create an account over HTTP (`hearth user add` always works).
    pub allow_registration: bool,
    /// How long a session token stays valid after sign-in, however much it is used.
    pub session_ttl_days: u64,
    /// A session not used for this many days ends; 0 = sessions do not idle out.
    pub session_idle_days: u64,
    /// Failed logins for one username from one client address within `login_window_secs`
    /// before that address gets 429 for it; 0 disables.
    pub login_max_failures_per_user: u32,
    /// Failed logins from one client address within `login_window_secs` before 429; 0 disables.
    pub login_max_failures_per_ip: u32,
    /// Length of the login-throttling window, in seconds.
    pub login_window_secs: u64,
    /// Accounts that one client address may try to register per hour (429 beyond); 0 = off.
    pub registrations_per_ip_per_hour: u32,
    /// Password hashes computed at once (each takes 19 MiB); 0 means one per CPU core.
    pub max_concurrent_hashes: usize,
    /// Password hashes waiting for their turn beyond those running; past it sign-in answers
    /// 503 `busy` with `Retry-After`; 0 = no limit.
    pub max_queued_hashes: usize,
    /// Password checks under way at once for one client address (sign-in) or one user
    /// (password change); more get 429; 0 = no limit.
    pub max_hashes_per_ip: usize,
    /// Failed logins for one username, from all addresses together, within
    /// `login_window_secs` after which every sign-in for it waits before its password is
    /// checked (half a second, doubling); 0 = never.
    pub login_slowdown_after: u32,
    /// The longest that wait grows to, in seconds.
    pub login_max_delay_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoomsConfig {
    /// Longest chat message, in characters after trimming; 0 = no limit.
    pub max_text_chars: usize,
    /// Longest room name, in characters after trimming.
    pub max_name_chars: usize,
    /// Typing broadcasts per user and room are at most one per this many milliseconds.
    pub typing_throttle_ms: u64,
    /// A room actor with no subscribed socket for this long stops and frees its memory.
    pub idle_actor_secs: u64,
    /// Commands queued for one room actor before senders wait.
    pub inbox_depth: usize,
    /// Distinct emoji one item can carry.
    pub max_emoji_per_item: usize,
    /// Rooms one user may create per hour (429 beyond); 0 = off.
    pub creations_per_user_per_hour: u32,
    /// Room codes that do not exist one client address may try within
    /// `unknown_code_window_secs` before it may name only rooms it belongs to (guessing codes
    /// by brute force); 0 = off.
    pub unknown_code_max_per_ip: u32,
    /// The window of `unknown_code_max_per_ip`, in seconds.
    pub unknown_code_window_secs: u64,
    /// Bytes of items one `joined` or `history` answer (or HTTP history page) carries at
    /// most; fewer items are sent, with `more: true`, and the client pages for the rest.
    pub max_page_bytes: usize,
    /// Unread items counted per room for a room object's `unread` and `mentions`; past it the
    /// counts stop (and say so by equalling it), so a room left unread for a year costs no more
    /// to list than this many items.
    pub max_unread_counted: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WsConfig {
    /// Largest client frame; larger closes the socket with 1009; 0 = no limit.
    pub max_frame_bytes: usize,
    /// Frames queued for one socket; when full the socket is closed with 1013.
    pub outbound_queue: usize,
    /// Bytes the frames queued for one socket may hold; past it the socket is closed with
    /// 1013, and while more than half of it is queued the socket's frames are not read.
    pub outbound_queue_bytes: usize,
    /// `join` and `history` answers one socket may have waiting in its rooms (built, not yet
    /// handed to its queue); its next such frame is not read until one is; 0 = no limit.
    pub max_answers_in_flight: usize,
    /// A write that has not completed after this long closes the socket with 1013.
    pub write_timeout_secs: u64,
    /// Sustained client frames per second per socket; 0 disables rate limiting.
    pub rate_per_sec: u32,
    /// Frames a socket may send at once above the sustained rate.
    pub rate_burst: u32,
    /// Refused (rate-limited) frames within 10 seconds before closing with 1008; 0 = never.
    pub flood_close_after: u32,
    /// Seconds between server pings.
    pub ping_interval_secs: u64,
    /// A socket silent this long (no frame, no pong) is closed with 4408.
    pub idle_timeout_secs: u64,
    /// Open sockets one user may have at once (further upgrades get 429); 0 = no limit.
    pub max_sockets_per_user: usize,
    /// Open sockets one client address may have at once (further upgrades get 429); 0 = no
    /// limit.
    pub max_sockets_per_ip: usize,
}

impl Default for RoomsConfig {
    fn default() -> Self {
        RoomsConfig {
            max_text_chars: 4000,
            max_name_chars: 100,
            typing_throttle_ms: 1000,
            idle_actor_secs: 60,
            inbox_depth: 1024,
            max_emoji_per_item: 32,
            creations_per_user_per_hour: 20,
            unknown_code_max_per_ip: 20,
            unknown_code_window_secs: 600,
            max_page_bytes: 512 << 10,
            max_unread_counted: 1000,
        }
    }
}

impl Default for WsConfig {
    fn default() -> Self {
        WsConfig {
            max_frame_bytes: 64 * 1024,
            outbound_queue: 256,
            outbound_queue_bytes: 2 << 20,
            max_answers_in_flight: 2,
            write_timeout_secs: 10,
            rate_per_sec: 30,
            rate_burst: 60,
            flood_close_after: 100,
            ping_interval_secs: 30,
            idle_timeout_secs: 75,
            max_sockets_per_user: 32,
            max_sockets_per_ip: 256,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: SocketAddr::from(([127, 0, 0, 1], 7878)),
            data_dir: PathBuf::from("hearth-data"),
            public_url: String::new(),
            allowed_origins: Vec::new(),
            trust_proxy_headers: false,
            log: "info".into(),
            http: HttpConfig::default(),
            auth: AuthConfig::default(),
            rooms: RoomsConfig::default(),
            ws: WsConfig::default(),
            oauth: OAuthConfig::default(),
            store: StoreConfig::default(),
            backup: BackupConfig::default(),
            bots: BotsConfig::default(),
            plugin: default_plugins(),
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            max_body_bytes: 64 * 1024,
            max_header_bytes: 16 * 1024,
            header_timeout_secs: 10,
            body_timeout_secs: 30,
            shutdown_grace_secs: 10,
            max_connections_per_ip: 128,
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            allow_registration: true,
            session_ttl_days: 30,
            session_idle_days: 14,
            login_max_failures_per_user: 10,
            login_max_failures_per_ip: 50,
            login_window_secs: 300,
            registrations_per_ip_per_hour: 20,
            max_concurrent_hashes: 0,
            max_queued_hashes: 16,
            max_hashes_per_ip: 2,
            login_slowdown_after: 10,
            login_max_delay_secs: 8,
        }
    }
}

/// Values given on the command line; `None` leaves the lower layers in charge.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Overrides {
    #[serde(skip)]
    pub config_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
}

/// One thing wrong with the configuration: which key, from which layer, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub key: String,
    pub source: String,
    pub problem: String,
}

/// Everything wrong with the configuration, reported together.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    pub problems: Vec<ConfigProblem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(
                f,
                "config key `{}` (from {}): {}",
                p.key, p.source, p.problem
            )?;
        }
        Ok(())
    }
}

impl ConfigError {
    fn one(key: &str, source: String, problem: impl Into<String>) -> Self {
        ConfigError {
            problems: vec![ConfigProblem {
                key: key.to_string(),
                source,
                problem: problem.into(),
            }],
        }
    }
}

/// What a command does with the data directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataDirUse {
    /// It writes there (the server, `hearth user`, `hearth restore`): the directory is created
    /// if missing and must be writable.
    Write,
    /// It only looks (`hearth config`, `hearth plugin`, `hearth backup`, `hearth export`):
    /// nothing is created.
    Read,
}

impl Config {
    /// Layers defaults, the config file, the environment and the flags, makes every path
    /// absolute (relative ones are relative to the working directory hearth was started in,
    /// resolved once, here), then validates. With [`DataDirUse::Write`] the data directory is
    /// created if missing and checked to be writable; with [`DataDirUse::Read`] nothing is
    /// created.
    pub fn load(overrides: &Overrides, data_dir_use: DataDirUse) -> Result<Config, ConfigError> {
        let start_dir = std::env::current_dir().map_err(|e| {
            ConfigError::one(
                "data_dir",
                "the working directory".into(),
                format!("cannot tell which directory hearth was started in: {e}"),
            )
        })?;
        let figment = Self::figment(overrides, &start_dir)?;
        let mut config: Config = figment.extract().map_err(from_figment)?;
        config.make_paths_absolute(&start_dir);
        config.validate(&figment)?;
        if data_dir_use == DataDirUse::Write {
            if let Err(problem) = check_writable_dir(&config.data_dir) {
                let source = describe_source(figment.find_metadata("data_dir"), "data_dir");
                return Err(ConfigError::one("data_dir", source, problem));
            }
        }
        Ok(config)
    }

    /// The configuration file in effect: `--config`, else `$HEARTH_CONFIG`, else
    /// `./config.toml` when there is one; absolute.
    pub fn file_in_effect(overrides: &Overrides) -> Result<Option<PathBuf>, ConfigError> {
        let start_dir = std::env::current_dir().unwrap_or_default();
        Self::config_file(overrides, &start_dir)
    }

    fn config_file(
        overrides: &Overrides,
        start_dir: &Path,
    ) -> Result<Option<PathBuf>, ConfigError> {
        let file = match &overrides.config_file {
            Some(path) if !path.is_file() => {
                return Err(ConfigError::one(
                    "--config",
                    FLAGS_SOURCE.into(),
                    format!("no readable file at {}", path.display()),
                ))
            }
            Some(path) => Some(path.clone()),
            None => std::env::var_os("HEARTH_CONFIG")
                .map(PathBuf::from)
                .or_else(|| Some(PathBuf::from("config.toml")).filter(|p| p.is_file())),
        };
        Ok(file.map(|path| start_dir.join(path)))
    }

    /// Relative paths become absolute against `start_dir`, so that every later use (the
    /// database, the plugins folder, the compiled-plugin cache, the control socket) and every
    /// log line sees one absolute path, whatever the process does with its working directory.
    fn make_paths_absolute(&mut self, start_dir: &Path) {
        self.data_dir = absolute(start_dir, &self.data_dir);
        if !self.bots.plugins_dir.as_os_str().is_empty() {
            self.bots.plugins_dir = absolute(start_dir, &self.bots.plugins_dir);
        }
    }

    fn figment(overrides: &Overrides, start_dir: &Path) -> Result<Figment, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = Self::config_file(overrides, start_dir)? {
            figment = figment.merge(Toml::file_exact(path));
        }
        let env = Env::prefixed("HEARTH_").split("__").ignore(&["config"]);
        Ok(figment.merge(env).merge(Serialized::defaults(overrides)))
    }

    /// Checks what serde cannot: URL shapes and that the data directory is usable.
    fn validate(&self, figment: &Figment) -> Result<(), ConfigError> {
        let source_of = |key: &str| describe_source(figment.find_metadata(key), key);
        if !self.public_url.is_empty() {
            if let Err(problem) = origin_of(&self.public_url) {
                return Err(ConfigError::one(
                    "public_url",
                    source_of("public_url"),
                    problem,
                ));
            }
        }
        for origin in &self.allowed_origins {
            if let Err(problem) = origin_of(origin) {
                return Err(ConfigError::one(
                    "allowed_origins",
                    source_of("allowed_origins"),
                    format!("{origin:?}: {problem}"),
                ));
            }
        }
        if self.log.parse::<tracing_subscriber::EnvFilter>().is_err() {
            return Err(ConfigError::one(
                "log",
                source_of("log"),
                "not a valid log filter",
            ));
        }
        if self.auth.login_window_secs == 0 {
            return Err(ConfigError::one(
                "auth.login_window_secs",
                source_of("auth.login_window_secs"),
                "must be at least 1",
            ));
        }
        if self.auth.session_ttl_days == 0 {
            return Err(ConfigError::one(
                "auth.session_ttl_days",
                source_of("auth.session_ttl_days"),
                "must be at least 1",
            ));
        }
        let positive = [
            ("rooms.max_name_chars", self.rooms.max_name_chars as u64),
            ("rooms.idle_actor_secs", self.rooms.idle_actor_secs),
            ("rooms.inbox_depth", self.rooms.inbox_depth as u64),
            (
                "rooms.max_emoji_per_item",
                self.rooms.max_emoji_per_item as u64,
            ),
            ("ws.outbound_queue", self.ws.outbound_queue as u64),
            (
                "ws.outbound_queue_bytes",
                self.ws.outbound_queue_bytes as u64,
            ),
            ("rooms.max_page_bytes", self.rooms.max_page_bytes as u64),
            (
                "rooms.max_unread_counted",
                self.rooms.max_unread_counted as u64,
            ),
            ("ws.write_timeout_secs", self.ws.write_timeout_secs),
            ("ws.ping_interval_secs", self.ws.ping_interval_secs),
            ("ws.idle_timeout_secs", self.ws.idle_timeout_secs),
            (
                "rooms.unknown_code_window_secs",
                self.rooms.unknown_code_window_secs,
            ),
            ("store.cache_mb", self.store.cache_mb),
            ("backup.keep", u64::from(self.backup.keep)),
        ];
        if let Some((key, _)) = positive.iter().find(|(_, value)| *value == 0) {
            return Err(ConfigError::one(key, source_of(key), "must be at least 1"));
        }
        if self.backup.hour > 23 {
            return Err(ConfigError::one(
                "backup.hour",
                source_of("backup.hour"),
                "must be an hour of the day, 0 to 23 (UTC)",
            ));
        }
        // hyper cannot read a request head into less than its minimum buffer.
        if self.http.max_header_bytes > 0 && self.http.max_header_bytes < MIN_HEADER_BYTES {
            return Err(ConfigError::one(
                "http.max_header_bytes",
                source_of("http.max_header_bytes"),
                format!("must be 0 (no limit of hearth's own) or at least {MIN_HEADER_BYTES}"),
            ));
        }
        // A full page must fit in a socket's queue with room to spare, or every join of a
        // busy room would close the socket.
        if self.rooms.max_page_bytes > self.ws.outbound_queue_bytes / 2 {
            return Err(ConfigError::one(
                "rooms.max_page_bytes",
                source_of("rooms.max_page_bytes"),
                "must be at most half of ws.outbound_queue_bytes",
            ));
        }
        if self.ws.rate_per_sec > 0 && self.ws.rate_burst == 0 {
            return Err(ConfigError::one(
                "ws.rate_burst",
                source_of("ws.rate_burst"),
                "must be at least 1 while ws.rate_per_sec is on",
            ));
        }
        self.oauth.validate(&source_of)?;
        self.bots.validate(&source_of)?;
        bots::validate_plugins(&self.plugin, &source_of)?;
        if self.data_dir.as_os_str().is_empty() {
            return Err(ConfigError::one(
                "data_dir",
                source_of("data_dir"),
                "must name a directory",
            ));
        }
        if self.data_dir.exists() && !self.data_dir.is_dir() {
            return Err(ConfigError::one(
                "data_dir",
                source_of("data_dir"),
                format!("{} is not a directory", self.data_dir.display()),
            ));
        }
        Ok(())
    }

    /// The URL people open, without a trailing slash.
    pub fn public_url(&self) -> String {
        if self.public_url.is_empty() {
            format!("http://{}", self.bind)
        } else {
            self.public_url.trim_end_matches('/').to_string()
        }
    }

    /// Whether cookies must carry `Secure`.
    pub fn is_https(&self) -> bool {
        self.public_url().starts_with("https://")
    }

    /// The effective configuration as TOML, for `hearth config`. Secrets are [`Secret`]s, which
    /// serialize as [`REDACTED`], and plugin settings' values are replaced by it.
    pub fn to_toml(&self) -> String {
        let render = || -> Result<String, String> {
            let mut value = toml::Value::try_from(self).map_err(|e| e.to_string())?;
            bots::redact_settings(&mut value);
            toml::to_string_pretty(&value).map_err(|e| e.to_string())
        };
        render().unwrap_or_else(|e| format!("# cannot render: {e}"))
    }
}

/// Reduces `scheme://host[:port][/]` to its origin, or says what is wrong.
pub fn origin_of(url: &str) -> Result<String, String> {
    let trimmed = url.trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("http://")
        .or_else(|| trimmed.strip_prefix("https://"))
        .ok_or("must start with http:// or https://")?;
    if rest.is_empty() || rest.contains(['/', '?', '#', ' ', '@']) {
        return Err("must be scheme://host[:port] with no path".into());
    }
    Ok(trimmed.to_ascii_lowercase())
}

/// `path` against `base` when relative. Re-collecting the components drops `.` (`..` is kept:
/// what it means depends on symbolic links, which are the file system's business).
fn absolute(base: &Path, path: &Path) -> PathBuf {
    base.join(path).components().collect()
}

fn check_writable_dir(dir: &Path) -> Result<(), String> {
    crate::files::create_private_dir(dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let probe = dir.join(".hearth-write-check");
    std::fs::write(&probe, b"ok").map_err(|e| format!("cannot write in {}: {e}", dir.display()))?;
    // The probe is removed at once, so the directory holds only the database.
    let _ = std::fs::remove_file(probe);
    Ok(())
}

fn describe_source(metadata: Option<&Metadata>, key: &str) -> String {
    let Some(md) = metadata else {
        return "built-in default".into();
    };
    let name = md.name.to_string();
    if name.contains("environment") {
        let var = format!("HEARTH_{}", key.replace('.', "__").to_ascii_uppercase());
        return format!("environment variable {var}");
    }
    if name.contains("Overrides") {
        return FLAGS_SOURCE.into();
    }
    match &md.source {
        Some(figment::Source::File(path)) => format!("config file {}", path.display()),
        _ if name.contains("Config") => "built-in default".into(),
        _ => name,
    }
}

fn from_figment(err: figment::Error) -> ConfigError {
    let problems = err
        .into_iter()
        .map(|e| {
            let mut path = e.path.clone();
            let problem = match &e.kind {
                figment::error::Kind::UnknownField(field, _) => {
                    if path.last() != Some(field) {
                        path.push(field.clone());
                    }
                    "unknown key".to_string()
                }
                kind => kind.to_string(),
            };
            let key = if path.is_empty() {
                "(top level)".into()
            } else {
                path.join(".")
            };
            ConfigProblem {
                source: describe_source(e.metadata.as_ref(), &key),
                key,
                problem,
            }
        })
        .collect();
    ConfigError { problems }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_normalised_or_refused() {
        assert_eq!(
            origin_of("https://Chat.Example.org/").as_deref(),
            Ok("https://chat.example.org")
        );
        assert_eq!(
            origin_of("http://10.0.0.2:7878").as_deref(),
            Ok("http://10.0.0.2:7878")
        );
        for bad in [
            "chat.example.org",
            "ftp://x",
            "http://",
            "https://x/path",
            "http://a b",
        ] {
            assert!(origin_of(bad).is_err(), "{bad} should be refused");
        }
    }

    /// The repo's config.toml documents every key with its default: parsing it strictly must
    /// give exactly the built-in defaults, and it must mention every key.
    #[test]
    fn shipped_config_toml_is_the_defaults() {
        let shipped = include_str!("../config.toml");
        let parsed: Config = Figment::from(Toml::string(shipped))
            .extract()
            .expect("config.toml parses");
        assert_eq!(parsed.to_toml(), Config::default().to_toml());
        let defaults: toml::Table = toml::from_str(&Config::default().to_toml()).unwrap();
        fn mentions(shipped: &str, prefix: &str, table: &toml::Table) {
            for (key, value) in table {
                match value.as_table() {
                    // Sections nest: [oauth] holds [oauth.github].
                    Some(section) => {
                        let name = format!("{prefix}{key}");
                        assert!(shipped.contains(&format!("[{name}]")), "section [{name}]");
                        mentions(shipped, &format!("{name}."), section);
                    }
                    None => assert!(shipped.contains(&format!("\n{key} = ")), "{prefix}{key}"),
                }
            }
        }
        mentions(shipped, "", &defaults);
    }

    #[test]
    fn relative_paths_become_absolute_against_the_start_directory() {
        let start = Path::new("/srv/chat");
        let mut config = Config::default();
        config.bots.plugins_dir = PathBuf::from("./more/../bots");
        config.make_paths_absolute(start);
        assert_eq!(config.data_dir, Path::new("/srv/chat/hearth-data"));
        assert_eq!(config.bots.plugins_dir, Path::new("/srv/chat/more/../bots"));
        assert_eq!(
            config.bots.plugins_dir(&config.data_dir),
            Path::new("/srv/chat/more/../bots")
        );
        // Absolute paths stay as they are; an empty plugins folder still means the default.
        let mut config = Config {
            data_dir: PathBuf::from("/var/lib/hearth"),
            ..Config::default()
        };
        config.make_paths_absolute(start);
        assert_eq!(config.data_dir, Path::new("/var/lib/hearth"));
        assert_eq!(
            config.bots.plugins_dir(&config.data_dir),
            Path::new("/var/lib/hearth/plugins")
        );
    }

    #[test]
    fn public_url_defaults_to_bind() {
        let config = Config::default();
        assert_eq!(config.public_url(), "http://127.0.0.1:7878");
        assert!(!config.is_https());
    }
}
