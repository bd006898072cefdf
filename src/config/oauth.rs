//! `[oauth]`: the sign-in providers. GitHub and Google are presets whose endpoints default to
//! the real services and can be overridden (GitHub Enterprise, tests); any other OAuth2/OIDC
//! provider (Gitea, Forgejo, Keycloak, Authentik, ...) is a named `[oauth.generic.NAME]` table
//! with its endpoints or an OIDC issuer to discover them from.
//!
//! Client secrets are [`Secret`]s: they print as [`REDACTED`] in `Debug` and whenever the
//! configuration is serialized (`hearth config`), and read the real value when deserialized.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ConfigError;

/// What a secret looks like when the configuration is shown.
pub const REDACTED: &str = "[redacted]";

/// Preset provider names; a generic provider cannot take them.
pub const PRESETS: [&str; 2] = ["github", "google"];

/// A configuration value that must never be shown: `Debug` and `Serialize` give [`REDACTED`]
/// (or `""` when unset, so that defaults stay recognisable), deserializing reads the real value.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The real value, for the one place that needs it (the request to the provider).
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn shown(&self) -> &'static str {
        if self.0.is_empty() {
            ""
        } else {
            REDACTED
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({:?})", self.shown())
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.shown())
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Secret, D::Error> {
        lenient_string(deserializer).map(Secret)
    }
}

/// Reads a string, also from a value the environment layer took for a number (a client id or
/// secret made only of digits).
fn lenient_string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    struct Lenient;
    impl Visitor<'_> for Lenient {
        type Value = String;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
            Ok(v)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
            Ok(v.to_string())
        }
    }
    deserializer.deserialize_any(Lenient)
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OAuthConfig {
    /// Limit on each call to a provider (discovery, token exchange, user info), in milliseconds.
    pub timeout_ms: u64,
    /// How long a sign-in may take at the provider before its `state` expires, and a link may
    /// wait for the person's confirmation, in seconds.
    pub state_ttl_secs: u64,
    /// Sign-ins in progress at once; further starts get 503 until some end. Links waiting for
    /// confirmation are bounded by the same number, apart. 0 = no limit.
    pub max_pending: usize,
    /// Sign-ins in progress at once from one client address; further starts from it get 429
    /// until some end or expire. 0 = no limit.
    pub max_pending_per_ip: usize,
    pub github: GithubConfig,
    pub google: GoogleConfig,
    /// Other OAuth2/OIDC providers by name: `[oauth.generic.gitea]`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub generic: BTreeMap<String, GenericProviderConfig>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GithubConfig {
    pub enabled: bool,
    #[serde(deserialize_with = "lenient_string")]
    pub client_id: String,
    pub client_secret: Secret,
    /// Where the browser is sent to consent.
    pub auth_url: String,
    /// Where the code is exchanged for a token.
    pub token_url: String,
    /// The REST API root: `/user` and `/user/emails` are read below it.
    pub api_url: String,
    pub scopes: Vec<String>,
    /// Lets the endpoints be plain `http://` at a host other than loopback. Anyone on the
    /// network path could then answer as the provider; for test setups only.
    pub allow_insecure_http: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GoogleConfig {
    pub enabled: bool,
    #[serde(deserialize_with = "lenient_string")]
    pub client_id: String,
    pub client_secret: Secret,
    /// Google's OIDC issuer: its discovery document names the keys that sign the ID tokens.
    pub issuer: String,
    pub auth_url: String,
    pub token_url: String,
    pub userinfo_url: String,
    pub scopes: Vec<String>,
    /// As for GitHub: plain `http://` away from loopback, for test setups only.
    pub allow_insecure_http: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GenericProviderConfig {
    pub enabled: bool,
    #[serde(deserialize_with = "lenient_string")]
    pub client_id: String,
    /// Empty for a public client (PKCE alone).
    pub client_secret: Secret,
    /// OIDC issuer; its `/.well-known/openid-configuration` supplies the endpoints not given
    /// and the keys that sign the ID tokens, which are then required and verified. The full
    /// discovery URL is accepted too and read as its issuer. Empty: plain OAuth2, the identity
    /// comes from `userinfo_url` alone.
    pub issuer: String,
    pub auth_url: String,
    pub token_url: String,
    pub userinfo_url: String,
    pub scopes: Vec<String>,
    /// The user-info field holding the provider's stable user id.
    pub id_claim: String,
    /// The user-info field the local username is derived from.
    pub login_claim: String,
    /// Lets the issuer and endpoints be plain `http://` at a host other than loopback. Anyone
    /// on the network path could then sign in as anyone; for test setups only.
    pub allow_insecure_http: bool,
}

impl Default for OAuthConfig {
    fn default() -> Self {
        OAuthConfig {
            timeout_ms: 10_000,
            state_ttl_secs: 600,
            max_pending: 10_000,
            max_pending_per_ip: 20,
            github: GithubConfig::default(),
            google: GoogleConfig::default(),
            generic: BTreeMap::new(),
        }
    }
}

impl Default for GithubConfig {
    fn default() -> Self {
        GithubConfig {
            enabled: false,
            client_id: String::new(),
            client_secret: Secret::default(),
            auth_url: "https://github.com/login/oauth/authorize".into(),
            token_url: "https://github.com/login/oauth/access_token".into(),
            api_url: "https://api.github.com".into(),
            scopes: vec!["read:user".into(), "user:email".into()],
            allow_insecure_http: false,
        }
    }
}

impl Default for GoogleConfig {
    fn default() -> Self {
        GoogleConfig {
            enabled: false,
            client_id: String::new(),
            client_secret: Secret::default(),
            issuer: "https://accounts.google.com".into(),
            auth_url: "https://accounts.google.com/o/oauth2/v2/auth".into(),
            token_url: "https://oauth2.googleapis.com/token".into(),
            userinfo_url: "https://openidconnect.googleapis.com/v1/userinfo".into(),
            scopes: vec!["openid".into(), "email".into(), "profile".into()],
            allow_insecure_http: false,
        }
    }
}

impl Default for GenericProviderConfig {
    fn default() -> Self {
        GenericProviderConfig {
            enabled: true,
            client_id: String::new(),
            client_secret: Secret::default(),
            issuer: String::new(),
            auth_url: String::new(),
            token_url: String::new(),
            userinfo_url: String::new(),
            scopes: vec!["openid".into(), "email".into(), "profile".into()],
            id_claim: "sub".into(),
            login_claim: "preferred_username".into(),
            allow_insecure_http: false,
        }
    }
}

/// Whether `name` may name a generic provider (it becomes part of URLs and identity keys).
pub fn valid_provider_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// Checks an endpoint URL: absolute http(s) with a host.
pub fn check_url(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(format!("{url:?} must be an http:// or https:// URL"));
    }
    Ok(())
}

/// The suffix of an OIDC discovery URL below its issuer.
pub const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";

/// The issuer an `issuer` setting names: the setting itself, or, when the full discovery URL
/// was pasted (as Gitea's and Mattermost's setup pages teach), the part before
/// [`DISCOVERY_PATH`]. Trailing slashes go, as discovery compares issuers without them.
pub fn normalize_issuer(issuer: &str) -> String {
    let issuer = issuer.trim();
    let issuer = issuer.strip_suffix(DISCOVERY_PATH).unwrap_or(issuer);
    issuer.trim_end_matches('/').to_string()
}

/// Whether `url`'s host is this machine: `localhost`, 127.0.0.0/8 or `::1`.
fn is_loopback(url: &reqwest::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Checks an endpoint or issuer URL as [`check_url`] does, and refuses plain `http://` unless
/// the host is loopback or the operator set `allow_insecure_http`: over plain http anyone on
/// the path could answer as the provider.
pub fn check_provider_url(url: &str, allow_insecure_http: bool) -> Result<(), String> {
    check_url(url)?;
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    if parsed.scheme() == "http" && !allow_insecure_http && !is_loopback(&parsed) {
        return Err(format!(
            "{url:?} is plain http: use https (http is accepted only for localhost, \
             127.0.0.0/8 and ::1, or with allow_insecure_http = true for a test setup)"
        ));
    }
    Ok(())
}

impl OAuthConfig {
    /// Checks what serde cannot; only enabled providers need to be complete.
    pub(super) fn validate(&self, source_of: &dyn Fn(&str) -> String) -> Result<(), ConfigError> {
        let fail = |key: &str, problem: String| ConfigError::one(key, source_of(key), problem);
        for (key, value) in [
            ("oauth.timeout_ms", self.timeout_ms),
            ("oauth.state_ttl_secs", self.state_ttl_secs),
        ] {
            if value == 0 {
                return Err(fail(key, "must be at least 1".into()));
            }
        }
        let mut checks: Vec<ProviderCheck<'_>> = Vec::new();
        if self.github.enabled {
            let g = &self.github;
            checks.push(ProviderCheck {
                prefix: "oauth.github".into(),
                client_id: &g.client_id,
                client_secret: &g.client_secret,
                secret_required: true,
                urls: vec![
                    ("auth_url", &g.auth_url),
                    ("token_url", &g.token_url),
                    ("api_url", &g.api_url),
                ],
                allow_insecure_http: g.allow_insecure_http,
            });
        }
        if self.google.enabled {
            let g = &self.google;
            needs_openid(&fail, "oauth.google", &g.scopes)?;
            checks.push(ProviderCheck {
                prefix: "oauth.google".into(),
                client_id: &g.client_id,
                client_secret: &g.client_secret,
                secret_required: true,
                urls: vec![
                    ("issuer", &g.issuer),
                    ("auth_url", &g.auth_url),
                    ("token_url", &g.token_url),
                    ("userinfo_url", &g.userinfo_url),
                ],
                allow_insecure_http: g.allow_insecure_http,
            });
        }
        for (name, g) in &self.generic {
            let prefix = format!("oauth.generic.{name}");
            if !valid_provider_name(name) || PRESETS.contains(&name.as_str()) {
                return Err(fail(
                    &prefix,
                    "a provider name is 1 to 32 characters of a-z, 0-9, '-' and '_', and not \
                     github or google (use [oauth.github] / [oauth.google] for those)"
                        .into(),
                ));
            }
            if !g.enabled {
                continue;
            }
            if g.issuer.is_empty() {
                for (field, value) in [
                    ("auth_url", &g.auth_url),
                    ("token_url", &g.token_url),
                    ("userinfo_url", &g.userinfo_url),
                ] {
                    if value.is_empty() {
                        let key = format!("{prefix}.{field}");
                        return Err(fail(
                            &key,
                            "needed when `issuer` is not set (set `issuer` to discover the \
                             endpoints, or give auth_url, token_url and userinfo_url)"
                                .into(),
                        ));
                    }
                }
            }
            if !g.issuer.trim().is_empty() {
                needs_openid(&fail, &prefix, &g.scopes)?;
            }
            for (field, value) in [("id_claim", &g.id_claim), ("login_claim", &g.login_claim)] {
                if value.is_empty() {
                    return Err(fail(
                        &format!("{prefix}.{field}"),
                        "must not be empty".into(),
                    ));
                }
            }
            let urls = [
                ("issuer", &g.issuer),
                ("auth_url", &g.auth_url),
                ("token_url", &g.token_url),
                ("userinfo_url", &g.userinfo_url),
            ]
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .collect();
            checks.push(ProviderCheck {
                prefix,
                client_id: &g.client_id,
                client_secret: &g.client_secret,
                secret_required: false,
                urls,
                allow_insecure_http: g.allow_insecure_http,
            });
        }
        for check in checks {
            check.run(&fail)?;
        }
        Ok(())
    }
}

/// An OIDC provider answers with an ID token, which hearth requires, only for the `openid`
/// scope: without it every sign-in would fail, so the configuration is refused at start.
fn needs_openid(
    fail: &dyn Fn(&str, String) -> ConfigError,
    prefix: &str,
    scopes: &[String],
) -> Result<(), ConfigError> {
    if scopes.iter().any(|s| s == "openid") {
        return Ok(());
    }
    Err(fail(
        &format!("{prefix}.scopes"),
        "must include \"openid\" for an OIDC provider (one with an issuer): its ID token is \
         required and comes only with that scope"
            .into(),
    ))
}

struct ProviderCheck<'a> {
    prefix: String,
    client_id: &'a str,
    client_secret: &'a Secret,
    secret_required: bool,
    urls: Vec<(&'static str, &'a String)>,
    allow_insecure_http: bool,
}

impl ProviderCheck<'_> {
    fn run(&self, fail: &dyn Fn(&str, String) -> ConfigError) -> Result<(), ConfigError> {
        let key = |field: &str| format!("{}.{field}", self.prefix);
        if self.client_id.trim().is_empty() {
            return Err(fail(
                &key("client_id"),
                "must be set while the provider is enabled (the client id the provider gave \
                 when you registered hearth)"
                    .into(),
            ));
        }
        if self.secret_required && self.client_secret.is_empty() {
            return Err(fail(
                &key("client_secret"),
                "must be set while the provider is enabled".into(),
            ));
        }
        if self.client_secret.expose() == REDACTED {
            return Err(fail(
                &key("client_secret"),
                "is the redaction marker `hearth config` prints; put the real secret here".into(),
            ));
        }
        for (field, url) in &self.urls {
            check_provider_url(url, self.allow_insecure_http)
                .map_err(|problem| fail(&key(field), problem))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_show() {
        let secret = Secret::new("hunter2-very-secret");
        assert_eq!(format!("{secret:?}"), "Secret(\"[redacted]\")");
        let shown = toml::to_string(&GithubConfig {
            client_secret: secret.clone(),
            ..GithubConfig::default()
        })
        .unwrap();
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("client_secret = \"[redacted]\""), "{shown}");
        let read: GithubConfig = toml::from_str("client_secret = \"hunter2-very-secret\"").unwrap();
        assert_eq!(read.client_secret.expose(), "hunter2-very-secret");
        assert_eq!(format!("{:?}", Secret::default()), "Secret(\"\")");
    }

    #[test]
    fn issuers_are_read_from_either_form() {
        for (given, issuer) in [
            ("https://id.example/realms/r", "https://id.example/realms/r"),
            (
                "https://id.example/realms/r/",
                "https://id.example/realms/r",
            ),
            (
                "https://id.example/realms/r/.well-known/openid-configuration",
                "https://id.example/realms/r",
            ),
            (
                " https://git.example/.well-known/openid-configuration ",
                "https://git.example",
            ),
            ("", ""),
        ] {
            assert_eq!(normalize_issuer(given), issuer, "{given:?}");
        }
    }

    #[test]
    fn plain_http_only_on_loopback_or_when_allowed() {
        for (url, allowed, ok) in [
            ("https://id.example", false, true),
            ("http://id.example", false, false),
            ("http://id.example", true, true),
            ("http://127.0.0.1:8080", false, true),
            ("http://127.200.3.4", false, true),
            ("http://[::1]:9000/x", false, true),
            ("http://LOCALHOST:9000", false, true),
            ("http://localhost.example.com", false, false),
            ("http://10.0.0.1", false, false),
            ("http://[::2]", false, false),
        ] {
            assert_eq!(
                check_provider_url(url, allowed).is_ok(),
                ok,
                "{url} {allowed}"
            );
        }
    }

    #[test]
    fn provider_names() {
        for good in ["gitea", "my-keycloak", "a", "x_1"] {
            assert!(valid_provider_name(good), "{good}");
        }
        for bad in ["", "Gitea", "a b", "ü", &"a".repeat(33), "a/b"] {
            assert!(!valid_provider_name(bad), "{bad}");
        }
    }
}

#[cfg(test)]
mod validation_tests {
    use figment::providers::{Format, Serialized, Toml};
    use figment::Figment;

    use super::super::Config;
    use super::*;

    /// Extracts and validates `toml` over the defaults; answers the problem keys.
    fn problems(toml: &str) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let data = format!("data_dir = {:?}\n", dir.path().display().to_string());
        let figment = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::string(&format!("{data}{toml}")));
        let config: Config = figment.extract().expect("extracts");
        match config.validate(&figment) {
            Ok(()) => Vec::new(),
            Err(e) => e.problems.into_iter().map(|p| p.key).collect(),
        }
    }

    #[test]
    fn enabled_providers_must_be_complete() {
        assert!(problems("").is_empty(), "disabled presets need nothing");
        let cases = [
            ("[oauth.github]\nenabled = true\n", "oauth.github.client_id"),
            (
                "[oauth.google]\nenabled = true\nclient_id = \"x\"\n",
                "oauth.google.client_secret",
            ),
            (
                "[oauth.github]\nenabled = true\nclient_id = \"x\"\n\
                 client_secret = \"[redacted]\"\n",
                "oauth.github.client_secret",
            ),
            (
                "[oauth.github]\nenabled = true\nclient_id = \"x\"\nclient_secret = \"y\"\n\
                 api_url = \"github.example.com\"\n",
                "oauth.github.api_url",
            ),
            (
                "[oauth.generic.gitea]\nclient_id = \"x\"\n",
                "oauth.generic.gitea.auth_url",
            ),
            (
                "[oauth.generic.Gitea]\nclient_id = \"x\"\nissuer = \"https://git.example\"\n",
                "oauth.generic.Gitea",
            ),
            (
                "[oauth.generic.github]\nclient_id = \"x\"\nissuer = \"https://git.example\"\n",
                "oauth.generic.github",
            ),
            ("[oauth]\ntimeout_ms = 0\n", "oauth.timeout_ms"),
            (
                "[oauth.generic.kc]\nclient_id = \"x\"\nissuer = \"https://id.example\"\n\
                 scopes = [\"profile\"]\n",
                "oauth.generic.kc.scopes",
            ),
            // Plain http away from loopback, in a configured URL of any provider.
            (
                "[oauth.generic.gitea]\nclient_id = \"x\"\nissuer = \"http://git.example\"\n",
                "oauth.generic.gitea.issuer",
            ),
            (
                "[oauth.github]\nenabled = true\nclient_id = \"x\"\nclient_secret = \"y\"\n\
                 api_url = \"http://github.example.com\"\n",
                "oauth.github.api_url",
            ),
            (
                "[oauth.google]\nenabled = true\nclient_id = \"x\"\nclient_secret = \"y\"\n\
                 token_url = \"http://192.168.1.9/token\"\n",
                "oauth.google.token_url",
            ),
        ];
        for (toml, key) in cases {
            assert_eq!(problems(toml), [key], "{toml}");
        }
        let complete = [
            "[oauth.github]\nenabled = true\nclient_id = \"x\"\nclient_secret = \"y\"\n",
            // A public client with an issuer needs no secret and no endpoints.
            "[oauth.generic.keycloak]\nclient_id = \"x\"\n\
             issuer = \"https://id.example/realms/r\"\n",
            "[oauth.generic.off]\nenabled = false\n",
            // The discovery URL form, loopback http, and http allowed on purpose.
            "[oauth.generic.kc]\nclient_id = \"x\"\n\
             issuer = \"https://id.example/realms/r/.well-known/openid-configuration\"\n",
            "[oauth.generic.local]\nclient_id = \"x\"\nissuer = \"http://localhost:9000\"\n",
            "[oauth.generic.lab]\nclient_id = \"x\"\nissuer = \"http://lab.example\"\n\
             allow_insecure_http = true\n",
        ];
        for toml in complete {
            assert!(problems(toml).is_empty(), "{toml}: {:?}", problems(toml));
        }
    }

    /// The commented-out generic provider in config.toml shows exactly the defaults.
    #[test]
    fn shipped_generic_example_is_the_defaults() {
        let shipped = include_str!("../../config.toml");
        let start = shipped
            .find("# [oauth.generic.gitea]")
            .expect("example present");
        let example: String = shipped[start..]
            .lines()
            .filter_map(|l| l.strip_prefix("# "))
            .filter(|l| !l.starts_with('#'))
            .map(|l| format!("{l}\n"))
            .collect();
        let config: Config = Figment::from(Toml::string(&example)).extract().unwrap();
        let gitea = &config.oauth.generic["gitea"];
        assert_eq!(
            toml::to_string(gitea).unwrap(),
            toml::to_string(&GenericProviderConfig::default()).unwrap()
        );
    }
}
